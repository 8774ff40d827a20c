/** The claim state machine, event by event: what it grants, queues, refuses, adopts and frees. */
import { describe, expect, test } from "bun:test";
import { claimsByGpu, freeGpus, initialClaims, step, type ClaimEffect, type ClaimEvent, type ClaimState } from "../../src/executor/claims.ts";

const gpus = ["G0", "G1", "G2", "G3"];

/** Runs events from a ready 4-GPU node (inventory seen, first listing empty) and collects every effect. */
function run(events: ClaimEvent[], from?: ClaimState): { state: ClaimState; effects: ClaimEffect[] } {
  let state = from ?? ready();
  const effects: ClaimEffect[] = [];
  for (const e of events) {
    const next = step(state, e);
    state = next.state;
    effects.push(...next.effects);
  }
  return { state, effects };
}

function ready(usable = gpus): ClaimState {
  let s = step(initialClaims(), { type: "inventory", total: gpus.length, usable, error: null }).state;
  s = step(s, { type: "listing", since: s.epoch, containers: [] }).state;
  return s;
}

const req = (sessionId: string, count: number, noWait = false, uid = 1000): ClaimEvent => ({ type: "request", sessionId, uid, count, noWait });
const kinds = (effects: ClaimEffect[]) => effects.map((e) => `${e.type}:${"sessionId" in e ? e.sessionId : ""}`);

describe("requests", () => {
  test.each([
    ["fits: granted at once, lowest indexes", [req("a", 2)], ["grant:a"]],
    ["0 GPUs: granted at once, nothing held", [req("a", 0)], ["grant:a"]],
    ["larger than the node: refused, never queued", [req("a", 5)], ["refuse:a"]],
    ["does not fit: queued at position 1", [req("a", 3), req("b", 2)], ["grant:a", "queued:b"]],
    ["--no-wait that does not fit: refused", [req("a", 3), req("b", 2, true)], ["grant:a", "refuse:b"]],
    ["a small request never overtakes a waiting large one", [req("a", 3), req("b", 2), req("c", 1)], ["grant:a", "queued:b", "queued:c"]],
  ] as const)("%s", (_, events, expected) => {
    expect(kinds(run([...events]).effects)).toEqual([...expected]);
  });

  test("grants take the lowest free indexes", () => {
    const { effects } = run([req("a", 1), req("b", 2)]);
    expect(effects).toContainEqual({ type: "grant", sessionId: "b", gpus: ["G1", "G2"] });
  });

  test("too large names the node's size and how many are usable", () => {
    const { effects } = run([req("a", 4)], ready(["G0", "G1", "G2"]));
    expect(effects).toEqual([{ type: "refuse", sessionId: "a", reason: "too-large", message: "asked for 4 GPUs, but this node has 4 (3 usable)" }]);
  });

  test("a broken inventory refuses GPU requests, not CPU-only ones", () => {
    const s = step(ready(), { type: "inventory", total: 0, usable: [], error: "driver not loaded" }).state;
    const { effects } = run([req("a", 1), req("b", 0)], s);
    expect(kinds(effects)).toEqual(["refuse:a", "grant:b"]);
    expect(effects[0]).toMatchObject({ reason: "no-gpus", message: "cannot hand out GPUs: driver not loaded" });
  });
});

describe("the queue moves in order", () => {
  test("ending a session grants the head, then the next that fits; positions are told once each", () => {
    const { state, effects } = run([req("a", 3), req("b", 2), req("c", 1), { type: "confirmed", sessionId: "a" }, { type: "ended", sessionId: "a" }]);
    expect(kinds(effects)).toEqual(["grant:a", "queued:b", "queued:c", "grant:b", "grant:c"]);
    expect(state.queue).toEqual([]);
    expect(claimsByGpu(state)).toEqual(new Map([["G0", "b"], ["G1", "b"], ["G2", "c"]]));
  });

  test("leaving the queue moves the others up", () => {
    const { effects } = run([req("a", 4), req("b", 1), req("c", 1), { type: "cancel", sessionId: "b" }]);
    expect(effects.at(-1)).toEqual({ type: "queued", sessionId: "c", position: 1, free: 0 });
  });

  test("a cancelled reservation frees its GPUs; a confirmed claim is freed only by its end", () => {
    const { state } = run([req("a", 2), req("b", 2), { type: "confirmed", sessionId: "b" }, { type: "cancel", sessionId: "a" }, { type: "cancel", sessionId: "b" }]);
    expect(freeGpus(state)).toEqual(["G0", "G1"]);
  });

  test("a waiting request that can no longer fit (GPUs turned unhealthy) is refused, not left at the head", () => {
    let { state } = run([req("a", 4), req("b", 4)]);
    const next = step(state, { type: "inventory", total: 4, usable: ["G0", "G1", "G2"], error: null });
    state = next.state;
    expect(kinds(next.effects)).toEqual(["refuse:b"]);
    expect(state.queue).toEqual([]);
  });

  test("nothing is granted before the first listing says what runs", () => {
    const s = step(initialClaims(), { type: "inventory", total: 4, usable: gpus, error: null }).state;
    const queued = run([req("new", 2)], s);
    expect(kinds(queued.effects)).toEqual(["queued:new"]);
    const listed = step(queued.state, { type: "listing", since: queued.state.epoch, containers: [{ sessionId: "old", uid: 1000, gpus: ["G0", "G1"], running: true }] });
    expect(listed.effects).toEqual([
      { type: "adopt", sessionId: "old", gpus: ["G0", "G1"] },
      { type: "grant", sessionId: "new", gpus: ["G2", "G3"] },
    ]);
  });
});

