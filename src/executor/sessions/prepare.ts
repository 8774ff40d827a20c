import { chownSync, existsSync, mkdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ExecutorConfig } from "../../config/executor.ts";
import { bytesOf } from "../../config/limits.ts";
import { formatSize, parseSize } from "../../config/size.ts";
import { ConflictError, SessionStartError, UsageError } from "../../errors.ts";
import { formatDuration } from "../../util/duration.ts";
import { checkEnv, shmSizeFor, workdirFor, type BindMount, type SessionUser } from "../../runtime/docker/spec.ts";
import type { CreateSessionRequest } from "../api-types.ts";
import { checkMount, parseMountFlag, sourcePolicy } from "./mounts.ts";
import { ensureBeakerRuntime } from "./runtime.ts";

/** What the executor knows of its node that bounds a request. */
export interface NodeFacts {
  beakerBinary: string | null;
  memlock: number;
  cpus: number;
  memoryBytes: number;
  nameTaken: (uid: number, name: string) => boolean;
}

/** The session's memory limit: what it asked for (at most the node's memory), else the node's default. Pure. */
export function memoryLimitFor(config: Pick<ExecutorConfig, "defaultMemory">, nodeBytes: number, requested: string | null): number {
  if (requested !== null) {
    const bytes = parseSize(requested);
    if (!bytes) throw new UsageError(`--memory "${requested}" is not a size like 32g`);
    if (bytes > nodeBytes) throw new UsageError(`--memory ${requested} is more than this node has (${formatSize(nodeBytes)})`);
    return bytes;
  }
  return Math.min(bytesOf(config.defaultMemory, nodeBytes), nodeBytes);
}

/**
 * Checks a request against the node and the caller, and turns it into the inputs of the container spec. Everything
 * here is refused before any GPU is claimed. Creates `<sessionHome>/<user>` (0700, the user's) when configured.
 * Mount sources are checked here for a quick answer; the binding itself checks them again (`stage.ts`).
 */
export function prepareSession(config: ExecutorConfig, node: NodeFacts, user: SessionUser, req: CreateSessionRequest) {
  checkEnv(req.env);
  if (req.slurm && config.scheduler !== "slurm") {
    throw new UsageError("this node's scheduler is Beaker's own: --slurm-job, --partition, --account and --qos need scheduler: slurm in the executor's config");
  }
  if (req.slurm?.job && (req.slurm.partition || req.slurm.account || req.slurm.qos)) {
    throw new UsageError("--partition, --account and --qos ask Slurm for a new job; with --slurm-job the job exists already");
  }
  if (req.cpus !== null && req.cpus > node.cpus) throw new UsageError(`--cpus ${req.cpus} is more than this node has (${node.cpus})`);
  const memoryBytes = memoryLimitFor(config, node.memoryBytes, req.memory);
  const shmCap = Math.min(config.maxShmSize ?? memoryBytes, memoryBytes);
  const requestedShm = req.sharedMemory ? parseSize(req.sharedMemory) : null;
  if (req.sharedMemory && !requestedShm) throw new UsageError(`--shared-memory "${req.sharedMemory}" is not a size like 8g`);
  if (requestedShm !== null && requestedShm > shmCap) throw new UsageError(`--shared-memory ${req.sharedMemory} is more than a session may have here (${formatSize(shmCap)})`);
  const shmBytes = Math.min(shmSizeFor(memoryBytes, requestedShm ?? config.shmSize), shmCap);
  if (req.name !== null && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(req.name)) {
    throw new UsageError(`--name "${req.name}" may use letters, digits, "_", "." and "-" (up to 63)`);
  }
  const asked = req.timeLimit ?? null;
  if (asked !== null && config.maxDuration !== null && asked > config.maxDuration) {
    throw new UsageError(`--time ${formatDuration(asked)} is longer than a session may run on this node (${formatDuration(config.maxDuration)})`);
  }
  // A job Slurm is asked for gets --time as its time limit, and Slurm ends it (reason "slurm: time limit"): a second
  // clock here would race Slurm's. In a job of the caller's (--slurm-job), --time is this session's own limit.
  const timeLimit = config.scheduler === "slurm" && !req.slurm?.job ? null : asked;
  if (req.name !== null && node.nameTaken(user.uid, req.name)) throw new ConflictError(`you already have a session named ${req.name} on this node`);
  const home = config.sessionHome ? join(config.sessionHome, user.name) : user.home;
  if (config.sessionHome && !existsSync(home)) {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chownSync(home, user.uid, user.gid);
  }
  if (!existsSync(home)) throw new SessionStartError(`your home directory ${home} does not exist on this node`);
  const sessionUser = { ...user, home };
  const nodePaths: BindMount[] = config.mountPaths.filter((p) => existsSync(p)).map((p) => ({ source: p, target: p, readOnly: false }));
  const policy = sourcePolicy({ mountPaths: config.mountPaths, refused: [config.stateDir, dirname(config.socket)] }, sessionUser, realPath);
  const userMounts = req.mounts.map((flag) => checkMount(parseMountFlag(flag), sessionUser, policy));
  return {
    user: sessionUser,
    command: req.command.length > 0 ? req.command : null,
    env: req.env,
    cpus: req.cpus,
    memoryBytes,
    shmBytes,
    ports: req.ports,
    nodePaths,
    userMounts,
    sourcePolicy: policy,
    workdir: workdirFor(req.cwd, home, req.workdir),
    beakerBinary: node.beakerBinary,
    beakerRuntime: node.beakerBinary ? ensureBeakerRuntime(config.stateDir) : null,
    memlock: node.memlock,
    pidsLimit: config.pidsLimit,
    network: config.sessionNetwork,
    publishAddress: config.publish === "host" ? config.publishAddress : null,
    timeLimit,
  };
}

function realPath(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

export type SessionPlan = ReturnType<typeof prepareSession>;

/** Mounts as `describe` shows them: SRC:DST, or SRC:DST:ro. */
export function describeMounts(plan: Pick<SessionPlan, "user" | "nodePaths" | "userMounts">): string[] {
  return [{ source: plan.user.home, target: plan.user.home, readOnly: false }, ...plan.nodePaths, ...plan.userMounts].map(
    (m) => `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`,
  );
}
