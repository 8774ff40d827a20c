import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson } from "../../output.ts";
import { printNodes } from "../cluster/index.ts";

export const nodeListCommand: CommandSpec = {
  name: "list",
  summary: "Every node the Beaker server knows, in every cluster",
  options: [jsonOption],
  async run({ flags, factory }) {
    const nodes = await (await factory.server()).nodes();
    if (flags.json) return void printJson(factory.io, nodes);
    if (nodes.length === 0) return void factory.io.err.write("no nodes\n");
    printNodes(factory.io, nodes, factory.now(), true);
  },
};
