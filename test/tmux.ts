/**
 * The terminal driver of the tests that use the CLI as a person does: a private tmux server (its own socket, so
 * tests never touch anyone's tmux), windows running a command, keys typed, the screen read, waits for what it shows.
 */
import { eventually } from "./harness.ts";

let servers = 0;

export class Tmux implements Disposable {
  readonly socket: string;

  /**
   * `name`: a word for the socket. The process id keeps runs of different files apart, and a count each server of
   * this process: a new server on the socket of one just killed could meet it still exiting.
   */
  constructor(name: string) {
    this.socket = `beaker-${name}-${process.pid}-${++servers}`;
  }

  run(...args: string[]): string {
    return Bun.spawnSync(["tmux", "-L", this.socket, ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  }

  /** A detached session `target` of the given size running `argv`. */
  start(target: string, argv: string[], size: { cols: number; rows: number } = { cols: 100, rows: 30 }): void {
    const r = Bun.spawnSync(["tmux", "-L", this.socket, "new-session", "-d", "-s", target, "-x", String(size.cols), "-y", String(size.rows), ...argv], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`tmux new-session ${target}: ${r.stderr}`);
  }

  /** Types `text` literally (no key names, no Enter). */
  type(target: string, text: string): void {
    this.run("send-keys", "-t", target, "-l", text);
  }

  /** Types a line and presses Enter. */
  line(target: string, text: string): void {
    this.type(target, text);
    this.keys(target, "Enter");
  }

  /** Presses keys by tmux's names: Enter, Up, C-c, ... */
  keys(target: string, ...keys: string[]): void {
    this.run("send-keys", "-t", target, ...keys);
  }

  screen(target: string): string {
    return this.run("capture-pane", "-p", "-t", target);
  }

  resize(target: string, cols: number, rows: number): void {
    this.run("resize-window", "-t", target, "-x", String(cols), "-y", String(rows));
  }

  /** The PID of the process tmux started in the window (the shell). */
  panePid(target: string): number {
    return Number(this.run("display-message", "-p", "-t", target, "#{pane_pid}").trim());
  }

  /** Waits until the screen matches; returns the screen. */
  waitFor(target: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    return eventually(
      () => {
        const text = this.screen(target);
        if (pattern.test(text)) return text;
        throw new Error(`${target} shows:\n${text}`);
      },
      timeoutMs,
      { what: `${pattern} on the screen` },
    );
  }

  kill(): void {
    this.run("kill-server");
  }

  [Symbol.dispose](): void {
    this.kill();
  }
}
