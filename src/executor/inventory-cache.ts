import { readFileSync } from "node:fs";
import { discoverGpus, createNvidiaSmiRunner, defaultTimeoutMs } from "../gpu/discover.ts";
import { foreignProcesses, unavailableReason } from "../gpu/report.ts";
import type { Gpu, GpuProcess, Inventory } from "../gpu/types.ts";

/**
 * The node's GPUs as nvidia-smi last said, refreshed on demand but at most every `minIntervalMs`, one call at a time:
 * never one nvidia-smi per request.
 */
export class InventoryCache {
  private current: Inventory | null = null;
  private fetchedAt = 0;
  private inflight: Promise<Inventory> | null = null;

  constructor(
    private readonly nvidiaSmi: string,
    private readonly log: (line: string) => void,
    private readonly minIntervalMs = 5000,
  ) {}

  async get(): Promise<Inventory> {
    if (this.current && Date.now() - this.fetchedAt < this.minIntervalMs) return this.current;
    return this.fresh();
  }

  /** A new nvidia-smi call (or the one under way): the GPU-use sample, which also refreshes the cache. */
  fresh(): Promise<Inventory> {
    this.inflight ??= this.refresh().finally(() => (this.inflight = null));
    return this.inflight;
  }

  private async refresh(): Promise<Inventory> {
    const inventory = await discoverGpus(createNvidiaSmiRunner(this.nvidiaSmi, defaultTimeoutMs), defaultTimeoutMs);
    const previous = this.current;
    if (inventory.error && inventory.error !== previous?.error) this.log(`GPU discovery: ${inventory.error}`);
    for (const gpu of inventory.gpus) {
      if (!gpu.healthy && !previous?.gpus.some((p) => p.busId === gpu.busId && !p.healthy)) {
        this.log(`GPU ${gpu.index ?? "?"} (${gpu.busId ?? gpu.uuid ?? "?"}) is unhealthy and will not be handed out: ${gpu.error}`);
      }
    }
    if (previous === null) this.log(`GPU discovery: ${inventory.gpus.length} GPU(s)${inventory.note ? ` (${inventory.note})` : ""}`);
    this.current = inventory;
    this.fetchedAt = Date.now();
    return inventory;
  }
}

/** Pids whose cgroup names one of the containers (so their GPU use belongs to a session). */
export function pidsInContainers(pids: number[], containerIds: string[]): Set<number> {
  const owned = new Set<number>();
  for (const pid of pids) {
    try {
      const cgroup = readFileSync(`/proc/${pid}/cgroup`, "utf8");
      if (containerIds.some((id) => cgroup.includes(id))) owned.add(pid);
    } catch {}
  }
  return owned;
}

/** The GPUs that may be handed out, why each other one may not, and the processes no session owns, by UUID. */
export function usableGpus(
  inventory: Inventory,
  containerIds: string[],
): { usable: Gpu[]; unavailable: Record<string, string>; foreign: Record<string, GpuProcess[]> } {
  const pids = inventory.gpus.flatMap((g) => g.processes.map((p) => p.pid));
  const owned = pids.length > 0 ? pidsInContainers(pids, containerIds) : new Set<number>();
  const usable: Gpu[] = [];
  const unavailable: Record<string, string> = {};
  const foreign: Record<string, GpuProcess[]> = {};
  for (const gpu of inventory.gpus) {
    const reason = unavailableReason(gpu, owned);
    if (reason) unavailable[gpu.uuid ?? gpu.busId ?? "?"] = reason;
    else usable.push(gpu);
    const others = foreignProcesses(gpu, owned);
    if (gpu.uuid && others.length > 0) foreign[gpu.uuid] = others;
  }
  return { usable, unavailable, foreign };
}
