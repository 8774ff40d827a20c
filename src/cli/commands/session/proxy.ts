import { allowJit } from "../../../util/jit.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { findSessionNode } from "../../../remote/locate.ts";
import { beakerPipeOnNode } from "../../../remote/node.ts";
import { remoteContext } from "../../remote.ts";
import type { Writable } from "node:stream";
import { ConflictError, ForbiddenError, NotFoundError } from "../../../errors.ts";
import type { SessionDetails, SessionInfo } from "../../../executor/api-types.ts";
import { ensureHostKey, sshPaths } from "../../../ssh/client-config.ts";
import { parseSessionHost, sshServerCommand } from "../../../ssh/host.ts";
import { encodePreamble } from "../../../ssh/stdio.ts";
import { defineCommand } from "../../command.ts";
import { openExecPipe, type BytePipe, type PipeOutput } from "../../exec-pipe.ts";
import type { Factory } from "../../factory.ts";

export interface ProxyOptions {
  host: string;
  /** Where ~/.beaker (the host key) is. */
  home: string;
  /**
   * On the session's node, for a proxy on the user's laptop: stdin already starts with the laptop's preamble (its own
   * pinned host key), which is passed on as it is.
   */
  relay: boolean;
  /** The caller's uid: the host key goes only into the caller's own sessions, root's included. */
  uid: number;
}

export interface ProxyDeps {
  /** This node's name (only asked when the host name has more than one dot). */
  localNode(): Promise<string | null>;
  /** The caller's session here by ID, prefix or name (any case); null when there is none. */
  findSession(ref: string): Promise<SessionInfo | null>;
  openLocal(session: SessionInfo, output: PipeOutput): BytePipe;
  /** A session that is not here: on the node the host name says, else where the server says it is (null: nowhere). */
  openElsewhere(target: { name: string; node: string | null }, output: PipeOutput, localNode: string | null): Promise<BytePipe | null>;
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
  const output: PipeOutput = { stdout: (chunk) => deps.stdout.write(chunk), stderr: (chunk) => deps.stderr.write(chunk) };
  const session = await deps.findSession(host.ref);
  let pipe: BytePipe | null;
  if (session) {
    // The preamble carries the caller's host key: a session someone else started could be waiting to catch it.
    if (session.uid !== options.uid) throw new ForbiddenError(`session ${session.name} (${session.id}) belongs to ${session.user}: 'beaker session proxy' opens only your own sessions`);
    if (session.status === "exited") throw new ConflictError(`session ${session.name} has ended`);
    if (session.status !== "running") throw new ConflictError(`session ${session.name} is ${session.status}, not running yet`);
    pipe = deps.openLocal(session, output);
  } else {
    pipe = options.relay ? null : await deps.openElsewhere(host.elsewhere ?? { name: host.ref, node: null }, output, localNode);
    if (!pipe) throw new NotFoundError(`no session ${host.ref} of yours on ${host.elsewhere ? host.elsewhere.node : "this node"}`);
  }
  if (!options.relay) pipe.write(encodePreamble(await ensureHostKey(sshPaths(options.home))));
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
  // A laptop or login node: no session is here; the server knows where it is.
  if (!(await executor.isRunning())) return null;
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

/**
 * The session on another node: the node named in the host, else the one the server says has it (default_cluster).
 * ssh runs `beaker session proxy --relay` there, which joins the same stream to the session; the preamble written
 * here (this machine's pinned host key) passes through it.
 */
async function openOnNode(factory: Factory, target: { name: string; node: string | null }, output: PipeOutput, localNode: string | null): Promise<BytePipe | null> {
  let node = target.node;
  if (!node) {
    const cluster = factory.userConfig().read().default_cluster ?? null;
    if (!cluster) return null;
    node = (await findSessionNode(await factory.server(), { cluster, ref: target.name })).node;
  }
  if (node === localNode) return null;
  const dir = mkdtempSync(join(tmpdir(), "beaker-proxy-"));
  const pipe = beakerPipeOnNode(remoteContext(factory, dir), node, ["session", "proxy", "--relay", `${target.name}.beaker`], output.stdout);
  void pipe.done.finally(() => rmSync(dir, { recursive: true, force: true }));
  return pipe;
}

export const sessionProxyCommand = defineCommand({
  name: "proxy",
  args: "<HOST>",
  options: [{ flags: "--relay", description: "Internal: pass on the preamble read from stdin (a proxy on the user's laptop)", kind: "boolean" }],
  summary: "OpenSSH ProxyCommand for NAME.beaker hosts (set up by 'beaker session ssh-config')",
  examples: ["ssh -o ProxyCommand='beaker session proxy %h' train.beaker"],
  async run({ args, flags, factory }) {
    allowJit();
    return runProxy(
      { host: args[0]!, home: factory.env.HOME || homedir(), relay: flags.relay ?? false, uid: process.getuid?.() ?? -1 },
      {
        localNode: async () => (await factory.executor().health())?.node ?? null,
        findSession: (ref) => findSession(factory, ref),
        openLocal: (session, output) => openExecPipe(factory.executor(), session.id, sshServerCommand, output),
        openElsewhere: (target, output, localNode) => openOnNode(factory, target, output, localNode),
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        hungUp: new Promise((resolve) => process.once("SIGHUP", () => resolve())),
      },
    );
  },
});
