/**
 * The executor's API (docs/ARCHITECTURE.md "Executor API"), whoever carries the request: the unix socket (the caller
 * proved their uid with a proof file) or the node link (the server named a Beaker account, mapped to a local one in
 * link/users.ts). Both call `route` with the uid, so every check, per-user cap and error shape is the same; and the
 * terminals and port relays run on a `PeerSocket`, which a Bun WebSocket and a link stream both are.
 */
import type { ExecutorConfig } from "../config/executor.ts";
import { BeakerError, errorCodeOf, errorMessage, ForbiddenError, httpStatusOf, UsageError } from "../errors.ts";
import { redactGpuReport } from "../gpu/report.ts";
import type { DockerEngine } from "../runtime/docker/engine.ts";
import { logCreateTrace, Trace, traceHeader, traceNow } from "../util/trace.ts";
import type { CreateEvent, CreateSessionRequest } from "./api-types.ts";
import type { GpuUseMonitor } from "./gpu/gpu-use.ts";
import type { SessionRef } from "./sessions/lookup.ts";
import type { SessionManager } from "./sessions/manager.ts";
import { viewOf } from "./sessions/queries.ts";
import type { SlurmSessions } from "./slurm/slurm.ts";
import type { PeerSocket } from "./terminals/peer.ts";
import { closePortRelay, onPortDrain, onPortMessage, openPortRelay, parsePortRoute, type PortData } from "./terminals/port-relay.ts";
import { closeTerminal, onTerminalMessage, openTerminal, terminalDrained, type TerminalData } from "./terminals/terminal.ts";
import type { PerUserCap } from "./terminals/user-caps.ts";
import { parseCreateRequest, parseKeepRequest, parseStopRequest, parseTerminalQuery, requestLimits } from "./validate.ts";

export type SocketData = TerminalData | PortData;

/** Who asks, as the transport established it. */
export interface Caller {
  uid: number;
  /** The caller's Beaker account (null on a node without a server); asked for `/v1/sessions` routes only, after the request cap. */
  account: () => Promise<string | null>;
  /** A wait that may be long and silent (a queued create, a stop): the unix socket lifts its idle timeout. */
  untimed: () => void;
  /** When the request arrived (trace points). */
  received: number;
}

/** An answer, or a socket route's data: the transport opens the socket (a WebSocket upgrade, or a link stream). */
export type RouteResult = Response | { socket: SocketData };

export interface RouterDeps {
  config: Pick<ExecutorConfig, "nodeName">;
  manager: SessionManager;
  engine: DockerEngine;
  gpuUse: GpuUseMonitor;
  slurm: SlurmSessions | undefined;
  /** Throws while the node takes no new sessions (cordoned). */
  assertAccepting: () => void;
  /** The sessions' network and its rule, before any create. */
  guardNetwork: () => Promise<void>;
  caps: { terminals: PerUserCap; requests: PerUserCap };
  /** Root's graceful restart. */
  restart: () => void;
  /** Log where each create's time goes (`executor run --trace`). */
  traceCreates: boolean;
  log: (line: string) => void;
}

export function errorResponse(err: unknown): Response {
  return Response.json({ error: { code: errorCodeOf(err), message: errorMessage(err) } }, { status: httpStatusOf(err) });
}

async function readJson(req: Request): Promise<unknown> {
  const text = await req.text();
  if (text.length > requestLimits.bodyBytes) throw new UsageError("request body too large");
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError("request body is not valid JSON");
  }
}

/** A session reference from a URL: an ID, a prefix or a name, nothing else; `?user=U` looks among U's sessions. */
function sessionRef(raw: string, query: URLSearchParams): SessionRef {
  let ref: string;
  try {
    ref = decodeURIComponent(raw);
  } catch {
    throw new UsageError("bad session reference");
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(ref)) throw new UsageError("a session is named by its ID or name");
  const user = query.get("user");
  if (user !== null && !/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}\$?$/.test(user)) throw new UsageError("user must be a user name");
  return { ref, user };
}

const wantsSocket = (req: Request) => req.headers.get("upgrade")?.toLowerCase() === "websocket";

