import { randomBytes } from "node:crypto";
import type Dockerode from "dockerode";
import type { ExecutorConfig } from "../config/executor.ts";
import { BeakerError, ConflictError, SessionStartError } from "../errors.ts";
import { withClaims } from "../gpu/report.ts";
import { buildContainerSpec } from "../runtime/docker/spec.ts";
import { dockerMessage, type DockerEngine, type ManagedContainer } from "../runtime/docker/engine.ts";
import { missingPorts, missingPortsMessage, publishedPorts } from "../runtime/docker/ports.ts";
import type { CreateEvent, CreateSessionRequest, SessionDetails, SessionInfo } from "./api-types.ts";
import type { SessionHistory } from "./history.ts";
import { usableGpus, type InventoryCache } from "./inventory-cache.ts";
import { FairQueue, freeGpus, GpuLedger, planClaim } from "./ledger.ts";
import { resolveRef } from "./lookup.ts";
import { prepareSession } from "./prepare.ts";
import type { UserDirectory } from "./users.ts";

export type ExitReason = "exited" | "stopped by user" | "stopped by admin" | "idle" | "executor lost the container";

/** A session the executor is watching: its container exists (created or running). */
export interface LiveSession {
  info: SessionInfo;
  containerId: string;
  exited: Promise<{ code: number; reason: ExitReason }>;
  stopReason: ExitReason | null;
  /** The ports the request asked to publish; start fails when the container did not get them. */
  requestedPorts?: number[];
  /** Set once a terminal attached, or on detach: the container may start. */
  startGate: { open(): void; opened: Promise<void> };
  /** Terminals (attach and exec) open now, and when the last one closed (ms), for idleTimeout. */
  terminals: number;
  lastAttached: number;
  /** Setup still running while the caller attaches (the user's passwd entry); start waits for it. */
  prepared: Promise<void>;
}

/** A request not yet a container: waiting in the queue, or pulling and creating. */
interface PendingSession {
  info: SessionInfo;
  abort: AbortController;
}

/** What a session reference resolved to. */
type Resolved = { kind: "live"; session: LiveSession } | { kind: "pending"; pending: PendingSession } | { kind: "finished"; info: SessionInfo };

interface Deps {
  config: ExecutorConfig;
  engine: DockerEngine;
  inventory: InventoryCache;
  users: UserDirectory;
  history: SessionHistory;
  log: (line: string) => void;
  /** Called when a session starts or ends (the server link reports at once). */
  onChange?: () => void;
  beakerBinary: string | null;
  memlock: number;
}

function newSessionId(): string {
  return randomBytes(6).toString("hex");
}

