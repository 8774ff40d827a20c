import { createHash } from "node:crypto";
import { existsSync, realpathSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { AuthError, BodyTooLargeError, errorCodeOf, errorMessage, ForbiddenError, httpStatusOf, NotFoundError, TooManyAttemptsError, UsageError } from "../errors.ts";
import { linkUpgraded, type LinkData } from "./links.ts";
import { buildInfo } from "../version.ts";
import { attemptLimits, TokenAttempts, type AttemptLimits } from "./attempts.ts";
import { html } from "./html.ts";
import type { PortSocketData } from "./ports/proxy.ts";
import { portWebSocket } from "./ports/proxy.ts";
import type { Ports, Upgrader as PortUpgrader } from "./ports/routes.ts";
import type { Principal, Store } from "./store.ts";
import type { Heartbeat } from "./types.ts";
import { heartbeatShape, parseJson, readText, validate } from "./validate.ts";
import { page } from "./web.ts";
import type { NodeLinks } from "../link/types.ts";
import type { ServerWebSocket, WebSocketHandler } from "bun";
import { terminalBridge, type TerminalSocketData } from "./terminal-bridge.ts";
import { WebCreates } from "./web-creates.ts";
import { upgraded, webRoutes, type Upgrader } from "./web-routes.ts";

type User = Extract<Principal, { kind: "user" }>;

export interface ServerOptions {
  store: Store;
  /** A folder of releases served at /releases/ (the self-update channel), or null. */
  releasesDir: string | null;
  now?: () => number;
  log: (line: string) => void;
  /** Failed token attempts (default `attemptLimits`). */
  attempts?: AttemptLimits;
  /** The nodes' links (links.ts): the route that opens them, and what relays to a node use. Null: no link route. */
  links?: NodeLinks | null;
  /** Sessions' ports in the browser (`portsDomain` set), or null: off. */
  ports?: Ports | null;
}

/** What Beaker's own routes read of a body; Bun.serve takes more when ports are on (theirs to bound). */
const maxBody = 2 * 1024 * 1024;

function bearer(req: Request): string | null {
  const header = req.headers.get("authorization");
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/** What the handler asks of Bun's server: the address a request's connection comes from; WebSocket upgrades. */
export interface Peers {
  requestIP(req: Request): { address: string } | null;
  /** Bun's WebSocket upgrade: a node's link, a browser's terminal, or a browser's socket to a session's port. */
  upgrade?(req: Request, options: { data: LinkData | TerminalSocketData | PortSocketData; headers?: Record<string, string> }): boolean;
}

/**
 * The request handler: `/api/v1` (JSON, bearer tokens), web pages (cookie), `/releases/` (static files); Bun.serve's
 * `fetch` as it is. Failed token attempts count by the connection's address (`peers`), never by a header a client
 * could write.
 */
export function createHandler(options: ServerOptions): (req: Request, peers?: Peers) => Promise<Response> {
  const { store, log } = options;
  const ports = options.ports ?? null;
  const now = options.now ?? Date.now;
  const attempts = new TokenAttempts(options.attempts ?? attemptLimits, now, log);

  /** Throws when this address (or the token's id) has failed too often to have a token looked up now. */
  function mayTry(token: string, from: string): void {
    const wait = attempts.refusal(from, token);
    if (wait !== null) throw new TooManyAttemptsError(`too many failed token attempts; try again in ${wait} s`, wait);
  }

  /** A presented token checked with the store, within the limits on failed attempts. */
  async function authenticate(token: string, from: string): Promise<Principal | null> {
    mayTry(token, from);
    const who = await store.authenticate(token);
    if (who) attempts.succeeded(token);
    else attempts.failed(from, token);
    return who;
  }

  async function principal(req: Request, from: string): Promise<Principal> {
    const token = bearer(req);
    if (!token) throw new AuthError("this needs a Beaker token: send 'Authorization: Bearer <token>'");
    const who = await authenticate(token, from);
    if (!who) throw new AuthError("the token is not valid (unknown, revoked, or mistyped)");
    return who;
  }

  async function user(req: Request, from: string): Promise<User> {
    const who = await principal(req, from);
    if (who.kind !== "user") throw new ForbiddenError("a node token cannot do this; use a user token");
    return who;
  }

  async function api(req: Request, path: string, url: URL, from: string, peers?: Peers): Promise<Response> {
    const method = req.method;
    if (path === "/health") return Response.json({ ok: true, version: buildInfo.version });
    if (path === "/whoami" && method === "GET") return Response.json((await user(req, from)).user);
    if (path === "/account/token/rotate" && method === "POST") {
      const rotated = await store.rotateToken(await user(req, from));
      return Response.json({ token: rotated.token });
    }
    if (path === "/clusters" && method === "GET") {
      await user(req, from);
      return Response.json(await store.listClusters());
    }
    const clusterNodes = /^\/clusters\/([^/]+)\/nodes$/.exec(path);
    if (clusterNodes && method === "GET") {
      await user(req, from);
      const name = decodeURIComponent(clusterNodes[1]!);
      return Response.json(url.searchParams.get("placement") === "1" ? await store.listPlacement(name) : await store.listNodes(name));
    }
    if (path === "/nodes" && method === "GET") {
      await user(req, from);
      return Response.json(await store.listNodes());
    }
    const heartbeat = /^\/nodes\/([^/]+)\/heartbeat$/.exec(path);
    if (heartbeat && method === "PUT") {
      const hostname = decodeURIComponent(heartbeat[1]!);
      const text = await readText(req, 1024 * 1024);
      // The digest of the body as sent: a node whose report has not changed costs one statement, nothing parsed.
      const digest = createHash("sha256").update(text).digest("hex");
      const token = bearer(req);
      if (token) mayTry(token, from);
      const touched = token ? await store.touchNode(hostname, token, digest) : null;
      // Remembered as good: a user spraying bad tokens from this node's address does not cut the node off.
      if (touched && token) attempts.succeeded(token);
      if (touched?.unchanged) return Response.json(touched);
      if (!touched) {
        const who = await principal(req, from);
        if (who.kind !== "node") throw new ForbiddenError("only a node token may report a node");
        if (who.hostname !== hostname) throw new ForbiddenError(`this token reports for node ${who.hostname} only`);
      }
      return Response.json(await store.heartbeat(hostname, validate<Heartbeat>(parseJson(text), heartbeatShape), digest));
    }
    if (path === "/nodes/link" && method === "GET" && req.headers.get("upgrade")?.toLowerCase() === "websocket" && options.links && peers?.upgrade) {
      // As a heartbeat: the node token names the node; a user token, or another node's, links nothing.
      const who = await principal(req, from);
      if (who.kind !== "node") throw new ForbiddenError("only a node token opens a node link");
      const named = url.searchParams.get("node");
      if (named !== null && named !== who.hostname) throw new ForbiddenError(`this token links node ${who.hostname} only`);
      if (!peers.upgrade(req, { data: { hostname: who.hostname } })) throw new UsageError("a node link is a WebSocket: send an upgrade request");
      return linkUpgraded;
    }
    const node = /^\/nodes\/([^/]+)$/.exec(path);
    if (node && method === "GET") return Response.json(await store.getNode(decodeURIComponent(node[1]!), (await user(req, from)).user));
    if (path === "/sessions" && method === "GET") {
      const viewer = await user(req, from);
      const cluster = url.searchParams.get("cluster") ?? undefined;
      const hostname = url.searchParams.get("node") ?? undefined;
      return Response.json(await store.listSessions(viewer.user, { cluster, node: hostname }));
    }
    throw new NotFoundError(`no route ${method} /api/v1${path}`);
  }

  const creates = new WebCreates(options.links ?? { get: () => null }, now, log);
  const web = webRoutes({ store, links: options.links ?? null, creates, log, now, authenticate, ports });

  function release(path: string): Response {
    const root = options.releasesDir;
    if (!root) throw new NotFoundError("this server serves no releases (start it with --releases DIR)");
    const base = realpathSync(root);
    const file = resolve(base, `.${decodeURIComponent(path)}`);
    if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile() || !realpathSync(file).startsWith(base + sep)) {
      throw new NotFoundError(`no release file ${path}`);
    }
    return new Response(Bun.file(file));
  }

  return async (req, peers) => {
    const from = peers?.requestIP(req)?.address ?? "unknown";
    const url = new URL(req.url);
    const path = url.pathname;
    const isApi = path.startsWith("/api/v1/") || path === "/api/v1";
    if (ports?.claims(req)) {
      // A port origin: the session's, whatever the path; never Beaker's pages. Bun ignores the answer once upgraded.
      const upgrader = peers?.upgrade ? (peers as PortUpgrader) : undefined;
      return ports.handle(req, upgrader).then(
        (res) => res ?? new Response(null),
        (err) => {
          const status = httpStatusOf(err);
          if (status === 500) log(`port origin ${req.method} ${path}: ${errorMessage(err)}`);
          const message = status === 500 ? "internal error (see the server log)" : errorMessage(err);
          return new Response(`${message}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
        },
      );
    }
    try {
      // Bun.serve takes large bodies when ports are on (theirs to bound); Beaker's own routes never read past 2 MiB.
      if (Number(req.headers.get("content-length") ?? 0) > maxBody) throw new BodyTooLargeError(maxBody);
      if (isApi) return await api(req, path.slice("/api/v1".length), url, from, peers);
      if (path.startsWith("/releases/")) return release(join("/", path.slice("/releases".length)));
      return await web(req, path, url, from, peers?.upgrade ? (peers as Upgrader) : undefined);
    } catch (err) {
      const code = errorCodeOf(err);
      const status = httpStatusOf(err);
      if (status === 500) log(`${req.method} ${path}: ${errorMessage(err)}`);
      const message = status === 500 ? "internal error (see the server log)" : errorMessage(err);
      const retry = err instanceof TooManyAttemptsError ? { "retry-after": String(err.retryAfterSeconds) } : {};
      if (isApi || path.startsWith("/releases/")) return Response.json({ error: { code, message } }, { status, headers: retry });
      const res = page("Error", null, html`<h1>${status === 404 ? "Not found" : "Error"}</h1><p class="error">${message}</p><p><a href="/">Back</a></p>`);
      return new Response(res.body, { status, headers: { ...Object.fromEntries(res.headers), ...retry } });
    }
  };
}


/**
 * What `Bun.serve` takes: the handler, with a request that became a WebSocket answered by nothing, and one WebSocket
 * handler for every socket, told apart by their data: browsers' terminals (terminal-bridge.ts, `kind: "web-terminal"`),
 * browsers' sockets to sessions' ports (ports/proxy.ts, `kind: "port"`) and any other the caller serves on the same
 * port (`otherSockets`: the nodes' links).
 */
export function createApp<Other extends object>(options: ServerOptions, otherSockets?: WebSocketHandler<Other>, otherUpgraded?: Response) {
  const handle = createHandler(options);
  type Any = ServerWebSocket<Other | TerminalSocketData | PortSocketData>;
  const kind = (ws: Any) => (ws.data as { kind?: string }).kind;
  const terminal = (ws: Any): ws is ServerWebSocket<TerminalSocketData> => kind(ws) === "web-terminal";
  const port = (ws: Any): ws is ServerWebSocket<PortSocketData> => kind(ws) === "port";
  const other = (ws: Any) => ws as ServerWebSocket<Other>;
  const websocket: WebSocketHandler<Other | TerminalSocketData | PortSocketData> = {
    maxPayloadLength: otherSockets?.maxPayloadLength ?? 1024 * 1024 + 64,
    // Terminals and port sockets watch their own backlog (terminal-bridge.ts, ports/proxy.ts); this is Bun's outer bound.
    backpressureLimit: 16 * 1024 * 1024,
    open: (ws) => (terminal(ws) ? terminalBridge.open?.(ws) : port(ws) ? portWebSocket.open?.(ws) : otherSockets?.open?.(other(ws))),
    message: (ws, m) => (terminal(ws) ? terminalBridge.message?.(ws, m) : port(ws) ? portWebSocket.message?.(ws, m) : otherSockets?.message?.(other(ws), m)),
    drain: (ws) => (terminal(ws) ? terminalBridge.drain?.(ws) : port(ws) ? portWebSocket.drain?.(ws) : otherSockets?.drain?.(other(ws))),
    close: (ws, code, reason) =>
      terminal(ws) ? terminalBridge.close?.(ws, code, reason) : port(ws) ? portWebSocket.close?.(ws, code, reason) : otherSockets?.close?.(other(ws), code, reason),
  };
  return {
    fetch: async (req: Request, server: Peers): Promise<Response | undefined> => {
      const res = await handle(req, server);
      return res === upgraded || (otherUpgraded !== undefined && res === otherUpgraded) ? undefined : res;
    },
    websocket,
  };
}
