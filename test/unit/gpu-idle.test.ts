/** The idle policy, the queue's bound and the GPU history as pure functions of samples, a clock and the config. */
import { describe, expect, test } from "bun:test";
import { defaultGpuIdlePolicy, parseGpuIdle, parseMaxDuration, type GpuIdlePolicy } from "../../src/config/gpu-use.ts";
import { parseExecutorConfig } from "../../src/config/executor.ts";
import type { Hold, Waiting } from "../../src/executor/claims/claims.ts";
import { GpuHistory } from "../../src/executor/gpu/gpu-history.ts";
import { idleFor, idleStopAt, noticeText, notIdle, observeSample, planGpuUse, type IdleTrack, type UseView } from "../../src/executor/gpu/idle.ts";
import { queueBounds } from "../../src/executor/claims/queue-eta.ts";
import { parseDuration } from "../../src/util/duration.ts";

const s = 1000;
const m = 60 * s;
const opts = { threshold: 5, maxGapMs: 12 * s };
/** Folds samples [at (s), utilization per GPU] into a track, as the monitor does. */
const fold = (samples: Array<[number, Array<number | null>]>, start: IdleTrack = notIdle) =>
  samples.reduce((track, [at, utilization]) => observeSample(track, { at: at * s, utilization }, opts), start);

describe("observeSample: when a session's GPUs count as idle", () => {
  test.each<[string, Array<[number, Array<number | null>]>, number | null, number]>([
    ["every GPU under the threshold from the first sample", [[0, [0, 1]], [1, [4, 0]], [2, [0, 0]]], 0, 2],
    ["one GPU busy is enough to be busy", [[0, [0, 90]], [1, [0, 90]]], null, 0],
    ["at the threshold is not under it", [[0, [5]], [1, [5]]], null, 0],
    ["busy again ends the run; idle again starts a new one", [[0, [0]], [1, [0]], [2, [90]], [3, [0]], [4, [0]]], 3, 1],
    ["a failed sample never counts as idle and ends the run", [[0, [0]], [1, [0]], [2, [null]], [3, [0]], [4, [0]]], 3, 1],
    ["a GPU without a value (MIG: N/A) keeps the session busy", [[0, [0, null]], [1, [0, null]]], null, 0],
    ["a session without GPUs is never idle", [[0, []], [1, []]], null, 0],
    ["samples within the allowed gap keep the run", [[0, [0]], [10, [0]], [22, [0]]], 0, 22],
    ["the clock jumps forward: the gap is not counted as idle, the run restarts", [[0, [0]], [1, [0]], [3601, [0]], [3602, [0]]], 3601, 1],
    ["the clock is set back: the run restarts at the sample", [[100, [0]], [101, [0]], [50, [0]], [51, [0]]], 50, 1],
  ])("%s", (_, samples, idleSince, idleSeconds) => {
    const track = fold(samples);
    expect(track.idleSince).toBe(idleSince === null ? null : idleSince * s);
    expect(idleFor(track)).toBe(idleSeconds * s);
  });
});

const policy = (over: Partial<GpuIdlePolicy> = {}): GpuIdlePolicy => ({ ...defaultGpuIdlePolicy, after: 2 * 3600, ...over });
const view = (id: string, over: Partial<UseView> = {}): UseView => ({
  id,
  exempt: false,
  freeable: 1,
  track: notIdle,
  keepUntil: null,
  deadline: null,
  warnedIdle: null,
  warnedDeadline: null,
  stopping: false,
  ...over,
});
const idleSince = (since: number, last: number): IdleTrack => ({ idleSince: since, lastAt: last });
const h = 3600 * s;

