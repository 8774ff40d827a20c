/** Without `portsDomain` the feature is off: the hand-off path and the pages say so in one line, and nothing is proxied. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHandler } from "../../src/server/app.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { session } from "../ports-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "beaker-ports-off-"));
let db: Db;
let handle: (req: Request) => Promise<Response>;
let cookie: string;
const id = "0123456789ab";

beforeAll(async () => {
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
  const store = new Store(db);
  const { token } = await store.createUser("ada", false);
  const who = await store.authenticate(token);
  if (who?.kind !== "user") throw new Error("no user");
  cookie = `beaker_session=${await store.createWebSession(who)}`;
  await store.createCluster("lab");
  await store.addNode("n1", "lab");
  await store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [session(id, "ada")] });
  handle = createHandler({ store, releasesDir: null, log: () => {} });
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the hand-off path says ports are off and an admin sets portsDomain", async () => {
  const res = await handle(new Request(`http://server/sessions/${id}/ports/8888/`, { headers: { cookie } }));
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toContain("Ports in the browser are off on this server: an admin sets <code>portsDomain</code>");
  expect(text).not.toContain("ticket");
});

test("My sessions says it once, and links no port", async () => {
  const text = await (await handle(new Request("http://server/sessions", { headers: { cookie } }))).text();
  expect(text.match(/Ports in the browser are off/g)?.length).toBe(1);
  expect(text).not.toContain('class="port"');
});

test("a port host is Beaker's own when ports are off (there is no port origin)", async () => {
  const res = await handle(new Request("http://server/api/v1/health", { headers: { host: `${id}-8888.localhost` } }));
  expect(res.status).toBe(200);
});
