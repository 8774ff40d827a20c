/**
 * `scheduler: slurm`: the executor hands out no GPU by itself. A session runs in a Slurm job of its caller's on this
 * node, asked for as the caller (`salloc --no-shell`) or named by them (`--slurm-job`), and gets exactly that job's
 * GPUs. The job's lifetime and the container's are tied together by `sync`, which pairs them (`slurm-pairing.ts`).
 */
import type { SlurmSettings } from "../../config/executor.ts";
import { BeakerError, ConflictError, ForbiddenError, NotFoundError, SessionStartError, errorMessage } from "../../errors.ts";
import type { GpuStatus } from "../../gpu/report.ts";
import type { SessionUser } from "../../runtime/docker/spec.ts";
import { ownJobName, slurmTime } from "../../slurm/allocation.ts";
import { endReason, holdsAllocation, type SlurmJob } from "../../slurm/job.ts";
import type { SlurmIdentity, SlurmRunner } from "../../slurm/run.ts";
import type { SlurmJobRef } from "../api-types.ts";
import { planPairing } from "./slurm-pairing.ts";
import type { SessionHost, SlurmClaimInput, SlurmScheduler } from "../sessions/types.ts";
import { stopLive } from "../sessions/stop.ts";

const pendingPollMs = 1000;
/** How long a session whose job is COMPLETING waits for the job's final state (its reason), and how often it asks. */
const completingWaitMs = 5000;
const completingPollMs = 250;

function identity(user: SessionUser): SlurmIdentity {
  return { uid: user.uid, gid: user.gid, name: user.name, home: user.home };
}

function refOf(job: SlurmJob): SlurmJobRef {
  return { id: job.id, partition: job.partition, endsAt: job.endTime };
}

export class SlurmSessions implements SlurmScheduler {
  private orphanSince = new Map<string, number>();
  /** Jobs of sessions that ended (or never started), to cancel by ID: tried on every pass until Slurm has them gone. */
  private readonly toGiveBack = new Map<string, { sessionId: string; uid: number }>();
  private syncing: Promise<void> | null = null;
  private syncAgain = false;

  constructor(
    private readonly runner: SlurmRunner,
    readonly settings: SlurmSettings,
  ) {}

  /** The GPUs of the session's job on this node, held in the claim state machine. Abort (while waiting) revokes the job. */
  async claim(m: SessionHost, input: SlurmClaimInput): Promise<string[]> {
    const { sessionId, uid, req, info } = input;
    const user = await m.deps.users.lookup(uid);
    const job = req.slurm?.job ? await this.checkGiven(m, sessionId, uid, req.slurm.job) : await this.allocate(m, input, user);
    info.slurmJob = refOf(job);
    const node = this.settings.node;
    // Slurm takes another name of a node (its NodeHostname) in --nodelist, and lists the job under the node's own.
    if (!job.nodes.includes(node)) {
      throw new SessionStartError(`Slurm ran job ${job.id} on ${job.nodes.join(",") || "no node"}, not on ${node} (slurm.node in the executor's config), so its GPUs cannot be given: set slurm.node to this node's NodeName in Slurm`);
    }
    const gpus = await this.uuidsOf(m, job);
    if (req.slurm?.job && req.gpus !== null && req.gpus !== gpus.length) {
      throw new ConflictError(`Slurm job ${job.id} has ${gpus.length} GPU${gpus.length === 1 ? "" : "s"} on this node, but --gpus ${req.gpus} was asked; leave --gpus out`);
    }
    if (!req.slurm?.job && gpus.length !== input.count) {
      throw new SessionStartError(`Slurm gave job ${job.id} ${gpus.length} GPU${gpus.length === 1 ? "" : "s"} on ${node}, not the ${input.count} asked for: see 'scontrol show job -d ${job.id}' and gres.conf`);
    }
    await this.assign(m, sessionId, uid, gpus);
    return gpus;
  }

