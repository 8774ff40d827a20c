/**
 * Ports in the browser (docs/ARCHITECTURE.md "Server", docs/SECURITY.md "Ports in the browser"): the main origin's
 * hand-off page, and everything asked of a port origin `<sessionId>-<port>.<portsDomain>`. A request whose Host is
 * under `portsDomain` is handled here whatever its path, and never reaches Beaker's pages or API.
 */
import type { NodeLinks } from "../../link/types.ts";
import type { Db } from "../db.ts";
import { Html, html } from "../html.ts";
import type { Principal, Store } from "../store.ts";
import type { NodeSession } from "../types.ts";
import { readText } from "../validate.ts";
import { PortBridges, type BridgeTarget } from "./bridge.ts";
import { cookieValues, mayAct, portCookieBase, portCookieName } from "./headers.ts";
import { isPortsHost, parsePortHost, portOrigin, type PortTarget } from "./host.ts";
import { PortLogins } from "./logins.ts";
import { forwardHttp, holdEarly, openUpstreamSocket, type PortSocketData } from "./proxy.ts";

type User = Extract<Principal, { kind: "user" }>;

/** What a port socket needs of Bun's server: the upgrade of a browser's handshake. */
export interface Upgrader {
  upgrade(req: Request, options: { data: PortSocketData; headers?: Record<string, string> }): boolean;
}

export interface PortsOptions {
  store: Store;
  db: Db;
  portsDomain: string;
  links: NodeLinks;
  now: () => number;
  log: (line: string) => void;
}

