import { UsageError } from "../../errors.ts";
import { currentLoginUser } from "../../ssh/login.ts";
import { defineCommand } from "../command.ts";
import { allowJit } from "../../util/jit.ts";

/** Inside a session, started by `beaker session proxy` through `session exec`: an SSH server on stdin and stdout. */
export const sshServerCommand = defineCommand({
  name: "ssh-server",
  summary: "Internal: an SSH server on stdin/stdout inside a session (started by 'beaker session proxy')",
  hidden: true,
  options: [{ flags: "--stdio", description: "Serve one connection on stdin and stdout", kind: "boolean" }],
  async run({ flags, factory }) {
    if (!flags.stdio) throw new UsageError("only --stdio is supported: 'beaker session proxy' starts this server inside a session");
    allowJit();
    // The SSH server (ssh2) loads for this command alone, not at every CLI start.
    const [{ serveSsh }, { readPreamble, stdioSocket }] = await Promise.all([import("../../ssh/server.ts"), import("../../ssh/stdio.ts")]);
    const { hostKey, rest } = await readPreamble(process.stdin);
    await serveSsh({
      socket: stdioSocket(process.stdin, process.stdout, rest),
      hostKey,
      user: currentLoginUser(factory.env),
      tell: (line) => factory.io.err.write(`${line}\n`),
    });
    return 0;
  },
});
