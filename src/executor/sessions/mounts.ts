import { closeSync, constants, fstatSync, openSync, readlinkSync, type Stats } from "node:fs";
import { normalize } from "node:path";
import { ForbiddenError, UsageError } from "../../errors.ts";
import type { BindMount, SessionUser } from "../../runtime/docker/spec.ts";
import { hasControlChars } from "../validate.ts";

/**
 * Host paths no session may mount, nor any folder that holds one: the node's configuration, devices, Docker and
 * Beaker's own control paths (with the configured state folder and socket folder: `SourcePolicy.refused`).
 */
const forbiddenSources = ["/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run", "/var/lib/docker", "/var/lib/beaker", "/root"];
/** System trees: mounted only where the admin lists them (or a folder in them) in mountPaths. */
const systemTrees = ["/var", "/usr", "/opt", "/srv", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/snap", "/boot", "/lost+found"];
/** Paths inside a session no mount may cover: the system the session runs on, and the beaker binary Beaker mounts. */
const forbiddenTargets = ["/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys", "/dev", "/run", "/boot", "/var/run"];

const O_PATH = 0o10000000;
const maxSymlinks = 40;

const under = (path: string, roots: string[]) => path === "/" || roots.some((p) => path === p || path.startsWith(`${p}/`));

/** `SRC:DST[:ro]` -> a mount. Pure: shape and targets only. */
export function parseMountFlag(flag: string): BindMount {
  if (hasControlChars(flag) || flag.includes(",")) throw new UsageError("--mount paths may not contain control characters or commas");
  const parts = flag.split(":");
  if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && parts[2] !== "ro" && parts[2] !== "rw")) {
    throw new UsageError(`--mount "${flag}" must be SRC:DST or SRC:DST:ro`);
  }
  const [source, target] = parts as [string, string];
  if (!source.startsWith("/") || !target.startsWith("/")) throw new UsageError(`--mount "${flag}": both paths must be absolute`);
  const cleanTarget = normalize(target).replace(/(.)\/+$/, "$1");
  if (cleanTarget === "/") throw new UsageError(`--mount "${flag}": cannot mount over /`);
  if (under(cleanTarget, forbiddenTargets)) throw new UsageError(`--mount "${flag}": ${cleanTarget} is a system path inside the session; mount somewhere else, like /data`);
  return { source, target: cleanTarget, readOnly: parts[2] === "ro" };
}

/** Whether a resolved host path is one no session may mount: in or around the node's control paths (and `refused`). */
export function isForbiddenSource(resolved: string, refused: string[] = []): boolean {
  const control = [...forbiddenSources, ...refused];
  return under(resolved, control) || control.some((path) => under(path, [resolved]));
}

/**
 * Where a caller's `--mount` sources may come from. `roots`: the folders a non-root caller's sources must lie in (their
 * home, and the node's mountPaths, as written and as they resolve); `anywhere`: root, whose sources may lie anywhere
 * outside the system trees and control paths; `refused`: Beaker's own folders on this node (state, socket).
 */
export interface SourcePolicy {
  roots: string[];
  anywhere: boolean;
  refused: string[];
  /** The mountPaths, for the message that says what may be mounted. */
  listed: string[];
}

/** The policy for `user` on a node whose admin lists `mountPaths`. Pure: `resolve` gives a path's real location. */
export function sourcePolicy(node: { mountPaths: string[]; refused: string[] }, user: Pick<SessionUser, "uid" | "home">, resolve: (path: string) => string | null): SourcePolicy {
  const both = (path: string) => [normalize(path), resolve(path)].filter((p): p is string => p !== null);
  // A home of "/" or of a whole system tree (service accounts) gives no folder of its own.
  const home = ["/", ...systemTrees].includes(normalize(user.home)) ? [] : both(user.home);
  // mountPaths that do not exist on this node are not mounted, and give nothing either.
  const present = node.mountPaths.filter((p) => resolve(p) !== null);
  const listed = present.flatMap(both).filter((p) => p !== "/");
  return { roots: [...new Set([...home, ...listed])], anywhere: user.uid === 0, refused: node.refused.flatMap(both), listed: present };
}

