/**
 * Ports in the browser, attacked as a second signed-in user and as a page on another session's origin (in process:
 * the real handler and proxy, a fake node link, a local app that echoes what reached it). A session's port answers
 * its owner only; everyone else sees exactly what a missing session looks like.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { csrfToken } from "../../src/server/web-security.ts";
import { PortsWorld, session } from "../ports-harness.ts";
import { startSessionApp } from "../session-app.ts";

const mine = "0123456789ab";
const theirs = "ba9876543210";
const missing = "ffffffffffff";
const app = startSessionApp();
const world = new PortsWorld(() => app.port!);

beforeAll(async () => {
  await world.start([session(mine, "beaker-test-user"), session(theirs, "beaker-test-other")]);
});
afterAll(async () => {
  await world.stop();
  app.stop(true);
});

describe("another user", () => {
  test("gets on the main path the same 404 as for a session that does not exist", async () => {
    const other = await world.handoff("beaker-test-other", mine, 8888);
    const none = await world.handoff("beaker-test-other", missing, 8888);
    expect(other.status).toBe(404);
    expect(none.status).toBe(404);
    const strip = (t: string) => t.replaceAll(mine, "ID").replaceAll(missing, "ID");
    expect(strip(await other.text())).toBe(strip(await none.text()));
  });
  test("an admin is no owner either", async () => {
    const { token } = await world.store.createUser("boss", true);
    const who = await world.store.authenticate(token);
    if (who?.kind !== "user") throw new Error("no admin");
    const cookie = await world.store.createWebSession(who);
    const res = await fetch(`${world.main}/sessions/${mine}/ports/8888/`, { headers: { cookie: `beaker_session=${cookie}` } });
    expect(res.status).toBe(404);
  });
  test("their own port cookie gets a 404 on my port origin, and nothing reaches my session", async () => {
    const theirCookie = await world.signIn("beaker-test-other", theirs, 8888);
    const calls = world.links.calls.length;
    const res = await world.get(mine, 8888, "/echo", { cookie: theirCookie });
    expect(res.status).toBe(404);
    expect(await res.text()).toStartWith("Not found.");
    expect(world.links.calls.length).toBe(calls);
  });
  test("a port origin without a cookie, or with a made-up one, is a 404", async () => {
    expect((await world.get(mine, 8888, "/echo")).status).toBe(404);
    expect((await world.get(mine, 8888, "/echo", { cookie: `beaker_port=${"A".repeat(43)}` })).status).toBe(404);
  });
  test("Beaker's own cookie does not open a port origin", async () => {
    const res = await world.get(mine, 8888, "/echo", { cookie: `beaker_session=${world.web.get("beaker-test-user")}` });
    expect(res.status).toBe(404);
  });
  test("a port origin never serves Beaker's pages or API, whatever the path", async () => {
    const cookie = `beaker_session=${world.web.get("beaker-test-user")}`;
    for (const path of ["/", "/sessions", "/api/v1/health", "/api/v1/whoami", "/login", "/releases/x"]) {
      const res = await world.get(mine, 8888, path, { cookie });
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain("Beaker</title>");
    }
    for (const host of [`x.localhost:${world.server.port}`, `${mine}-0.localhost`, `${mine}-8888.localhost.`, `${mine.toUpperCase()}-99999.localhost`]) {
      const res = await fetch(`${world.main}/api/v1/health`, { headers: { host } });
      expect(res.status).toBe(404);
    }
  });
});

describe("tickets", () => {
  test("a ticket replayed fails, and the first sign-in still works", async () => {
    const ticket = PortsWorld.ticketOf(await (await world.handoff("beaker-test-user", mine, 8888)).text());
    const first = await world.redeem(mine, 8888, ticket);
    expect(first.status).toBe(303);
    const again = await world.redeem(mine, 8888, ticket);
    expect(again.status).toBe(403);
    expect(again.headers.get("set-cookie")).toBeNull();
  });
  test("a ticket for one port fails on another port and on another session's origin", async () => {
    const ticket = PortsWorld.ticketOf(await (await world.handoff("beaker-test-user", mine, 8888)).text());
    expect((await world.redeem(mine, 8889, ticket)).status).toBe(403);
    const other = PortsWorld.ticketOf(await (await world.handoff("beaker-test-user", mine, 8888)).text());
    expect((await world.redeem(theirs, 8888, other)).status).toBe(403);
  });
  test("a port cookie is good on its own port only", async () => {
    const cookie = await world.signIn("beaker-test-user", mine, 8888);
    expect((await world.get(mine, 8888, "/echo", { cookie })).status).toBe(200);
    expect((await world.get(mine, 8889, "/echo", { cookie })).status).toBe(404);
  });
  test("a ticket is refused by GET, and expires", async () => {
    const ticket = PortsWorld.ticketOf(await (await world.handoff("beaker-test-user", mine, 8888)).text());
    expect((await world.get(mine, 8888, `/.beaker/auth?ticket=${ticket}`)).status).toBe(404);
    world.now += 61_000;
    try {
      expect((await world.redeem(mine, 8888, ticket)).status).toBe(403);
    } finally {
      world.now -= 61_000;
    }
  });
  test("signing out of Beaker ends the port sign-in", async () => {
    const { token } = await world.store.createUser("leaver", false);
    const who = await world.store.authenticate(token);
    if (who?.kind !== "user") throw new Error("no user");
    const web = await world.store.createWebSession(who);
    world.web.set("leaver", web);
    await world.store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [session(mine, "beaker-test-user"), session(theirs, "beaker-test-other"), session("aaaaaaaaaaaa", "leaver")] });
    const cookie = await world.signIn("leaver", "aaaaaaaaaaaa", 8888);
    expect((await world.get("aaaaaaaaaaaa", 8888, "/echo", { cookie })).status).not.toBe(404);
    // Signed out as the page's button does: with the page's CSRF token, from Beaker's own origin.
    const out = await fetch(`${world.main}/logout`, { method: "POST", body: new URLSearchParams({ csrf: csrfToken(web) }), headers: { cookie: `beaker_session=${web}`, origin: world.main }, redirect: "manual" });
    expect(out.status).toBe(303);
    expect((await world.get("aaaaaaaaaaaa", 8888, "/echo", { cookie })).status).toBe(404);
  });
});

describe("what reaches the session", () => {
  test("neither Beaker's cookie nor the port cookie, tossed duplicates included", async () => {
    const cookie = await world.signIn("beaker-test-user", mine, 8888);
    const res = await world.get(mine, 8888, "/echo", { cookie: `beaker_session=${world.web.get("beaker-test-user")}; ${cookie}; beaker_port=tossed; __Host-beaker_port=x; app=1` });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { headers: Record<string, string> };
    expect(seen.headers.cookie).toBe("app=1");
  });
  test("Beaker's own cookie is host-only, so a browser never sends it to a port origin", async () => {
    const { token } = await world.store.createUser("cookie-check", false);
    const res = await fetch(`${world.main}/login`, { method: "POST", body: new URLSearchParams({ token }), redirect: "manual" });
    const set = res.headers.get("set-cookie")!;
    expect(set).toStartWith("beaker_session=");
    expect(set.toLowerCase()).not.toContain("domain");
  });
  test("a re-check each request: a session that is no longer the user's (or gone) is a 404 at once", async () => {
    const cookie = await world.signIn("beaker-test-user", mine, 8888);
    expect((await world.get(mine, 8888, "/echo", { cookie })).status).toBe(200);
    await world.store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [session(theirs, "beaker-test-other")] });
    try {
      expect((await world.get(mine, 8888, "/echo", { cookie })).status).toBe(404);
    } finally {
      await world.store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions: [session(mine, "beaker-test-user"), session(theirs, "beaker-test-other")] });
    }
  });
});

describe("another session's page (same site, another origin)", () => {
  test("cannot post to my port or open its WebSocket with my cookie", async () => {
    const cookie = await world.signIn("beaker-test-user", mine, 8888);
    const evil = `http://${theirs}-8888.localhost:${world.server.port}`;
    const calls = world.links.calls.length;
    const post = await world.get(mine, 8888, "/api/kernels", { method: "POST", cookie, headers: { origin: evil }, body: "{}" });
    expect(post.status).toBe(403);
    const noOrigin = await world.get(mine, 8888, "/api/kernels", { method: "POST", cookie, headers: { "sec-fetch-site": "same-site" }, body: "{}" });
    expect(noOrigin.status).toBe(403);
    const ws = await world.get(mine, 8888, "/ws", {
      cookie,
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", origin: evil },
    });
    expect(ws.status).toBe(403);
    expect(world.links.calls.length).toBe(calls);
  });
});
