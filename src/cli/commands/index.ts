import type { Program } from "../app.ts";
import { accountNoun } from "./account/index.ts";
import { clusterNoun } from "./cluster/index.ts";
import { configNoun } from "./config/index.ts";
import { executorNoun } from "./executor/index.ts";
import { gitNoun } from "./git/index.ts";
import { nodeNoun } from "./node/index.ts";
import { serverNoun } from "./server/index.ts";
import { sessionNoun } from "./session/index.ts";
import { sshServerCommand } from "./ssh-server.ts";
import { updateCheckCommand, upgradeCommand } from "./upgrade.ts";
import { versionCommand } from "./version.ts";

export const program: Program = {
  nouns: [sessionNoun, nodeNoun, clusterNoun, accountNoun, gitNoun, configNoun, executorNoun, serverNoun],
  commands: [versionCommand, upgradeCommand, updateCheckCommand, sshServerCommand],
};
