/**
 * A graceful stop (SIGTERM from `systemctl stop`/`restart`, or `beaker executor restart`): nobody loses a session, a
 * place in the queue or a terminal. Nothing more is granted; creates already past the queue finish (or fail and roll
 * back); sessions just created get their terminals; then the order is written down one last time, every request still
 * waiting is let go with "restarting" (its CLI sends it again, with its ticket, to the next executor) and every
 * terminal is closed with 1012 (Service Restart), which its CLI answers by reconnecting.
 */
import { RestartingError } from "../errors.ts";
import type { SessionManager } from "./sessions/manager.ts";

/** What a drain reads and does: the records, the claims, and starting a session that waits for its terminal. */
type Draining = Pick<SessionManager, "sessions" | "pending" | "claims" | "deps" | "start">;
import type { TerminalData } from "./terminals/terminal.ts";
import type { PeerSocket } from "./terminals/peer.ts";

/** How long creates in flight and sessions waiting for their terminal get to finish before the executor stops anyway. */
export const drainTimeoutMs = 20_000;
/** How long a new session waits for its CLI to attach (a moment, normally) before it is started without it. */
const attachWaitMs = 2_000;
/** How long requests that were let go get to roll back (remove a half-made container) before the executor exits. */
const letGoMs = 10_000;

/** Requests between their arrival and their container, other than those waiting in the queue. */
function inFlight(m: Draining): number {
  const queued = new Set(m.claims.state.queue.map((w) => w.sessionId));
  return [...m.pending.keys()].filter((id) => !queued.has(id)).length;
}

/** Sessions created and not started: an interactive one waits for its CLI's terminal. */
const unstarted = (m: Draining) => [...m.sessions.values()].filter((s) => s.info.status === "starting");

async function until(m: Draining, done: () => boolean, ms: number): Promise<boolean> {
  const { clock } = m.deps;
  const deadline = clock.now() + ms;
  while (!done()) {
    if (clock.now() >= deadline) return false;
    await clock.sleep(50);
  }
  return true;
}

export async function drainExecutor(m: Draining, terminals: Iterable<PeerSocket<TerminalData>>): Promise<void> {
  const { log } = m.deps;
  m.claims.drain();
  log("stopping: nothing more is granted; waiting for creates in flight and for new sessions' terminals");
  if (!(await until(m, () => inFlight(m) === 0, drainTimeoutMs))) log(`stopping: ${inFlight(m)} create(s) still in flight after ${drainTimeoutMs / 1000} s`);
  // A session still waiting for its terminal is started now (as it would be after a while anyway): after the restart
  // it is a running session its CLI reattaches to, where an unstarted one would be removed as a leftover.
  await until(m, () => unstarted(m).length === 0, attachWaitMs);
  for (const session of unstarted(m)) await m.start(session.info.id).catch((err) => log(`cannot start session ${session.info.id}: ${(err as Error).message}`));
  m.claims.freezePlaces();
  for (const pending of m.pending.values()) pending.abort.abort(new RestartingError("the executor is restarting; send the request again with its ticket"));
  await until(m, () => m.pending.size === 0, letGoMs);
  for (const ws of terminals) ws.close(1012, "executor restarting");
}
