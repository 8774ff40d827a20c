/**
 * Failed token attempts on the server are limited (issue 26, finding 8): per source address, and per token id where
 * the token names one; 429 with Retry-After, and a log line when a limit is reached.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createHandler } from "../../src/server/app.ts";
import { TokenAttempts, attemptLimits } from "../../src/server/attempts.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { removeDir, tempDir } from "../harness.ts";

const bad = (n: number, id = n.toString(16).padStart(10, "0")) => `bkr_${id}_${"A".repeat(42)}${n % 10}`;

describe("the limiter", () => {
  const limits = { perAddress: 5, perToken: 3, windowMs: 60_000, rememberGoodMs: 600_000 };
  const make = () => {
    const clock = { now: 1_000_000 };
    const lines: string[] = [];
    return { clock, lines, attempts: new TokenAttempts(limits, () => clock.now, (l) => lines.push(l)) };
  };

  test("an address is refused once it reaches its failures, with the seconds left in the window, and logged once", () => {
    const { clock, lines, attempts } = make();
    for (let i = 0; i < 5; i++) {
      expect(attempts.refusal("10.0.0.9", bad(i))).toBeNull();
      attempts.failed("10.0.0.9", bad(i));
    }
    clock.now += 20_000;
    expect(attempts.refusal("10.0.0.9", bad(99))).toBe(40);
    expect(attempts.refusal("10.0.0.8", bad(99))).toBeNull();
    expect(lines).toEqual(["too many failed token attempts from 10.0.0.9 (5 in 60 s): its tokens are refused for 60 s"]);
    clock.now += 40_001;
    expect(attempts.refusal("10.0.0.9", bad(99))).toBeNull();
  });

  test("a token id that keeps failing is refused from any address; its token never appears in the log", () => {
    const { lines, attempts } = make();
    const id = "abcdef0123";
    for (let i = 0; i < 3; i++) attempts.failed(`10.0.1.${i}`, bad(i, id));
    expect(attempts.refusal("10.0.2.1", bad(7, id))).toBe(60);
    expect(attempts.refusal("10.0.2.1", bad(7))).toBeNull();
    expect(lines).toEqual([`too many failed attempts with token id ${id} (3 in 60 s): it is refused for 60 s`]);
    expect(lines.join()).not.toContain("AAAA");
  });

  test("a token that worked recently still works from a refused address (users sharing a login node keep working)", () => {
    const { attempts } = make();
    const good = bad(1234);
    attempts.succeeded(good);
    for (let i = 0; i < 5; i++) attempts.failed("10.0.0.9", bad(i));
    expect(attempts.refusal("10.0.0.9", good)).toBeNull();
    expect(attempts.refusal("10.0.0.9", bad(4321))).not.toBeNull();
  });

  test("defaults: 20 failures per address and 5 per token id in a minute", () => {
    expect(attemptLimits).toMatchObject({ perAddress: 20, perToken: 5, windowMs: 60_000 });
  });
});

describe("the server's API", () => {
  let dir = "";
  let db: Db;
  let handler: ReturnType<typeof createHandler>;
  const handle = (req: Request, address: string) => handler(req, { requestIP: () => ({ address }) });
  let good = "";
  const lines: string[] = [];
  beforeAll(async () => {
    dir = tempDir("beaker-attempts-");
    db = openDb(`sqlite://${join(dir, "s.db")}`);
    await migrate(db);
    const store = new Store(db);
    good = (await store.createUser("ada", false)).token;
    handler = createHandler({ store, releasesDir: null, log: (l) => lines.push(l) });
  });
  afterAll(async () => {
    await db.close();
    removeDir(dir);
  });
  const whoami = (token: string, from: string) => handle(new Request("http://s/api/v1/whoami", { headers: { authorization: `Bearer ${token}` } }), from);

  test("a burst of bad tokens gets 429 with Retry-After and a log line; a good token still works; another address is untouched", async () => {
    expect((await whoami(good, "192.0.2.7")).status).toBe(200);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const res = await whoami(bad(i), "192.0.2.7");
      statuses.push(res.status);
      if (res.status === 429) retryAfter ??= res.headers.get("retry-after");
    }
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(lines.some((l) => l.startsWith("too many failed token attempts from 192.0.2.7"))).toBe(true);
    expect((await whoami(good, "192.0.2.7")).status).toBe(200);
    expect((await whoami(bad(99), "192.0.2.8")).status).toBe(401);
  });

  test("a node's heartbeat still gets through when a user on that node sprays bad tokens from its address", async () => {
    const store = new Store(db);
    await store.createCluster("lab");
    const nodeToken = (await store.addNode("gpu1", "lab")).token;
    const beat = () =>
      handle(new Request("http://s/api/v1/nodes/gpu1/heartbeat", { method: "PUT", headers: { authorization: `Bearer ${nodeToken}` }, body: JSON.stringify({ cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [] }) }), "203.0.113.5");
    expect((await beat()).status).toBe(200);
    for (let i = 0; i < 25; i++) await whoami(bad(900 + i), "203.0.113.5");
    expect((await whoami(bad(999), "203.0.113.5")).status).toBe(429);
    expect((await beat()).status).toBe(200);
  });

  test("the web sign-in counts and refuses the same way", async () => {
    const login = (token: string) => handle(new Request("http://s/login", { method: "POST", body: new URLSearchParams({ token }) }), "198.51.100.4");
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await login(bad(500 + i))).status);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
  });
});
