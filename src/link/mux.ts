/**
 * Many streams over one node link, each with its own flow control. Pure: frames in (`receive`), frames out (the
 * `send` it is given); no timers, no sockets, so both ends and the tests run the same code.
 *
 * Credit: each side may have at most about a window (1 MiB) of `data` and `text` bytes in flight on a stream. A sender
 * sends a frame while it has credit left (so one frame may overdraw it), else queues it; the receiver hands a frame to
 * its reader and then gives the bytes back in `credit` frames (in batches), unless the reader paused the stream (a
 * slow browser): then nothing more comes until it resumes. A peer that sends while it has no credit, or credits more
 * than it could owe, broke the rules: that stream alone is closed (1008). A frame naming no open stream is dropped. So
 * one stream's slow reader or flood never holds up, or costs memory for, any other.
 */
import { closePayload, creditPayload, decodeFrame, encodeFrame, jsonPayload, linkLimits, parseClose, parseCredit, parseJsonPayload, fromUtf8, utf8, type FrameKind } from "./frames.ts";

/** Credit goes back once this much was taken (or at once when a stream resumes): few frames for a fast stream. */
const creditBatch = 64 * 1024;

export interface StreamHandlers {
  /** An HTTP answer's head (node -> server). */
  onhead?: (head: Record<string, unknown>) => void;
  ontext?: (text: string) => void;
  ondata?: (bytes: Uint8Array) => void;
  /** The peer's body is over; the stream is done. */
  onend?: () => void;
  /** The peer closed the stream, or the link went (`closeAll`). Not called for a local `close()`. */
  onclose?: (code: number, reason: string) => void;
  /** Everything queued went out and `buffered()` is under the window again: the writer may go on. */
  ondrain?: () => void;
}

type Limits = typeof linkLimits;

export class LinkStream {
  handlers: StreamHandlers = {};
  closed = false;
  /** Bytes this side may still send before it waits for credit (below zero by at most one frame). */
  private credit: number;
  private readonly queue: Array<{ kind: "data" | "text"; payload: Uint8Array }> = [];
  private queuedBytes = 0;
  /** Bytes received from the peer and not yet credited back. */
  private outstanding = 0;
  /** Of those, the bytes the reader has taken: credited back in batches. */
  private owed = 0;
  private held = false;
  /** The writer was told to wait (a send queued, or `buffered()` reached the window): `ondrain` once it is under again. */
  private blocked = false;

  constructor(
    readonly id: number,
    private readonly mux: LinkMux,
    private readonly limits: Limits,
  ) {
    this.credit = limits.window;
  }

  /** Bytes sent and not yet credited, plus bytes waiting for credit. */
  buffered(): number {
    return this.queuedBytes + (this.limits.window - this.credit);
  }

  /**
   * Sends one message: "sent", "queued" (no credit now; it goes when credit comes, then `ondrain`), or "closed". A
   * message over the frame limit closes the stream (1009), like an oversized WebSocket message.
   */
  send(kind: "data" | "text", message: Uint8Array | string): "sent" | "queued" | "closed" {
    if (this.closed) return "closed";
    const payload = typeof message === "string" ? utf8(message) : message;
    if (payload.length > this.limits.maxPayload) {
      this.close(1009, "message over 1 MiB");
      return "closed";
    }
    if (this.queue.length === 0 && this.credit > 0) {
      this.credit -= payload.length;
      this.mux.emit(this.id, kind, payload);
      if (this.buffered() >= this.limits.window) this.blocked = true;
      return "sent";
    }
    this.queue.push({ kind, payload });
    this.queuedBytes += payload.length;
    this.blocked = true;
    return "queued";
  }

  sendHead(head: Record<string, unknown>): void {
    if (!this.closed) this.mux.emit(this.id, "head", jsonPayload(head));
  }

  /** The body is over: the stream is done on both sides (what is still queued goes first). */
  end(): void {
    if (this.closed) return;
    if (this.queue.length) return void (this.ending = true);
    this.finish();
    this.mux.emit(this.id, "end");
  }
  private ending = false;

  close(code = 1000, reason = ""): void {
    if (this.closed) return;
    this.finish();
    this.mux.emit(this.id, "close", closePayload(code, reason));
  }

  /** The reader cannot keep up: nothing more is credited until `resume()`. */
  pause(): void {
    this.held = true;
  }

  resume(): void {
    if (!this.held) return;
    this.held = false;
    this.giveCredit(true);
  }

  // --- called by the mux ---

  /** A `data`/`text` frame from the peer: false when it had no credit for it (the caller closes the stream). */
  accept(size: number): boolean {
    if (this.outstanding >= this.limits.window) return false;
    this.outstanding += size;
    return true;
  }

  /** The reader took `size` bytes. */
  taken(size: number): void {
    this.owed += size;
    this.giveCredit(false);
  }

