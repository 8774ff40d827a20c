/**
 * Who the server takes a token for: revoked and rotated user tokens are refused, a token of one kind never passes as the
 * other, and a node token reports for its own node only. The store runs on a fresh SQLite file and the handler is
 * called in process.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandler } from "../../src/server/app.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { parseToken } from "../../src/server/tokens.ts";

let dir: string;
let db: Db;
let store: Store;
let handle: (req: Request) => Promise<Response>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "beaker-server-auth-"));
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  store = new Store(db, () => 1_000_000);
  handle = createHandler({ store, releasesDir: null, log: () => {} });
});
afterEach(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const whoami = (token: string) => handle(new Request("http://server/api/v1/whoami", { headers: { authorization: `Bearer ${token}` } }));
const report = (node: string, token: string) =>
  handle(new Request(`http://server/api/v1/nodes/${node}/heartbeat`, { method: "PUT", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [] }) }));

describe("user tokens", () => {
  test("a revoked token is refused, by the store and by the API", async () => {
    const { token } = await store.createUser("ada", false);
    expect((await whoami(token)).status).toBe(200);
    await store.revokeToken(token);
    expect(await store.authenticate(token)).toBeNull();
    const res = await whoami(token);
    expect(res.status).toBe(401);
  });
  test("a rotated token is refused and its successor taken", async () => {
    const { token } = await store.createUser("ada", false);
    const principal = await store.authenticate(token);
    if (principal?.kind !== "user") throw new Error("the new user's token was not taken");
    const rotated = await store.rotateToken(principal);
    expect(await store.authenticate(token)).toBeNull();
    expect(await store.authenticate(rotated.token)).toMatchObject({ kind: "user", user: { name: "ada", admin: false } });
  });
  test("a token with the right ID and a wrong secret, or a malformed one, is refused", async () => {
    const { token } = await store.createUser("ada", true);
    const last = token.at(-1) === "A" ? "B" : "A";
    expect(await store.authenticate(`${token.slice(0, -1)}${last}`)).toBeNull();
    expect(await store.authenticate("bkr_nothex____")).toBeNull();
    expect(await store.authenticate(token)).toMatchObject({ kind: "user", user: { name: "ada", admin: true } });
  });
});

describe("node tokens", () => {
  test("a node token's ID and secret under the user prefix is no user token", async () => {
    await store.createCluster("c");
    const { token } = await store.addNode("n1", "c");
    const { id, secret } = parseToken(token)!;
    expect(await store.authenticate(`bkr_${id}_${secret}`)).toBeNull();
    expect(await store.authenticate(token)).toEqual({ kind: "node", tokenId: id, hostname: "n1" });
  });
  test("a node token reports for its own node only", async () => {
    await store.createCluster("c");
    const n1 = await store.addNode("n1", "c");
    await store.addNode("n2", "c");
    expect((await report("n1", n1.token)).status).toBe(200);
    const res = await report("n2", n1.token);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("this token reports for node n1 only");
  });
  test("a user token cannot report as a node, and a node token cannot act as a user", async () => {
    await store.createCluster("c");
    const n1 = await store.addNode("n1", "c");
    const { token } = await store.createUser("ada", true);
    const res = await report("n1", token);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("only a node token may report a node");
    const asUser = await whoami(n1.token);
    expect(asUser.status).toBe(403);
    expect(await asUser.text()).toContain("a node token cannot do this");
  });
  test("a revoked node token reports no more", async () => {
    await store.createCluster("c");
    const n1 = await store.addNode("n1", "c");
    expect((await report("n1", n1.token)).status).toBe(200);
    await store.revokeToken(n1.token);
    expect((await report("n1", n1.token)).status).toBe(401);
  });
});
