import type { CommandSpec } from "../../command.ts";
import { attachTerminal } from "../../terminal.ts";
import { resolveRunningSession } from "./ref.ts";

export const sessionExecCommand: CommandSpec = {
  name: "exec",
  usesExecutor: true,
  args: "[ID]",
  summary: "Run a command in a running session as its user (default: a login shell)",
  passthrough: true,
  examples: ["beaker session exec", "beaker session exec my-session -- nvidia-smi"],
  async run({ args, rest, factory }) {
    const session = await resolveRunningSession(factory, args[0]);
    const { io } = factory;
    const outcome = await attachTerminal(factory.executor(), io, {
      sessionId: session.id,
      mode: "exec",
      command: rest,
      tty: io.isStdinTTY && io.isStdoutTTY,
      start: false,
      detachKeys: [],
    });
    if (outcome.kind === "exit") return outcome.code;
    io.err.write(`\nlost the connection to the executor; the command may still run in session ${session.name}\n`);
    return 1;
  },
};
