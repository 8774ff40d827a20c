/** Pure pieces of the server: node status, GPU type, HTML escaping, listen addresses, body validation, tokens. */
import { describe, expect, test } from "bun:test";
import { escapeHtml, html } from "../../src/server/html.ts";
import { parseListen } from "../../src/server/run.ts";
import { parseToken, newToken, secretMatches } from "../../src/server/tokens.ts";
import { gpuIsFree, gpuTypeOf, gpuUnavailableReason, nodeStatus, offlineAfterMs, type NodeGpu } from "../../src/server/types.ts";
import { heartbeatShape, validate } from "../../src/server/validate.ts";

describe("nodeStatus", () => {
  const now = 1_000_000_000;
  test.each([
    [null, false, "offline"],
    [now - 1000, false, "online"],
    [now - 1000, true, "cordoned"],
    [now - offlineAfterMs - 1, false, "offline"],
    [now - offlineAfterMs - 1, true, "offline"],
  ] as const)("last seen %p, cordoned %p -> %s", (lastSeen, cordoned, expected) => {
    expect(nodeStatus(lastSeen, cordoned, now)).toBe(expected);
  });
});

test("gpuTypeOf: the most common model; null without GPUs", () => {
  const g = (name: string | null) => ({ index: 0, uuid: "u", name, memoryMiB: 1, claimedBy: null, healthy: true });
  expect(gpuTypeOf([g("A100"), g("H100"), g("H100")])).toBe("H100");
  expect(gpuTypeOf([])).toBeNull();
  expect(gpuTypeOf([g(null)])).toBeNull();
});

describe("why a GPU is unavailable, in words for the viewer", () => {
  const gpu = (fields: Partial<NodeGpu>): NodeGpu => ({ index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 1, claimedBy: null, healthy: true, error: null, foreignProcesses: [], ...fields });
  const busy = gpu({ foreignProcesses: [{ pid: 40412, name: "python3 train.py" }, { pid: 7, name: "" }] });
  const lost = gpu({ healthy: false, error: "the driver cannot reach this GPU: GPU is lost" });
  test.each([
    ["free", gpu({}), false, null, true],
    ["held by a session", gpu({ claimedBy: "s1" }), false, null, false],
    ["busy, to a user", busy, false, "busy, no session", false],
    ["busy, to an admin", busy, true, "busy, no session: python3 train.py (pid 40412), ? (pid 7)", false],
    ["held, with a process of someone else", gpu({ claimedBy: "s1", foreignProcesses: [{ pid: 1, name: "x" }] }), true, null, false],
    ["unhealthy", lost, false, "unhealthy: the driver cannot reach this GPU: GPU is lost", false],
    ["unhealthy while held", gpu({ healthy: false, error: "Xid 79", claimedBy: "s1" }), false, "unhealthy: Xid 79", false],
    ["unhealthy without words", gpu({ healthy: false, error: null }), false, "unhealthy", false],
    ["from an executor that sent no reason", { index: 0, uuid: "u", name: null, memoryMiB: null, claimedBy: null, healthy: false }, true, "unavailable", false],
  ] as const)("%s", (_, g, admin, reason, free) => {
    expect(gpuUnavailableReason(g, admin)).toBe(reason);
    expect(gpuIsFree(g)).toBe(free);
  });
});

