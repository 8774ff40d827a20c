/**
 * The web's session routes in process, against a fake node link: CSRF on every POST, the Origin of forms and
 * terminals, owner-only pages, the create form's checks, the sign-in limit. Terminal relaying: test/unit/web-terminal.test.ts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createHandler, type Peers } from "../../src/server/app.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { notLinked } from "../../src/server/web-creates.ts";
import { escapeHtml } from "../../src/server/html.ts";
import type { TerminalSocketData } from "../../src/server/terminal-bridge.ts";
import { emptyTables } from "../store-harness.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { FakeLink, FakeLinks, post, signIn } from "../web-fakes.ts";

const base = "http://server";
const own = "aaaaaaaaaaaa";
let dir: string;
let db: Db;
let store: Store;
let links: FakeLinks;
let link: FakeLink;
let handle: (req: Request, peers?: Peers) => Promise<Response>;
let alice: { cookie: string; csrf: string };
let bob: { cookie: string; csrf: string };
let admin: { cookie: string; csrf: string };
let tokens: { alice: string; bob: string; root: string };

beforeAll(async () => {
  dir = tempDir("beaker-web-sessions-");
  db = openDb(`sqlite://${join(dir, "s.db")}`);
  await migrate(db);
});
afterAll(async () => {
  await db.close();
  removeDir(dir);
});

beforeEach(async () => {
  await emptyTables(db);
  store = new Store(db);
  tokens = { alice: (await store.createUser("alice", false)).token, bob: (await store.createUser("bob", false)).token, root: (await store.createUser("root", true)).token };
  await store.createCluster("lab");
  for (const node of ["n1", "n2"]) await store.addNode(node, "lab");
  const gpus = [0, 1, 2, 3].map((i) => ({ index: i, uuid: `GPU-${i}`, name: "H100", memoryMiB: 81920, claimedBy: i === 0 ? own : null, healthy: true }));
  const sessions = [{ id: own, name: "train", user: "alice", gpus: ["GPU-0"], image: "debian", status: "running", createdAt: new Date().toISOString(), startedAt: null }];
  await store.heartbeat("n1", { cpus: 8, memoryBytes: 2 ** 34, version: "0.1.0", gpus, sessions });
  await store.heartbeat("n2", { cpus: 8, memoryBytes: 2 ** 34, version: "0.1.0", gpus, sessions: [] });
  links = new FakeLinks();
  link = new FakeLink();
  link.sessions.set(own, { id: own, owner: "alice", name: "train", status: "running", tty: true });
  links.links.set("n1", link);
  handle = createHandler({ store, releasesDir: null, log: () => {}, links, attempts: { perAddress: 3, perToken: 3, windowMs: 60_000, rememberGoodMs: 600_000 } });
  alice = await signIn(handle, tokens.alice);
  bob = await signIn(handle, tokens.bob);
  admin = await signIn(handle, tokens.root);
});

const get = (path: string, who: { cookie: string } | null, headers: Record<string, string> = {}) => handle(new Request(`${base}${path}`, { headers: { ...(who ? { cookie: who.cookie } : {}), ...headers } }));
const posted = () => link.requests.filter((r) => r.req.method === "POST");

/** A peer that records upgrades instead of making them. */
function upgrader() {
  const made: TerminalSocketData[] = [];
  return { made, peers: { requestIP: () => ({ address: "10.0.0.1" }), upgrade: (_req: Request, o: { data: TerminalSocketData }) => (made.push(o.data), true) } };
}
const terminal = (id: string, who: { cookie: string } | null, origin: string | null, query = "mode=attach&cols=80&rows=24") => {
  const { made, peers } = upgrader();
  const headers: Record<string, string> = { upgrade: "websocket", connection: "Upgrade", ...(who ? { cookie: who.cookie } : {}), ...(origin ? { origin } : {}) };
  return { made, res: handle(new Request(`${base}/sessions/${id}/terminal?${query}`, { headers }), peers) };
};

describe("CSRF", () => {
  const targets = [
    ["/logout", {}],
    ["/nodes/n1/sessions", { gpus: "1" }],
    [`/sessions/${own}/stop`, { confirm: "yes" }],
  ] as const;
  test.each(targets)("POST %s from a signed-in cookie without its token, with a wrong one or another session's: 403, nothing done", async (path, fields) => {
    for (const csrf of [null, "x", bob.csrf, `${alice.csrf}A`]) {
      const res = await handle(post(base, path, alice.cookie, { ...fields, ...(csrf === null ? {} : { csrf }) }));
      expect(res.status).toBe(403);
      expect(await res.text()).toContain("no valid CSRF token");
    }
    expect(posted()).toEqual([]);
    expect((await get("/", alice)).status).toBe(200);
  });
  test("the right token works: sign-out ends the web session", async () => {
    const res = await handle(post(base, "/logout", alice.cookie, { csrf: alice.csrf }));
    expect(res.status).toBe(303);
    expect(res.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await get("/", alice)).headers.get("location")).toBe("/login");
  });
  test("every signed-in page's forms carry the token, and no URL does", async () => {
    for (const path of ["/", "/sessions", "/clusters/lab", "/nodes/n1", `/sessions/${own}`]) {
      const text = await (await get(path, alice)).text();
      expect(text).toContain(`name="csrf" value="${alice.csrf}"`);
      expect(text.split(alice.csrf).length - 1).toBe(text.split('name="csrf"').length - 1);
      expect(text).not.toMatch(/(href|src|action)="[^"]*csrf/);
    }
  });
  test("a POST with no live session changes nothing and goes to the sign-in page", async () => {
    const res = await handle(post(base, "/nodes/n1/sessions", null, { gpus: "1", csrf: alice.csrf }));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/login");
    expect(posted()).toEqual([]);
  });
});

