import { UsageError } from "../../../errors.ts";
import type { NodeInfo } from "../../../server/types.ts";
import { jsonOption, type NounSpec } from "../../command.ts";
import type { IO } from "../../io.ts";
import { printJson, printTable } from "../../output.ts";
import { formatAgo } from "../../../util/time.ts";

/** HOSTNAME, (CLUSTER), GPU TYPE, GPUS FREE/TOTAL, STATUS, LAST SEEN. */
export function printNodes(io: IO, nodes: NodeInfo[], now: Date, withCluster: boolean): void {
  printTable(
    io,
    ["HOSTNAME", ...(withCluster ? ["CLUSTER"] : []), "GPU TYPE", "GPUS FREE/TOTAL", "STATUS", "LAST SEEN"],
    nodes.map((n) => [n.hostname, ...(withCluster ? [n.cluster] : []), n.gpuType ?? "-", `${n.gpusFree}/${n.gpusTotal}`, n.status, formatAgo(n.lastSeen, now.getTime())]),
  );
}

export const clusterNoun: NounSpec = {
  name: "cluster",
  summary: "Clusters and their nodes (from the Beaker server)",
  commands: [
    {
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
    },
    {
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
    },
  ],
};
