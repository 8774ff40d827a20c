/**
 * The session path against what a session really is, `docker run --rm --init`, measured in the same run:
 *   beaker session create --gpus 0 --image IMG -- true   vs   docker run --rm --init IMG true
 * alternating (a machine that drifts slower or faster during the run affects both alike), RUNS times each (default
 * 30); then the peak memory of each CLI, 40 concurrent creates, and the executor's peak RSS (VmHWM).
 * Targets: median ratio at most 1.10x; executor peak under 80 MB.
 *
 * Runs its own executor (dist/beaker, root, a private socket and state dir, a fake 8-GPU nvidia-smi), so the figures
 * are this build's and nothing else's; `BEAKER_EXECUTOR_SOCKET` and `EXECUTOR_PID` measure a running one instead.
 * After each command it waits until the executor's background work (making a warm network namespace again and
 * removing the used one: src/executor/network/netns-pool.ts) is done, so each command runs on an otherwise idle engine;
 * `SETTLE=0` runs them back to back instead, the refill competing with the next command.
 * `SESSION_NETWORK=bridge` puts sessions on Docker's default bridge instead of their isolated network, to tell the
 * network's cost from Beaker's. `TRACE=N` then runs N traced creates (BEAKER_TRACE=1, alternating with docker runs)
 * and prints the median time of each phase since the CLI started, and what the engine saw for both: where time goes.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { holderLabel, poolSize } from "../src/executor/network/netns-pool.ts";
import { eventually, stopProcess, within } from "../test/harness.ts";

const root = resolve(import.meta.dir, "..");
const beaker = process.env.BEAKER ?? join(root, "dist/beaker");
const image = process.env.BENCH_IMAGE ?? "beaker-test/debian:bookworm";
const runs = Number(process.env.RUNS ?? 30);
const concurrent = Number(process.env.CONCURRENT ?? 40);

interface Executor {
  socket: string;
  pid: number;
  node: string;
  stop(): Promise<void>;
}

async function startExecutor(): Promise<Executor> {
  const dir = mkdtempSync(join(tmpdir(), "beaker-bench-"));
  const smi = join(dir, "smi");
  Bun.spawnSync(["mkdir", "-p", smi]);
  copyFileSync(join(root, "test/fixtures/bin/fake-nvidia-smi"), join(smi, "nvidia-smi"));
  Bun.spawnSync(["chmod", "755", join(smi, "nvidia-smi")]);
  const xml = readFileSync(join(root, "test/fixtures/nvidia-smi/datakit_tesla-v100s-pcie-32gb_x8_drv460.73_q_x.xml"), "utf8");
  writeFileSync(join(smi, "q_x.out"), xml);
  const socket = join(dir, "run", "executor.sock");
  const node = `bench-${process.pid}`;
  writeFileSync(
    join(dir, "config.yml"),
    `socket: ${socket}\nstateDir: ${join(dir, "state")}\nnvidiaSmi: ${join(smi, "nvidia-smi")}\ndefaultImage: ${image}\nnodeName: ${node}\n` +
      (process.env.SESSION_NETWORK ? `sessionNetwork: ${process.env.SESSION_NETWORK}\n` : ""),
  );
  const proc = Bun.spawn([beaker, "executor", "run", "--config", join(dir, "config.yml")], { stdout: Bun.file(join(dir, "log")), stderr: Bun.file(join(dir, "log")) });
  await eventually(() => healthy(socket), 10_000, { what: "the executor answering on its socket", detail: () => readFileSync(join(dir, "log"), "utf8").slice(-2000) });
  return {
    socket,
    pid: proc.pid,
    node,
    async stop() {
      await stopProcess(proc, "the executor");
      for (const label of [`beaker.node=${node}`, `beaker.netns=${node}`]) {
        const ids = Bun.spawnSync(["docker", "ps", "-aq", "--filter", `label=${label}`]).stdout.toString().trim();
        if (ids) Bun.spawnSync(["docker", "rm", "-f", ...ids.split("\n")]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function healthy(socket: string): Promise<boolean> {
  try {
    return (await fetch("http://x/v1/health", { unix: socket })).ok;
  } catch {
    return false;
  }
}

interface Run {
  ms: number;
  rss: number;
  stderr: string;
  start: number;
  end: number;
}

/** Runs one command to its end (its wall time, peak RSS and stderr), then lets the executor's background work finish. */
async function run(cmd: string[], env: Record<string, string | undefined>): Promise<Run> {
  const start = Date.now();
  const t = performance.now();
  const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe", env });
  const ms = performance.now() - t;
  const end = Date.now();
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: exit ${r.exitCode}: ${r.stderr}`);
  await settle();
  return { ms, rss: r.resourceUsage.maxRSS, stderr: r.stderr.toString(), start, end };
}

/** Waits (up to 3 s) until the executor's warm network namespaces are back to the pool's size, all running. */
async function settle(): Promise<void> {
  if (!executor.node || process.env.SETTLE === "0") return;
  const pool = () => {
    const out = Bun.spawnSync(["docker", "ps", "-a", "--filter", `label=${holderLabel}=${executor.node}`, "--format", "{{.State}}"]).stdout.toString().trim();
    return out ? out.split("\n") : [];
  };
  // Not refilled in time is worth a line (the next run is timed against a smaller pool), not the end of the bench.
  await eventually(() => pool().length === poolSize && pool().every((state) => state === "running"), 3000, { intervalMs: 20, what: `the warm network pool back to ${poolSize} running` }).catch((err: Error) =>
    console.error(err.message),
  );
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** The two commands alternating, `runs` times each: medians, their ratio, and each CLI's peak RSS. */
async function compare(session: string[], docker: string[], env: Record<string, string | undefined>): Promise<void> {
  const b: Run[] = [];
  const d: Run[] = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2) b.push(await run(session, env)), d.push(await run(docker, env));
    else d.push(await run(docker, env)), b.push(await run(session, env));
  }
  const bm = median(b.map((r) => r.ms));
  const dm = median(d.map((r) => r.ms));
  console.log(`beaker session create --gpus 0 -- true  median ${bm.toFixed(0)} ms  (${runs} runs each, alternating)`);
  console.log(`docker run --rm --init -- true          median ${dm.toFixed(0)} ms`);
  console.log(`ratio ${(bm / dm).toFixed(2)}x (target <= 1.10x)`);
  console.log(`CLI peak RSS: beaker ${mb(Math.max(...b.map((r) => r.rss)))}, docker ${mb(Math.max(...d.map((r) => r.rss)))}`);
}

/** `concurrent` creates at once, then the executor's peak RSS (VmHWM) over the whole run. */
async function concurrentCreates(session: string[], env: Record<string, string | undefined>, pid: number): Promise<void> {
  const start = performance.now();
  const procs = Array.from({ length: concurrent }, () => Bun.spawn(session, { env, stdout: "ignore", stderr: "pipe" }));
  const codes = await within(Promise.all(procs.map((p) => p.exited)), 300_000, `${concurrent} concurrent creates to end`);
  const failed = codes.filter((c) => c !== 0).length;
  console.log(`${concurrent} concurrent creates: ${(performance.now() - start).toFixed(0)} ms wall${failed ? `, ${failed} failed` : ""}`);
  if (!pid) return;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  const [utime, stime] = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ").slice(11, 13).map(Number);
  console.log(`executor peak RSS (VmHWM) ${mb(kb("VmHWM"))}, now ${mb(kb("VmRSS"))} (target < 80 MB); CPU so far ${((utime! + stime!) / 100).toFixed(2)} s`);
}

/**
 * Where the time goes, over `n` runs of each command (alternating): the median of each phase of beaker's own timeline
 * (BEAKER_TRACE, ms since the CLI started), then, for both commands, when the engine saw the container's create,
 * attach, start, die and destroy and when the command exited (ms since it was spawned, from `docker events`; a
 * warm network namespace's own events are left out).
 */
async function printMedianTimeline(session: string[], docker: string[], env: Record<string, string | undefined>, n: number): Promise<void> {
  const traced = new Map<string, number[]>();
  const engine = { beaker: new Map<string, number[]>(), docker: new Map<string, number[]>() };
  const windows: Array<{ kind: "beaker" | "docker"; start: number; end: number }> = [];
  const add = (map: Map<string, number[]>, key: string, value: number) => map.set(key, [...(map.get(key) ?? []), value]);
  const first = Date.now();
  for (let i = 0; i < n; i++) {
    for (const kind of i % 2 ? (["beaker", "docker"] as const) : (["docker", "beaker"] as const)) {
      const r = await run(kind === "beaker" ? session : docker, { ...env, BEAKER_TRACE: "1" });
      windows.push({ kind, start: r.start, end: r.end });
      if (kind === "docker") continue;
      for (const line of r.stderr.split("\n")) {
        const m = /^\s*([\d.]+)\s+\+[\d.]+\s+(\S+)\s+(.+)$/.exec(line);
        if (m) add(traced, `${m[2]!.padEnd(9)}${m[3]}`, Number(m[1]));
      }
    }
  }
  const until = Date.now() + 1;
  const events = Bun.spawnSync(["docker", "events", "--since", String(first / 1000), "--until", String(until / 1000), "--filter", "type=container", "--format", "{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}"]);
  for (const line of events.stdout.toString().trim().split("\n")) {
    const [nano, action, name] = line.split(" ");
    if (name?.startsWith("beaker-netns-")) continue;
    const at = Number(nano) / 1e6;
    const w = windows.find((x) => at >= x.start && at <= x.end);
    if (w && action && !action.startsWith("exec_")) add(engine[w.kind], action, at - w.start);
  }
  for (const w of windows) add(engine[w.kind], "exit", w.end - w.start);
  const print = (map: Map<string, number[]>) => {
    let previous = 0;
    for (const [phase, at] of [...map].map(([p, xs]) => [p, median(xs)] as const).sort((a, b) => a[1] - b[1])) {
      console.log(`${at.toFixed(1).padStart(8)} ${`+${(at - previous).toFixed(1)}`.padStart(8)}  ${phase}`);
      previous = at;
    }
  };
  console.log(`\nbeaker session create, median of ${n} traced runs (ms since the CLI started, +ms since the line before):`);
  print(traced);
  for (const kind of ["beaker", "docker"] as const) {
    console.log(`\n${kind}: what the engine saw, median ms since the command was spawned:`);
    print(engine[kind]);
  }
}

const external = process.env.BEAKER_EXECUTOR_SOCKET;
const executor: Executor = external
  ? { socket: external, pid: Number(process.env.EXECUTOR_PID ?? 0), node: "", stop: async () => {} }
  : await startExecutor();
try {
  const env = { ...process.env, BEAKER_EXECUTOR_SOCKET: executor.socket, BEAKER_NO_UPDATE_NOTIFIER: "1", BEAKER_TRACE: undefined };
  const session = [beaker, "session", "create", "--gpus", "0", "--image", image, "--", "true"];
  const docker = ["docker", "run", "--rm", "--init", image, "true"];
  for (let i = 0; i < 3; i++) await run(session, env), await run(docker, env);
  if (runs > 0) await compare(session, docker, env);
  if (concurrent > 0) await concurrentCreates(session, env, executor.pid);
  if (Number(process.env.TRACE) > 0) await printMedianTimeline(session, docker, env, Number(process.env.TRACE));
} finally {
  await executor.stop();
}
