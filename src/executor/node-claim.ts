import { dlopen, FFIType } from "bun:ffi";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, constants, lstatSync, mkdirSync, openSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { BeakerError, ConflictError, errorMessage } from "../errors.ts";

/**
 * One executor per node and engine: two would each remove the other's sessions as leftovers. The claim is an
 * exclusive flock on a file in a directory only root may enter (`/run/beaker/claims`, 0700), keyed by the engine's
 * socket and the node's name. A name anyone can compute (the node's name is on the health endpoint) is therefore no
 * use to anyone but root: a user cannot create, open or lock the file, so nobody else can keep the executor from
 * starting. The kernel frees the lock when the process dies (even by kill -9), so a stale claim never blocks a restart,
 * and the descriptor is close-on-exec, so no child (docker, nvidia-smi, srun) ever inherits it.
 */
export const nodeClaimDir = "/run/beaker/claims";

export interface NodeKey {
  /** The Docker engine's socket, as configured. */
  engine: string;
  nodeName: string;
}

const lockEx = 2;
const lockNb = 4;
/** Linux's O_CLOEXEC (the same on x86-64 and arm64); node's fs.constants does not name it. */
const oCloexec = 0o2000000;

/** The claim's file for this engine (through symlinks, as two configs may name one engine differently) and node. */
export function nodeClaimFile(node: NodeKey, dir = nodeClaimDir): string {
  let engine = node.engine;
  try {
    engine = realpathSync(engine);
  } catch {}
  const key = createHash("sha256").update(`${engine}\n${node.nodeName}`).digest("hex").slice(0, 32);
  return join(dir, `executor-${key}.lock`);
}

let flock: ((fd: number, operation: number) => number) | null = null;

/** libc's flock, loaded on first use (only the executor needs it, and only on Linux). */
function libcFlock(): (fd: number, operation: number) => number {
  if (!flock) {
    const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    flock = (fd, operation) => libc.symbols.flock(fd, operation) as number;
  }
  return flock;
}

/** The claim's directory, made if missing: a real directory, this process's (root's) own, closed to everyone else. */
function ownDirectory(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid!()) throw new BeakerError(`${dir} is not a directory of the executor's own (uid ${process.getuid!()}); remove it and start again`);
  if (st.mode & 0o077) chmodSync(dir, 0o700);
}

/**
 * Takes the node's claim for this process's life; a second executor for the same engine and node is refused with
 * a ConflictError (exit 6). `release` is for tests: the executor keeps its claim until it exits.
 */
export function claimNode(node: NodeKey, dir = nodeClaimDir): { release(): void } {
  const file = nodeClaimFile(node, dir);
  let fd: number;
  try {
    ownDirectory(dir);
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | oCloexec, 0o600);
  } catch (err) {
    if (err instanceof BeakerError) throw err;
    throw new BeakerError(`cannot take this node's executor claim ${file}: ${errorMessage(err)} (the executor runs as root)`);
  }
  if (libcFlock()(fd, lockEx | lockNb) !== 0) {
    closeSync(fd);
    throw new ConflictError(`another executor already manages node ${node.nodeName} on the Docker engine at ${node.engine}; stop it first (systemctl stop beaker-executor)`);
  }
  return { release: () => closeSync(fd) };
}
