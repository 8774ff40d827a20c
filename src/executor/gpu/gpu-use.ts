/**
 * The GPU-use monitor: every `gpuSampleInterval` it asks nvidia-smi once for every GPU's utilization and memory, keeps
 * them in the node's 24-hour history, folds them into each running session's idle track, and carries out what the
 * policy (`idle.ts`) decides: warnings on the session's terminals, stops for idle GPUs and time limits. It also
 * answers each session's GPU-use fields, `session keep`, and the queue's bound (`queue-eta.ts`). Time is the
 * lifecycle's clock, so the simulation and the unit tests run it in virtual time.
 */
import { defaultGpuIdlePolicy } from "../../config/gpu-use.ts";
import { ConflictError, errorMessage } from "../../errors.ts";
import { defaultTimeoutMs } from "../../gpu/discover.ts";
import type { Inventory } from "../../gpu/types.ts";
import type { SessionInfo, SessionUse } from "../api-types.ts";
import { freeGpus } from "../claims/claims.ts";
import { GpuHistory } from "./gpu-history.ts";
import { idleStopAt, noticeText, notIdle, observeSample, planGpuUse, type IdleTrack, type UseView } from "./idle.ts";
import { queueBounds } from "../claims/queue-eta.ts";
import type { SessionRef } from "../sessions/lookup.ts";
import { findLive } from "../sessions/queries.ts";
import type { LiveSession, SessionHost } from "../sessions/types.ts";
import { stopLive } from "../sessions/stop.ts";

/** Owners hear of a stop this long before it. */
export const warnBeforeMs = 15 * 60_000;
/** What a stop at a deadline may take beyond it: the sample that notices (plus nvidia-smi's timeout), SIGTERM's grace, removal. */
const stopSlackMs = defaultTimeoutMs + 20_000;

interface UseRecord {
  /** The first sample of the session: its GPUs' history counts from here. */
  since: number;
  track: IdleTrack;
  keepUntil: number | null;
  /** The idle run (its idleSince) in which `keep` was used; once per run. */
  keptInRun: number | null;
  warnedIdle: number | null;
  warnedDeadline: number | null;
  exempt: boolean;
  /** Whether its last sample failed (logged once per run of failures). */
  failing: boolean;
}

export interface GpuUseDeps {
  /** One fresh nvidia-smi call. */
  sample: () => Promise<Inventory>;
  /** Writes a line to every terminal attached to the session. */
  notify: (session: LiveSession, message: string) => void;
}