describe("planGpuUse: warnings and stops due at a time", () => {
  test.each<[string, { now: number; sessions: UseView[]; idle: GpuIdlePolicy | null; shortfall?: number }, unknown[]]>([
    ["busy sessions: nothing", { now: 3 * h, sessions: [view("a")], idle: policy() }, []],
    ["idle 1h44m: not yet warned", { now: 104 * m, sessions: [view("a", { track: idleSince(0, 104 * m) })], idle: policy() }, []],
    [
      "idle 1h45m: warned once, 15 minutes ahead",
      { now: 105 * m, sessions: [view("a", { track: idleSince(0, 105 * m) })], idle: policy() },
      [{ type: "warn", id: "a", kind: "idle", at: 2 * h, idleMs: 105 * m }],
    ],
    ["already warned for that stop: no second warning", { now: 110 * m, sessions: [view("a", { track: idleSince(0, 110 * m), warnedIdle: 2 * h })], idle: policy() }, []],
    [
      "idle 2h: stopped with reason idle GPUs",
      { now: 2 * h, sessions: [view("a", { track: idleSince(0, 2 * h), warnedIdle: 2 * h })], idle: policy() },
      [{ type: "stop", id: "a", reason: "idle GPUs", idleMs: 2 * h }],
    ],
    ["kept: no stop before the keep ends", { now: 3 * h, sessions: [view("a", { track: idleSince(0, 3 * h), keepUntil: 4 * h, warnedIdle: 2 * h })], idle: policy() }, []],
    [
      "kept: warned again before the keep ends",
      { now: 3 * h + 50 * m, sessions: [view("a", { track: idleSince(0, 3 * h + 50 * m), keepUntil: 4 * h, warnedIdle: 2 * h })], idle: policy() },
      [{ type: "warn", id: "a", kind: "idle", at: 4 * h, idleMs: 3 * h + 50 * m }],
    ],
    ["an exempt user is never stopped", { now: 9 * h, sessions: [view("a", { exempt: true, track: idleSince(0, 9 * h) })], idle: policy() }, []],
    ["idle reclaim off: idle sessions stay", { now: 9 * h, sessions: [view("a", { track: idleSince(0, 9 * h) })], idle: null }, []],
    ["a stopping session is left alone", { now: 9 * h, sessions: [view("a", { stopping: true, track: idleSince(0, 9 * h), deadline: h })], idle: policy() }, []],
    [
      "action warn: the owner hears at 2h, nothing is stopped",
      { now: 2 * h, sessions: [view("a", { track: idleSince(0, 2 * h) })], idle: policy({ action: "warn" }) },
      [{ type: "warn", id: "a", kind: "idle-only", at: 2 * h, idleMs: 2 * h }],
    ],
    [
      "a short `after` (under the warning lead): warned at the first idle sample",
      { now: 10 * s, sessions: [view("a", { track: idleSince(10 * s, 10 * s) })], idle: policy({ after: 6 }) },
      [{ type: "warn", id: "a", kind: "idle", at: 16 * s, idleMs: 0 }],
    ],
    [
      "onlyWhenQueued, nothing waits: due but not stopped",
      { now: 5 * h, sessions: [view("a", { track: idleSince(0, 5 * h), warnedIdle: 2 * h })], idle: policy({ onlyWhenQueued: true }), shortfall: 0 },
      [],
    ],
    [
      "onlyWhenQueued, 1 GPU short: the longest idle goes, only it",
      {
        now: 5 * h,
        sessions: [view("a", { track: idleSince(h, 5 * h), warnedIdle: 3 * h }), view("b", { track: idleSince(0, 5 * h), warnedIdle: 2 * h }), view("c", { track: idleSince(30 * m, 5 * h), warnedIdle: 2 * h + 30 * m })],
        idle: policy({ onlyWhenQueued: true }),
        shortfall: 1,
      },
      [{ type: "stop", id: "b", reason: "idle GPUs", idleMs: 5 * h }],
    ],
    [
      "onlyWhenQueued, 2 GPUs short: the two longest idle",
      {
        now: 5 * h,
        sessions: [view("a", { track: idleSince(h, 5 * h), warnedIdle: 3 * h }), view("b", { track: idleSince(0, 5 * h), warnedIdle: 2 * h }), view("c", { track: idleSince(30 * m, 5 * h), warnedIdle: 2 * h + 30 * m })],
        idle: policy({ onlyWhenQueued: true }),
        shortfall: 2,
      },
      [
        { type: "stop", id: "b", reason: "idle GPUs", idleMs: 5 * h },
        { type: "stop", id: "c", reason: "idle GPUs", idleMs: 4 * h + 30 * m },
      ],
    ],
    [
      "onlyWhenQueued, more short than all idle sessions hold: nobody is stopped for nothing",
      { now: 5 * h, sessions: [view("a", { track: idleSince(0, 5 * h), warnedIdle: 2 * h })], idle: policy({ onlyWhenQueued: true }), shortfall: 4 },
      [],
    ],
    [
      "onlyWhenQueued: the warning says it stops only when GPUs are wanted",
      { now: 105 * m, sessions: [view("a", { track: idleSince(0, 105 * m) })], idle: policy({ onlyWhenQueued: true }) },
      [{ type: "warn", id: "a", kind: "idle-queued", at: 2 * h, idleMs: 105 * m }],
    ],
    [
      "time limit: warned 15 minutes before",
      { now: 3 * h + 45 * m, sessions: [view("a", { deadline: 4 * h })], idle: null },
      [{ type: "warn", id: "a", kind: "time", at: 4 * h, idleMs: 0 }],
    ],
    [
      "time limit reached: stopped, however busy",
      { now: 4 * h, sessions: [view("a", { deadline: 4 * h, warnedDeadline: 4 * h })], idle: policy() },
      [{ type: "stop", id: "a", reason: "time limit", idleMs: 0 }],
    ],
    [
      "time limit and idleness at once: one stop, for the time limit",
      { now: 4 * h, sessions: [view("a", { deadline: 4 * h, warnedDeadline: 4 * h, track: idleSince(0, 4 * h), warnedIdle: 2 * h })], idle: policy() },
      [{ type: "stop", id: "a", reason: "time limit", idleMs: 4 * h }],
    ],
  ])("%s", (_, input, expected) => {
    expect(planGpuUse({ warnMs: 15 * m, shortfall: 0, ...input })).toEqual(expected as never);
  });

  test("the stop comes at the end of `after`, or of a keep", () => {
    expect(idleStopAt({ track: idleSince(h, 2 * h), keepUntil: null }, policy())).toBe(3 * h);
    expect(idleStopAt({ track: idleSince(h, 2 * h), keepUntil: 5 * h }, policy())).toBe(5 * h);
    expect(idleStopAt({ track: notIdle, keepUntil: 5 * h }, policy())).toBeNull();
  });

  test("notices say when, for how long, and how to keep the session", () => {
    const ctx = { now: 105 * m, name: "train", threshold: 5, clock: () => "16:30" };
    expect(noticeText({ type: "warn", id: "a", kind: "idle", at: 2 * h, idleMs: 105 * m }, ctx)).toBe(
      "its GPUs have been idle (under 5%) for 1h45m: this session stops at 16:30 (in 15m) unless they get busy; 'beaker session keep train --for 2h' keeps it once",
    );
    expect(noticeText({ type: "warn", id: "a", kind: "time", at: 2 * h, idleMs: 0 }, ctx)).toBe("this session reaches its time limit at 16:30 (in 15m) and will be stopped then");
    expect(noticeText({ type: "stop", id: "a", reason: "idle GPUs", idleMs: 2 * h }, ctx)).toBe("stopping this session: its GPUs have been idle (under 5%) for 2h00m");
  });
});

