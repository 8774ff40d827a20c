/** The claim state machine's state, the events it is fed and the effects it asks for (the machine: claims.ts). */

export interface Hold {
  uid: number;
  gpus: readonly string[];
  stage: "reserved" | "confirmed";
  /** The epoch at which the claim was made or confirmed. */
  epoch: number;
  /** Bytes of memory its container is allowed (0: not known, a container from before the `beaker.memory` label). */
  memory: number;
}

export interface Waiting {
  sessionId: string;
  uid: number;
  count: number;
  noWait: boolean;
  /** Bytes of memory the session will be allowed. */
  memory: number;
  /** The last position the caller was told (0: none yet). */
  told: number;
  /** A place kept from before a restart whose caller has not come back yet: it holds its position, never granted. */
  vacant?: boolean;
}

/** A request's place in the order, as written down to outlive a restart: granted but not yet a container, or waiting. */
export interface Place {
  sessionId: string;
  uid: number;
  count: number;
}

/**
 * What one user may have on this node at once (config `maxQueuedPerUser`, `maxGpusPerUser`, `maxSessionsPerUser`,
 * `maxMemoryPerUser` in bytes). Sessions and memory count every session held or waiting, 0-GPU ones included.
 */
export interface UserLimits {
  maxQueued: number;
  maxGpus: number;
  maxSessions: number;
  maxMemory: number;
}

export interface ClaimState {
  limits: UserLimits;
  /** False until the first listing: nothing is granted before the claims of running containers are known. */
  ready: boolean;
  /** Whether an inventory has been seen; requests wait for one. */
  inventoryKnown: boolean;
  /** GPUs on the node, and those that may be handed out (healthy, not busy with a foreign process), in index order. */
  total: number;
  usable: readonly string[];
  inventoryError: string | null;
  holds: ReadonlyMap<string, Hold>;
  /** Strict FIFO: only the head may be granted, so a small request never overtakes a large one. */
  queue: readonly Waiting[];
  /** Sessions whose container is gone, with the epoch of their end, until no listing in flight can predate it. */
  ended: ReadonlyMap<string, number>;
  /** What became of each restored place that is no longer vacant: taken back by its caller, or given up. */
  returns: ReadonlyMap<string, "taken" | "lapsed">;
  /** The executor is stopping: nothing more is granted, so the places written down stay as they are. */
  draining: boolean;
  epoch: number;
}

export type ClaimEvent =
  | { type: "inventory"; total: number; usable: string[]; error: string | null }
  /**
   * `place`: the session whose place (from before a restart) the caller's ticket names; the executor has checked the
   * ticket's signature, its user and that it was issued for this very request.
   */
  | { type: "request"; sessionId: string; uid: number; count: number; noWait: boolean; place?: string; memory?: number }
  /** At start-up, before any request: the places the previous run wrote down, in order. */
  | { type: "restore"; places: Place[] }
  /** The grace period after a restart is over: places nobody came back for are given up. */
  | { type: "grace-over" }
  /** The executor is about to stop (restart): grant nothing more, and turn new requests away to the next executor. */
  | { type: "drain" }
  /**
   * With `scheduler: slurm` Slurm decides: the session's job was given these GPUs. Held as a grant is (reserved, then
   * confirmed); refused when a GPU is held by another session already, so no GPU is ever held twice.
   */
  | { type: "assigned"; sessionId: string; uid: number; gpus: string[] }
  /** The request is withdrawn before its container exists: caller gone, stopped while queued, create failed. */
  | { type: "cancel"; sessionId: string }
  /** The session's container exists: its claim is in Docker's labels now. */
  | { type: "confirmed"; sessionId: string }
  /** The session's container is gone (or has exited and will be removed): its GPUs are free. */
  | { type: "ended"; sessionId: string }
  /**
   * Docker's managed containers (any state but removed), from a listing asked for when the state was at epoch
   * `since`; `running` for those whose processes run (running, paused, restarting).
   */
  | { type: "listing"; since: number; containers: Array<{ sessionId: string; uid: number; gpus: string[]; running: boolean; memory?: number }> };

export type ClaimEffect =
  /** The request's slot is taken (a reserved hold, 0-GPU sessions included): its container may be made. */
  | { type: "grant"; sessionId: string; gpus: string[] }
  | { type: "queued"; sessionId: string; position: number; free: number }
  | { type: "refuse"; sessionId: string; reason: "too-large" | "busy" | "no-gpus" | "limit" | "ticket" | "restarting"; message: string }
  /** A request that named a place: whether it got that place back, or joins the queue as a new request. */
  | { type: "returned"; sessionId: string; place: string; kept: boolean }
  /** A restored place whose caller did not come back in time (the id is the place's old session). */
  | { type: "lapsed"; sessionId: string }
  /** A running container this executor does not hold: watch it (after a restart, or one that outlived its end). */
  | { type: "adopt"; sessionId: string; gpus: string[] }
  /** A confirmed claim whose container a later listing no longer shows. */
  | { type: "lost"; sessionId: string };