/** When a session's time limit stops it: its start plus the shorter of `--time` and the node's maxDuration. Pure. */
export function deadlineOf(session: Pick<LiveSession, "info" | "timeLimit">, maxDuration: number | null): number | null {
  const limits = [session.timeLimit, maxDuration].filter((x): x is number => x !== null);
  if (limits.length === 0 || !session.info.startedAt) return null;
  return Date.parse(session.info.startedAt) + Math.min(...limits) * 1000;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const timeOfDay = (ms: number) => new Date(ms).toTimeString().slice(0, 5);

export class GpuUseMonitor {
  private history: GpuHistory | null = null;
  private readonly records = new Map<string, UseRecord>();
  private inventory: Inventory | null = null;
  /** The bound each waiting request was last told. */
  private readonly told = new Map<string, number | null>();
  private sampleFailing = false;
  private running = false;

  constructor(
    private readonly m: SessionHost,
    private readonly deps: GpuUseDeps,
  ) {}

  private get intervalMs(): number {
    return this.m.deps.config.gpuSampleInterval * 1000;
  }

  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
  }

  private schedule(): void {
    if (!this.running) return;
    this.m.deps.clock.later(this.intervalMs, () => {
      void this.tick()
        .catch((err) => this.m.deps.log(`GPU use: ${errorMessage(err)}`))
        .finally(() => this.schedule());
    });
  }

  /** One sample, then the warnings and stops it makes due, then the queue's bounds. */
  async tick(): Promise<void> {
    const { clock, log } = this.m.deps;
    let inventory: Inventory | null = null;
    let problem: string | null;
    try {
      inventory = await this.deps.sample();
      problem = inventory.error;
    } catch (err) {
      problem = errorMessage(err);
    }
    const at = clock.now();
    if (problem && !this.sampleFailing) log(`GPU sample failed, so no session counts as idle until one works: ${problem}`);
    else if (!problem && this.sampleFailing) log("GPU samples work again");
    this.sampleFailing = problem !== null;
    const values = new Map<string, { utilization: number | null; memoryUsedMiB: number | null }>();
    if (inventory && !problem) {
      this.inventory = inventory;
      for (const g of inventory.gpus) if (g.uuid) values.set(g.uuid, { utilization: g.utilization, memoryUsedMiB: g.memoryUsedMiB });
      const uuids = [...values.keys()];
      if (!this.history?.covers(uuids)) this.history = this.newHistory(uuids);
    }
    this.history?.record(at, values);
    await this.observe(at, values);
    this.enforce(at);
    this.retellQueue(at);
  }

  private newHistory(uuids: string[]): GpuHistory | null {
    if (uuids.length === 0) return null;
    const history = new GpuHistory(uuids, this.intervalMs);
    const most = (history.capacity * (8 + uuids.length * 5)) / 1024;
    this.m.deps.log(`GPU history: ${uuids.length} GPU(s) sampled every ${this.m.deps.config.gpuSampleInterval} s, 24 h kept (${Math.ceil(most)} KiB at most)`);
    return history;
  }

  /** A GPU's 5-minute means (utilization and memory), or null before a sample. */
  nodeGpuMeans(uuid: string): { utilization: number | null; memoryUsedMiB: number | null } | null {
    if (!this.history) return null;
    const means = this.history.means(uuid, this.m.deps.clock.now(), 0);
    return { utilization: means.utilization.mean5m, memoryUsedMiB: means.memoryUsedMiB.mean5m };
  }

  /** Bytes the GPU history holds now (its bound is logged when it is made). */
  historyBytes(): number {
    return this.history?.bytes() ?? 0;
  }

  private async observe(at: number, values: ReadonlyMap<string, { utilization: number | null }>): Promise<void> {
    const { config, log } = this.m.deps;
    const opts = { threshold: config.gpuIdle?.threshold ?? defaultGpuIdlePolicy.threshold, maxGapMs: 2 * this.intervalMs + defaultTimeoutMs };
    const running = new Set<string>();
    for (const session of [...this.m.sessions.values()]) {
      const { info } = session;
      if (info.status !== "running") continue;
      running.add(info.id);
      const record = this.records.get(info.id) ?? (await this.newRecord(session, at));
      if (info.gpus.length === 0) continue;
      const utilization = info.gpus.map((uuid) => values.get(uuid)?.utilization ?? null);
      const failed = utilization.includes(null);
      if (failed && !record.failing && !this.sampleFailing) {
        log(`session ${info.id}: nvidia-smi gave no utilization for ${info.gpus.filter((_, i) => utilization[i] === null).join(",")}; not counted as idle`);
      }
      record.failing = failed;
      record.track = observeSample(record.track, { at, utilization }, opts);
    }
    for (const id of this.records.keys()) if (!running.has(id) && !this.m.sessions.has(id)) this.records.delete(id);
  }

  private async newRecord(session: LiveSession, at: number): Promise<UseRecord> {
    const record: UseRecord = { since: at, track: notIdle, keepUntil: null, keptInRun: null, warnedIdle: null, warnedDeadline: null, exempt: false, failing: false };
    this.records.set(session.info.id, record);
    if (session.info.gpus.length > 0) record.exempt = await this.isExempt(session.info);
    return record;
  }

  /** Whether `gpuIdle.exempt` names the session's user, Beaker account, or one of the user's groups. */
  private async isExempt(info: SessionInfo): Promise<boolean> {
    const exempt = this.m.deps.config.gpuIdle?.exempt ?? [];
    if (exempt.length === 0) return false;
    if (exempt.includes(info.user) || (info.account !== null && exempt.includes(info.account))) return true;
    try {
      const { users } = this.m.deps;
      const user = await users.lookup(info.uid);
      const groups = await Promise.all([user.gid, ...user.groups].map((gid) => users.groupName(gid)));
      return groups.some((g) => g !== null && exempt.includes(g));
    } catch (err) {
      this.m.deps.log(`session ${info.id}: cannot read ${info.user}'s groups (${errorMessage(err)}); not exempt from idle stops`);
      return false;
    }
  }

  /** Warnings and stops, as the policy says. */
  private enforce(now: number): void {
    const { config, log } = this.m.deps;
    const usable = new Set(this.m.claims.state.usable);
    const views: UseView[] = [];
    for (const session of this.m.sessions.values()) {
      const { info } = session;
      const record = this.records.get(info.id);
      if (!record || (info.status !== "running" && info.status !== "stopping")) continue;
      views.push({ id: info.id, ...record, freeable: info.gpus.filter((g) => usable.has(g)).length, deadline: deadlineOf(session, config.maxDuration), stopping: info.status === "stopping" });
    }
    const head = this.m.claims.state.queue[0];
    const freeing = views.filter((v) => v.stopping).reduce((n, v) => n + v.freeable, 0);
    const shortfall = head ? Math.max(0, head.count - freeGpus(this.m.claims.state).length - freeing) : 0;
    const threshold = config.gpuIdle?.threshold ?? defaultGpuIdlePolicy.threshold;
    for (const action of planGpuUse({ now, sessions: views, idle: config.gpuIdle, warnMs: warnBeforeMs, shortfall })) {
      const session = this.m.sessions.get(action.id);
      const record = this.records.get(action.id);
      if (!session || !record) continue;
      const message = noticeText(action, { now, name: session.info.name, threshold, clock: timeOfDay });
      log(`session ${action.id} of ${session.info.user}: ${message}`);
      this.deps.notify(session, message);
      if (action.type === "warn") {
        if (action.kind === "time") record.warnedDeadline = action.at;
        else record.warnedIdle = action.at;
        continue;
      }
      session.stopReason ??= action.reason;
      void stopLive(this.m.deps.engine, session, 10).catch((err) => log(`cannot stop session ${action.id}: ${errorMessage(err)}`));
    }
  }

  /** Each waiting request's bound: when its GPUs are certain to be free. */
  private bounds(now: number): Map<string, number | null> {
    const releases = new Map<string, number>();
    for (const session of this.m.sessions.values()) {
      const deadline = deadlineOf(session, this.m.deps.config.maxDuration);
      if (deadline !== null) releases.set(session.info.id, deadline + this.intervalMs + stopSlackMs);
    }
    return queueBounds({ now, state: this.m.claims.state, releases });
  }

  /** The bound for one waiting request, as the time to show (ISO), or null. */
  freeBy(sessionId: string): string | null {
    const at = this.bounds(this.m.deps.clock.now()).get(sessionId) ?? null;
    this.told.set(sessionId, at);
    return iso(at);
  }

  private retellQueue(now: number): void {
    const bounds = this.bounds(now);
    for (const [id, at] of bounds) {
      if (this.told.has(id) && this.told.get(id) === at) continue;
      this.told.set(id, at);
      this.m.claims.retell(id);
    }
    for (const id of this.told.keys()) if (!bounds.has(id)) this.told.delete(id);
  }

  /** A session's GPU use and limits, for list and describe. */
  fields(info: SessionInfo): SessionUse {
    const session = this.m.sessions.get(info.id);
    const record = this.records.get(info.id);
    const { config, clock } = this.m.deps;
    const now = clock.now();
    const utilization: SessionUse["gpuUtilization"] = [];
    const memory: SessionUse["gpuMemoryUsedMiB"] = [];
    if (session && record && this.history) {
      for (const uuid of info.gpus) {
        const means = this.history.means(uuid, now, record.since);
        utilization.push({ uuid, ...means.utilization });
        memory.push({ uuid, ...means.memoryUsedMiB, totalMiB: this.inventory?.gpus.find((g) => g.uuid === uuid)?.memoryTotalMiB ?? null });
      }
    }
    const policy = config.gpuIdle;
    const subject = policy !== null && session !== undefined && record !== undefined && !record.exempt && info.gpus.length > 0;
    return {
      gpuUtilization: utilization,
      gpuMemoryUsedMiB: memory,
      idleSince: session ? iso(record?.track.idleSince) : null,
      idleAction: subject ? (policy.action === "warn" ? "warn" : policy.onlyWhenQueued ? "stop-when-queued" : "stop") : null,
      idleStopsAt: subject ? iso(idleStopAt(record, policy)) : null,
      keptUntil: session && record?.keepUntil && record.keepUntil > now ? iso(record.keepUntil) : null,
      deadline: session ? iso(deadlineOf(session, config.maxDuration)) : null,
    };
  }

  /**
   * `session keep --for`: the session is not stopped for idle GPUs before now + `seconds` (never past its time limit,
   * which still applies). Once per idle run: a second keep while the same run lasts is refused.
   */
  keep(uid: number, ref: SessionRef, seconds: number): SessionInfo {
    const session = findLive(this.m, uid, ref);
    const { info } = session;
    const { config, clock, log } = this.m.deps;
    if (!config.gpuIdle) throw new ConflictError("this node does not stop sessions for idle GPUs: there is nothing to keep");
    if (info.gpus.length === 0) throw new ConflictError(`session ${info.name} has no GPUs, so it is never stopped for idle GPUs`);
    const record = this.records.get(info.id);
    if (!record) throw new ConflictError(`session ${info.name} has not been sampled yet: its GPUs are not idle`);
    if (record.exempt) throw new ConflictError(`session ${info.name} is never stopped for idle GPUs (its user is exempt)`);
    const run = record.track.idleSince;
    if (run !== null && record.keptInRun === run) {
      throw new ConflictError(`session ${info.name} was already kept once while its GPUs have been idle (until ${timeOfDay(record.keepUntil ?? 0)}); use its GPUs, or stop it`);
    }
    const now = clock.now();
    const deadline = deadlineOf(session, config.maxDuration);
    record.keepUntil = Math.min(now + seconds * 1000, deadline ?? Infinity);
    record.keptInRun = run;
    log(`session ${info.id} of ${info.user} kept until ${iso(record.keepUntil)}`);
    return info;
  }
}
