import { errorFromCode } from "../errors.ts";
import type { ExecutorClient } from "../executor/client.ts";
import { streamTag, type ClientControl, type ServerControl } from "../executor/api-types.ts";
import { removeProof } from "../executor/proof.ts";
import type { IO } from "./io.ts";

export interface AttachOptions {
  sessionId: string;
  /** attach: the session's own terminal (default); exec: run `command` in it. */
  mode?: "attach" | "exec";
  command?: string[];
  tty: boolean;
  /** Start the container once attached (a new session). */
  start: boolean;
  /** Bytes that detach, Docker's Ctrl-P Ctrl-Q by default. */
  detachKeys: number[];
}

export type AttachOutcome = { kind: "exit"; code: number; reason: string } | { kind: "detached" } | { kind: "lost" };

/** Parses "ctrl-p,ctrl-q" into bytes. */
export function parseDetachKeys(spec: string): number[] {
  return spec.split(",").map((key) => {
    const k = key.trim().toLowerCase();
    const ctrl = /^ctrl-(.)$/.exec(k);
    if (ctrl) return ctrl[1]!.toUpperCase().charCodeAt(0) - 64;
    return k.charCodeAt(0);
  });
}

/**
 * Connects this terminal to a session: raw stdin on a TTY, the size sent at once and on SIGWINCH, signals forwarded
 * without a TTY, and the detach keys watched. Resolves with the session's exit code, or a detach.
 */
export async function attachTerminal(client: ExecutorClient, io: IO, options: AttachOptions): Promise<AttachOutcome> {
  const rawTty = options.tty && process.stdin.isTTY;
  const size = () => ({ cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 });
  const mode = options.mode ?? "attach";
  const query = new URLSearchParams({
    start: options.start ? "1" : "0",
    ...(rawTty ? { cols: String(size().cols), rows: String(size().rows) } : {}),
    ...(mode === "exec" ? { cmd: JSON.stringify(options.command ?? []), tty: options.tty ? "1" : "0", term: process.env.TERM ?? "xterm" } : {}),
  });
  const { socket, proofPath } = client.openSocket(`/v1/sessions/${encodeURIComponent(options.sessionId)}/${mode}?${query}`);
  const control = (message: ClientControl) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message));
  const cleanups: Array<() => void> = [() => removeProof(proofPath)];

  return new Promise<AttachOutcome>((resolve, reject) => {
    let outcome: AttachOutcome | null = null;
    const finish = (result: AttachOutcome) => {
      outcome ??= result;
      for (const cleanup of cleanups.splice(0)) cleanup();
      resolve(outcome);
    };
    socket.onopen = () => {
      removeProof(proofPath);
      if (rawTty) {
        process.stdin.setRawMode(true);
        cleanups.push(() => process.stdin.setRawMode(false));
        const onResize = () => control({ type: "resize", ...size() });
        process.on("SIGWINCH", onResize);
        cleanups.push(() => process.off("SIGWINCH", onResize));
      } else {
        // Without a TTY, signals go to the session's main process (attach) or to the exec'd command (exec).
        for (const signal of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const) {
          const forward = () => control({ type: "signal", name: signal });
          process.on(signal, forward);
          cleanups.push(() => process.off(signal, forward));
        }
      }
      let matched = 0;
      const onData = (chunk: Buffer) => {
        if (rawTty && options.detachKeys.length > 0) {
          for (const byte of chunk) {
            matched = byte === options.detachKeys[matched] ? matched + 1 : byte === options.detachKeys[0] ? 1 : 0;
            if (matched === options.detachKeys.length) {
              socket.close(1000, "detached");
              finish({ kind: "detached" });
              return;
            }
          }
        }
        socket.send(chunk);
      };
      const onEnd = () => control({ type: "stdin-eof" });
      process.stdin.on("data", onData);
      process.stdin.on("end", onEnd);
      process.stdin.resume();
      cleanups.push(() => {
        process.stdin.off("data", onData);
        process.stdin.off("end", onEnd);
        process.stdin.pause();
      });
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data) as ServerControl;
        if (message.type === "started") printPorts(io, message.ports);
        else if (message.type === "exit") {
          if (message.message) io.err.write(`beaker: ${message.message}\n`);
          finish({ kind: "exit", code: message.code, reason: message.reason });
        }
        else {
          for (const cleanup of cleanups.splice(0)) cleanup();
          reject(errorFromCode(message.code, message.message));
        }
        return;
      }
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      if (options.tty) process.stdout.write(bytes);
      else if (bytes[0] === streamTag.stderr) process.stderr.write(bytes.subarray(1));
      else process.stdout.write(bytes.subarray(1));
    };
    socket.onclose = () => finish({ kind: "lost" });
    socket.onerror = () => finish({ kind: "lost" });
  });
}

/** Published ports, one line each on stderr, like `docker port`: `0.0.0.0:55117->8888/tcp`. */
export function printPorts(io: IO, ports: string[]): void {
  for (const port of ports) io.err.write(`port ${port}\n`);
}