const textHeaders = { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store" };

/** The one answer for a port origin nobody may see: no session, another's, no sign-in, a bad name. */
const notFound = () => new Response("Not found. Open this port from your session in Beaker: it signs you in here.\n", { status: 404, headers: textHeaders });

function isHttps(req: Request): boolean {
  return new URL(req.url).protocol === "https:" || req.headers.get("x-forwarded-proto") === "https";
}

/** `/sessions/ID/ports/PORT/` on the main origin -> the session's ID and port, or null. Pure. */
export function parseHandoffPath(path: string): PortTarget | null {
  const m = /^\/sessions\/([0-9a-f]{12})\/ports\/([1-9][0-9]{0,4})\/?$/.exec(path);
  return m && Number(m[2]) <= 65535 ? { sessionId: m[1]!, port: Number(m[2]) } : null;
}

/**
 * `/sessions/ID/ports?port=P` (the page's "open another port" form, which works without JavaScript) -> the hand-off
 * path of that port, or null. Pure.
 */
export function openPortRedirect(path: string, search: string): string | null {
  const m = /^\/sessions\/([0-9a-f]{12})\/ports$/.exec(path);
  const port = new URLSearchParams(search).get("port")?.trim() ?? "";
  if (!m || !/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535) return null;
  return `/sessions/${m[1]}/ports/${port}/`;
}

export class Ports {
  readonly logins: PortLogins;
  readonly bridges: PortBridges;

  constructor(private readonly options: PortsOptions) {
    this.logins = new PortLogins(options.db, options.now);
    this.bridges = new PortBridges(options.links, options.log);
  }

  /** Whether this request is for a port origin (and so for `handle`, never for Beaker's own routes). */
  claims(req: Request): boolean {
    return isPortsHost(req.headers.get("host") ?? "", this.options.portsDomain);
  }

  /** The user's own session `id` as its node last reported it, or null (missing, or someone else's: admins too). */
  async ownSession(user: User["user"], id: string): Promise<(NodeSession & { node: string }) | null> {
    const sessions = await this.options.store.listSessions(user);
    return sessions.find((s) => s.id === id && s.user === user.name) ?? null;
  }

  /**
   * The main origin's `/sessions/ID/ports/PORT/` for a signed-in user: a page that posts a fresh ticket to the port
   * origin (by script, or by its button without one). The ticket is in the page, never in a URL. Null: not the
   * user's session (the caller answers the usual 404).
   */
  async handoff(req: Request, user: User, webCookie: string, target: PortTarget): Promise<Response | null> {
    const session = await this.ownSession(user.user, target.sessionId);
    if (!session) return null;
    const ticket = await this.logins.issueTicket(webCookie, target);
    const origin = portOrigin(target, this.options.portsDomain, isHttps(req) ? "https" : "http", req.headers.get("host") ?? "");
    const body = html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Port ${target.port} of ${session.name} · Beaker</title></head>
<body><form method="post" action="${origin}/.beaker/auth"><input type="hidden" name="ticket" value="${ticket}">
<p>Opening port ${target.port} of session ${session.name} on its own origin, <code>${origin}</code>.</p>
<button type="submit">Continue</button></form>
<script>document.forms[0].submit()</script></body></html>`;
    return new Response(body.text, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; form-action " + origin + "; frame-ancestors 'none'",
      },
    });
  }

  /** Everything on a port origin. */
  async handle(req: Request, server: Upgrader | undefined): Promise<Response | undefined> {
    const host = (req.headers.get("host") ?? "").toLowerCase();
    const target = parsePortHost(host, this.options.portsDomain);
    if (!target) return notFound();
    const secure = isHttps(req);
    const url = new URL(req.url);
    if (url.pathname === "/.beaker/auth") return this.redeem(req, target, secure);
    const login = await this.signedIn(req, target);
    if (!login) return notFound();
    const session = await this.ownSession(login, target.sessionId);
    if (!session) return notFound();
    if (session.status !== "running") return new Response(`Session ${session.name} is ${session.status}, not running.\n`, { status: 409, headers: textHeaders });
    const websocket = (req.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
    if (!mayAct(req.method, req.headers, `${secure ? "https" : "http"}://${host}`, websocket)) {
      return new Response("Refused: this request came from another origin than this port's.\n", { status: 403, headers: textHeaders });
    }
    const bridgeTarget: BridgeTarget = { ...target, user: login.name, node: session.node };
    const path = await this.bridges.path(bridgeTarget);
    const failed = (err: unknown) => {
      const why = this.bridges.lastError(bridgeTarget) ?? (err instanceof Error ? err.message : String(err));
      return new Response(`Port ${target.port} of session ${session.name} did not answer: ${why}\n`, { status: 502, headers: textHeaders });
    };
    if (!websocket) return forwardHttp(req, path, host).catch(failed);
    if (!server) return new Response("WebSockets are not served here.\n", { status: 501, headers: textHeaders });
    let upstream: WebSocket;
    try {
      upstream = await openUpstreamSocket(req, path, host);
    } catch (err) {
      return failed(err);
    }
    const data: PortSocketData = { kind: "port", upstream, early: [] };
    holdEarly(data);
    const headers: Record<string, string> = upstream.protocol ? { "sec-websocket-protocol": upstream.protocol } : {};
    if (server.upgrade(req, { data, headers })) return undefined;
    upstream.close(1000);
    return new Response("Expected a WebSocket handshake.\n", { status: 400, headers: textHeaders });
  }

  /** `POST /.beaker/auth` (form `ticket`): a ticket for this origin becomes this origin's sign-in cookie. */
  private async redeem(req: Request, target: PortTarget, secure: boolean): Promise<Response> {
    if (req.method !== "POST") return notFound();
    const ticket = new URLSearchParams(await readText(req, 4096)).get("ticket") ?? "";
    const id = await this.logins.redeem(ticket, target);
    const expires = id ? await this.logins.expiresAt(id) : null;
    if (!id || expires === null) {
      return new Response("This sign-in was already used, has expired, or is for another port. Open the port again from Beaker.\n", { status: 403, headers: textHeaders });
    }
    const maxAge = Math.max(0, Math.floor((expires - this.options.now()) / 1000));
    const cookie = `${portCookieName(secure)}=${id}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
    return new Response(null, { status: 303, headers: { location: "/", "set-cookie": cookie, "cache-control": "no-store" } });
  }

  /** The Beaker user a request's port cookie signs in on this origin: every value of either name is tried. */
  private async signedIn(req: Request, target: PortTarget): Promise<User["user"] | null> {
    const header = req.headers.get("cookie");
    for (const value of [...cookieValues(header, `__Host-${portCookieBase}`), ...cookieValues(header, portCookieBase)].slice(0, 8)) {
      const login = await this.logins.lookup(value, target);
      if (login) return login.user;
    }
    return null;
  }

  close(): void {
    this.bridges.close();
  }
}

/** The line the pages show when `portsDomain` is not set. */
export const portsOffLine: Html = html`<p class="ports-off">Ports in the browser are off on this server: an admin sets <code>portsDomain</code> (<code>beaker server run --ports-domain DOMAIN</code>).</p>`;