/** The API's routes, for the unix socket and the node link alike. Never throws: errors are answers. */
export function createRouter(deps: RouterDeps): (req: Request, caller: Caller) => Promise<RouteResult> {
  const { manager, gpuUse, slurm, caps, log } = deps;

  async function answer(req: Request, caller: Caller, url: URL): Promise<RouteResult> {
    const path = url.pathname;
    const { uid } = caller;
    const account = path.startsWith("/v1/sessions") ? await caller.account() : null;
    const callerChecked = traceNow();
    const traceAsked = req.headers.get(traceHeader) === "1";
    const terminal = /^\/v1\/sessions\/([^/]+)\/(attach|exec)$/.exec(path);
    if (terminal && wantsSocket(req)) {
      // Errors (not yours, not running) go over the socket as a control message, where the CLI reads them.
      return { socket: { uid, sessionRef: sessionRef(terminal[1]!, url.searchParams), mode: terminal[2] as "attach" | "exec", ...parseTerminalQuery(url.searchParams), trace: traceAsked } };
    }
    const port = parsePortRoute(path);
    // Errors (not yours, not running, nothing listening) go over the socket, like a terminal's.
    if (port && wantsSocket(req)) return { socket: { mode: "port", uid, sessionRef: sessionRef(port.ref, url.searchParams), port: port.port, early: [] } };
    if (path === "/v1/gpus" && req.method === "GET") {
      const report = slurm ? await slurm.annotate(await manager.gpuReport()) : await manager.gpuReport();
      if (uid === 0) return Response.json(report);
      return Response.json(redactGpuReport(report, new Set(manager.list(uid, false).map((s) => s.id))));
    }
    if (path === "/v1/sessions" && req.method === "GET") return Response.json(manager.list(uid, url.searchParams.get("all") === "1"));
    if (path === "/v1/restart" && req.method === "POST") {
      if (uid !== 0) throw new ForbiddenError("only root may restart the executor");
      log("restart asked for by root");
      // Once this answer has gone out: the stop may close every connection within the same tick.
      setTimeout(deps.restart, 50);
      return Response.json({ pid: process.pid }, { status: 202 });
    }
    if (path === "/v1/sessions" && req.method === "POST") {
      deps.assertAccepting();
      await deps.guardNetwork();
      // A create may wait in the queue for hours, silent; the default idle timeout would cut it.
      caller.untimed();
      const trace = new Trace();
      trace.mark("request received", caller.received);
      trace.mark("caller checked", callerChecked);
      const body = parseCreateRequest(await readJson(req));
      trace.mark("request parsed");
      return createStream(uid, account, body, req.signal, { trace, send: traceAsked });
    }
    const one = /^\/v1\/sessions\/([^/]+)(\/stop)?$/.exec(path);
    if (one && !one[2] && req.method === "GET") return Response.json(await manager.describe(uid, sessionRef(one[1]!, url.searchParams)));
    if (one && one[2] && req.method === "POST") {
      caller.untimed();
      const { timeout } = parseStopRequest(await readJson(req));
      return Response.json(await manager.stop(uid, sessionRef(one[1]!, url.searchParams), timeout));
    }
    const keep = /^\/v1\/sessions\/([^/]+)\/keep$/.exec(path);
    if (keep && req.method === "POST") {
      const { seconds } = parseKeepRequest(await readJson(req));
      return Response.json(viewOf(manager, gpuUse.keep(uid, sessionRef(keep[1]!, url.searchParams), seconds)));
    }
    return Response.json({ error: { code: "not_found", message: `no route ${req.method} ${path}` } }, { status: 404 });
  }

  /** `traced.send`: the caller asked for the executor's trace points, which then ride on the `created` event. */
  function createStream(uid: number, account: string | null, body: CreateSessionRequest, signal: AbortSignal, traced: { trace: Trace; send: boolean }): Response {
    const stream = new ReadableStream<string>({
      async start(controller) {
        const emit = (event: CreateEvent) => {
          try {
            controller.enqueue(`${JSON.stringify(event)}\n`);
          } catch {}
        };
        // A blank line every few seconds keeps the connection busy: Bun's idle timeout would cut a silent wait.
        const keepalive = setInterval(() => {
          try {
            controller.enqueue("\n");
          } catch {}
        }, 4000);
        try {
          const session = await manager.create(uid, body, emit, signal, account, traced.trace);
          emit({ type: "created", session, ...(traced.send ? { trace: traced.trace.points } : {}) });
          const live = manager.sessions.get(session.id);
          if (deps.traceCreates && live) logCreateTrace(session.id, live.trace, live.exited, log);
        } catch (err) {
          emit({ type: "error", code: errorCodeOf(err), message: errorMessage(err) });
        } finally {
          clearInterval(keepalive);
        }
        try {
          controller.close();
        } catch {}
      },
    });
    return new Response(stream, { headers: { "content-type": "application/x-ndjson" } });
  }

  return async (req, caller) => {
    const url = new URL(req.url);
    let release = () => {};
    try {
      // Given back once the answer starts (or fails): a hanging request holds one of its user's places till then.
      release = caps.requests.take(caller.uid);
      return await answer(req, caller, url);
    } catch (err) {
      if (!(err instanceof BeakerError)) log(`${req.method} ${url.pathname}: ${errorMessage(err)}`);
      return errorResponse(err);
    } finally {
      release();
    }
  };
}

const isPort = (ws: PeerSocket<SocketData>): ws is PeerSocket<PortData> => ws.data.mode === "port";

/**
 * A socket route's life, whatever carries it: open, each message, drain (the peer took some output), close. Open
 * terminals are kept in `terminals` (a graceful restart closes them with 1012).
 */
export function createSocketHandlers(deps: Pick<RouterDeps, "manager" | "engine" | "caps" | "log">) {
  const { manager, engine, caps, log } = deps;
  const terminals = new Set<PeerSocket<TerminalData>>();
  // A port relay is a connection like a terminal, and counts against the same per-user cap.
  const portDeps = { find: (uid: number, ref: SessionRef) => manager.find(uid, ref), publishedState: (id: string) => engine.publishedState(id), connections: caps.terminals };
  return {
    terminals,
    open(ws: PeerSocket<SocketData>): void {
      if (isPort(ws)) return void openPortRelay(ws, portDeps).catch((err) => log(`port: ${errorMessage(err)}`));
      const terminal = ws as PeerSocket<TerminalData>;
      terminals.add(terminal);
      void openTerminal(terminal, { manager, engine, terminals: caps.terminals }).catch((err) => log(`terminal: ${errorMessage(err)}`));
    },
    message(ws: PeerSocket<SocketData>, message: string | Buffer): void {
      if (isPort(ws)) return onPortMessage(ws, message);
      void onTerminalMessage(ws as PeerSocket<TerminalData>, message).catch((err) => log(`terminal message: ${errorMessage(err)}`));
    },
    drain(ws: PeerSocket<SocketData>): void {
      if (isPort(ws)) onPortDrain(ws);
      else terminalDrained(ws as PeerSocket<TerminalData>);
    },
    close(ws: PeerSocket<SocketData>): void {
      if (isPort(ws)) return closePortRelay(ws);
      terminals.delete(ws as PeerSocket<TerminalData>);
      closeTerminal(ws as PeerSocket<TerminalData>);
    },
  };
}

export type SocketHandlers = ReturnType<typeof createSocketHandlers>;
