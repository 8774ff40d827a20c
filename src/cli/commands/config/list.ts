import { maskSecret, userConfigKeys } from "../../../config/user.ts";
import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";
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

export const configListCommand: CommandSpec = {
  name: "list",
  summary: "Show your settings (secrets masked)",
  options: [jsonOption],
  async run({ flags, factory }) {
    const entries = listConfig(factory);
    if (flags.json) {
      printJson(factory.io, Object.fromEntries(entries.map((e) => [e.key, e.value])));
      return;
    }
    if (entries.length === 0) {
      factory.io.err.write(`no settings in ${factory.userConfig().path}; set one with 'beaker config set KEY VALUE'\n`);
      return;
    }
    printTable(
      factory.io,
      ["KEY", "VALUE", "SOURCE"],
      entries.map((e) => [e.key, e.value, e.source === "env" ? userConfigKeys[e.key]!.env! : "config"]),
    );
  },
};
