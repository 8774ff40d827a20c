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
