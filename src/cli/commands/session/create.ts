import { homedir } from "node:os";
import { CancelledWhileQueued, errorFromCode, RestartingError, UnavailableError, UsageError } from "../../../errors.ts";
import { ConnectionLostError, ExecutorUnreachableError } from "../../../executor/client.ts";
import type { CreateEvent, CreateSessionRequest, SessionInfo } from "../../../executor/api-types.ts";
import { jsonOption, type CommandSpec } from "../../command.ts";
import type { Factory } from "../../factory.ts";
import { printJson } from "../../output.ts";
import { attachTerminal, parseDetachKeys, printPorts } from "../../terminal.ts";
import { createProgress } from "../../progress.ts";
import { isNodeMachine } from "../../node-only.ts";
import { checkNodeName, noClusterHere } from "../../remote.ts";
import { checkGpuType, createOnNode, pickClusterNode } from "./remote-create.ts";
import { connectHint, hasHostBlock, sshPaths } from "../../../ssh/client-config.ts";
import { createReconnect, type Reconnect } from "../../reconnect.ts";
import { createThroughSlurm, slurmOptions, slurmRequest, wantsLoginFlow } from "./slurm-create.ts";
import { pendingLine } from "../../../slurm/job.ts";
import { formatClock, formatTime } from "./ref.ts";
import { parseDuration } from "../../../util/duration.ts";

function numberFlag(value: unknown, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

/** `--time`: seconds, or null when not given. */
function timeFlag(value: unknown): number | null {
  if (value === undefined) return null;
  const seconds = parseDuration(String(value));
  if (seconds === null) throw new UsageError(`--time "${String(value)}" is not a duration like 4h, 90m or 1-12:00:00`);
  return seconds;
}

/** Flags -> the request the executor gets. Pure apart from reading the environment it is given. */
export function buildCreateRequest(flags: Record<string, unknown>, rest: string[], ctx: { cwd: string; tty: boolean; term: string | null; defaultImage: string | null }): CreateSessionRequest {
  const cpus = flags.cpus === undefined ? null : Number(flags.cpus);
  if (cpus !== null && !(cpus > 0)) throw new UsageError("--cpus must be a positive number");
  const ports = ((flags.port as string[] | undefined) ?? []).map((p) => numberFlag(p, "--port", 1, 65535)!);
  const env = (flags.env as string[] | undefined) ?? [];
  for (const entry of env) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(entry)) throw new UsageError(`--env "${entry}" must be KEY=VALUE`);
  return {
    gpus: numberFlag(flags.gpus, "--gpus", 0, 64),
    image: (flags.image as string | undefined) ?? ctx.defaultImage,
    name: (flags.name as string | undefined) ?? null,
    cpus,
    memory: (flags.memory as string | undefined) ?? null,
    sharedMemory: (flags.sharedMemory as string | undefined) ?? null,
    ports,
    env,
    mounts: (flags.mount as string[] | undefined) ?? [],
    workdir: (flags.workdir as string | undefined) ?? null,
    command: rest,
    cwd: ctx.cwd,
    tty: ctx.tty,
    term: ctx.term,
    noWait: Boolean(flags.wait === false),
    detach: Boolean(flags.detach),
    slurm: slurmRequest(flags),
    timeLimit: timeFlag(flags.time),
  };
}

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

