import type { NounSpec } from "../../command.ts";
import { clusterListCommand } from "./list.ts";
import { clusterNodesCommand } from "./nodes.ts";

export const clusterNoun: NounSpec = {
  name: "cluster",
  summary: "Clusters and their nodes (from the Beaker server)",
  commands: [clusterListCommand, clusterNodesCommand],
};
