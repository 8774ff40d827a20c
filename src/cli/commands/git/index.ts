import type { NounSpec } from "../../command.ts";
import { gitCredentialNoun } from "./credential.ts";
import { gitLogoutCommand } from "./logout.ts";
import { gitSetupCommand } from "./setup.ts";
import { gitStatusCommand } from "./status.ts";

export const gitNoun: NounSpec = {
  name: "git",
  summary: "Set up git (identity, token or SSH key) to push from this node and its sessions",
  commands: [gitSetupCommand, gitStatusCommand, gitLogoutCommand, gitCredentialNoun],
};
