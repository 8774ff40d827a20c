/** The daemons' log line (executor, server): a timestamp and the line, on stderr for journald or the console. */
export function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}
