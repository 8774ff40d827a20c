import { defineCommand } from "../../command.ts";
import { clusterOption, hasTty, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { createReconnect } from "../../reconnect.ts";
import { attachTerminal, parseDetachKeys } from "../../terminal.ts";
import { reportOutcome } from "./outcome.ts";
import { resolverFor, resolveRunningSession, userOption } from "./ref.ts";

export const sessionAttachCommand = defineCommand({
  name: "attach",
  usesExecutor: true,
  args: "[ID]",
  summary: "Back into a running session's terminal (Ctrl-P Ctrl-Q detaches and leaves it running)",
  options: [{ flags: "--detach-keys <keys>", description: 'Keys that detach, like "ctrl-p,ctrl-q" (config: detach_keys)', kind: "string" }, userOption, clusterOption, nodeOption],
  async run({ args, flags, factory }) {
    const where = await locateSession(factory, flags, args[0], resolverFor(flags.user, resolveRunningSession));
    const config = factory.userConfig().read();
    const keys = flags.detachKeys ?? config.detach_keys;
    if (where.kind === "remote") {
      const ref = where.ref ? [where.ref] : [];
      return runOnNode(factory, {
        node: where.node,
        args: ["session", "attach", ...ref, ...(keys ? ["--detach-keys", keys] : [])],
        tty: hasTty(factory),
        afterDrop: `the session keeps running: beaker session attach ${[...ref, "--node", where.node].join(" ")}`,
      });
    }
    const session = where.session;
    const outcome = await attachTerminal(factory.executor(), factory.io, {
      sessionId: session.id,
      tty: session.tty,
      start: false,
      detachKeys: parseDetachKeys(keys ?? "ctrl-p,ctrl-q"),
      reconnect: createReconnect(factory.io, factory.executor(), config),
    });
    return reportOutcome(factory.io, session, outcome);
  },
});
