/**
 * One seed of the executor simulation: a random workload (creates of 0..N+1 GPUs, some --no-wait, some cancelled
 * while queued; stops; reconcile ticks; Docker down for a while; containers failing to create or start, exiting at
 * once, removed behind the executor's back; GPUs turning unhealthy or busy; executor crashes and graceful restarts,
 * after which some callers come back with their queue tickets, some too late, some never, and now and then another
 * user tries a stolen ticket or a caller sends its ticket twice) run against the real session manager on the fake
 * world, with the invariants checked after every step.
 */
import type { ExecutorConfig } from "../../src/config/executor.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../../src/executor/api-types.ts";
import type { ClaimEffect, ClaimEvent, Place } from "../../src/executor/claims/claims.ts";
import type { PlaceStore } from "../../src/executor/claims/queue-file.ts";
import { RestartingError } from "../../src/errors.ts";
import { overCaps } from "./caps.ts";
import { OrderCheck } from "./order.ts";
import { FakeEngine, FakeGpus, Scheduler, type Faults } from "./world.ts";

/** What the simulation needs of a session manager (one executor incarnation). */
export interface SimManager {
  create(uid: number, req: CreateSessionRequest, emit: (e: CreateEvent) => void, signal: AbortSignal): Promise<SessionInfo>;
  stop(uid: number, ref: string, timeoutSeconds: number): Promise<SessionInfo>;
  reconcile(): Promise<void>;
  /** At start-up: the places written down by the previous incarnation go back into the queue. */
  restoreQueue(): void;
  /** A graceful stop (what SIGTERM does): resolves when the executor may exit. */
  drain(): Promise<void>;
  /** GPU uuid -> session holding it. */
  claims(): ReadonlyMap<string, string>;
  /** Sessions this executor knows and has not finished: containers it watches and requests it is handling. */
  tracked(): ReadonlySet<string>;
  /** Sees each event the claim state machine gets and its effects (the FIFO check follows the queue with them). */
  onClaim?: (event: ClaimEvent, effects: readonly ClaimEffect[]) => void;
  /** Two claims on one GPU in the manager's own records, or null. */
  holdsOverlap?: () => string | null;
  /** A session that the server's report or `session list --all` shows twice, or null. */
  shownTwice?: (what: "report" | "list") => string | null;
}

export interface SimEnv {
  /** A scratch state directory (account files are written there). */
  stateDir: string;
  /** Executor config for this seed (per-user limits). */
  config: Partial<ExecutorConfig>;
  sim: Scheduler;
  engine: FakeEngine;
  gpus: FakeGpus;
  /** The executor incarnation: its timers (and engine answers) die with it. */
  owner: number;
  /** The state directory's queue file, which outlives every incarnation. */
  disk: PlaceStore;
  /** The state directory's ticket key. */
  ticketKey: Uint8Array;
  log: (line: string) => void;
}

export type ManagerFactory = (env: SimEnv) => SimManager;

export interface SimResult {
  seed: number;
  violation: string | null;
  trace: string[];
  stats: { creates: number; sessions: number; crashes: number; steps: number; returns: number; kept: number };
}

class Violation extends Error {}

interface ClientRequest {
  n: number;
  uid: number;
  count: number;
  noWait: boolean;
  body: CreateSessionRequest;
  /** new; return: sent again with its ticket after a restart; thief: another user with someone's ticket. */
  kind: "new" | "return" | "thief";
  /** The last ticket the executor gave it. */
  ticket: string | null;
  kept: boolean | null;
  queuedAt: number | null;
  sessionId: string | null;
  settled: "pending" | "created" | "failed" | "lost";
  error?: string;
  abort: AbortController;
  owner: number;
}

export interface SimOptions {
  /** Leave out fault kinds the code under test cannot survive without real time (e.g. the pre-fix code). */
  removeBehindBack?: boolean;
  dockerDown?: boolean;
  crashes?: boolean;
  /** Check only what users would see (two running containers sharing a GPU), not the ledger's own records. */
  observableOnly?: boolean;
}

