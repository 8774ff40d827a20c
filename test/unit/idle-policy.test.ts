/**
 * The edges of the idle policy: a warning is given once and only before its stop, a time limit far off warns of
 * nothing, only sessions that free GPUs are stopped for a waiting request, and every notice's words.
 */
import { describe, expect, test } from "bun:test";
import { defaultGpuIdlePolicy, type GpuIdlePolicy } from "../../src/config/gpu-use.ts";
import { noticeText, notIdle, observeSample, planGpuUse, type IdleTrack, type UseView } from "../../src/executor/gpu/idle.ts";

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const policy = (over: Partial<GpuIdlePolicy> = {}): GpuIdlePolicy => ({ ...defaultGpuIdlePolicy, after: 2 * 3600, ...over });
const idle = (since: number, last: number): IdleTrack => ({ idleSince: since, lastAt: last });
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
const plan = (now: number, sessions: UseView[], idlePolicy: GpuIdlePolicy | null, shortfall = 0) => planGpuUse({ now, sessions, idle: idlePolicy, warnMs: 15 * m, shortfall });

test("two samples at the same millisecond keep the idle run", () => {
  const opts = { threshold: 5, maxGapMs: 12 * s };
  const track = [0, 10 * s, 10 * s].reduce((t, at) => observeSample(t, { at, utilization: [0] }, opts), notIdle);
  expect(track).toEqual({ idleSince: 0, lastAt: 10 * s });
});

describe("time limits", () => {
  test("a limit more than the warning ahead: no warning yet", () => {
    expect(plan(h, [view("a", { deadline: 3 * h })], null)).toEqual([]);
  });
  test("within the warning: warned once, and not again", () => {
    expect(plan(2 * h + 50 * m, [view("a", { deadline: 3 * h })], null)).toEqual([{ type: "warn", id: "a", kind: "time", at: 3 * h, idleMs: 0 }]);
    expect(plan(2 * h + 55 * m, [view("a", { deadline: 3 * h, warnedDeadline: 3 * h })], null)).toEqual([]);
  });
  test("a limit lifted after the warning (the config's max duration removed): no warning of a stop that will not come", () => {
    expect(plan(3 * h, [view("a", { deadline: null, warnedDeadline: 4 * h })], null)).toEqual([]);
  });
  test("a limit moved after the warning is warned about again", () => {
    expect(plan(3 * h + 50 * m, [view("a", { deadline: 4 * h, warnedDeadline: 3 * h })], null)).toEqual([{ type: "warn", id: "a", kind: "time", at: 4 * h, idleMs: 0 }]);
  });
});

describe("idle sessions, action warn", () => {
  const warnOnly = policy({ action: "warn" });
  test("before the end of `after`: nothing", () => {
    expect(plan(h + 59 * m, [view("a", { track: idle(0, h + 59 * m) })], warnOnly)).toEqual([]);
  });
  test("from the end of `after`: one warning, never a stop", () => {
    const a = view("a", { track: idle(0, 2 * h) });
    expect(plan(2 * h, [a], warnOnly)).toEqual([{ type: "warn", id: "a", kind: "idle-only", at: 2 * h, idleMs: 2 * h }]);
    expect(plan(3 * h, [{ ...a, track: idle(0, 3 * h), warnedIdle: 2 * h }], warnOnly)).toEqual([]);
  });
});

describe("idle sessions, action stop", () => {
  test("reached its stop without a warning (the executor was down): stopped, not warned after the fact", () => {
    expect(plan(2 * h, [view("a", { track: idle(0, 2 * h) })], policy())).toEqual([{ type: "stop", id: "a", reason: "idle GPUs", idleMs: 2 * h }]);
  });
  test("a waiting request is covered by sessions that free GPUs only, the longest idle first", () => {
    const sessions = [view("holds-none", { freeable: 0, track: idle(0, 3 * h) }), view("b", { track: idle(m, 3 * h) }), view("c", { track: idle(2 * m, 3 * h) })];
    expect(plan(3 * h, sessions, policy({ onlyWhenQueued: true }), 1)).toEqual([{ type: "stop", id: "b", reason: "idle GPUs", idleMs: 3 * h - m }]);
  });
});

describe("notices", () => {
  const ctx = { now: 105 * m, name: "train", threshold: 5, clock: () => "16:30" };
  const idleWords = "its GPUs have been idle (under 5%) for 1h45m";
  test.each<[string, Parameters<typeof noticeText>[0], string]>([
    ["stopped at its time limit", { type: "stop", id: "a", reason: "time limit", idleMs: 105 * m }, "stopping this session: it reached its time limit"],
    [
      "idle, stopped only for a waiting request",
      { type: "warn", id: "a", kind: "idle-queued", at: 2 * h, idleMs: 105 * m },
      `${idleWords}: from 16:30 (in 15m) this session is stopped when someone waits for GPUs on this node, unless they get busy; 'beaker session keep train --for 2h' keeps it once`,
    ],
    ["idle, only warned", { type: "warn", id: "a", kind: "idle-only", at: 2 * h, idleMs: 105 * m }, `${idleWords}: please stop this session when you are done ('beaker session stop train')`],
  ])("%s", (_, action, text) => {
    expect(noticeText(action, ctx)).toBe(text);
  });
});
