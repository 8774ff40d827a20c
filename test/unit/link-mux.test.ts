/**
 * The node link's streams (src/link/mux.ts) between a server and a node joined by a fake wire that holds frames until
 * the test delivers them: ids stay apart, credit is neither lost nor invented, and a stream that floods or reads
 * slowly costs only itself.
 */
import { describe, expect, test } from "bun:test";
import { decodeFrame, encodeFrame, linkLimits, utf8 } from "../../src/link/frames.ts";
import { LinkMux, type LinkStream } from "../../src/link/mux.ts";

const MiB = 1024 * 1024;

/** A server and a node joined by two one-way wires; `flush()` delivers everything, both ways, until quiet. */
function pair(limits: Partial<typeof linkLimits> = {}) {
  const toNode: Uint8Array[] = [];
  const toServer: Uint8Array[] = [];
  const opened: Array<{ stream: LinkStream; head: Record<string, unknown> }> = [];
  const server = new LinkMux({ send: (f) => toNode.push(f), limits });
  const node = new LinkMux({ send: (f) => toServer.push(f), onopen: (stream, head) => opened.push({ stream, head }), limits });
  const flush = () => {
    while (toNode.length || toServer.length) {
      for (const f of toNode.splice(0)) node.receive(f);
      for (const f of toServer.splice(0)) server.receive(f);
    }
  };
  return { server, node, toNode, toServer, opened, flush };
}

function collect(stream: LinkStream) {
  const got = { text: [] as string[], bytes: 0, chunks: [] as Uint8Array[], closed: null as null | { code: number; reason: string }, ended: false, drains: 0 };
  stream.handlers = {
    ontext: (t) => got.text.push(t),
    ondata: (b) => {
      got.bytes += b.length;
      got.chunks.push(b.slice());
    },
    onclose: (code, reason) => (got.closed = { code, reason }),
    onend: () => (got.ended = true),
    ondrain: () => got.drains++,
  };
  return got;
}