function gate(): LiveSession["startGate"] {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** Sessions on this node: the queue, the GPU ledger, and each container from create to removal. */
export class SessionManager {
  readonly ledger = new GpuLedger();
  readonly queue = new FairQueue();
  readonly sessions = new Map<string, LiveSession>();
  readonly pending = new Map<string, PendingSession>();
  private reconciling: Promise<void> | null = null;

  constructor(private readonly deps: Deps) {}

  /** Rebuilds the ledger from Docker's labels and adopts running sessions; run before any claim. */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce().finally(() => (this.reconciling = null));
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    // Sessions tracked before the listing; one created while it runs is not in it, and is not lost.
    const known = new Set(this.sessions.keys());
    const containers = await this.deps.engine.listManaged(this.deps.config.nodeName);
    const live = containers.filter((c) => c.state === "running" || c.state === "paused" || c.state === "restarting");
    for (const c of containers) {
      // A container still being set up (its request is pending) is not a leftover.
      if (this.sessions.has(c.sessionId) || this.pending.has(c.sessionId) || this.ledger.isPending(c.sessionId)) continue;
      if (live.includes(c)) this.adopt(c);
      else {
        // A container left from before (created but never started, or exited while nobody watched): clean it up.
        this.deps.log(`removing leftover session container ${c.sessionId} (${c.state})`);
        if (c.state === "exited" && c.sessionId) {
          const info = this.infoFrom(c);
          this.deps.history.add({ ...info, status: "exited", exitCode: c.exitCode, reason: "exited", finishedAt: new Date().toISOString() });
        }
        await this.removeContainer(c.id);
      }
    }
    const lost = [...known].filter((id) => this.sessions.has(id) && !containers.some((c) => c.sessionId === id));
    for (const id of lost) this.sessions.get(id)!.stopReason ??= "executor lost the container";
    // Every tracked session's claim, from the labels its container was created with (adopted ones included).
    this.ledger.rebuild(
      [...this.sessions.values()].filter((s) => !lost.includes(s.info.id)).map((s) => ({ sessionId: s.info.id, gpus: s.info.gpus })),
    );
    await this.pump();
  }

  /** A session's record rebuilt from its container's labels (after an executor restart). */
  private infoFrom(c: ManagedContainer): SessionInfo {
    const gpus = gpusOf(c.labels);
    return {
      id: c.sessionId,
      name: c.labels["beaker.name"] ?? c.sessionId,
      node: c.labels["beaker.node"] ?? this.deps.config.nodeName,
      user: c.labels["beaker.user"] ?? "?",
      uid: Number(c.labels["beaker.uid"] ?? -1),
      gpus,
      requestedGpus: gpus.length,
      image: c.image,
      status: "running",
      tty: c.labels["beaker.tty"] === "true",
      account: c.labels["beaker.account"] ?? null,
      ports: c.ports,
      mounts: c.mounts,
      createdAt: new Date(c.created * 1000).toISOString(),
      startedAt: new Date(c.created * 1000).toISOString(),
      finishedAt: null,
      queuePosition: null,
      exitCode: null,
      reason: null,
    };
  }

  private adopt(c: ManagedContainer): void {
    const info = this.infoFrom(c);
    const startGate = gate();
    startGate.open();
    this.deps.log(`adopted running session ${info.id} of ${info.user} (GPUs: ${info.gpus.join(",") || "none"})`);
    this.track(info, c.id, startGate);
  }

  /** Watches a container until it exits, then removes it and frees its GPUs. */
  private track(info: SessionInfo, containerId: string, startGate: LiveSession["startGate"]): LiveSession {
    const session: LiveSession = {
      info,
      containerId,
      stopReason: null,
      startGate,
      exited: null as never,
      terminals: 0,
      lastAttached: Date.now(),
      prepared: Promise.resolve(),
    };
    session.exited = (async () => {
      const container = await this.deps.engine.container(containerId);
      let code = 255;
      try {
        await startGate.opened;
        code = ((await container.wait()) as { StatusCode: number }).StatusCode;
        // SIGKILL that nobody here sent: `docker rm -f` (or kill) from outside. If the container vanishes, say so.
        if (code === 137 && !session.stopReason && (await this.vanishes(containerId))) {
          this.deps.log(`session ${info.id}: its container was removed outside Beaker`);
          session.stopReason = "executor lost the container";
        }
      } catch (err) {
        this.deps.log(`lost track of session ${info.id}: ${dockerMessage(err)}`);
        session.stopReason ??= "executor lost the container";
      }
      const reason = session.stopReason ?? "exited";
      info.status = "exited";
      info.exitCode = code;
      info.reason = reason;
      info.finishedAt = new Date().toISOString();
      this.deps.log(`session ${info.id} of ${info.user} ended: ${reason}, exit code ${code}`);
      await this.removeContainer(containerId);
      this.sessions.delete(info.id);
      this.deps.history.add(info);
      this.ledger.release(info.id);
      await this.pump();
      this.deps.onChange?.();
      return { code, reason };
    })();
    this.sessions.set(info.id, session);
    return session;
  }

  /** Whether a stopped container disappears within a moment (removed by someone else). */
  private async vanishes(id: string): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      try {
        await (await this.deps.engine.container(id)).inspect();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return true;
      }
      await Bun.sleep(100);
    }
    return false;
  }

  private async removeContainer(id: string): Promise<void> {
    try {
      await (await this.deps.engine.container(id)).remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) this.deps.log(`cannot remove container ${id.slice(0, 12)}: ${dockerMessage(err)}`);
    }
  }

  /** Grants queued requests in order while GPUs are free. */
  async pump(): Promise<void> {
    if (this.queue.length === 0) return;
    const free = await this.freeNow();
    this.queue.pump(
      (count) => {
        const gpus = planClaim(free, count);
        if (gpus) free.splice(0, count);
        return gpus;
      },
      () => free.length,
    );
  }

  private async freeNow(): Promise<string[]> {
    const inventory = await this.deps.inventory.get();
    const { usable } = usableGpus(inventory, [...this.sessions.values()].map((s) => s.containerId));
    return freeGpus(usable, this.ledger.claims());
  }

  /** The GPU report with claims, for `beaker node gpus`. */
  async gpuReport() {
    const inventory = await this.deps.inventory.get();
    const { unavailable } = usableGpus(inventory, [...this.sessions.values()].map((s) => s.containerId));
    return { inventory, gpus: withClaims(inventory, this.ledger.claims()), unavailable };
  }

  /** Waits in the queue (when it must) and claims GPUs for a new session. */
  private async claim(sessionId: string, count: number, req: CreateSessionRequest, emit: (e: CreateEvent) => void, signal: AbortSignal): Promise<string[]> {
    const inventory = await this.deps.inventory.get();
    if (inventory.error && count > 0) throw new SessionStartError(`cannot hand out GPUs: ${inventory.error}`);
    const { usable } = usableGpus(inventory, [...this.sessions.values()].map((s) => s.containerId));
    if (count > usable.length) {
      const total = inventory.gpus.length;
      throw new ConflictError(
        `asked for ${count} GPU${count === 1 ? "" : "s"}, but this node has ${total}${usable.length < total ? ` (${usable.length} usable)` : ""}`,
      );
    }
    if (count === 0) return [];
    const free = freeGpus(usable, this.ledger.claims());
    const now = this.queue.length === 0 ? planClaim(free, count) : null;
    if (now) {
      this.ledger.reserve(sessionId, now);
      return now;
    }
    if (req.noWait) {
      throw new ConflictError(`not enough free GPUs: ${free.length} free, ${count} asked, ${this.queue.length} request(s) waiting`);
    }
    return new Promise<string[]>((resolve, reject) => {
      const onAbort = () => {
        if (this.queue.remove(sessionId)) {
          this.deps.log(`session request ${sessionId} left the queue`);
          reject(signal.reason instanceof BeakerError ? signal.reason : new ConflictError("left the queue"));
          void this.pump();
        }
      };
      signal.addEventListener("abort", onAbort, { once: true });
      let lastPosition = 0;
      this.queue.enqueue({
        sessionId,
        gpus: count,
        grant: (gpus) => {
          signal.removeEventListener("abort", onAbort);
          this.ledger.reserve(sessionId, gpus);
          resolve(gpus);
        },
        notify: (position, freeCount) => {
          const pending = this.pending.get(sessionId);
          if (pending) pending.info.queuePosition = position;
          if (position !== lastPosition) emit({ type: "queued", position, gpus: count, free: freeCount });
          lastPosition = position;
        },
      });
      lastPosition = this.queue.position(sessionId);
      const pending = this.pending.get(sessionId);
      if (pending) Object.assign(pending.info, { status: "queued", queuePosition: lastPosition });
      emit({ type: "queued", position: lastPosition, gpus: count, free: free.length });
    });
  }

  /** Creates a session: claim, pull, create, inject the user, and (detached) start. Rolls back on any failure. */
  /** `account`: the caller's Beaker account, when the node has a server (kept in the `beaker.account` label). */
  async create(uid: number, req: CreateSessionRequest, emit: (e: CreateEvent) => void, signal: AbortSignal, account: string | null = null): Promise<SessionInfo> {
    const { config, engine, users } = this.deps;
    await this.reconciling;
    const nameTaken = (owner: number, name: string) => [...this.sessions.values(), ...this.pending.values()].some((s) => s.info.uid === owner && s.info.name === name);
    const plan = await prepareSession(config, { beakerBinary: this.deps.beakerBinary, memlock: this.deps.memlock, nameTaken }, await users.lookup(uid), req);
    const { user } = plan;
    const sessionId = newSessionId();
    const inventory = await this.deps.inventory.get();
    const count = req.gpus ?? (inventory.gpus.length > 0 ? 1 : 0);
    const image = req.image ?? config.defaultImage;
    // The image is looked up (and pulled) while the request waits for GPUs, not after.
    const name = req.name ?? `${user.name}-${sessionId.slice(0, 6)}`;
    const abort = new AbortController();
    const onCallerGone = () => abort.abort(signal.reason);
    signal.addEventListener("abort", onCallerGone, { once: true });
    const info: SessionInfo = {
      id: sessionId,
      name,
      node: config.nodeName,
      user: user.name,
      account,
      uid,
      gpus: [],
      requestedGpus: count,
      image,
      status: "starting",
      tty: req.tty,
      ports: [],
      mounts: [],
      createdAt: new Date().toISOString(),
      startedAt: null,
      finishedAt: null,
      queuePosition: null,
      exitCode: null,
      reason: null,
    };
    this.pending.set(sessionId, { info, abort });
    let container: Dockerode.Container | null = null;
    try {
      const imageReady = engine.ensureImage(image, (p) => emit({ type: "pulling", image, ...p }));
      imageReady.catch(() => {});
      info.gpus = await this.claim(sessionId, count, req, emit, abort.signal);
      Object.assign(info, { status: "starting", queuePosition: null });
      const gpus = info.gpus;
      if (abort.signal.aborted) throw abort.signal.reason instanceof BeakerError ? abort.signal.reason : new ConflictError("the caller went away");
      const imageId = await imageReady;
      const spec = buildContainerSpec({ ...plan, sessionId, name, node: config.nodeName, image, gpus, tty: req.tty, term: req.term });
      (spec.Labels as Record<string, string>)["beaker.tty"] = String(req.tty);
      if (account) (spec.Labels as Record<string, string>)["beaker.account"] = account;
      info.mounts = [...((spec.HostConfig as { Binds?: string[] }).Binds ?? [])];
      container = await engine.create(spec);
      const groups = await Promise.all(
        [user.gid, ...user.groups].filter((g, i, all) => all.indexOf(g) === i).map(async (gid) => ({ gid, name: (await users.groupName(gid)) ?? `g${gid}` })),
      );
      if (req.command.length === 0 && !(await engine.hasShell(container, imageId))) {
        throw new SessionStartError(`image ${image} has no shell (/bin/sh); give a command: beaker session create --image ${image} -- CMD`);
      }
      // Writing the user into /etc/passwd runs while the caller connects its terminal; start waits for it.
      const prepared = engine.injectUser(container, imageId, user, groups).catch((err) => {
        throw new SessionStartError(`cannot add you to the image's /etc/passwd: ${dockerMessage(err)}`);
      });
      prepared.catch(() => {});
      this.ledger.confirm(sessionId, gpus);
      const startGate = gate();
      const session = this.track(info, container.id, startGate);
      session.requestedPorts = req.ports;
      session.prepared = prepared;
      this.deps.log(`created session ${sessionId} for ${user.name} (GPUs: ${gpus.join(",") || "none"}, image ${image})`);
      if (req.detach) await this.start(sessionId);
      else setTimeout(() => void this.start(sessionId).catch(() => {}), 30_000).unref?.();
      return info;
    } catch (err) {
      if (container && !this.sessions.has(sessionId)) await this.removeContainer(container.id);
      this.ledger.release(sessionId);
      await this.pump();
      throw err;
    } finally {
      this.pending.delete(sessionId);
      signal.removeEventListener("abort", onCallerGone);
    }
  }

  /** Starts a created session (once); on failure the container is removed and the GPUs are freed. */
  async start(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session || session.info.status !== "starting") return;
    session.info.status = "running";
    const container = await this.deps.engine.container(session.containerId);
    try {
      await session.prepared;
      await container.start();
      const requestedPorts = session.requestedPorts ?? [];
      if (requestedPorts.length > 0) {
        const inspect = await container.inspect();
        const { Ports: ports, Networks: networks } = inspect.NetworkSettings;
        session.info.ports = publishedPorts(ports);
        // A port asked for and not had is a failed start, never silence.
        const missing = missingPorts(requestedPorts, { running: inspect.State.Running, ports, networks });
        if (missing) throw new SessionStartError(missingPortsMessage(missing));
      }
      session.info.startedAt = new Date().toISOString();
      this.deps.onChange?.();
    } catch (err) {
      session.stopReason = "exited";
      session.startGate.open();
      await this.removeContainer(session.containerId);
      if (err instanceof SessionStartError) throw err;
      throw new SessionStartError(`the session's container did not start: ${dockerMessage(err)}`);
    } finally {
      session.startGate.open();
    }
  }

  /**
   * Resolves an ID, a unique ID prefix, or a name to a session: running, waiting, or finished (newest first). Only the
   * caller's own unless root; someone else's is "not yours", not "not found".
   */
  resolve(uid: number, ref: string): Resolved {
    const candidates: Resolved[] = [
      ...[...this.sessions.values()].map((session) => ({ kind: "live" as const, session })),
      ...[...this.pending.values()].map((pending) => ({ kind: "pending" as const, pending })),
      ...this.deps.history
        .all()
        .toReversed()
        .map((info) => ({ kind: "finished" as const, info })),
    ];
    return resolveRef(candidates, (r) => (r.kind === "live" ? r.session.info : r.kind === "pending" ? r.pending.info : r.info), uid, ref);
  }

  /** A running (or starting) session to attach to, exec in or stop; a clear line for one that is not. */
  find(uid: number, ref: string): LiveSession {
    const found = this.resolve(uid, ref);
    if (found.kind === "live") return found.session;
    if (found.kind === "pending") throw new ConflictError(`session ${found.pending.info.name} has not started yet (${found.pending.info.status})`);
    const { name, reason, exitCode } = found.info;
    throw new ConflictError(`session ${name} has already ended (${reason ?? "exited"}${exitCode === null ? "" : `, exit code ${exitCode}`})`);
  }

  private snapshot(info: SessionInfo): SessionInfo {
    return { ...info, queuePosition: info.status === "queued" ? this.queue.position(info.id) || null : null };
  }

  /** Every session not yet ended, whoever it belongs to (for the server's picture of this node). */
  liveSessions(): SessionInfo[] {
    return [...this.sessions.values(), ...this.pending.values()].map((s) => this.snapshot(s.info));
  }

  /** The caller's sessions (root with `all`: everyone's); `all` adds the finished ones still remembered. */
  list(uid: number, all: boolean): SessionInfo[] {
    const mine = (info: SessionInfo) => (all && uid === 0) || info.uid === uid;
    const live = [...this.sessions.values(), ...this.pending.values()].map((s) => s.info);
    const finished = all ? this.deps.history.all().filter((f) => !live.some((l) => l.id === f.id)) : [];
    return [...live, ...finished].filter(mine).map((info) => this.snapshot(info)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Everything about one session, with its GPUs' indexes and names from the current inventory. */
  async describe(uid: number, ref: string): Promise<SessionDetails> {
    const found = this.resolve(uid, ref);
    const info = found.kind === "live" ? found.session.info : found.kind === "pending" ? found.pending.info : found.info;
    const inventory = await this.deps.inventory.get();
    const devices = info.gpus.map((uuid) => {
      const gpu = inventory.gpus.find((g) => g.uuid === uuid);
      return { uuid, index: gpu?.index ?? null, name: gpu?.name ?? null };
    });
    return { ...this.snapshot(info), devices };
  }

  /** A terminal opened or closed on a session (for idleTimeout). */
  terminalOpened(session: LiveSession): void {
    session.terminals++;
  }

  terminalClosed(session: LiveSession): void {
    session.terminals = Math.max(0, session.terminals - 1);
    session.lastAttached = Date.now();
  }

  /** Stops running sessions nobody has attached to for `idleTimeout` seconds (0: never). */
  async stopIdle(now = Date.now()): Promise<void> {
    const limit = this.deps.config.idleTimeout;
    if (limit <= 0) return;
    for (const session of this.sessions.values()) {
      if (session.info.status !== "running" || session.terminals > 0 || now - session.lastAttached < limit * 1000) continue;
      this.deps.log(`stopping session ${session.info.id} of ${session.info.user}: nobody attached for ${limit} s (idleTimeout)`);
      session.stopReason = "idle";
      void this.stopSession(session, 10).catch((err) => this.deps.log(`cannot stop idle session ${session.info.id}: ${dockerMessage(err)}`));
    }
  }

  async stop(uid: number, ref: string, timeoutSeconds: number): Promise<SessionInfo> {
    const found = this.resolve(uid, ref);
    const reason: ExitReason = uid === 0 && (found.kind === "finished" ? found.info : found.kind === "live" ? found.session.info : found.pending.info).uid !== 0 ? "stopped by admin" : "stopped by user";
    if (found.kind === "pending") {
      const { info, abort } = found.pending;
      abort.abort(new ConflictError(`session ${info.name} was ${reason} before it started`));
      this.deps.log(`session request ${info.id} of ${info.user} ${reason} before it started`);
      return { ...info, status: "exited", reason, finishedAt: new Date().toISOString(), queuePosition: null };
    }
    const session = this.find(uid, ref);
    session.stopReason ??= reason;
    return this.stopSession(session, timeoutSeconds);
  }

  private async stopSession(session: LiveSession, timeoutSeconds: number): Promise<SessionInfo> {
    session.info.status = "stopping";
    session.startGate.open();
    const container = await this.deps.engine.container(session.containerId);
    try {
      await container.stop({ t: timeoutSeconds });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== 304 && status !== 404) throw err;
    }
    await session.exited;
    return session.info;
  }
}

function gpusOf(labels: Record<string, string>): string[] {
  return (labels["beaker.gpus"] ?? "").split(",").filter(Boolean);
}
