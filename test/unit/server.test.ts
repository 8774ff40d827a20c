/** Pure pieces of the server: node status, GPU type, HTML escaping, listen addresses, body validation, tokens. */
import { describe, expect, test } from "bun:test";
import { escapeHtml, html } from "../../src/server/html.ts";
import { parseListen } from "../../src/server/run.ts";
import { parseToken, newToken, secretMatches } from "../../src/server/tokens.ts";
import { gpuTypeOf, nodeStatus, offlineAfterMs } from "../../src/server/types.ts";
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

test("a node silent for a minute shows as offline (the store with a clock it is given)", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { migrate, openDb } = await import("../../src/server/db.ts");
  const { Store } = await import("../../src/server/store.ts");
  const dir = mkdtempSync(join(tmpdir(), "beaker-store-"));
  const db = openDb(`sqlite://${join(dir, "s.db")}`);
  try {
    await migrate(db);
    let now = 1_000_000;
    const store = new Store(db, () => now);
    await store.createCluster("c");
    await store.addNode("n1", "c");
    const gpu = { index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 1, claimedBy: null, healthy: true };
    await store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [gpu], sessions: [] });
    expect((await store.listNodes("c"))[0]).toMatchObject({ status: "online", gpusFree: 1 });
    now += 59_000;
    expect((await store.listNodes("c"))[0]!.status).toBe("online");
    now += 2_000;
    expect((await store.listNodes("c"))[0]!.status).toBe("offline");
    expect(await store.listClusters()).toEqual([{ name: "c", nodes: 1, nodesOnline: 0, gpusFree: 0, gpusTotal: 1 }]);
    expect(await migrate(db)).toBe(0);
  } finally {
    await db.sql.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
