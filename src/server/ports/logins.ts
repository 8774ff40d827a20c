/**
 * Signing a browser in on a port origin, without a token in any URL. The main origin (Beaker's cookie) issues a
 * ticket: random, single use, 60 s, bound to the web session and to one (session, port); the port origin redeems it
 * (`POST /.beaker/auth`) for a sign-in of its own, an opaque random id in a host-only cookie. Both live in SQL, by
 * their SHA-256, like web sessions: a ticket issued by one server is redeemed on another, and both end with the web
 * session they name (sign-out, an expired sign-in, a revoked or rotated token).
 */
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db.ts";
import { num } from "../rows.ts";
import type { UserInfo } from "../types.ts";
import type { PortTarget } from "./host.ts";

export const ticketMs = 60_000;

export interface PortLogin extends PortTarget {
  user: UserInfo;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

export class PortLogins {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** A ticket for the web session whose cookie is `webCookie`, good once for `target` within `ticketMs`. */
  async issueTicket(webCookie: string, target: PortTarget): Promise<string> {
    const ticket = randomBytes(32).toString("base64url");
    const now = this.now();
    await this.db.sql`DELETE FROM port_tickets WHERE expires_at < ${now}`;
    await this.db.sql`
      INSERT INTO port_tickets (id_hash, web_session, session_id, port, expires_at)
      VALUES (${sha256(ticket)}, ${sha256(webCookie)}, ${target.sessionId}, ${target.port}, ${now + ticketMs})`;
    return ticket;
  }

  /**
   * Redeems a ticket on the origin of `target`: the ticket is gone after this whatever the answer (single use, even
   * when presented at the wrong port), and the answer is a new sign-in id, or null when the ticket is unknown, used,
   * expired, for another (session, port), or its web session has ended.
   */
  async redeem(ticket: string, target: PortTarget): Promise<string | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(ticket)) return null;
    const [row] = await this.db.sql`DELETE FROM port_tickets WHERE id_hash = ${sha256(ticket)} RETURNING web_session, session_id, port, expires_at`;
    if (!row || num(row.expires_at) < this.now() || row.session_id !== target.sessionId || num(row.port) !== target.port) return null;
    const web = String(row.web_session);
    if (!(await this.webSessionLive(web))) return null;
    const id = randomBytes(32).toString("base64url");
    await this.db.sql`
      DELETE FROM port_logins WHERE web_session NOT IN (SELECT id_hash FROM web_sessions WHERE expires_at >= ${this.now()})`;
    await this.db.sql`
      INSERT INTO port_logins (id_hash, web_session, session_id, port) VALUES (${sha256(id)}, ${web}, ${target.sessionId}, ${target.port})`;
    return id;
  }

  /** Who a port cookie signs in, on the origin of `target` only; null for anything else. */
  async lookup(cookie: string, target: PortTarget): Promise<PortLogin | null> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(cookie)) return null;
    const [row] = await this.db.sql`
      SELECT p.session_id, p.port, w.expires_at, u.name, u.admin
      FROM port_logins p JOIN web_sessions w ON w.id_hash = p.web_session JOIN users u ON u.id = w.user_id
      WHERE p.id_hash = ${sha256(cookie)}`;
    if (!row || num(row.expires_at) < this.now() || row.session_id !== target.sessionId || num(row.port) !== target.port) return null;
    return { sessionId: target.sessionId, port: target.port, user: { name: String(row.name), admin: num(row.admin) === 1 } };
  }

  /** When the web session behind a sign-in ends (for the cookie's Max-Age), or null. */
  async expiresAt(cookie: string): Promise<number | null> {
    const [row] = await this.db.sql`
      SELECT w.expires_at FROM port_logins p JOIN web_sessions w ON w.id_hash = p.web_session WHERE p.id_hash = ${sha256(cookie)}`;
    return row ? num(row.expires_at) : null;
  }

  private async webSessionLive(hash: string): Promise<boolean> {
    const [row] = await this.db.sql`SELECT expires_at FROM web_sessions WHERE id_hash = ${hash}`;
    return !!row && num(row.expires_at) >= this.now();
  }
}
