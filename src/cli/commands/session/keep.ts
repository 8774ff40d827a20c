import type { SessionView } from "../../../executor/api-types.ts";
import { UsageError } from "../../../errors.ts";
import { parseDuration } from "../../../util/duration.ts";
import { jsonOption, type CommandSpec } from "../../command.ts";
import { printJson } from "../../output.ts";
import { clusterOption, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { formatTime, resolveOpenSession } from "./ref.ts";

export const sessionKeepCommand: CommandSpec = {
  name: "keep",
  usesExecutor: true,
  args: "[ID]",
  summary: "Keep a session whose GPUs are idle from being stopped for a while (once per idle period)",
  options: [{ flags: "--for <duration>", description: 'How long, like "2h" or "90m" (never past its time limit)', kind: "string" }, clusterOption, nodeOption, jsonOption],
  examples: ["beaker session keep --for 2h", "beaker session keep train --for 45m"],
  async run({ args, flags, factory }) {
    if (flags.for === undefined) throw new UsageError('--for is needed: how long to keep it, like "2h"');
    const seconds = parseDuration(String(flags.for));
    if (seconds === null) throw new UsageError(`--for "${String(flags.for)}" is not a duration like 2h, 90m or 1h30m`);
    const where = await locateSession(factory, flags, args[0], resolveOpenSession);
    if (where.kind === "remote") {
      const args = ["session", "keep", ...(where.ref ? [where.ref] : []), "--for", String(flags.for), ...(flags.json ? ["--json"] : [])];
      return runOnNode(factory, { node: where.node, args, tty: false });
    }
    const view = await factory.executor().request<SessionView>("POST", `/v1/sessions/${encodeURIComponent(where.session.id)}/keep`, { for: seconds });
    if (flags.json) return void printJson(factory.io, view);
    const capped = view.deadline !== null && view.keptUntil === view.deadline ? " (its time limit)" : "";
    factory.io.err.write(`session ${view.name} is not stopped for idle GPUs before ${formatTime(view.keptUntil)}${capped}\n`);
  },
};
