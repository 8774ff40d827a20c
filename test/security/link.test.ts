/**
 * The server's end of the node link (src/server/links.ts, the /api/v1/nodes/link route) against whoever can reach
 * the server: users' tokens, another node's token, and a node that breaks the link's rules (frames for streams it was
 * never given, frames too big, floods past its credit). The server runs in this process (InProcessServer) so the test
 * holds the NodeLinks the web pages use; the "nodes" are raw WebSockets speaking the frames by hand.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeFrame, encodeFrame, jsonPayload, linkLimits, utf8 } from "../../src/link/frames.ts";
import type { LinkSocket } from "../../src/link/types.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { InProcessServer } from "../server-harness.ts";

const server = new InProcessServer();
const dir = tempDir("beaker-link-sec-");
let nodeA: string;
let nodeB: string;
let alice: string;

beforeAll(async () => {
  await server.start();
  alice = (await server.store!.createUser("alice", false)).token;
  nodeA = (await server.addNode("node-a", "lab", dir)).token;
  nodeB = (await server.addNode("node-b", "lab", dir)).token;
});
afterAll(async () => {
  await server.cleanup();
  removeDir(dir);
});

/** A fake node: the link's WebSocket with `token`, and every frame the server sends it. */
async function fakeNode(token: string, query = "") {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/v1/nodes/link${query}`, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  const frames: Array<{ id: number; kind: string; payload: Uint8Array }> = [];
  const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
  ws.onmessage = (e) => {
    const f = decodeFrame(new Uint8Array(e.data as ArrayBuffer));
    if (f) frames.push({ ...f, payload: f.payload.slice() });
  };
  const opened = await new Promise<boolean>((resolve) => {
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
  });
  return { ws, frames, closed, opened, send: (id: number, kind: Parameters<typeof encodeFrame>[1], payload?: Uint8Array) => ws.send(encodeFrame(id, kind, payload)) };
}

/** What a LinkSocket hears. */
function listen(socket: LinkSocket) {
  const got = { messages: [] as Array<string | number>, closed: null as null | { code: number; reason: string } };
  socket.onmessage = (m) => got.messages.push(typeof m === "string" ? m : m.length);
  socket.onclose = (code, reason) => (got.closed = { code, reason });
  return got;
}

const upgrade = (token: string, query = "") =>
  fetch(`${server.url}/api/v1/nodes/link${query}`, { headers: { authorization: `Bearer ${token}`, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" } });

describe("who may open a node's link", () => {
  test("a user token cannot open a link (403), nor can no token or a bad one (401)", async () => {
    const res = await upgrade(alice);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: { code: "forbidden", message: "only a node token opens a node link" } });
    expect((await upgrade("bkn_0123456789_" + "A".repeat(43))).status).toBe(401);
    const user = await fakeNode(alice);
    expect(user.opened).toBe(false);
    expect(server.links.get("alice")).toBeNull();
    expect(server.links.get("node-a")).toBeNull();
  });

  test("another node's token cannot open this node's link: asking for it is 403, and its own link names only itself", async () => {
    const res = await upgrade(nodeB, "?node=node-a");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("this token links node node-b only");
    expect(server.links.get("node-a")).toBeNull();
    const b = await fakeNode(nodeB);
    expect(b.opened).toBe(true);
    await eventually(() => server.links.get("node-b"), 5000, { what: "node-b's link" });
    expect(server.links.get("node-a")).toBeNull();
    b.ws.close();
    await eventually(() => server.links.get("node-b") === null, 5000, { what: "node-b's link to go" });
  });

  test("a plain GET of /api/v1/nodes/link is not a link (a node named link is still a node page)", async () => {
    const res = await fetch(`${server.url}/api/v1/nodes/link`, { headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(404);
  });
});

describe("a node that breaks the link's rules", () => {
  test("frames for streams never opened, oversize frames, floods and opens from the node cost only their own stream", async () => {
    const a = await fakeNode(nodeA, "?node=node-a");
    expect(a.opened).toBe(true);
    const link = await eventually(() => server.links.get("node-a"), 5000, { what: "node-a's link" });
    const victim = listen(link.socket("alice", "/v1/sessions/s1/attach"));
    const bystander = listen(link.socket("alice", "/v1/sessions/s2/attach"));
    const slow = link.socket("alice", "/v1/sessions/s3/attach") as LinkSocket & { pause(): void };
    const slowGot = listen(slow);
    slow.pause();
    await eventually(() => a.frames.filter((f) => f.kind === "open").length === 3, 5000, { what: "three opens at the node" });
    const [v, b, s] = a.frames.filter((f) => f.kind === "open").map((f) => f.id);
    expect(JSON.parse(new TextDecoder().decode(a.frames[0]!.payload))).toEqual({ user: "alice", method: "GET", path: "/v1/sessions/s1/attach", socket: true });

    // Streams it was never given, opens of its own, frames too short to be frames: dropped.
    for (let i = 0; i < 2000; i++) a.send(1000 + i, "data", utf8("x"));
    for (let i = 0; i < 100; i++) a.send(5000 + i, "open", jsonPayload({ user: "root", method: "POST", path: "/v1/restart" }));
    a.ws.send(new Uint8Array([1, 2, 3]));
    a.ws.send("text is not a frame");
    // A frame over the link's limit on the victim's stream.
    a.send(v!, "data", new Uint8Array(linkLimits.maxPayload + 1024));
    // A flood past the credit on the stream whose reader is slow.
    for (let i = 0; i < 40; i++) a.send(s!, "data", new Uint8Array(64 * 1024));
    a.send(b!, "text", utf8('{"type":"started"}'));

    await eventually(() => victim.closed && slowGot.closed && bystander.messages.length === 1, 10_000, { what: "the victims closed and the bystander's message" });
    expect(victim.closed).toEqual({ code: 1009, reason: "frame over the link's limit" });
    expect(slowGot.closed).toEqual({ code: 1008, reason: "sent past the stream's credit" });
    expect(slowGot.messages.length).toBe(16);
    expect(bystander).toEqual({ messages: ['{"type":"started"}'], closed: null });
    // The link is the same one, and still carries the bystander both ways.
    expect(server.links.get("node-a")).toBe(link);
    const bySocket = link.socket("alice", "/v1/sessions/s4/attach");
    const later = listen(bySocket);
    await eventually(() => a.frames.some((f) => f.kind === "open" && f.id > s!), 5000, { what: "a fourth open" });
    const fourth = a.frames.filter((f) => f.kind === "open").at(-1)!.id;
    a.send(fourth, "text", utf8("hello"));
    expect(bySocket.send("typed")).toBe(true);
    await eventually(() => later.messages.length === 1 && a.frames.some((f) => f.id === fourth && f.kind === "text"), 5000, { what: "both ways on a new stream" });
    // The server said "close" for exactly the streams it closed, and never opened anything for the node's opens.
    const closes = a.frames.filter((f) => f.kind === "close").map((f) => f.id).sort();
    expect(closes).toEqual([v!, s!].sort());
    a.ws.close(1000);
    expect(await a.closed).toBe(1000);
    await eventually(() => later.closed, 5000, { what: "the streams of a lost link to end" });
    expect(later.closed).toEqual({ code: 1011, reason: "node link lost" });
  }, 30_000);

  test("a second link from the same node replaces the first: its streams end (1011), the new one carries on", async () => {
    const first = await fakeNode(nodeA);
    const link1 = await eventually(() => server.links.get("node-a"), 5000, { what: "the first link" });
    const old = listen(link1.socket("alice", "/v1/sessions/s1/attach"));
    const second = await fakeNode(nodeA);
    expect(second.opened).toBe(true);
    await eventually(() => server.links.get("node-a") !== link1 && server.links.get("node-a"), 5000, { what: "the second link" });
    expect(old.closed).toEqual({ code: 1011, reason: "node link replaced by a newer one" });
    expect(await first.closed).toBe(1000);
    second.ws.close();
  });

  test("a relayed request: the node's answer streams back; a caller that leaves closes the stream at the node", async () => {
    const a = await fakeNode(nodeA);
    const link = await eventually(() => server.links.get("node-a"), 5000, { what: "the link" });
    const answer = link.request("alice", { method: "GET", path: "/v1/sessions" });
    await eventually(() => a.frames.some((f) => f.kind === "open"), 5000, { what: "the open" });
    const id = a.frames.find((f) => f.kind === "open")!.id;
    a.send(id, "head", jsonPayload({ status: 200, contentType: "application/json" }));
    a.send(id, "data", utf8("[1,"));
    a.send(id, "data", utf8("2]"));
    a.send(id, "end");
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual([1, 2]);

    const leave = new AbortController();
    const pending = link.request("alice", { method: "POST", path: "/v1/sessions", body: { detach: true } }, leave.signal);
    await eventually(() => a.frames.filter((f) => f.kind === "open").length === 2, 5000, { what: "the second open" });
    const second = a.frames.filter((f) => f.kind === "open")[1]!;
    expect(JSON.parse(new TextDecoder().decode(second.payload))).toEqual({ user: "alice", method: "POST", path: "/v1/sessions", body: { detach: true } });
    leave.abort(new Error("browser left"));
    await expect(pending).rejects.toThrow("browser left");
    await eventually(() => a.frames.some((f) => f.id === second.id && f.kind === "close"), 5000, { what: "the close at the node" });
    // A node that answers a stream the caller left: dropped.
    a.send(second.id, "head", jsonPayload({ status: 200 }));
    a.ws.close();
  });
});
