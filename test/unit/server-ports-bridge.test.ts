/**
 * The bridge from a unix socket to link streams: private (0700 folder, 0600 socket), nothing sent before the executor
 * says connected, its refusal kept for the error page, and reading from Bun stops while the link holds over 1 MiB.
 */
import { afterEach, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { dirname } from "node:path";
import type { LinkSocket, NodeLinks } from "../../src/link/types.ts";
import { PortBridges } from "../../src/server/ports/bridge.ts";
import { eventually } from "../harness.ts";

/** A link stream the test drives by hand: what was sent, what it pretends to hold. */
class ManualSocket implements LinkSocket {
  received = 0;
  held = 0;
  closed: number | null = null;
  onmessage: ((message: string | Uint8Array) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;
  ondrain: (() => void) | null = null;
  send(message: string | Uint8Array): boolean {
    if (typeof message !== "string") {
      this.received += message.byteLength;
      this.held += message.byteLength;
    }
    return this.closed === null;
  }
  buffered(): number {
    return this.held;
  }
  close(code = 1000): void {
    this.closed = code;
  }
  /** The node took everything. */
  drain(): void {
    this.held = 0;
    this.ondrain?.();
  }
}

const opened: Array<{ user: string; path: string; socket: ManualSocket }> = [];
const links: NodeLinks = {
  get: (node) =>
    node === "n1"
      ? {
          request: () => Promise.reject(new Error("unused")),
          socket: (user, path) => {
            const socket = new ManualSocket();
            opened.push({ user, path, socket });
            return socket;
          },
        }
      : null,
};
let bridges: PortBridges;
afterEach(() => {
  bridges?.close();
  opened.length = 0;
});
const target = { user: "ada", node: "n1", sessionId: "0123456789ab", port: 8888 };

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(path, () => resolve(c));
    c.once("error", reject);
  });
}
const until = (what: () => boolean) => eventually(what, 5_000, { intervalMs: 5 });

test("private: a 0700 folder, a 0600 socket, one per target, reused", async () => {
  bridges = new PortBridges(links, () => {});
  const path = await bridges.path(target);
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
  expect(await bridges.path(target)).toBe(path);
  expect(await bridges.path({ ...target, port: 8889 })).not.toBe(path);
  expect(await bridges.path({ ...target, user: "bob" })).not.toBe(path);
});

test("each connection is a link stream to the port route, as the user; nothing is sent before connected", async () => {
  bridges = new PortBridges(links, () => {});
  const c = await dial(await bridges.path(target));
  await until(() => opened.length === 1);
  expect(opened[0]!.user).toBe("ada");
  expect(opened[0]!.path).toBe("/v1/sessions/0123456789ab/ports/8888");
  c.write("GET / HTTP/1.1\r\n\r\n");
  // Nothing may cross before `connected`: a window in which nothing happens, not a wait for something.
  await Bun.sleep(30);
  expect(opened[0]!.socket.received).toBe(0);
  opened[0]!.socket.onmessage!(JSON.stringify({ type: "connected" }));
  await until(() => opened[0]!.socket.received === 18);
  const got: Buffer[] = [];
  c.on("data", (d: Buffer) => got.push(d));
  opened[0]!.socket.onmessage!(new TextEncoder().encode("HTTP/1.1 200 OK\r\n"));
  await until(() => Buffer.concat(got).toString() === "HTTP/1.1 200 OK\r\n");
  c.destroy();
  await until(() => opened[0]!.socket.closed === 1000);
});

test("the executor's refusal closes the connection and is kept to say why", async () => {
  bridges = new PortBridges(links, () => {});
  const c = await dial(await bridges.path(target));
  await until(() => opened.length === 1);
  const closed = new Promise<void>((resolve) => c.on("close", () => resolve()));
  opened[0]!.socket.onmessage!(JSON.stringify({ type: "error", code: "unavailable", message: "nothing answers on port 8888" }));
  await closed;
  expect(bridges.lastError(target)).toBe("nothing answers on port 8888");
});

test("a node without a link: the connection closes, and the reason is kept", async () => {
  bridges = new PortBridges(links, () => {});
  const t = { ...target, node: "gone" };
  const c = await dial(await bridges.path(t));
  await new Promise<void>((resolve) => c.on("close", () => resolve()));
  expect(bridges.lastError(t)).toContain("node gone is not connected");
});

test("backpressure: reading stops while the link holds over 1 MiB, and goes on at its drain", async () => {
  bridges = new PortBridges(links, () => {});
  const c = await dial(await bridges.path(target));
  await until(() => opened.length === 1);
  const s = opened[0]!.socket;
  s.onmessage!(JSON.stringify({ type: "connected" }));
  const total = 16 * 1024 * 1024;
  c.write(new Uint8Array(total));
  await until(() => s.received > 1024 * 1024);
  expect(s.received).toBeLessThan(4 * 1024 * 1024);
  await until(() => {
    s.drain();
    return s.received === total;
  });
  c.destroy();
});

test("an unused bridge is closed after its idle time", async () => {
  bridges = new PortBridges(links, () => {}, 50);
  const path = await bridges.path(target);
  await until(() => {
    try {
      statSync(path);
      return false;
    } catch {
      return true;
    }
  });
});
