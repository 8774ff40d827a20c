import type { Program } from "../app.ts";
import { configNoun } from "./config/index.ts";
import { executorNoun } from "./executor/index.ts";
import { nodeNoun } from "./node/index.ts";
import { sessionNoun } from "./session/index.ts";
import { versionCommand } from "./version.ts";

export const program: Program = {
  nouns: [sessionNoun, nodeNoun, configNoun, executorNoun],
  commands: [versionCommand],
};
