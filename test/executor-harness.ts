/** A real executor (dist/beaker executor run) on a private socket, with a fake 8-GPU nvidia-smi and the test engine. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SessionInfo } from "../src/executor/api-types.ts";
import { beakerBinary, eventually, makeNvidiaSmiScenario, removeDir, fixture, stopProcess, tempDir, within, type RunResult } from "./harness.ts";

export const testImage = process.env.BEAKER_TEST_IMAGE ?? "beaker-test/debian:bookworm";
export const busyboxImage = process.env.BEAKER_TEST_BUSYBOX ?? "beaker-test/busybox:latest";
export const noShellImage = process.env.BEAKER_TEST_NOSHELL ?? "beaker-test/noshell:latest";
/** The Debian test image plus rsync and openssh-client (the far side of rsync -e ssh, and ssh-add inside). */
export const sshImage = process.env.BEAKER_TEST_SSH_IMAGE ?? "beaker-test/debian-ssh:bookworm";
export const testUser = "beaker-test-user";
export const otherUser = "beaker-test-other";

/** The V100 x8 recording with its GPU processes removed, so all eight GPUs are free to hand out. */
export function eightFreeGpus(): string {
  return readFileSync(fixture("datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml"), "utf8").replace(
    /<processes>[\s\S]*?<\/processes>/g,
    "<processes>\n\t\t</processes>",
  );
}

export const eightUuids = [...eightFreeGpus().matchAll(/<uuid>(GPU-[^<]+)<\/uuid>/g)].map((m) => m[1]!);

export interface SpawnOptions {
  user?: string;
  cwd?: string;
  /** Text for stdin (then end of file); `pipe` keeps stdin open for the test to write. */
  stdin?: string | { pipe: true };
  env?: Record<string, string>;
}

/** `await using executor = new TestExecutor(...)` stops it and removes its sessions and files at the end of the block. */
export class TestExecutor implements AsyncDisposable {
  readonly dir = tempDir("beaker-exec-");
  readonly socket = join(this.dir, "run", "executor.sock");
  readonly logPath = join(this.dir, "executor.log");
  private proc: ReturnType<typeof Bun.spawn> | null = null;
  /** The fake nvidia-smi's scenario folder (setUtilization plays a script there). */
  readonly smiDir: string;

  readonly nodeName: string;
  /** More flags for `beaker executor run` (`--trace`). */
  private readonly args: string[];

  /** Added to the executor's environment (a Slurm test cluster's SLURM_CONF). */
  private readonly env: Record<string, string>;

  /**
   * `nodeName`: from testNodeName(import.meta.file), so that each file (and each executor in it) cleans up only its
   * own containers. `nvidiaSmiXml`: what its `nvidia-smi -q -x` prints (default: eight free GPUs); `utilization`: a
   * script for it. `env`: added to the executor's.
   */
  constructor(options: { nodeName: string; dockerSocket?: string; extra?: string; nvidiaSmiXml?: string; utilization?: string[]; env?: Record<string, string>; args?: string[] }) {
    this.nodeName = options.nodeName;
    this.env = options.env ?? {};
    this.args = options.args ?? [];
    const smi = makeNvidiaSmiScenario({ q_x: { out: options.nvidiaSmiXml ?? eightFreeGpus(), util: options.utilization } });
    this.smiDir = smi.dir;
    const docker = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock";
    writeFileSync(
      join(this.dir, "config.yml"),
      `socket: ${this.socket}\nstateDir: ${join(this.dir, "state")}\ndockerSocket: ${options.dockerSocket ?? docker}\nnvidiaSmi: ${smi.executable}\ndefaultImage: ${testImage}\nnodeName: ${this.nodeName}\n${options.extra ?? ""}`,
    );
  }

