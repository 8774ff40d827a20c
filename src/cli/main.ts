import { createFactory } from "./factory.ts";
import { createProcessIO } from "./io.ts";
import { runCli } from "./app.ts";
import { program } from "./commands/index.ts";
import { BeakerError, UsageError } from "../errors.ts";
import { formatUsage } from "./help.ts";
import { afterCommand } from "./update-notice.ts";
import { connectionFailure, isConnectionError } from "../util/net.ts";
import { formatTimeline } from "../util/trace.ts";

/** Parses argv, runs the command, and maps errors to exit codes (src/main.ts exits with it). */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug") && !argv.slice(0, argv.indexOf("--debug")).includes("--");
  const args = debug ? argv.filter((a, i) => !(a === "--debug" && i === argv.indexOf("--debug"))) : argv;
  const io = createProcessIO();
  const factory = createFactory(io, process.env, debug);
  factory.trace?.mark("main");
  try {
    const code = await runCli(program, args, factory);
    afterCommand(factory, args[0]);
    return code;
  } catch (err) {
    if (err instanceof UsageError && err.usageFor !== null) {
      io.err.write(`beaker: ${err.message}\n\n${formatUsage(program, err.usageFor)}`);
    } else if (err instanceof BeakerError) {
      io.err.write(`beaker: ${err.message}\n`);
    } else if (isConnectionError(err)) {
      // A connection no layer above put in its own words: still one plain line, never the library's.
      io.err.write(`beaker: a connection failed: ${connectionFailure(err)}; try again${debug ? "" : " (--debug shows the details)"}\n`);
    } else {
      io.err.write(`beaker: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
      if (!debug) io.err.write("run again with --debug for details\n");
    }
    if (debug) for (let e: unknown = err; e instanceof Error; e = e.cause) io.err.write(`${e === err ? "" : "caused by: "}${e.stack ?? e.message}\n`);
    return err instanceof BeakerError ? err.exitCode : 1;
  } finally {
    if (factory.trace) {
      factory.trace.mark("exit");
      io.err.write(formatTimeline(performance.timeOrigin, factory.trace.points));
    }
  }
}
