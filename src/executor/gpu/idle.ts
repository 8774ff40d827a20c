/**
 * When a session's GPUs count as idle, and what to do about idle sessions and time limits. Pure: the GPU-use monitor
 * (`gpu-use.ts`) folds each sample into a session's `IdleTrack` and carries out the actions `planGpuUse` returns.
 */
import type { GpuIdlePolicy } from "../../config/gpu-use.ts";
import { formatDuration } from "../../util/duration.ts";

/** A session is idle since `idleSince` (the first of an unbroken run of idle samples), as of the sample at `lastAt`. */
export interface IdleTrack {
  idleSince: number | null;
  lastAt: number | null;
}

export const notIdle: IdleTrack = { idleSince: null, lastAt: null };

/** One sample of a session's GPUs: each one's utilization, null where the sample failed. */
export interface Sample {
  at: number;
  utilization: ReadonlyArray<number | null>;
}

/**
 * Folds one sample into the track. Idle means every GPU under `threshold` in every sample since `idleSince`, with no
 * sample missing: a failed sample (nvidia-smi failed, or said N/A) never counts as idle and ends the idle run; so
 * does a gap longer than `maxGapMs` between samples or a clock set back, because nobody saw the GPUs meanwhile (a
 * suspended executor, a clock that jumped): the run restarts at this sample.
 */
export function observeSample(track: IdleTrack, sample: Sample, opts: { threshold: number; maxGapMs: number }): IdleTrack {
  const idle = sample.utilization.length > 0 && sample.utilization.every((u) => u !== null && u < opts.threshold);
  if (!idle) return { idleSince: null, lastAt: sample.at };
  const unbroken = track.lastAt !== null && sample.at >= track.lastAt && sample.at - track.lastAt <= opts.maxGapMs;
  return { idleSince: unbroken && track.idleSince !== null ? track.idleSince : sample.at, lastAt: sample.at };
}

/** How long the samples have shown the session idle (ms). */
export function idleFor(track: IdleTrack): number {
  return track.idleSince === null || track.lastAt === null ? 0 : track.lastAt - track.idleSince;
}

/** What the policy knows of one running session. */
export interface UseView {
  id: string;
  exempt: boolean;
  /** Its GPUs that another request could be given once it stops. */
  freeable: number;
  track: IdleTrack;
  /** `session keep --for`: not stopped for idleness before this. */
  keepUntil: number | null;
  /** Its time limit, or null. */
  deadline: number | null;
  /** The stop times its owner was last warned about. */
  warnedIdle: number | null;
  warnedDeadline: number | null;
  stopping: boolean;
}

export type UseAction =
  | { type: "warn"; id: string; kind: "idle" | "idle-queued" | "idle-only" | "time"; at: number; idleMs: number }
  | { type: "stop"; id: string; reason: "idle GPUs" | "time limit"; idleMs: number };

export interface PlanInput {
  now: number;
  sessions: readonly UseView[];
  idle: GpuIdlePolicy | null;
  /** How long before a stop its owner is warned. */
  warnMs: number;
  /** GPUs the head of the queue lacks beyond the free ones and those of sessions already stopping (0: none waits). */
  shortfall: number;
}

/** When an idle session becomes stoppable (its owner warned, with action warn): `after` into the run, or its keep. */
export function idleStopAt(view: Pick<UseView, "track" | "keepUntil">, policy: GpuIdlePolicy): number | null {
  if (view.track.idleSince === null) return null;
  return Math.max(view.track.idleSince + policy.after * 1000, view.keepUntil ?? -Infinity);
}

/**
 * The warnings and stops due now. Time limits first (a session past its deadline stops whatever its GPUs do); then
 * idle sessions: all that are due, or with `onlyWhenQueued` only while a request waits, the longest idle first and no
 * more than it takes to cover the waiting request's shortfall (none when even all of them would not).
 */
export function planGpuUse(input: PlanInput): UseAction[] {
  const { now, idle, warnMs } = input;
  const actions: UseAction[] = [];
  const due: Array<{ view: UseView; idleMs: number }> = [];
  for (const view of input.sessions) {
    if (view.stopping) continue;
    const idleMs = idleFor(view.track);
    if (view.deadline !== null && now >= view.deadline) {
      actions.push({ type: "stop", id: view.id, reason: "time limit", idleMs });
      continue;
    }
    if (view.deadline !== null && now >= view.deadline - warnMs && view.warnedDeadline !== view.deadline) {
      actions.push({ type: "warn", id: view.id, kind: "time", at: view.deadline, idleMs });
    }
    if (!idle || view.exempt) continue;
    const stopAt = idleStopAt(view, idle);
    if (stopAt === null) continue;
    if (idle.action === "warn") {
      if (now >= stopAt && view.warnedIdle !== stopAt) actions.push({ type: "warn", id: view.id, kind: "idle-only", at: stopAt, idleMs });
      continue;
    }
    const warnAt = Math.max(view.track.idleSince!, stopAt - warnMs);
    if (now >= warnAt && now < stopAt && view.warnedIdle !== stopAt) {
      actions.push({ type: "warn", id: view.id, kind: idle.onlyWhenQueued ? "idle-queued" : "idle", at: stopAt, idleMs });
    }
    if (now >= stopAt) due.push({ view, idleMs });
  }
  if (!idle || idle.action !== "stop") return actions;
  let chosen = due;
  if (idle.onlyWhenQueued) {
    chosen = [];
    let covered = 0;
    for (const d of [...due].sort((a, b) => a.view.track.idleSince! - b.view.track.idleSince! || a.view.id.localeCompare(b.view.id))) {
      if (covered >= input.shortfall) break;
      if (d.view.freeable === 0) continue;
      chosen.push(d);
      covered += d.view.freeable;
    }
    if (covered < input.shortfall) chosen = [];
  }
  for (const d of chosen) actions.push({ type: "stop", id: d.view.id, reason: "idle GPUs", idleMs: d.idleMs });
  return actions;
}

/** The line a warning or stop puts on the session's terminals. `clock` writes a time of day ("16:30"). */
export function noticeText(action: UseAction, ctx: { now: number; name: string; threshold: number; clock: (ms: number) => string }): string {
  const idle = `its GPUs have been idle (under ${ctx.threshold}%) for ${formatDuration(action.idleMs / 1000)}`;
  const keep = `'beaker session keep ${ctx.name} --for 2h' keeps it once`;
  if (action.type === "stop") return action.reason === "time limit" ? "stopping this session: it reached its time limit" : `stopping this session: ${idle}`;
  const when = `${ctx.clock(action.at)} (in ${formatDuration(Math.max(0, action.at - ctx.now) / 1000)})`;
  switch (action.kind) {
    case "time":
      return `this session reaches its time limit at ${when} and will be stopped then`;
    case "idle":
      return `${idle}: this session stops at ${when} unless they get busy; ${keep}`;
    case "idle-queued":
      return `${idle}: from ${when} this session is stopped when someone waits for GPUs on this node, unless they get busy; ${keep}`;
    case "idle-only":
      return `${idle}: please stop this session when you are done ('beaker session stop ${ctx.name}')`;
  }
}
