import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { reservedEnv } from "../runtime/docker/spec.ts";
import { sessionEnvVar } from "./host.ts";

/** Who the SSH server runs as inside the session, and what it starts for them. */
export interface LoginUser {
  name: string;
  uid: number;
  home: string;
  /** The login shell from /etc/passwd when the image has it, else /bin/sh, else null (an image with no shell). */
  shell: string | null;
}

/** The /etc/passwd entry of a uid. Pure. */
export function parsePasswdEntry(passwd: string, uid: number): { name: string; home: string; shell: string } | null {
  for (const line of passwd.split("\n")) {
    const [name, , id, , , home, shell] = line.split(":");
    if (name && id && Number(id) === uid) return { name, home: home ?? "/", shell: (shell ?? "").trim() };
  }
  return null;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** This process's user, as the session's /etc/passwd (which Beaker writes) names them (`passwd` and `uid`: for tests). */
export function currentLoginUser(env: Record<string, string | undefined>, passwd = "/etc/passwd", uid = process.getuid!()): LoginUser {
  let entry: ReturnType<typeof parsePasswdEntry> = null;
  try {
    entry = parsePasswdEntry(readFileSync(passwd, "utf8"), uid);
  } catch {}
  const name = entry?.name ?? env.USER ?? String(uid);
  const home = entry?.home && existsSync(entry.home) ? entry.home : env.HOME && existsSync(env.HOME) ? env.HOME : "/";
  const candidates = [entry?.shell, "/bin/sh"].filter((s): s is string => Boolean(s));
  return { name, uid, home, shell: candidates.find(isExecutable) ?? null };
}

/**
 * What a shell or exec request runs, as sshd does: the login shell (`-l`) for a shell, `SHELL -c COMMAND` for an
 * exec. On an image with no shell at all an exec's command is split on spaces and run directly. Pure.
 */
export function planProcess(user: LoginUser, command: string | null): { argv: string[] } | { error: string } {
  if (user.shell) return { argv: command === null ? [user.shell, "-l"] : [user.shell, "-c", command] };
  if (command === null) return { error: "this session's image has no shell (not even /bin/sh): run a command, like 'ssh HOST -- /app/tool'" };
  const argv = command.trim().split(/\s+/).filter(Boolean);
  return argv.length > 0 ? { argv } : { error: "empty command" };
}

/** Variables a client may set with `SendEnv`/`SetEnv`: any name, except those that pick GPUs (as for --env). Pure. */
export function acceptsEnv(key: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !reservedEnv.test(key);
}

export interface ChildEnvInput {
  user: LoginUser;
  /** TERM from the client's pty request; null without a terminal. */
  term: string | null;
  /** Variables the client sent. */
  sent: Record<string, string>;
  agentSocket: string | null;
}

/**
 * The session's environment, for the programs the SSH server starts: what the executor passed as data in
 * BEAKER_SESSION_ENV over Docker's HOSTNAME and PATH; without it (an older executor), the server's own. Pure.
 */
export function sessionEnvOf(own: Record<string, string | undefined>): Record<string, string | undefined> {
  const { [sessionEnvVar]: passed, ...rest } = own;
  let list: unknown = null;
  try {
    list = passed === undefined ? null : JSON.parse(passed);
  } catch {}
  if (!Array.isArray(list)) return rest;
  const env: Record<string, string | undefined> = { HOSTNAME: rest.HOSTNAME, PATH: rest.PATH };
  for (const entry of list) {
    const at = typeof entry === "string" ? entry.indexOf("=") : -1;
    if (at > 0) env[(entry as string).slice(0, at)] = (entry as string).slice(at + 1);
  }
  return env;
}

/** The environment of a shell or command: the session's own, the user's login variables, what the client sent. Pure. */
export function buildChildEnv(base: Record<string, string | undefined>, input: ChildEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined && key !== "TERM" && key !== "SSH_AUTH_SOCK") env[key] = value;
  Object.assign(env, { USER: input.user.name, LOGNAME: input.user.name, HOME: input.user.home });
  if (input.user.shell) env.SHELL = input.user.shell;
  for (const [key, value] of Object.entries(input.sent)) if (acceptsEnv(key)) env[key] = value;
  if (input.term) env.TERM = input.term;
  if (input.agentSocket) env.SSH_AUTH_SOCK = input.agentSocket;
  return env;
}
