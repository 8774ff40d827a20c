import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import { UsageError } from "../../errors.ts";
import type { SessionUser } from "../../runtime/docker/spec.ts";
import { permits } from "./mounts.ts";

/**
 * runc makes a missing mount target, and a missing working directory, as root: inside whatever is mounted above it,
 * which for a bind mount is a folder on the host (the user's home, a folder of mountPaths the user may only read, a
 * user's --mount source). Root never makes anything on the host for a user. Before Docker is asked (and again right
 * before the container starts), every target and the working directory that lie inside another bind mount are walked
 * in that mount's host folder without following links (a link is refused: runc would follow it inside the session,
 * perhaps into another mount); what is missing is made by the user themselves (`setpriv` to their uid and groups,
 * `mkdir -p` from the folder that was walked), so their own permissions decide; then the whole path is walked again.
 * What cannot be made is refused with one line. A session with nothing nested costs a comparison of paths.
 */

/** A bind mount as Docker is given it (`HostConfig.Mounts`). */
export interface MountSpec {
  Source?: string;
  Target?: string;
}

/** A path runc would have to find (or make) inside another bind mount. */
export interface NestedPath {
  /** The path inside the session, and what asked for it (for the message). */
  path: string;
  flag: "--mount" | "--workdir";
  /** The mount that holds it: its target inside the session, its folder on the host, and the names below it. */
  parentTarget: string;
  hostDir: string;
  parts: string[];
  /** For a mount: its host source (a file mount needs a file as its target); null for the working directory. */
  source: string | null;
}

const inside = (path: string, parent: string) => parent === "/" || path.startsWith(`${parent}/`);

/** Which targets (and the working directory) lie inside another bind mount, and where on the host. Pure. */
export function planNestedPaths(mounts: MountSpec[], workdir: string): NestedPath[] {
  const binds = mounts.flatMap((m) => (m.Source && m.Target ? [{ source: m.Source, target: m.Target }] : []));
  const wanted = [...binds.map((b) => ({ path: b.target, flag: "--mount" as const, source: b.source })), { path: workdir, flag: "--workdir" as const, source: null }];
  const nested: NestedPath[] = [];
  for (const want of wanted) {
    if (want.flag === "--workdir" && binds.some((b) => b.target === want.path)) continue;
    // runc mounts shallower targets first: the deepest mount above a path is the one it is made in.
    const parent = binds.filter((b) => inside(want.path, b.target)).sort((a, b) => b.target.length - a.target.length)[0];
    if (!parent) continue;
    const parts = want.path.slice(parent.target === "/" ? 1 : parent.target.length + 1).split("/").filter(Boolean);
    if (parts.length === 0) continue;
    nested.push({ ...want, parentTarget: parent.target, hostDir: parent.source, parts });
  }
  return nested;
}

const O_PATH = 0o10000000;

type Walk = { ok: true } | { ok: false; missing: string[]; dirFd: number; link: boolean };

/**
 * Walks `parts` under the handle `dirFd` without following links; on a missing name (or a folder `user` may not
 * search, which answers the same, so nothing is learnt of what is in it), the deepest folder found.
 */
function walk(dirFd: number, parts: string[], held: number[], user: SessionUser): Walk {
  let dir = dirFd;
  for (const [i, name] of parts.entries()) {
    if (!permits(fstatSync(dir), user, 1)) return { ok: false, missing: parts.slice(i), dirFd: dir, link: false };
    let fd: number;
    try {
      fd = openSync(`/proc/self/fd/${dir}/${name}`, O_PATH | constants.O_NOFOLLOW);
    } catch {
      return { ok: false, missing: parts.slice(i), dirFd: dir, link: false };
    }
    held.push(fd);
    const st = fstatSync(fd);
    const last = i === parts.length - 1;
    if (st.isSymbolicLink() || (!last && !st.isDirectory())) return { ok: false, missing: [], dirFd: dir, link: true };
    dir = fd;
  }
  return { ok: true };
}

/** Runs `args` as `user` (their uid, gid and groups) in the folder the handle `dirFd` is; whether it succeeded. */
async function runAsUser(user: SessionUser, dirFd: number, args: string[]): Promise<boolean> {
  const setpriv = Bun.which("setpriv", { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" });
  if (!setpriv) return false;
  const groups = user.groups.length > 0 ? [`--groups=${user.groups.join(",")}`] : ["--clear-groups"];
  const proc = Bun.spawn([setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, ...groups, "--", ...args], {
    cwd: `/proc/${process.pid}/fd/${dirFd}`,
    env: { PATH: "/usr/bin:/bin" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  return (await proc.exited) === 0;
}

/** Makes what is missing of one nested path as the user, and checks the whole path again; refuses on any failure. */
async function ensureOne(nested: NestedPath, user: SessionUser): Promise<void> {
  const refuse = (why = `it does not exist and you (${user.name}) cannot make it in ${nested.parentTarget}; make it first, or use another path`) =>
    new UsageError(`${nested.flag} ${nested.path}: ${why}`);
  const held: number[] = [];
  try {
    const isFile = nested.source !== null && statSync(nested.source).isFile();
    held.push(openSync(nested.hostDir, O_PATH | constants.O_DIRECTORY));
    const first = walk(held[0]!, nested.parts, held, user);
    if (first.ok) return;
    if (first.link) throw refuse(`a link or a file is on the way inside ${nested.parentTarget} (links there are not followed); name the real path`);
    const [dirs, file] = isFile ? [first.missing.slice(0, -1), first.missing.at(-1)!] : [first.missing, null];
    if (dirs.length > 0 && !(await runAsUser(user, first.dirFd, ["mkdir", "-p", "--", dirs.join("/")]))) throw refuse();
    if (file !== null && !(await runAsUser(user, first.dirFd, ["touch", "--", [...dirs, file].join("/")]))) throw refuse();
    if (!walk(held[0]!, nested.parts, held, user).ok) throw refuse();
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw refuse();
  } finally {
    for (const fd of held) closeSync(fd);
  }
}

/** Every nested path exists as a path of folders (no links), made by `user` where it was missing; else one refusal. */
export async function ensureNestedPaths(nested: NestedPath[], user: SessionUser): Promise<void> {
  for (const one of nested) await ensureOne(one, user);
}
