import type { NounSpec } from "../../command.ts";
import { serverClusterCreateCommand } from "./cluster/create.ts";
import { serverNodeAddCommand } from "./node/add.ts";
import { serverNodeCordonCommand } from "./node/cordon.ts";
import { serverNodeUncordonCommand } from "./node/uncordon.ts";
import { serverRunCommand } from "./run.ts";
import { serverTokenRevokeCommand } from "./token/revoke.ts";
import { serverUserCreateCommand } from "./user/create.ts";
import { serverUserListCommand } from "./user/list.ts";
import { serverUserTokenCommand } from "./user/token.ts";

export const serverNoun: NounSpec = {
  name: "server",
  summary: "Run and administer the Beaker server (accounts, clusters, nodes)",
  commands: [
    serverRunCommand,
    { name: "user", summary: "Accounts", commands: [serverUserCreateCommand, serverUserListCommand, serverUserTokenCommand] },
    { name: "token", summary: "Tokens", commands: [serverTokenRevokeCommand] },
    { name: "cluster", summary: "Clusters", commands: [serverClusterCreateCommand] },
    { name: "node", summary: "Nodes", commands: [serverNodeAddCommand, serverNodeCordonCommand, serverNodeUncordonCommand] },
  ],
};
