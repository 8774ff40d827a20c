import { bytesOf } from "../../config/limits.ts";
import { RestartingError } from "../../errors.ts";
import { withClaims } from "../../gpu/report.ts";
import type { GpuProcess, Inventory } from "../../gpu/types.ts";
import { usableGpus } from "../../gpu/usable.ts";
import { dockerMessage, isNotFound } from "../../runtime/docker/errors.ts";
import { Trace } from "../../util/trace.ts";
import type { CreateEvent, CreateSessionRequest, SessionDetails, SessionInfo, SessionUse, SessionView } from "../api-types.ts";
import { ClaimDriver } from "../claims/driver.ts";
import { createSession, startSession } from "./create.ts";
import type { SessionRef } from "./lookup.ts";
import { currentSessions, describeSession, findLive, listSessions, resolveSession, viewOf, type Resolved } from "./queries.ts";
import { reconcileOnce } from "./reconcile.ts";
import { stopIdleSessions, stopSessionRef } from "./stop.ts";
import type { LiveSession, PendingSession, SessionDeps, SessionHost, UseReporter } from "./types.ts";

/**
 * Sessions on this node: each container from create to removal, and the glue between Docker and the claim state
 * machine (`claims/claims.ts`, run by `claims/driver.ts`), which alone decides who gets which GPU. This class feeds it
 * what Docker said; the create, reconcile, query and stop paths live in their own files, each given only what it uses.
 */
export class SessionManager implements SessionHost {
  readonly sessions = new Map<string, LiveSession>();
  readonly pending = new Map<string, PendingSession>();
  /** Who holds which GPU, and the queue: the claim state machine at work. */
  readonly claims: ClaimDriver;
  private reconciling: Promise<void> | null = null;
  /** GPU use, idle reclaim and time limits (the daemon starts one; the simulation runs without). */
  gpuUse: UseReporter | null = null;

  constructor(readonly deps: SessionDeps) {
    const { maxQueuedPerUser, maxGpusPerUser, maxSessionsPerUser, maxMemoryPerUser, queueGrace } = deps.config;
    const maxMemory = maxMemoryPerUser ? bytesOf(maxMemoryPerUser, deps.node.memoryBytes) : Infinity;
    this.claims = new ClaimDriver({
      limits: { maxQueued: maxQueuedPerUser, maxGpus: maxGpusPerUser ?? Infinity, maxSessions: maxSessionsPerUser, maxMemory },
      places: deps.places,
      queueGrace,
      log: deps.log,
      clock: deps.clock,
      onClaim: deps.onClaim,
      queued: (sessionId, position) => {
        const pending = this.pending.get(sessionId);
        if (pending) Object.assign(pending.info, { status: "queued", queuePosition: position });
      },
      lost: (sessionId) => {
        const session = this.sessions.get(sessionId);
        if (session) session.stopReason ??= "executor lost the container";
      },
      freeBy: (sessionId) => this.gpuUse?.freeBy(sessionId) ?? null,
    });
  }

  get history(): SessionDeps["history"] {
    return this.deps.history;
  }

  useOf(info: SessionInfo): SessionUse | null {
    return this.gpuUse?.fields(info) ?? null;
  }

  /** Reads the inventory (cached) and tells the state machine which GPUs may be handed out. */
  async refreshInventory(): Promise<Inventory> {
    const inventory = await this.deps.inventory.get();
    const { usable } = usableGpus(inventory, this.containerIds());
    this.claims.dispatch({ type: "inventory", total: inventory.gpus.length, usable: usable.map((g) => g.uuid!), error: inventory.error });
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
      this.claims.dispatch({ type: "ended", sessionId: info.id });
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
    if (this.claims.state.draining) return Promise.reject(new RestartingError("the executor is restarting; send the request again in a moment"));
    return createSession(this, { uid, req, emit, signal, account, trace });
  }

  start(sessionId: string): Promise<void> {
    return startSession(this, sessionId);
  }

  /** The GPU report with claims, for `beaker node gpus`. */
  async gpuReport() {
    const inventory = await this.deps.inventory.get();
    const { unavailable } = usableGpus(inventory, this.containerIds());
    return { inventory, gpus: withClaims(inventory, this.claims.byGpu()), unavailable };
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
    return describeSession(this, this.deps.inventory, uid, ref);
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
    stopIdleSessions(this, this.deps);
  }

  stop(uid: number, ref: SessionRef, timeoutSeconds: number): Promise<SessionInfo> {
    return stopSessionRef(this, this.deps, uid, ref, timeoutSeconds);
  }
}
