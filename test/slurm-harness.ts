/**
 * A real one-node Slurm cluster (Debian's slurm-wlm and munge) for the tests: munged, slurmctld and slurmd run as
 * this process's children with their own config, state and sockets under one folder, on ports of their own, and are
 * stopped by pid afterwards. The node offers 8 GPUs through gres.conf `File=` entries that are character devices the
 * harness makes (major 195, like /dev/nvidiaN; no driver needed), so Slurm hands out GPU indexes 0-7, which the fake
 * nvidia-smi's V100 x8 recording has as minor numbers 0-7. Starting again kills what a previous run left (by the pids
 * it wrote down) and starts clean; stopping removes the folder.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { eventually, removeDir, stopProcess } from "./harness.ts";

export const slurmDir = "/tmp/beaker-test-slurm";
export const slurmConf = join(slurmDir, "slurm.conf");
/** Slurm's name of this machine's node (what the executor's slurm.node defaults to). */
export const slurmNode = hostname().split(".")[0]!;
/** Another name of that node: one that Slurm's --nodelist takes where `aliasingSalloc` is first on the PATH. */
export const slurmHostAlias = "beaker-slurm-alias";

const pidFiles = ["munged.pid", "slurmctld.pid", "slurmd.pid"].map((f) => join(slurmDir, f));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the daemons a run of this harness started (by the pids it wrote), and waits until they are gone. */
async function stopDaemons(): Promise<void> {
  const pids = pidFiles.filter(existsSync).map((f) => Number(readFileSync(f, "utf8").trim())).filter((pid) => pid > 1 && alive(pid));
  for (const pid of pids) process.kill(pid, "SIGTERM");
  try {
    await eventually(() => pids.every((pid) => !alive(pid)), 15_000, { what: "the Slurm test daemons to stop" });
  } catch {
    for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
  }
}

function slurmConfText(): string {
  return `ClusterName=beakertest
SlurmctldHost=${slurmNode}(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${slurmDir}/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=${slurmDir}/state
SlurmdSpoolDir=${slurmDir}/spool
SlurmctldPidFile=${slurmDir}/slurmctld.pid
SlurmdPidFile=${slurmDir}/slurmd.pid
SlurmctldLogFile=${slurmDir}/slurmctld.log
SlurmdLogFile=${slurmDir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobSubmitPlugins=logging
KillWait=5
MinJobAge=600
NodeName=${slurmNode} NodeAddr=127.0.0.1 CPUs=32 Gres=gpu:8 State=UNKNOWN
PartitionName=gpu Nodes=${slurmNode} Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=${slurmNode} Default=NO MaxTime=INFINITE State=UP
`;
}

/**
 * Writes into `dir` a `salloc` that takes `slurmHostAlias` for this node, as a site's Slurm takes a node's other names
 * (a NodeHostname, a DNS alias): `--nodelist=<alias>` goes on as the node's own name, so the job runs on, and Slurm
 * lists it under, `slurmNode`. Everything else reaches the real salloc unchanged.
 */
export function writeAliasingSalloc(dir: string): void {
  const script = `#!/bin/sh\nfor a; do shift; [ "$a" = "--nodelist=${slurmHostAlias}" ] && a="--nodelist=${slurmNode}"; set -- "$@" "$a"; done\nexec /usr/bin/salloc "$@"\n`;
  writeFileSync(join(dir, "salloc"), script);
  chmodSync(join(dir, "salloc"), 0o755);
}

export class TestSlurm {
  private children: Array<ReturnType<typeof Bun.spawn>> = [];
  /** What Slurm's commands need in their environment. */
  readonly env = { SLURM_CONF: slurmConf };

  async start(): Promise<void> {
    await stopDaemons();
    removeDir(slurmDir);
    for (const sub of ["", "dev", "state", "spool", "munge"]) mkdirSync(join(slurmDir, sub), { recursive: true, mode: 0o755 });
    chmodSync(slurmDir, 0o755);
    for (let i = 0; i < 8; i++) {
      const made = Bun.spawnSync(["mknod", join(slurmDir, "dev", `nvidia${i}`), "c", "195", String(i)], { stderr: "pipe" });
      if (made.exitCode !== 0) throw new Error(`mknod: ${made.stderr.toString()}`);
    }
    const key = join(slurmDir, "munge", "munge.key");
    writeFileSync(key, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o400 });
    writeFileSync(slurmConf, slurmConfText(), { mode: 0o644 });
    writeFileSync(join(slurmDir, "gres.conf"), `NodeName=${slurmNode} Name=gpu File=${slurmDir}/dev/nvidia[0-7]\n`, { mode: 0o644 });
    writeFileSync(join(slurmDir, "cgroup.conf"), "CgroupPlugin=cgroup/v1\n", { mode: 0o644 });

