/**
 * The server's web pages under attack (docs/SECURITY.md "Web pages"), against the real `dist/beaker server run`:
 * another site's page in the victim's signed-in Chromium (a form and a WebSocket at the server; 127.0.0.1 on another
 * port is the same site, so the cookie does ride along), a thief holding the cookie but not a page's CSRF token, a
 * second web user reaching for the first one's session, and a sign-in brute force. A session is put on the server's
 * records by the node's own heartbeat; no node link is needed to be refused.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { removeDir, tempDir } from "../harness.ts";
import { TestServer } from "../server-harness.ts";

const server = new TestServer();
const dir = tempDir("beaker-web-attacks-");
const session = "abcabcabcabc";
let alice: string;
let bob: string;
let browser: Browser;
let evil: ReturnType<typeof Bun.serve>;
/** What the attacker's page saw: "open" or "refused" for its WebSocket. */
const reports: string[] = [];

/** A browser's cookie and CSRF token after signing in with `token`. */
async function signIn(token: string): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${server.url}/login`, { method: "POST", body: new URLSearchParams({ token }), redirect: "manual" });
  const cookie = /beaker_session=[^;]+/.exec(res.headers.get("set-cookie") ?? "")![0];
  const page = await (await fetch(`${server.url}/`, { headers: { cookie } })).text();
  return { cookie, csrf: /name="csrf" value="([^"]+)"/.exec(page)![1]! };
}

beforeAll(async () => {
  alice = await server.createUser("alice");
  bob = await server.createUser("bob");
  await server.admin(["cluster", "create", "lab"]);
  mkdirSync(join(dir, "n1"));
  const nodeToken = (await Bun.file(await server.addNode("n1", "lab", join(dir, "n1"))).text()).trim();
  await server.start();
  const beat = {
    cpus: 4,
    memoryBytes: 2 ** 34,
    version: "0.1.0",
    gpus: [{ index: 0, uuid: "GPU-0", name: "H100", memoryMiB: 81920, claimedBy: session, healthy: true }],
    sessions: [{ id: session, name: "train", user: "alice", gpus: ["GPU-0"], image: "debian", status: "running", createdAt: new Date().toISOString(), startedAt: null }],
  };
  expect((await server.api("/nodes/n1/heartbeat", nodeToken, { method: "PUT", body: JSON.stringify(beat) })).status).toBe(200);
  // The attacker's site: a page that posts a form to the server and opens a WebSocket to it, and a place to report.
  evil = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/report") return (reports.push(await req.text()), new Response("ok"));
      const target = server.url;
      const html = `<!doctype html><body>
<form id="f" method="post" action="${target}${url.pathname === "/stop" ? `/sessions/${session}/stop` : "/logout"}"><input name="confirm" value="yes"></form>
<script>
const ws = new WebSocket("${target.replace("http", "ws")}/sessions/${session}/terminal?mode=attach");
ws.onopen = () => fetch("/report", { method: "POST", body: "open" });
ws.onerror = () => fetch("/report", { method: "POST", body: "refused" });
${url.pathname === "/ws" ? "" : 'setTimeout(() => document.getElementById("f").submit(), 300);'}
</script></body>`;
      return new Response(html, { headers: { "content-type": "text/html" } });
    },
  });
  browser = await chromium.launch({ executablePath: process.env.BEAKER_TEST_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => {
  await browser?.close();
  await evil?.stop(true);
  await server.cleanup();
  removeDir(dir);
});

test("another site's page in the victim's browser: its form to stop a session or sign out gets 403, its WebSocket is refused", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/login`);
  await page.fill("input[name=token]", alice);
  await page.click("button[type=submit]");
  await page.waitForURL(`${server.url}/`);
  const cookie = (await context.cookies()).find((c) => c.name === "beaker_session")!;
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", secure: false });
  for (const [path, target] of [["/stop", `/sessions/${session}/stop`], ["/logout", "/logout"]]) {
    const answer = page.waitForResponse((r) => r.url() === `${server.url}${target}` && r.request().method() === "POST");
    await page.goto(`http://127.0.0.1:${evil.port}${path}`, { waitUntil: "commit" });
    expect((await answer).status()).toBe(403);
    await page.waitForURL(`${server.url}${target}`);
  }
  expect(reports.filter((r) => r === "open")).toEqual([]);
  expect(reports.filter((r) => r === "refused").length).toBeGreaterThanOrEqual(2);
  // Still signed in, the session's page still hers.
  await page.goto(`${server.url}/sessions/${session}`);
  expect(await page.textContent("h1")).toBe("Session train");
  await context.close();
}, 60_000);

test("a stolen cookie without a page's CSRF token changes nothing: 403 for every POST; its WebSocket needs this server's Origin", async () => {
  const victim = await signIn(alice);
  const form = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: "POST", body: new URLSearchParams(fields), headers: { cookie: victim.cookie, ...headers }, redirect: "manual" });
  for (const [path, fields] of [["/logout", {}], ["/nodes/n1/sessions", { gpus: "1" }], [`/sessions/${session}/stop`, { confirm: "yes" }]] as const) {
    expect((await form(path, fields)).status).toBe(403);
    expect((await form(path, { ...fields, csrf: "A".repeat(43) })).status).toBe(403);
    // The right token from another site's page: still 403 (its Origin).
    expect((await form(path, { ...fields, csrf: victim.csrf }, { origin: "http://evil.example" })).status).toBe(403);
  }
  const ws = (origin: string | null) =>
    fetch(`${server.url}/sessions/${session}/terminal`, { headers: { cookie: victim.cookie, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", ...(origin ? { origin } : {}) } });
  expect((await ws("http://evil.example")).status).toBe(403);
  expect((await ws(null)).status).toBe(403);
  // Nothing was done: she is still signed in.
  expect((await fetch(`${server.url}/sessions/${session}`, { headers: { cookie: victim.cookie }, redirect: "manual" })).status).toBe(200);
});

test("a second web user gets the 404 of a missing session for the first one's page, status, stop and terminal", async () => {
  const other = await signIn(bob);
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers: { cookie: other.cookie, ...headers }, redirect: "manual" });
  const missing = await (await get("/sessions/ffffffffffff")).text();
  expect(missing).toContain("no session ffffffffffff");
  for (const path of [`/sessions/${session}`, `/sessions/${session}/status`]) {
    const res = await get(path);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain(`no session ${session}`);
  }
  const stop = await fetch(`${server.url}/sessions/${session}/stop`, { method: "POST", body: new URLSearchParams({ csrf: other.csrf, confirm: "yes" }), headers: { cookie: other.cookie }, redirect: "manual" });
  expect(stop.status).toBe(404);
  const terminal = await get(`/sessions/${session}/terminal`, { origin: server.url, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" });
  expect(terminal.status).toBe(404);
  // Her node page shows bob who holds the GPU (as `node gpus` would) but links only his own sessions.
  expect(await (await get("/nodes/n1")).text()).not.toContain(`href="/sessions/${session}"`);
});

test("a sign-in brute force gets 429 on the sign-in page, with Retry-After", async () => {
  let last: Response | null = null;
  for (let i = 0; i < 25 && last?.status !== 429; i++) last = await fetch(`${server.url}/login`, { method: "POST", body: new URLSearchParams({ token: `bkr_${i.toString(16).padStart(10, "0")}_${"C".repeat(43)}` }) });
  expect(last!.status).toBe(429);
  expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(await last!.text()).toContain("Too many failed sign-ins from here");
});
