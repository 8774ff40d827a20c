import type { Duplex } from "node:stream";
import type { PeerSocket } from "./peer.ts";
import type { DockerEngine } from "../../runtime/docker/engine.ts";
import { dockerMessage, dockerStatus } from "../../runtime/docker/errors.ts";
import { ConflictError, errorCodeOf, errorMessage, ForbiddenError } from "../../errors.ts";
import { isBeakerHelper, planHelperEnv } from "./helper-env.ts";
import { streamTag, type ServerControl } from "../api-types.ts";
import { parseControl } from "../validate.ts";
import { pidsInContainers } from "../../gpu/usable.ts";
import { traceNow, type TracePoint } from "../../util/trace.ts";
import type { LiveSession } from "../sessions/types.ts";
import type { SessionManager } from "../sessions/manager.ts";

/** What a terminal uses of the lifecycle: finding the caller's session, counting its terminals, and starting it. */
type TerminalHost = Pick<SessionManager, "find" | "terminalOpened" | "terminalClosed" | "start">;
import { OutputFlow, TerminalControls, terminalLimits } from "./terminal-flow.ts";
import type { PerUserCap } from "./user-caps.ts";
import type { SessionRef } from "../sessions/lookup.ts";

export interface TerminalData {
  uid: number;
  sessionRef: SessionRef;
  /** attach: the session's own terminal; exec: a new process in it. */
  mode: "attach" | "exec";
  start: boolean;
  cols: number;
  rows: number;
  /** exec only: the command (empty: a login shell) and whether it gets a TTY. */
  command: string[];
  tty: boolean;
  term: string | null;
  /** The CLI asked for the executor's trace points (`x-beaker-trace: 1`); they ride on `started` and `exit`. */
  trace: boolean;
  session?: LiveSession;
  stream?: Duplex;
  /** Docker's output on its way to the client, paused while the client does not take it. */
  flow?: OutputFlow;
  /** Resizes and signals on their way to Docker: one call at a time, the last size wins. */
  controls?: TerminalControls;
  /** Gives back this terminal's place under the user's cap (maxTerminalsPerUser). */
  release?: () => void;
  /** Resolves an attach waiting for its session once the client has left. */
  leave?: () => void;
  /** exec only: the process's PID on this host (Docker's exec API cannot signal it; the executor, as root, can). */
  execPid?: number;
  /** exec only: signals that came before the PID was known (Ctrl-C right after start); sent once it is. */
  pendingSignals?: NodeJS.Signals[];
  closed?: boolean;
  /** Messages that arrived before Docker's stream was ready; replayed in order once it is. */
  early?: Array<string | Buffer>;
  earlyBytes?: number;
}

/** What a terminal needs of the executor. */
export interface TerminalDeps {
  manager: TerminalHost;
  engine: DockerEngine;
  /** Open terminals per user (maxTerminalsPerUser). */
  terminals: PerUserCap;
}

function send(ws: PeerSocket<TerminalData>, message: ServerControl): void {
  if (!ws.data.closed) ws.send(JSON.stringify(message));
}

/** The terminals (attach and exec) open on each session, for notices. */
const openTerminals = new WeakMap<LiveSession, Set<PeerSocket<TerminalData>>>();

/** Writes a line (an idle or time-limit warning) on every terminal attached to the session; the CLI prints it. */
export function noticeTerminals(session: LiveSession, message: string): void {
  for (const ws of openTerminals.get(session) ?? []) send(ws, { type: "notice", message });
}

/** Docker's stream -> the WebSocket: raw bytes on a TTY, else each frame tagged with stdout or stderr. */
function pipeOutput(ws: PeerSocket<TerminalData>, engine: DockerEngine, stream: Duplex, tty: boolean): Promise<void> {
  const flow = new OutputFlow(ws, stream);
  ws.data.flow = flow;
  if (ws.data.closed) flow.end();
  if (tty) stream.on("data", (chunk: Buffer) => !ws.data.closed && flow.send(chunk));
  else {
    const tagged = (tag: number) => (chunk: Buffer) => {
      if (ws.data.closed) return;
      const frame = new Uint8Array(chunk.length + 1);
      frame[0] = tag;
      frame.set(chunk, 1);
      flow.send(frame);
    };
    engine.demux(stream, tagged(streamTag.stdout), tagged(streamTag.stderr));
  }
  return new Promise<void>((resolve) => {
    stream.on("end", resolve);
    stream.on("close", resolve);
    stream.on("error", resolve);
  });
}