describe("link streams", () => {
  test("each stream's messages reach its own peer, in order, however the streams interleave", () => {
    const { server, opened, flush } = pair();
    const a = server.open({ path: "/a" })!;
    const b = server.open({ path: "/b" })!;
    flush();
    expect(opened.map((o) => o.head.path)).toEqual(["/a", "/b"]);
    const [na, nb] = opened.map((o) => collect(o.stream));
    for (let i = 0; i < 50; i++) {
      a.send("text", `a${i}`);
      if (i % 3 === 0) b.send("text", `b${i}`);
    }
    flush();
    expect(na!.text).toEqual(Array.from({ length: 50 }, (_, i) => `a${i}`));
    expect(nb!.text).toEqual(Array.from({ length: 17 }, (_, i) => `b${i * 3}`));
    // And back: the node answers on b only.
    const sb = collect(b);
    const sa = collect(a);
    opened[1]!.stream.send("data", new Uint8Array([1, 2, 3]));
    flush();
    expect(sb.chunks.map((c) => [...c])).toEqual([[1, 2, 3]]);
    expect(sa.chunks).toEqual([]);
  });

  test("a sender stops at the window and goes on when the reader's credit comes back; nothing is lost", () => {
    const { server, opened, flush, toNode, node } = pair();
    const s = server.open({})!;
    flush();
    const got = collect(opened[0]!.stream);
    const drains = collect(s);
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const results = Array.from({ length: 40 }, () => s.send("data", chunk));
    // About a window goes out; the rest waits for credit, and the writer is told so.
    expect(results.filter((r) => r === "sent").length).toBe(16);
    expect(results.slice(16).every((r) => r === "queued")).toBe(true);
    expect(s.buffered()).toBe(40 * 64 * 1024);
    expect(toNode.length).toBe(16);
    flush();
    expect(got.bytes).toBe(40 * 64 * 1024);
    expect(drains.drains).toBe(1);
    expect(s.buffered()).toBeLessThan(64 * 1024);
    expect(node.refused).toBe(0);
  });

  test("a frame that overdraws the credit leaves the writer over the window with nothing queued: credit still wakes it", () => {
    const { server, opened, flush } = pair();
    const s = server.open({})!;
    flush();
    collect(opened[0]!.stream);
    const got = collect(s);
    expect(s.send("data", new Uint8Array(MiB - 1))).toBe("sent");
    expect(s.send("data", new Uint8Array(64 * 1024))).toBe("sent");
    expect(s.buffered()).toBeGreaterThan(MiB);
    flush();
    expect(got.drains).toBe(1);
    expect(s.buffered()).toBeLessThan(64 * 1024);
  });

  test("10 MiB in 4 KiB messages: the window never overflows and all credit comes back", () => {
    const { server, opened, flush, node } = pair();
    const s = server.open({})!;
    flush();
    const got = collect(opened[0]!.stream);
    for (let i = 0; i < 2560; i++) {
      s.send("data", new Uint8Array(4096).fill(i & 0xff));
      if (i % 100 === 0) flush();
    }
    flush();
    expect(got.bytes).toBe(10 * MiB);
    expect(got.chunks.every((c, i) => c[0] === (i & 0xff) && c.length === 4096)).toBe(true);
    // Whatever is still owed is less than one credit batch: the sender can always go on.
    expect(s.buffered()).toBeLessThan(64 * 1024);
    expect(node.refused).toBe(0);
  });

  test("a paused reader gets nothing more past the window, while another stream flows; resume lets it go on", () => {
    const { server, opened, flush } = pair();
    const slow = server.open({})!;
    const fast = server.open({})!;
    flush();
    const slowGot = collect(opened[0]!.stream);
    const fastGot = collect(opened[1]!.stream);
    opened[0]!.stream.pause();
    const chunk = new Uint8Array(256 * 1024);
    for (let i = 0; i < 12; i++) slow.send("data", chunk);
    for (let i = 0; i < 12; i++) fast.send("data", chunk);
    flush();
    expect(slowGot.bytes).toBe(4 * 256 * 1024);
    expect(slow.buffered()).toBe(12 * 256 * 1024);
    expect(fastGot.bytes).toBe(12 * 256 * 1024);
    opened[0]!.stream.resume();
    flush();
    expect(slowGot.bytes).toBe(12 * 256 * 1024);
  });

  test("a peer that sends past its credit loses that stream (1008), and only that one", () => {
    const { server, opened, flush, toNode } = pair();
    const a = server.open({})!;
    const b = server.open({})!;
    flush();
    const aGot = collect(a);
    const bGot = collect(b);
    // A slow browser holds stream a's credit; a rogue node ignores that and floods it with raw frames.
    a.pause();
    for (let i = 0; i < 40; i++) server.receive(encodeFrame(a.id, "data", new Uint8Array(64 * 1024)));
    expect(aGot.closed).toEqual({ code: 1008, reason: "sent past the stream's credit" });
    expect(aGot.bytes).toBe(16 * 64 * 1024);
    expect(a.closed).toBe(true);
    // No credit went out for it, only the close.
    expect(toNode.map((f) => decodeFrame(f)!.kind)).toEqual(["close"]);
    opened[1]!.stream.send("text", "still here");
    flush();
    expect(bGot.text).toEqual(["still here"]);
    expect(bGot.closed).toBeNull();
  });

  test("credit the sender was not owed closes the stream; a frame too big for the link closes only its stream", () => {
    const { server, flush, opened } = pair();
    const a = server.open({})!;
    const b = server.open({})!;
    flush();
    const aGot = collect(a);
    server.receive(encodeFrame(a.id, "credit", new Uint8Array([0, 0, 0, 1])));
    expect(aGot.closed?.code).toBe(1008);
    const bGot = collect(b);
    server.receive(encodeFrame(b.id, "data", new Uint8Array(linkLimits.maxPayload + 1)));
    expect(bGot.closed?.code).toBe(1009);
    expect(server.size).toBe(0);
    expect(opened.length).toBe(2);
  });

  test("frames naming no open stream, or malformed, are dropped and counted; opens from the node are refused", () => {
    const { server, node, flush, opened } = pair();
    const s = server.open({})!;
    flush();
    const got = collect(s);
    server.receive(encodeFrame(999, "data", utf8("x")));
    server.receive(encodeFrame(999, "close", new Uint8Array([3, 232])));
    server.receive(encodeFrame(s.id + 1, "open", utf8("{}")));
    server.receive(new Uint8Array([1, 2]));
    expect(server.refused).toBe(4);
    expect(got.closed).toBeNull();
    // The node: a stale or replayed open id opens nothing.
    node.receive(encodeFrame(s.id, "open", utf8("{}")));
    expect(opened.length).toBe(1);
    expect(node.refused).toBe(1);
  });

  test("a closed stream's id is never reused, and its late frames are dropped", () => {
    const { server, flush, opened } = pair();
    const a = server.open({})!;
    flush();
    a.close(1000, "done");
    flush();
    const b = server.open({})!;
    flush();
    expect(b.id).not.toBe(a.id);
    expect(a.send("text", "late")).toBe("closed");
    expect(opened.map((o) => o.stream.id)).toEqual([a.id, b.id]);
    expect(opened[0]!.stream.closed).toBe(true);
  });

  test("the node refuses streams past the limit and a head that is not JSON, with a close frame", () => {
    const { server, node, flush, toServer } = pair({ maxStreams: 2 });
    server.open({});
    server.open({});
    flush();
    node.receive(encodeFrame(3, "open", utf8("{}")));
    node.receive(encodeFrame(4, "open", utf8("{}")));
    expect(toServer.map((f) => [decodeFrame(f)!.id, decodeFrame(f)!.kind])).toEqual([
      [3, "close"],
      [4, "close"],
    ]);
    expect(server.open({})).toBeNull();
  });

  test("end: what was queued goes first, then the stream is done on both sides", () => {
    const { server, opened, flush } = pair();
    const s = server.open({})!;
    flush();
    const node = opened[0]!.stream;
    const got = collect(s);
    for (let i = 0; i < 20; i++) node.send("data", new Uint8Array(64 * 1024));
    node.end();
    expect(node.closed).toBe(false);
    flush();
    expect(got.bytes).toBe(20 * 64 * 1024);
    expect(got.ended).toBe(true);
    expect(s.closed).toBe(true);
    expect(node.closed).toBe(true);
  });

  test("closeAll: every stream hears the code and reason, once", () => {
    const { server, flush } = pair();
    const got = [server.open({})!, server.open({})!].map(collect);
    flush();
    server.closeAll(1011, "node link lost");
    server.closeAll(1011, "again");
    expect(got.map((g) => g.closed)).toEqual([
      { code: 1011, reason: "node link lost" },
      { code: 1011, reason: "node link lost" },
    ]);
  });

  test("a message over the frame limit closes the stream instead of going out", () => {
    const { server, flush, opened } = pair();
    const s = server.open({})!;
    flush();
    const got = collect(opened[0]!.stream);
    expect(s.send("data", new Uint8Array(linkLimits.maxPayload + 1))).toBe("closed");
    flush();
    expect(got.closed).toEqual({ code: 1009, reason: "message over 1 MiB" });
  });
});
