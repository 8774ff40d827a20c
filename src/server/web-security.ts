/**
 * What keeps another site from acting through a signed-in browser (docs/SECURITY.md "Web pages"). Pure.
 *
 * - CSRF: every POST from a signed-in page carries `csrf`, an HMAC-SHA256 keyed by the web session's id (the cookie's
 *   value) over a fixed label. Only someone who can read the cookie or a page can know it: another origin can do
 *   neither, and the store keeps only the SHA-256 of the id, from which no token can be made. Several servers on one
 *   database agree on it without sharing a key. Compared in constant time.
 * - Origin: a POST or a WebSocket upgrade whose `Origin` names another site is refused; a WebSocket must name ours
 *   (browsers always send it there, and cookies ride on cross-site WebSocket handshakes).
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const csrfLabel = "beaker web csrf v1";

/** The CSRF token of the web session whose cookie holds `sessionId`. */
export function csrfToken(sessionId: string): string {
  return createHmac("sha256", sessionId).update(csrfLabel).digest("base64url");
}

/** Whether `presented` is this web session's token (constant time; anything missing or malformed is false). */
export function csrfMatches(sessionId: string, presented: string | null | undefined): boolean {
  if (typeof presented !== "string" || presented.length === 0 || presented.length > 128) return false;
  const want = Buffer.from(csrfToken(sessionId));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Whether the request came over TLS (here, or at a proxy in front that says so). */
export function isHttps(req: Request): boolean {
  return new URL(req.url).protocol === "https:" || req.headers.get("x-forwarded-proto") === "https";
}

/**
 * This server's origin as the browser sees it: the scheme (https behind a TLS proxy that says so) and the Host the
 * browser sent. A page of another site cannot choose the Host of a request made to us, so an Origin that equals it
 * came from one of our pages.
 */
export function ownOrigin(req: Request): string {
  const url = new URL(req.url);
  return `${isHttps(req) ? "https" : url.protocol.replace(/:$/, "")}://${req.headers.get("host") ?? url.host}`;
}

/** A WebSocket upgrade's Origin: it must be present and ours. */
export function originIsOurs(req: Request): boolean {
  const origin = req.headers.get("origin");
  return origin !== null && origin.toLowerCase() === ownOrigin(req).toLowerCase();
}

/** A form POST's Origin: ours, or none at all (clients that are not browsers send none; browsers always do on POST). */
export function postOriginAllowed(req: Request): boolean {
  return req.headers.get("origin") === null || originIsOurs(req);
}

/** The cookie `name` of a request, or null. */
export function cookieOf(req: Request, name: string): string | null {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return null;
}

/** The flags every session cookie gets: script cannot read it, other sites' forms do not send it, TLS only behind https. */
export function cookieFlags(req: Request): string {
  return `Path=/; HttpOnly; SameSite=Lax${isHttps(req) ? "; Secure" : ""}`;
}