/**
 * One terminal on a session: Docker's attach (or exec) stream <-> the CLI's WebSocket. A new session is attached
 * before it starts (no early output lost); resizes and signals are forwarded and the exit code reported. When the
 * CLI goes away the session runs on.
 */
export async function openTerminal(ws: PeerSocket<TerminalData>, deps: TerminalDeps): Promise<void> {
  const { manager, engine } = deps;
  let session: LiveSession | null = null;
  try {
    ws.data.release = deps.terminals.take(ws.data.uid);
    session = manager.find(ws.data.uid, ws.data.sessionRef);
    ws.data.session = session;
    manager.terminalOpened(session);
    if (!openTerminals.has(session)) openTerminals.set(session, new Set());
    openTerminals.get(session)!.add(ws);
    if (ws.data.mode === "exec") await runExec(ws, session, engine);
    else await attach(ws, session, manager, engine);
  } catch (err) {
    send(ws, { type: "error", code: errorCodeOf(err), message: errorMessage(err) });
    ws.close(1011, "error");
  } finally {
    ws.data.release?.();
    ws.data.controls?.end();
    if (session) {
      manager.terminalClosed(session);
      openTerminals.get(session)?.delete(ws);
    }
  }
}

/** The session's trace points for this terminal, when it asked: from the create on for a new session, else since `from`. */
function tracePoints(ws: PeerSocket<TerminalData>, session: LiveSession, from: number): { trace?: TracePoint[] } {
  return ws.data.trace ? { trace: session.trace.points.filter((p) => p.at >= from) } : {};
}

async function attach(ws: PeerSocket<TerminalData>, session: LiveSession, manager: TerminalHost, engine: DockerEngine): Promise<void> {
  // A new session's terminal is part of its create; a later attach is not, and leaves its trace alone.
  const from = ws.data.start ? 0 : traceNow();
  if (ws.data.start) session.trace.mark("terminal open");
  const stream = await engine.attach(session.containerId);
  // A client that left while Docker attached must not leave Docker's stream (a socket) open until the session ends.
  if (ws.data.closed && !ws.data.start) return void stream.destroy();
  if (ws.data.start) session.trace.mark("attach");
  const tty = session.info.tty;
  const controls = new TerminalControls({
    resize: async (cols, rows) => {
      if (!tty || session.info.status !== "running") return;
      try {
        await engine.resize(session.containerId, cols, rows);
      } catch (err) {
        if (dockerStatus(err) !== 409) throw new Error(dockerMessage(err));
      }
    },
    signal: (name) => engine.kill(session.containerId, name),
  });
  const streamEnded = pipeOutput(ws, engine, stream, tty);
  if (!ws.data.start) {
    // A terminal attached again (a reconnect, maybe at a new size) gets its size before any of its input reaches the
    // session: what it types first (`stty size`) must see it. Until then its messages wait with the early ones.
    if (ws.data.cols > 1 && ws.data.rows > 1) {
      // Re-attaching at the size it already had sends no SIGWINCH, and a full-screen program would not redraw: nudge it.
      await controls.resizeNow(ws.data.cols - 1, ws.data.rows - 1).catch(() => {});
    }
    if (ws.data.cols > 0 && ws.data.rows > 0) await controls.resizeNow(ws.data.cols, ws.data.rows);
  }
  ws.data.controls = controls;
  ws.data.stream = stream;
  // A size that came while the first one was set is the one to have (applied once started, if it differs).
  if (ws.data.cols > 0 && ws.data.rows > 0) controls.resize(ws.data.cols, ws.data.rows);
  replayEarly(ws);
  if (ws.data.start) {
    await manager.start(session.info.id);
    send(ws, { type: "started", ports: session.info.ports, ...tracePoints(ws, session, from) });
    if (ws.data.cols > 0 && ws.data.rows > 0) await controls.resizeNow(ws.data.cols, ws.data.rows);
  }
  controls.start();
  // A client that left ends the wait: nothing of this terminal outlives it (its session runs on).
  const left = new Promise<null>((resolve) => (ws.data.leave = () => resolve(null)));
  if (ws.data.closed) return void stream.destroy();
  const exited = await Promise.race([session.exited, left]);
  if (!exited) return;
  const { code, reason } = exited;
  await Promise.race([streamEnded, Bun.sleep(2000)]);
  send(ws, { type: "exit", code, reason, ...tracePoints(ws, session, from) });
  ws.close(1000, "session ended");
}

