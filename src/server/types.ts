/** What the server's API speaks (JSON), shared with its clients: the CLI and the executor. */

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
  healthy: boolean;
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
}

/** What an executor sends every few seconds (the first one registers the node). */
export interface Heartbeat {
  cpus: number;
  memoryBytes: number;
  version: string;
  gpus: NodeGpu[];
  sessions: NodeSession[];
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
  gpus: NodeGpu[];
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

/** The GPU type a node is known by: the most common model name. Pure. */
export function gpuTypeOf(gpus: NodeGpu[]): string | null {
  const counts = new Map<string, number>();
  for (const g of gpus) if (g.name) counts.set(g.name, (counts.get(g.name) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}
