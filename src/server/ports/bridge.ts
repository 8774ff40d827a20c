/**
 * Private bridges from this server into sessions' ports, so that Bun speaks HTTP/1.1 and WebSocket to a session
 * (`fetch(url, {unix})`, `new WebSocket("ws+unix://...")`) instead of this code framing either by hand.
 *
 * One unix socket per target (Beaker user, node, session, port), in a private folder (0700, the socket 0600), kept
 * while in use and closed a minute after its last use. Each connection accepted on it is one TCP connection into the
 * session: a fresh `LinkSocket` to the executor's port route `/v1/sessions/ID/ports/PORT`, opened there as that user
 * and checked there like any request. Nothing is sent before the executor says `connected`.
 *
 * Backpressure: bytes from Bun go to the link while it holds under 1 MiB (`buffered()`), then reading stops until
 * `ondrain`. The link cannot be paused the other way; a connection whose reader (Bun, then the browser) falls 64 MiB
 * behind is closed rather than held without bound.
 */
import { mkdtempSync, rmSync, chmodSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LinkSocket, NodeLinks } from "../../link/types.ts";
import type { PortTarget } from "./host.ts";

export interface BridgeTarget extends PortTarget {
  /** The Beaker account the executor opens the port as. */
  user: string;
  node: string;
}

const linkHigh = 1024 * 1024;
const heldLimit = 64 * 1024 * 1024;

interface Bridge {
  path: string;
  server: Server;
  active: number;
  lastUsed: number;
  lastError: string | null;
}

export class PortBridges {
  private readonly dir = mkdtempSync(join(tmpdir(), "beaker-ports-"));
  private readonly bridges = new Map<string, Bridge>();
  private next = 0;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(
    private readonly links: NodeLinks,
    private readonly log: (line: string) => void,
    private readonly idleMs = 60_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(idleMs, 10_000));
    this.sweeper.unref?.();
  }

  /** The socket that reaches `target`, made on first use. */
  async path(target: BridgeTarget): Promise<string> {
    const key = [target.user, target.node, target.sessionId, target.port].join("\0");
    let bridge = this.bridges.get(key);
    if (!bridge) {
      bridge = await this.open(target);
      const raced = this.bridges.get(key);
      if (raced) {
        bridge.server.close();
        bridge = raced;
      } else this.bridges.set(key, bridge);
    }
    bridge.lastUsed = Date.now();
    return bridge.path;
  }

  /** Why the last connection to `target` was refused by the executor (its message), if one was. */
  lastError(target: BridgeTarget): string | null {
    return this.bridges.get([target.user, target.node, target.sessionId, target.port].join("\0"))?.lastError ?? null;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const b of this.bridges.values()) b.server.close();
    this.bridges.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, b] of this.bridges) {
      if (b.active > 0 || now - b.lastUsed < this.idleMs) continue;
      this.bridges.delete(key);
      b.server.close();
    }
  }

  private async open(target: BridgeTarget): Promise<Bridge> {
    const path = join(this.dir, `${this.next++}.sock`);
    const bridge: Bridge = { path, server: createServer(), active: 0, lastUsed: Date.now(), lastError: null };
    bridge.server.on("connection", (conn) => this.relay(bridge, target, conn));
    await new Promise<void>((resolve, reject) => {
      bridge.server.once("error", reject);
      bridge.server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    return bridge;
  }

  /** One accepted connection piped to a fresh link stream of the target. */
  private relay(bridge: Bridge, target: BridgeTarget, conn: Socket): void {
    conn.pause();
    const link = this.links.get(target.node);
    if (!link) {
      bridge.lastError = `node ${target.node} is not connected to this server (offline, or its executor has no node link)`;
      conn.destroy();
      return;
    }
    bridge.active++;
    let stream: LinkSocket;
    try {
      stream = link.socket(target.user, `/v1/sessions/${target.sessionId}/ports/${target.port}`);
    } catch (err) {
      bridge.active--;
      bridge.lastError = err instanceof Error ? err.message : String(err);
      conn.destroy();
      return;
    }
    let connected = false;
    let done = false;
    const finish = () => {
      if (done) return false;
      done = true;
      bridge.active--;
      bridge.lastUsed = Date.now();
      return true;
    };
    stream.onmessage = (message) => {
      if (typeof message === "string") {
        if (connected) return;
        const control = parseControl(message);
        if (control?.type === "connected") {
          connected = true;
          conn.resume();
        } else if (control?.type === "error") {
          bridge.lastError = control.message ?? "the executor refused the connection";
          stream.close(1000);
          conn.destroy();
        }
        return;
      }
      if (!connected || conn.destroyed) return;
      conn.write(message);
      if (conn.writableLength > heldLimit) {
        this.log(`port ${target.port} of session ${target.sessionId}: the browser side fell ${heldLimit} bytes behind; connection closed`);
        stream.close(1008, "not read");
        conn.destroy();
      }
    };
    stream.ondrain = () => {
      if (connected && !conn.destroyed) conn.resume();
    };
    stream.onclose = () => {
      finish();
      if (!conn.destroyed) conn.end();
    };
    conn.on("data", (chunk: Buffer) => {
      if (!stream.send(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) return void conn.destroy();
      if (stream.buffered() > linkHigh) conn.pause();
    });
    conn.on("error", () => conn.destroy());
    conn.on("close", () => {
      if (finish()) stream.close(1000);
    });
  }
}

function parseControl(text: string): { type?: string; message?: string } | null {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === "object" ? (value as { type?: string; message?: string }) : null;
  } catch {
    return null;
  }
}