test("html escapes every interpolation, nested templates pass through", () => {
  const evil = `<img src=x onerror="alert('1')">&`;
  expect(html`<p title="${evil}">${evil}</p>`.text).toBe(`<p title="${escapeHtml(evil)}">${escapeHtml(evil)}</p>`);
  expect(escapeHtml(evil)).not.toMatch(/[<>"']/);
  expect(html`<ul>${["<a>", html`<li>ok</li>`]}</ul>`.text).toBe("<ul>&#60;a&#62;<li>ok</li></ul>");
});

test.each([
  ["8080", { hostname: "0.0.0.0", port: 8080 }],
  [":8080", { hostname: "0.0.0.0", port: 8080 }],
  ["127.0.0.1:9000", { hostname: "127.0.0.1", port: 9000 }],
  ["[::1]:9000", { hostname: "::1", port: 9000 }],
])("parseListen(%p)", (input, expected) => {
  expect(parseListen(input)).toEqual(expected);
});

test("parseListen refuses nonsense", () => {
  expect(() => parseListen("host:99999")).toThrow(/must be PORT or HOST:PORT/);
  expect(() => parseListen("abc")).toThrow(/must be PORT or HOST:PORT/);
});

describe("validate", () => {
  const ok = { cpus: 1, memoryBytes: 2, version: "v", gpus: [], sessions: [] };
  test("accepts a good heartbeat, optional fields null", () => {
    const gpus = [{ index: null, uuid: "GPU-1", name: null, memoryMiB: null, claimedBy: null, healthy: true }];
    expect(validate({ ...ok, gpus }, heartbeatShape)).toEqual({ ...ok, gpus });
  });
  test("foreignProcesses may be missing or null (older executors), and is checked when present", () => {
    const g = { index: 0, uuid: "GPU-1", name: null, memoryMiB: null, claimedBy: null, healthy: true };
    expect(() => validate({ ...ok, gpus: [g, { ...g, foreignProcesses: null, error: null }] }, heartbeatShape)).not.toThrow();
    expect(() => validate({ ...ok, gpus: [{ ...g, foreignProcesses: [{ pid: "1", name: "x" }] }] }, heartbeatShape)).toThrow(
      "body.gpus[0].foreignProcesses[0].pid must be a number",
    );
    expect(() => validate({ ...ok, gpus: [{ ...g, foreignProcesses: {} }] }, heartbeatShape)).toThrow("body.gpus[0].foreignProcesses must be a list");
  });
  test.each([
    [{ ...ok, more: 1 }, "unknown field body.more"],
    [{ ...ok, cpus: Number.NaN }, "body.cpus must be a number"],
    [{ ...ok, gpus: {} }, "body.gpus must be a list"],
    [{ ...ok, sessions: [{}] }, "body.sessions[0].id must be a string"],
    [[], "body must be an object"],
  ])("refuses %p", (body, message) => {
    expect(() => validate(body, heartbeatShape)).toThrow(message);
  });
});

test("tokens: 32 random bytes, parsed back, matched in constant time against the stored hash only", () => {
  const a = newToken("user");
  const b = newToken("user");
  expect(a.token).not.toBe(b.token);
  const parsed = parseToken(a.token)!;
  expect(Buffer.from(parsed.secret, "base64url")).toHaveLength(32);
  expect(secretMatches(parsed.secret, a.hash)).toBe(true);
  expect(secretMatches(parsed.secret, b.hash)).toBe(false);
  expect(a.hash).not.toContain(parsed.secret);
  expect(parseToken("bkr_zz_abc")).toBeNull();
  expect(parseToken(newToken("node").token)!.kind).toBe("node");
});

/** A store on a fresh SQLite file, with a clock the test moves. */
async function withStore(body: (store: import("../../src/server/store.ts").Store, clock: { now: number }) => Promise<void>): Promise<void> {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { migrate, openDb } = await import("../../src/server/db.ts");
  const { Store } = await import("../../src/server/store.ts");
  const dir = mkdtempSync(join(tmpdir(), "beaker-store-"));
  const db = openDb(`sqlite://${join(dir, "s.db")}`);
  try {
    await migrate(db);
    const clock = { now: 1_000_000 };
    await body(new Store(db, () => clock.now), clock);
    expect(await migrate(db)).toBe(0);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const h100 = { index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 1, claimedBy: null, healthy: true };

test("a node silent for a minute shows as offline (the store with a clock it is given)", () =>
  withStore(async (store, clock) => {
    await store.createCluster("c");
    await store.addNode("n1", "c");
    await store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [h100], sessions: [] });
    expect((await store.listNodes("c"))[0]).toMatchObject({ status: "online", gpusFree: 1 });
    clock.now += 59_000;
    expect((await store.listNodes("c"))[0]!.status).toBe("online");
    clock.now += 2_000;
    expect((await store.listNodes("c"))[0]!.status).toBe("offline");
    expect(await store.listClusters()).toEqual([{ name: "c", nodes: 1, nodesOnline: 0, gpusFree: 0, gpusTotal: 1 }]);
  }));

test("a report with the stored digest only moves last_seen; the token is checked in the same statement, so revocation counts at the next report", () =>
  withStore(async (store, clock) => {
    await store.createCluster("c");
    const { token } = await store.addNode("n1", "c");
    const other = await store.addNode("n2", "c");
    expect(await store.touchNode("n1", token, "d1")).toEqual({ cordoned: false, cluster: "c", unchanged: false });
    await store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [h100], sessions: [] }, "d1");
    clock.now += 30_000;
    expect(await store.touchNode("n1", token, "d1")).toEqual({ cordoned: false, cluster: "c", unchanged: true });
    expect((await store.listNodes("c"))[0]).toMatchObject({ lastSeen: new Date(clock.now).toISOString(), gpusFree: 1 });
    expect((await store.touchNode("n1", token, "d2"))!.unchanged).toBe(false);
    expect(await store.touchNode("n1", other.token, "d1")).toBeNull();
    expect(await store.touchNode("n1", token.replace(/.$/, token.endsWith("A") ? "B" : "A"), "d1")).toBeNull();
    await store.setCordoned("n1", true);
    expect(await store.touchNode("n1", token, "d1")).toEqual({ cordoned: true, cluster: "c", unchanged: true });
    await store.revokeToken(token);
    expect(await store.touchNode("n1", token, "d1")).toBeNull();
  }));

