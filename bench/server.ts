/**
 * Server load as a site of N nodes puts on it: every node reports (8 GPUs, 2 sessions) every `--interval` seconds and
 * its state changes once every `--change-every` seconds (0: at every report), plus `--queries` listings per second
 * (cluster list, cluster nodes, session list --cluster, a node's page, in turn, as ordinary users). The server is
 * `dist/beaker server run` in its own process, on SQLite and on PostgreSQL; this process is only the client.
 * Prints the sustained rate, p50/p99/max per kind, and the CPU time of the server, the database and the client over
 * the measured window, so a reader sees which side is the limit. The first report of every node (a full write each)
 * is sent in the first interval and reported apart, before the measured window.
 * The target: 10,000 nodes every 5 s (2,000 heartbeats/s) plus 100 queries/s, p99 under 50 ms.
 *
 *   node_modules/.bin/bun bench/server.ts [--nodes 10000] [--interval 5] [--queries 100] [--seconds 20]
 *       [--change-every 60] [--cluster-size 500] [--only sqlite|postgres] [--pg-fsync]
 *
 * PostgreSQL runs with fsync off (as in the tests) unless --pg-fsync.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/server/run.ts";
import { TestPostgres, TestServer } from "../test/server-harness.ts";
import { removeDir, tempDir } from "../test/harness.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "10000" },
    interval: { type: "string", default: "5" },
    queries: { type: "string", default: "100" },
    seconds: { type: "string", default: "20" },
    "change-every": { type: "string", default: "60" },
    "cluster-size": { type: "string", default: "500" },
    only: { type: "string" },
    "pg-fsync": { type: "boolean", default: false },
  },
});
const nodes = Number(values.nodes);
const interval = Number(values.interval);
const queriesPerSecond = Number(values.queries);
const seconds = Number(values.seconds);
const changeEvery = Number(values["change-every"]);
const clusterSize = Number(values["cluster-size"]);
const heartbeatsPerSecond = nodes / interval;
const clusters = Math.ceil(nodes / clusterSize);
const users = 50;

const hostname = (i: number) => `node-${String(i).padStart(5, "0")}`;
const clusterOf = (i: number) => `c${String(Math.floor(i / clusterSize)).padStart(3, "0")}`;

/** A node's report in its `epoch`: a change replaces its sessions and which GPUs they hold. */
function beat(i: number, epoch: number): string {
  const held = 3 + (epoch % 4);
  const sid = (k: number) => `s${i}-${epoch}-${k}`;
  const gpus = Array.from({ length: 8 }, (_, g) => ({
    index: g,
    uuid: `GPU-${i}-${g}`,
    name: "NVIDIA H100 80GB HBM3",
    memoryMiB: 81559,
    claimedBy: g < held ? sid(g % 2) : null,
    healthy: true,
    error: null,
    foreignProcesses: [],
  }));
  const sessions = [0, 1].map((k) => ({
    id: sid(k),
    name: `run-${k}`,
    user: `user${(i + k) % users}`,
    gpus: gpus.filter((g) => g.claimedBy === sid(k)).map((g) => g.uuid),
    image: "nvcr.io/nvidia/pytorch:24.05-py3",
    status: "running",
    createdAt: new Date(1_700_000_000_000 + epoch * 1000).toISOString(),
    startedAt: new Date(1_700_000_001_000 + epoch * 1000).toISOString(),
  }));
  return JSON.stringify({ cpus: 64, memoryBytes: 512 * 2 ** 30, version: "0.1.0", gpus, sessions });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const clockTicks = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString()) || 100;

/** utime+stime of a process, plus what its reaped children used when `children` (fields 14-17 of /proc/PID/stat). */
function cpuOf(pid: number, children: boolean): { own: number; reaped: number; ppid: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ").map(Number);
  return { own: (f[11]! + f[12]!) / clockTicks, reaped: children ? (f[13]! + f[14]!) / clockTicks : 0, ppid: f[1]! };
}

/** CPU seconds of a process tree one level deep: PostgreSQL's postmaster and its backends, living or reaped. */
function treeCpu(root: number): number {
  let total = cpuOf(root, true).own + cpuOf(root, true).reaped;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const p = cpuOf(Number(entry), false);
      if (p.ppid === root) total += p.own;
    } catch {}
  }
  return total;
}

type Kind = "heartbeat" | "clusters" | "cluster nodes" | "sessions" | "node";

