import { homedir } from "node:os";
import type { Writable } from "node:stream";
import { ConflictError, ForbiddenError, NotFoundError } from "../../../errors.ts";
import type { SessionDetails, SessionInfo } from "../../../executor/api-types.ts";
import { ensureHostKey, sshPaths } from "../../../ssh/client-config.ts";
import { parseSessionHost, sshServerCommand } from "../../../ssh/host.ts";
import { encodePreamble } from "../../../ssh/stdio.ts";
import type { CommandSpec } from "../../command.ts";
import { openExecPipe, type BytePipe, type PipeOutput } from "../../exec-pipe.ts";
import type { Factory } from "../../factory.ts";

export interface ProxyOptions {
  host: string;
  /** Where ~/.beaker (the host key) is. */
  home: string;
}

export interface ProxyDeps {
  /** This node's name (only asked when the host name has more than one dot). */
  localNode(): Promise<string | null>;
  /** The caller's session here by ID, prefix or name (any case); null when there is none. */
  findSession(ref: string): Promise<SessionInfo | null>;
  openLocal(session: SessionInfo, output: PipeOutput): BytePipe;
  /** `<name>.<node>.beaker` for a session that is not here: the transport to another node plugs in here. */
  openElsewhere(target: { name: string; node: string }, output: PipeOutput, localNode: string | null): Promise<BytePipe>;
  stdin: NodeJS.ReadableStream;
  /** ssh hangs up on its ProxyCommand as it exits; resolves then. */
  hungUp: Promise<void>;
  stdout: Writable;
  stderr: Writable;
}

const hangUpGraceMs = 2000;

/** OpenSSH's ProxyCommand: finds the session, starts `beaker ssh-server --stdio` in it and joins it to stdin/stdout. */
export async function runProxy(options: ProxyOptions, deps: ProxyDeps): Promise<number> {
  const localNode = options.host.split(".").length > 2 ? await deps.localNode() : null;
  const host = parseSessionHost(options.host, localNode);
  const hostKey = await ensureHostKey(sshPaths(options.home));
  const output: PipeOutput = { stdout: (chunk) => deps.stdout.write(chunk), stderr: (chunk) => deps.stderr.write(chunk) };
  const session = await deps.findSession(host.ref);
  let pipe: BytePipe;
  if (session) {
    if (session.status === "exited") throw new ConflictError(`session ${session.name} has ended`);
    if (session.status !== "running") throw new ConflictError(`session ${session.name} is ${session.status}, not running yet`);
    pipe = deps.openLocal(session, output);
  } else if (host.elsewhere) {
    pipe = await deps.openElsewhere(host.elsewhere, output, localNode);
  } else {
    throw new NotFoundError(`no session ${host.ref} on this node`);
  }
  pipe.write(encodePreamble(hostKey));
  deps.stdin.on("data", (chunk: Buffer) => pipe.write(chunk));
  deps.stdin.on("end", () => pipe.end());
  // ssh exits (and hangs up) as soon as it has its answer, but what the server says last, like why it refused the
  // login, may still be on its way to stderr: wait a moment for the server to finish.
  const gone = deps.hungUp.then(() => Promise.race([pipe.done, Bun.sleep(hangUpGraceMs).then(() => ({ code: 129 }))]));
  const { code, message }: { code: number; message?: string } = await Promise.race([pipe.done, gone]);
  // The last bytes (the server's goodbye) must reach ssh before this process exits.
  await new Promise<void>((resolve) => deps.stdout.write("", () => resolve()));
  if (message) {
    const before = message.includes(sshServerCommand[0]!) ? " (the session started before its node's beaker could serve SSH: start a new one)" : "";
    deps.stderr.write(`beaker: ${message}${before}\n`);
  }
  return code;
}

async function findSession(factory: Factory, ref: string): Promise<SessionInfo | null> {
  const executor = factory.executor();
  try {
    return await executor.request<SessionDetails>("GET", `/v1/sessions/${encodeURIComponent(ref)}`);
  } catch (err) {
    // Someone else's session reads as no session at all: a name tried over SSH tells nothing about others' sessions.
    if (err instanceof ForbiddenError) return null;
    if (!(err instanceof NotFoundError)) throw err;
  }
  // ssh lowercases host names: "Train.beaker" arrives as "train.beaker".
  const lower = ref.toLowerCase();
  const open = (await executor.request<SessionInfo[]>("GET", "/v1/sessions")).filter((s) => s.status !== "exited");
  return open.find((s) => s.name.toLowerCase() === lower || s.id.startsWith(lower)) ?? null;
}

export const sessionProxyCommand: CommandSpec = {
  name: "proxy",
  usesExecutor: true,
  args: "<HOST>",
  summary: "OpenSSH ProxyCommand for NAME.beaker hosts (set up by 'beaker session ssh-config')",
  examples: ["ssh -o ProxyCommand='beaker session proxy %h' train.beaker"],
  async run({ args, factory }) {
    return runProxy(
      { host: args[0]!, home: factory.env.HOME || homedir() },
      {
        localNode: async () => (await factory.executor().health())?.node ?? null,
        findSession: (ref) => findSession(factory, ref),
        openLocal: (session, output) => openExecPipe(factory.executor(), session.id, sshServerCommand, output),
        async openElsewhere(target, _output, localNode) {
          throw new NotFoundError(
            `no session ${target.name} on this node${localNode ? ` (${localNode})` : ""}; for a session on ${target.node}, ssh to ${target.node} and use ${target.name}.beaker there`,
          );
        },
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        hungUp: new Promise((resolve) => process.once("SIGHUP", () => resolve())),
      },
    );
  },
};
