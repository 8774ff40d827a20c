import type { SessionUser } from "./spec.ts";

/**
 * The caller's entries merged into an image's /etc/passwd and /etc/group. Lines that clash with the caller's name or
 * ids are replaced, so `whoami`, `id` and the prompt show the caller on any image. Pure.
 */
export function mergePasswd(existing: string, user: SessionUser, shell: string): string {
  const kept = existing
    .split("\n")
    .filter((line) => line.trim() !== "")
    .filter((line) => {
      const [name, , uid] = line.split(":");
      return name !== user.name && Number(uid) !== user.uid;
    });
  const gecos = user.gecos.replace(/[:\n]/g, " ");
  return [...kept, `${user.name}:x:${user.uid}:${user.gid}:${gecos}:${user.home}:${shell}`].join("\n") + "\n";
}

export interface GroupEntry {
  gid: number;
  name: string;
}

export function mergeGroup(existing: string, user: SessionUser, groups: GroupEntry[]): string {
  const names = new Set(groups.map((g) => g.name));
  const gids = new Set(groups.map((g) => g.gid));
  const kept = existing
    .split("\n")
    .filter((line) => line.trim() !== "")
    .filter((line) => {
      const [name, , gid] = line.split(":");
      return !names.has(name!) && !gids.has(Number(gid));
    });
  const added = groups.map((g) => `${g.name}:x:${g.gid}:${g.gid === user.gid ? "" : user.name}`);
  return [...kept, ...added].join("\n") + "\n";
}
