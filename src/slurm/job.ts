/**
 * What Slurm says about jobs, parsed: `scontrol show job -d -o` (one line per job, `Key=Value` pairs, with the
 * per-node detail `Nodes=… CPU_IDs=… Mem=… GRES=gpu:3(IDX:0-2)` inline). Pure.
 */

export interface SlurmJob {
  id: string;
  name: string;
  uid: number;
  user: string;
  /** RUNNING, PENDING, TIMEOUT, CANCELLED, ... (Slurm's base state). */
  state: string;
  /** Why it waits (Resources, Priority, QOSMaxGRESPerUser, ...) or why it ended; null for Slurm's "None". */
  reason: string | null;
  partition: string | null;
  account: string | null;
  qos: string | null;
  /** Pending: Slurm's estimate of its start, when it has one; running: when it started. ISO. */
  startTime: string | null;
  /** Running: when its time limit ends it (null: no limit). ISO. */
  endTime: string | null;
  /** Slurm's names of the nodes it runs on (expanded), empty while pending. */
  nodes: string[];
  /** Per node: the GPU indexes (Slurm's GRES index: the order of gres.conf's File= entries) given to the job there. */
  gpusByNode: Record<string, number[]>;
}

/** Splits `Key=Value Key=Value` into pairs; a word with no `=` belongs to the value before it (values with spaces). */
function pairs(line: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const word of line.trim().split(/\s+/)) {
    const eq = word.indexOf("=");
    if (eq > 0 && /^[A-Za-z_:/]+$/.test(word.slice(0, eq))) out.push([word.slice(0, eq), word.slice(eq + 1)]);
    else if (out.length > 0) out[out.length - 1]![1] += ` ${word}`;
  }
  return out;
}

const none = (v: string | undefined) => (v === undefined || v === "" || v === "(null)" || v === "None" || v === "N/A" || v === "Unknown" || v === "NONE" ? null : v);

/** Slurm's local time (`2026-11-29T13:37:48`, no zone) as ISO; null for Unknown, N/A, None. */
export function slurmTime(value: string | undefined): string | null {
  const v = none(value);
  if (!v || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/.test(v)) return null;
  const ms = new Date(v).getTime();
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** "0-2,5,7-8" -> [0,1,2,5,7,8]. */
export function expandRanges(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (let i = from; i <= to && i - from < 4096; i++) out.push(i);
  }
  return out;
}

/** Slurm's host list ("gpu[01-03,07],login1") -> the names, zero padding kept. */
export function expandHostlist(list: string): string[] {
  const out: string[] = [];
  // Commas inside brackets separate ranges, outside them hosts.
  for (const item of list.match(/[^,[]+(\[[^\]]*\])?[^,]*/g) ?? []) {
    const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(item);
    if (!m) {
      if (item.trim()) out.push(item.trim());
      continue;
    }
    const [, prefix, ranges, suffix] = m;
    for (const part of ranges!.split(",")) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!r) continue;
      const width = r[1]!.length;
      const from = Number(r[1]);
      const to = r[2] === undefined ? from : Number(r[2]);
      for (let i = from; i <= to && i - from < 65536; i++) out.push(`${prefix}${String(i).padStart(width, "0")}${suffix}`);
    }
  }
  return out;
}

/** GPU indexes in a GRES detail: `gpu:3(IDX:0-2)`, `gpu:a100:2(IDX:0,3)`, `gpu(IDX:1)`, beside other GRES. */
export function gpuIndexes(gres: string): number[] {
  const out: number[] = [];
  for (const m of gres.matchAll(/(?:^|,)gpu(?::[^:(,]+)?(?::\d+)?\(IDX:([^)]*)\)/g)) out.push(...expandRanges(m[1]!));
  return [...new Set(out)].sort((a, b) => a - b);
}

/** One job from its one-line `scontrol show job -d -o` record. */
export function parseJobLine(line: string): SlurmJob | null {
  const kv = pairs(line);
  const get = (key: string) => kv.find(([k]) => k === key)?.[1];
  const id = get("JobId");
  if (!id) return null;
  const owner = /^(.*)\((\d+)\)$/.exec(get("UserId") ?? "");
  const gpusByNode: Record<string, number[]> = {};
  let detailNodes: string[] = [];
  for (const [key, value] of kv) {
    if (key === "Nodes") detailNodes = expandHostlist(value);
    else if (key === "GRES") for (const node of detailNodes) gpusByNode[node] = gpuIndexes(value);
  }
  return {
    id,
    name: get("JobName") ?? "",
    uid: owner ? Number(owner[2]) : -1,
    user: owner ? owner[1]! : "",
    state: get("JobState") ?? "UNKNOWN",
    reason: none(get("Reason")),
    partition: none(get("Partition")),
    account: none(get("Account")),
    qos: none(get("QOS")),
    startTime: slurmTime(get("StartTime")),
    // An unlimited job's EndTime is a year after its start: no end to show.
    endTime: get("TimeLimit") === "UNLIMITED" ? null : slurmTime(get("EndTime")),
    nodes: expandHostlist(none(get("NodeList")) ?? ""),
    gpusByNode,
  };
}

/** Every job in `scontrol show job -d -o` output. */
export function parseJobs(text: string): SlurmJob[] {
  return text
    .split("\n")
    .map(parseJobLine)
    .filter((j): j is SlurmJob => j !== null);
}

/** States in which the job holds its allocation (its GPUs are the job's). */
export function holdsAllocation(job: Pick<SlurmJob, "state">): boolean {
  return job.state === "RUNNING" || job.state === "SUSPENDED" || job.state === "CONFIGURING";
}

const endings: Record<string, string> = {
  TIMEOUT: "time limit",
  CANCELLED: "cancelled",
  PREEMPTED: "preempted",
  NODE_FAIL: "node failure",
  BOOT_FAIL: "node failed to boot",
  DEADLINE: "deadline",
  OUT_OF_MEMORY: "out of memory",
  FAILED: "failed",
  COMPLETED: "completed",
  COMPLETING: "completing",
  REQUEUED: "requeued",
  PENDING: "requeued",
  REVOKED: "revoked",
};

/** Why Slurm ended (or took back) a job, in words, for the session's history: "time limit", "cancelled", .... */
export function endReason(job: Pick<SlurmJob, "state" | "reason"> | null): string {
  if (!job) return "the job is gone";
  const words = endings[job.state] ?? job.state.toLowerCase().replace(/_/g, " ");
  // Slurm's own reason adds what the state does not say (a drained or down node, an admin's note).
  return job.reason && !/^(TimeLimit|None|BeginTime|Prolog|JobHeldUser)$/.test(job.reason) && job.state !== "TIMEOUT" ? `${words} (${job.reason})` : words;
}

/** The line a waiting caller sees: Slurm's reason and, when it has one, its start estimate. */
export function pendingLine(job: Pick<SlurmJob, "id" | "reason" | "startTime">, formatTime: (iso: string) => string): string {
  const estimate = job.startTime ? `; Slurm expects it to start at ${formatTime(job.startTime)}` : "";
  return `Waiting for Slurm job ${job.id}: ${job.reason ?? "pending"}${estimate}`;
}
