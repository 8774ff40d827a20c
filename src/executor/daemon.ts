import { chmodSync, mkdirSync, unlinkSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import type { ExecutorConfig } from "../config/executor.ts";
import { BeakerError, errorCodeOf, errorMessage, httpStatusOf, ForbiddenError, UsageError } from "../errors.ts";
import { redactGpuReport } from "../gpu/report.ts";
import { buildInfo } from "../version.ts";
import { log } from "../util/log.ts";
import { systemClock } from "../util/clock.ts";
import { logCreateTrace, Trace, traceHeader, traceNow } from "../util/trace.ts";
import { DockerEngine } from "../runtime/docker/engine.ts";
import type { CreateEvent, CreateSessionRequest } from "./api-types.ts";
import { SessionHistory } from "./sessions/history.ts";
import { InventoryCache } from "./gpu/inventory-cache.ts";
import { claimNode } from "./node-claim.ts";
import { proofDirFor, proofHeader, sweepProofs, tokenHeader, verifyProof } from "./proof.ts";
import { releaseAllStaged } from "./sessions/stage.ts";
import { parseCreateRequest, parseKeepRequest, parseStopRequest, parseTerminalQuery, requestLimits } from "./validate.ts";
import { GpuUseMonitor } from "./gpu/gpu-use.ts";
import { viewOf } from "./sessions/queries.ts";
import { holdersHelp, NetnsPool } from "./network/netns-pool.ts";
import { ServerLink, TokenChecker } from "./server-link.ts";
import { SessionManager } from "./sessions/manager.ts";
import { SlurmSessions } from "./slurm/slurm.ts";
import { CommandSlurmRunner } from "../slurm/run.ts";
import { closeTerminal, noticeTerminals, onTerminalMessage, openTerminal, terminalDrained, type TerminalData } from "./terminals/terminal.ts";
import { requestCap, terminalCap } from "./terminals/user-caps.ts";
import { drainExecutor } from "./drain.ts";
import { queueFile } from "./claims/queue-file.ts";
import { loadTicketKey, TicketBook } from "./claims/tickets.ts";
import type { ServerWebSocket } from "bun";
import { UserDirectory } from "./sessions/users.ts";
import type { SessionRef } from "./sessions/lookup.ts";
import { memlockLimit, prepareSocket } from "./host-setup.ts";
import { guardSessionBridge, requireIptables } from "./network/firewall.ts";
import { closePortRelay, onPortDrain, onPortMessage, openPortRelay, parsePortRoute, type PortData } from "./terminals/port-relay.ts";

type SocketData = TerminalData | PortData;

function isPort(ws: ServerWebSocket<SocketData>): ws is ServerWebSocket<PortData> {
  return ws.data.mode === "port";
}

function errorResponse(err: unknown): Response {
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

/**
 * Runs the executor in the foreground until SIGTERM/SIGINT. Sessions keep running when it stops. `trace`: log where
 * each create's time goes.
 */
export async function runExecutor(config: ExecutorConfig, options: { trace?: boolean } = {}): Promise<void> {
  // Held until this process exits; the kernel lets go of it however that happens.
  claimNode({ engine: config.dockerSocket, nodeName: config.nodeName });
  // Without it the sessions' network would be open to every local user: refuse to start, in one line.
  const iptables = holdersHelp(config.sessionNetwork) ? requireIptables() : null;
  // No input may end the daemon: whatever escapes a handler is logged, and the executor carries on.
  process.on("unhandledRejection", (err) => log(`internal error (ignored): ${errorMessage(err)}`));
  process.on("uncaughtException", (err) => log(`internal error (ignored): ${errorMessage(err)}`));
  const engine = new DockerEngine(config.dockerSocket);
  const inventory = new InventoryCache(config.nvidiaSmi, log);
  const beakerBinary = process.execPath.endsWith("/bun") ? null : process.execPath;
  const memlock = memlockLimit();
  if (memlock !== -1) log(`locked memory is capped at ${memlock} bytes on this node (no CAP_SYS_RESOURCE); NCCL may run slower`);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const history = new SessionHistory(config.stateDir, config.historyRetention, log);
  let link: ServerLink | null = null;
  const slurm = config.scheduler === "slurm" ? new SlurmSessions(new CommandSlurmRunner(process.env), config.slurm) : undefined;
  if (slurm) log(`scheduler: slurm (this node is ${config.slurm.node} to Slurm); sessions run in their callers' Slurm jobs`);
  const netns = holdersHelp(config.sessionNetwork) ? new NetnsPool(engine, config, log) : null;
  const manager = new SessionManager({
    config,
    engine,
    inventory,
    users: new UserDirectory(),
    history,
    log,
    node: { beakerBinary, memlock, cpus: availableParallelism(), memoryBytes: totalmem() },
    clock: systemClock,
    onChange: () => {
      void link?.beat();
      // A session that ended gives its job back to Slurm at once.
      if (slurm) void slurm.sync(manager);
    },
    slurm,
    tickets: new TicketBook(loadTicketKey(config.stateDir, log)),
    places: queueFile(config.stateDir, log),
    ...(netns ? { netns } : {}),
  });
  manager.claims.restoreQueue();
  const gpuUse = new GpuUseMonitor(manager, { sample: () => inventory.fresh(), notify: noticeTerminals });
  manager.gpuUse = gpuUse;
  // With a server: users' tokens are checked with it, and this node reports to it.
  const tokens = config.server ? new TokenChecker(config.server, log) : null;
  if (config.server) {
    link = new ServerLink({ serverUrl: config.server, tokenFile: config.tokenFile, nodeName: config.nodeName, cluster: config.cluster, intervalMs: 5000 }, { sessions: manager, use: gpuUse }, log);
    link.start();
  }
  prepareSocket(config.socket);
  const proofs = proofDirFor(config.socket);
  await releaseAllStaged(config.stateDir, log);

  await inventory.get();
  // Docker-side setup (the sessions' network, leftovers of a crash), then the first reconcile; retried until it works.
  let engineReady = false;
  // The network and its rule (firewall.ts) before any session: a create waits for them, or fails saying why.
  let guard: Promise<void> | null = null;
  const guardNetwork = () =>
    (guard ??= engine.ensureSessionNetwork(config.sessionNetwork).then((bridge) => {
      if (bridge && iptables) guardSessionBridge(bridge, iptables);
    })).catch((err) => {
      guard = null;
      throw err;
    });
  const setUpEngine = async () => {
    if (!engineReady) {
      await guardNetwork();
      await engine.removeLeftoverFacts(config.nodeName);
      engineReady = true;
    }
    await manager.reconcile();
    void netns?.tend();
  };
  try {
    await setUpEngine();
  } catch (err) {
    log(`cannot reach Docker yet (${errorMessage(err)}); will retry`);
  }
  gpuUse.start();
  const reconcileTimer = setInterval(() => {
    setUpEngine()
      .then(() => manager.stopIdle())
      .then(() => slurm?.sync(manager))
      .catch((err) => log(`reconcile: ${errorMessage(err)}`));
  }, 5000);
  const sweepTimer = setInterval(() => {
    try {
      sweepProofs(proofs);
    } catch (err) {
      log(`cannot sweep ${proofs}: ${errorMessage(err)}`);
    }
  }, 5000);

  // A graceful stop: SIGTERM/SIGINT (systemd), or root's `beaker executor restart`.
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const terminals = new Set<ServerWebSocket<TerminalData>>();
  const caps = { terminals: terminalCap(config.maxTerminalsPerUser), requests: requestCap() };
  // A port relay is a connection like a terminal, and counts against the same per-user cap.
  const portDeps = { find: (uid: number, ref: SessionRef) => manager.find(uid, ref), publishedState: (id: string) => engine.publishedState(id), connections: caps.terminals };

  const server = Bun.serve<SocketData, never>({
    unix: config.socket,
    // The longest a request may be silent (a stop waiting out its timeout); queued creates send keepalives.
    ...({ idleTimeout: 255 } as object),
    maxRequestBodySize: requestLimits.bodyBytes,

    async fetch(req, srv) {
      const received = traceNow();
      const url = new URL(req.url);
      const path = url.pathname;
      let release = () => {};
      try {
        if (path === "/v1/health") {
          return Response.json({
            version: buildInfo.version,
            commit: buildInfo.commit,
            node: config.nodeName,
            pid: process.pid,
            server: config.server,
            binary: beakerBinary,
            restarting: manager.claims.state.draining,
          });
        }
        const uid = verifyProof(proofs, req.headers.get(proofHeader));
        // Given back once the answer starts (or fails): a hanging request holds one of its user's places till then.
        release = caps.requests.take(uid);
        const account = tokens && path.startsWith("/v1/sessions") ? (await tokens.check(req.headers.get(tokenHeader))).name : null;
        const callerChecked = traceNow();
        const traceAsked = req.headers.get(traceHeader) === "1";
        const terminal = /^\/v1\/sessions\/([^/]+)\/(attach|exec)$/.exec(path);
        if (terminal && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
          const data: TerminalData = { uid, sessionRef: sessionRef(terminal[1]!, url.searchParams), mode: terminal[2] as "attach" | "exec", ...parseTerminalQuery(url.searchParams), trace: traceAsked };
          // Errors (not yours, not running) go over the socket as a control message, where the CLI reads them.
          if (srv.upgrade(req, { data })) return undefined;
          throw new UsageError("expected a WebSocket upgrade");
        }
        const port = parsePortRoute(path);
        if (port && req.headers.get("upgrade")?.toLowerCase() === "websocket") {
          // Errors (not yours, not running, nothing listening) go over the socket, like a terminal's.
          if (srv.upgrade(req, { data: { mode: "port", uid, sessionRef: sessionRef(port.ref, url.searchParams), port: port.port, early: [] } })) return undefined;
          throw new UsageError("expected a WebSocket upgrade");
        }
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
          setTimeout(requestStop, 50);
          return Response.json({ pid: process.pid }, { status: 202 });
        }
        if (path === "/v1/sessions" && req.method === "POST") {
          link?.assertAcceptingSessions();
          await guardNetwork();
          // A create may wait in the queue for hours, silent; the default idle timeout would cut it.
          srv.timeout(req, 0);
          const trace = new Trace();
          trace.mark("request received", received);
          trace.mark("caller checked", callerChecked);
          const body = parseCreateRequest(await readJson(req));
          trace.mark("request parsed");
          return createStream(uid, account, body, req.signal, { trace, send: traceAsked });
        }
        const one = /^\/v1\/sessions\/([^/]+)(\/stop)?$/.exec(path);
        if (one && !one[2] && req.method === "GET") return Response.json(await manager.describe(uid, sessionRef(one[1]!, url.searchParams)));
        if (one && one[2] && req.method === "POST") {
          srv.timeout(req, 0);
          const { timeout } = parseStopRequest(await readJson(req));
          return Response.json(await manager.stop(uid, sessionRef(one[1]!, url.searchParams), timeout));
        }
        const keep = /^\/v1\/sessions\/([^/]+)\/keep$/.exec(path);
        if (keep && req.method === "POST") {
          const { seconds } = parseKeepRequest(await readJson(req));
          return Response.json(viewOf(manager, gpuUse.keep(uid, sessionRef(keep[1]!, url.searchParams), seconds)));
        }
        return Response.json({ error: { code: "not_found", message: `no route ${req.method} ${path}` } }, { status: 404 });
      } catch (err) {
        if (!(err instanceof BeakerError)) log(`${req.method} ${path}: ${errorMessage(err)}`);
        return errorResponse(err);
      } finally {
        release();
      }
    },
    websocket: {
      maxPayloadLength: 1024 * 1024,
      open: (ws) => {
        if (isPort(ws)) return void openPortRelay(ws, portDeps).catch((err) => log(`port: ${errorMessage(err)}`));
        terminals.add(ws as ServerWebSocket<TerminalData>);
        void openTerminal(ws as ServerWebSocket<TerminalData>, { manager, engine, terminals: caps.terminals }).catch((err) => log(`terminal: ${errorMessage(err)}`));
      },
      message: (ws, message) => {
        if (isPort(ws)) return onPortMessage(ws, message);
        void onTerminalMessage(ws as ServerWebSocket<TerminalData>, message).catch((err) => log(`terminal message: ${errorMessage(err)}`));
      },
      drain: (ws) => (isPort(ws) ? onPortDrain(ws) : terminalDrained(ws as ServerWebSocket<TerminalData>)),
      close: (ws) => {
        if (isPort(ws)) return closePortRelay(ws);
        terminals.delete(ws as ServerWebSocket<TerminalData>);
        closeTerminal(ws as ServerWebSocket<TerminalData>);
      },
    },
  });
  chmodSync(config.socket, 0o666);
  log(`beaker executor ${buildInfo.version} listening on ${config.socket} (node ${config.nodeName})`);

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
          if (options.trace && live) logCreateTrace(session.id, live.trace, live.exited, log);
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

  process.once("SIGTERM", requestStop);
  process.once("SIGINT", requestStop);
  await stopRequested;
  gpuUse.stop();
  await drainExecutor(manager, terminals);
  await netns?.close();
  clearInterval(reconcileTimer);
  clearInterval(sweepTimer);
  link?.stop();
  server.stop(true);
  try {
    unlinkSync(config.socket);
  } catch {}
  log("executor stopped; sessions keep running and are adopted at the next start");
}
