import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../util/write-atomic.ts";
import { mergeGroup, mergePasswd, type GroupEntry } from "../../runtime/docker/passwd.ts";
import type { ImageFacts } from "../../runtime/docker/engine.ts";
import type { SessionUser } from "../../runtime/docker/spec.ts";

/**
 * The caller's /etc/passwd and /etc/group for an image: the image's own files (read from a container of the image with
 * no user mounts) with the caller merged in, written by the executor into its root-only state directory and mounted
 * read-only. Nothing a user controls is read or written on the way, and a session costs no archive upload.
 * Files are named by their content, so sessions of one user on one image share them.
 */
const accountsDir = (stateDir: string) => join(stateDir, "accounts");

export function writeAccountFiles(stateDir: string, facts: ImageFacts, user: SessionUser, groups: GroupEntry[]): { passwd: string; group: string } {
  const dir = accountsDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (kind: string, text: string) => {
    const path = join(dir, `${createHash("sha256").update(text).digest("hex").slice(0, 32)}.${kind}`);
    if (!existsSync(path)) writeFileAtomic(path, text, 0o644);
    return path;
  };
  return {
    passwd: write("passwd", mergePasswd(facts.passwd ?? "", user, facts.hasBash ? "/bin/bash" : "/bin/sh")),
    group: write("group", mergeGroup(facts.group ?? "", user, groups)),
  };
}

/** Removes account files no container mounts any more; a file younger than `graceMs` may belong to a create in flight. */
export function pruneAccountFiles(stateDir: string, inUse: ReadonlySet<string>, now: number, graceMs = 10 * 60_000): void {
  const dir = accountsDir(stateDir);
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const path = join(dir, name);
    if (inUse.has(path)) continue;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st && now - st.mtimeMs > graceMs) rmSync(path, { force: true });
  }
}
