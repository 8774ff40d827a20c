import { ConflictError } from "../../errors.ts";

/**
 * How many of one thing (open terminals, requests in flight) each user has on this node, and the most each may have.
 * Root is not counted: it acts for everyone, and is the one who sets the limits. Taking and giving back are
 * synchronous, so two requests never both take the last place.
 */
export class PerUserCap {
  private readonly counts = new Map<number, number>();

  constructor(
    private readonly limit: number,
    /** The refusal's message, given the count the user has. */
    private readonly refusal: (count: number) => string,
  ) {}

  /** One more for `uid`, or a ConflictError (exit 6) at the limit. The returned function gives it back, once. */
  take(uid: number): () => void {
    if (uid === 0) return () => {};
    const count = this.counts.get(uid) ?? 0;
    if (count >= this.limit) throw new ConflictError(this.refusal(count));
    this.counts.set(uid, count + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.counts.get(uid) ?? 1) - 1;
      if (left > 0) this.counts.set(uid, left);
      else this.counts.delete(uid);
    };
  }

  count(uid: number): number {
    return this.counts.get(uid) ?? 0;
  }
}

/**
 * Requests one user may have in flight at once (an HTTP request from its headers until its answer starts; terminals
 * and a create's wait in the queue have limits of their own). Enough for any script; a flood of hanging requests gets
 * a refusal instead of holding the executor's memory and Docker's attention.
 */
export const maxRequestsInFlightPerUser = 32;

export function terminalCap(limit: number): PerUserCap {
  return new PerUserCap(limit, (n) => `you have ${n} terminals open on this node, the most allowed (maxTerminalsPerUser): close one first`);
}

export function requestCap(limit = maxRequestsInFlightPerUser): PerUserCap {
  return new PerUserCap(limit, (n) => `you have ${n} requests in flight on this node, the most allowed: wait for them to finish`);
}
