/**
 * A node's executor for the upgrade tests: `beaker executor run` of a given file on a socket of its own. With
 * `systemd`, the harness plays a systemd unit with Restart=always: the executor runs in a cgroup named like the
 * unit's (so /proc/PID/cgroup says `.../beaker-test-XXXX.service`, as under systemd), it is started again from the
 * same path whenever it exits, and a stand-in `systemctl` (first on `path`) answers `systemctl show` for the unit as
 * systemd would (MainPID, Restart, ExecStart). Without it, nothing starts the executor again.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, repoRoot } from "./harness.ts";

/** The cgroup folder where systemd's units show in /proc/PID/cgroup: v1's name=systemd hierarchy, else v2's. */
function cgroupRoot(): string {
  return existsSync("/sys/fs/cgroup/systemd/cgroup.procs") ? "/sys/fs/cgroup/systemd" : "/sys/fs/cgroup";
}

export class NodeExecutor {
  readonly socket: string;
  readonly unit = `beaker-test-${crypto.randomUUID().slice(0, 8)}.service`;
  /** The PATH for the CLI: with `systemd`, its stand-in `systemctl` comes first. */
  readonly path: string;
  private readonly config: string;
  private readonly cgroup: string | null;
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  private supervising = false;
  private supervisor: Promise<void> | null = null;

  constructor(
    private readonly binary: string,
    private readonly dir: string,
    private readonly options: { systemd: boolean },
  ) {
    mkdirSync(join(dir, "bin"), { recursive: true });
    this.socket = join(dir, "run", "executor.sock");
    this.config = join(dir, "config.yml");
    writeFileSync(this.config, `socket: ${this.socket}\nstateDir: ${join(dir, "state")}\ndockerSocket: /nonexistent/docker.sock\nnvidiaSmi: /nonexistent/nvidia-smi\nnodeName: upgrade-node\n`);
    this.path = options.systemd ? `${join(dir, "bin")}:${process.env.PATH}` : (process.env.PATH ?? "/usr/bin:/bin");
    this.cgroup = options.systemd ? join(cgroupRoot(), this.unit) : null;
    if (options.systemd) {
      const systemctl = join(dir, "bin", "systemctl");
      const argv = `${binary} executor run --config ${this.config}`;
      writeFileSync(
        systemctl,
        `#!/bin/sh\n[ "$1" = show ] || { echo "systemctl stand-in: only 'show' is played" >&2; exit 1; }\n` +
          `echo "Id=${this.unit}"\necho "MainPID=$(cat ${join(dir, "main.pid")} 2>/dev/null || echo 0)"\necho "Restart=always"\n` +
          `echo "ExecStart={ path=${binary} ; argv[]=${argv} ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"\n`,
      );
      chmodSync(systemctl, 0o755);
    }
  }

  /** Starts it (and, as systemd's unit, again whenever it exits); resolves once it answers. */
  async start(): Promise<void> {
    if (this.cgroup) mkdirSync(this.cgroup, { recursive: true });
    this.supervising = true;
    this.supervisor = (async () => {
      do {
        this.proc = Bun.spawn([this.binary, "executor", "run", "--config", this.config], { stdout: "ignore", stderr: "ignore" });
        if (this.cgroup) {
          writeFileSync(join(this.cgroup, "cgroup.procs"), String(this.proc.pid));
          writeFileSync(join(this.dir, "main.pid"), String(this.proc.pid));
        }
        await this.proc.exited;
      } while (this.supervising && this.options.systemd);
    })();
    await eventually(async () => (await this.health())?.pid === this.proc?.pid, 30_000, { what: "the executor answering" });
  }

  async health(): Promise<{ pid: number; version: string } | null> {
    return fetch("http://x/v1/health", { unix: this.socket }).then(
      async (r) => (r.ok ? ((await r.json()) as { pid: number; version: string }) : null),
      () => null,
    );
  }

  async stop(): Promise<void> {
    this.supervising = false;
    this.proc?.kill();
    await this.supervisor;
    // A cgroup is removed once it is empty (the executor has exited).
    if (this.cgroup && existsSync(this.cgroup)) {
      await eventually(() => readFileSync(join(this.cgroup!, "cgroup.procs"), "utf8").trim() === "", 10_000, { what: `${this.cgroup} to empty` });
      rmdirSync(this.cgroup);
    }
  }
}

/** Builds beaker (scripts/build.ts `args`) that trusts the test release key. */
export function buildBeaker(args: string[], keys: { privateKeyFile: string; publicKey: string }): void {
  const r = Bun.spawnSync([process.execPath, "scripts/build.ts", ...args], {
    cwd: repoRoot,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BEAKER_RELEASE_KEY_FILE: keys.privateKeyFile, BEAKER_RELEASE_PUBLIC_KEY: keys.publicKey },
  });
  if (r.exitCode !== 0) throw new Error(`build ${args.join(" ")}: ${r.stderr}`);
}

/** Runs `binary` with `env` over a bare PATH, as root or as `user` (setpriv, with the user's groups). */
export async function runBinary(binary: string, args: string[], env: Record<string, string>, user?: string) {
  const cmd = user ? ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", binary, ...args] : [binary, ...args];
  const proc = Bun.spawn(cmd, { env: { PATH: process.env.PATH, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}
