/**
 * The executor's end of the node link: one outbound WebSocket to `GET {server}/api/v1/nodes/link?node=NAME` with the
 * node token, kept open, dialled again after any loss with exponential backoff and jitter (1 s up to 30 s). It opens
 * no port on the node: the server relays browsers' requests down this connection (relay.ts). The log gets one line
 * when the link comes up and one when it goes down, not one per failed try. Losing it ends only its own streams
 * (terminals 1011; a browser reconnects); sessions, and terminals on the node's own socket, are not touched.
 */
import { errorMessage } from "../../errors.ts";
import { LinkMux, type LinkStream } from "../../link/mux.ts";

export const backoff = { firstMs: 1000, maxMs: 30_000, /** A link up this long counts as healthy: the next loss starts again at 1 s. */ steadyMs: 10_000 };

/**
 * How long to wait before try `attempt` (0 = the first retry): doubling from 1 s to at most 30 s, each drawn between
 * half and all of that (`random` in [0, 1)), never under 1 s, so a fleet of nodes that lost one server does not come
 * back to it in the same second. Pure.
 */
export function backoffDelay(attempt: number, random: number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(attempt, 16));
  return Math.max(backoff.firstMs, Math.round(ceiling / 2 + (random * ceiling) / 2));
}

/** `http(s)://server` -> `ws(s)://server/api/v1/nodes/link?node=NAME`. Pure. */
export function linkUrl(serverUrl: string, nodeName: string): string {
  const url = new URL(`${serverUrl.replace(/\/+$/, "")}/api/v1/nodes/link`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("node", nodeName);
  return url.toString();
}

export interface DialerOptions {
  serverUrl: string;
  nodeName: string;
  /** The node token, read fresh for each try (an admin may replace the file). */
  token: () => string;
  /** A stream the server opened. */
  onStream: (stream: LinkStream, head: Record<string, unknown>) => void;
  log: (line: string) => void;
  random?: () => number;
}

export class LinkDialer {
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private stopped = false;
  /** What the log last said: "up", or the reason it is down (said once, when it goes down). */
  private state: "up" | "down" | "new" = "new";
  private upSince = 0;

  constructor(private readonly options: DialerOptions) {}

  /** Dials in the background: the executor's start does not wait for the server. */
  start(): void {
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1001, "executor stopping");
  }

  get connected(): boolean {
    return this.state === "up";
  }

  private dial(): void {
    if (this.stopped) return;
    let token: string;
    try {
      token = this.options.token();
    } catch (err) {
      return this.lost(errorMessage(err));
    }
    let ws: WebSocket;
    try {
      // Bun's WebSocket takes headers: the token goes in Authorization, never in the URL (which servers log).
      ws = new WebSocket(linkUrl(this.options.serverUrl, this.options.nodeName), { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
    } catch (err) {
      return this.lost(errorMessage(err));
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    const mux = new LinkMux({ send: (frame) => ws.readyState === WebSocket.OPEN && ws.send(frame), onopen: this.options.onStream });
    let failure = "the server closed the connection";
    ws.onopen = () => {
      this.upSince = Date.now();
      if (this.state !== "up") this.options.log(`node link to ${this.options.serverUrl} is up`);
      this.state = "up";
    };
    ws.onmessage = (event) => {
      // Text messages mean nothing on the link; binary ones are frames.
      if (event.data instanceof ArrayBuffer) mux.receive(new Uint8Array(event.data));
    };
    ws.onerror = (event) => {
      failure = (event as ErrorEvent).message || "cannot connect";
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.ws = null;
      mux.closeAll(1011, "node link lost");
      const reason = event.reason ? `${event.code} ${event.reason}` : failure;
      if (this.state === "up" && Date.now() - this.upSince >= backoff.steadyMs) this.attempt = 0;
      this.lost(reason);
    };
  }

  private lost(reason: string): void {
    if (this.stopped) return;
    if (this.state !== "down") this.options.log(`node link to ${this.options.serverUrl} is down (${reason}); dialling again with backoff (1 s to 30 s)`);
    this.state = "down";
    const delay = backoffDelay(this.attempt++, (this.options.random ?? Math.random)());
    this.timer = setTimeout(() => this.dial(), delay);
  }
}
