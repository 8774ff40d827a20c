import { formatCredential, parseCredential } from "../../../git/protocol.ts";
import type { CommandSpec, NounSpec } from "../../command.ts";
import { gitDeps } from "./deps.ts";

/**
 * git's side of Beaker's credential helper. Reads `key=value` lines until a blank line; answers `get` only for a host
 * it holds and otherwise prints nothing, so git falls through to the next helper or its prompt. Never prints a secret
 * anywhere but the answer git asked for.
 */
function action(name: "get" | "store" | "erase", summary: string): CommandSpec {
  return {
    name,
    summary,
    async run({ factory }) {
      const input = parseCredential(await factory.io.readStdin());
      const { store } = gitDeps(factory);
      if (name === "get") {
        const found = store.get(input);
        if (found) factory.io.out.write(formatCredential({ protocol: found.protocol, host: found.host, username: found.username, password: found.password }));
      } else if (name === "store") await store.store(input);
      else await store.erase(input);
    },
  };
}

export const gitCredentialNoun: NounSpec = {
  name: "credential",
  summary: "The git credential helper (git runs these; ~/.beaker/git-credentials)",
  commands: [
    action("get", "Answer git with the stored token for a host, or nothing"),
    action("store", "Keep the credential git approved"),
    action("erase", "Forget the credential git rejected"),
  ],
};
