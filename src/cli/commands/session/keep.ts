import type { SessionView } from "../../../executor/api-types.ts";
import { UsageError } from "../../../errors.ts";
import { parseDuration } from "../../../util/duration.ts";
import { defineCommand, jsonOption } from "../../command.ts";
import { printJson } from "../../output.ts";
import { clusterOption, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { formatTime, resolveOpenSession, resolverFor, userOption } from "./ref.ts";

export const sessionKeepCommand = defineCommand({
  name: "keep",
  usesExecutor: true,
  args: "[ID]",
  summary: "Keep a session whose GPUs are idle from being stopped for a while (once per idle period)",
  options: [{ flags: "--for <duration>", description: 'How long, like "2h" or "90m" (never past its time limit)', kind: "string" }, userOption, clusterOption, nodeOption, jsonOption],
  examples: ["beaker session keep --for 2h", "beaker session keep train --for 45m"],
  async run({ args, flags, factory }) {
    const keepFor = flags.for;
    if (keepFor === undefined) throw new UsageError('--for is needed: how long to keep it, like "2h"');
    const seconds = parseDuration(keepFor);
    if (seconds === null) throw new UsageError(`--for "${keepFor}" is not a duration like 2h, 90m or 1h30m`);
    const where = await locateSession(factory, flags, args[0], resolverFor(flags.user, resolveOpenSession));
    if (where.kind === "remote") {
      const args = ["session", "keep", ...(where.ref ? [where.ref] : []), "--for", keepFor, ...(flags.json ? ["--json"] : [])];
      return runOnNode(factory, { node: where.node, args, tty: false });
    }
    const view = await factory.executor().request<SessionView>("POST", `/v1/sessions/${encodeURIComponent(where.session.id)}/keep`, { for: seconds });
    if (flags.json) return void printJson(factory.io, view);
    const capped = view.deadline !== null && view.keptUntil === view.deadline ? " (its time limit)" : "";
    factory.io.err.write(`session ${view.name} is not stopped for idle GPUs before ${formatTime(view.keptUntil)}${capped}\n`);
  },
});
