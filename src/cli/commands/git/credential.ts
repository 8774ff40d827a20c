import { formatCredential, parseCredential } from "../../../git/protocol.ts";
import { defineCommand, type CommandSpec, type NounSpec } from "../../command.ts";
import { gitDeps } from "./deps.ts";

/**
 * git's side of Beaker's credential helper, with the contract of git's own `store` (git-credential(1)): reads
 * `key=value` lines until a blank line; `get` answers with the username and password of the newest credential that
 * matches and otherwise prints nothing, so git falls through to the next helper or its prompt; `store` keeps one
 * credential per protocol, host, path and username; `erase` forgets only what matches. Never prints a secret anywhere
 * but the answer git asked for.
 */
function action(name: "get" | "store" | "erase", summary: string): CommandSpec {
  return defineCommand({
    name,
    summary,
    async run({ factory }) {
      const input = parseCredential(await factory.io.readStdin());
      const { store } = gitDeps(factory);
      if (name === "get") {
        const found = store.get(input);
        if (found) factory.io.out.write(formatCredential({ username: found.username, password: found.password }));
      } else if (name === "store") await store.store(input);
      else await store.erase(input);
    },
  });
}

export const gitCredentialNoun: NounSpec = {
  name: "credential",
  summary: "The git credential helper (git runs these; ~/.beaker/git-credentials)",
  commands: [
    action("get", "Answer git with the newest stored credential that matches, or nothing"),
    action("store", "Keep the credential git approved"),
    action("erase", "Forget the credential git rejected"),
  ],
};
