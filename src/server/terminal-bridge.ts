/**
 * A browser's terminal WebSocket <-> the node link's socket to the executor's attach or exec route. Messages pass as
 * the executor's terminal protocol has them (text: JSON control, binary: terminal bytes); from the browser only
 * well-formed resize messages and bytes go on.
 *
 * Memory stays bounded both ways. Input: the link takes no more once over 1 MiB is queued on it, so input waits here
 * (up to 1 MiB) until it drains; past that the terminal is closed (1009). Output: the link cannot be paused, so when
 * the browser falls more than `outputBytes` behind, the terminal is closed (1008) and the page attaches again: the
 * session runs on, and the executor stops reading its output once the link's window is full.
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import type { LinkSocket, NodeLink } from "../link/types.ts";
import { parseControl } from "../executor/validate.ts";

export interface TerminalSocketData {
  kind: "web-terminal";
  /** The Beaker account the link opens it as. */
  user: string;
  link: NodeLink;
  /** The executor route, e.g. `/v1/sessions/ID/attach?cols=80&rows=24`. */
  path: string;
  node?: LinkSocket;
  held: Uint8Array[];
  heldBytes: number;
  closed: boolean;
}

export const bridgeLimits = {
  /** What the link takes before its sender waits (src/link/types.ts). */
  linkBuffered: 1024 * 1024,
  /** Input held here while the link is full. */
  heldInput: 1024 * 1024,
  /** Output the browser may have unread before its terminal is closed. */
  outputBytes: 4 * 1024 * 1024,
};

/** Close codes a server may send as they are; anything else (1006, 1015, ...) becomes 1011. */
function browserCode(code: number): number {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999) ? code : 1011;
}

/** A close reason fits in 123 bytes. */
function shortReason(reason: string): string {
  let out = reason;
  while (new TextEncoder().encode(out).length > 123) out = out.slice(0, -1);
  return out;
}

function end(ws: ServerWebSocket<TerminalSocketData>, code: number, reason: string): void {
  if (ws.data.closed) return;
  ws.data.closed = true;
  ws.data.held = [];
  ws.data.node?.close(1000, "browser terminal closed");
  ws.close(browserCode(code), shortReason(reason));
}

/** Held input out to the link, while it takes it. */
function flush(ws: ServerWebSocket<TerminalSocketData>): void {
  const node = ws.data.node;
  while (node && ws.data.held.length > 0 && node.buffered() <= bridgeLimits.linkBuffered) {
    const chunk = ws.data.held.shift()!;
    ws.data.heldBytes -= chunk.length;
    node.send(chunk);
  }
}

export function terminalData(user: string, link: NodeLink, path: string): TerminalSocketData {
  return { kind: "web-terminal", user, link, path, held: [], heldBytes: 0, closed: false };
}

export const terminalBridge: WebSocketHandler<TerminalSocketData> = {
  open(ws) {
    const node = ws.data.link.socket(ws.data.user, ws.data.path);
    ws.data.node = node;
    node.onmessage = (message) => {
      if (ws.data.closed) return;
      ws.send(message);
      if (ws.getBufferedAmount() > bridgeLimits.outputBytes) end(ws, 1008, "the browser did not keep up with the terminal's output");
    };
    node.onclose = (code, reason) => {
      if (ws.data.closed) return;
      ws.data.closed = true;
      ws.close(browserCode(code), shortReason(reason));
    };
    node.ondrain = () => flush(ws);
  },
  message(ws, message) {
    if (ws.data.closed) return;
    if (typeof message === "string") {
      const control = parseControl(message);
      if (control?.type === "resize") ws.data.node?.send(JSON.stringify(control));
      return;
    }
    const bytes = new Uint8Array(message);
    if (ws.data.held.length === 0 && (ws.data.node?.buffered() ?? 0) <= bridgeLimits.linkBuffered) {
      ws.data.node?.send(bytes);
      return;
    }
    if (ws.data.heldBytes + bytes.length > bridgeLimits.heldInput) return end(ws, 1009, "over 1 MiB of input the session did not take");
    ws.data.held.push(bytes);
    ws.data.heldBytes += bytes.length;
  },
  close(ws) {
    if (!ws.data.closed) ws.data.node?.close(1000, "browser left");
    ws.data.closed = true;
    ws.data.held = [];
  },
};
