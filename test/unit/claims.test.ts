/** The claim state machine, event by event: what it grants, queues, refuses, adopts and frees. */
import { describe, expect, test } from "bun:test";
import { claimsByGpu, freeGpus, initialClaims, placesOf, step, type ClaimEffect, type ClaimEvent, type ClaimState, type Place } from "../../src/executor/claims/claims.ts";

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

describe("places outlive a restart", () => {
  const place = (sessionId: string, count: number, uid = 1000): Place => ({ sessionId, uid, count });
  /** A node just restarted with `places` written down, all 4 GPUs busy with a running session that was adopted. */
  const restarted = (places: Place[], busy = gpus) => {
    let s = step(initialClaims(), { type: "restore", places }).state;
    s = step(s, { type: "inventory", total: gpus.length, usable: gpus, error: null }).state;
    return step(s, { type: "listing", since: s.epoch, containers: busy.length ? [{ sessionId: "busy", uid: 1, gpus: [...busy], running: true }] : [] }).state;
  };
  const back = (sessionId: string, count: number, p: string, uid = 1000): ClaimEvent => ({ type: "request", sessionId, uid, count, noWait: false, place: p });
  const end = (sessionId: string): ClaimEvent => ({ type: "ended", sessionId });

  test("what is written down: reservations (granted, no container yet) first, then the queue; not confirmed claims", () => {
    const { state } = run([req("a", 2), req("b", 1), { type: "confirmed", sessionId: "b" }, req("c", 2), req("d", 3)]);
    expect(placesOf(state)).toEqual([place("a", 2), place("c", 2), place("d", 3)]);
  });

  test.each([
    ["callers back in their order are granted in it", [back("A", 1, "a"), back("B", 1, "b"), end("busy")], ["queued:A", "queued:B", "grant:A", "grant:B"]],
    [
      "callers back out of order are still granted in the old order",
      [back("B", 1, "b"), back("A", 1, "a"), end("busy")],
      ["queued:B", "queued:A", "grant:A", "grant:B"],
    ],
    ["a request made after the restart waits behind every place, taken back or not", [req("new", 1), back("A", 1, "a"), end("busy")], ["queued:new", "queued:A", "grant:A", "queued:new"]],
    ["a vacant head holds everyone back, though GPUs are free", [back("B", 1, "b"), end("busy")], ["queued:B"]],
    ["after the grace period the vacant places go and the rest move up", [req("new", 1), end("busy"), { type: "grace-over" }], ["queued:new", "lapsed:a", "lapsed:b", "grant:new"]],
    [
      "a caller back too late waits as a new request, behind those who came after the restart",
      [req("new", 1), { type: "grace-over" }, back("A", 1, "a"), end("busy")],
      ["queued:new", "lapsed:a", "lapsed:b", "queued:new", "queued:A", "grant:new", "grant:A"],
    ],
  ] as const)("%s", (_, events, expected) => {
    const { effects } = run([...events], restarted([place("a", 1), place("b", 1)]));
    expect(kinds(effects.filter((e) => e.type !== "returned"))).toEqual([...expected]);
  });

  test.each([
    ["its own user, still vacant: the place is back", back("A", 1, "a"), { type: "returned", sessionId: "A", place: "a", kept: true }],
    ["another user's place: refused, never queued", back("X", 1, "a", 2000), { type: "refuse", sessionId: "X", reason: "ticket", message: expect.any(String) }],
    ["a place no restart kept: a new request", back("N", 1, "zz"), { type: "returned", sessionId: "N", place: "zz", kept: false }],
  ] as const)("a request naming a place: %s", (_, event, expected) => {
    expect(run([event], restarted([place("a", 1)])).effects[0]).toEqual(expected);
  });

  test("a ticket keeps a place once: sent again after its place was taken, it is refused", () => {
    const { effects } = run([back("A", 1, "a"), back("A2", 1, "a")], restarted([place("a", 1)]));
    expect(effects.at(-1)).toMatchObject({ type: "refuse", sessionId: "A2", reason: "ticket", message: "this queue ticket was already used; it keeps a place once" });
  });

  test("a place whose session turns out to run (adopted) is not kept vacant", () => {
    let s = step(initialClaims(), { type: "restore", places: [place("a", 1), place("b", 1)] }).state;
    s = step(s, { type: "inventory", total: 4, usable: gpus, error: null }).state;
    const { state, effects } = step(s, { type: "listing", since: s.epoch, containers: [{ sessionId: "a", uid: 1000, gpus: ["G0"], running: true }] });
    expect(kinds(effects)).toEqual(["adopt:a"]);
    expect(state.queue.map((w) => `${w.sessionId}${w.vacant ? " (vacant)" : ""}`)).toEqual(["b (vacant)"]);
  });

  test("restored places keep their order and come before requests already waiting; the same place twice counts once", () => {
    const s = step(run([req("a", 4), req("new", 1)]).state, { type: "restore", places: [place("p", 1), place("q", 2), place("p", 1), place("new", 1)] }).state;
    expect(s.queue.map((w) => w.sessionId)).toEqual(["p", "q", "new"]);
    expect(placesOf(s)).toEqual([place("a", 4), place("p", 1), place("q", 2), place("new", 1)]);
  });

  test("a per-user limit counts the user's vacant places, and does not stop a caller from taking its own back", () => {
    let s = step(initialClaims({ maxQueued: 1, maxGpus: Infinity }), { type: "restore", places: [place("a", 1)] }).state;
    s = step(s, { type: "inventory", total: 4, usable: gpus, error: null }).state;
    s = step(s, { type: "listing", since: s.epoch, containers: [] }).state;
    expect(kinds(run([req("extra", 1), back("A", 1, "a")], s).effects)).toEqual(["refuse:extra", "returned:A", "grant:A"]);
  });
});

describe("draining before a restart", () => {
  test("nothing more is granted and new requests are turned away; what waits stays written down", () => {
    const drained = run([req("a", 4), req("b", 2), { type: "drain" }, { type: "confirmed", sessionId: "a" }, { type: "ended", sessionId: "a" }, req("c", 1)]);
    expect(kinds(drained.effects)).toEqual(["grant:a", "queued:b", "refuse:c"]);
    expect(drained.effects.at(-1)).toMatchObject({ reason: "restarting" });
    expect(placesOf(drained.state)).toEqual([{ sessionId: "b", uid: 1000, count: 2 }]);
  });
});
