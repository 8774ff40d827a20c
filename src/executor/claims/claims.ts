/**
 * Every decision about GPU claims and the queue, in one pure, synchronous state machine: `step(state, event)` returns
 * the next state and the effects to carry out. The executor feeds it what happened (a request arrived, a container
 * exists, a container is gone, a listing of Docker's containers came back, the inventory changed, a caller went
 * away) and does the I/O the effects ask for outside it. No `await` can fall between reading the claims and the
 * write that depends on them, because nothing here awaits.
 *
 * Docker's labels are the source of truth for sessions that have a container; a claim made for a container not yet
 * created is held here as `reserved` until the container exists (`confirmed`). Listings race with everything else,
 * so each claim and each end carries the epoch (event count) at which it happened, and a listing only overrules
 * what happened before it was asked for.
 *
 * The order of requests outlives the executor: `placesOf` is what the executor writes down at every change, and at the
 * next start a `restore` puts those places back at the head of the queue, vacant. A caller that comes back with its
 * ticket (checked by the executor before it gets here) takes its place again; after `grace-over` the places nobody
 * took are given up. A vacant place is never granted, so no request made after the restart overtakes it.
 *
 * Per-user caps (sessions, and the memory their limits add up to) are checked where the slot is taken: a request over
 * a cap is refused when it arrives (counting what its user holds and waits for), and checked again, in the same step
 * that takes the slot, when it is granted (a listing after a restart may have shown more). Refused, not queued: only
 * the user can free a slot of theirs (by stopping a session), and a request waiting on its own user's cap at the head
 * of the strict FIFO would hold up everyone behind it. A 0-GPU session takes a slot too: a hold with no GPUs.
 */

export type { ClaimEffect, ClaimEvent, ClaimState, Hold, Place, UserLimits, Waiting } from "./claim-types.ts";
import type { ClaimEffect, ClaimEvent, ClaimState, Hold, Place, UserLimits, Waiting } from "./claim-types.ts";
import { formatSize } from "../../config/size.ts";

export function initialClaims(limits: Partial<UserLimits> = {}): ClaimState {
  const collections = { holds: new Map(), queue: [], ended: new Map(), returns: new Map() };
  return { limits: { maxQueued: Infinity, maxGpus: Infinity, maxSessions: Infinity, maxMemory: Infinity, ...limits }, ready: false, inventoryKnown: false, total: 0, usable: [], inventoryError: null, ...collections, draining: false, epoch: 0 };
}

/** The state being changed inside one step: the same, with its collections writable. */
type Draft = Omit<ClaimState, "holds" | "queue" | "ended" | "returns"> & { holds: Map<string, Hold>; queue: Waiting[]; ended: Map<string, number>; returns: Map<string, "taken" | "lapsed"> };

const plural = (n: number) => `${n} GPU${n === 1 ? "" : "s"}`;

/** The GPUs nobody holds that may be handed out, lowest index first. */
export function freeGpus(state: Pick<ClaimState, "usable" | "holds">): string[] {
  const held = new Set<string>();
  for (const hold of state.holds.values()) for (const uuid of hold.gpus) held.add(uuid);
  return state.usable.filter((uuid) => !held.has(uuid));
}

/**
 * The order as it must outlive a restart: claims granted but not yet a container (they were ahead of everyone), then
 * the queue, vacant places included. Written down by the executor whenever it changes.
 */
export function placesOf(state: Pick<ClaimState, "holds" | "queue">): Place[] {
  const places: Place[] = [];
  for (const [sessionId, hold] of state.holds) if (hold.stage === "reserved" && hold.gpus.length > 0) places.push({ sessionId, uid: hold.uid, count: hold.gpus.length });
  for (const w of state.queue) if (!w.noWait && w.count > 0) places.push({ sessionId: w.sessionId, uid: w.uid, count: w.count });
  return places;
}

/** GPU uuid -> the session holding it. */
export function claimsByGpu(state: Pick<ClaimState, "holds">): Map<string, string> {
  const claims = new Map<string, string>();
  for (const [sessionId, hold] of state.holds) for (const uuid of hold.gpus) claims.set(uuid, sessionId);
  return claims;
}

