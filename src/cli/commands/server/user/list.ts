import { defineCommand, jsonOption } from "../../../command.ts";
import { printJson, printTable } from "../../../output.ts";
import { dbOption, withStore } from "../shared.ts";

export const serverUserListCommand = defineCommand({
  name: "list",
  summary: "List accounts",
  options: [dbOption, jsonOption],
  async run({ flags, factory }) {
    const users = await withStore(flags.db, factory, (s) => s.listUsers());
    if (flags.json) return void printJson(factory.io, users);
    printTable(factory.io, ["NAME", "ADMIN", "TOKENS"], users.map((u) => [u.name, u.admin ? "yes" : "no", String(u.tokens)]));
  },
});
