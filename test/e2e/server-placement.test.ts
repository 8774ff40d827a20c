/** `GET /clusters/NAME/nodes?placement=1`: what a laptop's CLI picks a node from, on SQLite and on PostgreSQL. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TestPostgres, TestServer } from "../server-harness.ts";
import { removeDir, tempDir } from "../harness.ts";

const pg = new TestPostgres();
beforeAll(() => pg.start());
afterAll(() => pg.stop());

const gpu = (i: number, name: string, claimedBy: string | null = null, healthy = true) => ({ index: i, uuid: `GPU-${i}`, name, memoryMiB: 81559, claimedBy, healthy });
const session = (id: string, status: string) => ({ id, name: `alice-${id}`, user: "alice", gpus: [], image: "img", status, createdAt: new Date().toISOString(), startedAt: null });

describe.each(["sqlite", "postgres"])("on %s", (kind) => {
  let server: TestServer;
  let alice: string;
  const dir = tempDir("beaker-placement-");

  beforeAll(async () => {
    if (kind === "postgres") {
      const { SQL } = await import("bun");
      const sql = new SQL(pg.url);
      await sql.unsafe("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
      await sql.close();
    }
    server = new TestServer(kind === "postgres" ? pg.url : undefined);
    alice = await server.createUser("alice");
    await server.admin(["cluster", "create", "lab"]);
    await server.admin(["cluster", "create", "empty"]);
    const token = (await Bun.file(await server.addNode("gpu-1", "lab", dir)).text()).trim();
    await server.addNode("gpu-2", "lab", dir);
    await server.start();
    const beat = {
      cpus: 64,
      memoryBytes: 2 ** 30,
      version: "0.1.0",
      gpus: [
        gpu(0, "NVIDIA H100 80GB HBM3"),
        gpu(1, "NVIDIA H100 80GB HBM3", "s1"),
        gpu(2, "NVIDIA H100 80GB HBM3", null, false),
        gpu(3, "NVIDIA A100-SXM4-80GB"),
        // Someone's process outside Beaker: the executor hands it out to nobody, so placement counts it out too.
        { ...gpu(4, "NVIDIA A100-SXM4-80GB"), error: null, foreignProcesses: [{ pid: 4242, name: "python" }] },
      ],
      sessions: [session("s1", "running"), session("s2", "queued"), session("s3", "queued")],
    };
    expect((await server.api("/nodes/gpu-1/heartbeat", token, { method: "PUT", body: JSON.stringify(beat) })).status).toBe(200);
  });
  afterAll(async () => {
    await server.cleanup();
    removeDir(dir);
  });

  test("each GPU's model, health and whether it is free now; the queue's length; nodes never heard from too", async () => {
    const res = await server.api("/clusters/lab/nodes?placement=1", alice);
    expect(res.status).toBe(200);
    const nodes = (await res.json()) as Array<Record<string, unknown>>;
    expect(nodes.map((n) => n.hostname)).toEqual(["gpu-1", "gpu-2"]);
    expect(nodes[0]).toMatchObject({
      status: "online",
      gpusFree: 2,
      queued: 2,
      gpus: [
        { name: "NVIDIA H100 80GB HBM3", healthy: true, free: true },
        { name: "NVIDIA H100 80GB HBM3", healthy: true, free: false },
        { name: "NVIDIA H100 80GB HBM3", healthy: false, free: false },
        { name: "NVIDIA A100-SXM4-80GB", healthy: true, free: true },
        { name: "NVIDIA A100-SXM4-80GB", healthy: false, free: false },
      ],
    });
    expect(nodes[1]).toMatchObject({ status: "offline", gpus: [], queued: 0 });
    const plain = (await (await server.api("/clusters/lab/nodes", alice)).json()) as Array<Record<string, unknown>>;
    expect(plain[0]).not.toHaveProperty("queued");
  });

  test("an empty cluster is an empty list; an unknown one is 404; a token is needed", async () => {
    expect(await (await server.api("/clusters/empty/nodes?placement=1", alice)).json()).toEqual([]);
    expect((await server.api("/clusters/nope/nodes?placement=1", alice)).status).toBe(404);
    expect((await server.api("/clusters/lab/nodes?placement=1", null)).status).toBe(401);
  });
});
