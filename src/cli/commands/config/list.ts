import { userConfigKeys } from "../../../config/user.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";
import { listConfig } from "./shared.ts";

export const configListCommand = defineCommand({
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
});