  async start(): Promise<void> {
    this.proc = Bun.spawn([beakerBinary, "executor", "run", "--config", join(this.dir, "config.yml"), ...this.args], {
      env: { ...process.env, ...this.env },
      stdout: Bun.file(this.logPath),
      stderr: Bun.file(this.logPath),
    });
    const proc = this.proc;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`executor exited ${proc.exitCode}: ${this.log()}`);
        return (await fetch("http://x/v1/health", { unix: this.socket })).ok;
      },
      30_000,
      { what: "executor health" },
    );
  }

  log(): string {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  /** Resolves when the executor process ends of its own accord (after `beaker executor restart`, as under systemd). */
  async exited(): Promise<void> {
    if (this.proc) await within(this.proc.exited, 120_000, "the executor to exit of its own accord", () => this.log().slice(-2000));
    this.proc = null;
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.proc) await stopProcess(this.proc, "the executor", signal);
    this.proc = null;
  }

  /** The containers of this executor's node, running or not. */
  containers(): string[] {
    return managedContainers(this.nodeName);
  }

  /**
   * Removes containers a crashed earlier run of this file left behind (they would hold GPUs in the ledger), and the
   * warm network namespaces (src/executor/network/netns-pool.ts) its executors made.
   */
  removeLeftovers(): void {
    const ids = [...this.containers(), ...netnsHolders(this.nodeName)];
    if (ids.length) Bun.spawnSync(["docker", "rm", "-f", ...ids]);
  }

  async cleanup(): Promise<void> {
    await this.kill();
    this.removeLeftovers();
    removeDir(this.dir);
    removeDir(this.smiDir);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.cleanup();
  }

  /** Runs dist/beaker against this executor, as root or as a test user (setpriv, with the user's groups and home). */
  spawn(args: string[], options: SpawnOptions = {}) {
    const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin", BEAKER_EXECUTOR_SOCKET: this.socket };
    let cmd = [beakerBinary, ...args];
    if (options.user) {
      const home = `/home/${options.user}`;
      Object.assign(env, { HOME: home, USER: options.user, BEAKER_CONFIG: join(home, ".beaker", "config.yml") });
      cmd = ["setpriv", `--reuid=${options.user}`, `--regid=${options.user}`, "--init-groups", ...cmd];
    } else env.HOME = "/root";
    Object.assign(env, options.env);
    return Bun.spawn(cmd, {
      env,
      cwd: options.cwd ?? (options.user ? `/home/${options.user}` : "/root"),
      stdin: options.stdin === undefined ? "ignore" : typeof options.stdin === "string" ? new Blob([options.stdin]) : "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
  }

  async run(args: string[], options: SpawnOptions = {}): Promise<RunResult> {
    const proc = this.spawn(args, options);
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  }

  /** `session list --json` as the given user (root by default): their sessions, queued ones with their place. */
  async list(options: SpawnOptions = {}): Promise<SessionInfo[]> {
    const r = await this.run(["session", "list", "--json"], options);
    if (r.exitCode !== 0) throw new Error(`session list: exit ${r.exitCode}: ${r.stderr}`);
    return JSON.parse(r.stdout) as SessionInfo[];
  }

  /** The session each GPU is claimed by (null: free), in index order, as `node gpus --json` says. */
  async claims(): Promise<Array<string | null>> {
    const r = await this.run(["node", "gpus", "--json"]);
    if (r.exitCode !== 0) throw new Error(`node gpus: exit ${r.exitCode}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as Array<{ claimedBy: string | null }>).map((g) => g.claimedBy);
  }
}

export function managedContainers(node: string): string[] {
  const out = Bun.spawnSync(["docker", "ps", "-aq", "--filter", `label=beaker.node=${node}`]).stdout.toString().trim();
  return out ? out.split("\n") : [];
}

/** The warm network namespaces (holder containers) an executor of this node made. */
export function netnsHolders(node: string): string[] {
  const out = Bun.spawnSync(["docker", "ps", "-aq", "--no-trunc", "--filter", `label=beaker.netns=${node}`]).stdout.toString().trim();
  return out ? out.split("\n") : [];
}

/** The running holders of this node that no session has joined: what the next creates will get. */
export function idleHolders(node: string): string[] {
  const list = (filter: string, format: string) =>
    Bun.spawnSync(["docker", "ps", "--no-trunc", "--filter", filter, "--format", format]).stdout.toString().trim().split("\n").filter(Boolean);
  const joined = new Set(list(`label=beaker.node=${node}`, '{{.Label "beaker.netns-holder"}}'));
  return list(`label=beaker.netns=${node}`, "{{.ID}}").filter((id) => !joined.has(id));
}
