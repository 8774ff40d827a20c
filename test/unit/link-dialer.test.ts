/**
 * The executor's dialler (src/executor/link/dialer.ts) against the server's code in this process: it links with the
 * node token in a header, the server relays a stream down it, and after the server goes away it logs one line, dials
 * again with backoff and links again when the server is back.
 */
import { afterAll, expect, test } from "bun:test";
import { createServer } from "node:net";
import { LinkDialer } from "../../src/executor/link/dialer.ts";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { InProcessServer } from "../server-harness.ts";

const server = new InProcessServer();
const dir = tempDir("beaker-dialer-");
afterAll(async () => {
  await server.cleanup();
  removeDir(dir);
});

test("links, relays, and after a server restart links again, with one log line per change", async () => {
  await server.start();
  const { token } = await server.addNode("gpu-1", "lab", dir);
  const lines: string[] = [];
  const dialer = new LinkDialer({
    serverUrl: server.url,
    nodeName: "gpu-1",
    token: () => token,
    log: (line) => lines.push(line),
    random: () => 0,
    onStream: (stream, head) => {
      stream.sendHead({ status: 200, contentType: "application/json" });
      stream.send("data", JSON.stringify({ youAre: head.user, path: head.path }));
      stream.end();
    },
  });
  dialer.start();
  try {
    const link = await eventually(() => server.links.get("gpu-1"), 10_000, { what: "the link" });
    expect(lines).toEqual([`node link to ${server.url} is up`]);
    expect(await (await link.request("alice", { method: "GET", path: "/v1/gpus" })).json()).toEqual({ youAre: "alice", path: "/v1/gpus" });
    const port = server.port;
    await server.kill();
    await eventually(() => lines.length === 2, 10_000, { what: "the down line" });
    expect(lines[1]).toMatch(new RegExp(`^node link to ${server.url.replace(/\./g, "\\.")} is down \\(.*\\); dialling again with backoff \\(1 s to 30 s\\)$`));
    // A failed try while the server is away (a bare listener hangs up on it): no more lines.
    let tries = 0;
    const listener = createServer((socket) => {
      tries++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, "127.0.0.1", resolve));
    await eventually(() => tries >= 1, 10_000, { what: "a try while the server is away" });
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(lines.length).toBe(2);
    await server.start(port);
    await eventually(() => server.links.get("gpu-1"), 15_000, { what: "the link again" });
    expect(lines.slice(2)).toEqual([`node link to ${server.url} is up`]);
  } finally {
    dialer.stop();
  }
  await eventually(() => server.links.get("gpu-1") === null, 5000, { what: "the link to go when the dialler stops" });
  expect(lines.length).toBe(3);
}, 30_000);

test("a token the server refuses: down once, and no link", async () => {
  const lines: string[] = [];
  const dialer = new LinkDialer({ serverUrl: server.url, nodeName: "gpu-2", token: () => "bkn_0123456789_" + "A".repeat(43), log: (l) => lines.push(l), random: () => 0, onStream: () => {} });
  dialer.start();
  try {
    await eventually(() => lines.length === 1, 10_000, { what: "the down line" });
    expect(lines[0]).toMatch(/is down/);
    expect(server.links.get("gpu-2")).toBeNull();
  } finally {
    dialer.stop();
  }
});
