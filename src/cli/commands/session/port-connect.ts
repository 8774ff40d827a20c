import { UsageError } from "../../../errors.ts";
import { defineCommand } from "../../command.ts";
import { openSessionPort } from "../../port-stream.ts";

/**
 * One connection to a session's port as stdin and stdout, through this node's executor (checked there: the caller's
 * own session). A laptop's port forward runs it over ssh for each connection it accepts (remote/forward.ts).
 */
export const sessionPortConnectCommand = defineCommand({
  name: "port-connect",
  usesExecutor: true,
  hidden: true,
  args: "<ID> <PORT>",
  summary: "Internal: one connection to a session's port on stdin/stdout (run by 'session port-forward --cluster')",
  async run({ args, factory }) {
    const [ref, raw] = args;
    const port = Number(raw);
    if (!ref || !raw || !/^\d{1,5}$/.test(raw) || port < 1 || port > 65535) throw new UsageError("usage: beaker session port-connect ID PORT (a port from 1 to 65535)");
    let ended!: () => void;
    const done = new Promise<void>((resolve) => (ended = resolve));
    const stream = await openSessionPort(factory.executor(), ref, port, { data: (chunk) => void process.stdout.write(chunk), end: () => ended() });
    process.stdin.on("data", (chunk: Buffer) => stream.write(chunk));
    process.stdin.on("end", () => stream.end());
    await done;
    process.stdin.pause();
    return 0;
  },
});
