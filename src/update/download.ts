import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from "node:fs";
import { connectionFailure } from "../util/net.ts";
import { UpdateError } from "../errors.ts";

export interface DownloadProgress {
  received: number;
  total: number;
}

/**
 * Streams a release file to `path`, checking its size and SHA-256 as it goes. Any failure (connection lost, too
 * many or too few bytes, a wrong digest, a full disk) removes the partial file and says which.
 */
export async function downloadVerified(
  url: string,
  path: string,
  expected: { size: number; sha256: string },
  onProgress: (p: DownloadProgress) => void,
  /** How the file is written (a test's stand-in for a full or failing disk). */
  io: { write: (fd: number, data: Uint8Array) => unknown; fsync: (fd: number) => void } = { write: writeSync, fsync: fsyncSync },
): Promise<void> {
  const fd = openSync(path, "wx", 0o700);
  let ok = false;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(10 * 60_000) });
    } catch (err) {
      throw Object.assign(new UpdateError(`cannot download ${url}: ${connectionFailure(err)}`), { cause: err });
    }
    if (!res.ok || !res.body) throw new UpdateError(`cannot download ${url}: the server answered ${res.status}`);
    const hash = createHash("sha256");
    let received = 0;
    const reader = res.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw Object.assign(new UpdateError(`the download of ${url} broke off after ${received} of ${expected.size} bytes: ${connectionFailure(err)}`), { cause: err });
      }
      if (chunk.done) break;
      received += chunk.value.length;
      if (received > expected.size) throw new UpdateError(`the download of ${url} is larger than the ${expected.size} bytes the manifest says`);
      hash.update(chunk.value);
      try {
        io.write(fd, chunk.value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UpdateError(code === "ENOSPC" ? `not enough disk space beside the binary for the new one (${expected.size} bytes)` : `cannot write the download: ${(err as Error).message}`);
      }
      onProgress({ received, total: expected.size });
    }
    if (received !== expected.size) throw new UpdateError(`the download of ${url} is truncated: ${received} of ${expected.size} bytes`);
    if (hash.digest("hex") !== expected.sha256) throw new UpdateError(`the download of ${url} does not match the manifest's SHA-256: refusing it`);
    try {
      io.fsync(fd);
    } catch (err) {
      throw new UpdateError(`cannot write the download: ${(err as Error).message}`);
    }
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) {
      try {
        unlinkSync(path);
      } catch {}
    }
  }
}
