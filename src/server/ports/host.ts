/**
 * Port origins (docs/SECURITY.md "Ports in the browser"): each (session, port) is served on a host of its own,
 * `<sessionId>-<port>.<portsDomain>`, so a page in one session is another origin than every other session's pages and
 * than Beaker's own. Pure.
 */

/** A session ID as the executor makes them: 6 random bytes in lowercase hex. */
const sessionIdPattern = /^[0-9a-f]{12}$/;

export interface PortTarget {
  sessionId: string;
  port: number;
}

/** The host name of a Host header: lowercased, its `:port` (or `[v6]:port`) cut off. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * Whether a request for `host` belongs to the port origins: any name strictly under `portsDomain` (case and trailing
 * dots ignored), so that no such name, however malformed, ever reaches Beaker's own pages. The domain itself is not.
 */
export function isPortsHost(host: string, portsDomain: string): boolean {
  const name = hostName(host).replace(/\.+$/, "");
  return name.endsWith(`.${portsDomain.toLowerCase()}`);
}

/**
 * `<12 hex>-<port>.<portsDomain>` -> the session and port, or null: exactly one label before the domain, a port from
 * 1 to 65535 without leading zeros (one port, one origin), no trailing dot (a browser's other origin for the same name).
 */
export function parsePortHost(host: string, portsDomain: string): PortTarget | null {
  const name = hostName(host);
  const suffix = `.${portsDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return null;
  const m = /^([0-9a-f]{12})-([1-9][0-9]{0,4})$/.exec(name.slice(0, -suffix.length));
  if (!m || !sessionIdPattern.test(m[1]!)) return null;
  const port = Number(m[2]);
  return port <= 65535 ? { sessionId: m[1]!, port } : null;
}

/**
 * The origin of a port, with the scheme and the listening port the browser reached Beaker on (`mainHost` is the main
 * request's Host header): `https://0123456789ab-8888.ports.example.org`.
 */
export function portOrigin(target: PortTarget, portsDomain: string, scheme: "http" | "https", mainHost: string): string {
  const h = mainHost.trim();
  const m = /:(\d+)$/.exec(h.startsWith("[") ? h.slice(h.indexOf("]") + 1) : h);
  const listen = m && !((scheme === "https" && m[1] === "443") || (scheme === "http" && m[1] === "80")) ? `:${m[1]}` : "";
  return `${scheme}://${target.sessionId}-${target.port}.${portsDomain.toLowerCase()}${listen}`;
}

/** `portsDomain` as configured: a DNS name of two labels or more (or `localhost`, for tests), lowercase. */
export function checkPortsDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase();
  const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
  return new RegExp(`^(?:${label}\\.)+${label}$|^localhost$`).test(d) ? null : `portsDomain "${domain}" must be a DNS name like ports.beaker.example.org`;
}
