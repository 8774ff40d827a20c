/** What the server's API speaks (JSON), shared with its clients: the CLI and the executor. */
import { busyNoSession } from "../gpu/report.ts";

export interface UserInfo {
  name: string;
  admin: boolean;
}

export interface NodeGpu {
  index: number | null;
  uuid: string;
  name: string | null;
  memoryMiB: number | null;
  claimedBy: string | null;
  /** The driver's word, as in `beaker node gpus` (executors before 0.1.1 also said false for a GPU others used). */
  healthy: boolean;
  /** The driver's words when it is not healthy; missing from executors before 0.1.1. */
  error?: string | null;
  /** Processes on it that no session owns: their names and pids are shown to admins only. */
  foreignProcesses?: Array<{ pid: number; name: string }>;
  /**
   * Utilization (percent, the 5-minute mean, in steps of 10) and memory in use (MiB, in steps of 1 GiB): coarse, so a
   * report changes when use does, not with every sample. Missing from executors before GPU use was reported.
   */
  utilization?: number | null;
  memoryUsedMiB?: number | null;
}

/** A GPU as a viewer of a node sees it: why it cannot be handed out, in words fit for that viewer. */
export interface ViewedGpu extends NodeGpu {
  reason: string | null;
}

export interface NodeSession {
  id: string;
  name: string;
  user: string;
  gpus: string[];
  image: string;
  status: string;
  createdAt: string;
  startedAt: string | null;
  /** Per GPU of `gpus`: utilization as for NodeGpu (null: not sampled). */
  utilization?: Array<number | null> | null;
  /** Since when its GPUs have been idle, and when its time limit stops it (ISO), or null. */
  idleSince?: string | null;
  deadline?: string | null;
  /** Its `--port` ports (container side), linked on the pages; missing from executors before ports in the browser. */
  ports?: number[];
}

/** What an executor sends every few seconds (the first one registers the node). */
export interface Heartbeat {
  cpus: number;
  memoryBytes: number;
  version: string;
  gpus: NodeGpu[];
  sessions: NodeSession[];
}

/** The server's answer to a heartbeat; `unchanged`: the report matched the stored one, so only last_seen moved. */
export interface HeartbeatAnswer {
  cordoned: boolean;
  cluster: string;
  unchanged: boolean;
}

export type NodeStatus = "online" | "offline" | "cordoned";

export interface NodeInfo {
  hostname: string;
  cluster: string;
  cpus: number;
  memoryBytes: number;
  gpuType: string | null;
  gpusTotal: number;
  gpusFree: number;
  status: NodeStatus;
  cordoned: boolean;
  version: string | null;
  lastSeen: string | null;
}

/**
 * A node as placement sees it (`GET /clusters/NAME/nodes?placement=1`): each GPU's model and whether a session could
 * be given it now, and how many requests wait in the node's queue.
 */
export interface PlacementNodeInfo extends NodeInfo {
  gpus: Array<{ name: string | null; healthy: boolean; free: boolean }>;
  queued: number;
}

export interface NodeDetails extends NodeInfo {
  gpus: ViewedGpu[];
  sessions: Array<NodeSession & { node: string }>;
}

export interface ClusterInfo {
  name: string;
  nodes: number;
  nodesOnline: number;
  gpusFree: number;
  gpusTotal: number;
}

/** A node silent for this long shows as offline. */
export const offlineAfterMs = 60_000;

/** Online, offline (silent for a minute, or never heard from), or cordoned (no new sessions). Pure. */
export function nodeStatus(lastSeen: number | null, cordoned: boolean, now: number): NodeStatus {
  if (lastSeen === null || now - lastSeen > offlineAfterMs) return "offline";
  return cordoned ? "cordoned" : "online";
}

/** Whether a session could be given this GPU now. Pure. */
export function gpuIsFree(gpu: NodeGpu): boolean {
  return gpu.healthy && gpu.claimedBy === null && (gpu.foreignProcesses ?? []).length === 0;
}

/**
 * What is wrong with a GPU, or null: `unhealthy: <the driver's words>` (even when a session holds it), or, when no
 * session holds it, `busy, no session` with the processes' names and pids for admins only (a command line can say what
 * someone works on). Pure.
 */
export function gpuUnavailableReason(gpu: NodeGpu, admin: boolean): string | null {
  // An old executor sends no `error` field, and its unhealthy also covers busy: it only knew "unavailable".
  if (!gpu.healthy) return gpu.error === undefined ? "unavailable" : gpu.error ? `unhealthy: ${gpu.error}` : "unhealthy";
  const foreign = gpu.foreignProcesses ?? [];
  if (gpu.claimedBy !== null || foreign.length === 0) return null;
  return admin ? `${busyNoSession}: ${foreign.map((p) => `${p.name || "?"} (pid ${p.pid})`).join(", ")}` : busyNoSession;
}

/** The GPU type a node is known by: the most common model name. Pure. */
export function gpuTypeOf(gpus: NodeGpu[]): string | null {
  const counts = new Map<string, number>();
  for (const g of gpus) if (g.name) counts.set(g.name, (counts.get(g.name) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}
