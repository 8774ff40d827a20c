import { ConflictError } from "../../errors.ts";
import { dockerMessage } from "../../runtime/docker/errors.ts";
import type { SessionInfo } from "../api-types.ts";
import type { SessionRef } from "./lookup.ts";
import { infoOf, resolveSession } from "./queries.ts";
import type { ExitReason, LiveSession, SessionBook, SessionDeps } from "./types.ts";

/** Stops a session by reference: a queued or starting request is withdrawn, a running one stopped. */
export async function stopSessionRef(book: SessionBook, deps: Pick<SessionDeps, "engine" | "log" | "clock">, uid: number, ref: SessionRef, timeoutSeconds: number): Promise<SessionInfo> {
  const found = resolveSession(book, uid, ref);
  const target = infoOf(found);
  const reason: ExitReason = uid === 0 && target.uid !== 0 ? "stopped by admin" : "stopped by user";
  if (found.kind === "pending") {
    const { info, abort } = found.pending;
    abort.abort(new ConflictError(`session ${info.name} was ${reason} before it started`));
    deps.log(`session request ${info.id} of ${info.user} ${reason} before it started`);
    return { ...info, status: "exited", reason, finishedAt: new Date(deps.clock.now()).toISOString(), queuePosition: null };
  }
  if (found.kind === "finished") {
    throw new ConflictError(`session ${target.name} has already ended (${target.reason ?? "exited"}${target.exitCode === null ? "" : `, exit code ${target.exitCode}`})`);
  }
  found.session.stopReason ??= reason;
  return stopLive(deps.engine, found.session, timeoutSeconds);
}

/** SIGTERM, SIGKILL after the timeout; resolves once the container is gone and its GPUs are free. */
export async function stopLive(engine: Pick<SessionDeps["engine"], "stop">, session: LiveSession, timeoutSeconds: number): Promise<SessionInfo> {
  session.info.status = "stopping";
  session.startGate.open();
  await engine.stop(session.containerId, timeoutSeconds);
  await session.exited;
  return session.info;
}

/** Stops running sessions nobody has attached to for `idleTimeout` seconds (0: never). */
export function stopIdleSessions(book: Pick<SessionBook, "sessions">, deps: Pick<SessionDeps, "config" | "engine" | "log" | "clock">): void {
  const limit = deps.config.idleTimeout;
  if (limit <= 0) return;
  const now = deps.clock.now();
  for (const session of book.sessions.values()) {
    if (session.info.status !== "running" || session.terminals > 0 || now - session.lastAttached < limit * 1000) continue;
    deps.log(`stopping session ${session.info.id} of ${session.info.user}: nobody attached for ${limit} s (idleTimeout)`);
    session.stopReason = "idle";
    void stopLive(deps.engine, session, 10).catch((err) => deps.log(`cannot stop idle session ${session.info.id}: ${dockerMessage(err)}`));
  }
}
