/**
 * "The queue says when": the earliest time a waiting request's GPUs are certain to be free, from the claim state and
 * the time limits alone. Pure. A running session with a time limit frees its GPUs by its deadline (plus the time a stop
 * takes). Nothing else is certain: an idle session may get busy, a session without a limit may run for ever, and a
 * request granted later may spend unbounded time pulling its image before its limit starts to run. A request whose
 * GPUs depend on any of those gets no bound at all: no guessing.
 */
import type { ClaimState } from "./claims.ts";

export interface EtaInput {
  now: number;
  state: Pick<ClaimState, "usable" | "holds" | "queue">;
  /** Session id -> when its GPUs are free at the latest (deadline plus stop time); absent: no limit known. */
  releases: ReadonlyMap<string, number>;
}

/** Waiting session id -> the time its GPUs are certain to be free, or null when no bound is known. */
export function queueBounds(input: EtaInput): Map<string, number | null> {
  const usable = new Set(input.state.usable);
  const held = new Set<string>();
  // GPUs coming free: [time, count], earliest first.
  const events: Array<[number, number]> = [];
  for (const [sessionId, hold] of input.state.holds) {
    const count = hold.gpus.filter((g) => usable.has(g)).length;
    for (const g of hold.gpus) held.add(g);
    if (count === 0) continue;
    const at = input.releases.get(sessionId);
    if (at !== undefined) events.push([Math.max(at, input.now), count]);
  }
  events.sort((a, b) => a[0] - b[0]);
  let pool = input.state.usable.filter((g) => !held.has(g)).length;
  let t = input.now;
  let known = true;
  const bounds = new Map<string, number | null>();
  // Strict FIFO: each request is granted no earlier than the one ahead of it, from what the ones ahead left.
  for (const w of input.state.queue) {
    while (known && pool < w.count && events.length > 0) {
      const [at, count] = events.shift()!;
      t = Math.max(t, at);
      pool += count;
    }
    if (!known || pool < w.count) {
      known = false;
      bounds.set(w.sessionId, null);
      continue;
    }
    bounds.set(w.sessionId, t);
    pool -= w.count;
  }
  return bounds;
}
