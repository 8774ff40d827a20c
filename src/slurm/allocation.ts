/** What Beaker asks Slurm for, as `salloc` arguments, and what salloc says back. Pure. */

export interface AllocationRequest {
  /** The job's name: `beaker-<session id>` for the executor's own jobs, `beaker` for a login node's. */
  name: string;
  /** Slurm's name of the node the job must run on (the executor's own node), or null to let Slurm pick. */
  node: string | null;
  gpus: number;
  /** CPUs for the one task (the session's --cpus, rounded up), or null for Slurm's default. */
  cpus: number | null;
  partition: string | null;
  account: string | null;
  qos: string | null;
  time: string | null;
  /** Fail at once instead of waiting in Slurm's queue (--no-wait). */
  immediate: boolean;
}

/**
 * The names of the jobs Beaker makes, the only jobs it ever cancels unasked: `beaker-<session id>` (an executor's,
 * for one session) and `beaker` (a login node's, for the session it starts on the node Slurm picked).
 */
export const loginJobName = "beaker";

export function ownJobName(sessionId: string): string {
  return `beaker-${sessionId}`;
}

/** The session an executor's job was made for, from the job's name; null for any other name. */
export function sessionOfJob(name: string): string | null {
  return /^beaker-([0-9a-f]{12})$/.exec(name)?.[1] ?? null;
}

/** `--time` (seconds) as Slurm's time limit: whole minutes, rounded up (Slurm counts in minutes). */
export function slurmTime(seconds: number): string {
  return String(Math.max(1, Math.ceil(seconds / 60)));
}

/** `salloc --no-shell` for one task on one node: the allocation is held, no process runs in it. */
export function sallocArgs(r: AllocationRequest): string[] {
  const opt = (flag: string, value: string | null) => (value === null ? [] : [`${flag}=${value}`]);
  return [
    "--no-shell",
    `--job-name=${r.name}`,
    "--nodes=1",
    "--ntasks=1",
    ...opt("--nodelist", r.node),
    ...(r.gpus > 0 ? [`--gres=gpu:${r.gpus}`] : []),
    ...opt("--cpus-per-task", r.cpus === null ? null : String(Math.max(1, Math.ceil(r.cpus)))),
    ...opt("--partition", r.partition),
    ...opt("--account", r.account),
    ...opt("--qos", r.qos),
    ...opt("--time", r.time),
    ...(r.immediate ? ["--immediate"] : []),
  ];
}

/** A line of salloc's stderr: the job's id once Slurm took the request, and whether it was granted. */
export function parseSallocLine(line: string): { job: string; granted: boolean } | null {
  const m = /(Pending|Granted) job allocation (\d+)/.exec(line);
  return m ? { job: m[2]!, granted: m[1] === "Granted" } : null;
}

/** salloc's error lines without the program's prefix: what Slurm said when it refused. */
export function sallocError(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^salloc: (error: )?/, "").trim())
    .filter((l) => l && !/^(Pending|Granted) job allocation|queued and waiting|has been allocated|Job aborted due to signal/.test(l));
  return lines.join("; ") || "salloc failed without a message";
}

/** Whether Slurm's answer means its controller could not be reached (not a refusal of the request). */
export function slurmUnreachable(message: string): boolean {
  return /Unable to contact slurm controller|Could not establish a configuration source|Connection refused|Socket timed out|Zero Bytes were transmitted|Unable to establish/i.test(message);
}
