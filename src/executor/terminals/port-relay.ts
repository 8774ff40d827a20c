/**
 * A session's port, reached through the executor. Nothing is published on the node's host network by default, and
 * the host's own traffic to the sessions' bridge is refused to everyone but root (firewall.ts): so the executor is
 * the way in, checked like any request. `connectSessionPort` (the caller's own session, running; root any) opens the
 * TCP connection and is what every path uses: the CLI's WebSocket route here, and later the server's web path.
 *
 * The route `GET /v1/sessions/REF/ports/PORT` (WebSocket): the first text message is `{"type":"connected"}` or
 * `{"type":"error",code,message}` (then the socket closes); after it, binary messages are the connection's bytes
 * each way, and either side closing ends it.
 */
import { connect, type Socket } from "node:net";
import type { PeerSocket } from "./peer.ts";
import { ConflictError, errorCodeOf, errorMessage, UnavailableError, UsageError } from "../../errors.ts";
import type { PublishedState } from "../../runtime/docker/ports.ts";
import { portTarget } from "../../runtime/docker/ports.ts";
import { connectionFailure } from "../../util/net.ts";
import type { SessionRef } from "../sessions/lookup.ts";
import type { LiveSession } from "../sessions/types.ts";
import type { PerUserCap } from "./user-caps.ts";

/** Bytes a caller may send before the session's port has answered, and that the executor holds for a slow reader. */
const earlyLimit = 1024 * 1024;
const heldLimit = 8 * 1024 * 1024;

export interface PortData {
  mode: "port";
  uid: number;
  sessionRef: SessionRef;
  port: number;
  /** Gives back the user's place under the connection cap. */
  release?: () => void;
  upstream?: Socket;
  /** Bytes the caller sent before the connection was open; written once it is. */
  early: Buffer[];
  closed?: boolean;
}

/** What the relay asks of the executor: the caller's session (the usual lookup), a container's inspect, and the cap. */
export interface PortDeps {
  find(uid: number, ref: SessionRef): LiveSession;
  publishedState(containerId: string): Promise<PublishedState>;
  /** Each user's open connections (terminals and port relays together: `maxTerminalsPerUser`). */
  connections: PerUserCap;
}

/** `/v1/sessions/REF/ports/PORT`: the reference and the port, or null for another path. Pure. */
export function parsePortRoute(path: string): { ref: string; port: number } | null {
  const m = /^\/v1\/sessions\/([^/]+)\/ports\/(\d{1,5})$/.exec(path);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new UsageError("a port is a number from 1 to 65535");
  return { ref: m[1]!, port };
}

/** Where the executor connects for the session's ports (following a warm namespace to its holder). */
async function addressOf(deps: Pick<PortDeps, "publishedState">, session: LiveSession): Promise<string> {
  let target = portTarget(await deps.publishedState(session.containerId));
  if (target && "holder" in target) target = portTarget(await deps.publishedState(target.holder));
  if (!target || !("ip" in target)) throw new ConflictError(`session ${session.info.name} has no network, so no ports`);
  return target.ip;
}

/**
 * A TCP connection to `port` of the session `ref`, for `uid`: their own session only (root: any), running. Someone
 * else's session gets the lookup's own answer, the same as one that does not exist.
 */
export async function connectSessionPort(deps: Pick<PortDeps, "find" | "publishedState">, uid: number, ref: SessionRef, port: number): Promise<Socket> {
  const session = deps.find(uid, ref);
  if (session.info.status !== "running") throw new ConflictError(`session ${session.info.name} is ${session.info.status}, not running`);
  const ip = await addressOf(deps, session);
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect({ host: ip, port, timeout: 10_000 });
    const fail = (err: unknown) => {
      socket.destroy();
      reject(new UnavailableError(`nothing answers on port ${port} of session ${session.info.name} (${connectionFailure(err)}); is a server listening there?`));
    };
    socket.once("error", fail);
    socket.once("timeout", () => fail(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    socket.once("connect", () => {
      socket.off("error", fail);
      socket.setTimeout(0);
      resolve(socket);
    });
  });
}

function control(ws: PeerSocket<PortData>, message: object): void {
  if (!ws.data.closed) ws.send(JSON.stringify(message));
}

/** The WebSocket is open: connect, say so, then pipe both ways until either side ends. */
export async function openPortRelay(ws: PeerSocket<PortData>, deps: PortDeps): Promise<void> {
  let upstream: Socket;
  try {
    ws.data.release = deps.connections.take(ws.data.uid);
    upstream = await connectSessionPort(deps, ws.data.uid, ws.data.sessionRef, ws.data.port);
  } catch (err) {
    control(ws, { type: "error", code: errorCodeOf(err), message: errorMessage(err) });
    ws.close(1011, "error");
    return;
  }
  if (ws.data.closed) return void upstream.destroy();
  ws.data.upstream = upstream;
  control(ws, { type: "connected" });
  for (const chunk of ws.data.early.splice(0)) upstream.write(chunk);
  upstream.on("data", (chunk: Buffer) => {
    // The caller reads slower than the session writes: wait for the socket to drain (onPortDrain).
    if (!ws.data.closed && ws.sendBinary(chunk) === -1) upstream.pause();
  });
  upstream.on("end", () => ws.close(1000, "closed"));
  upstream.on("close", () => ws.close(1000, "closed"));
  upstream.on("error", () => ws.close(1011, "connection failed"));
}

export function onPortMessage(ws: PeerSocket<PortData>, message: string | Buffer): void {
  // Only bytes travel this way; a text message means nothing here.
  if (typeof message === "string") return;
  const upstream = ws.data.upstream;
  if (upstream) {
    upstream.write(message);
    // A session that does not read what its caller sends: the executor holds only so much of it, then hangs up.
    if (upstream.writableLength > heldLimit) ws.close(1009, "the session's port does not read what is sent");
    return;
  }
  ws.data.early.push(Buffer.from(message));
  // Held only while the connection opens, and only so much of it.
  if (ws.data.early.reduce((n, b) => n + b.length, 0) > earlyLimit) ws.close(1009, "too much sent before the connection opened");
}

export function onPortDrain(ws: PeerSocket<PortData>): void {
  ws.data.upstream?.resume();
}

export function closePortRelay(ws: PeerSocket<PortData>): void {
  ws.data.closed = true;
  ws.data.release?.();
  ws.data.upstream?.end();
}
