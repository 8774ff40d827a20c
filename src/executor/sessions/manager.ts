import { bytesOf } from "../../config/limits.ts";
import { ConflictError, RestartingError, SessionStartError } from "../../errors.ts";
import { withClaims } from "../../gpu/report.ts";
import type { GpuProcess, Inventory } from "../../gpu/types.ts";
import { dockerMessage, isNotFound } from "../../runtime/docker/errors.ts";
import { Trace } from "../../util/trace.ts";
import type { CreateEvent, CreateSessionRequest, SessionDetails, SessionInfo, SessionView } from "../api-types.ts";
import { claimsByGpu, freeGpus, initialClaims, placesOf, step, type ClaimEffect, type ClaimEvent, type ClaimState } from "../claims/claims.ts";
import { createSession, startSession } from "./create.ts";
import { usableGpus } from "../../gpu/usable.ts";
import type { LiveSession, PendingSession, SessionDeps } from "./types.ts";
import type { GpuUseMonitor } from "../gpu/gpu-use.ts";
import { currentSessions, describeSession, findLive, listSessions, resolveSession, viewOf, type Resolved } from "./queries.ts";
import type { SessionRef } from "./lookup.ts";
import { reconcileOnce } from "./reconcile.ts";
import { stopIdleSessions, stopSessionRef } from "./stop.ts";
import { PlaceWriter } from "../claims/queue-file.ts";

/** A request waiting for the state machine's answer. */
interface ClaimWaiter {
  count: number;
  emit: (e: CreateEvent) => void;
  resolve(gpus: string[]): void;
  reject(err: Error): void;
}

function refusal(reason: Extract<ClaimEffect, { type: "refuse" }>["reason"], message: string): Error {
  if (reason === "no-gpus") return new SessionStartError(message);
  return reason === "restarting" ? new RestartingError(message) : new ConflictError(message);
}

/**
 * Sessions on this node: each container from create to removal, and the glue between Docker and the claim state
 * machine (`claims.ts`), which alone decides who gets which GPU. This class carries out its effects and feeds it
 * what Docker said; the create, reconcile, query and stop paths live in their own files.
 */
export class SessionManager {
  readonly sessions = new Map<string, LiveSession>();
  readonly pending = new Map<string, PendingSession>();
  private state: ClaimState;
  private waiters = new Map<string, ClaimWaiter>();
  private reconciling: Promise<void> | null = null;
  private places: PlaceWriter;
  /** GPU use, idle reclaim and time limits (the daemon starts one; the simulation runs without). */
  gpuUse: GpuUseMonitor | null = null;

  constructor(readonly deps: SessionDeps) {
    const { maxQueuedPerUser, maxGpusPerUser, maxSessionsPerUser, maxMemoryPerUser } = deps.config;
    const maxMemory = maxMemoryPerUser ? bytesOf(maxMemoryPerUser, deps.node.memoryBytes) : Infinity;
    this.state = initialClaims({ maxQueued: maxQueuedPerUser, maxGpus: maxGpusPerUser ?? Infinity, maxSessions: maxSessionsPerUser, maxMemory });
    this.places = new PlaceWriter(deps.places);
  }

  get claimState(): ClaimState {
    return this.state;
  }

  /** GPU uuid -> the session holding it (reserved or confirmed). */
  claims(): Map<string, string> {
    return claimsByGpu(this.state);
  }

  /** Feeds one event to the state machine and carries out its effects; returns them (reconcile adopts from them). */
  dispatch(event: ClaimEvent): ClaimEffect[] {
    const { state, effects } = step(this.state, event);
    this.state = state;
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
      case "queued": {
        const pending = this.pending.get(effect.sessionId);
        if (pending) Object.assign(pending.info, { status: "queued", queuePosition: effect.position });
        waiter?.emit({ type: "queued", sessionId: effect.sessionId, position: effect.position, gpus: waiter.count, free: effect.free, freeBy: this.gpuUse?.freeBy(effect.sessionId) ?? null });
        return;
      }
      case "lost": {
        const session = this.sessions.get(effect.sessionId);
        if (session) session.stopReason ??= "executor lost the container";
        return;
      }
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
    this.deps.log(`keeping ${places.length} place(s) in the queue from before the restart for ${this.deps.config.queueGrace} s`);
    this.dispatch({ type: "restore", places });
    this.deps.clock.later(this.deps.config.queueGrace * 1000, () => this.dispatch({ type: "grace-over" }));
  }

  /** Stopping: nothing more is granted, so the order written down stays as it is. */
  drain(): void {
    this.dispatch({ type: "drain" });
  }

  /** The last word on the places before the executor exits: written now, and not rewritten as requests are let go. */
  freezePlaces(): void {
    this.places.freeze(placesOf(this.state));
  }

