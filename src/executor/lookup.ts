import { NotFoundError, UsageError } from "../errors.ts";
import type { SessionInfo } from "./api-types.ts";

/**
 * Resolves what a user typed (an ID, a unique ID prefix, or a name) among sessions listed in order of preference.
 * Only the caller's own count unless the caller is root; someone else's is "not found", like one that does not exist. Pure.
 */
export function resolveRef<T>(candidates: T[], infoOf: (candidate: T) => SessionInfo, uid: number, ref: string): T {
  const visible = candidates.filter((c) => uid === 0 || infoOf(c).uid === uid);
  const exact = visible.find((c) => infoOf(c).id === ref) ?? visible.find((c) => infoOf(c).name === ref);
  if (exact) return exact;
  const prefixed = visible.filter((c) => infoOf(c).id.startsWith(ref));
  const ids = new Set(prefixed.map((c) => infoOf(c).id));
  if (ids.size === 1) return prefixed[0]!;
  if (ids.size > 1) throw new UsageError(`"${ref}" matches ${ids.size} sessions; give more of the ID`);
  // Someone else's session gets the same answer as one that does not exist: IDs are not to be found by trying.
  throw new NotFoundError(`no session ${ref} of yours on this node`);
}
