import type { ServerWebSocket } from "bun";
import type { Duplex } from "node:stream";
import type { DockerEngine } from "../runtime/docker/engine.ts";
import { dockerMessage } from "../runtime/docker/engine.ts";
import { errorMessage } from "../errors.ts";
import { streamTag, type ClientControl, type ServerControl } from "./api-types.ts";
import type { LiveSession, SessionManager } from "./sessions.ts";

export interface TerminalData {
  uid: number;
  sessionRef: string;
  start: boolean;
  cols: number;
  rows: number;
  session?: LiveSession;
  stream?: Duplex;
  closed?: boolean;
  /** Messages that arrived before Docker's attach stream was ready; replayed in order once it is. */
  early?: Array<string | Buffer>;
}

function send(ws: ServerWebSocket<TerminalData>, message: ServerControl): void {
  if (!ws.data.closed) ws.send(JSON.stringify(message));
}

/**
 * One attached terminal: Docker's attach stream <-> the CLI's WebSocket. Attaches before the container starts (no
 * early output lost), resizes, forwards signals, and reports the exit code. When the CLI goes away the session runs on.
 */
export async function openTerminal(ws: ServerWebSocket<TerminalData>, manager: SessionManager, engine: DockerEngine): Promise<void> {
  try {
    const session = manager.find(ws.data.uid, ws.data.sessionRef);
    ws.data.session = session;
    const container = await engine.container(session.containerId);
    const stream = await engine.attach(container);
    ws.data.stream = stream;
    if (session.info.tty) stream.on("data", (chunk: Buffer) => !ws.data.closed && ws.sendBinary(chunk));
    else {
      const tagged = (tag: number) => (chunk: Buffer) => {
        if (ws.data.closed) return;
        const frame = new Uint8Array(chunk.length + 1);
        frame[0] = tag;
        frame.set(chunk, 1);
        ws.sendBinary(frame);
      };
      engine.demux(stream, tagged(streamTag.stdout), tagged(streamTag.stderr));
    }
    for (const message of ws.data.early?.splice(0) ?? []) await onTerminalMessage(ws, message, engine);
    const streamEnded = new Promise<void>((resolve) => {
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", resolve);
    });
    if (ws.data.start) {
      await manager.start(session.info.id);
      send(ws, { type: "started", ports: session.info.ports });
    }
    if (session.info.tty && ws.data.cols > 0 && ws.data.rows > 0) await resize(engine, session, ws.data.cols, ws.data.rows);
    const { code, reason } = await session.exited;
    await Promise.race([streamEnded, Bun.sleep(2000)]);
    send(ws, { type: "exit", code, reason });
    ws.close(1000, "session ended");
  } catch (err) {
    const e = err as { code?: string };
    send(ws, { type: "error", code: typeof e.code === "string" && !e.code.startsWith("E") ? e.code : "error", message: errorMessage(err) });
    ws.close(1011, "error");
  }
}

async function resize(engine: DockerEngine, session: LiveSession, cols: number, rows: number): Promise<void> {
  try {
    await (await engine.container(session.containerId)).resize({ w: cols, h: rows });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 409) throw new Error(dockerMessage(err));
  }
}

export async function onTerminalMessage(ws: ServerWebSocket<TerminalData>, message: string | Buffer, engine: DockerEngine): Promise<void> {
  const { stream, session } = ws.data;
  if (!stream) {
    (ws.data.early ??= []).push(message);
    return;
  }
  if (typeof message !== "string") {
    stream?.write(message);
    return;
  }
  let control: ClientControl;
  try {
    control = JSON.parse(message) as ClientControl;
  } catch {
    return;
  }
  if (control.type === "resize") {
    ws.data.cols = control.cols;
    ws.data.rows = control.rows;
    if (session && session.info.status === "running") await resize(engine, session, control.cols, control.rows).catch(() => {});
  } else if (control.type === "stdin-eof") {
    stream?.end();
  } else if (control.type === "signal" && session && /^SIG[A-Z0-9]+$/.test(control.name)) {
    await (await engine.container(session.containerId)).kill({ signal: control.name }).catch(() => {});
  }
}

export function closeTerminal(ws: ServerWebSocket<TerminalData>): void {
  ws.data.closed = true;
  ws.data.stream?.destroy();
}