function tooLarge(s: Draft, count: number): string | null {
  if (count <= s.usable.length) return null;
  const unusable = s.usable.length < s.total ? ` (${s.usable.length} usable)` : "";
  return `asked for ${plural(count)}, but this node has ${s.total}${unusable}`;
}

/**
 * Why one more session of `memory` bytes would take `uid` past a cap, counting what it holds (and, `withWaiting`,
 * what it waits for), or null. Root administers the node and is not capped.
 */
function overCaps(s: Draft, uid: number, memory: number, withWaiting: boolean): string | null {
  if (uid === 0) return null;
  const mine: Array<{ memory: number }> = [...s.holds.values()].filter((h) => h.uid === uid);
  if (withWaiting) mine.push(...s.queue.filter((w) => w.uid === uid));
  if (mine.length + 1 > s.limits.maxSessions) {
    return `you have ${mine.length} session${mine.length === 1 ? "" : "s"} on this node (running, starting or waiting); the most one user may have is ${s.limits.maxSessions}: stop one first`;
  }
  const total = mine.reduce((n, x) => n + x.memory, memory);
  if (total > s.limits.maxMemory) {
    return `your sessions on this node would be allowed ${formatSize(total)} of memory together; the most one user may have is ${formatSize(s.limits.maxMemory)}: stop one, or ask for less with --memory`;
  }
  return null;
}

/** Takes a request's slot, in this step: a reserved hold and a grant, or a refusal when a cap is now in the way. */
function take(s: Draft, w: Pick<Waiting, "sessionId" | "uid" | "memory">, gpus: string[], effects: ClaimEffect[]): boolean {
  const over = overCaps(s, w.uid, w.memory, false);
  if (over) {
    effects.push({ type: "refuse", sessionId: w.sessionId, reason: "limit", message: over });
    return false;
  }
  s.holds.set(w.sessionId, { uid: w.uid, gpus, stage: "reserved", epoch: s.epoch, memory: w.memory });
  effects.push({ type: "grant", sessionId: w.sessionId, gpus });
  return true;
}

/** Grants heads while they fit; refuses what can never fit or must not wait; tells the rest their place. */
function pump(s: Draft, effects: ClaimEffect[]): void {
  // Sessions without GPUs wait only for the first listing (to count what their users run): they overtake nobody.
  if (s.ready && !s.draining && s.queue.some((w) => w.count === 0)) {
    for (const w of s.queue.filter((w) => w.count === 0)) take(s, w, [], effects);
    s.queue = s.queue.filter((w) => w.count > 0);
  }
  if (s.ready && s.inventoryKnown && !s.draining) {
    let free = freeGpus(s);
    while (s.queue.length > 0) {
      const head = s.queue[0]!;
      // Its caller may still come back within the grace period: nobody behind it goes first.
      if (head.vacant) break;
      const never = s.inventoryError ? `cannot hand out GPUs: ${s.inventoryError}` : tooLarge(s, head.count);
      if (never) {
        s.queue.shift();
        effects.push({ type: "refuse", sessionId: head.sessionId, reason: s.inventoryError ? "no-gpus" : "too-large", message: never });
        continue;
      }
      if (head.count > free.length) break;
      s.queue.shift();
      if (take(s, head, free.slice(0, head.count), effects)) free = free.slice(head.count);
    }
    // A --no-wait request that could not be granted at once is refused rather than left waiting.
    for (const w of s.queue.filter((w) => w.noWait)) {
      effects.push({
        type: "refuse",
        sessionId: w.sessionId,
        reason: "busy",
        message: `not enough free GPUs: ${free.length} free, ${w.count} asked, ${s.queue.indexOf(w)} request(s) waiting ahead`,
      });
    }
    s.queue = s.queue.filter((w) => !w.noWait);
  }
  const freeCount = freeGpus(s).length;
  s.queue.forEach((w, i) => {
    // A 0-GPU request waits for nothing anyone else waits for: it has no place in the line.
    if (w.told === i + 1 || w.vacant || w.count === 0) return;
    s.queue[i] = { ...w, told: i + 1 };
    effects.push({ type: "queued", sessionId: w.sessionId, position: i + 1, free: freeCount });
  });
}

