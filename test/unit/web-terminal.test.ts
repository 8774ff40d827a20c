/**
 * The browser terminal <-> node link bridge: what passes each way, close codes, and memory bounded both ways (input
 * held while the link is full, a browser that falls behind closed). Then the real thing through Bun.serve: a browser's
 * WebSocket with our Origin relays, another site's is refused at the handshake.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServerWebSocket } from "bun";
import { join } from "node:path";
import { createApp } from "../../src/server/app.ts";
import { migrate, openDb, type Db } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { bridgeLimits, terminalBridge, terminalData, type TerminalSocketData } from "../../src/server/terminal-bridge.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { FakeLink, FakeLinks, type FakeSocket } from "../web-fakes.ts";

/** A browser socket as the bridge sees it: what it was sent, how it was closed, how much it has not read. */
function browser(link: FakeLink) {
  const fake = {
    data: terminalData("alice", link, "/v1/sessions/aaaaaaaaaaaa/attach?cols=80&rows=24"),
    sent: [] as Array<string | Uint8Array>,
    closedWith: null as { code: number; reason: string } | null,
    unread: 0,
    send(m: string | Uint8Array) {
      fake.sent.push(m);
      fake.unread += m.length;
      return m.length;
    },
    close(code: number, reason: string) {
      fake.closedWith ??= { code, reason };
    },
    getBufferedAmount: () => fake.unread,
  };
  const ws = fake as unknown as ServerWebSocket<TerminalSocketData>;
  terminalBridge.open!(ws);
  return { fake, ws, node: link.sockets.at(-1)! };
}

describe("the bridge", () => {
  test("opens the executor's route as the signed-in account; bytes pass both ways, text from the browser only as a well-formed resize", () => {
    const { fake, ws, node } = browser(new FakeLink());
    expect([node.user, node.path]).toEqual(["alice", "/v1/sessions/aaaaaaaaaaaa/attach?cols=80&rows=24"]);
    terminalBridge.message!(ws, Buffer.from("id -un\r"));
    terminalBridge.message!(ws, JSON.stringify({ type: "resize", cols: 120, rows: 40, extra: "<x>" }));
    for (const junk of ["{", "[]", JSON.stringify({ type: "signal", name: "SIGKILL" }), JSON.stringify({ type: "resize", cols: 0, rows: 5 }), JSON.stringify({ type: "stdin-eof" })]) terminalBridge.message!(ws, junk);
    expect(node.sent.map((m) => (typeof m === "string" ? m : new TextDecoder().decode(m)))).toEqual(["id -un\r", '{"type":"resize","cols":120,"rows":40}']);
    node.onmessage!(new TextEncoder().encode("alice\r\n"));
    node.onmessage!('{"type":"exit","code":0,"reason":"exited"}');
    expect(fake.sent).toEqual([new TextEncoder().encode("alice\r\n"), '{"type":"exit","code":0,"reason":"exited"}']);
  });
  test.each([
    [1000, 1000],
    [1012, 1012],
    [1011, 1011],
    [1006, 1011],
    [1015, 1011],
  ])("the node's close %i reaches the browser as %i (1012: restarting, the page attaches again)", (from, to) => {
    const { fake, node } = browser(new FakeLink());
    node.onclose!(from, "x".repeat(300));
    expect(fake.closedWith!.code).toBe(to);
    expect(fake.closedWith!.reason.length).toBeLessThanOrEqual(123);
  });
  test("the browser leaving closes the node's side", () => {
    const { ws, node } = browser(new FakeLink());
    terminalBridge.close!(ws, 1001, "");
    expect(node.closed).not.toBeNull();
  });
  test("input waits while the link holds over 1 MiB, goes out in order when it drains, and past 1 MiB held the terminal closes (1009)", () => {
    const { fake, ws, node } = browser(new FakeLink());
    node.queued = bridgeLimits.linkBuffered + 1;
    terminalBridge.message!(ws, Buffer.from("a"));
    terminalBridge.message!(ws, Buffer.from("b"));
    expect(node.sent).toEqual([]);
    node.queued = 0;
    node.ondrain!();
    expect(node.sent.map((m) => new TextDecoder().decode(m as Uint8Array))).toEqual(["a", "b"]);
    node.queued = bridgeLimits.linkBuffered + 1;
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < 4; i++) terminalBridge.message!(ws, chunk);
    expect(fake.closedWith).toBeNull();
    terminalBridge.message!(ws, chunk);
    expect(fake.closedWith?.code).toBe(1009);
    expect(ws.data.heldBytes).toBeLessThanOrEqual(bridgeLimits.heldInput);
    expect(node.closed).not.toBeNull();
  });
  test("a flood the browser does not read: closed (1008) once it is 4 MiB behind, the node's side too; nothing sent after", () => {
    const { fake, node } = browser(new FakeLink());
    const mib = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 10; i++) node.onmessage!(mib);
    expect(fake.closedWith?.code).toBe(1008);
    expect(fake.closedWith?.reason).toContain("did not keep up");
    expect(fake.sent.length).toBe(5);
    expect(node.closed).not.toBeNull();
  });
});

