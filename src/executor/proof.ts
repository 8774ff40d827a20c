import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { dirname, join } from "node:path";
import { AuthError } from "../errors.ts";

/**
 * Who is calling, without trusting the caller's word. The caller creates a file in a root-owned sticky directory
 * (mode 1733: anyone may create, nobody may list or remove another's files) and sends its name and the secret in it.
 * The kernel sets the file's owner, so its uid is the caller's; the executor lstat()s it without following links,
 * checks the secret, and deletes it. A user can neither forge another's file nor read theirs.
 */
export const proofHeader = "x-beaker-proof";
/** The caller's Beaker user token, when the node has a server (the executor checks it there). Local socket only. */
export const tokenHeader = "x-beaker-token";
const nameLength = 32;
const maxAgeMs = 60_000;

export function proofDirFor(socketPath: string): string {
  return join(dirname(socketPath), "proofs");
}

/** Client side: writes a fresh proof file and returns the header value. */
export function createProof(proofDir: string): { header: string; path: string } {
  const name = randomBytes(nameLength / 2).toString("hex");
  const secret = randomBytes(32).toString("hex");
  const path = join(proofDir, name);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, secret);
  } finally {
    closeSync(fd);
  }
  return { header: `${name}:${secret}`, path };
}

export function removeProof(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

/**
 * Executor side: the uid that owns a valid proof. Throws AuthError otherwise. The proof is consumed. Only a file
 * written moments ago by its owner alone counts: regular, one link, no permission for anyone else (so nobody but its
 * owner can have put the secret in it), changed within the last minute (ctime: a user cannot set it back).
 */
export function verifyProof(proofDir: string, header: string | null, now = Date.now()): number {
  const match = header ? /^([0-9a-f]{32}):([0-9a-f]{64})$/.exec(header) : null;
  if (!match) throw new AuthError("missing or malformed caller proof");
  const path = join(proofDir, match[1]!);
  try {
    const stat = lstatSync(path);
    if (!stat.isFile()) throw new AuthError("caller proof is not a regular file");
    if (stat.nlink !== 1) throw new AuthError("caller proof has other links");
    if ((stat.mode & 0o077) !== 0) throw new AuthError("caller proof may be written by others (it must be mode 0600)");
    if (stat.size > 128) throw new AuthError("caller proof is too large");
    if (Math.abs(now - stat.mtimeMs) > maxAgeMs || Math.abs(now - stat.ctimeMs) > maxAgeMs) throw new AuthError("caller proof is stale");
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    let uid: number;
    let content: Buffer;
    try {
      const opened = fstatSync(fd);
      if (opened.ino !== stat.ino || opened.dev !== stat.dev) throw new AuthError("caller proof changed while read");
      uid = opened.uid;
      content = Buffer.alloc(65);
      const n = readSync(fd, content, 0, 65, 0);
      content = content.subarray(0, n);
    } finally {
      closeSync(fd);
    }
    const expected = Buffer.from(match[2]!);
    if (content.length !== expected.length || !timingSafeEqual(content, expected)) throw new AuthError("caller proof does not match");
    return uid;
  } catch (err) {
    if (err instanceof AuthError) throw err;
    throw new AuthError(`caller proof cannot be checked: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    removeProof(path);
  }
}

/** The most proof files one uid may leave in the directory; a caller makes one per request and the executor eats it. */
const maxPerUid = 64;

/**
 * Clears the proof directory of what no caller will send any more: files older than a proof may be, anything that is
 * not a small regular file, and, per uid, all but the newest few (anyone may create files there, so this bounds it).
 */
export function sweepProofs(proofDir: string, now = Date.now()): number {
  let removed = 0;
  const byUid = new Map<number, Array<{ path: string; ctime: number }>>();
  for (const name of readdirSync(proofDir)) {
    const path = join(proofDir, name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (!st.isFile() || st.size > 128 || now - st.ctimeMs > maxAgeMs) {
      rmSync(path, { recursive: true, force: true });
      removed++;
      continue;
    }
    byUid.set(st.uid, [...(byUid.get(st.uid) ?? []), { path, ctime: st.ctimeMs }]);
  }
  for (const files of byUid.values()) {
    for (const { path } of files.sort((a, b) => b.ctime - a.ctime).slice(maxPerUid)) {
      rmSync(path, { force: true });
      removed++;
    }
  }
  return removed;
}
