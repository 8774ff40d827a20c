/**
 * Queue tickets: what a caller keeps so that, after an executor restart, it can take its place in the queue back.
 * A ticket names the session whose place it is, the user it was issued to and a digest of the request, signed with a
 * key only root can read (`<stateDir>/queue-ticket.key`, 0600). Another user's ticket, a changed request (more GPUs
 * at the same place) or a forged one are refused here; that a place is taken back only once is the claim state
 * machine's business.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/write-atomic.ts";
import { ForbiddenError, UsageError } from "../../errors.ts";
import type { CreateSessionRequest } from "../api-types.ts";

const keyBytes = 32;

interface TicketBody {
  /** The session whose place this is. */
  s: string;
  /** The uid it was issued to. */
  u: number;
  /** sha256 of the request it was issued for. */
  d: string;
}

const base64url = (data: Uint8Array | string) => Buffer.from(data).toString("base64url");

/** The request as a digest: every field but the ticket, keys sorted, so the same request gives the same digest. */
export function requestDigest(req: CreateSessionRequest): string {
  // sort(): UTF-16 code unit order, the same in every version (a ticket kept through an upgrade still verifies).
  const fields = Object.keys(req)
    .filter((key) => key !== "ticket")
    .sort()
    .map((key) => [key, req[key as keyof CreateSessionRequest]]);
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

export class TicketBook {
  constructor(private readonly key: Uint8Array) {}

  private mac(payload: string): Buffer {
    return createHmac("sha256", this.key).update(payload).digest();
  }

  /** The ticket for a request that became session `sessionId` of `uid`. */
  issue(sessionId: string, uid: number, req: CreateSessionRequest): string {
    const payload = base64url(JSON.stringify({ s: sessionId, u: uid, d: requestDigest(req) } satisfies TicketBody));
    return `${payload}.${base64url(this.mac(payload))}`;
  }

  /**
   * The session whose place `req.ticket` names, once the ticket is shown to be this executor's, issued to `uid`, for
   * this very request; null without a ticket. Throws a typed error for any other ticket.
   */
  placeOf(uid: number, req: CreateSessionRequest): string | null {
    if (req.ticket === undefined) return null;
    const [payload = "", mac = ""] = req.ticket.split(".");
    const expected = this.mac(payload);
    const given = Buffer.from(mac, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new UsageError("the queue ticket was not issued by this node's executor");
    }
    const body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as TicketBody;
    if (body.u !== uid) throw new ForbiddenError("this queue ticket was issued to another user");
    if (body.d !== requestDigest(req)) throw new UsageError("this queue ticket was issued for another request");
    return body.s;
  }
}

/**
 * The signing key, made on first use. A key file that is not a plain root-only file of the right size may have been
 * read by someone: it is replaced, which only voids the tickets out now.
 */
export function loadTicketKey(stateDir: string, log: (line: string) => void): Buffer {
  const path = join(stateDir, "queue-ticket.key");
  try {
    const st = lstatSync(path);
    if (st.isFile() && st.uid === process.getuid?.() && (st.mode & 0o077) === 0 && st.size === keyBytes) return readFileSync(path);
    log(`${path} is not a ${keyBytes}-byte file only root can read; replacing it (tickets issued until now are void)`);
  } catch {}
  const key = randomBytes(keyBytes);
  writeFileAtomic(path, key, 0o600);
  return key;
}