/** Why this request would take its user past a per-user limit, or null. */
function overLimit(s: Draft, e: Extract<ClaimEvent, { type: "request" }>): string | null {
  if (e.uid === 0) return null; // root administers the node
  const caps = overCaps(s, e.uid, e.memory ?? 0, true);
  if (caps) return caps;
  const waiting = s.queue.filter((w) => w.uid === e.uid);
  let gpus = e.count + waiting.reduce((n, w) => n + w.count, 0);
  for (const hold of s.holds.values()) if (hold.uid === e.uid) gpus += hold.gpus.length;
  if (gpus > s.limits.maxGpus) return `this would give you ${plural(gpus)} on this node; the most one user may hold or wait for is ${s.limits.maxGpus}`;
  const wouldWait = e.count === 0 ? !s.ready : s.queue.length > 0 || e.count > freeGpus(s).length || !s.ready;
  if (wouldWait && !e.noWait && waiting.length >= s.limits.maxQueued) {
    return `you already have ${waiting.length} request${waiting.length === 1 ? "" : "s"} waiting on this node (the most one user may have is ${s.limits.maxQueued}); stop one, or wait`;
  }
  return null;
}

/**
 * A request whose ticket names a place: it takes the place back when that place is still vacant (and its user's), is
 * refused when the place was taken already (a ticket works once), and otherwise is a new request. Returns whether the
 * request was dealt with.
 */
function returning(s: Draft, e: Extract<ClaimEvent, { type: "request" }>, place: string, effects: ClaimEffect[]): boolean {
  const at = s.queue.findIndex((w) => w.vacant && w.sessionId === place);
  if (at !== -1 && s.queue[at]!.uid === e.uid) {
    s.queue[at] = { sessionId: e.sessionId, uid: e.uid, count: e.count, noWait: e.noWait, memory: e.memory ?? 0, told: 0 };
    s.returns.set(place, "taken");
    effects.push({ type: "returned", sessionId: e.sessionId, place, kept: true });
    pump(s, effects);
    return true;
  }
  if (at !== -1 || s.returns.get(place) === "taken") {
    effects.push({ type: "refuse", sessionId: e.sessionId, reason: "ticket", message: "this queue ticket was already used; it keeps a place once" });
    return true;
  }
  effects.push({ type: "returned", sessionId: e.sessionId, place, kept: false });
  return false;
}

function request(s: Draft, e: Extract<ClaimEvent, { type: "request" }>, effects: ClaimEffect[]): void {
  if (s.holds.has(e.sessionId) || s.queue.some((w) => w.sessionId === e.sessionId)) return;
  if (s.draining) {
    effects.push({ type: "refuse", sessionId: e.sessionId, reason: "restarting", message: "the executor is restarting; send the request again in a moment" });
    return;
  }
  if (e.place !== undefined && e.count > 0 && returning(s, e, e.place, effects)) return;
  if (s.inventoryKnown && e.count > 0) {
    const never = s.inventoryError ? `cannot hand out GPUs: ${s.inventoryError}` : tooLarge(s, e.count);
    if (never) {
      effects.push({ type: "refuse", sessionId: e.sessionId, reason: s.inventoryError ? "no-gpus" : "too-large", message: never });
      return;
    }
  }
  const limit = overLimit(s, e);
  if (limit) {
    effects.push({ type: "refuse", sessionId: e.sessionId, reason: "limit", message: limit });
    return;
  }
  const waiting = { sessionId: e.sessionId, uid: e.uid, count: e.count, noWait: e.noWait, memory: e.memory ?? 0, told: 0 };
  // Without GPUs it waits for nothing but the first listing; before it, it waits (the caps need what runs).
  if (e.count === 0 && s.ready) {
    take(s, waiting, [], effects);
    return;
  }
  s.queue.push(waiting);
  pump(s, effects);
}

