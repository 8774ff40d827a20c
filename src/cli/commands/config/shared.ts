import { maskSecret, userConfigKeys } from "../../../config/user.ts";
import type { Factory } from "../../factory.ts";

export interface ConfigEntry {
  key: string;
  value: string;
  source: "file" | "env";
}

/** The effective settings: file values, overridden by their environment variables. Secrets masked. */
export function listConfig(factory: Factory): ConfigEntry[] {
  const config = factory.userConfig().read();
  const entries = new Map<string, ConfigEntry>();
  for (const [key, value] of Object.entries(config)) entries.set(key, { key, value, source: "file" });
  for (const [key, spec] of Object.entries(userConfigKeys)) {
    const fromEnv = spec.env ? factory.env[spec.env] : undefined;
    if (fromEnv) entries.set(key, { key, value: fromEnv, source: "env" });
  }
  return [...entries.values()]
    .map((e) => (userConfigKeys[e.key]?.secret ? { ...e, value: maskSecret(e.value) } : e))
    .sort((a, b) => a.key.localeCompare(b.key));
}