describe("through Bun.serve", () => {
  let dir: string;
  let db: Db;
  let server: ReturnType<typeof Bun.serve>;
  let link: FakeLink;
  let cookie: string;
  beforeAll(async () => {
    dir = tempDir("beaker-web-terminal-");
    db = openDb(`sqlite://${join(dir, "s.db")}`);
    await migrate(db);
    const store = new Store(db);
    const { token } = await store.createUser("alice", false);
    await store.createCluster("lab");
    await store.addNode("n1", "lab");
    const session = { id: "aaaaaaaaaaaa", name: "train", user: "alice", gpus: [], image: "debian", status: "running", createdAt: new Date().toISOString(), startedAt: null };
    await store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "0.1.0", gpus: [], sessions: [session] });
    const links = new FakeLinks();
    link = new FakeLink();
    link.sessions.set(session.id, { id: session.id, owner: "alice", name: "train", status: "running", tty: true });
    links.links.set("n1", link);
    const app = createApp({ store, releasesDir: null, log: () => {}, links });
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, websocket: app.websocket });
    const res = await fetch(`${server.url}login`, { method: "POST", body: new URLSearchParams({ token }), redirect: "manual" });
    cookie = /beaker_session=[^;]+/.exec(res.headers.get("set-cookie")!)![0];
  });
  afterAll(async () => {
    await server.stop(true);
    await db.close();
    removeDir(dir);
  });

  const open = (origin: string) =>
    new Promise<{ ws: WebSocket; opened: boolean }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/sessions/aaaaaaaaaaaa/terminal?mode=attach&cols=100&rows=30`, { headers: { origin, cookie } } as unknown as string[]);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve({ ws, opened: true });
      ws.onerror = () => resolve({ ws, opened: false });
    });

  test("a page of this server gets its terminal relayed; another site's page is refused at the handshake", async () => {
    const before = link.sockets.length;
    expect((await open("http://evil.example")).opened).toBe(false);
    expect(link.sockets.length).toBe(before);
    const { ws, opened } = await open(`http://127.0.0.1:${server.port}`);
    expect(opened).toBe(true);
    const node: FakeSocket = link.sockets.at(-1)!;
    expect(node.path).toBe("/v1/sessions/aaaaaaaaaaaa/attach?cols=100&rows=30");
    const got = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(new TextDecoder().decode(e.data as ArrayBuffer))));
    node.onmessage!(new TextEncoder().encode("42\r\n"));
    expect(await got).toBe("42\r\n");
    ws.send(new TextEncoder().encode("echo hi\r"));
    await eventually(() => node.sent.length > 0, 5_000, { intervalMs: 10, what: "the keys to reach the node" });
    expect(new TextDecoder().decode(node.sent[0] as Uint8Array)).toBe("echo hi\r");
    const closed = new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    node.onclose!(1012, "executor restarting");
    expect(await closed).toBe(1012);
  });
});
