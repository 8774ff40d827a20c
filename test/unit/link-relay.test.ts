/**
 * The node's side of a relayed stream (src/executor/link/relay.ts), between a server-side LinkMux and the relay, with
 * a fake router: which routes the link reaches, who the router is told the caller is, and how answers and sockets
 * travel back.
 */
import { describe, expect, test } from "bun:test";
import { mapLinkAccount, type LocalAccount } from "../../src/executor/link/accounts.ts";
import { linkMayReach, relayStream, type RelayDeps } from "../../src/executor/link/relay.ts";
import type { PeerSocket } from "../../src/executor/terminals/peer.ts";
import { LinkMux, type LinkStream } from "../../src/link/mux.ts";

const users: Record<string, number> = { root: 0, alice: 1001, bob: 1002, daemon: 1 };
const lookup = async (name: string): Promise<LocalAccount | null> => (Object.hasOwn(users, name) ? { name, uid: users[name]! } : null);

type Data = { path: string };

function setup(answer: (req: Request) => Response | { socket: Data } = () => Response.json({ ok: true })) {
  const calls: Array<{ method: string; path: string; uid: number; account: string | null; body: string; upgrade: string | null }> = [];
  const events: string[] = [];
  const peers: Array<PeerSocket<Data>> = [];
  const toNode: Uint8Array[] = [];
  const toServer: Uint8Array[] = [];
  const deps: RelayDeps<Data> = {
    route: async (req, caller) => {
      const url = new URL(req.url);
      calls.push({ method: req.method, path: url.pathname + url.search, uid: caller.uid, account: await caller.account(), body: await req.text(), upgrade: req.headers.get("upgrade") });
      return answer(req);
    },
    sockets: {
      open: (ws) => {
        peers.push(ws);
        events.push(`open ${ws.data.path}`);
      },
      message: (_ws, m) => events.push(`message ${typeof m === "string" ? m : `bytes:${[...m].join(",")}`}`),
      drain: () => events.push("drain"),
      close: (ws) => events.push(`close ${ws.data.path}`),
    },
    account: (name) => mapLinkAccount(name, {}, lookup),
    log: (line) => events.push(`log ${line}`),
  };
  const server = new LinkMux({ send: (f) => toNode.push(f) });
  const node = new LinkMux({ send: (f) => toServer.push(f), onopen: (stream, head) => void relayStream(stream, head, deps) });
  const flush = async () => {
    for (let i = 0; i < 50; i++) {
      for (const f of toNode.splice(0)) node.receive(f);
      for (const f of toServer.splice(0)) server.receive(f);
      await Bun.sleep(1);
    }
  };
  /** Opens an HTTP stream and collects its answer. */
  const request = async (head: Record<string, unknown>) => {
    const got = { status: 0, body: "", ended: false, closed: null as null | number };
    const stream = server.open(head)!;
    const chunks: Uint8Array[] = [];
    stream.handlers = {
      onhead: (h) => (got.status = h.status as number),
      ondata: (b) => chunks.push(b.slice()),
      onend: () => (got.ended = true),
      onclose: (code) => (got.closed = code),
    };
    await flush();
    got.body = Buffer.concat(chunks).toString();
    return got;
  };
  return { calls, events, peers, server, node, flush, request };
}

describe("what the node link reaches", () => {
  test.each(["/v1/sessions", "/v1/sessions/abc", "/v1/sessions/abc/stop", "/v1/gpus"])("%s: yes", (path) => expect(linkMayReach(path)).toBe(true));
  test.each(["/v1/restart", "/v1/health", "/v1/sessionsx", "/v1/gpus/x", "/", "/v1"])("%s: no", (path) => expect(linkMayReach(path)).toBe(false));

  test.each([
    ["POST", "/v1/restart"],
    ["GET", "/v1/health"],
    ["POST", "/v1/sessions/../restart"],
    ["POST", "/v1/sessions/%2e%2e/restart"],
    ["POST", "/v1/gpus/../restart?x=1"],
    ["GET", "/v1/sessionsx"],
  ])("%s %s: 403 forbidden, and the router is never called", async (method, path) => {
    const { calls, request } = setup();
    const got = await request({ user: "alice", method, path });
    expect(got.status).toBe(403);
    expect(JSON.parse(got.body).error.code).toBe("forbidden");
    expect(got.ended).toBe(true);
    expect(calls).toEqual([]);
  });

  test.each([
    [{ user: "alice", method: "PUT", path: "/v1/sessions" }, 400],
    [{ user: "alice", method: "GET", path: "//evil/v1/sessions" }, 400],
    [{ user: 5, method: "GET", path: "/v1/sessions" }, 400],
    [{ method: "GET", path: "/v1/sessions" }, 400],
  ])("a malformed head %o: %d, nothing routed", async (head, status) => {
    const { calls, request } = setup();
    expect((await request(head)).status).toBe(status);
    expect(calls).toEqual([]);
  });
});

