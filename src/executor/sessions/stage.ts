import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BindMount, SessionUser } from "../../runtime/docker/spec.ts";
import { openSourceAs, type SourcePolicy } from "./mounts.ts";

/**
 * A user's `--mount` sources, bound into a root-only staging directory from the handles that were checked
 * (`mount --bind /proc/<executor>/fd/N`), so Docker is given a path no user can change: the bind is exactly the
 * directory (or file) that was checked, whatever happens to the user's path afterwards. The staging binds are
 * undone once the container has started (it holds its own) or when the session fails.
 */
export interface StagedMounts {
  mounts: BindMount[];
  release(): Promise<void>;
}

const stagingRoot = (stateDir: string) => join(stateDir, "mounts");

async function run(cmd: string[]): Promise<{ ok: boolean; err: string }> {
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { ok: code === 0, err: err.trim() };
}

/** Mount points at or under `path`, from the kernel's table (a bind may be stacked: each counts). */
function mountsAt(path: string): { at: number; under: number } {
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => (line.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  return { at: points.filter((p) => p === path).length, under: points.filter((p) => p === path || p.startsWith(`${path}/`)).length };
}

/**
 * Undoes the staging binds in `dir` and removes it. Nothing is ever removed while a mount is left under it (that
 * would delete a user's files through the bind): such a folder is left, and said, and the caller goes on.
 */
async function unmount(staged: string): Promise<string | null> {
  if (!existsSync(staged)) return null;
  if (!lstatSync(staged).isDirectory()) {
    rmSync(staged, { force: true });
    return null;
  }
  // The kernel's table names real paths: a state folder reached through a link must not look unmounted.
  const dir = realpathSync(staged);
  for (const name of readdirSync(dir)) {
    const point = join(dir, name);
    // Lazily, as many times as it is mounted there (bounded: a bind stacked without end is left, and said).
    for (let i = Math.min(mountsAt(point).at, 16); i > 0; i--) await run(["umount", "--lazy", point]);
  }
  if (mountsAt(dir).under > 0) return `${dir} still has mounts in it; left in place`;
  rmSync(dir, { recursive: true, force: true });
  return null;
}

export async function stageMounts(stateDir: string, sessionId: string, mounts: BindMount[], user: SessionUser, policy: SourcePolicy): Promise<StagedMounts> {
  const dir = join(stagingRoot(stateDir), sessionId);
  const release = async () => {
    await unmount(dir).catch(() => null);
  };
  if (mounts.length === 0) return { mounts: [], release: async () => {} };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const staged: BindMount[] = [];
  try {
    for (const [i, mount] of mounts.entries()) {
      const source = openSourceAs(mount.source, user, policy);
      try {
        const point = join(dir, String(i));
        if (source.isDirectory) mkdirSync(point, { mode: 0o700 });
        else closeSync(openSync(point, "w", 0o600));
        const bound = await run(["mount", "--bind", "--no-canonicalize", `/proc/${process.pid}/fd/${source.fd}`, point]);
        if (!bound.ok) throw new Error(`cannot stage --mount ${mount.source}: ${bound.err}`);
        staged.push({ ...mount, source: point });
      } finally {
        source.close();
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { mounts: staged, release };
}

/**
 * Undoes the staging binds a crashed executor left behind (no session is being made at start-up). Never fails: what
 * cannot be undone is logged and left, and the executor starts.
 */
export async function releaseAllStaged(stateDir: string, log: (line: string) => void): Promise<void> {
  const root = stagingRoot(stateDir);
  try {
    for (const session of existsSync(root) ? readdirSync(root) : []) {
      const left = await unmount(join(root, session)).catch((err: Error) => `${join(root, session)}: ${err.message}`);
      if (left) log(`staged mounts: ${left}`);
    }
  } catch (err) {
    log(`staged mounts: cannot clear ${root}: ${(err as Error).message}`);
  }
}