const hold = (gpus: string[], stage: Hold["stage"] = "confirmed"): Hold => ({ uid: 1, gpus, stage, epoch: 1, memory: 0 });
const wait = (sessionId: string, count: number): Waiting => ({ sessionId, uid: 2, count, noWait: false, memory: 0, told: 0 });

describe("queueBounds: when a waiting request's GPUs are certain to be free", () => {
  const usable = ["g0", "g1", "g2", "g3"];
  test.each<[string, { holds: Array<[string, Hold]>; queue: Waiting[]; releases: Array<[string, number]>; usable?: string[] }, Record<string, number | null>]>([
    ["no session has a limit: no bound", { holds: [["a", hold(["g0", "g1", "g2", "g3"])]], queue: [wait("q", 1)], releases: [] }, { q: null }],
    ["the one session ahead has a limit", { holds: [["a", hold(["g0", "g1", "g2", "g3"])]], queue: [wait("q", 2)], releases: [["a", 5 * h]] }, { q: 5 * h }],
    [
      "the earliest limits that cover the request",
      { holds: [["a", hold(["g0", "g1"])], ["b", hold(["g2"])], ["c", hold(["g3"])]], queue: [wait("q", 2)], releases: [["a", 9 * h], ["b", 3 * h], ["c", 4 * h]] },
      { q: 4 * h },
    ],
    [
      "FIFO: the second waits for what the first leaves",
      { holds: [["a", hold(["g0", "g1"])], ["b", hold(["g2", "g3"])]], queue: [wait("q1", 2), wait("q2", 2)], releases: [["a", 3 * h], ["b", 5 * h]] },
      { q1: 3 * h, q2: 5 * h },
    ],
    [
      "a session without a limit ahead: the bound stops where the limits end",
      { holds: [["a", hold(["g0", "g1"])], ["b", hold(["g2", "g3"])]], queue: [wait("q1", 2), wait("q2", 2)], releases: [["a", 3 * h]] },
      { q1: 3 * h, q2: null },
    ],
    [
      "once one request has no bound, nobody behind it has one",
      { holds: [["a", hold(["g0", "g1", "g2"])]], queue: [wait("q1", 4), wait("q2", 1)], releases: [] },
      { q1: null, q2: null },
    ],
    ["free GPUs count from now", { holds: [["a", hold(["g0", "g1"])]], queue: [wait("q", 3)], releases: [["a", 2 * h]] }, { q: 2 * h }],
    [
      "a reservation not yet started has no deadline",
      { holds: [["a", hold(["g0", "g1", "g2", "g3"], "reserved")]], queue: [wait("q", 1)], releases: [] },
      { q: null },
    ],
    [
      "GPUs that cannot be handed out do not count when freed",
      { holds: [["a", hold(["g0", "g9"])], ["b", hold(["g1", "g2", "g3"])]], queue: [wait("q", 2)], releases: [["a", h], ["b", 6 * h]] },
      { q: 6 * h },
    ],
    ["a deadline already past counts as now", { holds: [["a", hold(["g0", "g1", "g2", "g3"])]], queue: [wait("q", 1)], releases: [["a", 0]] }, { q: h }],
  ])("%s", (_, c, expected) => {
    const bounds = queueBounds({ now: h, state: { usable: c.usable ?? usable, holds: new Map(c.holds), queue: c.queue }, releases: new Map(c.releases) });
    expect(Object.fromEntries(bounds)).toEqual(expected);
  });
});