  /**
   * Holds the job's GPUs for the session. Slurm may already have given this job the GPUs of a job that ended a moment
   * ago, before `sync` stopped that job's session: such a session is stopped now (Slurm confirming its job is over),
   * and the GPUs are taken once it is gone. A GPU held by a session whose job still runs is refused.
   */
  private async assign(m: SessionHost, sessionId: string, uid: number, gpus: string[]): Promise<void> {
    let refusal = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const holders = new Set(gpus.map((uuid) => m.claims.byGpu().get(uuid)).filter((h): h is string => h !== undefined && h !== sessionId));
      for (const holder of holders) {
        const session = m.sessions.get(holder);
        const job = session?.info.slurmJob?.id;
        if (!session || !job) continue;
        await this.endSession(m, holder, job);
        if (session.info.status === "stopping") await session.exited;
      }
      const refused = m.claims.dispatch({ type: "assigned", sessionId, uid, gpus }).find((e) => e.type === "refuse" && e.sessionId === sessionId);
      if (refused?.type !== "refuse") return;
      refusal = refused.message;
    }
    throw new ConflictError(refusal);
  }

  /** `--slurm-job J`: a job of the caller's, running, on this node, and not running another session already. */
  private async checkGiven(m: SessionHost, sessionId: string, uid: number, id: string): Promise<SlurmJob> {
    const job = await this.runner.showJob(id);
    if (!job) throw new NotFoundError(`Slurm has no job ${id}`);
    if (job.uid !== uid) throw new ForbiddenError(`Slurm job ${id} is not yours: it belongs to ${job.user || `uid ${job.uid}`}`);
    if (!holdsAllocation(job)) throw new ConflictError(`Slurm job ${id} is ${job.state.toLowerCase()}, not running`);
    if (!job.nodes.includes(this.settings.node)) {
      throw new ConflictError(`Slurm job ${id} runs on ${job.nodes.join(",") || "no node"}, not on this node (${this.settings.node}); run this inside it: srun --jobid ${id} --pty beaker session create --slurm-job ${id}`);
    }
    const other = [...m.sessions.values(), ...m.pending.values()].find((s) => s.info.id !== sessionId && s.info.slurmJob?.id === id);
    if (other) throw new ConflictError(`Slurm job ${id} already runs session ${other.info.name}`);
    return job;
  }

  /** Asks Slurm, as the caller, for a job on this node; tells the caller Slurm's reason while it waits. */
  private async allocate(m: SessionHost, input: SlurmClaimInput, user: SessionUser): Promise<SlurmJob> {
    const { sessionId, req, info, emit, signal } = input;
    const s = this.settings;
    const request = {
      name: ownJobName(sessionId),
      node: s.node,
      gpus: input.count,
      cpus: req.cpus,
      partition: req.slurm?.partition ?? s.partition,
      account: req.slurm?.account ?? s.account,
      qos: req.slurm?.qos ?? s.qos,
      time: req.timeLimit ? slurmTime(req.timeLimit) : s.time,
      immediate: req.noWait,
    };
    let watching = true;
    const watch = async (id: string) => {
      let told = "";
      while (watching) {
        const job = await this.runner.showJob(id).catch(() => null);
        if (!watching) return;
        if (job?.state === "PENDING") {
          info.status = "queued";
          const now = `${job.reason}|${job.startTime}`;
          if (now !== told) emit({ type: "slurm", sessionId, job: id, reason: job.reason, startTime: job.startTime });
          told = now;
        }
        await m.deps.clock.sleep(pendingPollMs);
      }
    };
    let id: string;
    try {
      id = await this.runner.allocate(request, identity(user), (job) => {
        info.slurmJob = { id: job, partition: request.partition, endsAt: null };
        m.deps.log(`session request ${sessionId} of ${user.name}: Slurm job ${job}`);
        void watch(job);
      }, signal);
    } finally {
      watching = false;
    }
    const job = await this.runner.showJob(id);
    if (!job || !holdsAllocation(job)) throw new SessionStartError(`Slurm job ${id} ended before the session started (${endReason(job)})`);
    return job;
  }

  /** Slurm's GPU indexes for the job on this node, as the UUIDs discovery knows them by (index = minor number). */
  private async uuidsOf(m: SessionHost, job: SlurmJob): Promise<string[]> {
    const indexes = job.gpusByNode[this.settings.node] ?? [];
    if (indexes.length === 0) return [];
    const inventory = await m.deps.inventory.get();
    return indexes.map((index) => {
      const gpu = inventory.gpus.find((g) => g.index === index);
      if (!gpu?.uuid) {
        throw new SessionStartError(`Slurm gave job ${job.id} GPU ${index}, which nvidia-smi does not show on this node (gres.conf's File= order must follow the GPUs' minor numbers)`);
      }
      return gpu.uuid;
    });
  }

  /** Pairs sessions with jobs once; one at a time, and once more when asked while one runs. */
  sync(m: SessionHost): Promise<void> {
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    this.syncing = this.syncOnce(m).finally(() => {
      this.syncing = null;
      if (this.syncAgain) {
        this.syncAgain = false;
        void this.sync(m);
      }
    });
    return this.syncing;
  }

  /**
   * A session that ended, or a request that failed after Slurm gave it a job, gives that job back: cancelled by its ID
   * on the next pass (and the ones after, while Slurm does not answer), whatever the node-wide listing says. Only the
   * executor's own job (`beaker-<session id>`) is cancelled; a job the caller named (`--slurm-job`) stays theirs.
   */
  release(sessionId: string, job: string, uid: number): void {
    this.toGiveBack.set(job, { sessionId, uid });
  }

  private async giveBack(m: SessionHost): Promise<void> {
    for (const [id, { sessionId, uid }] of [...this.toGiveBack]) {
      try {
        const job = await this.runner.showJob(id);
        if (job && job.name === ownJobName(sessionId) && (holdsAllocation(job) || job.state === "PENDING")) {
          const owner = await m.deps.users.lookup(uid);
          await this.runner.cancel(id, identity(owner));
          m.deps.log(`cancelled Slurm job ${id} of ${owner.name}: its session ${sessionId} is over`);
        }
        this.toGiveBack.delete(id);
      } catch (err) {
        m.deps.log(`cannot cancel Slurm job ${id} yet (tried again on the next pass): ${errorMessage(err)}`);
      }
    }
  }

  private async syncOnce(m: SessionHost): Promise<void> {
    const { log, clock } = m.deps;
    await this.giveBack(m);
    let jobs: SlurmJob[];
    try {
      jobs = await this.runner.jobsOnNode(this.settings.node);
    } catch (err) {
      // Slurm not answering proves nothing about any job: nothing is stopped or cancelled on it.
      return log(`slurm: ${errorMessage(err)}`);
    }
    // Until Docker's containers are known (adopted after a restart), every job would look unused.
    if (!m.claims.state.ready) return;
    const plan = planPairing({
      node: this.settings.node,
      live: [...m.sessions.values()].filter((s) => s.info.slurmJob).map((s) => ({ sessionId: s.info.id, job: s.info.slurmJob!.id, status: s.info.status })),
      pending: [...m.pending.values()].map((p) => ({ sessionId: p.info.id, job: p.info.slurmJob?.id ?? null })),
      jobs,
      orphanSince: this.orphanSince,
      now: clock.now(),
      graceMs: this.settings.orphanGrace * 1000,
    });
    this.orphanSince = plan.orphanSince;
    for (const { sessionId, job } of plan.current) {
      const session = m.sessions.get(sessionId);
      if (session) session.info.slurmJob = refOf(job);
    }
    await Promise.all([...plan.ended.map((e) => this.endSession(m, e.sessionId, e.job)), ...plan.cancel.map((c) => this.cancelJob(m, c))]);
  }

  /** Stops a session whose job Slurm ended, with Slurm's reason, once Slurm confirms the job no longer runs here. */
  private async endSession(m: SessionHost, sessionId: string, id: string): Promise<void> {
    const show = () => this.runner.showJob(id).catch((err: unknown) => (m.deps.log(`slurm: ${errorMessage(err)}`), undefined));
    let job = await show();
    if (job === undefined || (job && holdsAllocation(job) && job.nodes.includes(this.settings.node))) return;
    // A job on its way out shows COMPLETING until its epilog is done, which hides why it ended (scancel, its time
    // limit): the reason is worth a moment's wait, never more than completingWaitMs.
    for (let waited = 0; job?.state === "COMPLETING" && waited < completingWaitMs; waited += completingPollMs) {
      await m.deps.clock.sleep(completingPollMs);
      const next = await show();
      // Slurm did not answer, or forgot the job already: the last word it gave is the one there is.
      if (!next) break;
      job = next;
    }
    const session = m.sessions.get(sessionId);
    if (!session || session.info.status === "stopping" || session.info.status === "exited") return;
    session.stopReason ??= `slurm: ${endReason(job)}`;
    m.deps.log(`session ${sessionId} of ${session.info.user}: Slurm job ${id} ended (${endReason(job)}); stopping it`);
    await stopLive(m.deps.engine, session, 10).catch((err) => m.deps.log(`cannot stop session ${sessionId}: ${errorMessage(err)}`));
  }

  private async cancelJob(m: SessionHost, c: { job: string; uid: number; why: string }): Promise<void> {
    try {
      const owner = await m.deps.users.lookup(c.uid);
      await this.runner.cancel(c.job, identity(owner));
      m.deps.log(`cancelled Slurm job ${c.job} of ${owner.name}: ${c.why}`);
    } catch (err) {
      m.deps.log(`cannot cancel Slurm job ${c.job}: ${err instanceof BeakerError ? err.message : errorMessage(err)}`);
    }
  }

  /** `node gpus`: which job Slurm gave each GPU to, Beaker's or not, so GPUs of plain Slurm jobs show as busy. */
  async annotate<T extends { gpus: GpuStatus[]; unavailable: Record<string, string> }>(report: T): Promise<T> {
    const jobs = await this.runner.jobsOnNode(this.settings.node);
    const byIndex = new Map<number, SlurmJob>();
    for (const job of jobs) if (holdsAllocation(job)) for (const index of job.gpusByNode[this.settings.node] ?? []) byIndex.set(index, job);
    const unavailable = { ...report.unavailable };
    const gpus = report.gpus.map((gpu) => {
      const job = gpu.index === null ? undefined : byIndex.get(gpu.index);
      if (job && !gpu.claimedBy) unavailable[gpu.uuid ?? gpu.busId ?? "?"] = `Slurm job ${job.id} of ${job.user}`;
      return { ...gpu, slurmJob: job ? { id: job.id, user: job.user } : null };
    });
    return { ...report, gpus, unavailable };
  }
}