test("session lists: a user sees their own sessions across nodes (names with LIKE's wildcards too), an admin everyone's, a node's page all of its", () =>
  withStore(async (store) => {
    await store.createCluster("c");
    await store.createCluster("d");
    await store.addNode("n1", "c");
    await store.addNode("n2", "c");
    await store.addNode("n3", "d");
    const session = (id: string, user: string, createdAt: string) => ({ id, name: id, user, gpus: [], image: "i", status: "running", createdAt, startedAt: null });
    const report = (sessions: ReturnType<typeof session>[]) => ({ cpus: 1, memoryBytes: 1, version: "v", gpus: [h100], sessions });
    await store.heartbeat("n1", report([session("a", "ann_b", "2024-01-01T00:00:02Z"), session("b", "annxb", "2024-01-01T00:00:01Z")]));
    await store.heartbeat("n2", report([session("c", "ann_b", "2024-01-01T00:00:00Z"), session("d", "ann%", "2024-01-01T00:00:03Z")]));
    await store.heartbeat("n3", report([session("e", "ann_b", "2024-01-01T00:00:04Z")]));
    const ids = (list: Array<{ id: string }>) => list.map((s) => s.id);
    const viewer = (name: string, admin = false) => ({ name, admin });
    expect(ids(await store.listSessions(viewer("ann_b"), { cluster: "c" }))).toEqual(["c", "a"]);
    expect(ids(await store.listSessions(viewer("ann_b")))).toEqual(["c", "a", "e"]);
    expect(ids(await store.listSessions(viewer("annxb")))).toEqual(["b"]);
    expect(ids(await store.listSessions(viewer("ann%")))).toEqual(["d"]);
    expect(ids(await store.listSessions(viewer("ann")))).toEqual([]);
    expect(ids(await store.listSessions(viewer("root", true), { cluster: "c" }))).toEqual(["c", "b", "a", "d"]);
    expect(ids((await store.getNode("n1", viewer("annxb"))).sessions)).toEqual(["a", "b"]);
    await expect(store.listSessions(viewer("ann_b"), { cluster: "nope" })).rejects.toThrow("no cluster nope");
    // A node that reports no sessions any more drops out of every list.
    await store.heartbeat("n2", report([]));
    expect(ids(await store.listSessions(viewer("ann_b"), { cluster: "c" }))).toEqual(["a"]);
  }));