describe("Origin", () => {
  test("a form from another site's page is refused, even with the right token; the sign-in form too", async () => {
    expect((await handle(post(base, "/nodes/n1/sessions", alice.cookie, { gpus: "1", csrf: alice.csrf }, "http://evil.example"))).status).toBe(403);
    expect((await handle(post(base, "/login", null, { token: "x" }, "http://evil.example"))).status).toBe(403);
    expect((await handle(post(base, "/login", null, { token: "x" }, "null"))).status).toBe(403);
    expect(posted()).toEqual([]);
  });
  test("a terminal's WebSocket must name this server's origin: another site's or none is 403, before any lookup", async () => {
    for (const origin of ["http://evil.example", "null", null, "https://server"]) {
      const { made, res } = terminal(own, alice, origin);
      expect((await res).status).toBe(403);
      expect(made).toEqual([]);
    }
    expect(link.requests).toEqual([]);
    const { made, res } = terminal(own, alice, base);
    expect((await res).status).toBe(204);
    expect(made).toMatchObject([{ user: "alice", path: `/v1/sessions/${own}/attach?cols=80&rows=24` }]);
  });
  test("behind a TLS proxy the origin is https, and the cookie Secure", async () => {
    const { peers, made } = upgrader();
    const headers = { upgrade: "websocket", cookie: alice.cookie, origin: "https://server", "x-forwarded-proto": "https" };
    expect((await handle(new Request(`${base}/sessions/${own}/terminal`, { headers }), peers)).status).toBe(204);
    expect(made[0]!.path).toBe(`/v1/sessions/${own}/attach?cols=0&rows=0`);
    const res = await handle(new Request(`${base}/login`, { method: "POST", body: new URLSearchParams({ token: tokens.alice }), headers: { "x-forwarded-proto": "https", origin: "https://server" } }));
    expect(res.status).toBe(303);
    expect(res.headers.get("set-cookie")).toMatch(/^beaker_session=[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=43200$/);
    const plain = await handle(post(base, "/login", null, { token: tokens.alice }));
    expect(plain.headers.get("set-cookie")).toMatch(/; HttpOnly; SameSite=Lax; Max-Age=43200$/);
  });
});

describe("owner only", () => {
  test("another user, admins included, gets the 404 of a missing session for the page, status, stop and terminal", async () => {
    const missing = await (await get("/sessions/ffffffffffff", alice)).text();
    expect(missing).toContain("no session ffffffffffff");
    for (const who of [bob, admin]) {
      for (const path of [`/sessions/${own}`, `/sessions/${own}/status`]) {
        const res = await get(path, who);
        expect(res.status).toBe(404);
        expect(await res.text()).toContain(`no session ${own}`);
      }
      expect((await handle(post(base, `/sessions/${own}/stop`, who.cookie, { csrf: who.csrf, confirm: "yes" }))).status).toBe(404);
      const { made, res } = terminal(own, who, base);
      expect((await res).status).toBe(404);
      expect(made).toEqual([]);
    }
    // The server refused before asking the node anything as bob or root.
    expect(link.requests.filter((r) => r.user !== "alice")).toEqual([]);
    expect(link.sessions.get(own)!.status).toBe("running");
  });
  test("names, prefixes and odd IDs are no session: only a whole hex ID", async () => {
    for (const ref of ["train", "aaaa", "aaaaaaaaaaaa%2F..", "AAAAAAAAAAAA"]) expect((await get(`/sessions/${ref}`, alice)).status).toBe(404);
  });
  test("the owner sees status, GPUs and image, stops it after a confirmation, and the node is asked as the owner", async () => {
    const page = await (await get(`/sessions/${own}`, alice)).text();
    expect(page).toContain('<td id="status">running</td>');
    expect(page).toContain('src="/assets/xterm.js"');
    const confirm = await handle(post(base, `/sessions/${own}/stop`, alice.cookie, { csrf: alice.csrf }));
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toContain('name="confirm" value="yes"');
    expect(link.sessions.get(own)!.status).toBe("running");
    const stopped = await handle(post(base, `/sessions/${own}/stop`, alice.cookie, { csrf: alice.csrf, confirm: "yes" }));
    expect(stopped.status).toBe(303);
    expect(posted()).toEqual([{ user: "alice", req: { method: "POST", path: `/v1/sessions/${own}/stop`, body: { timeout: 10 } } }]);
    expect(await (await get(`/sessions/${own}/status`, alice)).json()).toMatchObject({ status: "exited" });
  });
  test("a node without a link: the page says so in one line, with no terminal and no stop", async () => {
    links.links.delete("n1");
    const page = await (await get(`/sessions/${own}`, alice)).text();
    expect(page).toContain(escapeHtml(notLinked));
    expect(page).not.toContain("xterm.js");
    expect(page).not.toContain("/stop");
    expect((await terminal(own, alice, base).res).status).toBe(409);
  });
});

describe("the create form", () => {
  const create = (fields: Record<string, string>, node = "n1") => handle(post(base, `/nodes/${node}/sessions`, alice.cookie, { csrf: alice.csrf, ...fields }));
  test.each([
    [{ gpus: "two" }, "--gpus must be a whole number from 0 to 64"],
    [{ gpus: "5" }, "asked for 5 GPUs, but node n1 has 4"],
    [{ time: "soon" }, '--time "soon" is not a duration like 4h, 90m or 1-12:00:00'],
    [{ image: "UPPER/Case" }, 'image "UPPER/Case" is not an image reference'],
    [{ name: "-bad" }, 'name must be letters, digits, "_", "." and "-"'],
  ])("%p is refused on the form with the CLI's words, the values kept, nothing sent", async (fields, message) => {
    const res = await create(fields);
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toContain(escapeHtml(message));
    for (const value of Object.values(fields)) expect(text).toContain(`value="${value}"`);
    expect(posted()).toEqual([]);
  });
  test("a node with no link: the node page and a POST say so in one line", async () => {
    expect(await (await get("/nodes/n2", alice)).text()).toContain(escapeHtml(notLinked));
    const res = await create({ gpus: "1" }, "n2");
    expect(res.status).toBe(409);
    expect(await res.text()).toContain(escapeHtml(notLinked));
  });
  test("a good form: the CLI's detached create as the signed-in user, then the session's page with its queue position", async () => {
    link.createEvents = [{ type: "queued", sessionId: "$ID", position: 2, gpus: 2, free: 1 }];
    const res = await create({ image: "debian:12", gpus: "2", time: "90m", name: "web1" });
    expect(res.status).toBe(303);
    const id = res.headers.get("location")!.replace("/sessions/", "");
    expect(posted()).toEqual([
      {
        user: "alice",
        req: {
          method: "POST",
          path: "/v1/sessions",
          body: { gpus: 2, image: "debian:12", name: "web1", cpus: null, memory: null, sharedMemory: null, ports: [], env: [], mounts: [], workdir: null, command: [], cwd: "/", tty: true, term: "xterm-256color", noWait: false, detach: true, slurm: null, timeLimit: 5400 },
        },
      },
    ]);
    const status = (await (await get(`/sessions/${id}/status`, alice)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ id, status: "queued", queuePosition: 2, linked: true });
    expect((await get(`/sessions/${id}`, bob)).status).toBe(404);
  });
  test("empty fields are the node's defaults; a refusal before a ticket shows on the form with its status", async () => {
    link.createTicket = false;
    link.createEvents = [{ type: "error", code: "conflict", message: "this node is cordoned: it takes no new sessions" }];
    link.endCreate = true;
    const res = await create({ image: "", gpus: "", time: "", name: "" });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("this node is cordoned");
    expect(posted()[0]!.req.body).toMatchObject({ gpus: null, image: null, name: null, timeLimit: null });
  });
  test("an error after the ticket (the browser gone) is kept for the session's page", async () => {
    link.createEvents = [{ type: "error", code: "session_start", message: "image debian:nope: manifest unknown" }];
    link.endCreate = true;
    const res = await create({ image: "debian:nope" });
    const id = res.headers.get("location")!.replace("/sessions/", "");
    link.sessions.delete(id);
    const page = await eventually(async () => {
      const text = await (await get(`/sessions/${id}`, alice)).text();
      return text.includes("manifest unknown") && text;
    }, 5_000, { intervalMs: 10, what: "the create's error on the session's page" });
    expect(page).toContain("image debian:nope: manifest unknown");
    expect(page).toContain('<td id="status">failed</td>');
  });
});

test("sign-in is limited like API tokens: past the limit, 429 on the sign-in page with Retry-After", async () => {
  const from = { requestIP: () => ({ address: "10.9.9.9" }) };
  const attempt = () => handle(post(base, "/login", null, { token: `bkr_0123456789_${"B".repeat(43)}` }), from);
  for (let i = 0; i < 3; i++) expect((await attempt()).status).toBe(401);
  const res = await attempt();
  expect(res.status).toBe(429);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  const text = await res.text();
  expect(text).toContain('role="alert">Too many failed sign-ins from here');
  expect(text).toContain('name="token"');
});
