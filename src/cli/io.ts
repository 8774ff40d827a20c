/**
 * The IO streams every command writes through: stdout for data, stderr for progress and messages.
 * Tests build one with `createTestIO()` and read what was written.
 */
export interface Writer {
  write(chunk: string): void;
}

export interface IO {
  readonly out: Writer;
  readonly err: Writer;
  readonly isStdinTTY: boolean;
  readonly isStdoutTTY: boolean;
  readonly isStderrTTY: boolean;
  readonly color: boolean;
  /** Whether a question may be asked: stdin and stdout are terminals and this is not CI. */
  canPrompt(): boolean;
  /** Reads all of stdin (used for secrets passed as `-`). */
  readStdin(): Promise<string>;
}

export function createProcessIO(env: Record<string, string | undefined> = process.env): IO {
  const isStdinTTY = Boolean(process.stdin.isTTY);
  const isStdoutTTY = Boolean(process.stdout.isTTY);
  const isStderrTTY = Boolean(process.stderr.isTTY);
  const ci = Boolean(env.CI) && env.CI !== "false";
  return {
    out: { write: (s) => void process.stdout.write(s) },
    err: { write: (s) => void process.stderr.write(s) },
    isStdinTTY,
    isStdoutTTY,
    isStderrTTY,
    color: isStdoutTTY && !env.NO_COLOR && env.TERM !== "dumb",
    canPrompt: () => isStdinTTY && isStdoutTTY && !ci,
    readStdin: () => Bun.stdin.text(),
  };
}

export interface TestIO extends IO {
  stdout(): string;
  stderr(): string;
}

export function createTestIO(options: { stdin?: string; tty?: boolean } = {}): TestIO {
  let outText = "";
  let errText = "";
  const tty = options.tty ?? false;
  return {
    out: { write: (s) => void (outText += s) },
    err: { write: (s) => void (errText += s) },
    isStdinTTY: tty,
    isStdoutTTY: tty,
    isStderrTTY: tty,
    color: false,
    canPrompt: () => tty,
    readStdin: async () => options.stdin ?? "",
    stdout: () => outText,
    stderr: () => errText,
  };
}
