import { homedir } from "node:os";
import { CancelledWhileQueued, errorFromCode, RestartingError, UnavailableError, UsageError } from "../../../errors.ts";
import { ConnectionLostError, ExecutorUnreachableError } from "../../../executor/client.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../../../executor/api-types.ts";
import { defineCommand } from "../../command.ts";
import type { Factory } from "../../factory.ts";
import { printJson } from "../../output.ts";
import { attachTerminal, parseDetachKeys, printPorts } from "../../terminal.ts";
import { reportOutcome } from "./outcome.ts";
import { createProgress } from "../../progress.ts";
import { isNodeMachine } from "../../node-only.ts";
import { checkNodeName, noClusterHere } from "../../remote.ts";
import { checkGpuType, createOnNode, pickClusterNode } from "./remote-create.ts";
import { connectHint, hasHostBlock, sshPaths } from "../../../ssh/client-config.ts";
import { createReconnect, type Reconnect } from "../../reconnect.ts";
import { createThroughSlurm, wantsLoginFlow } from "./slurm-create.ts";
import { buildCreateRequest } from "../../../executor/create-request.ts";
import { createOptions, type CreateFlags } from "./create-flags.ts";
import { pendingLine } from "../../../slurm/job.ts";
import { formatClock, formatTime } from "./ref.ts";

/**
 * Sends the request and follows its events (queue, pull) until the session exists. Ctrl-C leaves the queue. When the
 * executor restarts meanwhile, the same request goes again with its ticket, which keeps its place in the queue.
 */
