import type { ExecutorConfig } from "../../config/executor.ts";
import type { Inventory } from "../../gpu/types.ts";
import type { SessionEngine } from "../../runtime/docker/engine.ts";
import type { Clock } from "../../util/clock.ts";
import type { Trace } from "../../util/trace.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo, SessionUse } from "../api-types.ts";
import type { ClaimEffect, ClaimEvent } from "../claims/claims.ts";
import type { ClaimDriver } from "../claims/driver.ts";
import type { PlaceStore } from "../claims/queue-file.ts";
import type { TicketBook } from "../claims/tickets.ts";
import type { NetnsPool } from "../network/netns-pool.ts";
import type { SessionHistory } from "./history.ts";
import type { UserDirectory } from "./users.ts";

/**
 * The session lifecycle's records, what it is built from, and the narrow views the other rooms get of it (kept apart
 * from the manager, so that nothing the manager uses has to import it).
 */
export type ExitReason = "exited" | "stopped by user" | "stopped by admin" | "idle" | "idle GPUs" | "time limit" | "executor lost the container" | `slurm: ${string}`;

/** A session the executor is watching: its container exists (created or running). */
export interface LiveSession {
  info: SessionInfo;
  containerId: string;
  exited: Promise<{ code: number; reason: ExitReason }>;
  stopReason: ExitReason | null;
  /** The ports the request asked to publish; start fails when the container did not get them. */
  requestedPorts: number[];
  /** `--time`: seconds it may run from its start (label `beaker.time-limit`), or null; the node's maxDuration applies too. */
  timeLimit: number | null;
  /** Set once a terminal attached, or on detach: the container may start. */
  startGate: { open(): void; opened: Promise<void> };
  /** Terminals (attach and exec) open now, and when the last one closed (ms), for idleTimeout. */
  terminals: number;
  lastAttached: number;
  /** Undoes the staging binds of the user's --mount sources (once started, or ended). */
  releaseMounts: () => Promise<void>;
  /** Checks (and makes, as the user) the targets and working directory inside other bind mounts again (mountpoints.ts). */
  checkNestedPaths?: () => Promise<void>;
  /** Where its time went, from the create request to the container's removal (empty for an adopted session). */
  trace: Trace;
}

/** A request not yet a container: waiting in the queue, or pulling and creating. */
export interface PendingSession {
  info: SessionInfo;
  abort: AbortController;
}

export interface SessionDeps {
  config: ExecutorConfig;
  engine: SessionEngine;
  inventory: { get(): Promise<Inventory> };
  users: Pick<UserDirectory, "lookup" | "groupName">;
  history: Pick<SessionHistory, "add" | "all">;
  log: (line: string) => void;
  clock: Clock;
  /** Called when a session starts or ends (the server link reports at once). */
  onChange?: () => void;
  /** Sees every event fed to the claim state machine and what it decided (the simulation checks FIFO order). */
  onClaim?: (event: ClaimEvent, effects: readonly ClaimEffect[]) => void;
  /** This node: the beaker binary sessions get, its locked-memory cap, CPUs and memory (bounds for requests). */
  node: { beakerBinary: string | null; memlock: number; cpus: number; memoryBytes: number };
  /** Signs and checks queue tickets. */
  tickets: TicketBook;
  /** Warm network namespaces for sessions without ports (netns-pool.ts); absent: each session makes its own. */
  netns?: Pick<NetnsPool, "take" | "settle" | "refill" | "ended">;
  /** Where the queue's order is written down to outlive a restart. */
  places: PlaceStore;
  /** With `scheduler: slurm`: sessions run in their callers' Slurm jobs, and get those jobs' GPUs. */
  slurm?: SlurmScheduler;
}

/** The sessions on this node as queries read them: running or created, pending, and the ended ones remembered. */
export interface SessionBook {
  readonly sessions: ReadonlyMap<string, LiveSession>;
  readonly pending: ReadonlyMap<string, PendingSession>;
  readonly history: Pick<SessionHistory, "all">;
  /** A session's GPU-use fields (the GPU-use monitor's), or null where the node runs without one. */
  useOf(info: SessionInfo): SessionUse | null;
}

/** What the lifecycle asks of the GPU-use monitor (gpu/gpu-use.ts). */
export interface UseReporter {
  fields(info: SessionInfo): SessionUse;
  /** When a waiting request's GPUs are free at the latest (ISO), or null. */
  freeBy(sessionId: string): string | null;
}

/**
 * The lifecycle as the rooms above it (GPU use, Slurm) see it: the records, the claims, and what the node gives. They
 * may stop a session (sessions/stop.ts); they cannot create, adopt or track one.
 */
export interface SessionHost extends SessionBook {
  readonly deps: Pick<SessionDeps, "config" | "engine" | "inventory" | "users" | "log" | "clock">;
  readonly claims: ClaimDriver;
}

export interface SlurmClaimInput {
  sessionId: string;
  uid: number;
  /** GPUs asked for (the node's default already applied). */
  count: number;
  req: CreateSessionRequest;
  /** The request's record: it shows the job (and "queued") while Slurm makes it wait. */
  info: SessionInfo;
  emit: (e: CreateEvent) => void;
  signal: AbortSignal;
}

/** With `scheduler: slurm`: the Slurm room (slurm/slurm.ts) as the lifecycle calls it. */
export interface SlurmScheduler {
  /** The GPUs of the session's job on this node, held in the claim state machine. */
  claim(host: SessionHost, input: SlurmClaimInput): Promise<string[]>;
  /** A session's job to cancel by ID (its session ended, or never started). */
  release(sessionId: string, jobId: string, uid: number): void;
  /** Pairs jobs with containers again now. */
  sync(host: SessionHost): Promise<void>;
}

/** The gate an interactive session waits at until its terminal attaches (or it is detached). */
export function gate(): LiveSession["startGate"] {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}
