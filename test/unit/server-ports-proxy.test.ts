/**
 * Ports in the browser end to end in one process: the hand-off (ticket, cookie), then HTTP and WebSocket through the
 * proxy, its bridge and a fake node link, to a local app standing in for the session's Jupyter.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { PortsWorld, session } from "../ports-harness.ts";
import { startSessionApp } from "../session-app.ts";

const id = "0123456789ab";
const app = startSessionApp();
const world = new PortsWorld(() => app.port!);
let cookie: string;

beforeAll(async () => {
  await world.start([session(id, "ada")]);
  cookie = await world.signIn("ada", id, 8888);
});
afterAll(async () => {
  await world.stop();
  app.stop(true);
});

describe("hand-off", () => {
  test("the main path answers a page that posts a ticket to the port origin; no ticket in any URL", async () => {
    const res = await world.handoff("ada", id, 8888);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const page = await res.text();
    expect(page).toContain(`<form method="post" action="http://${id}-8888.localhost:${world.server.port}/.beaker/auth">`);
    expect(page).toContain("<button type=\"submit\">");
    expect(res.headers.get("content-security-policy")).toContain(`form-action http://${id}-8888.localhost:${world.server.port}`);
  });
  test("the ticket becomes a host-only, HttpOnly, SameSite=Lax cookie and a 303 to /", async () => {
    const page = await (await world.handoff("ada", id, 8888)).text();
    const res = await world.redeem(id, 8888, PortsWorld.ticketOf(page));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/");
    const set = res.headers.get("set-cookie")!;
    expect(set).toMatch(/^beaker_port=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    expect(set).not.toContain("Domain");
  });
  test("behind TLS the cookie is Secure and __Host- prefixed", async () => {
    const page = await (await world.handoff("ada", id, 8888)).text();
    const res = await fetch(`${world.main}/.beaker/auth`, {
      method: "POST",
      headers: { host: world.host(id, 8888), "x-forwarded-proto": "https", "content-type": "application/x-www-form-urlencoded" },
      body: `ticket=${PortsWorld.ticketOf(page)}`,
      redirect: "manual",
    });
    expect(res.headers.get("set-cookie")).toMatch(/^__Host-beaker_port=.*; Secure$/);
  });
});

describe("HTTP through the proxy", () => {
  test("GET keeps method, path and query; the port cookie is not forwarded, the app's cookies are", async () => {
    const res = await world.get(id, 8888, "/echo/a%20b?x=1&y=2", { cookie: `${cookie}; _xsrf=abc` });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { method: string; path: string; headers: Record<string, string> };
    expect(seen.method).toBe("GET");
    expect(seen.path).toBe("/echo/a%20b?x=1&y=2");
    expect(seen.headers.host).toBe(world.host(id, 8888));
    expect(seen.headers.cookie).toBe("_xsrf=abc");
    expect(world.links.calls.at(-1)).toEqual({ user: "ada", path: `/v1/sessions/${id}/ports/8888` });
  });
  test("a 5 MiB POST body arrives whole", async () => {
    const body = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
    const res = await world.get(id, 8888, "/upload", { method: "POST", body, cookie, headers: { origin: `http://${world.host(id, 8888)}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytes: body.byteLength, sha256: createHash("sha256").update(body).digest("hex") });
  });
  test("a streamed answer arrives in pieces, the first before the last is made", async () => {
    const res = await world.get(id, 8888, "/stream", { cookie });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toStartWith("tick 0");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toContain("tick 4");
  });
  test("a 24 MiB answer arrives whole", async () => {
    const res = await world.get(id, 8888, "/big", { cookie });
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.byteLength).toBe(24 * 1024 * 1024);
    expect(bytes.every((b) => b === 7)).toBe(true);
  });
  test("redirects pass through; Set-Cookie loses its Domain", async () => {
    const redirect = await world.get(id, 8888, "/redirect", { cookie });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("/echo");
    const set = await world.get(id, 8888, "/cookie", { cookie });
    expect(set.headers.get("set-cookie")).toBe("app=1; Path=/");
  });
  test("a node without a link is a 502 that says so", async () => {
    world.links.online = false;
    try {
      const res = await world.get(id, 8888, "/echo", { cookie });
      expect(res.status).toBe(502);
      expect(await res.text()).toContain("not connected to this server");
    } finally {
      world.links.online = true;
    }
  });
});

describe("WebSocket through the proxy", () => {
  test("echo, with the subprotocol the app chose and the port cookie stripped", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${world.server.port}/ws`, {
      headers: { host: world.host(id, 8888), origin: `http://${world.host(id, 8888)}`, cookie: `${cookie}; app=2` },
      protocols: ["v1.kernel.websocket.jupyter.org"],
    } as unknown as string[]);
    const messages: string[] = [];
    const got = new Promise<void>((resolve, reject) => {
      ws.onmessage = (e) => {
        messages.push(String(e.data));
        if (messages.length === 1) ws.send("ping");
        if (messages.length === 2) resolve();
      };
      ws.onerror = () => reject(new Error("socket error"));
      ws.onclose = (e) => reject(new Error(`closed ${e.code}`));
    });
    await got;
    expect(ws.protocol).toBe("v1.kernel.websocket.jupyter.org");
    const hello = JSON.parse(messages[0]!) as { hello: Record<string, string> };
    expect(hello.hello.cookie).toBe("app=2");
    expect(hello.hello.host).toBe(world.host(id, 8888));
    expect(messages[1]).toBe("ping");
    ws.onclose = null;
    ws.close();
  });
  test("a WebSocket from another origin is refused before any reaches the session", async () => {
    const before = world.links.calls.length;
    const res = await world.get(id, 8888, "/ws", {
      cookie,
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13", origin: "http://evil.example" },
    });
    expect(res.status).toBe(403);
    expect(world.links.calls.length).toBe(before);
  });
});

describe("pages", () => {
  test("My sessions links the owner's running session's ports to their hand-off", async () => {
    const res = await fetch(`${world.main}/sessions`, { headers: { cookie: `beaker_session=${world.web.get("ada")}` } });
    const text = await res.text();
    expect(text).toContain(`<a class="port" href="/sessions/${id}/ports/8888/">8888</a>`);
    expect(text).toContain(`<form class="open-port" method="get" action="/sessions/${id}/ports">`);
  });
  test("the form for another port leads to that port's hand-off", async () => {
    const res = await fetch(`${world.main}/sessions/${id}/ports?port=6006`, { headers: { cookie: `beaker_session=${world.web.get("ada")}` }, redirect: "manual" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`/sessions/${id}/ports/6006/`);
  });
  test("Beaker's own routes still refuse bodies over 2 MiB", async () => {
    const res = await fetch(`${world.main}/login`, { method: "POST", body: new Uint8Array(3 * 1024 * 1024) });
    expect(res.status).toBe(413);
    const chunked = await fetch(`${world.main}/login`, {
      method: "POST",
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(8192).fill(65));
          c.close();
        },
      }),
    });
    expect(chunked.status).toBe(413);
  });
});
