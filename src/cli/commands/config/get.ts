import { NotFoundError } from "../../../errors.ts";
import { checkKey } from "../../../config/user.ts";
import { defineCommand } from "../../command.ts";
import { listConfig } from "./shared.ts";

export const configGetCommand = defineCommand({
  name: "get",
  args: "<KEY>",
  summary: "Print one setting (secrets masked)",
  async run({ args, factory }) {
    const key = args[0]!;
    checkKey(key);
    const entry = listConfig(factory).find((e) => e.key === key);
    if (!entry) throw new NotFoundError(`"${key}" is not set`);
    factory.io.out.write(`${entry.value}\n`);
  },
});
