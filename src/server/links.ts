/**
 * The server's end of the node links (docs/ARCHITECTURE.md "Node link"): each executor dials `GET
 * /api/v1/nodes/link` with its node token (app.ts checks it) and keeps the WebSocket; the server relays requests and
 * sockets to it as streams (src/link/mux.ts). One live link per node: a new one replaces the old, whose streams end
 * (1011). The links live in this process's memory only: with several servers behind a balancer, a node is linked to
 * one of them.
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { BodyTooLargeError, UnavailableError } from "../errors.ts";
import { linkLimits, utf8 } from "../link/frames.ts";
import { LinkMux, type LinkStream } from "../link/mux.ts";
import type { LinkRequest, LinkSocket, NodeLink, NodeLinks } from "../link/types.ts";

export interface LinkData {
  /** The node the token belongs to (never what the request said). */
  hostname: string;
  link?: ServerNodeLink;
}

/** What a handler answers once it has upgraded the request: Bun.serve's fetch then returns nothing. */
export const linkUpgraded = new Response(null, { status: 101 });

/** Bun's own limit on one message: larger ones end the whole link; frames between the link's limit and this end their stream only. */
const socketMessageLimit = 4 * 1024 * 1024;

/** LinkSocket's threshold for `ondrain`. */
const drainBelow = 1024 * 1024;

class ServerLinkSocket implements LinkSocket {
  onmessage: ((message: string | Uint8Array) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;
  ondrain: (() => void) | null = null;
  private ended = false;

  constructor(private readonly stream: LinkStream) {
    stream.handlers = {
      ontext: (text) => this.onmessage?.(text),
      // A copy: the frame's buffer is the WebSocket's, and a reader may keep the message past this call.
      ondata: (bytes) => this.onmessage?.(bytes.slice()),
      ondrain: () => {
        if (this.stream.buffered() < drainBelow) this.ondrain?.();
      },
      onclose: (code, reason) => this.end(code, reason),
    };
  }

  send(message: string | Uint8Array): boolean {
    return this.stream.send(typeof message === "string" ? "text" : "data", message) !== "closed";
  }

  buffered(): number {
    return this.stream.buffered();
  }

  close(code = 1000, reason = ""): void {
    this.ended = true;
    this.stream.close(code, reason);
  }

  /** Not in LinkSocket yet: a reader that cannot pass messages on (a slow browser) stops the node until it resumes. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  private end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.onclose?.(code, reason);
  }
}

/** A socket that never opened (the link has too many streams): it closes as soon as its handlers are set. */
function refusedSocket(code: number, reason: string): LinkSocket {
  const socket: LinkSocket = { onmessage: null, onclose: null, ondrain: null, send: () => false, buffered: () => 0, close: () => (socket.onclose = null) };
  queueMicrotask(() => socket.onclose?.(code, reason));
  return socket;
}

export class ServerNodeLink implements NodeLink {
  readonly mux: LinkMux;

  constructor(private readonly ws: ServerWebSocket<LinkData>) {
    this.mux = new LinkMux({ send: (frame) => void ws.send(frame) });
  }

  request(user: string, req: LinkRequest, signal?: AbortSignal): Promise<Response> {
    const head = { user, method: req.method, path: req.path, ...(req.body !== undefined ? { body: req.body } : {}) };
    if (req.body !== undefined && utf8(JSON.stringify(req.body)).length > linkLimits.maxPayload - 4096) return Promise.reject(new BodyTooLargeError(linkLimits.maxPayload - 4096));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const stream = this.mux.open(head);
    if (!stream) return Promise.reject(new UnavailableError("the node link has too many requests open; try again"));
    return new Promise<Response>((resolve, reject) => {
      let body: ReadableStreamDefaultController<Uint8Array> | null = null;
      const abort = () => {
        stream.close(1000, "the caller left");
        const reason = signal?.reason ?? new Error("aborted");
        if (body) body.error(reason);
        else reject(reason);
      };
      signal?.addEventListener("abort", abort, { once: true });
      const done = () => signal?.removeEventListener("abort", abort);
      stream.handlers = {
        onhead: (h) => {
          const status = typeof h.status === "number" && h.status >= 200 && h.status <= 599 ? h.status : 502;
          const readable = new ReadableStream<Uint8Array>(
            {
              start: (controller) => void (body = controller),
              // A reader that does not read holds the node's credit: the node waits, nothing piles up here.
              pull: () => stream.resume(),
              cancel: () => {
                done();
                stream.close(1000, "the caller left");
              },
            },
            { highWaterMark: 4 },
          );
          resolve(new Response(readable, { status, headers: typeof h.contentType === "string" ? { "content-type": h.contentType } : {} }));
        },
        ondata: (bytes) => {
          if (!body) return;
          body.enqueue(bytes.slice());
          if ((body.desiredSize ?? 1) <= 0) stream.pause();
        },
        onend: () => {
          done();
          body?.close();
        },
        onclose: (code, reason) => {
          done();
          const err = new UnavailableError(`the node ended the request (${code}${reason ? ` ${reason}` : ""})`);
          if (body) body.error(err);
          else reject(err);
        },
      };
    });
  }

  socket(user: string, path: string): LinkSocket {
    const stream = this.mux.open({ user, method: "GET", path, socket: true });
    return stream ? new ServerLinkSocket(stream) : refusedSocket(1013, "the node link has too many streams open");
  }

  /** The link is gone (its socket closed, or a newer link replaced it): every stream ends with 1011. */
  lost(reason: string): void {
    this.mux.closeAll(1011, reason);
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }
}

/** Every node's live link in this server process. */
export class LinkHub implements NodeLinks {
  private readonly links = new Map<string, ServerNodeLink>();

  constructor(private readonly log: (line: string) => void) {}

  get(node: string): NodeLink | null {
    return this.links.get(node) ?? null;
  }

  /** Bun.serve's `websocket` for the upgraded link requests. */
  readonly websocket: WebSocketHandler<LinkData> = {
    maxPayloadLength: socketMessageLimit,
    open: (ws) => {
      const link = new ServerNodeLink(ws);
      ws.data.link = link;
      const old = this.links.get(ws.data.hostname);
      this.links.set(ws.data.hostname, link);
      if (old) {
        old.lost("node link replaced by a newer one");
        old.close(1000, "replaced by a newer link from this node");
      }
      this.log(`node link: ${ws.data.hostname} ${old ? "linked again (the old link is closed)" : "linked"}`);
    },
    message: (ws, message) => {
      // Frames are binary; text means nothing on the link.
      if (typeof message !== "string") ws.data.link?.mux.receive(message);
    },
    close: (ws, code, reason) => {
      const link = ws.data.link;
      if (!link) return;
      link.lost("node link lost");
      if (this.links.get(ws.data.hostname) === link) {
        this.links.delete(ws.data.hostname);
        this.log(`node link: ${ws.data.hostname} is gone (${code}${reason ? ` ${reason}` : ""})`);
      }
    },
  };

  /** Ends every link (the server is stopping). */
  closeAll(): void {
    for (const link of this.links.values()) {
      link.lost("the server is stopping");
      link.close(1001, "server stopping");
    }
    this.links.clear();
  }
}
