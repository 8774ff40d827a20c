import { UsageError } from "../../../../errors.ts";
import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverNodeAddCommand = defineCommand({
  name: "add",
  args: "<HOSTNAME>",
  summary: "Add a node to a cluster and print the token its executor reports with",
  options: [{ flags: "--cluster <name>", description: "The node's cluster", kind: "string" }, dbOption],
  async run({ args, flags, factory }) {
    const cluster = flags.cluster;
    if (!cluster) throw new UsageError("--cluster is required");
    const host = need(args[0], "HOSTNAME");
    const issued = await withStore(flags.db, factory, (s) => s.addNode(host, cluster));
    factory.io.err.write(
      `added ${host} to ${cluster}. On ${host}, save this token in /etc/beaker/executor-token (mode 0600) and set server: in /etc/beaker/config.yml:\n`,
    );
    factory.io.out.write(`${issued.token}\n`);
  },
});
