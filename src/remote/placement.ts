/**
 * Which node of a cluster a new session goes to, from the server's live view. Pure and table-tested.
 *
 * A node fits now when it is online (heard from, not cordoned), has at least the GPUs asked for free and usable, of
 * the type asked, and has nobody waiting: its executor's queue is strict FIFO, so a request behind others waits
 * even when GPUs are free (a session without GPUs never waits). Among those, the best fit (fewest free GPUs that still fit, so large free blocks stay
 * whole), then the name. When none fits now, the request queues on a node big enough: the shortest queue, then the
 * most free GPUs (the soonest to fit), then the name.
 */

export interface PlacementGpu {
  name: string | null;
  healthy: boolean;
  /** A session could be given it now. */
  free: boolean;
}

export interface PlacementNode {
  hostname: string;
  status: "online" | "offline" | "cordoned";
  gpus: PlacementGpu[];
  /** Requests waiting in the node's queue. */
  queued: number;
}

export interface PlacementRequest {
  cluster: string;
  gpus: number;
  /** Matches GPU names, case-insensitively, as a substring: `H100` matches `NVIDIA H100 80GB HBM3`. */
  gpuType: string | null;
}

export interface Candidate {
  node: string;
  /** Free GPUs of the type asked (all GPUs without a type). */
  free: number;
  /** Healthy GPUs of the type asked. */
  total: number;
  queued: number;
}

export type Placement =
  | ({ kind: "now" } & Candidate)
  | ({ kind: "queue" } & Candidate)
  /** Nothing could ever take it here: no node online, none with the type, none big enough. */
  | { kind: "impossible"; reason: string };

export function gpuMatches(name: string | null, gpuType: string | null): boolean {
  if (gpuType === null) return true;
  return name !== null && name.toLowerCase().includes(gpuType.toLowerCase());
}

function candidate(node: PlacementNode, gpuType: string | null): Candidate {
  const mine = node.gpus.filter((g) => g.healthy && gpuMatches(g.name, gpuType));
  return { node: node.hostname, free: mine.filter((g) => g.free).length, total: mine.length, queued: node.queued };
}

const byName = (a: Candidate, b: Candidate) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);

export function pickNode(nodes: PlacementNode[], request: PlacementRequest): Placement {
  const { cluster, gpus, gpuType } = request;
  const online = nodes.filter((n) => n.status === "online");
  if (online.length === 0) {
    const why = nodes.length === 0 ? "has no nodes" : `has no node online (${nodes.map((n) => `${n.hostname}: ${n.status}`).join(", ")})`;
    return { kind: "impossible", reason: `cluster ${cluster} ${why}` };
  }
  const all = online.map((n) => candidate(n, gpuType));
  const typed = gpuType === null ? all : all.filter((c) => c.total > 0);
  if (typed.length === 0) {
    const names = [...new Set(online.flatMap((n) => n.gpus.map((g) => g.name).filter((x): x is string => x !== null)))].sort();
    return { kind: "impossible", reason: `no online node of ${cluster} has ${gpuType} GPUs${names.length ? ` (it has: ${names.join(", ")})` : ""}` };
  }
  // A session without GPUs never waits in the queue.
  const fitsNow = typed.filter((c) => c.free >= gpus && (gpus === 0 || c.queued === 0)).sort((a, b) => a.free - b.free || byName(a, b));
  if (fitsNow[0]) return { kind: "now", ...fitsNow[0] };
  const bigEnough = typed.filter((c) => c.total >= gpus).sort((a, b) => a.queued - b.queued || b.free - a.free || byName(a, b));
  if (bigEnough[0]) return { kind: "queue", ...bigEnough[0] };
  const most = Math.max(...typed.map((c) => c.total));
  return { kind: "impossible", reason: `no online node of ${cluster} has ${gpus} ${gpuType ? `${gpuType} ` : ""}GPUs (the most is ${most})` };
}

/** `on gpu-07 (2 of 8 GPUs free)`, or where it waits and why. */
export function describePlacement(p: Exclude<Placement, { kind: "impossible" }>, request: PlacementRequest): string {
  const kind = request.gpuType ? `${request.gpuType} GPUs` : "GPUs";
  const counts = `${p.free} of ${p.total} ${kind} free`;
  if (p.kind === "now") return `on ${p.node} (${counts})`;
  const waiting = p.queued === 0 ? "" : `, ${p.queued} request${p.queued === 1 ? "" : "s"} ahead`;
  return `no node of ${request.cluster} can start it now; queueing on ${p.node} (${counts}${waiting})`;
}
