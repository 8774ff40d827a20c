/**
 * Where a session command runs: on this node's executor, or on another node over ssh. Glue between the commands and
 * src/remote: the cluster from the flags or the user's config, the local executor first, the server to find a node.
 */
import { ConfigError, NotFoundError, UsageError } from "../errors.ts";
import type { SessionDetails } from "../executor/api-types.ts";
import { findSessionNode } from "../remote/locate.ts";
import { runBeakerOnNode, type NodeCommand, type RemoteContext } from "../remote/node.ts";
import { withSshDir } from "../remote/ssh.ts";
import type { OptionSpec } from "./command.ts";
import type { Factory } from "./factory.ts";
import { isNodeMachine } from "./node-only.ts";

export const clusterOption = { flags: "--cluster <name>", description: "Find the session on this cluster's nodes (default: your default_cluster)", kind: "string" } as const satisfies OptionSpec;
export const nodeOption = { flags: "--node <host>", description: "The node the session is on (reached with ssh)", kind: "string" } as const satisfies OptionSpec;

/** Where a session command was pointed: `--cluster` and `--node`. */
export interface WhereFlags {
  cluster?: string | undefined;
  node?: string | undefined;
  /** `--user U` (root): acts on this node's sessions only. */
  user?: string | undefined;
}

/** `--cluster`, else the user's `default_cluster`; null when neither. */
export function clusterFor(factory: Factory, flags: WhereFlags): string | null {
  return flags.cluster ?? factory.userConfig().read().default_cluster ?? null;
}

export function checkNodeName(node: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(node)) throw new UsageError(`--node "${node}" is not a host name`);
  return node;
}

/** Said where no executor runs and no cluster was named. */
export function noClusterHere(): ConfigError {
  return new ConfigError("there is no executor on this machine: name the cluster with --cluster NAME (or 'beaker config set default_cluster NAME'), or the node with --node HOST");
}

export type Where = { kind: "local"; session: SessionDetails } | { kind: "remote"; node: string; ref: string | undefined; cluster: string | null };

/**
 * This machine's executor has the session: local. Otherwise, with a cluster, the server says which node has it;
 * with `--node`, that node (which resolves the reference itself).
 */
export async function locateSession(
  factory: Factory,
  flags: WhereFlags,
  ref: string | undefined,
  resolveLocal: (factory: Factory, ref: string | undefined) => Promise<SessionDetails>,
): Promise<Where> {
  const cluster = clusterFor(factory, flags);
  const node = flags.node === undefined ? null : checkNodeName(flags.node);
  const health = await factory.executor().health();
  if (node) {
    if (health?.node === node) return { kind: "local", session: await resolveLocal(factory, ref) };
    checkUserHere(flags);
    return { kind: "remote", node, ref, cluster };
  }
  if (!health && !cluster && !isNodeMachine(factory.env)) throw noClusterHere();
  if (health || !cluster) {
    try {
      return { kind: "local", session: await resolveLocal(factory, ref) };
    } catch (err) {
      if (!(err instanceof NotFoundError) || !cluster) throw err;
    }
  }
  checkUserHere(flags);
  const found = await findSessionNode(await factory.server(), { cluster: cluster!, ref });
  return { kind: "remote", node: found.node, ref: found.id, cluster };
}

/** `--user` names a user of this node: another node's sessions are reached as yourself. */
function checkUserHere(flags: WhereFlags): void {
  if (flags.user !== undefined) throw new UsageError("--user acts on this node's sessions only: run the command on the session's node");
}

export function remoteContext(factory: Factory, dir: string): RemoteContext {
  const { io } = factory;
  return {
    spawn: factory.spawn,
    env: factory.env,
    token: () => factory.userToken(),
    // ssh may hold the terminal in raw mode, where a newline alone does not return the cursor.
    say: (line) => io.err.write(io.isStderrTTY ? `\r${line}\r\n` : `${line}\n`),
    dir,
  };
}

/** Runs `beaker ARGS` on a node, with a private folder for ssh's log; the node's exit code. */
export function runOnNode(factory: Factory, command: NodeCommand): Promise<number> {
  return withSshDir((dir) => runBeakerOnNode(remoteContext(factory, dir), command));
}

/** Whether this terminal is one (a remote command then gets `ssh -t`). */
export function hasTty(factory: Factory): boolean {
  return factory.io.isStdinTTY && factory.io.isStdoutTTY;
}
