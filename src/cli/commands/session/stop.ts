import type { SessionInfo } from "../../../executor/api-types.ts";
import { UsageError } from "../../../errors.ts";
import { defineCommand } from "../../command.ts";
import { jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import { clusterOption, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { resolveOpenSession, resolverFor, userOption } from "./ref.ts";

export const sessionStopCommand = defineCommand({
  name: "stop",
  usesExecutor: true,
  args: "[ID]",
  summary: "Stop a session: SIGTERM, then SIGKILL after the timeout; its GPUs are freed",
  options: [{ flags: "--timeout <seconds>", description: "Seconds between SIGTERM and SIGKILL", default: 10, kind: "number" }, userOption, clusterOption, nodeOption, jsonOption],
  async run({ args, flags, factory }) {
    const timeout = flags.timeout;
    if (!(Number.isInteger(timeout) && timeout >= 0 && timeout <= 240)) throw new UsageError("--timeout must be a whole number of seconds from 0 to 240");
    const where = await locateSession(factory, flags, args[0], resolverFor(flags.user, resolveOpenSession));
    if (where.kind === "remote") {
      const args = ["session", "stop", ...(where.ref ? [where.ref] : []), "--timeout", String(timeout), ...(flags.json ? ["--json"] : [])];
      return runOnNode(factory, { node: where.node, args, tty: false });
    }
    const info = await factory.executor().request<SessionInfo>("POST", `/v1/sessions/${encodeURIComponent(where.session.id)}/stop`, { timeout });
    if (flags.json) printJson(factory.io, info);
    else factory.io.err.write(`stopped session ${info.name} (${info.id})\n`);
  },
});
