/**
 * With `scheduler: slurm`, which session goes with which Slurm job, decided from one look at both: Beaker's sessions
 * (with the job each runs in) and the jobs that hold an allocation on this node. Pure; `slurm.ts` looks and acts.
 *
 * - A session whose job no longer holds its allocation here (time limit, preemption, scancel, a node taken down) is
 *   to be stopped, once Slurm has confirmed it (the look at the jobs may predate a session's job).
 * - An executor's job (`beaker-<session id>`) whose session is neither waiting nor running is over: cancel it now.
 * - A login node's job (`beaker`) that no session runs in is cancelled once it has gone unused for the grace period
 *   (its CLI normally cancels it when its session ends; this covers a CLI that died).
 * Any other job is the user's own business and never cancelled.
 */
import { loginJobName, sessionOfJob } from "../../slurm/allocation.ts";
import { holdsAllocation, type SlurmJob } from "../../slurm/job.ts";
import type { SessionStatus } from "../api-types.ts";

export interface PairingInput {
  /** Slurm's name of this node. */
  node: string;
  /** Sessions with a container, and the job each runs in. */
  live: Array<{ sessionId: string; job: string; status: SessionStatus }>;
  /** Requests not yet a container (waiting in Slurm's queue, or being created), with their job once Slurm named it. */
  pending: Array<{ sessionId: string; job: string | null }>;
  /** The jobs holding an allocation on this node, as Slurm listed them. */
  jobs: SlurmJob[];
  /** Login-node jobs seen with no session, and since when (ms). */
  orphanSince: ReadonlyMap<string, number>;
  now: number;
  graceMs: number;
}

export interface PairingPlan {
  /** Sessions whose job Slurm no longer lists here: confirm with Slurm, then stop them. */
  ended: Array<{ sessionId: string; job: string }>;
  /** Beaker's jobs to cancel (as their owner), and why. */
  cancel: Array<{ job: string; uid: number; why: string }>;
  /** Live sessions with their job as Slurm has it now (a time limit can change). */
  current: Array<{ sessionId: string; job: SlurmJob }>;
  orphanSince: Map<string, number>;
}

export function planPairing(input: PairingInput): PairingPlan {
  const here = new Map(input.jobs.filter((j) => holdsAllocation(j) && j.nodes.includes(input.node)).map((j) => [j.id, j]));
  const plan: PairingPlan = { ended: [], cancel: [], current: [], orphanSince: new Map() };
  const sessions = new Set<string>();
  const paired = new Set<string>();
  for (const s of input.live) {
    sessions.add(s.sessionId);
    paired.add(s.job);
    if (s.status === "stopping" || s.status === "exited") continue;
    const job = here.get(s.job);
    if (job) plan.current.push({ sessionId: s.sessionId, job });
    else plan.ended.push({ sessionId: s.sessionId, job: s.job });
  }
  for (const p of input.pending) {
    sessions.add(p.sessionId);
    if (p.job) paired.add(p.job);
  }
  for (const job of here.values()) {
    if (paired.has(job.id)) continue;
    const session = sessionOfJob(job.name);
    if (session !== null) {
      // Salloc may not have told the request its job's id yet: a request that still waits keeps its job.
      if (!sessions.has(session)) plan.cancel.push({ job: job.id, uid: job.uid, why: `its session ${session} is over` });
    } else if (job.name === loginJobName) {
      const since = input.orphanSince.get(job.id) ?? input.now;
      if (input.now - since >= input.graceMs) plan.cancel.push({ job: job.id, uid: job.uid, why: `no session has run in it for ${Math.round((input.now - since) / 1000)} s` });
      else plan.orphanSince.set(job.id, since);
    }
  }
  return plan;
}