export const sessionCreateCommand: CommandSpec = {
  name: "create",
  usesExecutor: true,
  summary: "Start a session with its own GPUs (on this node, or a cluster's over ssh), and enter it",
  passthrough: true,
  options: [
    { flags: "--gpus <n>", description: "GPUs to claim (default 1 on a node with GPUs, 0 without)", kind: "number" },
    { flags: "--image <image>", description: "Container image (default: your default_image, else the node's)", kind: "string" },
    { flags: "--name <name>", description: "A name for the session, unique among yours on this node", kind: "string" },
    { flags: "--cpus <n>", description: "CPU limit", kind: "string" },
    { flags: "--memory <size>", description: "Memory limit, like 64g", kind: "string" },
    { flags: "--shared-memory <size>", description: "/dev/shm size (default half the memory limit, or 8g)", kind: "string" },
    { flags: "--port <port>", description: "Publish a container port (repeatable)", kind: "list" },
    { flags: "--env <K=V>", description: "Set an environment variable (repeatable)", kind: "list" },
    { flags: "--mount <SRC:DST[:ro]>", description: "Bind-mount a path you can read (repeatable)", kind: "list" },
    { flags: "--workdir <dir>", description: "Working directory inside (default: here if inside your home, else home)", kind: "string" },
    { flags: "--time <duration>", description: 'Stop it after this long: "4h", "90m", or as Slurm writes it, "60" (minutes), "4:00:00"; under Slurm also the job\'s time limit', kind: "string" },
    { flags: "-d, --detach", description: "Start it without attaching", kind: "boolean" },
    { flags: "--no-wait", description: "Fail (exit 6) instead of waiting in the queue", kind: "boolean" },
    { flags: "--cluster <name>", description: "Start it on the node of this cluster with room (default: your default_cluster, where no executor runs)", kind: "string" },
    { flags: "--node <host>", description: "Start it on this node (reached with ssh)", kind: "string" },
    { flags: "--gpu-type <type>", description: "With --cluster: GPUs whose name contains this, like H100", kind: "string" },
    ...slurmOptions,
    jsonOption,
  ],
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
        printPorts(io, session.ports);
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
};

/**
 * Where a new session goes: null for this node's executor; else a node reached with ssh. `--node` names it; a cluster
 * (`--cluster`, or `default_cluster` where no executor runs) lets the server's view pick it. A pick that lands on this
 * very node stays local.
 */
async function createTarget(factory: Factory, flags: Record<string, unknown>, defaultCluster: string | null): Promise<{ node: string; gpus: number | null; cluster: string | null } | null> {
  const explicit = (flags.cluster as string | undefined) ?? null;
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
    const node = checkNodeName(String(flags.node));
    return health?.node === node ? null : { node, gpus: (flags.gpus as number | undefined) ?? null, cluster };
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

export function reportOutcome(io: Factory["io"], session: SessionInfo, outcome: Awaited<ReturnType<typeof attachTerminal>>): number {
  if (outcome.kind === "detached") {
    io.err.write(`\ndetached from session ${session.name}; it keeps running. Back in with: beaker session attach ${session.id}\n`);
    return 0;
  }
  if (outcome.kind === "lost") {
    const why = outcome.waited === null ? "lost the connection to the executor" : `the executor did not come back within ${outcome.waited} s (reconnect_timeout)`;
    io.err.write(`\n${why}; the session may still run: beaker session attach ${session.id}\n`);
    return 1;
  }
  if (outcome.whileAway) {
    io.err.write(`\nsession ${session.name} ended while the executor restarted (${outcome.reason}, exit code ${outcome.code})\n`);
    return outcome.code;
  }
  if (outcome.reason === "exited") return outcome.code;
  if (outcome.reason.startsWith("slurm: ")) {
    io.err.write(`\nsession ${session.name} ended: Slurm ended its job (${outcome.reason.slice("slurm: ".length)})\n`);
    return 143;
  }
  if (outcome.reason === "executor lost the container") {
    io.err.write(`\nsession ${session.name} ended: its container disappeared (removed outside Beaker?)\n`);
    return outcome.code;
  }
  // Stopped (by its user, an admin, for idleness or its time limit): the CLI ends as a SIGTERM'd program would.
  const why: Record<string, string> = {
    idle: "stopped: nobody attached for the node's idle timeout",
    "idle GPUs": "stopped: its GPUs were idle",
    "time limit": "stopped: it reached its time limit",
  };
  io.err.write(`\nsession ${session.name} was ${why[outcome.reason] ?? outcome.reason}\n`);
  return 143;
}
