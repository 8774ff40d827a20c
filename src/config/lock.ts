import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";

/**
 * An exclusive lock file (O_CREAT|O_EXCL) around a read-modify-write, so concurrent `beaker config set` runs
 * never lose each other's changes. A lock older than `staleMs` whose owner is gone is taken over.
 */
export async function withFileLock<T>(lockPath: string, fn: () => T | Promise<T>, staleMs = 10_000): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; !createLock(lockPath); attempt++) {
    if (isStale(lockPath, staleMs)) {
      removeLock(lockPath);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockPath}`);
    await Bun.sleep(Math.min(50, 2 + attempt * 2));
  }
  try {
    return await fn();
  } finally {
    removeLock(lockPath);
  }
}

/**
 * Takes the lock now, without waiting: the release function, or the pid of the live process that holds it. A lock
 * whose owner is gone is taken over whatever its age (its holder may rightly keep it for minutes, as an upgrade does).
 */
export function tryFileLock(lockPath: string): { release: () => void } | { heldBy: number } {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (createLock(lockPath)) return { release: () => removeLock(lockPath) };
    const pid = Number(readFileSync(lockPath, "utf8"));
    if (isAlive(pid)) return { heldBy: pid };
    unlinkSync(lockPath);
  }
  return { heldBy: Number.NaN };
}

/** Creates the lock file with this process's pid; false when it exists already. */
function createLock(lockPath: string): boolean {
  try {
    const fd = openSync(lockPath, "wx", 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return false;
  }
}

function removeLock(lockPath: string): void {
  try {
    unlinkSync(lockPath);
  } catch {}
}

function isStale(lockPath: string, staleMs: number): boolean {
  try {
    const pid = Number(readFileSync(lockPath, "utf8"));
    if (pid > 0 && !isAlive(pid)) return true;
    return Date.now() - statSync(lockPath).mtimeMs > staleMs;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
