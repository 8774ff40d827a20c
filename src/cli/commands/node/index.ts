import type { NounSpec } from "../../command.ts";
import { nodeGpusCommand } from "./gpus.ts";

export const nodeNoun: NounSpec = {
  name: "node",
  summary: "This node: its GPUs",
  commands: [nodeGpusCommand],
};
