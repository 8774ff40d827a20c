/**
 * `session create`'s flags -> the request the executor gets, with the CLI's own words for a bad flag. Pure, and light
 * to import: the CLI builds its request here, and the server the same one from its web form
 * (src/server/web-create-form.ts).
 */
import { slurmNamePattern } from "../config/executor.ts";
import { UsageError } from "../errors.ts";
import type { CreateSessionRequest, SlurmRequest } from "./api-types.ts";
import { parseDuration } from "../util/duration.ts";

/** The create flags a request is built from (`session create`'s, src/cli/commands/session/create-flags.ts). */
export interface CreateFlags {
  gpus?: number | string;
  image?: string;
  name?: string;
  cpus?: string;
  memory?: string;
  sharedMemory?: string;
  port: Array<number | string>;
  env: string[];
  mount: string[];
  workdir?: string;
  time?: string;
  /** `--no-wait` makes it false. */
  wait: boolean;
  detach?: boolean;
  slurmJob?: string;
  partition?: string;
  account?: string;
  qos?: string;
}

/** The Slurm part of a create request from the flags, or null when none was given. Pure. */
export function slurmRequest(flags: Pick<CreateFlags, "slurmJob" | "partition" | "account" | "qos">): SlurmRequest | null {
  const value = (flag: string, v: string | undefined, pattern: RegExp, shape: string) => {
    if (v === undefined) return null;
    const text = v.trim();
    if (!pattern.test(text)) throw new UsageError(`${flag} "${text}" must be ${shape}`);
    return text;
  };
  const request: SlurmRequest = {
    job: value("--slurm-job", flags.slurmJob, /^\d+$/, "a Slurm job ID"),
    partition: value("--partition", flags.partition, slurmNamePattern, "a Slurm partition name"),
    account: value("--account", flags.account, slurmNamePattern, "a Slurm account name"),
    qos: value("--qos", flags.qos, slurmNamePattern, "a Slurm QOS name"),
  };
  return Object.values(request).some((v) => v !== null) ? request : null;
}

function numberFlag(value: number | string | undefined, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

/** `--time`: seconds, or null when not given. */
function timeFlag(value: string | undefined): number | null {
  if (value === undefined) return null;
  const seconds = parseDuration(value);
  if (seconds === null) throw new UsageError(`--time "${value}" is not a duration like 4h, 90m or 1-12:00:00`);
  return seconds;
}

/** Flags -> the request the executor gets. Pure apart from reading the environment it is given. */
export function buildCreateRequest(flags: CreateFlags, rest: string[], ctx: { cwd: string; tty: boolean; term: string | null; defaultImage: string | null }): CreateSessionRequest {
  const cpusText = flags.cpus;
  const cpus = cpusText === undefined ? null : Number(cpusText);
  if (cpus !== null && !(cpus > 0)) throw new UsageError("--cpus must be a positive number");
  const ports = flags.port.map((p) => numberFlag(p, "--port", 1, 65535)!);
  const env = flags.env;
  for (const entry of env) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(entry)) throw new UsageError(`--env "${entry}" must be KEY=VALUE`);
  return {
    gpus: numberFlag(flags.gpus, "--gpus", 0, 64),
    image: flags.image ?? ctx.defaultImage,
    name: flags.name ?? null,
    cpus,
    memory: flags.memory ?? null,
    sharedMemory: flags.sharedMemory ?? null,
    ports,
    env,
    mounts: flags.mount,
    workdir: flags.workdir ?? null,
    command: rest,
    cwd: ctx.cwd,
    tty: ctx.tty,
    term: ctx.term,
    noWait: !flags.wait,
    detach: flags.detach ?? false,
    slurm: slurmRequest(flags),
    timeLimit: timeFlag(flags.time),
  };
}
