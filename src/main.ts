import { createFactory } from "./cli/factory.ts";
import { createProcessIO } from "./cli/io.ts";
import { runCli } from "./cli/app.ts";
import { program } from "./cli/commands/index.ts";
import { BeakerError, UsageError } from "./errors.ts";
import { formatUsage } from "./cli/help.ts";
import { afterCommand } from "./cli/commands/upgrade.ts";
import { connectionFailure, isConnectionError } from "./util/net.ts";

/** The entry point: parse argv, run, map errors to exit codes. The only place that calls process.exit. */
async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug") && !argv.slice(0, argv.indexOf("--debug")).includes("--");
  const args = debug ? argv.filter((a, i) => !(a === "--debug" && i === argv.indexOf("--debug"))) : argv;
  const io = createProcessIO();
  const factory = createFactory(io, process.env, debug);
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
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
