/** The update notifier end to end with a fake clock and an in-memory state file: check, store, show, stay silent. */
import { describe, expect, test } from "bun:test";
import { notifyAfterCommand, recordLatest, type NotifierDeps, type NotifierEnv, type UpdateState } from "../../src/update/notifier.ts";

const hour = 3600 * 1000;
const day = 24 * hour;

function fakeNotifier(env: NotifierEnv = { tty: true, ci: false, disabled: false }, canSpawn = true) {
  let now = Date.UTC(2026, 0, 1);
  let state: UpdateState | null = null;
  const shown: string[] = [];
  let checks = 0;
  const deps: NotifierDeps = {
    now: () => now,
    readState: () => state,
    writeState: (s) => void (state = { ...s }),
    spawnCheck: canSpawn ? () => void checks++ : null,
    env,
    current: "0.1.0",
    show: (text) => void shown.push(text),
  };
  return {
    deps,
    advance: (ms: number) => void (now += ms),
    now: () => now,
    state: () => state,
    shown,
    checks: () => checks,
  };
}

describe("the update notifier", () => {
  test("checks once a day in the background, shows a newer release at most daily, and is silent in between", async () => {
    const n = fakeNotifier();
    const start = n.now();

    notifyAfterCommand(n.deps);
    expect(n.checks()).toBe(1);
    expect(n.shown).toEqual([]);
    expect(n.state()).toEqual({ lastCheck: start, lastNotice: 0, latest: null });

    // The background check finds 0.2.0 and keeps the time the check started.
    n.advance(1000);
    await recordLatest(n.deps, async () => "0.2.0");
    expect(n.state()).toEqual({ lastCheck: start, lastNotice: 0, latest: "0.2.0" });

    n.advance(hour);
    notifyAfterCommand(n.deps);
    expect(n.shown).toHaveLength(1);
    expect(n.shown[0]).toContain("0.1.0 -> 0.2.0");
    expect(n.state()!.lastNotice).toBe(n.now());
    expect(n.checks()).toBe(1);

    n.advance(hour);
    notifyAfterCommand(n.deps);
    expect(n.shown).toHaveLength(1);
    expect(n.checks()).toBe(1);

    n.advance(day);
    notifyAfterCommand(n.deps);
    expect(n.shown).toHaveLength(2);
    expect(n.checks()).toBe(2);
    expect(n.state()).toEqual({ lastCheck: n.now(), lastNotice: n.now(), latest: "0.2.0" });
  });

  test("a failed background check changes nothing", async () => {
    const n = fakeNotifier();
    notifyAfterCommand(n.deps);
    const before = n.state();
    await recordLatest(n.deps, async () => {
      throw new Error("offline");
    });
    expect(n.state()).toEqual(before);
  });

  test("the running version or an older one is never announced", async () => {
    const n = fakeNotifier();
    notifyAfterCommand(n.deps);
    await recordLatest(n.deps, async () => "0.1.0");
    n.advance(hour);
    notifyAfterCommand(n.deps);
    expect(n.shown).toEqual([]);
  });

  test.each([
    ["no terminal", { tty: false, ci: false, disabled: false }],
    ["CI", { tty: true, ci: true, disabled: false }],
    ["BEAKER_NO_UPDATE_NOTIFIER", { tty: true, ci: false, disabled: true }],
  ] as const)("silent and without a check: %s", (_, env) => {
    const n = fakeNotifier(env);
    n.deps.writeState({ lastCheck: 0, lastNotice: 0, latest: "9.0.0" });
    notifyAfterCommand(n.deps);
    expect(n.shown).toEqual([]);
    expect(n.checks()).toBe(0);
    expect(n.state()).toEqual({ lastCheck: 0, lastNotice: 0, latest: "9.0.0" });
  });

  test("run from source it still shows what it knows but starts no check", () => {
    const n = fakeNotifier(undefined, false);
    n.deps.writeState({ lastCheck: 0, lastNotice: 0, latest: "0.3.0" });
    notifyAfterCommand(n.deps);
    expect(n.shown).toHaveLength(1);
    expect(n.state()!.lastCheck).toBe(0);
  });
});
