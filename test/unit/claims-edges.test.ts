/**
 * The claim state machine at its edges (mutation testing, issue 27): exact messages and boundaries, caps at arrival and
 * at grant, what a listing keeps, Slurm's assignments, cancels, and what is written down to outlive a restart.
 */
import { describe, expect, test } from "bun:test";
import { freeGpus, initialClaims, placesOf, step, type ClaimEffect, type ClaimEvent, type ClaimState, type UserLimits } from "../../src/executor/claims/claims.ts";

const gpus = ["G0", "G1", "G2", "G3"];
const GiB = 1024 ** 3;

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

/** Inventory seen (`usable` of `total`), but no listing yet: nothing is granted. */
const unlisted = (limits: Partial<UserLimits> = {}, usable = gpus, total = gpus.length) =>
  step(initialClaims(limits), { type: "inventory", total, usable, error: null }).state;
const listed = (s: ClaimState, containers: Extract<ClaimEvent, { type: "listing" }>["containers"] = []) => step(s, { type: "listing", since: s.epoch, containers }).state;
const ready = (limits: Partial<UserLimits> = {}, usable = gpus, total = gpus.length) => listed(unlisted(limits, usable, total));

const req = (sessionId: string, count: number, o: { uid?: number; noWait?: boolean; memory?: number; place?: string } = {}): ClaimEvent => ({
  type: "request",
  sessionId,
  uid: o.uid ?? 1000,
  count,
  noWait: o.noWait ?? false,
  ...(o.memory !== undefined ? { memory: o.memory } : {}),
  ...(o.place !== undefined ? { place: o.place } : {}),
});
const end = (sessionId: string): ClaimEvent => ({ type: "ended", sessionId });
const running = (sessionId: string, uid: number, g: string[], memory?: number) => ({ sessionId, uid, gpus: g, running: true, ...(memory !== undefined ? { memory } : {}) });
const kinds = (effects: ClaimEffect[]) => effects.map((e) => `${e.type}:${"sessionId" in e ? e.sessionId : ""}`);
const refusal = (effects: ClaimEffect[]) => effects.find((e) => e.type === "refuse");

describe("messages name the numbers exactly", () => {
  test.each([
    ["one GPU on a node with none usable", req("a", 1), ready({}, [], 1), "asked for 1 GPU, but this node has 1 (0 usable)"],
    ["more than the node, every GPU usable", req("a", 5), ready(), "asked for 5 GPUs, but this node has 4"],
  ] as const)("too large: %s", (_, event, from, message) => {
    expect(run([event], from).effects).toEqual([{ type: "refuse", sessionId: "a", reason: "too-large", message }]);
  });

  test("exactly the usable GPUs fits", () => {
    expect(run([req("a", 3)], ready({}, ["G0", "G1", "G2"])).effects).toEqual([{ type: "grant", sessionId: "a", gpus: ["G0", "G1", "G2"] }]);
  });

  test("one session held: the cap's message says so in the singular", () => {
    const { effects } = run([req("a", 0), req("b", 0)], ready({ maxSessions: 1 }));
    expect(refusal(effects)?.message).toBe("you have 1 session on this node (running, starting or waiting); the most one user may have is 1: stop one first");
  });

  test.each([
    [1, "you already have 1 request waiting on this node (the most one user may have is 1); stop one, or wait"],
    [2, "you already have 2 requests waiting on this node (the most one user may have is 2); stop one, or wait"],
  ])("the waiting cap of %p", (maxQueued, message) => {
    const waits = Array.from({ length: maxQueued }, (_, i) => req(`w${i}`, 1));
    const { effects } = run([req("a", 4, { uid: 1 }), ...waits, req("x", 1)], ready({ maxQueued }));
    expect(effects.at(-1)).toEqual({ type: "refuse", sessionId: "x", reason: "limit", message });
  });

  test.each([
    ["nothing waiting ahead", [req("a", 3), req("n", 2, { noWait: true })], "not enough free GPUs: 1 free, 2 asked, 0 request(s) waiting ahead"],
    ["one waiting ahead", [req("a", 3), req("b", 2), req("n", 1, { noWait: true })], "not enough free GPUs: 1 free, 1 asked, 1 request(s) waiting ahead"],
  ] as const)("--no-wait refused: %s", (_, events, message) => {
    expect(run([...events], ready()).effects.at(-1)).toEqual({ type: "refuse", sessionId: "n", reason: "busy", message });
  });

  test("a queued request is told how many GPUs are free", () => {
    expect(run([req("a", 3), req("b", 2)], ready()).effects.at(-1)).toEqual({ type: "queued", sessionId: "b", position: 1, free: 1 });
  });

  test.each([
    ["no GPUs any more: no-gpus", { total: 0, usable: [], error: "driver gone" }, "no-gpus", "cannot hand out GPUs: driver gone"],
    ["fewer usable than it asks: too-large", { total: 4, usable: ["G0"], error: null }, "too-large", "asked for 2 GPUs, but this node has 4 (1 usable)"],
  ] as const)("a waiting head refused when the inventory changes: %s", (_, inv, reason, message) => {
    const s = run([req("a", 4), req("b", 2)], ready()).state;
    expect(step(s, { type: "inventory", ...inv, usable: [...inv.usable] }).effects).toEqual([{ type: "refuse", sessionId: "b", reason, message }]);
  });
});

