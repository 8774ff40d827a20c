/**
 * GPU exclusivity on the real engine, checked from inside the containers, without luck:
 *   node_modules/.bin/bun bench/stress-claims.ts [--rounds 10] [--image IMG]      (BEAKER=path: another build)
 * Starts its own executor on a fake 8-GPU node, then runs rounds of 40 concurrent sessions (--gpus 1..3) that each
 * take a lock directory per GPU they were given (mkdir fails when another running session holds it), hold it for
 * 0.2-0.5 s and let go. Reports the overlaps seen (required: 0) and each round's wall time. Run as root, with Docker.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { eightFreeGpus } from "../test/executor-harness.ts";
import { beakerBinary as built, eventually, makeNvidiaSmiScenario, stopProcess, tempDir, within } from "../test/harness.ts";

/** The binary under test: dist/beaker, or another build (BEAKER=path) to compare against. */
const beakerBinary = process.env.BEAKER ?? built;

const { values } = parseArgs({ options: { rounds: { type: "string", default: "10" }, image: { type: "string", default: process.env.BEAKER_TEST_BUSYBOX ?? "beaker-test/busybox:latest" } } });
const rounds = Number(values.rounds);
const node = `stress-claims-${process.pid}`;
const dir = tempDir("beaker-stress-");
const locks = join(dir, "locks");
mkdirSync(locks);
const smi = makeNvidiaSmiScenario({ q_x: { out: eightFreeGpus() } });
const socket = join(dir, "executor.sock");
const docker = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock";
writeFileSync(join(dir, "config.yml"), `socket: ${socket}\nstateDir: ${join(dir, "state")}\ndockerSocket: ${docker}\nnvidiaSmi: ${smi.executable}\ndefaultImage: ${values.image}\nnodeName: ${node}\nmountPaths: []\n`);
const executor = Bun.spawn([beakerBinary, "executor", "run", "--config", join(dir, "config.yml")], { stdout: "ignore", stderr: Bun.file(join(dir, "executor.log")) });

const ready = () =>
  eventually(() => fetch("http://x/v1/health", { unix: socket }).then((r) => r.ok), 20_000, { what: "the executor answering on its socket", detail: () => executorLog() });
const executorLog = () => (existsSync(join(dir, "executor.log")) ? readFileSync(join(dir, "executor.log"), "utf8").slice(-1500) : "");

/** One session: lock each GPU it got, hold, unlock; prints OVERLAP for a lock some other running session holds. */
function session(i: number): Promise<{ out: string; code: number }> {
  const gpus = 1 + (i % 3);
  const holdMs = 200 + ((i * 37) % 300);
  const script = `for g in $(echo "$NVIDIA_VISIBLE_DEVICES" | tr , ' '); do mkdir /locks/$g 2>/dev/null || echo OVERLAP $g; done; sleep ${(holdMs / 1000).toFixed(2)}; for g in $(echo "$NVIDIA_VISIBLE_DEVICES" | tr , ' '); do rmdir /locks/$g 2>/dev/null; done`;
  const proc = Bun.spawn([beakerBinary, "session", "create", "--gpus", String(gpus), "--mount", `${locks}:/locks`, "--", "sh", "-c", script], {
    env: { PATH: process.env.PATH, HOME: "/root", BEAKER_EXECUTOR_SOCKET: socket },
    stdout: "pipe",
    stderr: "pipe",
  });
  const done = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]).then(([out, err, code]) => ({ out: out + err, code }));
  // A session holds its GPUs for half a second; one that takes minutes is stuck, and the bench says so.
  return within(done, 120_000, `session ${i} (create, hold, end)`, executorLog).catch((err: Error) => (proc.kill("SIGKILL"), { out: err.message, code: -1 }));
}

let overlaps = 0;
let failures = 0;
const walls: number[] = [];
try {
  await ready();
  for (let round = 1; round <= rounds; round++) {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => session(i + round)));
    const wall = performance.now() - start;
    walls.push(wall);
    const seen = results.flatMap((r) => r.out.split("\n").filter((l) => l.startsWith("OVERLAP")));
    const failed = results.filter((r) => r.code !== 0);
    overlaps += seen.length;
    failures += failed.length;
    console.log(`round ${round}: 40 sessions in ${(wall / 1000).toFixed(1)} s, ${seen.length} overlaps, ${failed.length} failed${failed[0] ? ` (${failed[0].out.trim().split("\n")[0]})` : ""}`);
  }
} finally {
  await stopProcess(executor, "the executor");
  // Its sessions, and the warm network namespaces it made (src/executor/network/netns-pool.ts).
  for (const label of [`beaker.node=${node}`, `beaker.netns=${node}`]) {
    const ids = Bun.spawnSync(["docker", "ps", "-aq", "--filter", `label=${label}`]).stdout.toString().trim();
    if (ids) Bun.spawnSync(["docker", "rm", "-f", ...ids.split("\n")]);
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(smi.dir, { recursive: true, force: true });
}
const total = walls.reduce((a, b) => a + b, 0);
console.log(`${rounds} rounds of 40 concurrent sessions: ${overlaps} overlaps (required: 0), ${failures} failed, ${(total / 1000).toFixed(1)} s in all`);
process.exit(overlaps === 0 && failures === 0 ? 0 : 1);
