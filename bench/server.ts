/**
 * Server load: heartbeats from N simulated nodes (8 GPUs, 2 sessions each) every 10 s, plus `cluster nodes` queries,
 * against `dist/beaker server run` on SQLite and on PostgreSQL. Prints sustained requests/s and p50/p99 latency.
 * The target: p99 under 50 ms at 10x the load of 1,000 nodes (1,000 heartbeats/s) on a 2-core machine.
 *
 *   node_modules/.bin/bun bench/server.ts [--nodes 1000] [--scale 10] [--seconds 20] [--only sqlite|postgres]
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { openStore } from "../src/server/run.ts";
import { TestPostgres, TestServer } from "../test/server-harness.ts";
import { removeDir, tempDir } from "../test/harness.ts";

const { values } = parseArgs({
  options: { nodes: { type: "string", default: "1000" }, scale: { type: "string", default: "10" }, seconds: { type: "string", default: "20" }, only: { type: "string" } },
});
const nodes = Number(values.nodes);
const scale = Number(values.scale);
const seconds = Number(values.seconds);
const heartbeatsPerSecond = (nodes / 10) * scale;
const queriesPerSecond = 5 * scale;

function beat(i: number, t: number) {
  const gpus = Array.from({ length: 8 }, (_, g) => ({
    index: g,
    uuid: `GPU-${i}-${g}`,
    name: "NVIDIA H100 80GB HBM3",
    memoryMiB: 81559,
    claimedBy: g < 3 + ((i + t) % 4) ? `s${i}-${g % 2}` : null,
    healthy: true,
  }));
  const sessions = [0, 1].map((s) => ({
    id: `s${i}-${s}`,
    name: `user${i % 50}-${s}`,
    user: `user${i % 50}`,
    gpus: [`GPU-${i}-${s}`],
    image: "nvcr.io/nvidia/pytorch:24.05-py3",
    status: "running",
    createdAt: new Date(Date.now() - 3600_000).toISOString(),
    startedAt: new Date(Date.now() - 3590_000).toISOString(),
  }));
  return JSON.stringify({ cpus: 64, memoryBytes: 512 * 2 ** 30, version: "0.1.0", gpus, sessions });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(kind: "sqlite" | "postgres", db: string): Promise<void> {
  const store = await openStore(db);
  await store.createCluster("bench");
  const user = await store.createUser("bench-user", false);
  const tokens: string[] = [];
  for (let i = 0; i < nodes; i++) tokens.push((await store.addNode(`node-${String(i).padStart(4, "0")}`, "bench")).token);
  await store.db.sql.close();

  const server = new TestServer(db);
  await server.start();
  const latencies = { heartbeat: [] as number[], query: [] as number[] };
  let errors = 0;
  const inflight = new Set<Promise<void>>();
  const send = (what: "heartbeat" | "query", url: string, init: RequestInit) => {
    const start = performance.now();
    const p = fetch(url, init)
      .then(async (res) => {
        await res.arrayBuffer();
        if (!res.ok) errors++;
        latencies[what].push(performance.now() - start);
      })
      .catch(() => void errors++)
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  // Open loop: requests go out on schedule whether or not earlier ones have answered (a slow server shows as latency).
  const tickMs = 10;
  const started = performance.now();
  let sentBeats = 0;
  let sentQueries = 0;
  let next = 0;
  while (performance.now() - started < seconds * 1000) {
    const elapsed = (performance.now() - started) / 1000;
    while (sentBeats < elapsed * heartbeatsPerSecond) {
      const i = next++ % nodes;
      send("heartbeat", `${server.url}/api/v1/nodes/node-${String(i).padStart(4, "0")}/heartbeat`, {
        method: "PUT",
        headers: { authorization: `Bearer ${tokens[i]}`, "content-type": "application/json" },
        body: beat(i, Math.floor(elapsed / 10)),
      });
      sentBeats++;
    }
    while (sentQueries < elapsed * queriesPerSecond) {
      send("query", `${server.url}/api/v1/clusters/bench/nodes`, { headers: { authorization: `Bearer ${user.token}` } });
      sentQueries++;
    }
    await Bun.sleep(tickMs);
  }
  await Promise.all(inflight);
  const wall = (performance.now() - started) / 1000;
  await server.cleanup();

  for (const what of ["heartbeat", "query"] as const) {
    const sorted = latencies[what].sort((a, b) => a - b);
    console.log(
      `${kind.padEnd(8)} ${what.padEnd(9)} ${String(sorted.length).padStart(6)} done  ${(sorted.length / wall).toFixed(0).padStart(5)}/s  ` +
        `p50 ${percentile(sorted, 50).toFixed(1)} ms  p99 ${percentile(sorted, 99).toFixed(1)} ms  max ${sorted.at(-1)?.toFixed(1)} ms`,
    );
  }
  const all = [...latencies.heartbeat, ...latencies.query].sort((a, b) => a - b);
  const p99 = percentile(all, 99);
  console.log(`${kind.padEnd(8)} all       ${(all.length / wall).toFixed(0)} req/s sustained, p99 ${p99.toFixed(1)} ms (target < 50 ms)${errors ? `, ${errors} errors` : ""}`);
}

console.log(`${nodes} nodes x ${scale} (every node every ${10 / scale} s): ${heartbeatsPerSecond} heartbeats/s + ${queriesPerSecond} cluster-nodes queries/s for ${seconds} s`);
if (values.only !== "postgres") {
  const dir = tempDir("beaker-bench-");
  await run("sqlite", `sqlite://${join(dir, "server.db")}`);
  removeDir(dir);
}
if (values.only !== "sqlite") {
  const pg = new TestPostgres();
  await pg.start();
  try {
    await run("postgres", pg.url);
  } finally {
    await pg.stop();
  }
}
