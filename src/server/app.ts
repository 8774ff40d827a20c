import { createHash } from "node:crypto";
import { existsSync, realpathSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { AuthError, BodyTooLargeError, errorCodeOf, errorMessage, ForbiddenError, httpStatusOf, NotFoundError, TooManyAttemptsError } from "../errors.ts";
import { buildInfo } from "../version.ts";
import { attemptLimits, TokenAttempts, type AttemptLimits } from "./attempts.ts";
import { html } from "./html.ts";
import { openPortRedirect, parseHandoffPath, portsOffLine, type Ports, type Upgrader } from "./ports/routes.ts";
import type { Principal, Store } from "./store.ts";
import type { Heartbeat } from "./types.ts";
import { heartbeatShape, parseJson, readText, validate } from "./validate.ts";
import { clusterPage, clustersPage, loginPage, mySessionsPage, nodePage, page } from "./web.ts";

type User = Extract<Principal, { kind: "user" }>;

export interface ServerOptions {
  store: Store;
  /** A folder of releases served at /releases/ (the self-update channel), or null. */
  releasesDir: string | null;
  now?: () => number;
  log: (line: string) => void;
  /** Failed token attempts (default `attemptLimits`). */
  attempts?: AttemptLimits;
  /** Sessions' ports in the browser (`portsDomain` set), or null: off. */
  ports?: Ports | null;
}

const cookieName = "beaker_session";
const maxBody = 2 * 1024 * 1024;

function bearer(req: Request): string | null {
  const header = req.headers.get("authorization");
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m ? m[1]! : null;
}

function cookie(req: Request, name: string): string | null {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return null;
}

function secureCookie(req: Request): string {
  const https = new URL(req.url).protocol === "https:" || req.headers.get("x-forwarded-proto") === "https";
  return https ? "; Secure" : "";
}

/** What the handler asks of Bun's server: the address a request's connection comes from; WebSocket upgrades. */
export interface Peers extends Partial<Upgrader> {
  requestIP(req: Request): { address: string } | null;
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

  async function api(req: Request, path: string, url: URL, from: string): Promise<Response> {
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

  async function web(req: Request, path: string, from: string): Promise<Response> {
    if (path === "/login" && req.method === "GET") return loginPage(null);
    if (path === "/login" && req.method === "POST") {
      const text = await readText(req, 4096);
      const token = new URLSearchParams(text).get("token") ?? "";
      const who = await authenticate(token, from);
      if (!who || who.kind !== "user") {
        const res = loginPage("That token is not valid. Check it, or ask your admin for a new one.");
        return new Response(res.body, { status: 401, headers: res.headers });
      }
      const id = await store.createWebSession(who);
      log(`web sign-in: ${who.user.name}`);
      return new Response(null, {
        status: 303,
        headers: { location: "/", "set-cookie": `${cookieName}=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200${secureCookie(req)}` },
      });
    }
    if (path === "/logout" && req.method === "POST") {
      const id = cookie(req, cookieName);
      if (id) await store.deleteWebSession(id);
      return new Response(null, { status: 303, headers: { location: "/login", "set-cookie": `${cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0` } });
    }
    if (req.method !== "GET") throw new NotFoundError(`no page ${req.method} ${path}`);
    const id = cookie(req, cookieName);
    const signedIn = id ? await store.webSessionUser(id) : null;
    if (!signedIn) return new Response(null, { status: 303, headers: { location: "/login" } });
    if (path === "/") return clustersPage(store, signedIn);
    if (path === "/sessions") return mySessionsPage(store, signedIn, now(), ports ? null : portsOffLine);
    const another = openPortRedirect(path, new URL(req.url).search);
    if (another) return new Response(null, { status: 303, headers: { location: another } });
    const handoff = parseHandoffPath(path);
    if (handoff) {
      if (!ports) return page("Ports", signedIn, portsOffLine);
      const res = await ports.handoff(req, signedIn, id!, handoff);
      if (res) return res;
      throw new NotFoundError(`no session ${handoff.sessionId}`);
    }
    const cluster = /^\/clusters\/([^/]+)$/.exec(path);
    if (cluster) return clusterPage(store, signedIn, decodeURIComponent(cluster[1]!), now());
    const node = /^\/nodes\/([^/]+)$/.exec(path);
    if (node) return nodePage(store, signedIn, decodeURIComponent(node[1]!), now());
    throw new NotFoundError(`no page ${path}`);
  }

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
      const upgrader = peers?.upgrade ? (peers as Upgrader) : undefined;
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
      if (isApi) return await api(req, path.slice("/api/v1".length), url, from);
      if (path.startsWith("/releases/")) return release(join("/", path.slice("/releases".length)));
      return await web(req, path, from);
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

