import { buildInfo, formatVersion } from "./version.ts";

/**
 * The entry point, and the only place that reads process.argv or calls process.exit. `--version` answers before the
 * rest of the CLI is even loaded (a script may run it often); everything else loads the CLI and runs it.
 */
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
  process.stdout.write(`${formatVersion(buildInfo)}\n`);
  process.exit(0);
}
import("./cli/main.ts")
  .then(({ main }) => main(argv))
  .then((code) => process.exit(code));