describe("caps at arrival", () => {
  test("GPUs a user waits for count toward its GPU cap", () => {
    const { effects } = run([req("x", 4, { uid: 0 }), req("b", 2), req("c", 1)], ready({ maxGpus: 2 }));
    expect(kinds(effects)).toEqual(["grant:x", "queued:b", "refuse:c"]);
  });

  test("root is capped by nothing, GPUs and waiting included", () => {
    const { effects } = run([req("a", 4, { uid: 0 }), req("b", 2, { uid: 0 }), req("c", 2, { uid: 0 })], ready({ maxGpus: 1, maxQueued: 1 }));
    expect(kinds(effects)).toEqual(["grant:a", "queued:b", "queued:c"]);
  });

  test("other users' waiting requests do not count toward my sessions", () => {
    const { effects } = run([req("x", 4, { uid: 1 }), req("y", 1, { uid: 2 }), req("a", 1)], ready({ maxSessions: 1 }));
    expect(kinds(effects)).toEqual(["grant:x", "queued:y", "queued:a"]);
  });

  test("over the memory cap with every GPU busy: refused when it arrives, not queued", () => {
    const { effects } = run([req("x", 4, { uid: 1 }), req("a", 0, { memory: 6 * GiB }), req("b", 1, { memory: 6 * GiB })], ready({ maxMemory: 10 * GiB }));
    expect(kinds(effects)).toEqual(["grant:x", "grant:a", "refuse:b"]);
  });

  test.each([
    ["a request that would wait behind others counts", ready({ maxQueued: 1 }), [req("x", 3, { uid: 1 }), req("w", 2), req("a", 1)], "grant:x,queued:w,refuse:a", "limit"],
    ["a 0-GPU request after the first listing waits for nothing", ready({ maxQueued: 1 }), [req("x", 4, { uid: 1 }), req("w", 1), req("a", 0)], "grant:x,queued:w,grant:a", null],
    ["a 0-GPU request before the first listing waits", unlisted({ maxQueued: 1 }), [req("w", 1), req("a", 0)], "queued:w,refuse:a", "limit"],
    ["--no-wait never waits: refused as busy, not over the cap", ready({ maxQueued: 1 }), [req("x", 4, { uid: 1 }), req("w", 1), req("a", 1, { noWait: true })], "grant:x,queued:w,refuse:a", "busy"],
  ] as const)("the waiting cap: %s", (_, from, events, expected, reason) => {
    const { effects } = run([...events], from);
    expect(kinds(effects).join(",")).toBe(expected);
    expect(refusal(effects)?.reason ?? null).toBe(reason);
  });
});

describe("caps at grant", () => {
  test("a listing after a restart leaves room for one: the first in line gets it", () => {
    const s = run([req("a", 1), req("b", 1)], unlisted({ maxSessions: 3 })).state;
    const { effects } = step(s, { type: "listing", since: s.epoch, containers: [running("x", 1000, []), running("y", 1000, [])] });
    expect(kinds(effects)).toEqual(["adopt:x", "adopt:y", "grant:a", "refuse:b"]);
  });

  test("a head refused at grant leaves its GPUs to the next: lowest indexes still", () => {
    const s = run([req("a", 1), req("b", 1, { uid: 2000 })], unlisted({ maxSessions: 1 })).state;
    const { effects } = step(s, { type: "listing", since: s.epoch, containers: [running("x", 1000, [])] });
    expect(effects.slice(1)).toEqual([expect.objectContaining({ type: "refuse", sessionId: "a", reason: "limit" }), { type: "grant", sessionId: "b", gpus: ["G0"] }]);
  });

  test("root's requests are granted whatever the listing shows it runs", () => {
    const s = run([req("a", 1, { uid: 0 })], unlisted({ maxSessions: 1 })).state;
    expect(kinds(step(s, { type: "listing", since: s.epoch, containers: [running("x", 0, [])] }).effects)).toEqual(["adopt:x", "grant:a"]);
  });

  test("an adopted container's memory counts toward its user's cap", () => {
    const s = listed(unlisted({ maxMemory: 10 * GiB }), [running("x", 1000, [], 8 * GiB)]);
    expect(kinds(run([req("a", 0, { memory: 4 * GiB }), req("b", 0, { memory: 2 * GiB })], s).effects)).toEqual(["refuse:a", "grant:b"]);
  });

  test("before the first listing, 0-GPU and GPU requests both wait; the listing grants each what it asked", () => {
    const s = run([req("g", 1), req("z", 0)], unlisted()).state;
    expect(step(s, { type: "listing", since: s.epoch, containers: [] }).effects).toEqual([
      { type: "grant", sessionId: "z", gpus: [] },
      { type: "grant", sessionId: "g", gpus: ["G0"] },
    ]);
  });
});

