/**
 * Per-user caps on sessions and memory (issue 26, finding 8), decided in the claim state machine, and the defaults
 * they start from: 16 sessions per user, a session's memory at most half the node's.
 */
import { describe, expect, test } from "bun:test";
import { defaultExecutorConfig, parseExecutorConfig } from "../../src/config/executor.ts";
import { initialClaims, step, type ClaimEffect, type ClaimEvent, type ClaimState, type UserLimits } from "../../src/executor/claims/claims.ts";
import { memoryLimitFor } from "../../src/executor/sessions/prepare.ts";

const gpus = ["G0", "G1", "G2", "G3"];
const GiB = 1024 ** 3;

function limited(limits: Partial<UserLimits>): ClaimState {
  let s = step(initialClaims(limits), { type: "inventory", total: gpus.length, usable: gpus, error: null }).state;
  s = step(s, { type: "listing", since: s.epoch, containers: [] }).state;
  return s;
}

function run(events: ClaimEvent[], from: ClaimState): { state: ClaimState; effects: ClaimEffect[] } {
  let state = from;
  const effects: ClaimEffect[] = [];
  for (const e of events) {
    const next = step(state, e);
    state = next.state;
    effects.push(...next.effects);
  }
  return { state, effects };
}

const req = (sessionId: string, count: number, uid = 1000, memory = GiB): ClaimEvent => ({ type: "request", sessionId, uid, count, noWait: false, memory });
const kinds = (effects: ClaimEffect[]) => effects.map((e) => `${e.type}:${"sessionId" in e ? e.sessionId : ""}`);

describe("sessions per user", () => {
  test("0-GPU sessions count: the one past the cap is refused with one line, others' users unaffected", () => {
    const { effects } = run([req("a", 0), req("b", 0), req("c", 0), req("d", 0, 2000)], limited({ maxSessions: 2 }));
    expect(kinds(effects)).toEqual(["grant:a", "grant:b", "refuse:c", "grant:d"]);
    expect(effects[2]).toEqual({
      type: "refuse",
      sessionId: "c",
      reason: "limit",
      message: "you have 2 sessions on this node (running, starting or waiting); the most one user may have is 2: stop one first",
    });
  });

  test("waiting requests count too, and a session that ended frees its slot", () => {
    const s = limited({ maxSessions: 2 });
    const { state, effects } = run([req("a", 4), req("b", 1), req("c", 0)], s);
    expect(kinds(effects)).toEqual(["grant:a", "queued:b", "refuse:c"]);
    const after = run([{ type: "confirmed", sessionId: "a" }, { type: "ended", sessionId: "a" }, req("d", 0)], state);
    expect(kinds(after.effects)).toEqual(["grant:b", "grant:d"]);
  });

  test("checked again when granted: sessions found running after a restart leave no room for a waiting request", () => {
    // Before the first listing nothing is known: the request waits; the listing shows two running sessions of its user.
    let s = step(initialClaims({ maxSessions: 2 }), { type: "inventory", total: 4, usable: gpus, error: null }).state;
    const early = step(s, req("late", 0));
    s = early.state;
    expect(kinds(early.effects)).toEqual([]);
    expect(s.queue.map((w) => w.sessionId)).toEqual(["late"]);
    const containers = ["x", "y"].map((id) => ({ sessionId: id, uid: 1000, gpus: [], running: true, memory: GiB }));
    const { effects } = step(s, { type: "listing", since: s.epoch, containers });
    expect(kinds(effects)).toEqual(["adopt:x", "adopt:y", "refuse:late"]);
  });

  test("root is not capped", () => {
    const { effects } = run([req("a", 0, 0), req("b", 0, 0)], limited({ maxSessions: 1 }));
    expect(kinds(effects)).toEqual(["grant:a", "grant:b"]);
  });

  test("the default cap is 16 sessions; the config key sets another, at least 1", () => {
    expect(defaultExecutorConfig().maxSessionsPerUser).toBe(16);
    expect(parseExecutorConfig({ maxSessionsPerUser: 3 }, "c.yml").maxSessionsPerUser).toBe(3);
    expect(() => parseExecutorConfig({ maxSessionsPerUser: 0 }, "c.yml")).toThrow("c.yml: maxSessionsPerUser must be a whole number, 1 or more");
  });
});

describe("memory per user", () => {
  test("the session that would take its user past the cap is refused; the memory of one that ended is free again", () => {
    const s = limited({ maxMemory: 10 * GiB });
    const { state, effects } = run([req("a", 0, 1000, 6 * GiB), req("b", 1, 1000, 6 * GiB), req("c", 0, 2000, 6 * GiB)], s);
    expect(kinds(effects)).toEqual(["grant:a", "refuse:b", "grant:c"]);
    expect(effects[1]).toMatchObject({
      reason: "limit",
      message: "your sessions on this node would be allowed 12 GiB of memory together; the most one user may have is 10 GiB: stop one, or ask for less with --memory",
    });
    const after = run([{ type: "confirmed", sessionId: "a" }, { type: "ended", sessionId: "a" }, req("d", 0, 1000, 6 * GiB)], state);
    expect(kinds(after.effects)).toEqual(["grant:d"]);
  });

  test("exactly at the cap is allowed", () => {
    const { effects } = run([req("a", 0, 1000, 5 * GiB), req("b", 0, 1000, 5 * GiB)], limited({ maxMemory: 10 * GiB }));
    expect(kinds(effects)).toEqual(["grant:a", "grant:b"]);
  });

  test("config: maxMemoryPerUser is a size or a share of the node; none by default", () => {
    expect(defaultExecutorConfig().maxMemoryPerUser).toBeNull();
    expect(parseExecutorConfig({ maxMemoryPerUser: "64g" }, "c.yml").maxMemoryPerUser).toEqual({ bytes: 64 * GiB });
    expect(parseExecutorConfig({ maxMemoryPerUser: "75%" }, "c.yml").maxMemoryPerUser).toEqual({ percent: 75 });
    expect(() => parseExecutorConfig({ maxMemoryPerUser: "lots" }, "c.yml")).toThrow("c.yml: maxMemoryPerUser");
  });
});

describe("a session's memory by default", () => {
  test.each([8 * GiB, 64 * GiB, 2048 * GiB])("at most half of a %p-byte node", (node) => {
    const memory = memoryLimitFor(defaultExecutorConfig(), node, null);
    expect(memory).toBeGreaterThan(0);
    expect(memory).toBeLessThanOrEqual(node / 2);
  });
});
