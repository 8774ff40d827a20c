import { defineCommand } from "../../command.ts";
import { clusterOption, hasTty, locateSession, nodeOption, runOnNode } from "../../remote.ts";
import { attachTerminal } from "../../terminal.ts";
import { resolverFor, resolveRunningSession, userOption } from "./ref.ts";

export const sessionExecCommand = defineCommand({
  name: "exec",
  usesExecutor: true,
  args: "[ID]",
  summary: "Run a command in a running session as its user (default: a login shell)",
  passthrough: true,
  options: [userOption, clusterOption, nodeOption],
  examples: ["beaker session exec", "beaker session exec my-session -- nvidia-smi", "beaker session exec my-session --cluster lab -- nvidia-smi"],
  async run({ args, rest, flags, factory }) {
    const where = await locateSession(factory, flags, args[0], resolverFor(flags.user, resolveRunningSession));
    const { io } = factory;
    if (where.kind === "remote") {
      return runOnNode(factory, {
        node: where.node,
        args: ["session", "exec", ...(where.ref ? [where.ref] : []), ...(rest.length ? ["--", ...rest] : [])],
        tty: hasTty(factory),
        afterDrop: "the command may still run in the session",
      });
    }
    const session = where.session;
    const outcome = await attachTerminal(factory.executor(), io, {
      sessionId: session.id,
      mode: "exec",
      command: rest,
      tty: hasTty(factory),
      start: false,
      detachKeys: [],
    });
    if (outcome.kind === "exit") return outcome.code;
    io.err.write(`\nlost the connection to the executor; the command may still run in session ${session.name}\n`);
    return 1;
  },
});
