/** The server's API through `beaker server run`, the same suite on SQLite and on PostgreSQL. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestPostgres, TestServer } from "../server-harness.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";

const pg = new TestPostgres();
beforeAll(() => pg.start());
afterAll(() => pg.stop());

const gpu = (i: number, claimedBy: string | null = null) => ({ index: i, uuid: `GPU-${i}`, name: "NVIDIA H100 80GB HBM3", memoryMiB: 81559, claimedBy, healthy: true });
const beat = (gpus: ReturnType<typeof gpu>[], sessions: object[] = []) => ({ cpus: 64, memoryBytes: 512 * 2 ** 30, version: "0.1.0", gpus, sessions });
const session = (id: string, user: string, gpus: string[]) => ({ id, name: `${user}-${id}`, user, gpus, image: "img", status: "running", createdAt: new Date().toISOString(), startedAt: new Date().toISOString() });

describe.each(["sqlite", "postgres"])("API on %s", (kind) => {
  let server: TestServer;
  let admin: string;
  let alice: string;
  let bob: string;
  let nodeToken: string;
  const dir = tempDir("beaker-api-");

  beforeAll(async () => {
    if (kind === "postgres") {
      // Each run starts from an empty schema.
      const { SQL } = await import("bun");
      const sql = new SQL(pg.url);
      await sql.unsafe("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
      await sql.close();
    }
    server = new TestServer(kind === "postgres" ? pg.url : undefined);
    admin = await server.createUser("root-admin", true);
    alice = await server.createUser("alice");
    bob = await server.createUser("bob");
    expect((await server.admin(["cluster", "create", "lab"])).exitCode).toBe(0);
    nodeToken = (await Bun.file(await server.addNode("gpu-1", "lab", dir)).text()).trim();
    await server.addNode("gpu-2", "lab", dir);
    await server.start();
  });
  afterAll(async () => {
    await server.cleanup();
    removeDir(dir);
  });

  test("tokens: random, stored only as hashes, shown once; whoami; unknown, malformed and missing tokens get 401", async () => {
    expect(alice).toMatch(/^bkr_[0-9a-f]{10}_[A-Za-z0-9_-]{43}$/);
    expect(await (await server.api("/whoami", alice)).json()).toEqual({ name: "alice", admin: false });
    expect(await (await server.api("/whoami", admin)).json()).toEqual({ name: "root-admin", admin: true });
    for (const bad of [null, "nonsense", `${alice.slice(0, -1)}x`, alice.replace(/^bkr/, "bkn")]) {
      const res = await server.api("/whoami", bad);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).not.toContain(alice.slice(15));
    }
    const health = await server.api("/health", null);
    expect(health.status).toBe(200);
    if (kind === "sqlite") {
      const { SQL } = await import("bun");
      const sql = new SQL(server.db);
      const rows = await sql`SELECT hash FROM tokens`;
      await sql.close();
      const secret = alice.slice("bkr_0123456789_".length); // the secret itself may contain "_"
      expect(rows.length).toBeGreaterThan(3);
      expect(rows.some((r: { hash: string }) => r.hash.includes(secret))).toBe(false);
      expect(rows.every((r: { hash: string }) => /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);
    }
  });

  test("a node token reports only for its node, and users cannot report; bodies are validated", async () => {
    const ok = await server.api("/nodes/gpu-1/heartbeat", nodeToken, { method: "PUT", body: JSON.stringify(beat([gpu(0), gpu(1, "s1")], [session("s1", "alice", ["GPU-1"])])) });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ cordoned: false, cluster: "lab", unchanged: false });
    const other = await server.api("/nodes/gpu-2/heartbeat", nodeToken, { method: "PUT", body: JSON.stringify(beat([])) });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { message: string } }).error.message).toBe("this token reports for node gpu-1 only");
    expect((await server.api("/nodes/gpu-1/heartbeat", alice, { method: "PUT", body: JSON.stringify(beat([])) })).status).toBe(403);
    expect((await server.api("/nodes/gpu-1/heartbeat", null, { method: "PUT", body: JSON.stringify(beat([])) })).status).toBe(401);
    const cases: Array<[string, number, RegExp]> = [
      ["{not json", 400, /body is not valid JSON/],
      [JSON.stringify({ ...beat([]), extra: 1 }), 400, /unknown field body\.extra/],
      [JSON.stringify({ ...beat([]), cpus: "many" }), 400, /body\.cpus must be a number/],
      [JSON.stringify(beat([{ ...gpu(0), uuid: 7 } as never])), 400, /body\.gpus\[0\]\.uuid must be a string/],
      [JSON.stringify({ ...beat([]), pad: "x".repeat(1_100_000) }), 413, /larger than/],
    ];
    for (const [body, status, message] of cases) {
      const res = await server.api("/nodes/gpu-1/heartbeat", nodeToken, { method: "PUT", body });
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
    }
  });

  test("clusters and nodes: free and total GPUs, status, GPU type; never-seen nodes are offline", async () => {
    const clusters = await (await server.api("/clusters", bob)).json();
    expect(clusters).toEqual([{ name: "lab", nodes: 2, nodesOnline: 1, gpusFree: 1, gpusTotal: 2 }]);
    const nodes = (await (await server.api("/clusters/lab/nodes", bob)).json()) as Array<Record<string, unknown>>;
    expect(nodes.map((n) => [n.hostname, n.gpuType, n.gpusFree, n.gpusTotal, n.status])).toEqual([
      ["gpu-1", "NVIDIA H100 80GB HBM3", 1, 2, "online"],
      ["gpu-2", null, 0, 0, "offline"],
    ]);
    expect((await server.api("/clusters/nope/nodes", bob)).status).toBe(404);
    expect((await server.api("/clusters", null)).status).toBe(401);
    expect((await server.admin(["node", "cordon", "gpu-1"])).exitCode).toBe(0);
    const cordoned = await server.api("/nodes/gpu-1/heartbeat", nodeToken, { method: "PUT", body: JSON.stringify(beat([gpu(0), gpu(1)])) });
    expect(await cordoned.json()).toMatchObject({ cordoned: true, cluster: "lab" });
    expect(((await (await server.api("/nodes", bob)).json()) as Array<{ status: string }>)[0]!.status).toBe("cordoned");
    await server.admin(["node", "uncordon", "gpu-1"]);
  });

  test("users see their own sessions, admins everyone's; a node's page shows who holds its GPUs", async () => {
    await server.api("/nodes/gpu-1/heartbeat", nodeToken, {
      method: "PUT",
      body: JSON.stringify(beat([gpu(0, "s2"), gpu(1, "s1")], [session("s1", "alice", ["GPU-1"]), session("s2", "bob", ["GPU-0"])])),
    });
    const mine = (await (await server.api("/sessions?cluster=lab", alice)).json()) as Array<{ id: string; node: string }>;
    expect(mine.map((s) => [s.id, s.node])).toEqual([["s1", "gpu-1"]]);
    const all = (await (await server.api("/sessions", admin)).json()) as Array<{ id: string }>;
    expect(all.map((s) => s.id).sort()).toEqual(["s1", "s2"]);
    const node = (await (await server.api("/nodes/gpu-1", alice)).json()) as { gpusFree: number; gpus: Array<{ claimedBy: string }>; sessions: Array<{ user: string }> };
    expect(node.gpusFree).toBe(0);
    expect(node.sessions.map((s) => s.user).sort()).toEqual(["alice", "bob"]);
    // A name with LIKE's wildcard in it finds its own sessions, and only those.
    const underscored = await server.createUser("c_d");
    const dir2 = tempDir("beaker-like-");
    const token2 = (await Bun.file(await server.addNode("gpu-5", "lab", dir2)).text()).trim();
    removeDir(dir2);
    const body = JSON.stringify(beat([gpu(0, "s5"), gpu(1, "s6")], [session("s5", "c_d", ["GPU-0"]), session("s6", "cxd", ["GPU-1"])]));
    expect((await server.api("/nodes/gpu-5/heartbeat", token2, { method: "PUT", body })).status).toBe(200);
    expect(((await (await server.api("/sessions?cluster=lab", underscored)).json()) as Array<{ id: string }>).map((s) => s.id)).toEqual(["s5"]);
  });

  test("a report that did not change only moves last_seen and says so; a change is stored; a revoked node token fails at its next report", async () => {
    const dir3 = tempDir("beaker-digest-");
    const token = (await Bun.file(await server.addNode("gpu-3", "lab", dir3)).text()).trim();
    removeDir(dir3);
    const report = (body: object, with_ = token) => server.api("/nodes/gpu-3/heartbeat", with_, { method: "PUT", body: JSON.stringify(body) });
    const lastSeen = async () => ((await (await server.api("/nodes/gpu-3", bob)).json()) as { lastSeen: string }).lastSeen;
    const a = beat([gpu(0, "s3"), gpu(1)], [session("s3", "bob", ["GPU-0"])]);
    expect(await (await report(a)).json()).toEqual({ cordoned: false, cluster: "lab", unchanged: false });
    const first = await lastSeen();
    // Reports the same again until last_seen (kept to the clock's resolution) has moved.
    const { answer } = await eventually(
      async () => {
        const answer: unknown = await (await report(a)).json();
        return (await lastSeen()) !== first && { answer };
      },
      30_000,
      { what: "last_seen to move" },
    );
    expect(answer).toEqual({ cordoned: false, cluster: "lab", unchanged: true });
    expect(await lastSeen()).not.toBe(first);
    const bobs = async () => ((await (await server.api("/sessions?cluster=lab", bob)).json()) as Array<{ id: string; node: string }>).filter((s) => s.node === "gpu-3");
    expect((await bobs()).map((s) => s.id)).toEqual(["s3"]);

    const b = beat([gpu(0), gpu(1, "s4")], [session("s4", "bob", ["GPU-1"])]);
    expect(await (await report(b)).json()).toMatchObject({ unchanged: false });
    expect((await bobs()).map((s) => s.id)).toEqual(["s4"]);
    expect(await (await report(b)).json()).toMatchObject({ unchanged: true });
    // Another node's token, even with a body this node already sent, is refused as before.
    expect((await report(b, nodeToken)).status).toBe(403);

    const id = token.split("_")[1]!;
    expect((await server.admin(["token", "revoke", id])).exitCode).toBe(0);
    const revoked = await report(b);
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: { message: string } }).error.message).toMatch(/not valid/);
  });

  test("a node's GPUs say why they are unavailable; process names and pids only to admins", async () => {
    const foreign = { ...gpu(2), foreignProcesses: [{ pid: 40412, name: "python3 train.py" }] };
    const lost = { ...gpu(3), healthy: false, error: "the driver cannot reach this GPU: GPU is lost" };
    const dir4 = tempDir("beaker-reason-");
    const token = (await Bun.file(await server.addNode("gpu-4", "lab", dir4)).text()).trim();
    removeDir(dir4);
    const res = await server.api("/nodes/gpu-4/heartbeat", token, { method: "PUT", body: JSON.stringify(beat([gpu(0), gpu(1, "s9"), foreign, lost])) });
    expect(res.status).toBe(200);
    type Viewed = { gpusFree: number; gpus: Array<{ uuid: string; reason: string | null; foreignProcesses?: unknown }> };
    const asBob = (await (await server.api("/nodes/gpu-4", bob)).json()) as Viewed;
    expect(asBob.gpusFree).toBe(1);
    expect(asBob.gpus.map((g) => [g.uuid, g.reason])).toEqual([
      ["GPU-0", null],
      ["GPU-1", null],
      ["GPU-2", "busy, no session"],
      ["GPU-3", "unhealthy: the driver cannot reach this GPU: GPU is lost"],
    ]);
    expect(JSON.stringify(asBob)).not.toContain("40412");
    const asAdmin = (await (await server.api("/nodes/gpu-4", admin)).json()) as Viewed;
    expect(asAdmin.gpus[2]).toMatchObject({ reason: "busy, no session: python3 train.py (pid 40412)", foreignProcesses: [{ pid: 40412, name: "python3 train.py" }] });
  });

  test("rotate: the old token stops working, the new one works; revoke is immediate", async () => {
    const carol = await server.createUser("carol");
    const rotated = (await (await server.api("/account/token/rotate", carol, { method: "POST" })).json()) as { token: string };
    expect((await server.api("/whoami", carol)).status).toBe(401);
    expect((await server.api("/whoami", rotated.token)).status).toBe(200);
    const id = rotated.token.split("_")[1]!;
    const revoke = await server.admin(["token", "revoke", id]);
    expect(revoke).toMatchObject({ exitCode: 0, stderr: `revoked user token ${id} of carol\n` });
    expect((await server.api("/whoami", rotated.token)).status).toBe(401);
    expect((await server.admin(["user", "create", "carol"])).stderr).toBe("beaker: user carol already exists\n");
  });
});

test("two servers on one PostgreSQL agree: what one stores the other serves", async () => {
  const { SQL } = await import("bun");
  const sql = new SQL(pg.url);
  await sql.unsafe("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
  await sql.close();
  const a = new TestServer(pg.url);
  const b = new TestServer(pg.url);
  // A third one only to start at the same moment: migrations must run once, whoever gets there first.
  const c = new TestServer(pg.url);
  const dir = tempDir("beaker-replicas-");
  try {
    await Promise.all([a.start(), b.start(), c.start()]);
    const user = await a.createUser("dana");
    await a.admin(["cluster", "create", "c1"]);
    const nodeToken = (await Bun.file(await a.addNode("n1", "c1", dir)).text()).trim();
    const report = JSON.stringify(beat([gpu(0), gpu(1)]));
    expect(await (await a.api("/nodes/n1/heartbeat", nodeToken, { method: "PUT", body: report })).json()).toMatchObject({ unchanged: false });
    // The stored report's digest is in the database, not in a server's memory: the other replica knows it too.
    expect(await (await b.api("/nodes/n1/heartbeat", nodeToken, { method: "PUT", body: report })).json()).toMatchObject({ unchanged: true });
    const fromB = (await (await b.api("/clusters/c1/nodes", user)).json()) as Array<{ gpusFree: number; status: string }>;
    expect(fromB).toMatchObject([{ gpusFree: 2, status: "online" }]);
    const rotated = (await (await b.api("/account/token/rotate", user, { method: "POST" })).json()) as { token: string };
    expect((await a.api("/whoami", user)).status).toBe(401);
    expect((await a.api("/whoami", rotated.token)).status).toBe(200);
  } finally {
    await Promise.all([a.cleanup(), b.cleanup(), c.cleanup()]);
    removeDir(dir);
  }
}, 60_000);
