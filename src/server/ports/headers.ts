/**
 * What crosses the proxy between a browser and a session's port, decided here and nowhere else. Pure.
 *
 * Requests keep the browser's method, path, query and end-to-end headers, minus the hop-by-hop ones (RFC 9110 7.6.1)
 * and minus Beaker's cookies (the port sign-in; the main sign-in too, which a browser never sends here as it is
 * host-only, should anything ever send it), which only this server may see. Responses keep the session's headers, minus the
 * hop-by-hop ones; a `Set-Cookie` loses its `Domain`, so a session's app cannot (by a header) plant cookies on the
 * other sessions' origins.
 */

/** The cookie that signs a browser in on one port origin (`__Host-` prefixed behind TLS: no sibling can overwrite it). */
export const portCookieBase = "beaker_port";

export function portCookieName(secure: boolean): string {
  return secure ? `__Host-${portCookieBase}` : portCookieBase;
}

const hopByHop = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

/** Header names a message must not carry past a proxy: the fixed list and the ones its `Connection` names. */
function dropped(headers: Headers): Set<string> {
  const names = new Set(hopByHop);
  for (const token of (headers.get("connection") ?? "").split(",")) if (token.trim()) names.add(token.trim().toLowerCase());
  return names;
}

/** Every value of the cookie `name` in a Cookie header (a browser may send several: other paths, tossed ones). */
export function cookieValues(header: string | null, name: string): string[] {
  const values: string[] = [];
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/** Cookies only Beaker reads: never forwarded to a session. */
const beakerCookies = new Set([portCookieBase, `__Host-${portCookieBase}`, "beaker_session"]);

/** The Cookie header without any of Beaker's cookies, or null when nothing is left. */
export function withoutBeakerCookies(header: string | null): string | null {
  const kept = (header ?? "")
    .split(";")
    .map((p) => p.trim())
    .filter((p) => {
      const name = p.slice(0, Math.max(p.indexOf("="), 0)).trim() || p;
      return p !== "" && !beakerCookies.has(name);
    });
  return kept.length ? kept.join("; ") : null;
}

/** The headers sent on to the session's port: the browser's, less hop-by-hop and Beaker's cookies, `Host` as asked. */
export function requestHeaders(incoming: Headers, host: string): Headers {
  const skip = dropped(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    // `Expect: 100-continue` was answered by this server already; the body is sent on at once.
    if (skip.has(name) || name === "host" || name === "cookie" || name === "expect") continue;
    out.append(name, value);
  }
  out.set("host", host);
  const cookie = withoutBeakerCookies(incoming.get("cookie"));
  if (cookie) out.set("cookie", cookie);
  return out;
}

/** A Set-Cookie line without its `Domain` attribute: host-only on the port origin that sent it. */
export function hostOnlyCookie(line: string): string {
  return line
    .split(";")
    .filter((attr, i) => i === 0 || !/^\s*domain\s*=/i.test(attr))
    .join(";");
}

/** The session's response headers as the browser gets them. */
export function responseHeaders(incoming: Headers): Headers {
  const skip = dropped(incoming);
  const out = new Headers();
  for (const [name, value] of incoming) {
    if (skip.has(name) || name === "set-cookie" || name === "content-length") continue;
    out.append(name, value);
  }
  for (const line of incoming.getSetCookie()) out.append("set-cookie", hostOnlyCookie(line));
  const length = incoming.get("content-length");
  if (length !== null && !incoming.has("transfer-encoding")) out.set("content-length", length);
  return out;
}

/**
 * Whether a request may act on a port origin, for requests that can change something (every method but GET, HEAD and
 * OPTIONS, and every WebSocket): its `Origin` must be this port origin. Sibling sessions' origins are same-site (one
 * registrable domain), so SameSite cookies alone would let one session's page post to another's, a Jupyter kernel
 * included. Without `Origin`, `Sec-Fetch-Site` decides; a client that sends neither is not a browser page.
 */
export function mayAct(method: string, headers: Headers, origin: string, websocket: boolean): boolean {
  if (!websocket && ["GET", "HEAD", "OPTIONS"].includes(method)) return true;
  const from = headers.get("origin");
  if (from !== null) return from.toLowerCase() === origin.toLowerCase();
  const site = headers.get("sec-fetch-site");
  return site === null || site === "same-origin" || site === "none";
}