  /** Credit from the peer: false when it is more than this side has in flight (the caller closes the stream). */
  credited(bytes: number): boolean {
    if (this.credit + bytes > this.limits.window) return false;
    this.credit += bytes;
    while (this.queue.length && this.credit > 0 && !this.closed) {
      const next = this.queue.shift()!;
      this.queuedBytes -= next.payload.length;
      this.credit -= next.payload.length;
      this.mux.emit(this.id, next.kind, next.payload);
    }
    if (this.closed || this.queue.length) return true;
    if (this.ending) this.end();
    else if (this.blocked && this.buffered() < this.limits.window) {
      this.blocked = false;
      this.handlers.ondrain?.();
    }
    return true;
  }

  /** Gone without a word to the peer (it closed, or the link went). */
  finish(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.mux.forget(this.id);
  }

  private giveCredit(now: boolean): void {
    if (this.held || this.closed || this.owed === 0 || (!now && this.owed < creditBatch)) return;
    const bytes = this.owed;
    this.owed = 0;
    this.outstanding -= bytes;
    this.mux.emit(this.id, "credit", creditPayload(bytes));
  }
}

export interface MuxOptions {
  /** Puts one frame on the link. */
  send(frame: Uint8Array): void;
  /** On the node: a stream the server opened, with its head (JSON). Unset on the server, which refuses opens. */
  onopen?: (stream: LinkStream, head: Record<string, unknown>) => void;
  limits?: Partial<Limits>;
}

export class LinkMux {
  private readonly streams = new Map<number, LinkStream>();
  private readonly limits: Limits;
  private lastId = 0;
  /** Frames dropped: malformed, naming no open stream, or against the rules. */
  refused = 0;

  constructor(private readonly options: MuxOptions) {
    this.limits = { ...linkLimits, ...options.limits };
  }

  get size(): number {
    return this.streams.size;
  }

  /** The server opens a stream with its head (user, method, path, ...); null when the link has too many open. */
  open(head: Record<string, unknown>): LinkStream | null {
    if (this.streams.size >= this.limits.maxStreams) return null;
    const stream = new LinkStream(++this.lastId, this, this.limits);
    this.streams.set(stream.id, stream);
    this.emit(stream.id, "open", jsonPayload(head));
    return stream;
  }

  /** One frame from the peer. Never throws: whatever is wrong with it costs at most its own stream. */
  receive(bytes: Uint8Array): void {
    const frame = decodeFrame(bytes);
    if (!frame) return void this.refused++;
    const { id, kind, payload } = frame;
    if (kind === "open") return this.opened(id, payload);
    const stream = this.streams.get(id);
    if (!stream) return void this.refused++;
    const handlers = stream.handlers;
    if (payload.length > this.limits.maxPayload) return this.violated(stream, 1009, "frame over the link's limit");
    switch (kind) {
      case "head": {
        const head = parseJsonPayload(payload);
        if (!head) return this.violated(stream, 1007, "a head that is not a JSON object");
        return handlers.onhead?.(head);
      }
      case "data":
      case "text": {
        if (!stream.accept(payload.length)) return this.violated(stream, 1008, "sent past the stream's credit");
        if (kind === "text") {
          const text = fromUtf8(payload);
          if (text === null) return this.violated(stream, 1007, "text that is not UTF-8");
          handlers.ontext?.(text);
        } else handlers.ondata?.(payload);
        return stream.taken(payload.length);
      }
      case "end":
        stream.finish();
        return handlers.onend?.();
      case "close": {
        const { code, reason } = parseClose(payload);
        stream.finish();
        return handlers.onclose?.(code, reason);
      }
      case "credit": {
        const bytes = parseCredit(payload);
        if (bytes === null || !stream.credited(bytes)) return this.violated(stream, 1008, "credit it was not owed");
        return;
      }
    }
  }

  /** The link is gone: every stream ends with `code` (1011 and a reason), without a frame. */
  closeAll(code: number, reason: string): void {
    for (const stream of [...this.streams.values()]) {
      stream.finish();
      stream.handlers.onclose?.(code, reason);
    }
  }

  emit(id: number, kind: FrameKind, payload?: Uint8Array): void {
    this.options.send(encodeFrame(id, kind, payload));
  }

  forget(id: number): void {
    this.streams.delete(id);
  }

  private opened(id: number, payload: Uint8Array): void {
    // Only the server opens streams, each with a new, higher id: a replayed or stale id opens nothing.
    if (!this.options.onopen || id <= this.lastId) return void this.refused++;
    this.lastId = id;
    const head = payload.length <= this.limits.maxPayload ? parseJsonPayload(payload) : null;
    if (this.streams.size >= this.limits.maxStreams) return this.emit(id, "close", closePayload(1013, "too many streams on this link"));
    if (!head) return this.emit(id, "close", closePayload(1007, "the stream's head is not a JSON object"));
    const stream = new LinkStream(id, this, this.limits);
    this.streams.set(id, stream);
    this.options.onopen(stream, head);
  }

  private violated(stream: LinkStream, code: number, reason: string): void {
    this.refused++;
    stream.close(code, reason);
    stream.handlers.onclose?.(code, reason);
  }
}
