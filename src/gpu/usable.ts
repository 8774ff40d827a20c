import { readFileSync } from "node:fs";
import { foreignProcesses, unavailableReason } from "./report.ts";
import type { Gpu, GpuProcess, Inventory } from "./types.ts";

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
