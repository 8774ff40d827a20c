import type { GpuStatus } from "../../../gpu/report.ts";
import type { Inventory } from "../../../gpu/types.ts";
import type { Factory } from "../../factory.ts";

export interface NodeGpusResult {
  inventory: Inventory;
  gpus: GpuStatus[];
  /** Why a GPU would not be handed out, by UUID or bus id; only known when an executor answered. */
  unavailable: Record<string, string>;
}

/** Asks the executor (which knows the claims) when one runs; otherwise runs discovery here. */
export async function loadNodeGpus(factory: Factory): Promise<NodeGpusResult> {
  const client = factory.executor();
  if (await client.isRunning()) return client.request<NodeGpusResult>("GET", "/v1/gpus");
  const { discoverGpus, createNvidiaSmiRunner } = await import("../../../gpu/discover.ts");
  const { withClaims } = await import("../../../gpu/report.ts");
  const { usableGpus } = await import("../../../gpu/usable.ts");
  const timeoutMs = factory.nvidiaSmiTimeoutMs();
  const inventory = await discoverGpus(createNvidiaSmiRunner(factory.nvidiaSmiPath(), timeoutMs), timeoutMs);
  const { unavailable } = usableGpus(inventory, []);
  return { inventory, gpus: withClaims(inventory, new Map()), unavailable };
}
