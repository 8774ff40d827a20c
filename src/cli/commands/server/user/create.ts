import { defineCommand, jsonOption } from "../../../command.ts";
import { printJson } from "../../../output.ts";
import { dbOption, need, withStore } from "../shared.ts";

export const serverUserCreateCommand = defineCommand({
  name: "create",
  args: "<NAME>",
  summary: "Create an account and print its first token (shown once)",
  options: [{ flags: "--admin", description: "May see every session and node", kind: "boolean" }, dbOption, jsonOption],
  async run({ args, flags, factory }) {
    const created = await withStore(flags.db, factory, (s) => s.createUser(need(args[0], "NAME"), flags.admin ?? false));
    if (flags.json) return void printJson(factory.io, { name: created.user.name, admin: created.user.admin, token: created.token });
    factory.io.err.write(`created user ${created.user.name}${created.user.admin ? " (admin)" : ""}; their token, shown only now:\n`);
    factory.io.out.write(`${created.token}\n`);
  },
});
