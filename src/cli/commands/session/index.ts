import type { NounSpec } from "../../command.ts";
import { sessionAttachCommand } from "./attach.ts";
import { sessionCreateCommand } from "./create.ts";
import { sessionDescribeCommand } from "./describe.ts";
import { sessionExecCommand } from "./exec.ts";
import { sessionKeepCommand } from "./keep.ts";
import { sessionListCommand } from "./list.ts";
import { sessionPortConnectCommand } from "./port-connect.ts";
import { sessionPortForwardCommand } from "./port-forward.ts";
import { sessionProxyCommand } from "./proxy.ts";
import { sessionSshConfigCommand } from "./ssh-config.ts";
import { sessionStopCommand } from "./stop.ts";

export const sessionNoun: NounSpec = {
  name: "session",
  summary: "Create and manage GPU sessions, on this node or on a cluster's",
  commands: [sessionCreateCommand, sessionListCommand, sessionDescribeCommand, sessionAttachCommand, sessionExecCommand, sessionStopCommand, sessionKeepCommand, sessionPortForwardCommand, sessionSshConfigCommand, sessionProxyCommand, sessionPortConnectCommand],
};
