/** Rows to API objects, and the columns derived from a node's report so queries need not read its JSON. Pure. */
import { gpuIsFree, gpuUnavailableReason, nodeStatus, type NodeGpu, type NodeInfo, type NodeSession, type PlacementNodeInfo, type ViewedGpu } from "./types.ts";

export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function nodeFrom(r: Record<string, unknown>, now: number): NodeInfo {
  const lastSeen = numOrNull(r.last_seen);
  const cordoned = num(r.cordoned) === 1;
  return {
    hostname: String(r.hostname),
    cluster: String(r.cluster),
    cpus: num(r.cpus),
    memoryBytes: num(r.memory_bytes),
    gpuType: (r.gpu_type as string | null) ?? null,
    gpusTotal: num(r.gpus_total),
    gpusFree: num(r.gpus_free),
    status: nodeStatus(lastSeen, cordoned, now),
    cordoned,
    version: (r.version as string | null) ?? null,
    lastSeen: iso(lastSeen),
  };
}

/** Sessions as stored: times as ISO strings of what the node said (its creation time now when it said nonsense). */
export function normalizeSessions(sessions: NodeSession[], now: number): NodeSession[] {
  return sessions.map((s) => ({
    ...s,
    createdAt: iso(Date.parse(s.createdAt) || now)!,
    startedAt: s.startedAt ? iso(Date.parse(s.startedAt) || null) : null,
  }));
}

/** `,alice,bob,`: the users with sessions on a node, for `LIKE` to find a user's nodes without reading their JSON. */
export function sessionUsers(sessions: NodeSession[]): string {
  const users = [...new Set(sessions.map((s) => s.user))].sort();
  return users.length === 0 ? "" : `,${users.join(",")},`;
}

/** The `LIKE` pattern (escape `\`) that matches `sessionUsers` of the nodes where `user` has sessions, and maybe more. */
export function usersLike(user: string): string {
  return `%,${user.replace(/[\\%_]/g, "\\$&")},%`;
}

export function sessionsFrom(json: unknown, node: string): Array<NodeSession & { node: string }> {
  return (JSON.parse(String(json ?? "[]")) as NodeSession[]).map((s) => ({ ...s, node }));
}

/** A node's GPUs for one viewer: each with why it is unavailable; process names and pids only for admins. */
export function viewGpus(json: unknown, admin: boolean): ViewedGpu[] {
  return (JSON.parse(String(json ?? "[]")) as NodeGpu[]).map(({ foreignProcesses, ...gpu }) => ({
    ...gpu,
    ...(admin && foreignProcesses ? { foreignProcesses } : {}),
    reason: gpuUnavailableReason({ ...gpu, foreignProcesses }, admin),
  }));
}

/**
 * A node as placement weighs it. A GPU is `healthy` as the executor counts usable ones (the driver says healthy and no
 * process of someone outside Beaker holds it), `free` as gpus_free counts it; `queued` counts the requests waiting.
 */
export function placementFrom(r: Record<string, unknown>, now: number): PlacementNodeInfo {
  const gpus = JSON.parse(String(r.gpus ?? "[]")) as NodeGpu[];
  return {
    ...nodeFrom(r, now),
    gpus: gpus.map((g) => ({ name: g.name, healthy: g.healthy && (g.foreignProcesses ?? []).length === 0, free: gpuIsFree(g) })),
    queued: (JSON.parse(String(r.sessions ?? "[]")) as NodeSession[]).filter((s) => s.status === "queued").length,
  };
}
