import { defineCommand } from "../../../command.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverTokenRevokeCommand = defineCommand({
  name: "revoke",
  args: "<ID>",
  summary: "Revoke a token by its id (bkr_<id>_...) ; it stops working at once",
  options: [dbOption],
  async run({ args, flags, factory }) {
    const revoked = await withStore(flags.db, factory, (s) => s.revokeToken(need(args[0], "ID")));
    factory.io.err.write(`revoked ${revoked.kind} token ${revoked.id} of ${revoked.owner}\n`);
  },
});
