import { BeakerError, errorFromCode, SessionStartError } from "../errors.ts";
import type { ExecutorClient } from "../executor/client.ts";
import { streamTag, type ClientControl, type ServerControl, type SessionInfo } from "../executor/api-types.ts";
import { removeProof } from "../executor/proof.ts";
import type { IO } from "./io.ts";
import type { Reconnect } from "./reconnect.ts";

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
  /**
   * Rides out executor restarts: the terminal stays as it is, and the session's terminal is attached again. Only for
   * attach: an exec'd process is tied to the connection that started it.
   */
  reconnect?: Reconnect;
}

export type AttachOutcome =
  /** `whileAway`: the session ended while the executor was restarting, and this is what it left. */
  | { kind: "exit"; code: number; reason: string; whileAway?: boolean }
  | { kind: "detached" }
  /** The connection broke and did not come back (`waited`: seconds spent trying, null when it was not tried). */
  | { kind: "lost"; waited: number | null };

/** What one connection came to. */
type Connection = AttachOutcome | { kind: "error"; error: BeakerError } | { kind: "broken" };

/** Parses "ctrl-p,ctrl-q" into bytes. */
export function parseDetachKeys(spec: string): number[] {
  return spec.split(",").map((key) => {
    const k = key.trim().toLowerCase();
    const ctrl = /^ctrl-(.)$/.exec(k);
    if (ctrl) return ctrl[1]!.toUpperCase().charCodeAt(0) - 64;
    return k.charCodeAt(0);
  });
}

/** Input typed while no connection is open waits here (up to this much), and goes out once one is. */
const heldInputBytes = 1024 * 1024;

/**
 * This process's side of a terminal, for as long as the attach lasts (across connections): raw stdin on a TTY, the
 * detach keys watched, input held while there is no connection, the size and (without a TTY) signals forwarded.
 */
function localTerminal(options: AttachOptions, rawTty: boolean, onDetach: () => void) {
  let socket: WebSocket | null = null;
  let held: Buffer[] = [];
  let heldBytes = 0;
  let eof = false;
  let matched = 0;
  const cleanups: Array<() => void> = [];
  const control = (message: ClientControl) => socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message));
  const onData = (chunk: Buffer) => {
    if (rawTty && options.detachKeys.length > 0) {
      for (const byte of chunk) {
        matched = byte === options.detachKeys[matched] ? matched + 1 : byte === options.detachKeys[0] ? 1 : 0;
        if (matched === options.detachKeys.length) return onDetach();
      }
    }
    if (socket?.readyState === WebSocket.OPEN) socket.send(chunk);
    else if (heldBytes + chunk.length <= heldInputBytes) {
      held.push(chunk);
      heldBytes += chunk.length;
    }
  };
  const onEnd = () => {
    eof = true;
    control({ type: "stdin-eof" });
  };
  return {
    /** A connection is open: input goes there from now on, what was held first. The first one sets the terminal up. */
    connected(ws: WebSocket) {
      socket = ws;
      for (const chunk of held) ws.send(chunk);
      held = [];
      heldBytes = 0;
      if (eof) control({ type: "stdin-eof" });
      if (cleanups.length > 0) return;
      if (rawTty) {
        process.stdin.setRawMode(true);
        cleanups.push(() => process.stdin.setRawMode(false));
        const onResize = () => control({ type: "resize", cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 });
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
      process.stdin.on("data", onData);
      process.stdin.on("end", onEnd);
      process.stdin.resume();
      cleanups.push(() => {
        process.stdin.off("data", onData);
        process.stdin.off("end", onEnd);
        process.stdin.pause();
      });
    },
    disconnected(ws: WebSocket) {
      if (socket === ws) socket = null;
    },
    close() {
      for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    },
  };
}

/**
 * Connects this terminal to a session: raw stdin on a TTY, the size sent at once and on SIGWINCH, signals forwarded
 * without a TTY, and the detach keys watched. Resolves with the session's exit code, or a detach. With `reconnect`, a
 * broken connection is attached again at the terminal's current size (the executor nudges a redraw), and the user's
 * terminal stays raw meanwhile; only when no executor comes back in time does it give up.
 */
