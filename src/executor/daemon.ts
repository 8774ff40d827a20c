import { chmodSync, mkdirSync, unlinkSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import type { ExecutorConfig } from "../config/executor.ts";
import { BeakerError, errorMessage, UsageError } from "../errors.ts";
import { buildInfo } from "../version.ts";
import { log } from "../util/log.ts";
import { systemClock } from "../util/clock.ts";
import { traceNow } from "../util/trace.ts";
import { DockerEngine } from "../runtime/docker/engine.ts";
import { SessionHistory } from "./sessions/history.ts";
import { InventoryCache } from "./gpu/inventory-cache.ts";
import { claimNode } from "./node-claim.ts";
import { proofDirFor, proofHeader, sweepProofs, tokenHeader, verifyProof } from "./proof.ts";
import { releaseAllStaged } from "./sessions/stage.ts";
import { requestLimits } from "./validate.ts";
import { GpuUseMonitor } from "./gpu/gpu-use.ts";
import { holdersHelp, NetnsPool } from "./network/netns-pool.ts";
import { readNodeToken, ServerLink, TokenChecker } from "./server-link.ts";
import { LinkDialer } from "./link/dialer.ts";
import { mapLinkAccount, passwdLookup } from "./link/accounts.ts";
import { relayStream } from "./link/relay.ts";
import { SessionManager } from "./sessions/manager.ts";
import { SlurmSessions } from "./slurm/slurm.ts";
import { CommandSlurmRunner } from "../slurm/run.ts";
import { noticeTerminals } from "./terminals/terminal.ts";
import { createRouter, createSocketHandlers, errorResponse, type SocketData } from "./routes.ts";
import { requestCap, terminalCap } from "./terminals/user-caps.ts";
import { drainExecutor } from "./drain.ts";
import { queueFile } from "./claims/queue-file.ts";
import { loadTicketKey, TicketBook } from "./claims/tickets.ts";
import { UserDirectory } from "./sessions/users.ts";
import { memlockLimit, prepareSocket } from "./host-setup.ts";
import { guardSessionBridge, requireIptables } from "./network/firewall.ts";

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
  const caps = { terminals: terminalCap(config.maxTerminalsPerUser), requests: requestCap() };
  const routerDeps = {
    config,
    manager,
    engine,
    gpuUse,
    slurm,
    assertAccepting: () => link?.assertAcceptingSessions(),
    guardNetwork,
    caps,
    restart: () => requestStop(),
    traceCreates: options.trace === true,
    log,
  };
  const route = createRouter(routerDeps);
  const sockets = createSocketHandlers(routerDeps);

  const server = Bun.serve<SocketData, never>({
    unix: config.socket,
    // The longest a request may be silent (a stop waiting out its timeout); queued creates send keepalives.
    ...({ idleTimeout: 255 } as object),
    maxRequestBodySize: requestLimits.bodyBytes,

    async fetch(req, srv) {
      const received = traceNow();
      const path = new URL(req.url).pathname;
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
        const account = async () => (tokens ? (await tokens.check(req.headers.get(tokenHeader))).name : null);
        const result = await route(req, { uid, account, untimed: () => srv.timeout(req, 0), received });
        if (result instanceof Response) return result;
        if (srv.upgrade(req, { data: result.socket })) return undefined;
        throw new UsageError("expected a WebSocket upgrade");
      } catch (err) {
        if (!(err instanceof BeakerError)) log(`${req.method} ${path}: ${errorMessage(err)}`);
        return errorResponse(err);
      }
    },
    websocket: {
      maxPayloadLength: 1024 * 1024,
      open: (ws) => sockets.open(ws),
      message: (ws, message) => sockets.message(ws, message),
      drain: (ws) => sockets.drain(ws),
      close: (ws) => sockets.close(ws),
    },
  });
  chmodSync(config.socket, 0o666);
  log(`beaker executor ${buildInfo.version} listening on ${config.socket} (node ${config.nodeName})`);
  // With a server: the node link, dialled in the background; its requests go through the same router as the socket's.
  let dialer: LinkDialer | null = null;
  if (config.server) {
    const accounts = passwdLookup();
    const relay = { route, sockets, account: (name: string) => mapLinkAccount(name, config.linkUsers, accounts), log };
    dialer = new LinkDialer({ serverUrl: config.server, nodeName: config.nodeName, token: () => readNodeToken(config.tokenFile), onStream: (stream, head) => void relayStream(stream, head, relay), log });
    dialer.start();
  }

  process.once("SIGTERM", requestStop);
  process.once("SIGINT", requestStop);
  await stopRequested;
  gpuUse.stop();
  await drainExecutor(manager, sockets.terminals);
  await netns?.close();
  clearInterval(reconcileTimer);
  clearInterval(sweepTimer);
  link?.stop();
  dialer?.stop();
  server.stop(true);
  try {
    unlinkSync(config.socket);
  } catch {}
  log("executor stopped; sessions keep running and are adopted at the next start");
}