async function runExec(ws: PeerSocket<TerminalData>, session: LiveSession, engine: DockerEngine): Promise<void> {
  if (session.info.status !== "running") throw new ConflictError(`session ${session.info.name} is ${session.info.status}, not running`);
  const id = session.containerId;
  const { tty } = ws.data;
  let command = ws.data.command;
  if (command.length === 0) command = (await engine.pathExists(id, "/bin/bash")) ? ["bash", "-l"] : ["sh", "-l"];
  // Docker's GPU driver sets NVIDIA_VISIBLE_DEVICES for the main process only; an exec'd one sees the same GPUs.
  const gpus = `NVIDIA_VISIBLE_DEVICES=${session.info.gpus.join(",") || "void"}`;
  const helper = isBeakerHelper(command);
  // The SSH server gets the caller's host key on stdin: only ever in the caller's own session (the proxy checks too).
  if (helper && session.info.uid !== ws.data.uid) throw new ForbiddenError(`Beaker's SSH server runs only in your own sessions: ${session.info.name} is ${session.info.user}'s`);
  const env = helper ? planHelperEnv(await engine.configEnv(id), [gpus]) : [gpus, ...(tty && ws.data.term ? [`TERM=${ws.data.term}`] : [])];
  const { cols, rows } = ws.data;
  // Docker before 23 cannot start an exec at a size, and a quick command would run before the resize lands: set the
  // size from inside, then exec the command itself (same argv, same PID).
  const sized =
    tty && cols > 0 && rows > 0 && (await engine.pathExists(id, "/bin/sh"))
      ? ["/bin/sh", "-c", `stty cols ${cols} rows ${rows} 2>/dev/null; exec "$@"`, "beaker-exec", ...command]
      : command;
  let exec;
  try {
    exec = await engine.exec(id, sized, { tty, env, size: tty && cols > 0 && rows > 0 ? [rows, cols] : null, ...(helper ? { workdir: "/" } : {}) });
  } catch (err) {
    throw new ConflictError(`cannot run ${command[0]} in session ${session.info.name}: ${dockerMessage(err)}`);
  }
  const { stream, execId } = exec;
  if (ws.data.closed) return void stream.destroy();
  const controls = new TerminalControls({
    resize: async (cols, rows) => {
      if (tty) await engine.execResize(execId, cols, rows).catch(() => {});
    },
    signal: async (name) => {
      if (ws.data.execPid) signalExec(ws, name as NodeJS.Signals);
      else if ((ws.data.pendingSignals ??= []).length < terminalLimits.queuedSignals) ws.data.pendingSignals.push(name as NodeJS.Signals);
    },
  });
  ws.data.controls = controls;
  if (!tty) {
    void findExecPid(engine, execId).then((pid) => {
      ws.data.execPid = pid ?? undefined;
      for (const name of ws.data.pendingSignals?.splice(0) ?? []) signalExec(ws, name);
    });
  }
  ws.data.stream = stream;
  // Docker reports a program it cannot start as bare text in an otherwise empty frame, which demuxing drops.
  let head = "";
  const keepHead = (chunk: Buffer) => {
    head += chunk.toString("latin1");
    if (head.length > 4096) stream.off("data", keepHead);
  };
  stream.on("data", keepHead);
  const streamEnded = pipeOutput(ws, engine, stream, tty);
  replayEarly(ws);
  if (ws.data.cols > 0 && ws.data.rows > 0) await controls.resizeNow(ws.data.cols, ws.data.rows);
  controls.start();
  await Promise.race([streamEnded, session.exited]);
  ws.data.execPid = undefined;
  let code = 255;
  for (let i = 0; i < 20; i++) {
    const state = await engine.execState(execId).catch(() => null);
    if (!state || (!state.running && state.exitCode !== null)) {
      code = state?.exitCode ?? 255;
      break;
    }
    await Bun.sleep(50);
  }
  const failed = code === 126 || code === 127 ? /OCI runtime exec failed: .*?exec: "[^"]*": ([^\r\n]*?)(?:: unknown)?\s*$/m.exec(head) : null;
  const message = failed ? `cannot run ${command[0]} in session ${session.info.name}: ${failed[1]}` : undefined;
  send(ws, { type: "exit", code, reason: "exited", ...(message ? { message } : {}) });
  ws.close(1000, "process ended");
}