describe("the order of events", () => {
  test("a request sent twice is dealt with once, held or waiting", () => {
    const { effects } = run([req("a", 4), req("b", 1), req("a", 1), req("b", 1)], ready());
    expect(kinds(effects)).toEqual(["grant:a", "queued:b"]);
  });

  test("before any inventory a request waits, then is refused as too large", () => {
    const s = listed(initialClaims());
    const early = run([req("a", 5), req("b", 1)], s);
    expect(early.effects).toEqual([
      { type: "queued", sessionId: "a", position: 1, free: 0 },
      { type: "queued", sessionId: "b", position: 2, free: 0 },
    ]);
    expect(kinds(step(early.state, { type: "inventory", total: 4, usable: gpus, error: null }).effects)).toEqual(["refuse:a", "grant:b"]);
  });

  test("a broken inventory refuses a GPU request when it arrives, before the first listing too", () => {
    const s = step(initialClaims(), { type: "inventory", total: 0, usable: [], error: "driver gone" }).state;
    expect(run([req("a", 1)], s).effects).toEqual([{ type: "refuse", sessionId: "a", reason: "no-gpus", message: "cannot hand out GPUs: driver gone" }]);
  });

  test("draining turns a request away with a message that says to send it again", () => {
    expect(run([{ type: "drain" }, req("a", 1)], ready()).effects).toEqual([
      { type: "refuse", sessionId: "a", reason: "restarting", message: "the executor is restarting; send the request again in a moment" },
    ]);
  });

  test("cancelling a reservation grants those waiting, none of them dropped", () => {
    const { effects } = run([req("a", 4), req("b", 1), req("c", 1), { type: "cancel", sessionId: "a" }], ready());
    expect(kinds(effects)).toEqual(["grant:a", "queued:b", "queued:c", "grant:b", "grant:c"]);
  });

  test("confirming a session the machine no longer holds changes nothing", () => {
    const s = run([req("a", 1), { type: "cancel", sessionId: "a" }, { type: "confirmed", sessionId: "a" }], ready()).state;
    expect([...s.holds.keys()]).toEqual([]);
    expect(freeGpus(s)).toEqual(gpus);
  });

  test("draining: a 0-GPU request waiting for the first listing is not granted by it", () => {
    const s = run([req("z", 0), { type: "drain" }], unlisted()).state;
    expect(step(s, { type: "listing", since: s.epoch, containers: [] }).effects).toEqual([]);
  });
});

describe("listings", () => {
  test("an adopted container missing from a later listing is lost, its GPUs freed", () => {
    const s = listed(unlisted(), [running("x", 1000, ["G2"])]);
    const next = step(s, { type: "listing", since: s.epoch, containers: [] });
    expect(next.effects).toEqual([{ type: "lost", sessionId: "x" }]);
    expect(freeGpus(next.state)).toEqual(gpus);
  });

  test("a confirmed claim the listing shows is kept as it is, not adopted again", () => {
    const s = run([req("a", 1), { type: "confirmed", sessionId: "a" }], ready()).state;
    const next = step(s, { type: "listing", since: s.epoch, containers: [running("a", 1000, ["G0"])] });
    expect(next.effects).toEqual([]);
    expect(next.state.holds.get("a")?.stage).toBe("confirmed");
  });

  test("two listings asked before an end: neither adopts the ended session back; a newer one forgets the end", () => {
    const s = run([req("a", 1), { type: "confirmed", sessionId: "a" }], ready()).state;
    const since = s.epoch;
    const ended = step(s, end("a")).state;
    const shown = [running("a", 1000, ["G0"])];
    const { state, effects } = run([{ type: "listing", since, containers: shown }, { type: "listing", since, containers: shown }], ended);
    expect(effects).toEqual([]);
    expect(state.ended.size).toBe(1);
    expect(step(state, { type: "listing", since: ended.epoch, containers: [] }).state.ended.size).toBe(0);
  });

  test("a restored place that turns out to run: its ticket is used up", () => {
    let s = step(initialClaims(), { type: "restore", places: [{ sessionId: "p", uid: 1000, count: 1 }] }).state;
    s = listed(step(s, { type: "inventory", total: 4, usable: gpus, error: null }).state, [running("p", 1000, ["G0"])]);
    expect(run([req("P", 1, { place: "p" })], s).effects).toEqual([
      { type: "refuse", sessionId: "P", reason: "ticket", message: "this queue ticket was already used; it keeps a place once" },
    ]);
  });
});

