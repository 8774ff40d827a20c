import { existsSync, realpathSync, statSync } from "node:fs";
import { ForbiddenError, UsageError } from "../errors.ts";
import type { BindMount, SessionUser } from "../runtime/docker/spec.ts";

/** Host paths no session may mount: the node's configuration, devices, Docker and Beaker's own control paths. */
const forbiddenSources = ["/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run", "/var/lib/docker", "/var/lib/beaker", "/root"];

/** `SRC:DST[:ro]` -> a mount. Pure: shape only. */
export function parseMountFlag(flag: string): BindMount {
  const parts = flag.split(":");
  if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && parts[2] !== "ro" && parts[2] !== "rw")) {
    throw new UsageError(`--mount "${flag}" must be SRC:DST or SRC:DST:ro`);
  }
  const [source, target] = parts as [string, string];
  if (!source.startsWith("/") || !target.startsWith("/")) throw new UsageError(`--mount "${flag}": both paths must be absolute`);
  if (target === "/") throw new UsageError(`--mount "${flag}": cannot mount over /`);
  return { source, target, readOnly: parts[2] === "ro" };
}

/** Whether a resolved host path is one no session may mount. */
export function isForbiddenSource(resolved: string): boolean {
  if (resolved === "/") return true;
  return forbiddenSources.some((p) => resolved === p || resolved.startsWith(`${p}/`));
}

/** Checks a mount against the node: it exists, is not forbidden, and the caller can read it (tested as the caller). */
export async function checkMount(mount: BindMount, user: SessionUser): Promise<BindMount> {
  if (!existsSync(mount.source)) throw new UsageError(`--mount ${mount.source}: no such file or directory`);
  const resolved = realpathSync(mount.source);
  if (isForbiddenSource(resolved)) throw new ForbiddenError(`--mount ${mount.source}: mounting ${resolved} into a session is not allowed`);
  if (user.uid !== 0) {
    const isDir = statSync(resolved).isDirectory();
    const test = isDir ? ["test", "-r", resolved, "-a", "-x", resolved] : ["test", "-r", resolved];
    const proc = Bun.spawn(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, `--groups=${[user.gid, ...user.groups].join(",")}`, "--", ...test], {
      stdout: "ignore",
      stderr: "ignore",
    });
    if ((await proc.exited) !== 0) throw new ForbiddenError(`--mount ${mount.source}: you (${user.name}) cannot read it`);
  }
  return { ...mount, source: resolved };
}
