import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { ConfigError } from "../errors.ts";

/** Parses YAML text into a mapping, naming the file and line on failure. */
export function parseYamlMapping(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = text.trim() === "" ? {} : Bun.YAML.parse(text);
  } catch (err) {
    const line = (err as { line?: number }).line;
    const reason = (err as Error).message.replace(/^YAML Parse error:\s*/, "");
    throw new ConfigError(`${file}${line ? ` line ${line}` : ""}: not valid YAML (${reason})`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${file}: expected a mapping of keys to values, found ${Array.isArray(value) ? "a list" : typeof value}`);
  }
  return value as Record<string, unknown>;
}

/**
 * Writes a file atomically: a temp file beside it with the final mode, fsync, then rename over the old one.
 * A crash leaves either the old file or the new one, never half of either.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(temp, "wx", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (err) {
    unlinkSync(temp);
    throw err;
  }
}
