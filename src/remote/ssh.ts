/**
 * The system OpenSSH client as the transport to nodes, so the user's ~/.ssh/config (User, Port, ProxyJump,
 * IdentityFile, agent, ControlMaster, GSSAPI) applies as it does to everything else they run. Building the argv is
 * pure; spawning goes through an injected Spawner, so tests see every process the CLI would start.
 *
 * ssh's own messages go to a log file (`-E`, at LogLevel ERROR) instead of the terminal: the remote command's exit
 * code comes back as ssh's, and 255 is also ssh's own failure, so a 255 with something in the log is ssh failing
 * (one line naming the node, exit 1) and a 255 with an empty log is the remote command's own code.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { userConfigKeys } from "../config/user.ts";
import { shellCommand } from "./quote.ts";

export interface SpawnRequest {
  argv: string[];
  env: Record<string, string>;
  /** Bytes are written to the child's stdin, which is then closed; "pipe": the caller writes it (Spawned.stdin). */
  stdin: "inherit" | "ignore" | "pipe" | Uint8Array;
  stdout: "inherit" | "pipe" | "ignore";
  stderr: "inherit" | "pipe" | "ignore";
}

export interface Spawned {
  /** The exit code; 128+N when killed by signal N. */
  exited: Promise<number>;
  stdout: ReadableStream<Uint8Array> | null;
  /** The child's stdin when it was asked for as "pipe". */
  stdin: { write(chunk: Uint8Array): unknown; end(): unknown } | null;
  kill(signal?: NodeJS.Signals): void;
  /** The signal that ended it, once it has ended by one (ssh catches INT, TERM, HUP and QUIT and exits 255). */
  killedBy(): NodeJS.Signals | null;
}

export type Spawner = (request: SpawnRequest) => Spawned;

export const processSpawner: Spawner = (request) => {
  const child = Bun.spawn(request.argv, { env: request.env, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr });
  return {
    exited: child.exited,
    stdout: request.stdout === "pipe" ? (child.stdout as ReadableStream<Uint8Array>) : null,
    stdin: request.stdin === "pipe" ? (child.stdin as unknown as { write(chunk: Uint8Array): unknown; end(): unknown }) : null,
    kill: (signal) => child.kill(signal),
    killedBy: () => (child.signalCode as NodeJS.Signals | null) ?? null,
  };
};

/** The CLI's environment less every secret it knows (BEAKER_TOKEN): a child never holds the user's token. */
export function childEnv(env: Record<string, string | undefined>): Record<string, string> {
  const secret = new Set(Object.values(userConfigKeys).flatMap((k) => (k.secret && k.env ? [k.env] : [])));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && !secret.has(key)) out[key] = value;
  return out;
}

/** A forward from the laptop's loopback to an address as the node sees it. */
export interface Forward {
  localPort: number;
  host: string;
  port: number;
}

export interface SshCall {
  node: string;
  /** The remote command's words (quoted for the remote shell here), or null: no command, forwards only (-N). */
  command: string[] | null;
  tty: boolean;
  logFile: string;
  /** A connection of our own that other ssh calls can share (ControlMaster), for forwards added later. */
  control?: { path: string; master: boolean };
  forwards?: Forward[];
}

export function forwardSpec(f: Forward): string {
  return `localhost:${f.localPort}:${f.host.includes(":") ? `[${f.host}]` : f.host}:${f.port}`;
}

/** The ssh argv for one call. `--` before the node: a host name can never be read as an option. Pure. */
export function buildSshArgv(call: SshCall): string[] {
  const argv = ["ssh", call.tty ? "-t" : "-T", "-E", call.logFile, "-o", "LogLevel=ERROR"];
  if (call.control) {
    argv.push("-o", `ControlPath=${call.control.path}`, "-o", `ControlMaster=${call.control.master ? "yes" : "no"}`);
    if (call.control.master) argv.push("-o", "ControlPersist=no");
  }
  for (const f of call.forwards ?? []) argv.push("-L", forwardSpec(f));
  if (call.command === null) argv.push("-N", "-o", "ExitOnForwardFailure=yes");
  argv.push("--", call.node);
  if (call.command !== null) argv.push(shellCommand(call.command));
  return argv;
}

const connectPhase = /Could not resolve hostname|Connection refused|Permission denied|Host key verification failed|timed out|No route to host|Network is unreachable|connect to host|kex_exchange_identification|banner exchange|Connection closed by|Too many authentication failures|proxy dialog|UNPROTECTED PRIVATE KEY/i;

/** The line a user needs from ssh's log: its last one, without the `ssh: ` prefix. Pure. */
export function sshFailure(log: string): { line: string; connecting: boolean } | null {
  const lines = log.split("\n").map((l) => l.trim()).filter((l) => l && !/^@+$/.test(l));
  const last = lines[lines.length - 1];
  if (!last) return null;
  const line = last.replace(/^ssh: /, "");
  return { line: `${line}`, connecting: connectPhase.test(line) || lines.some((l) => connectPhase.test(l)) };
}

/** A private folder for one command's ssh logs and control socket, removed when done. */
export function withSshDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "beaker-ssh-"));
  return run(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

export function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