/** The host PID of an exec'd process, once Docker has started it. */
async function findExecPid(engine: DockerEngine, execId: string): Promise<number | null> {
  for (let i = 0; i < 40; i++) {
    const state = await engine.execState(execId).catch(() => null);
    if (state?.pid) return state.pid;
    if (state && !state.running && i > 0) return null;
    await Bun.sleep(25);
  }
  return null;
}

function replayEarly(ws: PeerSocket<TerminalData>): void {
  for (const message of ws.data.early?.splice(0) ?? []) void onTerminalMessage(ws, message);
}

/** Holds a message until Docker's stream is ready (a size only updates the one to start at); too much closes the terminal. */
function holdEarly(ws: PeerSocket<TerminalData>, message: string | Buffer): void {
  const control = typeof message === "string" ? parseControl(message) : null;
  if (control?.type === "resize") {
    ws.data.cols = control.cols;
    ws.data.rows = control.rows;
    return;
  }
  ws.data.earlyBytes = (ws.data.earlyBytes ?? 0) + message.length;
  if (ws.data.earlyBytes > terminalLimits.earlyBytes) ws.close(1009, "too much input before the terminal was ready");
  else (ws.data.early ??= []).push(message);
}

/** Handles one frame, whole, before the next: async only so that whatever it throws lands in the caller's catch. */
export async function onTerminalMessage(ws: PeerSocket<TerminalData>, message: string | Buffer): Promise<void> {
  const { stream, controls } = ws.data;
  if (ws.data.closed) return;
  if (!stream || !controls) return holdEarly(ws, message);
  if (typeof message !== "string") {
    stream.write(message);
    return;
  }
  // Anything but a well-formed control message is ignored: no frame, from anyone, can end the executor.
  const control = parseControl(message);
  if (!control) return;
  if (control.type === "resize") {
    ws.data.cols = control.cols;
    ws.data.rows = control.rows;
    controls.resize(control.cols, control.rows);
  } else if (control.type === "stdin-eof") {
    stream.end();
  } else if (control.type === "signal") {
    controls.signal(control.name);
  }
}

function signalExec(ws: PeerSocket<TerminalData>, name: NodeJS.Signals): void {
  const { execPid, session } = ws.data;
  // Root signals a host PID: only while it still is a process of this session's container (PIDs are reused).
  if (!execPid || !session || pidsInContainers([execPid], [session.containerId]).size !== 1) return;
  try {
    process.kill(execPid, name);
  } catch {}
}

/** The client left: Docker's stream, the control line, the stall timer and the user's place all end now. */
export function closeTerminal(ws: PeerSocket<TerminalData>): void {
  ws.data.closed = true;
  ws.data.stream?.destroy();
  ws.data.flow?.end();
  ws.data.controls?.end();
  ws.data.early = [];
  ws.data.release?.();
  ws.data.leave?.();
}

/** Bun's `drain`: the client took some of its output, so reading may go on. */
export function terminalDrained(ws: PeerSocket<TerminalData>): void {
  ws.data.flow?.drained();
}
