import { allowJit } from "../../../util/jit.ts";
import { BeakerError, errorMessage, UsageError } from "../../../errors.ts";
import type { SessionDetails } from "../../../executor/api-types.ts";
import { forwardLine, openOnNode, parsePortSpec } from "../../../remote/forward.ts";
import { joinConnection, listenLoopbacks, type Listening } from "../../../remote/loopback.ts";
import { beakerOutputOnNode, sshCall } from "../../../remote/node.ts";
import { withSshDir } from "../../../remote/ssh.ts";
import { defineCommand } from "../../command.ts";
import type { Factory } from "../../factory.ts";
import { openSessionPort } from "../../port-stream.ts";
import { clusterOption, locateSession, nodeOption, remoteContext } from "../../remote.ts";
import { resolverFor, resolveRunningSession, userOption } from "./ref.ts";

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

/** A session on this node: each connection to LOCAL here is opened through the executor, for its owner. */
async function forwardLocal(factory: Factory, session: SessionDetails, ports: { local: number; remote: number }): Promise<number> {
  const executor = factory.executor();
  const say = (err: unknown) => factory.io.err.write(`${errorMessage(err)}\n`);
  const local = await listenLoopbacks(ports.local, (socket) => joinConnection(socket, (sink) => openSessionPort(executor, session.id, ports.remote, sink), say));
  factory.io.err.write(`${forwardLine({ url: local.url, local: ports.local, wanted: ports.local, remote: ports.remote, session: session.name })}; Ctrl-C stops it\n`);
  await untilInterrupted();
  local.close();
  return 0;
}

/** A session on another node: an ssh connection held until Ctrl-C; each connection here runs `port-connect` over it. */
async function forwardRemote(factory: Factory, node: string, ref: string | undefined, ports: { local: number; remote: number }): Promise<number> {
  return withSshDir(async (dir) => {
    const ctx = remoteContext(factory, dir);
    const described = await beakerOutputOnNode(ctx, node, ["session", "describe", ...(ref ? [ref] : []), "--json"]);
    if (described.code !== 0) return described.code;
    const session = JSON.parse(described.stdout) as SessionDetails;
    if (session.status !== "running") throw new BeakerError(`session ${session.name} is ${session.status}, not running`);
    const controlPath = `${dir}/control`;
    const open = openOnNode(ctx, { node, id: session.id, port: ports.remote, controlPath });
    let local: Listening | null = null;
    try {
      local = await listenLoopbacks(ports.local, (socket) => joinConnection(socket, open, (err) => ctx.say(errorMessage(err))));
      factory.io.err.write(`${forwardLine({ url: local.url, local: ports.local, wanted: ports.local, remote: ports.remote, session: session.name, node })}; Ctrl-C stops it\n`);
      const { code } = await sshCall(ctx, { node, command: null, tty: false, control: { path: controlPath, master: true } }, { stdin: "ignore", stdout: "ignore", stderr: "inherit" }, "the session keeps running");
      return code === 130 ? 0 : code;
    } finally {
      local?.close();
    }
  });
}

export const sessionPortForwardCommand = defineCommand({
  name: "port-forward",
  usesExecutor: true,
  args: "[ID] <LOCAL[:REMOTE]>",
  summary: "Reach a session's port at localhost:LOCAL here, until Ctrl-C (REMOTE: the port inside, default LOCAL)",
  options: [userOption, clusterOption, nodeOption],
  examples: ["beaker session port-forward 8888", "beaker session port-forward my-session 9000:8888 --cluster lab"],
  async run({ args, flags, factory }) {
    allowJit();
    const [ref, spec] = args.length >= 2 ? [args[0], args[1]!] : [undefined, args[0]];
    if (spec === undefined) throw new UsageError("missing argument: LOCAL[:REMOTE]");
    const ports = parsePortSpec(spec);
    const where = await locateSession(factory, flags, ref, resolverFor(flags.user, resolveRunningSession));
    if (where.kind === "local") return forwardLocal(factory, where.session, ports);
    return forwardRemote(factory, where.node, where.ref, ports);
  },
});
