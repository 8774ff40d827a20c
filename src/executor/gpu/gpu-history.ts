/**
 * The node's GPU samples of the last 24 hours, in fixed memory: one ring of sample times and, per GPU, a byte of
 * utilization and four bytes of memory in use per sample. Sessions read their own GPUs' columns since they started,
 * so the history costs the same whether a node runs one session or sixty-four. The rings grow by doubling as samples
 * come and stop at `capacity` (24 h at the sample interval); after that the oldest sample is overwritten.
 */

/** A GPU's value that nvidia-smi did not give (a failed sample, N/A in MIG mode). */
const noUtil = 0xff;
const noMem = 0xffffffff;

export const historySpanMs = 24 * 3600 * 1000;

export interface GpuMeans {
  last: number | null;
  mean5m: number | null;
  mean1h: number | null;
}

export class GpuHistory {
  readonly columns: ReadonlyMap<string, number>;
  readonly capacity: number;
  private times: Float64Array;
  private util: Uint8Array;
  private mem: Uint32Array;
  /** Where the next sample goes, and how many are held. */
  private head = 0;
  private size = 0;

  /** `uuids`: the node's GPUs (one column each); `intervalMs`: the sample interval, which sets the capacity. */
  constructor(uuids: readonly string[], intervalMs: number, initialSlots = 64) {
    this.columns = new Map(uuids.map((uuid, i) => [uuid, i]));
    this.capacity = Math.ceil(historySpanMs / intervalMs) + 1;
    const slots = Math.min(initialSlots, this.capacity);
    this.times = new Float64Array(slots);
    this.util = new Uint8Array(slots * uuids.length).fill(noUtil);
    this.mem = new Uint32Array(slots * uuids.length).fill(noMem);
  }

  /** Whether this history was made for exactly these GPUs (a changed inventory starts a new one). */
  covers(uuids: readonly string[]): boolean {
    return uuids.length === this.columns.size && uuids.every((u) => this.columns.has(u));
  }

  /** One sample: each GPU's utilization and memory in use, or null where nvidia-smi gave none. */
  record(at: number, values: ReadonlyMap<string, { utilization: number | null; memoryUsedMiB: number | null }>): void {
    if (this.size === this.times.length && this.size < this.capacity) this.grow();
    const slot = this.head;
    const width = this.columns.size;
    this.times[slot] = at;
    for (const [uuid, col] of this.columns) {
      const v = values.get(uuid);
      this.util[slot * width + col] = v?.utilization ?? noUtil;
      this.mem[slot * width + col] = v?.memoryUsedMiB ?? noMem;
    }
    this.head = (slot + 1) % this.times.length;
    this.size = Math.min(this.size + 1, this.times.length);
  }

  /** Doubles the rings (only before they first wrap, so the samples are in order from slot 0). */
  private grow(): void {
    const slots = Math.min(this.times.length * 2, this.capacity);
    const width = this.columns.size;
    const times = new Float64Array(slots);
    times.set(this.times);
    const util = new Uint8Array(slots * width).fill(noUtil);
    util.set(this.util);
    const mem = new Uint32Array(slots * width).fill(noMem);
    mem.set(this.mem);
    Object.assign(this, { times, util, mem });
    this.head = this.size;
  }

  /**
   * A GPU's utilization and memory: the newest sample, and the means over the 5 minutes and the hour before `now`,
   * counting only samples taken at or after `since` (the session's start) that carry a value.
   */
  means(uuid: string, now: number, since: number): { utilization: GpuMeans; memoryUsedMiB: GpuMeans } {
    const col = this.columns.get(uuid);
    const empty = { last: null, mean5m: null, mean1h: null };
    if (col === undefined) return { utilization: { ...empty }, memoryUsedMiB: { ...empty } };
    const width = this.columns.size;
    const sums = { u5: 0, n5: 0, u60: 0, n60: 0, m5: 0, k5: 0, m60: 0, k60: 0 };
    let lastUtil: number | null = null;
    let lastMem: number | null = null;
    let newest = true;
    for (let i = 0; i < this.size; i++) {
      const slot = (this.head - 1 - i + this.times.length) % this.times.length;
      const at = this.times[slot]!;
      if (at > now) continue; // taken before the clock was set back
      if (at < since || at < now - 3600_000) break;
      const u = this.util[slot * width + col]!;
      const m = this.mem[slot * width + col]!;
      if (newest) {
        lastUtil = u === noUtil ? null : u;
        lastMem = m === noMem ? null : m;
        newest = false;
      }
      const recent = at >= now - 300_000;
      if (u !== noUtil) {
        sums.u60 += u;
        sums.n60++;
        if (recent) {
          sums.u5 += u;
          sums.n5++;
        }
      }
      if (m !== noMem) {
        sums.m60 += m;
        sums.k60++;
        if (recent) {
          sums.m5 += m;
          sums.k5++;
        }
      }
    }
    const mean = (sum: number, n: number) => (n === 0 ? null : Math.round(sum / n));
    return {
      utilization: { last: lastUtil, mean5m: mean(sums.u5, sums.n5), mean1h: mean(sums.u60, sums.n60) },
      memoryUsedMiB: { last: lastMem, mean5m: mean(sums.m5, sums.k5), mean1h: mean(sums.m60, sums.k60) },
    };
  }

  /** Bytes held by the rings (what the memory bound is about). */
  bytes(): number {
    return this.times.byteLength + this.util.byteLength + this.mem.byteLength;
  }
}