describe("listings race with everything else", () => {
  test("a claim confirmed after the listing was asked for is kept though the listing misses it", () => {
    const s = run([req("a", 1)]).state;
    const since = s.epoch;
    const confirmed = step(s, { type: "confirmed", sessionId: "a" }).state;
    const { state, effects } = step(confirmed, { type: "listing", since, containers: [] });
    expect(effects).toEqual([]);
    expect(claimsByGpu(state).get("G0")).toBe("a");
  });

  test("a confirmed claim missing from a later listing is lost and freed", () => {
    const s = run([req("a", 1), { type: "confirmed", sessionId: "a" }]).state;
    const { state, effects } = step(s, { type: "listing", since: s.epoch, containers: [] });
    expect(effects).toEqual([{ type: "lost", sessionId: "a" }]);
    expect(freeGpus(state)).toEqual(gpus);
  });

  test("a session that ended after the listing was asked for is not adopted back from it", () => {
    const s = run([req("a", 1), { type: "confirmed", sessionId: "a" }]).state;
    const since = s.epoch;
    const ended = step(s, { type: "ended", sessionId: "a" }).state;
    const { state, effects } = step(ended, { type: "listing", since, containers: [{ sessionId: "a", uid: 1000, gpus: ["G0"], running: true }] });
    expect(effects).toEqual([]);
    expect(freeGpus(state)).toEqual(gpus);
  });

  test("a container still running after its end (seen by a newer listing) is adopted: Docker is the truth", () => {
    const ended = run([req("a", 1), { type: "confirmed", sessionId: "a" }, { type: "ended", sessionId: "a" }]).state;
    const { effects } = step(ended, { type: "listing", since: ended.epoch, containers: [{ sessionId: "a", uid: 1000, gpus: ["G0"], running: true }] });
    expect(effects).toEqual([{ type: "adopt", sessionId: "a", gpus: ["G0"] }]);
  });

  test("reservations survive any listing; exited leftovers are not adopted", () => {
    const s = run([req("a", 1)]).state;
    const { state, effects } = step(s, { type: "listing", since: s.epoch, containers: [{ sessionId: "old", uid: 1000, gpus: ["G1"], running: false }] });
    expect(effects).toEqual([]);
    expect(claimsByGpu(state)).toEqual(new Map([["G0", "a"]]));
  });
});

describe("per-user limits", () => {
  const limited = (maxQueued: number, maxGpus: number) => {
    let s = step(initialClaims({ maxQueued, maxGpus }), { type: "inventory", total: 4, usable: gpus, error: null }).state;
    s = step(s, { type: "listing", since: s.epoch, containers: [] }).state;
    return s;
  };
  test("a user may have only so many requests waiting; others still queue", () => {
    const { effects } = run([req("a", 4, false, 1), req("b", 1, false, 2), req("c", 1, false, 2), req("d", 1, false, 3)], limited(1, Infinity));
    expect(kinds(effects)).toEqual(["grant:a", "queued:b", "refuse:c", "queued:d"]);
    expect(effects.find((e) => e.type === "refuse")).toMatchObject({ reason: "limit", message: expect.stringContaining("the most one user may have is 1") });
  });
  test("a user may hold (and wait for) only so many GPUs", () => {
    const { effects } = run([req("a", 2, false, 1), req("b", 1, false, 1), req("c", 1, false, 2)], limited(8, 2));
    expect(kinds(effects)).toEqual(["grant:a", "refuse:b", "grant:c"]);
    expect(effects[1]).toMatchObject({ reason: "limit", message: "this would give you 3 GPUs on this node; the most one user may hold or wait for is 2" });
  });
});
