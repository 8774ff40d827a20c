/** What the CLI and the executor say to each other over the unix socket. */
import type { TracePoint } from "../util/trace.ts";

export interface CreateSessionRequest {
  /** null: 1 on a node with GPUs, 0 on one without. */
  gpus: number | null;
  image: string | null;
  name: string | null;
  cpus: number | null;
  memory: string | null;
  sharedMemory: string | null;
  ports: number[];
  env: string[];
  mounts: string[];
  workdir: string | null;
  /** Empty: the image's shell, interactively. */
  command: string[];
  /** The caller's working directory; the session starts there when it is inside the home. */
  cwd: string;
  tty: boolean;
  term: string | null;
  noWait: boolean;
  /** Start without waiting for a terminal to attach. */
  detach: boolean;
  /**
   * The ticket of this same request from before an executor restart: it takes its place in the queue back. Left out
   * when there is none (an executor from before tickets refuses fields it does not know).
   */
  ticket?: string;
  /** On a node whose scheduler is Slurm: the job to run in, or what to ask Slurm for (else the node's defaults). */
  slurm?: SlurmRequest | null;
  /**
   * `--time`: seconds the session may run (at most the node's maxDuration); null = the node's limit, if any. Where
   * the executor asks Slurm for the job, it is the job's time limit instead (Slurm ends it).
   */
  timeLimit?: number | null;
}

export interface SlurmRequest {
  /** A running job of the caller's on this node (`--slurm-job`): the session gets its GPUs. */
  job: string | null;
  partition: string | null;
  account: string | null;
  qos: string | null;
}

/** The Slurm job a session runs in (session JSON `slurmJob`). */
export interface SlurmJobRef {
  id: string;
  partition: string | null;
  /** When Slurm's time limit ends the job (ISO), or null for none. */
  endsAt: string | null;
}

export type SessionStatus = "queued" | "starting" | "running" | "stopping" | "exited";

export interface SessionInfo {
  id: string;
  name: string;
  node: string;
  user: string;
  /** The Beaker account that created it, on a node with a server; else null. */
  account: string | null;
  uid: number;
  gpus: string[];
  image: string;
  status: SessionStatus;
  tty: boolean;
  /** GPUs asked for; a queued session holds none yet. */
  requestedGpus: number;
  ports: string[];
  /** Bind mounts as SRC:DST or SRC:DST:ro. */
  mounts: string[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** 1-based place in this node's queue while queued, else null. */
  queuePosition: number | null;
  exitCode: number | null;
  /** Why it ended: exited, stopped by user, stopped by admin, idle, idle GPUs, time limit, executor lost the container, slurm: <why>. */
  reason: string | null;
  /** The Slurm job it runs in, on a node whose scheduler is Slurm; else null. */
  slurmJob: SlurmJobRef | null;
}

/** A GPU's utilization (percent) or memory in use (MiB): the last sample, and means over 5 minutes and an hour. */
export interface GpuUseFigures {
  uuid: string;
  last: number | null;
  mean5m: number | null;
  mean1h: number | null;
}

/**
 * What the executor knows of a session's GPU use and limits, on every session it answers with (empty or null for
 * one that is not running, has no GPUs, or has not been sampled yet).
 */
export interface SessionUse {
  /** Per GPU of the session, in the order of `gpus`. */
  gpuUtilization: GpuUseFigures[];
  gpuMemoryUsedMiB: Array<GpuUseFigures & { totalMiB: number | null }>;
  /** Since when every one of its GPUs has stayed under the idle threshold (ISO), or null. */
  idleSince: string | null;
  /** What the node does about its idleness: stop it, stop it only while a request waits, warn its owner; null: nothing. */
  idleAction: "stop" | "stop-when-queued" | "warn" | null;
  /** When it is stopped for idleness (from then on, with stop-when-queued) or its owner warned, if it stays idle. */
  idleStopsAt: string | null;
  /** `session keep --for`: not stopped for idleness before this (ISO). */
  keptUntil: string | null;
  /** When its time limit stops it (ISO), or null for none. */
  deadline: string | null;
}

/** A session as `list` and `describe` answer it: its record and its GPU use. */
export type SessionView = SessionInfo & SessionUse;

/** `describe`: the session plus what the node knows of its GPUs. */
export interface SessionDetails extends SessionView {
  devices: Array<{ uuid: string; index: number | null; name: string | null }>;
}

export type CreateEvent =
  /** First of all: what to show the executor after a restart to keep this request's place (replaces any earlier one). */
  | { type: "ticket"; sessionId: string; ticket: string }
  /** A request sent again with its ticket: whether it got its place back, or waits as a new request. */
  | { type: "returned"; kept: boolean }
  /** Waiting for GPUs: the request's session ID (stop it to leave the queue) and its place in the node's queue. */
  /** `freeBy`: when the GPUs it needs are certain to be free at the latest (ISO), or null when no bound is known. */
  | { type: "queued"; sessionId: string; position: number; gpus: number; free: number; freeBy?: string | null }
  /** Waiting in Slurm's queue: its job, Slurm's reason, and Slurm's start estimate when it has one (ISO). */
  | { type: "slurm"; sessionId: string; job: string; reason: string | null; startTime: string | null }
  | { type: "pulling"; image: string; status: string; current?: number; total?: number; layer?: string }
  /** `trace`: the executor's points for this request, when it asked for them (`x-beaker-trace: 1`). */
  | { type: "created"; session: SessionInfo; trace?: TracePoint[] }
  | { type: "error"; code: string; message: string };

/** Control messages on a terminal WebSocket (binary frames carry the bytes). */
export type ClientControl = { type: "resize"; cols: number; rows: number } | { type: "signal"; name: string } | { type: "stdin-eof" };
/** `trace`: the executor's points for the session so far, when the terminal asked for them (`x-beaker-trace: 1`). */
export type ServerControl =
  | { type: "started"; ports: string[]; trace?: TracePoint[] }
  /** A line for the person at the terminal: an idle or time-limit warning. */
  | { type: "notice"; message: string }
  | { type: "exit"; code: number; reason: string; message?: string; trace?: TracePoint[] }
  | { type: "error"; code: string; message: string };

/** On a non-TTY stream each binary frame starts with the stream it belongs to. */
export const streamTag = { stdout: 1, stderr: 2 } as const;
