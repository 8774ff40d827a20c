/**
 * The store's users, tokens and web sign-ins, on a fresh SQLite file: which names it takes, what a token or a cookie
 * is taken for and for how long, and what revoking takes away. The clock is a variable, never the wall clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConflictError, NotFoundError, UsageError } from "../../src/errors.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store, type Principal } from "../../src/server/store.ts";
import { parseToken } from "../../src/server/tokens.ts";
import { emptyTables } from "../store-harness.ts";

let dir: string;
let db: Db;
let store: Store;
const clock = { now: 1_000_000 };

// One migrated file for the whole file (a mutant runs these tests hundreds of times); every test starts on empty tables.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "beaker-server-store-"));
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  store = new Store(db, () => clock.now);
});
beforeEach(async () => {
  clock.now = 1_000_000;
  await emptyTables(db);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const userOf = async (token: string): Promise<Extract<Principal, { kind: "user" }>> => {
  const p = await store.authenticate(token);
  if (p?.kind !== "user") throw new Error(`not a user token: ${JSON.stringify(p)}`);
  return p;
};
const h = 3600 * 1000;

describe("user names", () => {
  test.each(["ada", "_svc", "a.b-c_9", "a".repeat(32)])("%s is taken", async (name) => {
    const made = await store.createUser(name, false);
    expect(made.user).toEqual({ name, admin: false });
    expect(made.tokenId).toBe(parseToken(made.token)!.id);
  });
  test.each(["Ada", "9ada", "-ada", "ada!", "ada ", "a".repeat(33), ""])("%p is refused, saying what a name may be", async (name) => {
    const err = await store.createUser(name, false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`user name "${name}" must be lowercase letters, digits, "_", "." or "-" (up to 32)`);
    expect(await store.listUsers()).toEqual([]);
  });
  test("a second user of the same name is a conflict, and the first keeps its one token", async () => {
    await store.createUser("ada", true);
    const err = await store.createUser("ada", false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toBe("user ada already exists");
    expect(await store.listUsers()).toEqual([{ name: "ada", admin: true, tokens: 1 }]);
  });
});

describe("users and their tokens", () => {
  test("the list: by name, who is admin, and how many tokens still work", async () => {
    const bob = await store.createUser("bob", true);
    await store.createUser("ada", false);
    await store.issueUserToken("bob");
    await store.revokeToken(bob.token);
    expect(await store.listUsers()).toEqual([
      { name: "ada", admin: false, tokens: 1 },
      { name: "bob", admin: true, tokens: 1 },
    ]);
  });
  test("a token issued for an existing user is a user token that signs in as them", async () => {
    await store.createUser("ada", true);
    const issued = await store.issueUserToken("ada");
    expect(issued.token.startsWith(`bkr_${issued.tokenId}_`)).toBe(true);
    expect(await store.authenticate(issued.token)).toMatchObject({ kind: "user", tokenId: issued.tokenId, user: { name: "ada", admin: true } });
  });
  test("no token for a user who does not exist", async () => {
    const err = await store.issueUserToken("nobody").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe("no user nobody");
  });
});

describe("revoking a token", () => {
  test.each<[string, (token: string, id: string) => string]>([
    ["the whole token", (token) => token],
    ["its id", (_, id) => id],
    ["its id with the prefix", (_, id) => `bkr_${id}`],
    ["a copy cut short in the secret", (token) => token.slice(0, 20)],
  ])("by %s: it signs in no more, and the answer names it and its owner", async (_, form) => {
    const { token, tokenId } = await store.createUser("ada", false);
    expect(await store.revokeToken(form(token, tokenId))).toEqual({ id: tokenId, kind: "user", owner: "ada" });
    expect(await store.authenticate(token)).toBeNull();
  });
  test("a node token: its owner is the node", async () => {
    await store.createCluster("c");
    const { token, tokenId } = await store.addNode("n1", "c");
    expect(await store.revokeToken(tokenId)).toEqual({ id: tokenId, kind: "node", owner: "n1" });
    expect(await store.authenticate(token)).toBeNull();
  });
  test("an unknown token is not found", async () => {
    const err = await store.revokeToken("0123456789").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe("no token 0123456789");
  });
  test("revoking twice keeps the time of the first revocation", async () => {
    const { tokenId } = await store.createUser("ada", false);
    await store.revokeToken(tokenId);
    clock.now += h;
    await store.revokeToken(tokenId);
    const [row] = await db.sql`SELECT revoked_at FROM tokens WHERE id = ${tokenId}`;
    expect(Number(row.revoked_at)).toBe(1_000_000);
  });
});

describe("web sign-in", () => {
  test("the cookie is 32 random bytes, URL-safe, and names the user and the token it was made with", async () => {
    const { token } = await store.createUser("ada", true);
    const ada = await userOf(token);
    const cookie = await store.createWebSession(ada);
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await store.createWebSession(ada)).not.toBe(cookie);
    expect(await store.webSessionUser(cookie)).toEqual({ kind: "user", userId: ada.userId, tokenId: ada.tokenId, user: { name: "ada", admin: true } });
  });
  test("a user who is not admin is not made one by signing in", async () => {
    const ada = await userOf((await store.createUser("ada", false)).token);
    expect((await store.webSessionUser(await store.createWebSession(ada)))!.user).toEqual({ name: "ada", admin: false });
  });
  test("the cookie is kept as its hash: the table never holds it", async () => {
    const ada = await userOf((await store.createUser("ada", false)).token);
    const cookie = await store.createWebSession(ada);
    const [row] = await db.sql`SELECT id_hash FROM web_sessions`;
    expect(row.id_hash).toBe(new Bun.CryptoHasher("sha256").update(cookie).digest("hex"));
  });
  test("it lasts 12 hours to the millisecond", async () => {
    const ada = await userOf((await store.createUser("ada", false)).token);
    const cookie = await store.createWebSession(ada);
    clock.now += 12 * h;
    expect(await store.webSessionUser(cookie)).not.toBeNull();
    clock.now += 1;
    expect(await store.webSessionUser(cookie)).toBeNull();
  });
  test("an unknown cookie is nobody", async () => {
    await store.createWebSession(await userOf((await store.createUser("ada", false)).token));
    expect(await store.webSessionUser("x".repeat(43))).toBeNull();
  });
  test("signing out ends that sign-in only", async () => {
    const ada = await userOf((await store.createUser("ada", false)).token);
    const [one, two] = [await store.createWebSession(ada), await store.createWebSession(ada)];
    await store.deleteWebSession(one);
    expect(await store.webSessionUser(one)).toBeNull();
    expect(await store.webSessionUser(two)).not.toBeNull();
  });
  test("revoking or rotating the token ends the sign-ins made with it", async () => {
    const ada = await userOf((await store.createUser("ada", false)).token);
    const cookie = await store.createWebSession(ada);
    const rotated = await store.rotateToken(ada);
    expect(await store.webSessionUser(cookie)).toBeNull();
    const fresh = await store.createWebSession(await userOf(rotated.token));
    await store.revokeToken(rotated.tokenId);
    expect(await store.webSessionUser(fresh)).toBeNull();
  });
});
