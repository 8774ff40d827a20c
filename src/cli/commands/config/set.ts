import { UsageError } from "../../../errors.ts";
import { checkKey } from "../../../config/user.ts";
import { defineCommand } from "../../command.ts";
import { promptSecret } from "../../prompt.ts";

export const configSetCommand = defineCommand({
  name: "set",
  args: "<KEY> [VALUE]",
  summary: "Change one setting (secrets are read from stdin or a hidden prompt, never from the command line)",
  examples: ["beaker config set default_image ubuntu:22.04", "beaker config set user_token - < token.txt"],
  async run({ args, factory }) {
    const [key, given] = args as [string, string | undefined];
    const spec = checkKey(key);
    let value: string;
    if (spec.secret) {
      if (given !== undefined && given !== "-") {
        throw new UsageError(`${key} is a secret and is not taken from the command line; pass "-" and give it on stdin`);
      }
      value =
        given === "-"
          ? (await factory.io.readStdin()).trim()
          : await promptSecret(factory.io, `${key}:`, `pass "-" and give it on stdin`);
    } else {
      if (given === undefined) throw new UsageError(`missing VALUE for ${key}`);
      value = given.trim();
    }
    if (value === "") throw new UsageError(`${key} cannot be empty; use 'beaker config unset ${key}' to remove it`);
    const problem = spec.validate?.(value);
    if (problem) throw new UsageError(`${key} ${problem}`);
    const store = factory.userConfig();
    await store.update((config) => {
      config[key] = value;
    });
    factory.io.err.write(`${key} saved in ${store.path}\n`);
  },
});
