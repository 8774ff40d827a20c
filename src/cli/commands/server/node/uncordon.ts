import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverNodeUncordonCommand = defineCommand({
  name: "uncordon",
  args: "<HOSTNAME>",
  summary: "Let a cordoned node take new sessions again",
  options: [dbOption],
  async run({ args, flags, factory }) {
    const host = need(args[0], "HOSTNAME");
    await withStore(flags.db, factory, (s) => s.setCordoned(host, false));
    factory.io.err.write(`uncordoned ${host}\n`);
  },
});
