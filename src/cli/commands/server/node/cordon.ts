import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverNodeCordonCommand = defineCommand({
  name: "cordon",
  args: "<HOSTNAME>",
  summary: "Stop new sessions on a node (running ones go on)",
  options: [dbOption],
  async run({ args, flags, factory }) {
    const host = need(args[0], "HOSTNAME");
    await withStore(flags.db, factory, (s) => s.setCordoned(host, true));
    factory.io.err.write(`cordoned ${host}: no new sessions start there\n`);
  },
});
