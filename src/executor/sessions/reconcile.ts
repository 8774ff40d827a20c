import type { ManagedContainer } from "../../runtime/docker/engine.ts";
import type { SessionInfo } from "../api-types.ts";
import type { ClaimDriver } from "../claims/driver.ts";
import { gate, type LiveSession, type SessionDeps } from "./types.ts";

/** What a reconcile reads and does: the lifecycle, less creating and querying. */
export interface ReconcileHost {
  readonly deps: Pick<SessionDeps, "engine" | "config" | "log" | "history" | "clock">;
  readonly sessions: ReadonlyMap<string, LiveSession>;
  readonly pending: ReadonlyMap<string, unknown>;
  readonly claims: Pick<ClaimDriver, "state" | "dispatch">;
  refreshInventory(): Promise<unknown>;
  track(info: SessionInfo, containerId: string, startGate: LiveSession["startGate"]): LiveSession;
  removeQuietly(id: string): Promise<void>;
}

const runningStates = new Set(["running", "paused", "restarting"]);

function gpusOf(labels: Record<string, string>): string[] {
  return (labels["beaker.gpus"] ?? "").split(",").filter(Boolean);
}

/** The memory a session's container is allowed (label `beaker.memory`); 0 for one made before that label. */
function memoryOf(labels: Record<string, string>): number {
  const bytes = Number(labels["beaker.memory"] ?? 0);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0;
}

/**
 * One reconcile: the inventory, then Docker's listing of this node's containers fed to the claim state machine, which
 * decides which claims stand and which running containers to adopt; leftovers (created but never started, or exited
 * while nobody watched) are removed.
 */
export async function reconcileOnce(m: ReconcileHost): Promise<void> {
  const { engine, config, log, history } = m.deps;
  try {
    await m.refreshInventory();
  } catch (err) {
    log(`GPU inventory: ${(err as Error).message}`);
  }
  const since = m.claims.state.epoch;
  const containers = await engine.listManaged(config.nodeName);
  const effects = m.claims.dispatch({
    type: "listing",
    since,
    containers: containers.map((c) => ({ sessionId: c.sessionId, uid: Number(c.labels["beaker.uid"] ?? -1), gpus: gpusOf(c.labels), running: runningStates.has(c.state), memory: memoryOf(c.labels) })),
  });
  for (const effect of effects) {
    const c = effect.type === "adopt" ? containers.find((x) => x.sessionId === effect.sessionId) : undefined;
    if (c && !m.sessions.has(c.sessionId)) adopt(m, c);
  }
  for (const c of containers) {
    // A container still being set up (its request is pending), watched, or just adopted is not a leftover.
    if (m.sessions.has(c.sessionId) || m.pending.has(c.sessionId) || runningStates.has(c.state)) continue;
    log(`removing leftover session container ${c.sessionId} (${c.state})`);
    // One that ended while this executor watched it is in the history already (its container outlived the removal,
    // Docker being down); one that ended while no executor ran is not.
    if (c.state === "exited" && c.sessionId && !history.all().some((h) => h.id === c.sessionId)) {
      history.add({ ...infoFrom(m, c), status: "exited", exitCode: c.exitCode, reason: "exited", finishedAt: new Date(m.deps.clock.now()).toISOString() });
    }
    await m.removeQuietly(c.id);
  }
}

/** A session's record rebuilt from its container's labels (after an executor restart). */
function infoFrom(m: Pick<ReconcileHost, "deps">, c: ManagedContainer): SessionInfo {
  const gpus = gpusOf(c.labels);
  const created = new Date(c.created * 1000).toISOString();
  return {
    id: c.sessionId,
    name: c.labels["beaker.name"] ?? c.sessionId,
    node: c.labels["beaker.node"] ?? m.deps.config.nodeName,
    user: c.labels["beaker.user"] ?? "?",
    uid: Number(c.labels["beaker.uid"] ?? -1),
    gpus,
    requestedGpus: gpus.length,
    image: c.image,
    status: "running",
    tty: c.labels["beaker.tty"] === "true",
    account: c.labels["beaker.account"] ?? null,
    ports: c.ports,
    mounts: shownMounts(c),
    createdAt: created,
    startedAt: created,
    finishedAt: null,
    queuePosition: null,
    exitCode: null,
    reason: null,
    slurmJob: c.labels["beaker.slurm.job"] ? { id: c.labels["beaker.slurm.job"], partition: null, endsAt: null } : null,
  };
}

/** The mounts as the user named them (a label), else as Docker shows them. */
function shownMounts(c: ManagedContainer): string[] {
  try {
    const shown = JSON.parse(c.labels["beaker.mounts"] ?? "null") as unknown;
    if (Array.isArray(shown) && shown.every((m) => typeof m === "string")) return shown;
  } catch {}
  return c.mounts;
}

function adopt(m: ReconcileHost, c: ManagedContainer): void {
  const info = infoFrom(m, c);
  const startGate = gate();
  startGate.open();
  m.deps.log(`adopted running session ${info.id} of ${info.user} (GPUs: ${info.gpus.join(",") || "none"})`);
  const session = m.track(info, c.id, startGate);
  const timeLimit = Number(c.labels["beaker.time-limit"] ?? NaN);
  session.timeLimit = Number.isSafeInteger(timeLimit) && timeLimit > 0 ? timeLimit : null;
}
