import type { CommandSpec } from "../../command.ts";
import { attachTerminal, parseDetachKeys } from "../../terminal.ts";
import { reportOutcome } from "./create.ts";
import { resolveRunningSession } from "./ref.ts";

export const sessionAttachCommand: CommandSpec = {
  name: "attach",
  usesExecutor: true,
  args: "[ID]",
  summary: "Back into a running session's terminal (Ctrl-P Ctrl-Q detaches and leaves it running)",
  options: [{ flags: "--detach-keys <keys>", description: 'Keys that detach, like "ctrl-p,ctrl-q" (config: detach_keys)', kind: "string" }],
  async run({ args, flags, factory }) {
    const session = await resolveRunningSession(factory, args[0]);
    const keys = (flags.detachKeys as string | undefined) ?? factory.userConfig().read().detach_keys ?? "ctrl-p,ctrl-q";
    const outcome = await attachTerminal(factory.executor(), factory.io, {
      sessionId: session.id,
      tty: session.tty,
      start: false,
      detachKeys: parseDetachKeys(keys),
    });
    return reportOutcome(factory.io, session, outcome);
  },
};
