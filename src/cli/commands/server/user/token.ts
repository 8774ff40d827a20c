import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverUserTokenCommand = defineCommand({
  name: "token",
  args: "<NAME>",
  summary: "Issue another token for an account (shown once)",
  options: [dbOption],
  async run({ args, flags, factory }) {
    const issued = await withStore(flags.db, factory, (s) => s.issueUserToken(need(args[0], "NAME")));
    factory.io.out.write(`${issued.token}\n`);
  },
});
