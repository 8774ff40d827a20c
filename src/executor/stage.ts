import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BindMount, SessionUser } from "../runtime/docker/spec.ts";
import { openSourceAs } from "./mounts.ts";

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

async function unmount(dir: string): Promise<void> {
  for (const name of existsSync(dir) ? readdirSync(dir) : []) await run(["umount", "--lazy", join(dir, name)]);
  rmSync(dir, { recursive: true, force: true });
}

export async function stageMounts(stateDir: string, sessionId: string, mounts: BindMount[], user: SessionUser): Promise<StagedMounts> {
  const dir = join(stagingRoot(stateDir), sessionId);
  const release = () => unmount(dir);
  if (mounts.length === 0) return { mounts: [], release: async () => {} };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const staged: BindMount[] = [];
  try {
    for (const [i, mount] of mounts.entries()) {
      const source = openSourceAs(mount.source, user);
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

/** Undoes the staging binds a crashed executor left behind (no session is being made at start-up). */
export async function releaseAllStaged(stateDir: string): Promise<void> {
  const root = stagingRoot(stateDir);
  for (const session of existsSync(root) ? readdirSync(root) : []) await unmount(join(root, session));
}