export async function runSeed(seed: number, factory: ManagerFactory, options: SimOptions & { stateDir: string }): Promise<SimResult> {
  const { stateDir } = options;
  const sim = new Scheduler(seed);
  const trace: string[] = [];
  const log = (line: string) => {
    trace.push(`${String(sim.now).padStart(5)} ${line}`);
  };
  const faults: Faults = { createFails: sim.chance(0.5) ? 0.05 : 0, startFails: sim.chance(0.5) ? 0.05 : 0, exitsAtOnce: 0.05 };
  const engine = new FakeEngine(sim, faults, log);
  engine.holdMs = () => sim.int(5, 400);
  const nodeGpus = sim.int(2, 8);
  // Some seeds run with per-user limits, so refusals for them mix with everything else.
  const graceMs = sim.int(1, 4) * 100;
  const config: Partial<ExecutorConfig> = {
    queueGrace: graceMs / 1000,
    ...(sim.chance(0.3) ? { maxQueuedPerUser: sim.int(1, 4), maxGpusPerUser: sim.int(1, nodeGpus) } : {}),
    ...(sim.chance(0.5) ? { maxSessionsPerUser: sim.int(1, 4), maxMemoryPerUser: { bytes: sim.int(1, 4) * 8 * 1024 ** 3 } } : {}),
  };
  const memoryOf = (m: ExecutorConfig["maxMemoryPerUser"] | undefined) => (m && "bytes" in m ? m.bytes : Infinity);
  const caps = { maxSessions: config.maxSessionsPerUser ?? 16, maxMemory: memoryOf(config.maxMemoryPerUser) };
  const gpus = new FakeGpus(nodeGpus);
  const stats = { creates: 0, sessions: 0, crashes: 0, steps: 0, returns: 0, kept: 0 };
  let saved: Place[] = [];
  const disk: PlaceStore = { load: () => saved, save: (places) => void (saved = places) };
  const ticketKey = new Uint8Array(32).map(() => sim.int(0, 255));
  const taken = new Set<string>();
  let order: OrderCheck | null = null;
  let owner = 1;
  let manager: SimManager | null = null;
  let reconciledOnce = false;
  const requests: ClientRequest[] = [];
  const end = 2500;

  // A violation seen inside the manager's own call stack is kept and reported by the main loop.
  let found: string | null = null;
  const fail = (message: string) => {
    found ??= message;
  };
  const violation = (message: string): never => {
    fail(message);
    throw new Violation(message);
  };

  function boot(): void {
    const me = owner;
    reconciledOnce = false;
    const m = factory({ stateDir, config, sim, engine, gpus, owner: me, log: (l) => log(`[exec ${me}] ${l}`), disk, ticketKey });
    // The order the last incarnation left: the places it was waiting on (restored ones not taken back included).
    const before = order?.queue.slice() ?? [];
    const check = new OrderCheck(fail, taken);
    order = check;
    m.onClaim = (event, effects) => check.see(event, effects);
    m.restoreQueue();
    const restored = check.restored ?? [];
    const kept = restored.filter((id) => before.includes(id));
    if (kept.join() !== before.join()) fail(`restored places ${restored.join(",")} lose the order ${before.join(",")} of the queue before the restart`);
    manager = m;
    const tick = () => {
      if (owner !== me || sim.now > end + 5000) return;
      const started = sim.now;
      void m
        .reconcile()
        .then(() => {
          if (owner !== me) return;
          reconciledOnce = true;
          // Leftovers can only be removed while Docker answers.
          const dockerAnswered = engine.downUntil <= started || engine.downFrom >= sim.now;
          try {
            if (dockerAnswered) checkAfterReconcile(m);
          } catch {}
        })
        .catch((err) => log(`[exec ${me}] reconcile failed: ${(err as Error).message}`))
        .finally(() => sim.after(sim.int(50, 150), tick, me));
    };
    tick();
  }

  /** No GPU in two running containers; each running container's GPUs are claimed by its own session. */
  function checkAlways(): void {
    const holder = new Map<string, string>();
    for (const c of engine.running()) {
      for (const uuid of c.gpus) {
        const other = holder.get(uuid);
        if (other) violation(`GPU ${uuid} held by two running sessions: ${other} and ${c.sessionId}`);
        holder.set(uuid, c.sessionId);
      }
    }
    const over = overCaps(engine.running(), caps);
    if (over) violation(over);
    if (!manager || options.observableOnly) return;
    const overlap = manager.holdsOverlap?.() ?? null;
    if (overlap) violation(overlap);
    const twice = manager.shownTwice?.("report") ?? null;
    if (twice) violation(twice);
    if (!reconciledOnce) return;
    const claims = manager.claims();
    for (const c of engine.running()) {
      for (const uuid of c.gpus) {
        const claimedBy = claims.get(uuid);
        if (claimedBy !== c.sessionId) violation(`GPU ${uuid} runs in session ${c.sessionId} but the ledger says ${claimedBy ?? "free"}`);
      }
    }
  }

  /** After a reconcile: every claim belongs to a session that still exists; every container is tracked or gone. */
  function checkAfterReconcile(m: SimManager): void {
    if (options.observableOnly) return;
    const twice = m.shownTwice?.("list") ?? null;
    if (twice) violation(twice);
    const tracked = m.tracked();
    for (const [uuid, sessionId] of m.claims()) {
      const exists = engine.existing().some((c) => c.sessionId === sessionId);
      if (!exists && !tracked.has(sessionId)) violation(`GPU ${uuid} still claimed by ended session ${sessionId} after a reconcile`);
    }
    for (const c of engine.existing()) {
      if (!tracked.has(c.sessionId) && c.state !== "exited") violation(`container of session ${c.sessionId} (${c.state}) neither tracked nor removed after a reconcile`);
    }
  }

  function create(n: number): void {
    if (!manager) return;
    const roll = sim.random();
    const count = roll < 0.1 ? 0 : roll < 0.15 ? nodeGpus + 1 : sim.int(1, Math.min(3, nodeGpus));
    const noWait = sim.chance(0.15);
    const body: CreateSessionRequest = {
      gpus: count,
      image: "img",
      name: null,
      cpus: null,
      memory: [null, "4g", "8g", "16g"][sim.int(0, 3)]!,
      sharedMemory: null,
      ports: [],
      env: [],
      mounts: [],
      workdir: null,
      command: ["true"],
      cwd: "/tmp",
      tty: false,
      term: null,
      noWait,
      detach: true,
    };
    stats.creates++;
    submit({ n, uid: 1000 + sim.int(1, 3), count, noWait, body, kind: "new", ticket: null });
  }

  /** Sends a request (new, or again with a ticket); while no executor runs, tries again shortly, as the CLI does. */
  function submit(from: Pick<ClientRequest, "n" | "uid" | "count" | "noWait" | "body" | "kind" | "ticket">): void {
    if (!manager) return void sim.after(sim.int(5, 20), () => submit(from));
    const m = manager;
    const { n, count } = from;
    const req: ClientRequest = { ...from, kept: null, queuedAt: null, sessionId: null, settled: "pending", abort: new AbortController(), owner };
    requests.push(req);
    const body = from.ticket ? { ...from.body, ticket: from.ticket } : from.body;
    log(`client ${n}: ${req.kind === "new" ? "create" : `${req.kind} with ticket:`} --gpus ${count}${req.noWait ? " --no-wait" : ""} as ${req.uid}`);
    const emit = (e: CreateEvent) => {
      if (e.type === "ticket") req.ticket = e.ticket;
      if (e.type === "returned") {
        req.kept = e.kept;
        if (e.kept) stats.kept++;
        log(`client ${n}: ${e.kept ? "has its place back" : "lost its place"}`);
      }
      if (e.type === "queued") req.sessionId = e.sessionId;
      if (e.type === "queued" && req.queuedAt === null) {
        if (count > nodeGpus) fail(`request ${n} for ${count} GPUs on a ${nodeGpus}-GPU node was queued`);
        req.queuedAt = sim.now + n / 1000;
        log(`client ${n}: queued at position ${e.position}`);
      }
    };
    if (sim.chance(0.15)) {
      sim.after(sim.int(1, 300), () => {
        if (req.settled === "pending") {
          log(`client ${n}: hangs up`);
          req.abort.abort();
        }
      });
    }
    m.create(req.uid, body, emit, req.abort.signal).then(
      (info) => {
        req.sessionId = info.id;
        req.settled = "created";
        stats.sessions++;
        log(`client ${n}: session ${info.id} got ${info.gpus.join(",") || "no GPUs"}`);
        if (count > nodeGpus) fail(`request ${n} for ${count} GPUs on a ${nodeGpus}-GPU node got a session`);
        if (req.kind === "thief") fail(`client ${n} got a session with another user's ticket`);
      },
      (err: Error) => {
        req.settled = "failed";
        req.error = err.message;
        log(`client ${n}: failed: ${err.message}`);
        // Turned away by an executor that is stopping: sent again (a thief tries again too, and must then be refused).
        if (err instanceof RestartingError) {
          if (req.kind === "thief") sim.after(sim.int(5, 50), () => submit(from));
          else if (req.owner === owner) comeBack(req);
        } else if (req.kind === "thief" && !/another user/.test(err.message)) fail(`client ${n}'s stolen ticket was not refused as another user's: ${err.message}`);
      },
    );
  }

  /**
   * A caller whose executor went away: most come back with their ticket (some after the grace period), some never;
   * now and then one sends its ticket twice, or another user tries it.
   */
  function comeBack(r: ClientRequest): void {
    if (r.kind === "thief" || sim.chance(0.2)) return;
    // Without a ticket (turned away before it got one) it is simply sent again.
    const again = { n: r.n, uid: r.uid, count: r.count, noWait: r.noWait, body: r.body, kind: r.ticket ? ("return" as const) : ("new" as const), ticket: r.ticket };
    const delay = () => sim.int(1, 60 + graceMs * 1.5);
    stats.returns++;
    sim.after(delay(), () => submit(again));
    if (!r.ticket) return;
    if (sim.chance(0.1)) sim.after(delay(), () => submit(again));
    if (sim.chance(0.1)) sim.after(delay(), () => submit({ ...again, uid: 1000 + ((r.uid - 1000) % 3) + 1, kind: "thief" }));
  }

  function stopOne(): void {
    if (!manager) return;
    const candidates = requests.filter((r) => r.sessionId && r.settled !== "failed" && r.owner === owner);
    if (candidates.length === 0) return;
    const r = candidates[sim.int(0, candidates.length - 1)]!;
    log(`client: stop ${r.sessionId}`);
    manager.stop(r.uid, r.sessionId!, 1).then(
      () => log(`client: stopped ${r.sessionId}`),
      (err: Error) => log(`client: stop ${r.sessionId}: ${err.message}`),
    );
  }

  function crash(): void {
    if (!manager) return;
    stats.crashes++;
    log(`executor ${owner} crashes (kill -9)`);
    exit();
  }

  /** What SIGTERM does: the executor drains, then exits. */
  function restart(): void {
    if (!manager) return;
    const m = manager;
    const me = owner;
    stats.crashes++;
    log(`executor ${me} stops gracefully`);
    void m.drain().then(() => {
      if (owner !== me) return;
      log(`executor ${me} drained`);
      exit();
    });
  }

  function exit(): void {
    sim.kill(owner);
    for (const r of requests) {
      if (r.owner !== owner || r.settled !== "pending") continue;
      r.settled = "lost";
      comeBack(r);
    }
    owner++;
    manager = null;
    sim.after(sim.int(1, 50), () => {
      log(`executor ${owner} starts`);
      boot();
    });
  }

  // The workload, laid out on the virtual timeline.
  // Half the seeds are a burst: many requests at once, sessions that end together (the pump's worst case).
  const burst = sim.chance(0.5);
  if (burst) engine.holdMs = () => sim.int(5, 60);
  const creates = sim.int(10, 40);
  for (let i = 0; i < creates; i++) sim.at(burst ? sim.int(0, 50) : sim.int(0, end), () => create(i));
  for (let i = sim.int(0, 8); i > 0; i--) sim.at(sim.int(0, end), stopOne);
  const crashes = sim.chance(0.3) ? sim.int(1, 2) : 0;
  if (options.crashes !== false) for (let i = crashes; i > 0; i--) sim.at(sim.int(100, end), sim.chance(0.3) ? restart : crash);
  if (options.dockerDown !== false && sim.chance(0.2)) {
    const from = sim.int(0, end);
    sim.at(from, () => {
      engine.downFrom = from;
      engine.downUntil = from + sim.int(20, 300);
      log(`Docker down until ${engine.downUntil}`);
    });
  }
  if (options.removeBehindBack !== false) {
    for (let i = sim.chance(0.2) ? sim.int(1, 2) : 0; i > 0; i--) {
      sim.at(sim.int(0, end), () => {
        const victim = engine.removeBehindBack();
        if (victim) log(`docker rm -f ${victim.id} (session ${victim.sessionId}) from outside`);
      });
    }
  }
  for (let i = sim.chance(0.3) ? sim.int(1, 2) : 0; i > 0; i--) {
    sim.at(sim.int(0, end), () => {
      const gpu = gpus.gpus[sim.int(0, gpus.gpus.length - 1)]!;
      if (sim.chance(0.5)) {
        gpu.healthy = false;
        gpu.error = "GPU is lost";
      } else gpu.processes = [{ pid: 4_000_000 + sim.int(0, 1000), name: "foreign", usedMemoryMiB: 10 }];
      log(`GPU ${gpu.uuid} becomes ${gpu.healthy ? "busy with a foreign process" : "unhealthy"}`);
      sim.after(sim.int(50, 800), () => {
        gpu.healthy = true;
        gpu.error = null;
        gpu.processes = [];
        log(`GPU ${gpu.uuid} is usable again`);
      });
    });
  }
  boot();

  try {
    while (await sim.step()) {
      stats.steps++;
      if (found) violation(found);
      checkAlways();
      if (stats.steps > 200_000) violation("the simulation does not settle (a loop?)");
    }
    // Idle: every container ran its course, every request settled.
    const stuck = requests.filter((r) => r.settled === "pending");
    if (stuck.length > 0) violation(`requests never answered: ${stuck.map((r) => r.n).join(", ")}`);
    const m = manager as SimManager | null;
    if (m) {
      if (m.claims().size > 0) violation(`GPUs still claimed at the end: ${[...m.claims()].map(([g, s]) => `${g}=${s}`).join(", ")}`);
    }
    const left = engine.existing();
    if (left.length > 0) violation(`containers left at the end: ${left.map((c) => `${c.id}(${c.sessionId}, ${c.state})`).join(", ")}`);
    return { seed, violation: null, trace, stats };
  } catch (err) {
    if (!(err instanceof Violation)) throw err;
    log(`VIOLATION: ${err.message}`);
    return { seed, violation: err.message, trace, stats };
  }
}
