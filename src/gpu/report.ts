import type { Gpu, Inventory } from "./types.ts";

/** One GPU as `beaker node gpus --json` prints it (the architecture page's contract). */
export interface GpuStatus extends Gpu {
  claimedBy: string | null;
}

/** Why a GPU cannot be handed out, or null when it can. */
export function unavailableReason(gpu: Gpu, ownedPids: ReadonlySet<number> = new Set()): string | null {
  if (!gpu.healthy) return gpu.error ?? "unhealthy";
  if (gpu.uuid === null) return "no UUID";
  const foreign = gpu.processes.filter((p) => !ownedPids.has(p.pid));
  if (foreign.length > 0) {
    const names = foreign.map((p) => `${p.name || "?"} (pid ${p.pid})`).join(", ");
    return `busy with processes no session owns: ${names}`;
  }
  return null;
}

export function withClaims(inventory: Inventory, claims: ReadonlyMap<string, string>): GpuStatus[] {
  return inventory.gpus.map((gpu) => ({ ...gpu, claimedBy: gpu.uuid ? (claims.get(gpu.uuid) ?? null) : null }));
}
