import { checkKey } from "../../../config/user.ts";
import { defineCommand } from "../../command.ts";

export const configUnsetCommand = defineCommand({
  name: "unset",
  args: "<KEY>",
  summary: "Remove one setting",
  async run({ args, factory }) {
    const key = args[0]!;
    checkKey(key);
    const store = factory.userConfig();
    let had = false;
    await store.update((config) => {
      had = key in config;
      delete config[key];
    });
    factory.io.err.write(had ? `${key} removed from ${store.path}\n` : `${key} was not set\n`);
  },
});
