import type { Gpu, GpuProcess, Inventory } from "./types.ts";

/** One GPU as `beaker node gpus --json` prints it (the architecture page's contract). */
export interface GpuStatus extends Gpu {
  claimedBy: string | null;
  /** Only with `scheduler: slurm`: the Slurm job this GPU is allocated to (a session's or a plain job), else null. */
  slurmJob?: { id: string; user: string } | null;
}

/** The processes on a GPU that no session owns (someone working outside Beaker). */
export function foreignProcesses(gpu: Gpu, ownedPids: ReadonlySet<number> = new Set()): GpuProcess[] {
  return gpu.processes.filter((p) => !ownedPids.has(p.pid));
}

/** Why a GPU cannot be handed out, or null when it can. */
export function unavailableReason(gpu: Gpu, ownedPids: ReadonlySet<number> = new Set()): string | null {
  if (!gpu.healthy) return gpu.error ?? "unhealthy";
  if (gpu.uuid === null) return "no UUID";
  const foreign = foreignProcesses(gpu, ownedPids);
  if (foreign.length > 0) {
    const names = foreign.map((p) => `${p.name || "?"} (pid ${p.pid})`).join(", ");
    return `busy with processes no session owns: ${names}`;
  }
  return null;
}

export function withClaims(inventory: Inventory, claims: ReadonlyMap<string, string>): GpuStatus[] {
  return inventory.gpus.map((gpu) => ({ ...gpu, claimedBy: gpu.uuid ? (claims.get(gpu.uuid) ?? null) : null }));
}

/** The reason `beaker node gpus` gives a user who is not root for a GPU busy with processes no session owns. */
export const busyNoSession = "busy, no session";

/**
 * The GPU report as a user who is not root may see it: their own sessions' claims, but no other user's session IDs,
 * process names or pids. Pure.
 */
export function redactGpuReport<T extends { gpus: GpuStatus[]; unavailable: Record<string, string> }>(report: T, ownSessions: ReadonlySet<string>): T {
  const unavailable: Record<string, string> = {};
  for (const [key, reason] of Object.entries(report.unavailable)) unavailable[key] = reason.startsWith("busy with processes") ? busyNoSession : reason;
  const gpus = report.gpus.map((gpu) => {
    const theirs = gpu.claimedBy !== null && !ownSessions.has(gpu.claimedBy);
    if (theirs) unavailable[gpu.uuid ?? gpu.busId ?? "?"] = "in use by another user's session";
    return { ...gpu, processes: [], claimedBy: theirs ? null : gpu.claimedBy };
  });
  return { ...report, gpus, unavailable };
}
