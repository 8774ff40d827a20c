import { NotFoundError, UsageError } from "../../errors.ts";
import type { SessionInfo } from "../api-types.ts";

/** What a request names: an ID, a unique ID prefix or a name, and whose sessions to look in (`user`: root only). */
export interface SessionRef {
  ref: string;
  /** `--user U`: U's sessions. Someone else's name from anyone but root finds nothing, like a missing session. */
  user: string | null;
}

/** A reference to the caller's own sessions: what a bare ID or name means. */
export function ownRef(ref: string): SessionRef {
  return { ref, user: null };
}

/**
 * Resolves what a user typed among sessions listed in order of preference. Names and prefixes resolve within the
 * caller's own sessions, root's too: a name must never lead root into another user's session (it could have been
 * started to catch root there). Root reaches another user's session by its full ID, or by naming the user. Someone
 * else's session is "not found", like one that does not exist. Pure.
 */
export function resolveRef<T>(candidates: T[], infoOf: (candidate: T) => SessionInfo, uid: number, target: SessionRef): T {
  const { ref, user } = target;
  const owned = (c: T) => (user === null ? infoOf(c).uid === uid : infoOf(c).user === user && (uid === 0 || infoOf(c).uid === uid));
  const visible = candidates.filter(owned);
  const exact =
    visible.find((c) => infoOf(c).id === ref) ??
    (uid === 0 && user === null ? candidates.find((c) => infoOf(c).id === ref) : undefined) ??
    visible.find((c) => infoOf(c).name === ref);
  if (exact) return exact;
  const prefixed = visible.filter((c) => infoOf(c).id.startsWith(ref));
  const ids = new Set(prefixed.map((c) => infoOf(c).id));
  if (ids.size === 1) return prefixed[0]!;
  if (ids.size > 1) throw new UsageError(`"${ref}" matches ${ids.size} sessions; give more of the ID`);
  // Someone else's session gets the same answer as one that does not exist: IDs are not to be found by trying.
  const whose = user !== null && uid === 0 ? `of ${user}` : "of yours";
  throw new NotFoundError(`no session ${ref} ${whose} on this node`);
}
