/**
 * One stream the server opened on the node link: a request to the executor's API as a Beaker account. The head says
 * `{user, method, path, body?, socket?}`. Only `/v1/sessions...` and `/v1/gpus` are reachable this way (checked on
 * the path as the URL parser normalises it, so `/v1/sessions/../restart` is `/v1/restart` and refused); the account
 * is mapped to a local one (accounts.ts); then the request is the executor's own `route`, with that uid, exactly as
 * if it had come on the unix socket. An HTTP answer goes back as `head`, `data`..., `end`; a socket route becomes a
 * `PeerSocket` over the stream, run by the same terminal and port-relay code as a WebSocket on the socket.
 */
import { errorCodeOf, errorMessage, ForbiddenError, httpStatusOf, UsageError } from "../../errors.ts";
import type { LinkStream } from "../../link/mux.ts";
import type { PeerSocket } from "../terminals/peer.ts";
import type { LocalAccount } from "./accounts.ts";

/** What the relay asks of the executor: its router and socket handlers (routes.ts), and the account mapping. */
export interface RelayDeps<D> {
  route(req: Request, caller: { uid: number; account: () => Promise<string | null>; untimed: () => void; received: number }): Promise<Response | { socket: D }>;
  sockets: {
    open(ws: PeerSocket<D>): void;
    message(ws: PeerSocket<D>, message: string | Buffer): void;
    drain(ws: PeerSocket<D>): void;
    close(ws: PeerSocket<D>): void;
  };
  account(beakerName: string): Promise<LocalAccount>;
  log: (line: string) => void;
}

interface Head {
  user: string;
  method: "GET" | "POST";
  url: URL;
  body: string | null;
  socket: boolean;
}

/** HTTP bodies go back in pieces of this size: a create's event stream is small, a GPU report a few KiB. */
const chunkBytes = 64 * 1024;

/** The routes a relayed request may reach: a user's own sessions and the node's GPUs. Pure. */
export function linkMayReach(path: string): boolean {
  return path === "/v1/gpus" || path === "/v1/sessions" || path.startsWith("/v1/sessions/");
}

/** The stream's head, checked; the URL as the router will see it. Pure. */
export function parseLinkHead(head: Record<string, unknown>): Head {
  const { user, method, path, body, socket } = head;
  if (typeof user !== "string" || user === "") throw new UsageError("a relayed request names its Beaker account");
  if (method !== "GET" && method !== "POST") throw new UsageError("a relayed request is a GET or a POST");
  if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) throw new UsageError("a relayed request's path starts with one /");
  const url = new URL(path, "http://link");
  if (!linkMayReach(url.pathname)) throw new ForbiddenError(`${url.pathname} is not reachable over the node link`);
  return { user, method, url, body: body === undefined ? (method === "POST" ? "{}" : null) : JSON.stringify(body), socket: socket === true };
}

/** Handles one stream the server opened. Never throws: a refusal is the stream's answer. */
export async function relayStream<D>(stream: LinkStream, rawHead: Record<string, unknown>, deps: RelayDeps<D>): Promise<void> {
  const received = performance.timeOrigin + performance.now();
  const abort = new AbortController();
  // Messages that come while the account is looked up wait here; the stream is paused, so at most a window of them.
  const early: Array<string | Uint8Array> = [];
  stream.pause();
  stream.handlers = { ontext: (text) => early.push(text), ondata: (bytes) => early.push(bytes.slice()), onclose: () => abort.abort() };
  let head: Head | null = null;
  try {
    head = parseLinkHead(rawHead);
    const local = await deps.account(head.user).catch((err) => {
      deps.log(`node link: refused a request for ${JSON.stringify(head!.user)}: ${errorMessage(err)}`);
      throw err;
    });
    if (stream.closed) return;
    const req = new Request(`http://link${head.url.pathname}${head.url.search}`, {
      method: head.method,
      headers: { "content-type": "application/json", ...(head.socket ? { upgrade: "websocket" } : {}) },
      ...(head.body !== null ? { body: head.body } : {}),
      signal: abort.signal,
    });
    const user = head.user;
    const result = await deps.route(req, { uid: local.uid, account: async () => user, untimed: () => {}, received });
    if (result instanceof Response) {
      if (head.socket) return refuseSocket(stream, await errorOf(result));
      return await sendResponse(stream, result);
    }
    if (!head.socket) throw new UsageError("that route is a WebSocket: open it as a socket");
    openSocket(stream, result.socket, deps, early);
  } catch (err) {
    if (head?.socket ?? rawHead.socket === true) refuseSocket(stream, { code: errorCodeOf(err), message: errorMessage(err) });
    else await sendResponse(stream, Response.json({ error: { code: errorCodeOf(err), message: errorMessage(err) } }, { status: httpStatusOf(err) }));
  }
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json().catch(() => null)) as { error?: { code?: unknown; message?: unknown } } | null;
  return { code: String(body?.error?.code ?? "error"), message: String(body?.error?.message ?? `HTTP ${res.status}`) };
}

/** A socket route that could not open: the control message a terminal sends for an error, then the close. */
function refuseSocket(stream: LinkStream, error: { code: string; message: string }): void {
  stream.send("text", JSON.stringify({ type: "error", ...error }));
  stream.close(1011, "error");
}

/** The answer's status and type, then its body in pieces, each sent when the stream has credit, then `end`. */
async function sendResponse(stream: LinkStream, res: Response): Promise<void> {
  let wake: (() => void) | null = null;
  const closed = stream.handlers.onclose;
  stream.handlers.ondrain = () => wake?.();
  stream.handlers.onclose = (code, reason) => {
    closed?.(code, reason);
    wake?.();
  };
  stream.sendHead({ status: res.status, contentType: res.headers.get("content-type") });
  const reader = res.body?.getReader();
  try {
    while (reader && !stream.closed) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = typeof value === "string" ? new TextEncoder().encode(value) : (value as Uint8Array);
      for (let at = 0; at < bytes.length && !stream.closed; at += chunkBytes) {
        if (stream.send("data", bytes.subarray(at, at + chunkBytes)) === "queued") await new Promise<void>((resolve) => (wake = resolve));
      }
    }
  } finally {
    // The server hung up (a browser left): the body's producer (a queued create) hears it through the request's signal.
    if (stream.closed) await reader?.cancel().catch(() => {});
  }
  stream.end();
}

/** A terminal or port relay on the stream: the same handlers as a WebSocket on the executor's socket. */
function openSocket<D>(stream: LinkStream, data: D, deps: RelayDeps<D>, early: Array<string | Uint8Array>): void {
  let ended = false;
  // As Bun does: the close handler runs once, after the call that closed, whichever side closed.
  const end = () => {
    if (ended) return;
    ended = true;
    queueMicrotask(() => deps.sockets.close(peer));
  };
  const peer: PeerSocket<D> = {
    data,
    send: (text) => stream.send("text", text),
    sendBinary: (bytes) => {
      const sent = stream.send("data", bytes);
      return sent === "sent" ? bytes.length : sent === "queued" ? -1 : 0;
    },
    getBufferedAmount: () => stream.buffered(),
    close: (code = 1000, reason = "") => {
      stream.close(code, reason);
      end();
    },
  };
  stream.handlers = {
    ontext: (text) => deps.sockets.message(peer, text),
    ondata: (bytes) => deps.sockets.message(peer, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    ondrain: () => deps.sockets.drain(peer),
    onclose: () => end(),
  };
  deps.sockets.open(peer);
  for (const message of early.splice(0)) deps.sockets.message(peer, typeof message === "string" ? message : Buffer.from(message));
  stream.resume();
}