function listing(s: Draft, e: Extract<ClaimEvent, { type: "listing" }>, effects: ClaimEffect[]): void {
  const listed = new Map(e.containers.map((c) => [c.sessionId, c]));
  for (const [sessionId, hold] of s.holds) {
    // Missing from a listing asked for after it was confirmed: the container is not there any more.
    if (hold.stage === "confirmed" && hold.epoch <= e.since && !listed.has(sessionId)) {
      s.holds.delete(sessionId);
      effects.push({ type: "lost", sessionId });
    }
  }
  for (const c of e.containers) {
    if (!c.running || s.holds.has(c.sessionId)) continue;
    // Ended after the listing was asked for: the listing is older than the end, not evidence against it.
    const endedAt = s.ended.get(c.sessionId);
    if (endedAt !== undefined && endedAt > e.since) continue;
    s.holds.set(c.sessionId, { uid: c.uid, gpus: c.gpus, stage: "confirmed", epoch: s.epoch, memory: c.memory ?? 0 });
    effects.push({ type: "adopt", sessionId: c.sessionId, gpus: c.gpus });
    // Its request became this container before the restart: the place it kept is not needed any more.
    const vacant = s.queue.findIndex((w) => w.vacant && w.sessionId === c.sessionId);
    if (vacant !== -1) {
      s.queue.splice(vacant, 1);
      s.returns.set(c.sessionId, "taken");
    }
  }
  for (const [sessionId, endedAt] of s.ended) if (endedAt <= e.since) s.ended.delete(sessionId);
  s.ready = true;
  pump(s, effects);
}

/** The places written down before a restart go back to the head of the queue, vacant, in their order. */
function restore(s: Draft, places: Place[], effects: ClaimEffect[]): void {
  const known = new Set([...s.holds.keys(), ...s.queue.map((w) => w.sessionId), ...s.returns.keys()]);
  const vacant: Waiting[] = [];
  for (const p of places) {
    if (p.count <= 0 || known.has(p.sessionId)) continue;
    known.add(p.sessionId);
    vacant.push({ sessionId: p.sessionId, uid: p.uid, count: p.count, noWait: false, memory: 0, told: 0, vacant: true });
  }
  s.queue = [...vacant, ...s.queue];
  pump(s, effects);
}

function graceOver(s: Draft, effects: ClaimEffect[]): void {
  for (const w of s.queue) {
    if (!w.vacant) continue;
    s.returns.set(w.sessionId, "lapsed");
    effects.push({ type: "lapsed", sessionId: w.sessionId });
  }
  s.queue = s.queue.filter((w) => !w.vacant);
  pump(s, effects);
}

export function step(state: ClaimState, event: ClaimEvent): { state: ClaimState; effects: ClaimEffect[] } {
  const { holds, queue, ended, returns } = state;
  const s: Draft = { ...state, holds: new Map(holds), queue: [...queue], ended: new Map(ended), returns: new Map(returns), epoch: state.epoch + 1 };
  const effects: ClaimEffect[] = [];
  switch (event.type) {
    case "inventory":
      Object.assign(s, { inventoryKnown: true, total: event.total, usable: event.usable, inventoryError: event.error });
      pump(s, effects);
      break;
    case "request":
      request(s, event, effects);
      break;
    case "assigned": {
      const held = claimsByGpu(s);
      const taken = event.gpus.find((uuid) => held.has(uuid) && held.get(uuid) !== event.sessionId);
      if (taken) effects.push({ type: "refuse", sessionId: event.sessionId, reason: "busy", message: `Slurm gave this job GPU ${taken}, which session ${held.get(taken)} still holds` });
      else s.holds.set(event.sessionId, { uid: event.uid, gpus: event.gpus, stage: "reserved", epoch: s.epoch, memory: 0 });
      break;
    }
    case "cancel": {
      const queued = s.queue.findIndex((w) => w.sessionId === event.sessionId);
      if (queued !== -1) s.queue.splice(queued, 1);
      if (s.holds.get(event.sessionId)?.stage === "reserved") s.holds.delete(event.sessionId);
      pump(s, effects);
      break;
    }
    case "confirmed": {
      const hold = s.holds.get(event.sessionId);
      if (hold) s.holds.set(event.sessionId, { ...hold, stage: "confirmed", epoch: s.epoch });
      break;
    }
    case "ended":
      s.holds.delete(event.sessionId);
      s.ended.set(event.sessionId, s.epoch);
      pump(s, effects);
      break;
    case "listing":
      listing(s, event, effects);
      break;
    case "restore":
      restore(s, event.places, effects);
      break;
    case "grace-over":
      graceOver(s, effects);
      break;
    case "drain":
      s.draining = true;
      break;
  }
  return { state: s, effects };
}
