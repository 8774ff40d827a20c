/**
 * Ports in the browser in one process: a real server handler (SQLite store, `portsDomain: localhost`) on Bun.serve,
 * and fake node links whose `socket()` behaves like the executor's port route (`{"type":"connected"}`, then the
 * bytes of a TCP connection to a local "session" server, the owner only). A session server that echoes what it got
 * lets tests see what crossed the proxy.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "bun";
import type { LinkSocket, NodeLink, NodeLinks } from "../src/link/types.ts";
import { createHandler } from "../src/server/app.ts";
import { migrate, openDb, type Db } from "../src/server/db.ts";
import { portWebSocket } from "../src/server/ports/proxy.ts";
import { Ports } from "../src/server/ports/routes.ts";
import { Store } from "../src/server/store.ts";
import type { NodeSession } from "../src/server/types.ts";

/** What a fake node was asked to open: by whom, which route. */
export interface LinkCall {
  user: string;
  path: string;
}

/** A link stream to a TCP server on 127.0.0.1:`port`, as the executor would open it for the session's owner. */
function fakeSocket(port: number, refuse: string | null): LinkSocket {
  let closed = false;
  const tcp = refuse === null ? connect(port, "127.0.0.1") : null;
  const stream: LinkSocket = {
    send(message) {
      if (closed || !tcp) return false;
      if (typeof message !== "string") tcp.write(message);
      return true;
    },
    buffered: () => tcp?.writableLength ?? 0,
    close() {
      if (closed) return;
      closed = true;
      tcp?.destroy();
    },
    onmessage: null,
    onclose: null,
    ondrain: null,
  };
  const end = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    stream.onclose?.(code, reason);
  };
  if (!tcp) {
    queueMicrotask(() => {
      stream.onmessage?.(JSON.stringify({ type: "error", code: "not_found", message: refuse }));
      end(1000, "");
    });
    return stream;
  }
  tcp.on("connect", () => stream.onmessage?.(JSON.stringify({ type: "connected" })));
  tcp.on("data", (chunk: Buffer) => stream.onmessage?.(new Uint8Array(chunk)));
  tcp.on("drain", () => stream.ondrain?.());
  tcp.on("error", () => tcp.destroy());
  tcp.on("close", () => end(1000, ""));
  return stream;
}

/** Nodes that reach `sessionPort` for the owners in `owners` (session ID -> account); others get the executor's not found. */
export class FakeLinks implements NodeLinks {
  readonly calls: LinkCall[] = [];
  online = true;

  constructor(
    private readonly sessionPort: () => number,
    private readonly owners: Map<string, string>,
  ) {}

  get(_node: string): NodeLink | null {
    if (!this.online) return null;
    return {
      request: () => Promise.reject(new Error("not used here")),
      socket: (user, path) => {
        this.calls.push({ user, path });
        const id = /^\/v1\/sessions\/([^/]+)\/ports\/\d+$/.exec(path)?.[1] ?? "";
        return fakeSocket(this.sessionPort(), this.owners.get(id) === user ? null : `no session ${id}`);
      },
    };
  }
}

export const session = (id: string, user: string, extra: Partial<NodeSession> = {}): NodeSession => ({
  id,
  name: `s-${id.slice(0, 4)}`,
  user,
  gpus: [],
  image: "img",
  status: "running",
  createdAt: new Date(0).toISOString(),
  startedAt: null,
  ports: [8888],
  ...extra,
});

/** A running server with ports on, two users signed in on the web, and a node reporting `sessions`. */
export class PortsWorld {
  readonly dir = mkdtempSync(join(tmpdir(), "beaker-ports-"));
  db!: Db;
  store!: Store;
  ports!: Ports;
  server!: Server<unknown>;
  links!: FakeLinks;
  /** Web sign-in cookies (`beaker_session` values) by user name. */
  readonly web = new Map<string, string>();
  now = Date.now();

  constructor(private readonly sessionPort: () => number) {}

  async start(sessions: NodeSession[]): Promise<void> {
    this.db = openDb(`sqlite://${join(this.dir, "s.db")}`);
    await migrate(this.db);
    this.store = new Store(this.db, () => this.now);
    this.links = new FakeLinks(this.sessionPort, new Map(sessions.map((s) => [s.id, s.user])));
    this.ports = new Ports({ store: this.store, db: this.db, portsDomain: "localhost", links: this.links, now: () => this.now, log: () => {} });
    for (const name of new Set(sessions.map((s) => s.user))) {
      const { token } = await this.store.createUser(name, false);
      const principal = await this.store.authenticate(token);
      if (principal?.kind !== "user") throw new Error("no user");
      this.web.set(name, await this.store.createWebSession(principal));
    }
    await this.store.createCluster("lab");
    await this.store.addNode("n1", "lab");
    await this.store.heartbeat("n1", { cpus: 1, memoryBytes: 1, version: "v", gpus: [], sessions });
    const handler = createHandler({ store: this.store, releasesDir: null, log: () => {}, ports: this.ports, now: () => this.now });
    this.server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler, websocket: portWebSocket, maxRequestBodySize: 1024 ** 3 });
  }

  get main(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** The Host header of a port origin, as a browser sends it. */
  host(id: string, port: number): string {
    return `${id}-${port}.localhost:${this.server.port}`;
  }

  /** The main origin's hand-off page for `user`. */
  handoff(user: string, id: string, port: number): Promise<Response> {
    return fetch(`${this.main}/sessions/${id}/ports/${port}/`, { headers: { cookie: `beaker_session=${this.web.get(user)}` }, redirect: "manual" });
  }

  /** The ticket in a hand-off page. */
  static ticketOf(page: string): string {
    const m = /name="ticket" value="([^"]+)"/.exec(page);
    if (!m) throw new Error(`no ticket in the page: ${page.slice(0, 300)}`);
    return m[1]!;
  }

  /** Posts a ticket to a port origin's /.beaker/auth. */
  redeem(id: string, port: number, ticket: string): Promise<Response> {
    return fetch(`${this.main}/.beaker/auth`, {
      method: "POST",
      headers: { host: this.host(id, port), "content-type": "application/x-www-form-urlencoded", origin: this.main },
      body: new URLSearchParams({ ticket }).toString(),
      redirect: "manual",
    });
  }

  /** Signs `user` in on the origin of (id, port) the way a browser does; returns the port cookie (`name=value`). */
  async signIn(user: string, id: string, port: number): Promise<string> {
    const page = await this.handoff(user, id, port);
    if (page.status !== 200) throw new Error(`hand-off answered ${page.status}`);
    const res = await this.redeem(id, port, PortsWorld.ticketOf(await page.text()));
    if (res.status !== 303) throw new Error(`redeem answered ${res.status}: ${await res.text()}`);
    return res.headers.get("set-cookie")!.split(";")[0]!;
  }

  /** A request on a port origin, with whatever cookies. */
  get(id: string, port: number, path: string, init: RequestInit & { cookie?: string } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("host", this.host(id, port));
    if (init.cookie) headers.set("cookie", init.cookie);
    return fetch(`${this.main}${path}`, { ...init, headers, redirect: "manual" });
  }

  async stop(): Promise<void> {
    this.server?.stop(true);
    this.ports?.close();
    await this.db?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
