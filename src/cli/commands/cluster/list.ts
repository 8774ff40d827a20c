import { defineCommand, jsonOption } from "../../command.ts";
import { printJson, printTable } from "../../output.ts";

export const clusterListCommand = defineCommand({
  name: "list",
  summary: "Clusters with their online nodes and free GPUs",
  options: [jsonOption],
  async run({ flags, factory }) {
    const clusters = await (await factory.server()).clusters();
    if (flags.json) return void printJson(factory.io, clusters);
    if (clusters.length === 0) return void factory.io.err.write("no clusters\n");
    printTable(
      factory.io,
      ["NAME", "NODES ONLINE", "GPUS FREE/TOTAL"],
      clusters.map((c) => [c.name, `${c.nodesOnline}/${c.nodes}`, `${c.gpusFree}/${c.gpusTotal}`]),
    );
  },
});
