/**
 * The web pages' routes (cookie sign-in). Every POST but the sign-in itself needs the page's CSRF token for the web
 * session it came with (403 without it); the sign-in form, which has no session yet, is guarded by its Origin, which
 * must be ours when a browser sends one (src/server/web-security.ts). A WebSocket upgrade must name our Origin (403).
 * Failed sign-ins count against the same limits as API tokens (429 on the sign-in page, with Retry-After).
 */
import { ForbiddenError, NotFoundError, TooManyAttemptsError } from "../errors.ts";
import { asset } from "./assets.ts";
import type { Principal } from "./store.ts";
import { terminalData, type TerminalSocketData } from "./terminal-bridge.ts";
import { readText } from "./validate.ts";
import { clusterPage, clustersPage, loginPage, mySessionsPage, nodePage, page, type SignedIn } from "./web.ts";
import { cookieFlags, cookieOf, csrfMatches, csrfToken, originIsOurs, postOriginAllowed } from "./web-security.ts";
import { openPortRedirect, parseHandoffPath, portsOffLine, type Ports } from "./ports/routes.ts";
import { createRoute, sessionPageRoute, sessionStatusRoute, stopRoute, terminalTarget, type WebSessionDeps } from "./web-sessions.ts";

export const cookieName = "beaker_session";

/** What a route handler gets of Bun's server to switch a request to a WebSocket. */
export interface Upgrader {
  upgrade(req: Request, options: { data: TerminalSocketData }): boolean;
}

/** The answer to a request that became a WebSocket: Bun then wants no response (src/server/app.ts). */
export const upgraded = new Response(null, { status: 204 });

export interface WebDeps extends WebSessionDeps {
  /** A presented token checked within the limits on failed attempts (throws TooManyAttemptsError past them). */
  authenticate(token: string, from: string): Promise<Principal | null>;
  /** Sessions' ports in the browser (`portsDomain` set), or null: off. */
  ports?: Ports | null;
}

const formLimit = 16 * 1024;

function withStatus(res: Response, status: number, extra: Record<string, string> = {}): Response {
  return new Response(res.body, { status, headers: { ...Object.fromEntries(res.headers), ...extra } });
}

async function signIn(deps: WebDeps, req: Request, from: string): Promise<Response> {
  if (!postOriginAllowed(req)) throw new ForbiddenError("this sign-in came from another site's page");
  const token = new URLSearchParams(await readText(req, 4096)).get("token") ?? "";
  let who: Principal | null;
  try {
    who = await deps.authenticate(token, from);
  } catch (err) {
    if (!(err instanceof TooManyAttemptsError)) throw err;
    return withStatus(loginPage(`Too many failed sign-ins from here: ${err.message.replace(/^too many failed token attempts; /, "")}.`), 429, { "retry-after": String(err.retryAfterSeconds) });
  }
  if (!who || who.kind !== "user") return withStatus(loginPage("That token is not valid. Check it, or ask your admin for a new one."), 401);
  const id = await deps.store.createWebSession(who);
  deps.log(`web sign-in: ${who.user.name}`);
  return new Response(null, { status: 303, headers: { location: "/", "set-cookie": `${cookieName}=${id}; ${cookieFlags(req)}; Max-Age=43200` } });
}

/** The web pages: `peers` switches terminal requests to WebSockets (absent in tests that need none). */
export function webRoutes(deps: WebDeps): (req: Request, path: string, url: URL, from: string, upgrader?: Upgrader) => Promise<Response> {
  const { store } = deps;
  return async (req, path, url, from, upgrader) => {
    if (path.startsWith("/assets/")) {
      const file = req.method === "GET" ? asset(path.slice("/assets/".length)) : null;
      if (!file) throw new NotFoundError(`no asset ${path}`);
      return file;
    }
    if (path === "/login" && req.method === "GET") return loginPage(null);
    if (path === "/login" && req.method === "POST") return signIn(deps, req, from);
    const id = cookieOf(req, cookieName);
    const who = id ? await store.webSessionUser(id) : null;
    const signedIn: SignedIn | null = who && id ? { ...who, csrf: csrfToken(id) } : null;
    const post = req.method === "POST";
    if (post) {
      if (!postOriginAllowed(req)) throw new ForbiddenError("this form came from another site's page");
      // No live session: nothing to act for; the sign-in page (a sign-out of an expired session lands there too).
      if (!signedIn || !id) return new Response(null, { status: 303, headers: { location: "/login", "set-cookie": `${cookieName}=; ${cookieFlags(req)}; Max-Age=0` } });
      const form = new URLSearchParams(await readText(req, formLimit));
      if (!csrfMatches(id, form.get("csrf"))) throw new ForbiddenError("this form has no valid CSRF token for your sign-in; reload the page and try again");
      if (path === "/logout") {
        await store.deleteWebSession(id);
        return new Response(null, { status: 303, headers: { location: "/login", "set-cookie": `${cookieName}=; ${cookieFlags(req)}; Max-Age=0` } });
      }
      const create = /^\/nodes\/([^/]+)\/sessions$/.exec(path);
      if (create) return createRoute(deps, signedIn, decodeURIComponent(create[1]!), form);
      const stop = /^\/sessions\/([^/]+)\/stop$/.exec(path);
      if (stop) return stopRoute(deps, signedIn, decodeURIComponent(stop[1]!), form);
      throw new NotFoundError(`no page POST ${path}`);
    }
    if (req.method !== "GET") throw new NotFoundError(`no page ${req.method} ${path}`);
    const terminal = /^\/sessions\/([^/]+)\/terminal$/.exec(path);
    if (terminal && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      if (!originIsOurs(req)) throw new ForbiddenError("a terminal opens from this server's own pages only");
      if (!signedIn) throw new NotFoundError(`no session ${terminal[1]}`);
      const target = await terminalTarget(deps, signedIn, decodeURIComponent(terminal[1]!), url.searchParams);
      if (upgrader?.upgrade(req, { data: terminalData(signedIn.user.name, target.link, target.path) })) return upgraded;
      throw new NotFoundError("the terminal is a WebSocket");
    }
    if (!signedIn) return new Response(null, { status: 303, headers: { location: "/login" } });
    if (path === "/") return clustersPage(store, signedIn);
    const ports = deps.ports ?? null;
    if (path === "/sessions") return mySessionsPage(store, signedIn, deps.now(), ports ? null : portsOffLine);
    const another = openPortRedirect(path, url.search);
    if (another) return new Response(null, { status: 303, headers: { location: another } });
    const handoff = parseHandoffPath(path);
    if (handoff) {
      if (!ports) return page("Ports", signedIn, portsOffLine);
      const res = await ports.handoff(req, signedIn, id!, handoff);
      if (res) return res;
      throw new NotFoundError(`no session ${handoff.sessionId}`);
    }
    const cluster = /^\/clusters\/([^/]+)$/.exec(path);
    if (cluster) return clusterPage(store, signedIn, decodeURIComponent(cluster[1]!), deps.now());
    const node = /^\/nodes\/([^/]+)$/.exec(path);
    if (node) {
      const hostname = decodeURIComponent(node[1]!);
      return nodePage(store, signedIn, hostname, deps.now(), { linked: Boolean(deps.links?.get(hostname)) });
    }
    const session = /^\/sessions\/([^/]+)(\/status)?$/.exec(path);
    if (session) return (session[2] ? sessionStatusRoute : sessionPageRoute)(deps, signedIn, decodeURIComponent(session[1]!));
    throw new NotFoundError(`no page ${path}`);
  }
}
