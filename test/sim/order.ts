/**
 * The queue's order as an observer follows it from the claim state machine's events and effects, with the checks on
 * it: only the head is granted (strict FIFO); nothing with GPUs is granted while someone waits; places restored after
 * a restart are never granted while vacant, and are taken back only by their own user, and only once.
 */
import type { ClaimEffect, ClaimEvent } from "../../src/executor/claims/claims.ts";

export class OrderCheck {
  /** Who waits, in order: session IDs, and restored places not taken back yet (by their old session ID). */
  readonly queue: string[] = [];
  /** The places the `restore` at start-up brought back, in its order (null: there was none). */
  restored: string[] | null = null;
  private placeOwner = new Map<string, number>();
  /** Restored places whose callers have not come back (nor been given up). */
  private vacant = new Set<string>();

  constructor(
    private readonly fail: (message: string) => void,
    /** Places taken back so far, over every executor incarnation of the run. */
    private readonly taken: Set<string>,
  ) {}

  private drop(id: string): void {
    const at = this.queue.indexOf(id);
    if (at !== -1) this.queue.splice(at, 1);
  }

  see(event: ClaimEvent, effects: readonly ClaimEffect[]): void {
    if (event.type === "restore") {
      const fresh = event.places.filter((p) => p.count > 0 && !this.queue.includes(p.sessionId));
      this.restored = fresh.map((p) => p.sessionId);
      for (const p of fresh) {
        this.placeOwner.set(p.sessionId, p.uid);
        this.vacant.add(p.sessionId);
      }
      this.queue.unshift(...this.restored);
    }
    if (event.type === "cancel") this.drop(event.sessionId);
    for (const e of effects) {
      if (e.type === "returned" && e.kept) this.takeBack(event, e.place, e.sessionId);
      if (e.type === "queued" && !this.queue.includes(e.sessionId)) this.queue.push(e.sessionId);
      if (e.type === "refuse" || e.type === "lapsed" || e.type === "adopt") {
        this.drop(e.sessionId);
        this.vacant.delete(e.sessionId);
      }
      if (e.type === "grant") {
        if (this.vacant.has(e.sessionId)) this.fail(`the vacant place of ${e.sessionId} was granted, though nobody came back for it`);
        const at = this.queue.indexOf(e.sessionId);
        if (at > 0) this.fail(`FIFO: ${e.sessionId} granted at position ${at + 1}, behind ${this.queue.slice(0, at).join(", ")}`);
        if (at === 0) this.queue.shift();
        if (at === -1 && e.gpus.length > 0 && this.queue.length > 0) this.fail(`${e.sessionId} granted ahead of ${this.queue.length} waiting (${this.queue.slice(0, 3).join(", ")})`);
      }
    }
  }

  private takeBack(event: ClaimEvent, place: string, sessionId: string): void {
    const owner = this.placeOwner.get(place);
    if (event.type !== "request" || owner === undefined) return this.fail(`place ${place} taken back though it was never restored`);
    if (owner !== event.uid) this.fail(`place ${place} of uid ${owner} taken by uid ${event.uid}`);
    if (this.taken.has(place)) this.fail(`place ${place} taken back twice`);
    this.taken.add(place);
    this.vacant.delete(place);
    const at = this.queue.indexOf(place);
    if (at === -1) this.fail(`place ${place} taken back after it left the queue`);
    else this.queue[at] = sessionId;
  }
}