describe("GpuHistory: the node's 24 hours of samples in fixed memory", () => {
  const at = (i: number) => 1_000_000 + i * s;
  const one = (u: number | null, mem: number | null = 100) => new Map([["g0", { utilization: u, memoryUsedMiB: mem }]]);

  test("last, 5-minute and 1-hour means, counting only samples since the session started and with a value", () => {
    const history = new GpuHistory(["g0"], s);
    for (let i = 0; i < 3600; i++) history.record(at(i), one(i < 3300 ? 10 : 70, i < 3300 ? 100 : 400));
    history.record(at(3600), one(null, null));
    const now = at(3600);
    const { utilization, memoryUsedMiB } = history.means("g0", now, 0);
    expect(utilization).toEqual({ last: null, mean5m: 70, mean1h: 15 });
    expect(memoryUsedMiB).toEqual({ last: null, mean5m: 400, mean1h: 125 });
    expect(history.means("g0", now, at(3500)).utilization.mean1h).toBe(70);
    expect(history.means("nope", now, 0).utilization).toEqual({ last: null, mean5m: null, mean1h: null });
  });

  test("it grows by doubling up to 24 h at the interval, then stays that size", () => {
    const history = new GpuHistory(["g0", "g1"], 60 * s);
    expect(history.capacity).toBe(24 * 60 + 1);
    const slotBytes = 8 + 2 * (1 + 4);
    expect(history.bytes()).toBe(64 * slotBytes);
    for (let i = 0; i < 24 * 60 + 1; i++) history.record(at(i * 60), one(1));
    const full = history.bytes();
    expect(full).toBe(history.capacity * slotBytes);
    for (let i = 0; i < 3 * 24 * 60; i++) history.record(at((24 * 60 + 1 + i) * 60), one(1));
    expect(history.bytes()).toBe(full);
  });

  test("a changed inventory is noticed", () => {
    const history = new GpuHistory(["g0", "g1"], s);
    expect(history.covers(["g1", "g0"])).toBe(true);
    expect(history.covers(["g0"])).toBe(false);
    expect(history.covers(["g0", "g2"])).toBe(false);
  });
});

