/**
 * The store's clusters, nodes and reports, on a fresh SQLite file: which names it takes, what a report stores and
 * answers, and which nodes and sessions each listing shows. The clock is a variable, never the wall clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError, NotFoundError, UsageError } from "../../src/errors.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import type { Heartbeat, NodeGpu, NodeSession } from "../../src/server/types.ts";
import { emptyTables } from "../store-harness.ts";

let dir: string;
let db: Db;
let store: Store;
const clock = { now: 1_000_000_000 };

// One migrated file for the whole file (a mutant runs these tests hundreds of times); every test starts on empty tables.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "beaker-server-nodes-"));
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  store = new Store(db, () => clock.now);
});
beforeEach(async () => {
  clock.now = 1_000_000_000;
  await emptyTables(db);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const gpu = (uuid: string, over: Partial<NodeGpu> = {}): NodeGpu => ({ index: 0, uuid, name: "H100", memoryMiB: 80, claimedBy: null, healthy: true, error: null, foreignProcesses: [], ...over });
const session = (id: string, user: string, over: Partial<NodeSession> = {}): NodeSession => ({
  id,
  name: id,
  user,
  gpus: [],
  image: "img",
  status: "running",
  createdAt: new Date(clock.now).toISOString(),
  startedAt: null,
  ...over,
});
const beat = (gpus: NodeGpu[], sessions: NodeSession[] = []): Heartbeat => ({ cpus: 8, memoryBytes: 1024, version: "0.1", gpus, sessions });
const failure = (p: Promise<unknown>) => p.then(() => new Error("it did not fail"), (e: unknown) => e as Error);
const admin = { name: "root", admin: true };

describe("cluster names", () => {
  test.each(["c", "C1", "gpu_a.b-c", "a".repeat(63)])("%s is taken", async (name) => {
    await store.createCluster(name);
    expect((await store.listClusters()).map((c) => c.name)).toEqual([name]);
  });
  test.each(["-c", ".c", "c!", "c d", "a".repeat(64), ""])("%p is refused", async (name) => {
    const err = await failure(store.createCluster(name));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(`cluster name "${name}" may use letters, digits, "_", "." and "-"`);
    expect(await store.listClusters()).toEqual([]);
  });
  test("a second cluster of the same name is a conflict", async () => {
    await store.createCluster("c");
    const err = await failure(store.createCluster("c"));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toBe("cluster c already exists");
  });
});

describe("adding nodes", () => {
  beforeEach(() => store.createCluster("c"));
  test.each(["n1", "N1", "gpu-01.example.org", "a".repeat(253)])("%s is a hostname", async (hostname) => {
    const { token, tokenId } = await store.addNode(hostname, "c");
    expect(await store.authenticate(token)).toEqual({ kind: "node", tokenId, hostname });
  });
  test.each(["-n1", ".n1", "n_1", "n1!", "n 1", "a".repeat(254), ""])("%p is refused", async (hostname) => {
    const err = await failure(store.addNode(hostname, "c"));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(`"${hostname}" is not a hostname`);
    expect(await store.listNodes()).toEqual([]);
  });
  test("into a cluster that does not exist: not found, saying how to make it", async () => {
    const err = await failure(store.addNode("n1", "nope"));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no cluster nope: create it with 'beaker server cluster create nope'");
  });
  test("a node of another cluster is a conflict; added again to its own, it gets a second token", async () => {
    await store.createCluster("d");
    const first = await store.addNode("n1", "c");
    const err = await failure(store.addNode("n1", "d"));
    expect(err).toBeInstanceOf(ConflictError);
    expect(err.message).toBe("node n1 is already in another cluster");
    const second = await store.addNode("n1", "c");
    expect(await store.authenticate(first.token)).toMatchObject({ hostname: "n1" });
    expect(await store.authenticate(second.token)).toMatchObject({ hostname: "n1" });
    expect((await store.listNodes()).map((n) => `${n.cluster}/${n.hostname}`)).toEqual(["c/n1"]);
  });
  test("cordoning a node that does not exist: not found", async () => {
    const err = await failure(store.setCordoned("n9", true));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no node n9");
  });
});

describe("reports", () => {
  beforeEach(() => store.createCluster("c"));
  test("a malformed token or a user token is no node's: null, never an error", async () => {
    await store.addNode("n1", "c");
    const { token } = await store.createUser("ada", true);
    expect(await store.touchNode("n1", "garbage", "d")).toBeNull();
    expect(await store.touchNode("n1", token, "d")).toBeNull();
  });
  test("a report of a node never added: not found, saying how to add it", async () => {
    const err = await failure(store.heartbeat("n9", beat([])));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no node n9: add it with 'beaker server node add n9 --cluster NAME'");
  });
  test("the answer says whether the node is cordoned, and its cluster; the counts are of free GPUs", async () => {
    await store.addNode("n1", "c");
    const gpus = [gpu("G0"), gpu("G1", { claimedBy: "s1" }), gpu("G2", { foreignProcesses: [{ pid: 1, name: "x" }] })];
    expect(await store.heartbeat("n1", beat(gpus))).toEqual({ cordoned: false, cluster: "c", unchanged: false });
    await store.setCordoned("n1", true);
    expect(await store.heartbeat("n1", beat(gpus), "d")).toEqual({ cordoned: true, cluster: "c", unchanged: false });
    await store.setCordoned("n1", false);
    expect(await store.heartbeat("n1", beat(gpus), "d")).toEqual({ cordoned: false, cluster: "c", unchanged: false });
    expect(await store.listNodes("c")).toEqual([
      { hostname: "n1", cluster: "c", cpus: 8, memoryBytes: 1024, gpuType: "H100", gpusTotal: 3, gpusFree: 1, status: "online", cordoned: false, version: "0.1", lastSeen: new Date(clock.now).toISOString() },
    ]);
  });
});

describe("listings", () => {
  beforeEach(async () => {
    await store.createCluster("c");
    await store.createCluster("d");
    await store.createCluster("empty");
    for (const [node, cluster] of [["n2", "c"], ["n1", "c"], ["m1", "d"]] as const) await store.addNode(node, cluster);
  });
  test("clusters: nodes online (heard from in the last minute, not cordoned) and their free GPUs; empty clusters count zero", async () => {
    await store.heartbeat("n1", beat([gpu("A"), gpu("B")]));
    await store.heartbeat("n2", beat([gpu("C")]));
    await store.setCordoned("n2", true);
    clock.now += 30_000;
    expect(await store.listClusters()).toEqual([
      { name: "c", nodes: 2, nodesOnline: 1, gpusFree: 2, gpusTotal: 3 },
      { name: "d", nodes: 1, nodesOnline: 0, gpusFree: 0, gpusTotal: 0 },
      { name: "empty", nodes: 0, nodesOnline: 0, gpusFree: 0, gpusTotal: 0 },
    ]);
  });
  test("nodes: every cluster's by hostname, or one cluster's; an empty cluster has none, an unknown one is not found", async () => {
    expect((await store.listNodes()).map((n) => n.hostname)).toEqual(["m1", "n1", "n2"]);
    expect((await store.listNodes("c")).map((n) => n.hostname)).toEqual(["n1", "n2"]);
    expect(await store.listNodes("empty")).toEqual([]);
    const err = await failure(store.listNodes("nope"));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no cluster nope");
  });
  test("no cluster at all: no nodes, no error", async () => {
    await emptyTables(db);
    expect(await store.listNodes()).toEqual([]);
  });
  test("placement: each GPU's model, health and freedom, and the queue's length; an empty cluster has none", async () => {
    await store.heartbeat("n1", beat([gpu("A"), gpu("B", { claimedBy: "s1" }), gpu("C", { foreignProcesses: [{ pid: 1, name: "x" }] })], [session("s1", "ada"), session("s2", "bob", { status: "queued" })]));
    const nodes = await store.listPlacement("c");
    expect(nodes.map((n) => n.hostname)).toEqual(["n1", "n2"]);
    expect(nodes[0]).toMatchObject({
      gpus: [
        { name: "H100", healthy: true, free: true },
        { name: "H100", healthy: true, free: false },
        { name: "H100", healthy: false, free: false },
      ],
      queued: 1,
    });
    expect(nodes[1]).toMatchObject({ hostname: "n2", gpus: [], queued: 0, status: "offline" });
    expect(await store.listPlacement("empty")).toEqual([]);
    const err = await failure(store.listPlacement("nope"));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no cluster nope");
  });
  test("one node: not found when unknown", async () => {
    const err = await failure(store.getNode("n9", admin));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe("no node n9");
  });
  test("sessions: by node when asked, and a user who is not admin sees only theirs", async () => {
    await store.heartbeat("n1", beat([], [session("s1", "ada"), session("s2", "bob")]));
    clock.now += 1000;
    await store.heartbeat("n2", beat([], [session("s3", "ada")]));
    clock.now -= 500;
    await store.heartbeat("m1", beat([], [session("s4", "bob")]));
    const ids = (list: Array<{ id: string }>) => list.map((s) => s.id);
    expect(ids(await store.listSessions(admin))).toEqual(["s1", "s2", "s4", "s3"]);
    expect(ids(await store.listSessions(admin, { node: "n1" }))).toEqual(["s1", "s2"]);
    expect(ids(await store.listSessions(admin, { cluster: "c" }))).toEqual(["s1", "s2", "s3"]);
    expect(ids(await store.listSessions({ name: "ada", admin: false }))).toEqual(["s1", "s3"]);
    expect(ids(await store.listSessions({ name: "ada", admin: false }, { node: "n1", everyone: true }))).toEqual(["s1", "s2"]);
  });
});