async function run(kind: "sqlite" | "postgres", db: string, dbPid: number | null): Promise<void> {
  const setupStart = performance.now();
  const store = await openStore(db);
  for (let c = 0; c < clusters; c++) await store.createCluster(clusterOf(c * clusterSize));
  const userTokens: string[] = [];
  for (let u = 0; u < users; u++) userTokens.push((await store.createUser(`user${u}`, false)).token);
  const nodeTokens: string[] = [];
  for (let i = 0; i < nodes; i++) nodeTokens.push((await store.addNode(hostname(i), clusterOf(i))).token);
  await store.db.close();
  const server = new TestServer(db);
  await server.start();
  console.log(`${kind.padEnd(8)} set up ${clusters} clusters, ${nodes} nodes, ${users} users in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

  const latencies = new Map<string, number[]>();
  const record = (key: string, ms: number) => (latencies.get(key) ?? latencies.set(key, []).get(key)!).push(ms);
  let errors = 0;
  let firstError = "";
  let unchanged = 0;
  const inflight = new Set<Promise<void>>();
  const send = (key: string, url: string, init: RequestInit) => {
    const start = performance.now();
    // A request unanswered for 30 s counts as an error (it would otherwise hold the final wait for it forever).
    const p = fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
      .then(async (res) => {
        const body = await res.text();
        if (!res.ok) {
          errors++;
          firstError ||= `${res.status} ${body.slice(0, 200)}`;
          return;
        }
        record(key, performance.now() - start);
        if (key === "heartbeat" && (JSON.parse(body) as { unchanged?: boolean }).unchanged) unchanged++;
      })
      .catch((err: Error) => {
        errors++;
        firstError ||= err.message;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  const bodies = new Map<number, { epoch: number; body: string }>();
  const sentTo = new Array<number>(nodes).fill(0);
  const bodyFor = (i: number, elapsed: number) => {
    const epoch = changeEvery > 0 ? Math.floor(elapsed / changeEvery + i / nodes) : sentTo[i]!;
    let cached = bodies.get(i);
    if (cached?.epoch !== epoch) bodies.set(i, (cached = { epoch, body: beat(i, epoch) }));
    sentTo[i]!++;
    return cached.body;
  };
  const queryKinds: Array<[Kind, (q: number) => string]> = [
    ["clusters", () => "/clusters"],
    ["cluster nodes", (q) => `/clusters/${clusterOf((q * 7919) % nodes)}/nodes`],
    ["sessions", (q) => `/sessions?cluster=${clusterOf((q * 104729) % nodes)}`],
    ["node", (q) => `/nodes/${hostname((q * 7919) % nodes)}`],
  ];

  // Open loop: requests go out on schedule whether or not earlier ones have answered (a slow server shows as latency).
  const started = performance.now();
  let sentBeats = 0;
  let sentQueries = 0;
  let measureFrom: { at: number; server: number; db: number; client: NodeJS.CpuUsage } | null = null;
  const serverPid = server.pid!;
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= interval + seconds) break;
    const phase = elapsed < interval ? "first" : "measured";
    if (phase === "measured" && !measureFrom) {
      measureFrom = { at: performance.now(), server: cpuOf(serverPid, false).own, db: dbPid ? treeCpu(dbPid) : 0, client: process.cpuUsage() };
    }
    while (sentBeats < elapsed * heartbeatsPerSecond) {
      const i = sentBeats++ % nodes;
      send(phase === "first" ? "first report" : "heartbeat", `${server.url}/api/v1/nodes/${hostname(i)}/heartbeat`, {
        method: "PUT",
        headers: { authorization: `Bearer ${nodeTokens[i]}`, "content-type": "application/json" },
        body: bodyFor(i, elapsed),
      });
    }
    while (sentQueries < elapsed * queriesPerSecond) {
      const q = sentQueries++;
      const [name, path] = queryKinds[q % queryKinds.length]!;
      send(phase === "first" ? "query during first reports" : name, `${server.url}/api/v1${path(q)}`, { headers: { authorization: `Bearer ${userTokens[q % users]}` } });
    }
    await Bun.sleep(5);
  }
  await Promise.all(inflight);
  const wall = (performance.now() - measureFrom!.at) / 1000;
  const serverCpu = cpuOf(serverPid, false).own - measureFrom!.server;
  const dbCpu = dbPid ? treeCpu(dbPid) - measureFrom!.db : 0;
  const client = process.cpuUsage(measureFrom!.client);
  await server.cleanup();

  let measured = 0;
  const all: number[] = [];
  for (const [key, list] of latencies) {
    const sorted = list.sort((a, b) => a - b);
    const inWindow = key !== "first report" && key !== "query during first reports";
    if (inWindow) {
      measured += sorted.length;
      all.push(...sorted);
    }
    console.log(
      `${kind.padEnd(8)} ${key.padEnd(26)} ${String(sorted.length).padStart(6)} ${inWindow ? `${(sorted.length / wall).toFixed(0).padStart(5)}/s` : "       "}  ` +
        `p50 ${percentile(sorted, 50).toFixed(1)} ms  p99 ${percentile(sorted, 99).toFixed(1)} ms  max ${sorted.at(-1)?.toFixed(1)} ms` +
        (key === "heartbeat" ? `  (${unchanged} unchanged)` : ""),
    );
  }
  all.sort((a, b) => a - b);
  console.log(
    `${kind.padEnd(8)} measured ${wall.toFixed(1)} s: ${(measured / wall).toFixed(0)} req/s sustained (${heartbeatsPerSecond + queriesPerSecond} asked), p99 ${percentile(all, 99).toFixed(1)} ms, ` +
      `max ${all.at(-1)?.toFixed(1)} ms (target p99 < 50 ms)${errors ? `, ${errors} errors (first: ${firstError})` : ""}`,
  );
  const pct = (s: number) => `${s.toFixed(1)} s (${((100 * s) / wall).toFixed(0)}% of a core)`;
  console.log(
    `${kind.padEnd(8)} CPU: server ${pct(serverCpu)}, database ${dbPid ? pct(dbCpu) : "inside the server"}, client ${pct((client.user + client.system) / 1e6)}`,
  );
}

console.log(
  `${nodes} nodes in clusters of ${clusterSize}, each reporting every ${interval} s (${heartbeatsPerSecond} heartbeats/s), state changing ` +
    `${changeEvery > 0 ? `every ${changeEvery} s` : "at every report"}, plus ${queriesPerSecond} queries/s; measured for ${seconds} s after the first reports`,
);
if (values.only !== "postgres") {
  const dir = tempDir("beaker-bench-");
  await run("sqlite", `sqlite://${join(dir, "server.db")}`, null);
  removeDir(dir);
}
if (values.only !== "sqlite") {
  const pg = new TestPostgres({ durable: values["pg-fsync"] });
  await pg.start();
  try {
    await run("postgres", pg.url, pg.pid!);
  } finally {
    await pg.stop();
  }
}
