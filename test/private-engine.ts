/**
 * A second Docker engine for tests that need one set up unlike the machine's (no bridge network, say). It runs in a
 * network namespace of its own, so `--bridge none` there cannot delete the host's docker0, with its own socket, data
 * root, exec root, managed containerd and config file, so it shares nothing with the machine's engine. The stub
 * nvidia hook is on its PATH, as for the machine's engine. Stopped by its pid; the namespace and folders go with it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, removeDir, tempDir, type RunResult } from "./harness.ts";

const stubHookDir = "/usr/local/lib/beaker-test/bin";

export class PrivateEngine {
  readonly dir = tempDir("beaker-engine-");
  readonly netns = `beaker-test-${crypto.randomUUID().slice(0, 8)}`;
  readonly socket = join(this.dir, "docker.sock");
  private proc: ReturnType<typeof Bun.spawn> | null = null;

  /** `flags`: dockerd flags beyond the ones that keep it apart, e.g. `["--bridge", "none"]`. */
  constructor(private readonly flags: string[] = []) {}

  get host(): string {
    return `unix://${this.socket}`;
  }

  get log(): string {
    return existsSync(join(this.dir, "dockerd.log")) ? readFileSync(join(this.dir, "dockerd.log"), "utf8") : "";
  }

  async start(): Promise<void> {
    if (!existsSync(join(stubHookDir, "nvidia-container-runtime-hook"))) throw new Error(`the stub nvidia hook is not installed in ${stubHookDir} (scripts/test installs it)`);
    const added = Bun.spawnSync(["ip", "netns", "add", this.netns], { stderr: "pipe" });
    if (added.exitCode !== 0) throw new Error(`ip netns add ${this.netns}: ${added.stderr}`);
    Bun.spawnSync(["ip", "netns", "exec", this.netns, "ip", "link", "set", "lo", "up"]);
    writeFileSync(join(this.dir, "daemon.json"), "{}\n");
    const dockerd = [
      "dockerd",
      ...["--host", this.host, "--config-file", join(this.dir, "daemon.json"), "--pidfile", join(this.dir, "docker.pid")],
      ...["--data-root", join(this.dir, "data"), "--exec-root", join(this.dir, "exec"), "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
      ...this.flags,
    ];
    // nsenter, not `ip netns exec`: that one also gives the process a fresh /sys without the cgroup mounts dockerd needs.
    this.proc = Bun.spawn(["nsenter", `--net=/run/netns/${this.netns}`, ...dockerd], {
      env: { PATH: `${stubHookDir}:${process.env.PATH}` },
      stdout: Bun.file(join(this.dir, "dockerd.log")),
      stderr: Bun.file(join(this.dir, "dockerd.log")),
    });
    const proc = this.proc;
    try {
      await eventually(
        async () => {
          if (proc.exitCode !== null) throw new Error(`dockerd exited ${proc.exitCode}`);
          return (await fetch("http://engine/_ping", { unix: this.socket })).ok;
        },
        30_000,
        { what: "the private engine's ping" },
      );
    } catch (err) {
      const log = this.log;
      await this.stop();
      throw new Error(`the private Docker engine did not start (${(err as Error).message}):\n${log.slice(-2000)}`);
    }
  }

  /** `docker -H <this engine> ...`. */
  docker(args: string[], stdin?: Uint8Array): RunResult {
    const r = Bun.spawnSync(["docker", "-H", this.host, ...args], { stdin, stdout: "pipe", stderr: "pipe" });
    return { exitCode: r.exitCode ?? 1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  /** Copies an image from the machine's engine (no registry is reachable). */
  loadImage(tag: string): void {
    const saved = Bun.spawnSync(["docker", "save", tag], { stdout: "pipe", stderr: "pipe" });
    if (saved.exitCode !== 0) throw new Error(`docker save ${tag}: ${saved.stderr}`);
    const loaded = this.docker(["load", "-q"], saved.stdout);
    if (loaded.exitCode !== 0) throw new Error(`docker load ${tag}: ${loaded.stderr}`);
  }

  /** Removes its containers, stops dockerd by its pid, deletes the namespace and every folder. */
  async stop(): Promise<void> {
    if (this.proc) {
      const ids = this.docker(["ps", "-aq"]).stdout.trim();
      if (ids) this.docker(["rm", "-f", ...ids.split("\n")]);
      const proc = this.proc;
      proc.kill("SIGTERM");
      const stopped = await eventually(() => proc.exitCode !== null || proc.signalCode !== null, 20_000).then(
        () => true,
        () => false,
      );
      if (!stopped) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      this.proc = null;
    }
    // dockerd leaves a mount of its own network namespace (exec/netns/default) behind.
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((point) => point.startsWith(`${this.dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const point of mounts) Bun.spawnSync(["umount", point]);
    Bun.spawnSync(["ip", "netns", "delete", this.netns]);
    removeDir(this.dir);
  }
}