describe("restarts", () => {
  const restored = (limits: Partial<UserLimits>, places: Array<{ sessionId: string; uid: number; count: number }>, containers: Extract<ClaimEvent, { type: "listing" }>["containers"]) => {
    const s = step(initialClaims(limits), { type: "restore", places }).state;
    return listed(step(s, { type: "inventory", total: 4, usable: gpus, error: null }).state, containers);
  };

  test("restored places are never told a position; a place of 0 GPUs is not restored", () => {
    let s = step(initialClaims(), { type: "restore", places: [{ sessionId: "z", uid: 1000, count: 0 }, { sessionId: "p", uid: 1000, count: 1 }] });
    expect(s.effects).toEqual([]);
    s = step(step(s.state, { type: "inventory", total: 4, usable: gpus, error: null }).state, { type: "listing", since: 2, containers: [] });
    expect(s.effects).toEqual([]);
    expect(s.state.queue.map((w) => w.sessionId)).toEqual(["p"]);
  });

  test("a 0-GPU request naming a place is granted as a new one; the place stays vacant", () => {
    const s = restored({}, [{ sessionId: "p", uid: 1000, count: 1 }], []);
    const { state, effects } = run([req("Z", 0, { place: "p" })], s);
    expect(effects).toEqual([{ type: "grant", sessionId: "Z", gpus: [] }]);
    expect(state.queue.map((w) => `${w.sessionId}${w.vacant ? " (vacant)" : ""}`)).toEqual(["p (vacant)"]);
  });

  test("a caller taking its place back is checked at grant: its memory counts", () => {
    const s = restored({ maxMemory: 10 * GiB }, [{ sessionId: "p", uid: 1000, count: 1 }], [running("x", 1000, ["G0"], 6 * GiB), running("y", 1, ["G1", "G2", "G3"])]);
    const { effects } = run([req("P", 1, { place: "p", memory: 6 * GiB }), end("y")], s);
    expect(kinds(effects)).toEqual(["returned:P", "queued:P", "refuse:P"]);
  });

  test("what is written down leaves out 0-GPU reservations and --no-wait requests", () => {
    const s = run([req("z", 0), req("n", 1, { noWait: true }), req("g", 1)], unlisted()).state;
    expect(placesOf(s)).toEqual([{ sessionId: "g", uid: 1000, count: 1 }]);
    expect(placesOf(run([req("z", 0)], ready()).state)).toEqual([]);
  });
});

describe("Slurm's assignments", () => {
  test("held as a reservation: written down, freed by a cancel, kept by a listing", () => {
    const s = run([{ type: "assigned", sessionId: "j", uid: 1000, gpus: ["G1"] }], ready()).state;
    expect(placesOf(s)).toEqual([{ sessionId: "j", uid: 1000, count: 1 }]);
    expect(freeGpus(listed(s))).toEqual(["G0", "G2", "G3"]);
    expect(freeGpus(step(s, { type: "cancel", sessionId: "j" }).state)).toEqual(gpus);
  });

  test("a GPU another session holds is refused; the same session assigned again is not", () => {
    const s = run([{ type: "assigned", sessionId: "j", uid: 1000, gpus: ["G1"] }], ready()).state;
    expect(step(s, { type: "assigned", sessionId: "k", uid: 1000, gpus: ["G0", "G1"] }).effects).toEqual([
      { type: "refuse", sessionId: "k", reason: "busy", message: "Slurm gave this job GPU G1, which session j still holds" },
    ]);
    const again = step(s, { type: "assigned", sessionId: "j", uid: 1000, gpus: ["G1", "G2"] });
    expect(again.effects).toEqual([]);
    expect(freeGpus(again.state)).toEqual(["G0", "G3"]);
  });
});