describe("config and durations", () => {
  test("gpuIdle: absent is off; given, missing keys take the defaults", () => {
    expect(parseExecutorConfig({}, "c.yml").gpuIdle).toBeNull();
    expect(parseGpuIdle({})).toEqual(defaultGpuIdlePolicy);
    expect(parseGpuIdle({ after: "6s", threshold: 10, action: "warn", onlyWhenQueued: true, exempt: ["alice", "gpu-admins"] })).toEqual({
      threshold: 10,
      after: 6,
      action: "warn",
      onlyWhenQueued: true,
      exempt: ["alice", "gpu-admins"],
    });
    expect(parseExecutorConfig({ gpuIdle: { after: "1h30m" } }, "c.yml").gpuIdle?.after).toBe(5400);
  });

  test.each([
    [{ gpuIdle: { action: "kill" } }, 'c.yml: gpuIdle action must be "stop" or "warn"'],
    [{ gpuIdle: { threshold: 0 } }, "c.yml: gpuIdle threshold must be a percent above 0 and at most 100"],
    [{ gpuIdle: { after: "soon" } }, 'c.yml: gpuIdle after must be a duration like 3600, "30m", "12h" or "7d"'],
    [{ gpuIdle: { exempt: "alice" } }, "c.yml: gpuIdle exempt must be a list of user or group names"],
    [{ gpuIdle: { afterr: "2h" } }, 'c.yml: gpuIdle has no key "afterr" (threshold, after, action, onlyWhenQueued, exempt)'],
    [{ gpuSampleInterval: 0 }, "c.yml: gpuSampleInterval must be at least 1s"],
    [{ maxDuration: "0s" }, "c.yml: maxDuration must be longer than 0"],
  ])("%j is refused", (raw, message) => {
    expect(() => parseExecutorConfig(raw, "c.yml")).toThrow(message);
  });

  test("sample interval and maxDuration", () => {
    expect(parseExecutorConfig({}, "c.yml")).toMatchObject({ gpuSampleInterval: 30, maxDuration: null });
    expect(parseExecutorConfig({ gpuSampleInterval: "1s", maxDuration: "8h" }, "c.yml")).toMatchObject({ gpuSampleInterval: 1, maxDuration: 8 * 3600 });
    expect(parseMaxDuration(null)).toBeNull();
  });

  test.each([
    ["4h", 4 * 3600],
    ["90m", 5400],
    ["1h30m", 5400],
    ["45s", 45],
    ["2d", 2 * 86400],
    ["60", 3600],
    ["30:00", 1800],
    ["4:00:00", 4 * 3600],
    ["2-12", 2 * 86400 + 12 * 3600],
    ["1-00:30:00", 86400 + 1800],
    ["0", null],
    ["0h", null],
    ["soon", null],
    ["-1h", null],
    ["4 h", null],
  ])("--time %p is %p seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });
});
