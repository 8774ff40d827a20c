/**
 * Runs Slurm's commands. Whatever asks Slurm for something on a user's behalf (an allocation, a cancel) runs as that
 * user: the executor drops to their uid, gid and groups with setpriv, so Slurm's own authentication (munge) and its
 * accounting see the user, and Slurm's rules (partitions, QOS, limits, who may cancel what) apply to them. Reading
 * job records needs no one's identity.
 */
import { ConflictError, ForbiddenError, UnavailableError } from "../errors.ts";
import { parseJobs, type SlurmJob } from "./job.ts";
import { parseSallocLine, sallocArgs, sallocError, slurmUnreachable, type AllocationRequest } from "./allocation.ts";

/** The user a command runs as; null runs it as this process (the executor's own reads, or the CLI as its user). */
export interface SlurmIdentity {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

export interface SlurmRunner {
  /** One job's record, or null when Slurm does not know it (never was, or ended long enough ago to be forgotten). */
  showJob(id: string): Promise<SlurmJob | null>;
  /** The jobs that hold an allocation on this node (running, suspended, completing). */
  jobsOnNode(node: string): Promise<SlurmJob[]>;
  /** Asks for an allocation and waits for it; `onJob` hears the job's id as soon as Slurm has one. Abort revokes it. */
  allocate(request: AllocationRequest, as: SlurmIdentity | null, onJob: (id: string) => void, signal: AbortSignal): Promise<string>;
  cancel(id: string, as: SlurmIdentity | null): Promise<void>;
}

const commandTimeoutMs = 30_000;

/** The environment Slurm's commands get: where Slurm's config is, and nothing of the caller's secrets. */
export function slurmEnv(env: Record<string, string | undefined>, as: SlurmIdentity | null): Record<string, string> {
  const out: Record<string, string> = { PATH: env.PATH ?? "/usr/local/bin:/usr/bin:/bin", LC_ALL: "C" };
  for (const key of ["SLURM_CONF", "TZ"]) if (env[key]) out[key] = env[key]!;
  if (as) Object.assign(out, { HOME: as.home, USER: as.name, LOGNAME: as.name });
  return out;
}

/** The argv that runs `cmd` as `as` (setpriv drops to the user's uid, gid and groups before Slurm's command starts). */
export function asUser(cmd: string[], as: SlurmIdentity | null): string[] {
  if (!as || (as.uid === 0 && process.getuid?.() === 0)) return cmd;
  return ["setpriv", `--reuid=${as.uid}`, `--regid=${as.gid}`, "--init-groups", "--", ...cmd];
}

/** Slurm's failure in Beaker's terms: its controller down is "unavailable", anything else a refusal. */
function slurmFailure(what: string, message: string): Error {
  if (slurmUnreachable(message)) return new UnavailableError(`cannot reach Slurm (${what}): ${message}`);
  if (/Access\/permission denied|Invalid user/i.test(message)) return new ForbiddenError(`Slurm refused (${what}): ${message}`);
  return new ConflictError(`Slurm refused (${what}): ${message}`);
}

export class CommandSlurmRunner implements SlurmRunner {
  constructor(private readonly env: Record<string, string | undefined>) {}

  private async run(cmd: string[], as: SlurmIdentity | null): Promise<{ code: number; stdout: string; stderr: string }> {
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(asUser(cmd, as), { env: slurmEnv(this.env, as), cwd: "/", stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    } catch (err) {
      throw new UnavailableError(`cannot run ${cmd[0]} (is Slurm installed on this node?): ${(err as Error).message}`);
    }
    const timer = setTimeout(() => proc.kill("SIGKILL"), commandTimeoutMs);
    try {
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text(), proc.exited]);
      return { code, stdout, stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  async showJob(id: string): Promise<SlurmJob | null> {
    const r = await this.run(["scontrol", "show", "job", "-d", "-o", id], null);
    if (r.code !== 0) {
      if (/Invalid job id/i.test(r.stderr)) return null;
      throw slurmFailure(`scontrol show job ${id}`, r.stderr.trim());
    }
    return parseJobs(r.stdout).find((j) => j.id === id) ?? null;
  }

  async jobsOnNode(node: string): Promise<SlurmJob[]> {
    const r = await this.run(["squeue", "--noheader", `--nodelist=${node}`, "--states=RUNNING,SUSPENDED,COMPLETING,CONFIGURING", "--format=%i"], null);
    if (r.code !== 0) throw slurmFailure(`squeue --nodelist=${node}`, r.stderr.trim());
    const ids = r.stdout.split("\n").map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
    const jobs = await Promise.all(ids.map((id) => this.showJob(id)));
    return jobs.filter((j): j is SlurmJob => j !== null);
  }

  async cancel(id: string, as: SlurmIdentity | null): Promise<void> {
    const r = await this.run(["scancel", id], as);
    if (r.code !== 0 && !/Invalid job id|already completing or completed/i.test(r.stderr)) throw slurmFailure(`scancel ${id}`, r.stderr.trim());
  }

  allocate(request: AllocationRequest, as: SlurmIdentity | null, onJob: (id: string) => void, signal: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let proc: ReturnType<typeof Bun.spawn>;
      try {
        proc = Bun.spawn(asUser(["salloc", ...sallocArgs(request)], as), { env: slurmEnv(this.env, as), cwd: "/", stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      } catch (err) {
        return reject(new UnavailableError(`cannot run salloc (is Slurm installed on this node?): ${(err as Error).message}`));
      }
      let job: string | null = null;
      let granted = false;
      let stderr = "";
      const onAbort = () => proc.kill("SIGINT");
      signal.addEventListener("abort", onAbort, { once: true });
      const read = async () => {
        const decoder = new TextDecoder();
        let partial = "";
        for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
          const text = partial + decoder.decode(chunk, { stream: true });
          const lines = text.split("\n");
          partial = lines.pop()!;
          for (const line of lines) {
            stderr += `${line}\n`;
            const seen = parseSallocLine(line);
            if (!seen) continue;
            if (job === null) {
              job = seen.job;
              onJob(job);
            }
            granted ||= seen.granted;
          }
        }
        stderr += partial;
      };
      Promise.all([read(), proc.exited]).then(([, code]) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) {
          // salloc revoked a pending request itself; a cancel on top covers the moment it was granted as the signal came.
          const revoke = job ? this.cancel(job, as).catch(() => {}) : Promise.resolve();
          return void revoke.then(() => reject(signal.reason));
        }
        if (code === 0 && job && granted) return resolve(job);
        reject(slurmFailure("salloc", sallocError(stderr)));
      }, reject);
    });
  }
}
