/** What a failed Docker call means: the engine down, a status, a missing object, and its message in one line. */

/** Whether an error means the engine itself is not answering. */
export function isDockerDown(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === "ECONNREFUSED" || code === "ENOENT" || code === "EACCES" || code === "ECONNRESET" || code === "EPIPE";
}

/** Docker's HTTP status for a failed call (404: no such container), or null. */
export function dockerStatus(err: unknown): number | null {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : null;
}

export const isNotFound = (err: unknown): boolean => dockerStatus(err) === 404;

/** Docker's own words for a failed call, without the HTTP framing dockerode adds. */
export function dockerMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string };
  const text = e.json?.message ?? e.message ?? String(err);
  return text.replace(/^\(HTTP code \d+\) [\w ]+ - /, "").replace(/\s+/g, " ").trim();
}
