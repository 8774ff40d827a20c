import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printNodes } from "../../output.ts";

export const nodeListCommand = defineCommand({
  name: "list",
  summary: "Every node the Beaker server knows, in every cluster",
  options: [jsonOption],
  async run({ flags, factory }) {
    const nodes = await (await factory.server()).nodes();
    if (flags.json) return void printJson(factory.io, nodes);
    if (nodes.length === 0) return void factory.io.err.write("no nodes\n");
    printNodes(factory.io, nodes, factory.now(), true);
  },
});
