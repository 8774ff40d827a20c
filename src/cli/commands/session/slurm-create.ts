/**
 * `session create` from a login node of a Slurm site: Slurm picks the node. The CLI asks for an allocation as the user
 * (`salloc --no-shell`), then runs `beaker session create --slurm-job J` on the node Slurm gave, inside the job
 * (`srun --jobid J --pty`), whose executor checks the job and starts the session with its GPUs. The exit code, the
 * terminal and its size pass through srun. When the session ends the CLI gives the job back to Slurm.
 */
import { loadExecutorConfig, type ExecutorConfig } from "../../../config/executor.ts";
import { CancelledInSlurmQueue, UsageError } from "../../../errors.ts";
import { loginJobName, slurmTime } from "../../../slurm/allocation.ts";
import { pendingLine } from "../../../slurm/job.ts";
import { CommandSlurmRunner } from "../../../slurm/run.ts";
import type { CreateFlags } from "./create-flags.ts";
import type { Factory } from "../../factory.ts";
import { createProgress } from "../../progress.ts";
import { hasTty } from "../../remote.ts";
import { formatTime } from "./ref.ts";
import { remoteCreateArgs } from "./remote-create.ts";
import { slurmRequest } from "../../../executor/create-request.ts";


/** Whether this create goes through Slurm from here (salloc + srun) rather than to this machine's executor. Pure. */
export function loginFlowWanted(flags: Pick<CreateFlags, "cluster" | "node" | "slurm" | "slurmJob">, here: { executor: boolean; siteScheduler: ExecutorConfig["scheduler"] | null }): boolean {
  const remote = flags.cluster !== undefined || flags.node !== undefined;
  if (flags.slurm) {
    if (remote) throw new UsageError("--slurm lets Slurm pick the node; leave out --cluster and --node");
    if (flags.slurmJob !== undefined) throw new UsageError("--slurm asks Slurm for a new job; --slurm-job runs in one that exists (on its node)");
    return true;
  }
  return !remote && flags.slurmJob === undefined && !here.executor && here.siteScheduler === "slurm";
}

/** The site's config on this machine (a login node's says `scheduler: slurm`), or null when it has none that reads. */
function siteConfig(): ExecutorConfig | null {
  try {
    return loadExecutorConfig();
  } catch {
    return null;
  }
}

export async function wantsLoginFlow(factory: Factory, flags: CreateFlags): Promise<boolean> {
  if (flags.slurm) return loginFlowWanted(flags, { executor: false, siteScheduler: null });
  const siteScheduler = siteConfig()?.scheduler ?? null;
  // Only a site that schedules with Slurm asks whether an executor runs here (a native node is not slowed down).
  if (siteScheduler !== "slurm" || flags.cluster !== undefined || flags.node !== undefined || flags.slurmJob !== undefined) return false;
  return loginFlowWanted(flags, { executor: (await factory.executor().health()) !== null, siteScheduler });
}

/** The beaker to run on the node: this very file (the same install everywhere), or `beaker` on PATH from source. */
function nodeBeaker(): string {
  return process.execPath.endsWith("/bun") ? "beaker" : process.execPath;
}

/** srun's own note that the task exited non-zero says nothing the exit code does not: everything else passes. */
async function passStderr(stream: ReadableStream<Uint8Array>, io: Factory["io"]): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true }).replace(/^srun: error: \S+: task \d+: Exited with exit code \d+\r?\n/gm, "");
    if (text) io.err.write(text);
  }
}

/**
 * salloc as the user, srun onto the node Slurm picked, and the job given back when the session is over. `--time`
 * (`timeLimit`, seconds) is the job's time limit: Slurm ends the session, so the node's create is not given it again.
 */
export async function createThroughSlurm(factory: Factory, flags: CreateFlags, rest: string[], timeLimit: number | null): Promise<number> {
  const { io } = factory;
  const site = siteConfig()?.slurm;
  const asked = slurmRequest(flags);
  const runner = new CommandSlurmRunner(factory.env);
  const progress = createProgress(io);
  const abort = new AbortController();
  const onInterrupt = () => abort.abort(new CancelledInSlurmQueue("cancelled while waiting for Slurm; nothing is left in its queue"));
  process.on("SIGINT", onInterrupt);
  let watching = true;
  const watch = async (id: string) => {
    let told = "";
    while (watching) {
      const state = await runner.showJob(id).catch(() => null);
      if (watching && state?.state === "PENDING") {
        const line = pendingLine(state, formatTime);
        if (progress.live) progress.update(line);
        else if (line !== told) io.err.write(`${line}\n`);
        told = line;
      }
      await Bun.sleep(1000);
    }
  };
  const cpusText = flags.cpus;
  let id: string;
  try {
    id = await runner.allocate(
      {
        name: loginJobName,
        node: null,
        gpus: flags.gpus ?? 1,
        cpus: cpusText === undefined ? null : Number(cpusText),
        partition: asked?.partition ?? site?.partition ?? null,
        account: asked?.account ?? site?.account ?? null,
        qos: asked?.qos ?? site?.qos ?? null,
        time: timeLimit !== null ? slurmTime(timeLimit) : (site?.time ?? null),
        immediate: !flags.wait,
      },
      null,
      (job) => void watch(job),
      abort.signal,
    );
  } finally {
    watching = false;
    progress.done();
    process.off("SIGINT", onInterrupt);
  }
  const node = (await runner.showJob(id).catch(() => null))?.nodes[0] ?? "its node";
  io.err.write(`Slurm job ${id} runs on ${node}\n`);
  // Ctrl-C from here on belongs to the session (srun passes it on); this process waits to give the job back.
  const ignore = () => {};
  process.on("SIGINT", ignore);
  let code = 1;
  try {
    const image = flags.image ?? factory.userConfig().read().default_image ?? null;
    const args = remoteCreateArgs({ ...flags, time: undefined }, rest, { gpus: null, image, name: flags.name ?? null });
    args.splice(2, 0, "--slurm-job", id);
    const env: Record<string, string | undefined> = { ...factory.env };
    delete env.BEAKER_TOKEN; // never in a child's environment: the node's CLI reads the user's config
    const pty = !flags.detach && hasTty(factory);
    const srun = Bun.spawn(["srun", `--jobid=${id}`, "--ntasks=1", "--nodes=1", "--overlap", "--quiet", ...(pty ? ["--pty"] : []), nodeBeaker(), ...args], {
      env,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "pipe",
    });
    const [exit] = await Promise.all([srun.exited, passStderr(srun.stderr, io)]);
    code = exit;
    return code;
  } finally {
    process.off("SIGINT", ignore);
    // A detached session keeps its job; the node's executor gives it back once the session is over.
    if (!(flags.detach && code === 0)) await runner.cancel(id, null).catch((err) => io.err.write(`warning: cannot cancel Slurm job ${id}: ${(err as Error).message}\n`));
  }
}
