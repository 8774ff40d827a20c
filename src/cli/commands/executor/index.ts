import type { NounSpec } from "../../command.ts";
import { executorInstallCommand } from "./install.ts";
import { executorRestartCommand } from "./restart.ts";
import { executorRunCommand } from "./run.ts";
import { executorStatusCommand } from "./status.ts";

export const executorNoun: NounSpec = {
  name: "executor",
  summary: "The node daemon that owns Docker, the GPUs and the session queue",
  commands: [executorRunCommand, executorInstallCommand, executorStatusCommand, executorRestartCommand],
};