  /** Tells a waiting request its place again, with a new bound on when its GPUs are free (the GPU-use monitor asks). */
  retell(sessionId: string): void {
    const position = this.state.queue.findIndex((w) => w.sessionId === sessionId) + 1;
    const waiter = this.waiters.get(sessionId);
    if (position === 0 || !waiter) return;
    const free = freeGpus(this.state).length;
    waiter.emit({ type: "queued", sessionId, position, gpus: waiter.count, free, freeBy: this.gpuUse?.freeBy(sessionId) ?? null });
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

  /** Reads the inventory (cached) and tells the state machine which GPUs may be handed out. */
  async refreshInventory(): Promise<Inventory> {
    const inventory = await this.deps.inventory.get();
    const { usable } = usableGpus(inventory, this.containerIds());
    this.dispatch({ type: "inventory", total: inventory.gpus.length, usable: usable.map((g) => g.uuid!), error: inventory.error });
    return inventory;
  }

  private containerIds(): string[] {
    return [...this.sessions.values()].map((s) => s.containerId);
  }

  /** Watches a container until it exits, then removes it and frees its GPUs. */
  track(info: SessionInfo, containerId: string, startGate: LiveSession["startGate"]): LiveSession {
    const session: LiveSession = {
      info,
      containerId,
      stopReason: null,
      startGate,
      exited: null as never,
      requestedPorts: [],
      timeLimit: null,
      terminals: 0,
      lastAttached: this.deps.clock.now(),
      releaseMounts: async () => {},
      trace: new Trace(),
    };
    session.exited = (async () => {
      await startGate.opened;
      const code = await this.waitForExit(session);
      session.trace.mark("wait");
      const reason = session.stopReason ?? "exited";
      Object.assign(info, { status: "exited", exitCode: code, reason, finishedAt: new Date(this.deps.clock.now()).toISOString() });
      this.deps.log(`session ${info.id} of ${info.user} ended: ${reason}, exit code ${code}`);
      await this.removeQuietly(containerId);
      session.trace.mark("remove");
      this.deps.netns?.ended(info.id);
      await session.releaseMounts();
      this.sessions.delete(info.id);
      this.deps.history.add(info);
      this.dispatch({ type: "ended", sessionId: info.id });
      if (info.slurmJob) this.deps.slurm?.release(info.id, info.slurmJob.id, info.uid);
      this.deps.onChange?.();
      return { code, reason };
    })();
    this.sessions.set(info.id, session);
    return session;
  }

  /**
   * The container's exit code. While Docker does not answer the container may well still run (live restore), so its
   * GPUs stay claimed and the wait is retried; only a container Docker says is gone counts as lost.
   */
  private async waitForExit(session: LiveSession): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        const code = await this.deps.engine.wait(session.containerId);
        // SIGKILL that nobody here sent: `docker rm -f` (or kill) from outside. If the container vanishes, say so.
        if (code === 137 && !session.stopReason && (await this.vanishes(session.containerId))) {
          this.deps.log(`session ${session.info.id}: its container was removed outside Beaker`);
          session.stopReason = "executor lost the container";
        }
        return code;
      } catch (err) {
        if (isNotFound(err)) {
          session.stopReason ??= "executor lost the container";
          return 255;
        }
        if (attempt === 0) this.deps.log(`session ${session.info.id}: cannot watch its container (${dockerMessage(err)}); retrying`);
        await this.deps.clock.sleep(Math.min(5000, 250 * 2 ** attempt));
      }
    }
  }

  /** Whether a killed container disappears within a moment (removed by someone else). */
  private async vanishes(id: string): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      try {
        if (!(await this.deps.engine.exists(id))) return true;
      } catch {}
      await this.deps.clock.sleep(100);
    }
    return false;
  }

  async removeQuietly(id: string): Promise<void> {
    try {
      await this.deps.engine.remove(id);
    } catch (err) {
      this.deps.log(`cannot remove container ${id.slice(0, 12)}: ${dockerMessage(err)}`);
    }
  }

  /** Rebuilds the claims from Docker's labels, adopts running sessions and removes leftovers; one at a time. */
  reconcile(): Promise<void> {
    this.reconciling ??= reconcileOnce(this).finally(() => (this.reconciling = null));
    return this.reconciling;
  }

  /** Creates a session: claim, pull, create, inject the user, and (detached) start. Rolls back on any failure. */
  create(uid: number, req: CreateSessionRequest, emit: (e: CreateEvent) => void, signal: AbortSignal, account: string | null = null, trace = new Trace()): Promise<SessionInfo> {
    if (this.state.draining) return Promise.reject(new RestartingError("the executor is restarting; send the request again in a moment"));
    return createSession(this, { uid, req, emit, signal, account, trace });
  }

  start(sessionId: string): Promise<void> {
    return startSession(this, sessionId);
  }

  /** The GPU report with claims, for `beaker node gpus`. */
  async gpuReport() {
    const inventory = await this.deps.inventory.get();
    const { unavailable } = usableGpus(inventory, this.containerIds());
    return { inventory, gpus: withClaims(inventory, this.claims()), unavailable };
  }

  /** The processes on each GPU that no session owns, by UUID: for the server, which shows them to admins only. */
  async foreignProcesses(): Promise<Record<string, GpuProcess[]>> {
    return usableGpus(await this.deps.inventory.get(), this.containerIds()).foreign;
  }

  resolve(uid: number, ref: SessionRef): Resolved {
    return resolveSession(this, uid, ref);
  }

  /** A running (or starting) session to attach to, exec in or stop; a clear line for one that is not. */
  find(uid: number, ref: SessionRef): LiveSession {
    return findLive(this, uid, ref);
  }

  /** Every session not yet ended, whoever it belongs to (for the server's picture of this node). */
  liveSessions(): SessionView[] {
    return currentSessions(this).map((s) => viewOf(this, s.info));
  }

  list(uid: number, all: boolean): SessionView[] {
    return listSessions(this, uid, all);
  }

  describe(uid: number, ref: SessionRef): Promise<SessionDetails> {
    return describeSession(this, uid, ref);
  }

  /** A terminal opened or closed on a session (for idleTimeout). */
  terminalOpened(session: LiveSession): void {
    session.terminals++;
  }

  terminalClosed(session: LiveSession): void {
    session.terminals = Math.max(0, session.terminals - 1);
    session.lastAttached = this.deps.clock.now();
  }

  stopIdle(): void {
    stopIdleSessions(this);
  }

  stop(uid: number, ref: SessionRef, timeoutSeconds: number): Promise<SessionInfo> {
    return stopSessionRef(this, uid, ref, timeoutSeconds);
  }
}
