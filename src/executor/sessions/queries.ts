import { ConflictError } from "../../errors.ts";
import type { SessionDetails, SessionInfo, SessionUse, SessionView } from "../api-types.ts";
import { resolveRef, type SessionRef } from "./lookup.ts";
import type { LiveSession, PendingSession, SessionBook, SessionDeps } from "./types.ts";

/** The records a reference is resolved in. */
type Records = Pick<SessionBook, "sessions" | "pending" | "history">;

/** What a session reference resolved to. */
export type Resolved = { kind: "live"; session: LiveSession } | { kind: "pending"; pending: PendingSession } | { kind: "finished"; info: SessionInfo };

export function infoOf(r: Resolved): SessionInfo {
  return r.kind === "live" ? r.session.info : r.kind === "pending" ? r.pending.info : r.info;
}

/** A copy for the wire: the queue position only while queued. */
export function snapshot(info: SessionInfo): SessionInfo {
  return { ...info, queuePosition: info.status === "queued" ? info.queuePosition : null };
}

/** The GPU-use fields of a session nothing is known about (queued, ended, or a node without the monitor). */
const noUse: SessionUse = { gpuUtilization: [], gpuMemoryUsedMiB: [], idleSince: null, idleAction: null, idleStopsAt: null, keptUntil: null, deadline: null };

/** A session for the wire: its record and what the GPU-use monitor knows of it. */
export function viewOf(book: Pick<SessionBook, "useOf">, info: SessionInfo): SessionView {
  return { ...snapshot(info), ...(book.useOf(info) ?? noUse) };
}

/**
 * Every session not yet ended, each once. A create's record stays in `pending` until its request is over, which for a
 * detached create is after its container was made and started: from then it is a live session too, and counts as one.
 */
export function currentSessions(book: Pick<SessionBook, "sessions" | "pending">): Array<LiveSession | PendingSession> {
  return [...book.sessions.values(), ...[...book.pending.values()].filter((p) => !book.sessions.has(p.info.id))];
}

/**
 * Resolves an ID, a unique ID prefix, or a name to a session: running, waiting, or finished (newest first). Names and
 * prefixes find only the caller's own (root's too; root gives a full ID or `user`); someone else's is "not found".
 */
export function resolveSession(book: Records, uid: number, ref: SessionRef): Resolved {
  const candidates: Resolved[] = [
    ...[...book.sessions.values()].map((session) => ({ kind: "live" as const, session })),
    ...[...book.pending.values()].map((pending) => ({ kind: "pending" as const, pending })),
    ...book.history
      .all()
      .toReversed()
      .map((info) => ({ kind: "finished" as const, info })),
  ];
  return resolveRef(candidates, infoOf, uid, ref);
}

/** The caller's own session with exactly this ID, running or finished, or null. */
export function ownSession(book: Records, uid: number, id: string): SessionInfo | null {
  const info = book.sessions.get(id)?.info ?? book.history.all().find((h) => h.id === id);
  return info && info.uid === uid ? snapshot(info) : null;
}

export function findLive(book: Records, uid: number, ref: SessionRef): LiveSession {
  const found = resolveSession(book, uid, ref);
  if (found.kind === "live") return found.session;
  if (found.kind === "pending") throw new ConflictError(`session ${found.pending.info.name} has not started yet (${found.pending.info.status})`);
  const { name, reason, exitCode } = found.info;
  throw new ConflictError(`session ${name} has already ended (${reason ?? "exited"}${exitCode === null ? "" : `, exit code ${exitCode}`})`);
}

/** The caller's sessions (root with `all`: everyone's); `all` adds the finished ones still remembered. */
export function listSessions(book: SessionBook, uid: number, all: boolean): SessionView[] {
  const mine = (info: SessionInfo) => (all && uid === 0) || info.uid === uid;
  const live = currentSessions(book).map((s) => s.info);
  const finished = all ? book.history.all().filter((f) => !live.some((l) => l.id === f.id)) : [];
  return [...live, ...finished]
    .filter(mine)
    .map((info) => viewOf(book, info))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Everything about one session, with its GPUs' indexes and names from the current inventory. */
export async function describeSession(book: SessionBook, inventory: SessionDeps["inventory"], uid: number, ref: SessionRef): Promise<SessionDetails> {
  const info = infoOf(resolveSession(book, uid, ref));
  const { gpus } = await inventory.get();
  const devices = info.gpus.map((uuid) => {
    const gpu = gpus.find((g) => g.uuid === uuid);
    return { uuid, index: gpu?.index ?? null, name: gpu?.name ?? null };
  });
  return { ...viewOf(book, info), devices };
}
