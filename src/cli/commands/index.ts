import type { Program } from "../app.ts";
import { configNoun } from "./config/index.ts";
import { nodeNoun } from "./node/index.ts";
import { versionCommand } from "./version.ts";

export const program: Program = {
  nouns: [configNoun, nodeNoun],
  commands: [versionCommand],
};
