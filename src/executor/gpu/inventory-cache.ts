import { discoverGpus, createNvidiaSmiRunner, defaultTimeoutMs } from "../../gpu/discover.ts";
import type { Inventory } from "../../gpu/types.ts";

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
