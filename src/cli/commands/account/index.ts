import type { NounSpec } from "../../command.ts";
import { accountLoginCommand } from "./login.ts";
import { accountLogoutCommand } from "./logout.ts";
import { accountTokenRotateCommand } from "./token/rotate.ts";
import { accountWhoamiCommand } from "./whoami.ts";

export const accountNoun: NounSpec = {
  name: "account",
  summary: "Log in to the Beaker server, and your token",
  commands: [accountLoginCommand, accountLogoutCommand, accountWhoamiCommand, { name: "token", summary: "Your token", commands: [accountTokenRotateCommand] }],
};
