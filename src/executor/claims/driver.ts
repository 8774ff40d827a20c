/**
 * The claim state machine (`claims.ts`) at work: it holds the state, feeds it one event at a time, writes the queue's
 * order down before anything is carried out, and answers the requests waiting for its grants. It knows sessions only
 * by ID: what it says about them (a place in the queue, a lost container) goes out through `ClaimDriverDeps`.
 */
import { ConflictError, RestartingError, SessionStartError } from "../../errors.ts";
import type { Clock } from "../../util/clock.ts";
import type { CreateEvent } from "../api-types.ts";
import { claimsByGpu, freeGpus, initialClaims, placesOf, step, type ClaimEffect, type ClaimEvent, type ClaimState, type UserLimits } from "./claims.ts";
import { PlaceWriter, type PlaceStore } from "./queue-file.ts";

/** A request waiting for the state machine's answer. */
interface ClaimWaiter {
  count: number;
  emit: (e: CreateEvent) => void;
  resolve(gpus: string[]): void;
  reject(err: Error): void;
}

export interface ClaimDriverDeps {
  limits: Partial<UserLimits>;
  /** Where the queue's order is written down to outlive a restart. */
  places: PlaceStore;
  /** Seconds a place restored after a restart is kept for its caller. */
  queueGrace: number;
  log: (line: string) => void;
  clock: Pick<Clock, "later">;
  /** Sees every event and what it decided (the simulation checks FIFO order). */
  onClaim?: (event: ClaimEvent, effects: readonly ClaimEffect[]) => void;
  /** A waiting request's place changed. */
  queued(sessionId: string, position: number): void;
  /** The state machine gave up a session whose container is gone. */
  lost(sessionId: string): void;
  /** When a waiting request's GPUs are free at the latest (ISO), or null (the GPU-use monitor's bound). */
  freeBy(sessionId: string): string | null;
}

function refusal(reason: Extract<ClaimEffect, { type: "refuse" }>["reason"], message: string): Error {
  if (reason === "no-gpus") return new SessionStartError(message);
  return reason === "restarting" ? new RestartingError(message) : new ConflictError(message);
}

export class ClaimDriver {
  private current: ClaimState;
  private readonly waiters = new Map<string, ClaimWaiter>();
  private readonly places: PlaceWriter;

  constructor(private readonly deps: ClaimDriverDeps) {
    this.current = initialClaims(deps.limits);
    this.places = new PlaceWriter(deps.places);
  }

  get state(): ClaimState {
    return this.current;
  }

  /** GPU uuid -> the session holding it (reserved or confirmed). */
  byGpu(): Map<string, string> {
    return claimsByGpu(this.current);
  }

  /** Feeds one event to the state machine and carries out its effects; returns them (reconcile adopts from them). */
  dispatch(event: ClaimEvent): ClaimEffect[] {
    const { state, effects } = step(this.current, event);
    this.current = state;
    // Written before anything is carried out: a crash right after still finds them.
    this.places.write(placesOf(state));
    this.deps.onClaim?.(event, effects);
    for (const effect of effects) this.apply(effect);
    return effects;
  }

  private apply(effect: ClaimEffect): void {
    const waiter = "sessionId" in effect ? this.waiters.get(effect.sessionId) : undefined;
    switch (effect.type) {
      case "grant":
        if (!waiter) {
          // Nobody waits for it any more (cannot happen: a withdrawn request leaves the queue first); free it.
          this.dispatch({ type: "cancel", sessionId: effect.sessionId });
          return;
        }
        this.waiters.delete(effect.sessionId);
        waiter.resolve(effect.gpus);
        return;
      case "refuse":
        if (!waiter) return;
        this.waiters.delete(effect.sessionId);
        waiter.reject(refusal(effect.reason, effect.message));
        return;
      case "queued":
        this.deps.queued(effect.sessionId, effect.position);
        waiter?.emit({ type: "queued", sessionId: effect.sessionId, position: effect.position, gpus: waiter.count, free: effect.free, freeBy: this.deps.freeBy(effect.sessionId) });
        return;
      case "lost":
        this.deps.lost(effect.sessionId);
        return;
      case "returned":
        this.deps.log(`session request ${effect.sessionId} ${effect.kept ? "took back the place in the queue" : "came back too late for the place in the queue"} of ${effect.place}`);
        waiter?.emit({ type: "returned", kept: effect.kept });
        return;
      case "lapsed":
        this.deps.log(`the place in the queue of ${effect.sessionId} was given up: its caller did not come back within queueGrace`);
        return;
      case "adopt":
        return;
    }
  }

  /**
   * At start-up: the places the previous run wrote down go back to the head of the queue; those whose callers are not
   * back within `queueGrace` are given up.
   */
  restoreQueue(): void {
    const places = this.deps.places.load();
    if (places.length === 0) return;
    this.deps.log(`keeping ${places.length} place(s) in the queue from before the restart for ${this.deps.queueGrace} s`);
    this.dispatch({ type: "restore", places });
    this.deps.clock.later(this.deps.queueGrace * 1000, () => this.dispatch({ type: "grace-over" }));
  }

  /** Stopping: nothing more is granted, so the order written down stays as it is. */
  drain(): void {
    this.dispatch({ type: "drain" });
  }

  /** The last word on the places before the executor exits: written now, and not rewritten as requests are let go. */
  freezePlaces(): void {
    this.places.freeze(placesOf(this.current));
  }

  /** Tells a waiting request its place again, with a new bound on when its GPUs are free (the GPU-use monitor asks). */
  retell(sessionId: string): void {
    const position = this.current.queue.findIndex((w) => w.sessionId === sessionId) + 1;
    const waiter = this.waiters.get(sessionId);
    if (position === 0 || !waiter) return;
    const free = freeGpus(this.current).length;
    waiter.emit({ type: "queued", sessionId, position, gpus: waiter.count, free, freeBy: this.deps.freeBy(sessionId) });
  }

  /** Waits (in the queue when it must) for the state machine to grant `count` GPUs. Abort withdraws the request. */
  claim(sessionId: string, request: { uid: number; count: number; noWait: boolean; memory?: number; place?: string }, emit: (e: CreateEvent) => void, signal: AbortSignal): Promise<string[]> {
    const { count } = request;
    return new Promise<string[]>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = () => {
        if (!this.waiters.delete(sessionId)) return;
        this.deps.log(`session request ${sessionId} left the queue`);
        this.dispatch({ type: "cancel", sessionId });
        reject(signal.reason);
      };
      const done = () => signal.removeEventListener("abort", onAbort);
      this.waiters.set(sessionId, {
        count,
        emit,
        resolve: (gpus) => (done(), resolve(gpus)),
        reject: (err) => (done(), reject(err)),
      });
      signal.addEventListener("abort", onAbort, { once: true });
      this.dispatch({ type: "request", sessionId, ...request });
    });
  }
}
