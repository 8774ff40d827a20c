import { chownSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ExecutorConfig } from "../config/executor.ts";
import { parseSize } from "../config/size.ts";
import { ConflictError, SessionStartError, UsageError } from "../errors.ts";
import { checkEnv, workdirFor, type BindMount, type SessionUser } from "../runtime/docker/spec.ts";
import type { CreateSessionRequest } from "./api-types.ts";
import { checkMount, parseMountFlag } from "./mounts.ts";

/**
 * Checks a request against the node and the caller, and turns it into the inputs of the container spec. Everything
 * here is refused before any GPU is claimed. Creates `<sessionHome>/<user>` (0700, the user's) when configured.
 */
export async function prepareSession(
  config: ExecutorConfig,
  node: { beakerBinary: string | null; memlock: number; nameTaken: (uid: number, name: string) => boolean },
  user: SessionUser,
  req: CreateSessionRequest,
) {
  checkEnv(req.env);
  if (req.gpus !== null && (!Number.isInteger(req.gpus) || req.gpus < 0)) throw new UsageError("--gpus must be a whole number, 0 or more");
  const memoryBytes = req.memory ? parseSize(req.memory) : null;
  if (req.memory && !memoryBytes) throw new UsageError(`--memory "${req.memory}" is not a size like 32g`);
  const shmBytes = req.sharedMemory ? parseSize(req.sharedMemory) : config.shmSize;
  if (req.sharedMemory && !shmBytes) throw new UsageError(`--shared-memory "${req.sharedMemory}" is not a size like 8g`);
  if (req.name !== null && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(req.name)) {
    throw new UsageError(`--name "${req.name}" may use letters, digits, "_", "." and "-" (up to 63)`);
  }
  if (req.name !== null && node.nameTaken(user.uid, req.name)) throw new ConflictError(`you already have a session named ${req.name} on this node`);
  const home = config.sessionHome ? join(config.sessionHome, user.name) : user.home;
  if (config.sessionHome && !existsSync(home)) {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    chownSync(home, user.uid, user.gid);
  }
  if (!existsSync(home)) throw new SessionStartError(`your home directory ${home} does not exist on this node`);
  const sessionUser = { ...user, home };
  const mounts: BindMount[] = config.mountPaths.filter((p) => existsSync(p)).map((p) => ({ source: p, target: p, readOnly: false }));
  for (const flag of req.mounts) mounts.push(await checkMount(parseMountFlag(flag), sessionUser));
  return {
    user: sessionUser,
    command: req.command.length > 0 ? req.command : null,
    env: req.env,
    cpus: req.cpus,
    memoryBytes,
    shmBytes,
    ports: req.ports,
    mounts,
    workdir: workdirFor(req.cwd, home, req.workdir),
    beakerBinary: node.beakerBinary,
    memlock: node.memlock,
  };
}