    const munge = join(slurmDir, "munge");
    this.spawn(["munged", "-F", "--force", `--key-file=${key}`, `--socket=${munge}/munge.socket.2`, `--pid-file=${slurmDir}/munged.pid`, `--seed-file=${munge}/seed`], "munged.out");
    await eventually(() => existsSync(`${munge}/munge.socket.2`), 30_000, { what: "munged's socket" });
    this.spawn(["slurmctld", "-D", "-c", "-f", slurmConf], "slurmctld.out");
    this.spawn(["slurmd", "-D", "-f", slurmConf], "slurmd.out");
    await eventually(() => this.sh(["sinfo", "--noheader", "--format=%T"]).stdout.trim() === "idle", 60_000, { what: "the Slurm node to be idle", detail: () => this.logs() });
  }

  private spawn(cmd: string[], out: string): void {
    const log = Bun.file(join(slurmDir, out));
    this.children.push(Bun.spawn(cmd, { env: { ...process.env, ...this.env }, stdout: log, stderr: log }));
  }

  logs(): string {
    return ["munged.out", "slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"]
      .map((f) => join(slurmDir, f))
      .filter(existsSync)
      .map((f) => `--- ${f}\n${readFileSync(f, "utf8").split("\n").slice(-15).join("\n")}`)
      .join("\n");
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c, i) => stopProcess(c, `Slurm test daemon ${i + 1} of ${this.children.length}`)));
    this.children = [];
    await stopDaemons();
    removeDir(slurmDir);
  }

  /** Runs a Slurm command as root, or as `user` (setpriv, with the user's groups), with the cluster's config. */
  sh(cmd: string[], user?: string): { exitCode: number; stdout: string; stderr: string } {
    const argv = user ? ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", ...cmd] : cmd;
    const r = Bun.spawnSync(argv, { env: { PATH: "/usr/local/bin:/usr/bin:/bin", ...this.env }, cwd: "/", stdout: "pipe", stderr: "pipe" });
    return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  /**
   * A read-only query (scontrol show, squeue). Under load slurmctld can answer one with a timeout, which is not the
   * answer: it is asked again, a few times, unless Slurm said the job is unknown.
   */
  private ask(cmd: string[]): { exitCode: number; stdout: string; stderr: string } {
    for (let attempt = 1; ; attempt++) {
      const r = this.sh(cmd);
      if (r.exitCode === 0 || /Invalid job id/i.test(r.stderr) || attempt === 5) return r;
      Bun.sleepSync(200 * attempt);
    }
  }

  /** A plain batch job (not Beaker's) of `user`'s; returns its id. */
  sbatch(user: string, args: string[]): string {
    const r = this.sh(["sbatch", "--parsable", "--output=/dev/null", "--chdir=/tmp", ...args, "--wrap", "exec sleep 600"], user);
    if (r.exitCode !== 0) throw new Error(`sbatch: ${r.stderr}`);
    return r.stdout.trim().split(";")[0]!;
  }

  /** An allocation with no shell, as `user`; returns its id once granted. */
  salloc(user: string, args: string[]): string {
    const r = this.sh(["salloc", "--no-shell", ...args], user);
    const id = /Granted job allocation (\d+)/.exec(r.stderr)?.[1];
    if (r.exitCode !== 0 || !id) throw new Error(`salloc: ${r.stderr}`);
    return id;
  }

  /** `JobState=...` and friends of one job, or null once Slurm has forgotten it. */
  job(id: string): Record<string, string> | null {
    const r = this.ask(["scontrol", "show", "job", "-d", "-o", id]);
    if (r.exitCode !== 0) return null;
    return Object.fromEntries([...r.stdout.matchAll(/(\S+?)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
  }

  /** The ids of the jobs Slurm still runs or queues. */
  queue(user?: string): string[] {
    const r = this.ask(["squeue", "--noheader", "--format=%i", ...(user ? [`--user=${user}`] : [])]);
    return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  }

  /** The GPU indexes Slurm gave a job on this node (from `scontrol show job -d`: GRES=gpu:N(IDX:...)). */
  gpuIndexes(id: string): number[] {
    const r = this.ask(["scontrol", "show", "job", "-d", id]);
    const idx = /GRES=gpu[^(]*\(IDX:([^)]*)\)/.exec(r.stdout)?.[1];
    // A job Slurm no longer knows (ended and purged) has none, not GPU 0.
    if (!idx) return [];
    return idx.split(",").flatMap((part) => {
      const [a, b] = part.split("-").map(Number);
      return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
    });
  }
}

