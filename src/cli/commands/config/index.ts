import type { NounSpec } from "../../command.ts";
import { configGetCommand } from "./get.ts";
import { configListCommand } from "./list.ts";
import { configSetCommand } from "./set.ts";
import { configUnsetCommand } from "./unset.ts";

export const configNoun: NounSpec = {
  name: "config",
  summary: "Read and change your settings (~/.beaker/config.yml)",
  commands: [configListCommand, configGetCommand, configSetCommand, configUnsetCommand],
};