/** Whether a source (as typed, or as it resolves) may be mounted under `policy`. Pure. */
export function sourceAllowed(path: string, policy: SourcePolicy): boolean {
  if (isForbiddenSource(path, policy.refused)) return false;
  if (under(path, policy.roots)) return true;
  return policy.anywhere && !under(path, systemTrees);
}

/** Whether `user` may search (x) or read (r) what `st` describes, by its mode bits (owner, group, other). Pure. */
export function permits(st: Pick<Stats, "uid" | "gid" | "mode">, user: Pick<SessionUser, "uid" | "gid" | "groups">, bit: 4 | 1): boolean {
  if (user.uid === 0) return true;
  const shift = st.uid === user.uid ? 6 : st.gid === user.gid || user.groups.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bit) !== 0;
}

/** An opened source: the handle that is bound (never the path again), and where it is now. */
export interface CheckedSource {
  fd: number;
  path: string;
  isDirectory: boolean;
  close(): void;
}

/**
 * Opens `source` the way the kernel would resolve it for `user`, one component at a time from handles the executor
 * holds (O_PATH, never following a link it has not read itself), checking at each step that the user may search the
 * directory, and at the end that they may read what it names. What is bound later is this handle, so swapping a
 * component for a symlink after the check changes nothing. Every way of failing gives the same answer, so the check
 * tells nobody what exists where they cannot look.
 */
export function openSourceAs(source: string, user: SessionUser, policy: SourcePolicy): CheckedSource {
  const refuse = () => new UsageError(`--mount ${source}: no such file or directory that you (${user.name}) can read`);
  const open = (path: string) => openSync(path, O_PATH | constants.O_NOFOLLOW);
  const held: number[] = [];
  const keep = (fd: number) => (held.push(fd), fd);
  try {
    let dir = keep(open("/"));
    const pending = source.split("/").filter(Boolean);
    let links = 0;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === ".") continue;
      if (!permits(fstatSync(dir), user, 1)) throw refuse();
      const fd = keep(open(`/proc/self/fd/${dir}/${name}`));
      const st = fstatSync(fd);
      if (st.isSymbolicLink()) {
        if (++links > maxSymlinks) throw refuse();
        const target = readlinkSync(`/proc/self/fd/${dir}/${name}`);
        pending.unshift(...target.split("/").filter(Boolean));
        if (target.startsWith("/")) dir = keep(open("/"));
        continue;
      }
      if (pending.length > 0 && !st.isDirectory()) throw refuse();
      dir = fd;
    }
    const st = fstatSync(dir);
    const path = readlinkSync(`/proc/self/fd/${dir}`);
    if (!(st.isDirectory() || st.isFile()) || !permits(st, user, 4) || (st.isDirectory() && !permits(st, user, 1)) || !sourceAllowed(path, policy)) throw refuse();
    const fd = dir;
    for (const other of held) if (other !== fd) closeSync(other);
    held.length = 0;
    return { fd, path, isDirectory: st.isDirectory(), close: () => closeSync(fd) };
  } catch (err) {
    for (const fd of held) closeSync(fd);
    if (err instanceof UsageError) throw err;
    throw refuse();
  }
}

/**
 * Checks a mount for `user` (a source the policy refuses as typed is refused by name; everything else is the uniform
 * answer of `openSourceAs`, which checks the policy again where the source resolves) and returns it with the source
 * where it resolves now. The handle is closed: the bind itself reopens and stages the source right before the
 * container is made (`stage.ts`).
 */
export function checkMount(mount: BindMount, user: SessionUser, policy: SourcePolicy): BindMount {
  const typed = normalize(mount.source);
  if (!sourceAllowed(typed, policy)) {
    const allowed = policy.anywhere ? "" : ` (only your home${policy.listed.length > 0 ? ` and this node's mountPaths: ${policy.listed.join(", ")}` : ""})`;
    // The path as typed, only when it differs: a refusal reads the same whatever the path names.
    throw new ForbiddenError(`--mount ${mount.source}: ${typed === mount.source ? "" : `${typed} is `}not allowed in a session${allowed}`);
  }
  const opened = openSourceAs(mount.source, user, policy);
  opened.close();
  return { ...mount, source: opened.path };
}
