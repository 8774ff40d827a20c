/**
 * Runs the node's own `beaker` over ssh, and gives the node the user's token when it has none: once, on the ssh
 * connection's stdin, to `beaker account login --token-stdin` (never in an argv or an environment, on either side).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { BeakerError, SshError } from "../errors.ts";
import { buildSshArgv, childEnv, readLog, sshFailure, type Forward, type Spawner, type SshCall } from "./ssh.ts";

export interface RemoteContext {
  spawn: Spawner;
  /** The CLI's environment; children get it without secrets. */
  env: Record<string, string | undefined>;
  /** The caller's Beaker token, for a node that has none. */
  token(): string | null;
  /** A line for the user (stderr). */
  say(line: string): void;
  /** A private folder for this command's ssh logs and control socket. */
  dir: string;
}

export interface NodeCommand {
  node: string;
  /** `beaker`'s arguments on the node. */
  args: string[];
  tty: boolean;
  /** Said after a connection lost midway: what may still run there and how to reach it. */
  afterDrop?: string;
  /** Make this connection a master other ssh calls can share (to add forwards while it runs). */
  controlPath?: string;
  forwards?: Forward[];
  /** Runs beside the ssh call; the function it returns is called when ssh ends. */
  during?: () => () => void;
}

/**
 * On the node, a missing or refused token is an exit 4 instead of a prompt: the CLI here holds the token and sends
 * it itself. The variable names no secret.
 */
export const noPromptEnv = "BEAKER_NO_LOGIN_PROMPT";

function remoteArgv(args: string[]): string[] {
  return ["env", `${noPromptEnv}=1`, "beaker", ...args];
}

type Stdio = { stdin: "inherit" | "ignore" | Uint8Array; stdout: "inherit" | "ignore" | "pipe"; stderr: "inherit" | "ignore" };

/**
 * `beaker ARGS` on the node as a byte pipe (no terminal): what is written goes to its stdin, its stdout comes to
 * `onStdout`, its stderr to this process's. For `session proxy` relaying an SSH stream to a session on that node, and
 * for each connection of a port forward (`session port-connect`).
 */
