/**
 * A deterministic world for the executor: a virtual clock, a seeded scheduler, and a fake Docker engine and GPU
 * inventory whose every call takes a seeded random time. Each engine call takes effect at one random moment and
 * answers at a later one (a listing can be stale by the time it arrives, as with the real engine).
 */
import { UnavailableError } from "../../src/errors.ts";
import type { Gpu, Inventory } from "../../src/gpu/types.ts";

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  /** The executor incarnation that waits on it; its timers die with it. */
  owner: number | null;
}

export class Scheduler {
  now = 0;
  private timers: Timer[] = [];
  private seq = 0;
  private dead = new Set<number>();
  readonly random: () => number;

  constructor(seed: number) {
    this.random = rng(seed);
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  at(time: number, fn: () => void, owner: number | null = null): void {
    if (owner !== null && this.dead.has(owner)) return;
    this.timers.push({ at: Math.max(time, this.now), seq: this.seq++, fn, owner });
  }

  after(ms: number, fn: () => void, owner: number | null = null): void {
    this.at(this.now + ms, fn, owner);
  }

  sleep(ms: number, owner: number | null = null): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve, owner));
  }

  /** Drops every timer an executor incarnation was waiting on: its process is gone. */
  kill(owner: number): void {
    this.dead.add(owner);
    this.timers = this.timers.filter((t) => t.owner !== owner);
  }

  get idle(): boolean {
    return this.timers.length === 0;
  }

  /** Runs the earliest timer (ties in order of creation), then lets every promise it settled run to its next wait. */
  async step(): Promise<boolean> {
    if (this.timers.length === 0) return false;
    let best = 0;
    for (let i = 1; i < this.timers.length; i++) {
      const t = this.timers[i]!;
      const b = this.timers[best]!;
      if (t.at < b.at || (t.at === b.at && t.seq < b.seq)) best = i;
    }
    const [timer] = this.timers.splice(best, 1);
    this.now = timer!.at;
    timer!.fn();
    await new Promise<void>((resolve) => setImmediate(resolve));
    return true;
  }
}

export interface FakeContainer {
  id: string;
  sessionId: string;
  labels: Record<string, string>;
  gpus: string[];
  state: "created" | "running" | "exited" | "removed";
  exitCode: number | null;
  /** How long it runs once started (ms), and whether it exits at once. */
  holdMs: number;
  waiters: Array<{ owner: number; resolve: (code: number) => void }>;
  created: number;
}

export interface Faults {
  createFails: number;
  startFails: number;
  exitsAtOnce: number;
}

function statusError(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode, json: { message } });
}

/** The Docker engine as the executor sees it, shared by every executor incarnation (containers outlive executors). */
export class FakeEngine {
  readonly containers = new Map<string, FakeContainer>();
  private nextId = 1;
  downFrom = -1;
  downUntil = -1;
  /** Set by the workload: how long the next containers run. */
  holdMs: () => number = () => 100;

  constructor(
    private readonly sim: Scheduler,
    private readonly faults: Faults,
    readonly log: (line: string) => void,
  ) {}

  /** An engine call from one incarnation: takes effect after a random delay, answers after another. */
  call<T>(owner: number, what: string, effect: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.sim.after(
        this.sim.int(0, 8),
        () => {
          let outcome: { ok: true; value: T } | { ok: false; error: unknown };
          if (this.sim.now < this.downUntil) outcome = { ok: false, error: new UnavailableError("Docker is not running on this node") };
          else {
            try {
              outcome = { ok: true, value: effect() };
            } catch (error) {
              outcome = { ok: false, error };
            }
          }
          this.sim.after(this.sim.int(0, 8), () => (outcome.ok ? resolve(outcome.value) : reject(outcome.error)), owner);
        },
        owner,
      );
      void what;
    });
  }

  get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c || c.state === "removed") throw statusError(404, `No such container: ${id}`);
    return c;
  }

  createNow(spec: Record<string, unknown>): string {
    if (this.sim.chance(this.faults.createFails)) throw statusError(500, "fake: create failed");
    const labels = spec.Labels as Record<string, string>;
    const id = `c${String(this.nextId++).padStart(4, "0")}`;
    this.containers.set(id, {
      id,
      sessionId: labels["beaker.session"]!,
      labels,
      gpus: (labels["beaker.gpus"] ?? "").split(",").filter(Boolean),
      state: "created",
      exitCode: null,
      holdMs: this.sim.chance(this.faults.exitsAtOnce) ? 0 : this.holdMs(),
      waiters: [],
      created: this.sim.now,
    });
    return id;
  }

  startNow(id: string): void {
    const c = this.get(id);
    if (c.state === "running") return;
    if (c.state !== "created") throw statusError(409, `container ${id} is ${c.state}`);
    if (this.sim.chance(this.faults.startFails)) throw statusError(500, "fake: start failed");
    c.state = "running";
    this.sim.after(c.holdMs, () => this.exit(c, 0));
  }

  exit(c: FakeContainer, code: number): void {
    if (c.state !== "running" && c.state !== "created") return;
    c.state = "exited";
    c.exitCode = code;
    this.wake(c, code);
  }

  /** A `wait` answers each incarnation that waits, after its own delay. */
  private wake(c: FakeContainer, code: number): void {
    for (const w of c.waiters.splice(0)) this.sim.after(this.sim.int(0, 8), () => w.resolve(code), w.owner);
  }

  /** `docker wait`: the exit code once the container is not running. */
  wait(owner: number, id: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.call(owner, "wait", () => {
        const c = this.get(id);
        // Docker's default condition is "not-running": a container never started answers at once, as an exited one.
        if (c.state === "running") c.waiters.push({ owner, resolve });
        else this.sim.after(0, () => resolve(c.exitCode ?? 0), owner);
      }).catch(reject);
    });
  }

  removeNow(id: string): void {
    const c = this.get(id);
    if (c.state === "running") this.exit(c, 137);
    c.state = "removed";
    this.wake(c, 137);
  }

  /** `docker rm -f` by someone else. */
  removeBehindBack(): FakeContainer | null {
    const running = [...this.containers.values()].filter((c) => c.state === "running");
    if (running.length === 0) return null;
    const victim = running[this.sim.int(0, running.length - 1)]!;
    this.removeNow(victim.id);
    return victim;
  }

  running(): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.state === "running");
  }

  existing(): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.state !== "removed");
  }
}

/** The node's GPUs as a fake nvidia-smi reports them; a GPU may turn unhealthy or busy with a foreign process. */
export class FakeGpus {
  readonly gpus: Gpu[];

  constructor(count: number) {
    this.gpus = Array.from({ length: count }, (_, i) => ({
      index: i,
      uuid: `GPU-${String(i).padStart(8, "0")}`,
      name: "Fake GPU",
      busId: `00000000:0${i}:00.0`,
      memoryTotalMiB: 1000,
      memoryUsedMiB: 0,
      utilization: 0,
      migMode: null,
      migDevices: [],
      processes: [],
      healthy: true,
      error: null,
    }));
  }

  inventory(): Inventory {
    return { gpus: this.gpus.map((g) => ({ ...g, processes: [...g.processes] })), driverVersion: "fake", cudaVersion: null, source: "xml", error: null, note: null };
  }
}
