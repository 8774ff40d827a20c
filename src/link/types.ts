/**
 * The node link (docs/ARCHITECTURE.md "Node link"): one outbound WebSocket from each executor to its server, over
 * which the server relays browser requests to that node. These are the server's handles on it; the executor side and
 * the wire format live in src/link/ and src/executor/link/.
 */

/** A request relayed to an executor's API (`/v1/...`), made there as `user` (a Beaker account name). */
export interface LinkRequest {
  method: "GET" | "POST";
  /** The executor route with its query, e.g. `/v1/sessions?all=1` or `/v1/sessions/ID/stop`. */
  path: string;
  /** JSON body for POST (a create, a stop); at most 1 MiB. */
  body?: unknown;
}

/**
 * A WebSocket-like stream to one of the executor's socket routes (`/v1/sessions/REF/attach|exec?...`, or
 * `/v1/sessions/REF/ports/PORT`), opened there as `user`. Messages are as on the executor's own socket: text frames
 * are JSON control messages, binary frames are bytes.
 */
export interface LinkSocket {
  /** Queues one message; false once the stream is closed. Callers stop sending while `buffered()` is over 1 MiB. */
  send(message: string | Uint8Array): boolean;
  /** Bytes queued on this stream and not yet taken by the node. */
  buffered(): number;
  close(code?: number, reason?: string): void;
  /** Each message from the node, in order. Set before the first await after `socket()`. */
  onmessage: ((message: string | Uint8Array) => void) | null;
  /** Called once, when the node or the link closes the stream (1011 and a reason when the link is lost). */
  onclose: ((code: number, reason: string) => void) | null;
  /** Called when `buffered()` falls back under 1 MiB. */
  ondrain: (() => void) | null;
}

export interface NodeLink {
  /** One request to the node as `user`; resolves with the executor's response (its body streams, NDJSON for a create). */
  request(user: string, req: LinkRequest, signal?: AbortSignal): Promise<Response>;
  /** Opens a socket stream to the node as `user`. */
  socket(user: string, path: string): LinkSocket;
}

export interface NodeLinks {
  /** The node's live link, or null (offline, or its executor has no link). Names are `Node.name` (server store). */
  get(node: string): NodeLink | null;
}
