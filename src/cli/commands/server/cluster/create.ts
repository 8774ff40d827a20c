import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverClusterCreateCommand = defineCommand({
  name: "create",
  args: "<NAME>",
  summary: "Create a cluster",
  options: [dbOption],
  async run({ args, flags, factory }) {
    const name = need(args[0], "NAME");
    await withStore(flags.db, factory, (s) => s.createCluster(name));
    factory.io.err.write(`created cluster ${name}; add nodes with: beaker server node add HOSTNAME --cluster ${name}\n`);
  },
});