export async function requestSession(factory: Factory, request: CreateSessionRequest, reconnect: Reconnect): Promise<SessionInfo> {
  const { io } = factory;
  const progress = createProgress(io);
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  process.once("SIGINT", onInterrupt);
  let announcedQueue = "";
  let ticket: string | undefined;
  // Sent again once the executor had answered (or said it is restarting): an executor that never answered is an error.
  let taken = false;
  try {
    for (;;) {
      try {
        for await (const event of factory.executor().events<CreateEvent>("POST", "/v1/sessions", ticket ? { ...request, ticket } : request, abort.signal)) {
          if (event.type === "ticket") {
            ticket = event.ticket;
            taken = true;
            reconnect.recovered();
          } else if (event.type === "returned") {
            if (!event.kept) io.err.write(`the executor restarted and did not keep your place in the queue (you were away longer than it waits); waiting again\n`);
          } else if (event.type === "queued") {
            const line = queueLine(event);
            if (progress.live) progress.update(line);
            else if (line !== announcedQueue) io.err.write(`${line}\n`);
            announcedQueue = line;
          } else if (event.type === "slurm") {
            // Sent when Slurm's reason or estimate changes: each is news to someone reading a log too.
            const line = pendingLine({ id: event.job, reason: event.reason, startTime: event.startTime }, formatTime);
            if (progress.live) progress.update(line);
            else io.err.write(`${line}\n`);
          } else if (event.type === "pulling") {
            progress.pull(event);
          } else if (event.type === "error") {
            throw errorFromCode(event.code, event.message);
          } else if (event.type === "created") {
            progress.done();
            factory.trace?.mark("created event");
            factory.trace?.add("executor", event.trace);
            return event.session;
          }
        }
        throw new ConnectionLostError("the executor closed the connection before the session was created");
      } catch (err) {
        // Only a connection that broke, or an executor that said it is restarting: its other answers (Docker down) stand.
        const again = err instanceof RestartingError || err instanceof ConnectionLostError || (taken && err instanceof ExecutorUnreachableError);
        if (abort.signal.aborted || !again) throw err;
        progress.done();
        if (!(await reconnect.wait(abort.signal))) {
          if (abort.signal.aborted) throw err;
          throw new UnavailableError(`the executor did not come back within ${reconnect.timeoutSeconds} s (reconnect_timeout); 'beaker executor status' says whether it runs`);
        }
        taken = true;
      }
    }
  } catch (err) {
    progress.done();
    if (abort.signal.aborted) throw new CancelledWhileQueued();
    throw err;
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

/** "Waiting for 2 GPUs: position 2 in the queue (0 free now); 2 GPUs free by 14:30 at the latest". Pure. */
export function queueLine(event: Extract<CreateEvent, { type: "queued" }>): string {
  const gpus = `${event.gpus} GPU${event.gpus === 1 ? "" : "s"}`;
  const line = `Waiting for ${gpus}: position ${event.position} in the queue (${event.free} free now)`;
  if (!event.freeBy) return line;
  // Rounded up to the minute: "at the latest" must hold for the minute shown.
  const by = new Date(Math.ceil(Date.parse(event.freeBy) / 60_000) * 60_000).toISOString();
  return `${line}; ${gpus} free by ${formatClock(by)} at the latest`;
}

export const sessionCreateCommand = defineCommand({
  name: "create",
  usesExecutor: true,
  summary: "Start a session with its own GPUs (on this node, or a cluster's over ssh), and enter it",
  passthrough: true,
  options: createOptions,
  examples: [
    "beaker session create",
    "beaker session create --gpus 2 --image nvcr.io/nvidia/pytorch:24.05-py3",
    "beaker session create --detach -- python3 train.py",
    "beaker session create --cluster lab --gpus 4 --gpu-type H100 --port 8888",
    "beaker session create --slurm --gpus 2 --partition gpu --time 4:00:00",
  ],
  async run({ flags, rest, factory }) {
    const { io } = factory;
    if (flags.json && !flags.detach) throw new UsageError("--json needs --detach: an attached session prints its own output");
    const config = factory.userConfig().read();
    factory.trace?.mark("config read");
    // Flags are checked here, before a node is picked or reached.
    const checked = buildCreateRequest(flags, rest, { cwd: process.cwd(), tty: false, term: null, defaultImage: null });
    if (await wantsLoginFlow(factory, flags)) return createThroughSlurm(factory, flags, rest, checked.timeLimit ?? null);
    const target = await createTarget(factory, flags, config.default_cluster ?? null);
    if (target) return createOnNode(factory, flags, rest, target);
    const request = buildCreateRequest(flags, rest, {
      cwd: process.cwd(),
      tty: !flags.detach ? io.isStdinTTY && io.isStdoutTTY : rest.length === 0,
      term: factory.env.TERM ?? null,
      defaultImage: config.default_image ?? null,
    });
    const executor = factory.executor();
    const reconnect = createReconnect(io, executor, config);
    const session = await requestSession(factory, request, reconnect);
    if (request.detach) {
      if (flags.json) printJson(io, { id: session.id, name: session.name, node: session.node, gpus: session.gpus, image: session.image, status: session.status });
      else {
        io.out.write(`${session.id}\n`);
        printPorts(io, session.ports, session.name);
        printConnectHint(factory, session);
      }
      return 0;
    }
    if (request.tty && request.command.length === 0) printConnectHint(factory, session);
    const outcome = await attachTerminal(executor, io, {
      sessionId: session.id,
      tty: request.tty,
      start: true,
      detachKeys: parseDetachKeys(config.detach_keys ?? "ctrl-p,ctrl-q"),
      reconnect,
    });
    return reportOutcome(io, session, outcome);
  },
});

/**
 * Where a new session goes: null for this node's executor; else a node reached with ssh. `--node` names it; a cluster
 * (`--cluster`, or `default_cluster` where no executor runs) lets the server's view pick it. A pick that lands on this
 * very node stays local.
 */
async function createTarget(factory: Factory, flags: CreateFlags, defaultCluster: string | null): Promise<{ node: string; gpus: number | null; cluster: string | null } | null> {
  const explicit = flags.cluster ?? null;
  // No cluster and no node named anywhere: this machine's executor, with no round trip to ask which node this is.
  if (explicit === null && flags.node === undefined && defaultCluster === null) {
    checkGpuType(flags, false);
    if (!isNodeMachine(factory.env)) throw noClusterHere();
    return null;
  }
  const health = await factory.executor().health();
  const cluster = explicit ?? (health ? null : defaultCluster);
  checkGpuType(flags, cluster !== null || flags.node !== undefined);
  if (flags.node !== undefined) {
    const node = checkNodeName(flags.node);
    return health?.node === node ? null : { node, gpus: flags.gpus ?? null, cluster };
  }
  if (cluster === null) {
    if (!health && !isNodeMachine(factory.env)) throw noClusterHere();
    return null;
  }
  const picked = await pickClusterNode(factory, cluster, flags);
  // Picked this node: the local create, with the GPU count the pick was made for.
  if (health?.node === picked.node) {
    flags.gpus = picked.gpus;
    return null;
  }
  return { ...picked, cluster };
}

/** `ssh NAME.beaker` and the VS Code line, on stderr (stdout keeps only the ID for scripts). */
function printConnectHint(factory: Factory, session: SessionInfo): void {
  const home = factory.env.HOME || homedir();
  factory.io.err.write(connectHint(session, home, hasHostBlock(sshPaths(home))));
}
