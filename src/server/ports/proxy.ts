/**
 * The proxy proper: a browser's request, or its WebSocket, carried to a session's port through a bridge socket
 * (bridge.ts), streaming both ways. Headers cross as headers.ts decides.
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { requestHeaders, responseHeaders } from "./headers.ts";

/**
 * Sends `req` to the HTTP server behind `socketPath` (one connection per request: each is one TCP connection in the
 * session, closed with it, so none is left open to count against the user's connections) and streams its answer back.
 * Redirects and encodings pass through untouched.
 */
export async function forwardHttp(req: Request, socketPath: string, host: string): Promise<Response> {
  const url = new URL(req.url);
  const hasBody = req.method !== "GET" && req.method !== "HEAD" && req.body !== null;
  const upstream = await fetch(`http://${host}${url.pathname}${url.search}`, {
    method: req.method,
    headers: requestHeaders(req.headers, host),
    body: hasBody ? req.body : undefined,
    redirect: "manual",
    decompress: false,
    keepalive: false,
    unix: socketPath,
    signal: req.signal,
  } as RequestInit);
  const empty = req.method === "HEAD" || upstream.status === 204 || upstream.status === 304;
  return new Response(empty ? null : upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: responseHeaders(upstream.headers) });
}

/** What a browser's WebSocket carries on this server: the session-side socket, and what it sent before ours opened. */
export interface PortSocketData {
  kind: "port";
  upstream: WebSocket;
  early: Array<string | ArrayBuffer> | null;
}

/** How far one side may fall behind the other before the pair is closed (1009), rather than held without bound. */
const heldLimit = 64 * 1024 * 1024;

/**
 * Opens the session-side WebSocket first (so the browser's handshake can answer with the subprotocol the session
 * chose); resolves once it is open, or rejects when the session refused it.
 */
export function openUpstreamSocket(req: Request, socketPath: string, host: string): Promise<WebSocket> {
  const url = new URL(req.url);
  const headers = requestHeaders(req.headers, host);
  for (const name of [...headers.keys()]) if (name.startsWith("sec-websocket-")) headers.delete(name);
  const protocols = (req.headers.get("sec-websocket-protocol") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const ws = new WebSocket(`ws+unix://${socketPath}:${url.pathname}${url.search}`, { headers: Object.fromEntries(headers), protocols } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("the session's port refused the WebSocket"));
    ws.onclose = () => reject(new Error("the session's port closed the WebSocket"));
  });
}

/** A close code a WebSocket may send (1005, 1006 and 1015 only describe what happened). */
function sendable(code: number): number {
  return code === 1000 || (code >= 1001 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** Bun.serve's `websocket` for port sockets: each browser message to the session's socket and back, in order. */
export const portWebSocket: WebSocketHandler<PortSocketData> = {
  open(ws: ServerWebSocket<PortSocketData>) {
    const { upstream } = ws.data;
    upstream.onmessage = (event) => {
      ws.send(event.data as string | ArrayBuffer);
      if (ws.getBufferedAmount() > heldLimit) ws.close(1009, "not read");
    };
    upstream.onclose = (event) => ws.close(sendable(event.code), event.reason.slice(0, 120));
    upstream.onerror = () => ws.close(1011, "session socket error");
    for (const message of ws.data.early ?? []) ws.send(message);
    ws.data.early = null;
    if (upstream.readyState === WebSocket.CLOSING || upstream.readyState === WebSocket.CLOSED) ws.close(1000);
  },
  message(ws, message) {
    const { upstream } = ws.data;
    if (upstream.readyState !== WebSocket.OPEN) return;
    upstream.send(typeof message === "string" ? message : new Uint8Array(message));
    if (upstream.bufferedAmount > heldLimit) ws.close(1009, "not read");
  },
  close(ws, code, reason) {
    const { upstream } = ws.data;
    if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) upstream.close(sendable(code), reason);
  },
};

/** Holds what the session sends between its socket opening and the browser's handshake completing. */
export function holdEarly(data: PortSocketData): void {
  data.upstream.onmessage = (event) => data.early?.push(event.data as string | ArrayBuffer);
  data.upstream.onclose = () => {};
}
