import type { NounSpec } from "../../command.ts";
import { nodeGpusCommand } from "./gpus.ts";
import { nodeInfoCommand } from "./info.ts";
import { nodeListCommand } from "./list.ts";

export const nodeNoun: NounSpec = {
  name: "node",
  summary: "This node's GPUs, and the nodes the server knows",
  commands: [nodeInfoCommand, nodeGpusCommand, nodeListCommand],
};
