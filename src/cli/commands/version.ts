import { buildInfo, formatVersion } from "../../version.ts";
import { defineCommand, jsonOption } from "../command.ts";
import { printJson } from "../output.ts";

export const versionCommand = defineCommand({
  name: "version",
  summary: "Show the version, commit and platform of this binary",
  options: [jsonOption],
  async run({ flags, factory }) {
    if (flags.json) printJson(factory.io, buildInfo);
    else factory.io.out.write(`${formatVersion(buildInfo)}\n`);
  },
});
