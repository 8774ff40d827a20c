/** Port tickets: random, single use, 60 s, bound to the web session and one (session, port); sign-ins end with it. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { PortLogins, ticketMs } from "../../src/server/ports/logins.ts";
import { Store } from "../../src/server/store.ts";

let dir: string;
let db: Db;
let store: Store;
let logins: PortLogins;
let now = 1_000_000;
let web: string;
const target = { sessionId: "0123456789ab", port: 8888 };

beforeEach(async () => {
  now = 1_000_000;
  dir = mkdtempSync(join(tmpdir(), "beaker-port-logins-"));
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  store = new Store(db, () => now);
  logins = new PortLogins(db, () => now);
  const { token } = await store.createUser("ada", false);
  const who = await store.authenticate(token);
  if (who?.kind !== "user") throw new Error("no user");
  web = await store.createWebSession(who);
});
afterEach(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("tickets", () => {
  test("random, and good once", async () => {
    const a = await logins.issueTicket(web, target);
    const b = await logins.issueTicket(web, target);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const id = await logins.redeem(a, target);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await logins.redeem(a, target)).toBeNull();
    expect(await logins.redeem(b, target)).not.toBeNull();
  });
  test("expired after 60 s", async () => {
    const t = await logins.issueTicket(web, target);
    now += ticketMs + 1;
    expect(await logins.redeem(t, target)).toBeNull();
  });
  test("good just before it expires", async () => {
    const t = await logins.issueTicket(web, target);
    now += ticketMs;
    expect(await logins.redeem(t, target)).not.toBeNull();
  });
  test("bound to its session and port; presented elsewhere it is spent", async () => {
    const t = await logins.issueTicket(web, target);
    expect(await logins.redeem(t, { ...target, port: 8889 })).toBeNull();
    expect(await logins.redeem(t, target)).toBeNull();
    const u = await logins.issueTicket(web, target);
    expect(await logins.redeem(u, { sessionId: "ffffffffffff", port: 8888 })).toBeNull();
  });
  test("dead with its web session", async () => {
    const t = await logins.issueTicket(web, target);
    await store.deleteWebSession(web);
    expect(await logins.redeem(t, target)).toBeNull();
  });
  test("malformed or unknown tickets", async () => {
    for (const t of ["", "x", "a".repeat(43), "a".repeat(44), "../../../../etc/passwd"]) expect(await logins.redeem(t, target)).toBeNull();
  });
});

describe("sign-ins", () => {
  test("good on their own origin only, for the web session's user", async () => {
    const id = (await logins.redeem(await logins.issueTicket(web, target), target))!;
    expect(await logins.lookup(id, target)).toEqual({ ...target, user: { name: "ada", admin: false } });
    expect(await logins.lookup(id, { ...target, port: 8889 })).toBeNull();
    expect(await logins.lookup(id, { ...target, sessionId: "ffffffffffff" })).toBeNull();
    expect(await logins.lookup("a".repeat(43), target)).toBeNull();
  });
  test("end with the web session: sign-out, expiry, a revoked token", async () => {
    const id = (await logins.redeem(await logins.issueTicket(web, target), target))!;
    expect(await logins.expiresAt(id)).toBe(now + 12 * 3600 * 1000);
    now += 12 * 3600 * 1000 + 1;
    expect(await logins.lookup(id, target)).toBeNull();
    now = 1_000_000;
    expect(await logins.lookup(id, target)).not.toBeNull();
    await store.deleteWebSession(web);
    expect(await logins.lookup(id, target)).toBeNull();
  });
  test("a revoked token ends them", async () => {
    const id = (await logins.redeem(await logins.issueTicket(web, target), target))!;
    const [{ token_id }] = await db.sql`SELECT token_id FROM web_sessions`;
    await store.revokeToken(String(token_id));
    expect(await logins.lookup(id, target)).toBeNull();
  });
});