export async function attachTerminal(client: ExecutorClient, io: IO, options: AttachOptions): Promise<AttachOutcome> {
  const rawTty = options.tty && Boolean(process.stdin.isTTY);
  const mode = options.mode ?? "attach";
  const reconnect = mode === "attach" ? options.reconnect : undefined;
  const detach = new AbortController();
  let current: { socket: WebSocket; settle: (c: Connection) => void } | null = null;
  const terminal = localTerminal(options, rawTty, () => {
    detach.abort();
    current?.socket.close(1000, "detached");
    current?.settle({ kind: "detached" });
  });
  let started = !options.start;
  let broken = false;
  let firstOutput = true;

  const connect = () =>
    new Promise<Connection>((settle) => {
      const size = { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 };
      const query = new URLSearchParams({
        start: started ? "0" : "1",
        ...(rawTty ? { cols: String(size.cols), rows: String(size.rows) } : {}),
        ...(mode === "exec" ? { cmd: JSON.stringify(options.command ?? []), tty: options.tty ? "1" : "0", term: process.env.TERM ?? "xterm" } : {}),
      });
      let opened: ReturnType<ExecutorClient["openSocket"]>;
      try {
        opened = client.openSocket(`/v1/sessions/${encodeURIComponent(options.sessionId)}/${mode}?${query}`);
      } catch (error) {
        // No proof directory: the executor is not set up (yet); the same as a connection refused.
        if (broken) return settle({ kind: "broken" });
        throw error;
      }
      const { socket, proofPath } = opened;
      let finished = false;
      const done = (c: Connection) => {
        if (finished) return;
        finished = true;
        removeProof(proofPath);
        terminal.disconnected(socket);
        current = null;
        settle(c);
      };
      current = { socket, settle: done };
      socket.onopen = () => {
        client.trace?.mark("terminal open");
        removeProof(proofPath);
        reconnect?.recovered();
        terminal.connected(socket);
      };
      socket.onmessage = (event) => {
        if (typeof event.data === "string") {
          const message = JSON.parse(event.data) as ServerControl;
          if (message.type === "started" || message.type === "exit") {
            client.trace?.mark(`${message.type} message`);
            client.trace?.add("executor", message.trace);
          }
          if (message.type === "started") {
            started = true;
            printPorts(io, message.ports, options.sessionId);
          } else if (message.type === "notice") {
            // A raw terminal does not turn "\n" into a new line at the left margin: say it in full.
            io.err.write(rawTty ? `\r\nbeaker: ${message.message}\r\n` : `beaker: ${message.message}\n`);
          } else if (message.type === "exit") {
            if (message.message) io.err.write(`beaker: ${message.message}\n`);
            done({ kind: "exit", code: message.code, reason: message.reason });
          } else done({ kind: "error", error: errorFromCode(message.code, message.message) });
          return;
        }
        const bytes = new Uint8Array(event.data as ArrayBuffer);
        if (firstOutput) client.trace?.mark("first output");
        firstOutput = false;
        if (options.tty) process.stdout.write(bytes);
        else if (bytes[0] === streamTag.stderr) process.stderr.write(bytes.subarray(1));
        else process.stdout.write(bytes.subarray(1));
      };
      socket.onclose = () => done({ kind: "broken" });
      socket.onerror = () => done({ kind: "broken" });
    });

  try {
    for (;;) {
      const result = await connect();
      if (result.kind === "exit" || result.kind === "detached" || result.kind === "lost") return result;
      if (result.kind === "error") {
        if (!broken) throw result.error;
        return await afterRestart(client, options, started, result.error);
      }
      broken = true;
      if (!reconnect) return { kind: "lost", waited: null };
      if (!(await reconnect.wait(detach.signal))) return detach.signal.aborted ? { kind: "detached" } : { kind: "lost", waited: reconnect.timeoutSeconds };
    }
  } finally {
    terminal.close();
  }
}

/**
 * Attaching again after a restart was refused: the session ended meanwhile (its exit code is remembered), or it had
 * not started and the restart removed it.
 */
async function afterRestart(client: ExecutorClient, options: AttachOptions, started: boolean, refused: BeakerError): Promise<AttachOutcome> {
  const info = await client.request<SessionInfo>("GET", `/v1/sessions/${encodeURIComponent(options.sessionId)}`).catch(() => null);
  if (info?.status === "exited") return { kind: "exit", code: info.exitCode ?? 255, reason: info.reason ?? "exited", whileAway: true };
  if (!info && !started) throw new SessionStartError(`session ${options.sessionId} had not started when the executor restarted, and was removed; run the command again`);
  throw refused;
}

/**
 * A session's ports, one line each on stderr: published ones (`publish: host`) like `docker port`
 * (`0.0.0.0:55117->8888/tcp`); the others (`8888/tcp`, the default) with the command that reaches them.
 */
export function printPorts(io: IO, ports: string[], session: string): void {
  for (const port of ports) {
    const inside = /^(\d+)\/tcp$/.exec(port)?.[1];
    io.err.write(inside ? `port ${inside}: reach it with 'beaker session port-forward ${session} ${inside}'\n` : `port ${port}\n`);
  }
}
