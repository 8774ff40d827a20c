import type { Gpu } from "../gpu/types.ts";

/**
 * Which session holds which GPU. Docker labels are the source of truth for sessions that have a container; claims
 * made for a container not yet created are held here as pending until Docker shows it.
 */
export class GpuLedger {
  private fromDocker = new Map<string, string>();
  private pending = new Map<string, string[]>();

  /** Replaces what Docker says is claimed (after a listing of managed containers). */
  rebuild(containers: Array<{ sessionId: string; gpus: string[] }>): void {
    this.fromDocker = new Map();
    for (const c of containers) for (const uuid of c.gpus) this.fromDocker.set(uuid, c.sessionId);
  }

  reserve(sessionId: string, gpus: string[]): void {
    this.pending.set(sessionId, gpus);
  }

  /** The container exists now (its labels carry the claim), or the attempt failed: drop the pending claim. */
  settle(sessionId: string): void {
    this.pending.delete(sessionId);
  }

  /** The session ended: its GPUs are free at once, before Docker's next listing. */
  release(sessionId: string): void {
    this.pending.delete(sessionId);
    for (const [uuid, holder] of this.fromDocker) if (holder === sessionId) this.fromDocker.delete(uuid);
  }

  /** Records a claim Docker now shows, so a new claim never races the next listing. */
  confirm(sessionId: string, gpus: string[]): void {
    for (const uuid of gpus) this.fromDocker.set(uuid, sessionId);
    this.pending.delete(sessionId);
  }

  claims(): Map<string, string> {
    const all = new Map(this.fromDocker);
    for (const [sessionId, gpus] of this.pending) for (const uuid of gpus) all.set(uuid, sessionId);
    return all;
  }

  isPending(sessionId: string): boolean {
    return this.pending.has(sessionId);
  }
}

/** The GPUs that may be handed out now: usable, unclaimed, in index order. Pure. */
export function freeGpus(usable: Gpu[], claims: ReadonlyMap<string, string>): string[] {
  return usable.filter((g) => g.uuid !== null && !claims.has(g.uuid)).map((g) => g.uuid!);
}

/** The GPUs for a request of `count`, lowest indexes first; null when they do not fit. Pure. */
export function planClaim(free: string[], count: number): string[] | null {
  return count <= free.length ? free.slice(0, count) : null;
}

export interface Waiter {
  sessionId: string;
  gpus: number;
  grant(gpus: string[]): void;
  notify(position: number, free: number): void;
}

/**
 * A strict FIFO queue per node: only the head may be granted, so a small request never overtakes a large one and
 * nobody waits forever. `pump` grants as many heads as fit.
 */
export class FairQueue {
  private waiters: Waiter[] = [];

  get length(): number {
    return this.waiters.length;
  }

  position(sessionId: string): number {
    return this.waiters.findIndex((w) => w.sessionId === sessionId) + 1;
  }

  enqueue(waiter: Waiter): void {
    this.waiters.push(waiter);
  }

  remove(sessionId: string): boolean {
    const before = this.waiters.length;
    this.waiters = this.waiters.filter((w) => w.sessionId !== sessionId);
    return this.waiters.length !== before;
  }

  /** Grants heads while they fit; `take` claims and returns the GPUs for a head, or null. Then tells the rest. */
  pump(take: (count: number) => string[] | null, free: () => number): void {
    while (this.waiters.length > 0) {
      const head = this.waiters[0]!;
      const gpus = take(head.gpus);
      if (!gpus) break;
      this.waiters.shift();
      head.grant(gpus);
    }
    const available = free();
    this.waiters.forEach((w, i) => w.notify(i + 1, available));
  }

  ids(): string[] {
    return this.waiters.map((w) => w.sessionId);
  }
}
