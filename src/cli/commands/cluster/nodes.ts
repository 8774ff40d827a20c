import { UsageError } from "../../../errors.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printNodes } from "../../output.ts";

export const clusterNodesCommand = defineCommand({
  name: "nodes",
  args: "<NAME>",
  summary: "A cluster's nodes: hostname, GPU type, free GPUs, status, last seen",
  options: [jsonOption],
  async run({ args, flags, factory }) {
    if (!args[0]) throw new UsageError("missing argument: NAME");
    const nodes = await (await factory.server()).clusterNodes(args[0]);
    if (flags.json) return void printJson(factory.io, nodes);
    if (nodes.length === 0) return void factory.io.err.write(`no nodes in ${args[0]}\n`);
    printNodes(factory.io, nodes, factory.now(), false);
  },
});