export function beakerPipeOnNode(ctx: RemoteContext, node: string, args: string[], onStdout: (chunk: Uint8Array) => void, controlPath?: string) {
  const logFile = join(ctx.dir, `ssh-${randomBytes(6).toString("hex")}.log`);
  // A master connection's path (when one runs): the call shares it instead of a handshake of its own.
  const control = controlPath ? { control: { path: controlPath, master: false } } : {};
  const child = ctx.spawn({ argv: buildSshArgv({ node, command: remoteArgv(args), tty: false, logFile, ...control }), env: childEnv(ctx.env), stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const pumped = (async () => {
    if (!child.stdout) return;
    for await (const chunk of child.stdout) onStdout(chunk);
  })();
  const done = (async () => {
    const [code] = await Promise.all([child.exited, pumped]);
    if (code === 255) {
      const failure = sshFailure(readLog(logFile));
      if (failure) return { code, message: `${failure.connecting ? "cannot reach" : "lost the SSH connection to"} ${node} over SSH: ${failure.line}` };
    }
    if (code === 4) return { code, message: `${node} has no Beaker login for you: run any 'beaker session' command with --cluster once (it logs you in there), or 'beaker account login' on ${node}` };
    return { code };
  })();
  return { write: (chunk: Uint8Array) => void child.stdin?.write(chunk), end: () => void child.stdin?.end(), done };
}

/**
 * One ssh call: its exit code (and its stdout when piped), or an SshError when ssh itself failed. Signals the CLI
 * gets go to ssh, which ends the connection; from a terminal in raw mode Ctrl-C is a byte for the node instead.
 */
export async function sshCall(ctx: RemoteContext, call: Omit<SshCall, "logFile">, stdio: Stdio, afterDrop?: string): Promise<{ code: number; stdout: string }> {
  const logFile = join(ctx.dir, `ssh-${randomBytes(6).toString("hex")}.log`);
  const child = ctx.spawn({ argv: buildSshArgv({ ...call, logFile }), env: childEnv(ctx.env), ...stdio });
  let interrupted = false;
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const).map((signal) => {
    const handler = () => {
      interrupted ||= signal === "SIGINT";
      child.kill(signal);
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  try {
    const [stdout, code] = await Promise.all([child.stdout ? new Response(child.stdout).text() : Promise.resolve(""), child.exited]);
    // ssh itself killed (kill -9, the OOM killer): its 128+N is not the remote command's code, and the connection is gone.
    const killedBy = child.killedBy();
    if (killedBy) throw new SshError(`lost the SSH connection to ${call.node}: ssh was killed by ${killedBy}${afterDrop ? `; ${afterDrop}` : ""}`);
    if (code !== 255) return { code, stdout };
    const failure = sshFailure(readLog(logFile));
    if (!failure) return { code: interrupted ? 130 : 255, stdout };
    if (failure.connecting) throw new SshError(`cannot reach ${call.node} over SSH: ${failure.line}`);
    throw new SshError(`lost the SSH connection to ${call.node}: ${failure.line}${afterDrop ? `; ${afterDrop}` : ""}`);
  } finally {
    for (const off of handlers) off();
  }
}

/** Runs `beaker ARGS` on the node with this terminal; returns its exit code. */
export async function runBeakerOnNode(ctx: RemoteContext, command: NodeCommand): Promise<number> {
  const attempt = async () => {
    const stop = command.during?.();
    try {
      const { code } = await sshCall(
        ctx,
        {
          node: command.node,
          command: remoteArgv(command.args),
          tty: command.tty,
          forwards: command.forwards,
          ...(command.controlPath ? { control: { path: command.controlPath, master: true } } : {}),
        },
        { stdin: "inherit", stdout: "inherit", stderr: "inherit" },
        command.afterDrop,
      );
      return code;
    } finally {
      stop?.();
    }
  };
  const code = await attempt();
  if (code !== 4 || !(await sendTokenIfMissing(ctx, command.node))) return code;
  return attempt();
}

/**
 * After an exit 4: when the node has no usable token, sends ours on stdin and says so; true when it did. When the
 * node has one, the 4 was the remote command's own exit code and nothing is sent.
 */
export async function sendTokenIfMissing(ctx: RemoteContext, node: string): Promise<boolean> {
  const token = ctx.token();
  if (!token) return false;
  const quiet = { stdin: "ignore", stdout: "ignore", stderr: "ignore" } as const;
  const check = await sshCall(ctx, { node, command: remoteArgv(["account", "whoami"]), tty: false }, quiet);
  if (check.code !== 4) return false;
  ctx.say(`sending your Beaker token to ${node} (once, on the SSH connection's stdin)`);
  const { code: login } = await sshCall(
    ctx,
    { node, command: remoteArgv(["account", "login", "--token-stdin"]), tty: false },
    { stdin: new TextEncoder().encode(`${token}\n`), stdout: "inherit", stderr: "inherit" },
  );
  if (login !== 0) throw new BeakerError(`${node} could not log you in with your token (exit ${login}); run 'beaker account login' there`);
  return true;
}

/** The stdout of `beaker ARGS` on the node (no terminal), sending the token first when the node needs it. */
export async function beakerOutputOnNode(ctx: RemoteContext, node: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const attempt = () => sshCall(ctx, { node, command: remoteArgv(args), tty: false }, { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const first = await attempt();
  return first.code === 4 && (await sendTokenIfMissing(ctx, node)) ? attempt() : first;
}

/** The user name ssh logs in to the node as (`ssh -G`: the user's config applied, nothing connected). */
export async function sshLoginName(ctx: RemoteContext, node: string): Promise<string | null> {
  const child = ctx.spawn({ argv: ["ssh", "-G", "--", node], env: childEnv(ctx.env), stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const [text, code] = await Promise.all([child.stdout ? new Response(child.stdout).text() : Promise.resolve(""), child.exited]);
  return code === 0 ? (/^user (\S+)$/m.exec(text)?.[1] ?? null) : null;
}