describe("a relayed request", () => {
  test("runs as the mapped uid with the Beaker account, and its answer streams back", async () => {
    const { calls, request } = setup(() => new Response("a\nb\n", { status: 201, headers: { "content-type": "application/x-ndjson" } }));
    const got = await request({ user: "alice", method: "POST", path: "/v1/sessions?x=1", body: { detach: true } });
    expect(got).toEqual({ status: 201, body: "a\nb\n", ended: true, closed: null });
    expect(calls).toEqual([{ method: "POST", path: "/v1/sessions?x=1", uid: 1001, account: "alice", body: '{"detach":true}', upgrade: null }]);
  });

  test.each(["root", "daemon", "carol"])("as %s: refused (403) and logged, never routed", async (user) => {
    const { calls, events, request } = setup();
    const got = await request({ user, method: "GET", path: "/v1/sessions" });
    expect(got.status).toBe(403);
    expect(calls).toEqual([]);
    expect(events.filter((e) => e.startsWith("log "))).toHaveLength(1);
  });

  test("an answer larger than the window waits for credit and arrives whole", async () => {
    const big = "x".repeat(5 * 1024 * 1024);
    const { request } = setup(() => new Response(big));
    const got = await request({ user: "bob", method: "GET", path: "/v1/gpus" });
    expect(got.body.length).toBe(big.length);
    expect(got.ended).toBe(true);
  });

  test("the server hanging up aborts the request the router holds", async () => {
    let signal: AbortSignal | null = null;
    const { server, flush } = setup((req) => {
      signal = req.signal;
      return new Response(new ReadableStream({ start() {} }));
    });
    const stream = server.open({ user: "alice", method: "POST", path: "/v1/sessions", body: {} })!;
    await flush();
    expect(signal!.aborted).toBe(false);
    stream.close(1000, "browser left");
    await flush();
    expect(signal!.aborted).toBe(true);
  });
});

describe("a relayed socket", () => {
  test("opens the route's socket as a peer: text and bytes both ways, one close", async () => {
    const { calls, events, peers, server, flush } = setup((req) => ({ socket: { path: new URL(req.url).pathname } }));
    const stream: LinkStream = server.open({ user: "alice", method: "GET", path: "/v1/sessions/s1/attach?cols=80", socket: true })!;
    const got: string[] = [];
    let closed = null as number | null;
    stream.handlers = { ontext: (t) => got.push(t), ondata: (b) => got.push(`bytes:${[...b].join(",")}`), onclose: (c) => (closed = c) };
    await flush();
    expect(calls[0]).toMatchObject({ uid: 1001, upgrade: "websocket", path: "/v1/sessions/s1/attach?cols=80" });
    stream.send("text", '{"type":"resize","cols":1,"rows":2}');
    stream.send("data", new Uint8Array([104, 105]));
    peers[0]!.send('{"type":"started"}');
    expect(peers[0]!.sendBinary(new Uint8Array([1, 2]))).toBe(2);
    await flush();
    expect(got).toEqual(['{"type":"started"}', "bytes:1,2"]);
    peers[0]!.close(1000, "session ended");
    peers[0]!.close(1000, "again");
    await flush();
    expect(closed).toBe(1000);
    expect(events).toEqual(["open /v1/sessions/s1/attach", 'message {"type":"resize","cols":1,"rows":2}', "message bytes:104,105", "close /v1/sessions/s1/attach"]);
  });

  test("what the server sends before the socket is open is held and handed over in order, after the open", async () => {
    const { events, server, flush } = setup((req) => ({ socket: { path: new URL(req.url).pathname } }));
    const stream = server.open({ user: "alice", method: "GET", path: "/v1/sessions/s1/attach", socket: true })!;
    stream.send("text", "first");
    stream.send("data", new Uint8Array([7]));
    await flush();
    expect(events).toEqual(["open /v1/sessions/s1/attach", "message first", "message bytes:7"]);
  });

  test("the link going away closes the peer once, as a Bun socket's close would", async () => {
    const { events, server, node, flush } = setup((req) => ({ socket: { path: new URL(req.url).pathname } }));
    server.open({ user: "bob", method: "GET", path: "/v1/sessions/s2/ports/8888", socket: true });
    await flush();
    // What the dialler does when the WebSocket closes: the node's mux ends every stream.
    node.closeAll(1011, "node link lost");
    node.closeAll(1011, "node link lost");
    await flush();
    expect(events).toEqual(["open /v1/sessions/s2/ports/8888", "close /v1/sessions/s2/ports/8888"]);
  });

  test("a socket route that fails gives the terminal's error message, then 1011", async () => {
    const { server, flush } = setup(() => Response.json({ error: { code: "conflict", message: "too many terminals" } }, { status: 409 }));
    const stream = server.open({ user: "alice", method: "GET", path: "/v1/sessions/s1/exec", socket: true })!;
    const got: string[] = [];
    let closed = null as number | null;
    stream.handlers = { ontext: (t) => got.push(t), onclose: (c) => (closed = c) };
    await flush();
    expect(got).toEqual(['{"type":"error","code":"conflict","message":"too many terminals"}']);
    expect(closed).toBe(1011);
  });

  test("a root account's socket is refused with forbidden", async () => {
    const { calls, server, flush } = setup();
    const stream = server.open({ user: "root", method: "GET", path: "/v1/sessions/s1/attach", socket: true })!;
    const got: string[] = [];
    stream.handlers = { ontext: (t) => got.push(t) };
    await flush();
    expect(JSON.parse(got[0]!)).toMatchObject({ type: "error", code: "forbidden" });
    expect(calls).toEqual([]);
  });
});
