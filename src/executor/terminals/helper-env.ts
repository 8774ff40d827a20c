/**
 * The environment of the processes Beaker itself starts inside a session (`beaker ssh-server --stdio`).
 *
 * Docker's exec inherits the container's environment: the image's and the session's `--env`. Whoever started the
 * session chose those, and many of them decide what code a process runs before it runs a line of its own: the loader
 * (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, every LD_*), glibc (GCONV_PATH, MALLOC_*, GLIBC_TUNABLES, LOCPATH), shells
 * (BASH_ENV, ENV), runtimes (NODE_OPTIONS, BUN_*, PYTHON*, PERL5*, RUBY*, JAVA_TOOL_OPTIONS) and more. A list of the
 * bad ones would always miss one, so a helper gets none of them: every variable of the container's is removed (an
 * exec `Env` entry without "=" removes it), and the helper gets only what Beaker sets here. Docker adds HOSTNAME and,
 * from the session's /etc/passwd (Beaker's own), HOME.
 *
 * The shells the SSH server starts are the user's, with the user's environment: it travels as data in one variable,
 * which no loader or runtime reads, and the server hands it to its children (src/ssh/login.ts, sessionEnvOf).
 * `--env LD_LIBRARY_PATH` stays a legitimate thing to set for one's own programs.
 */
import { sessionEnvVar, sshServerCommand } from "../../ssh/host.ts";

/** The PATH a helper runs with (its own programs are named by absolute paths; this is for what they look up). */
export const helperPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Whether an exec's command is Beaker's own helper, which then runs with `planHelperEnv`. Pure. */
export function isBeakerHelper(command: string[]): boolean {
  return command.length === sshServerCommand.length && command.every((arg, i) => arg === sshServerCommand[i]);
}

/**
 * Docker's exec `Env` for a helper: each of the container's variables removed, then PATH and the session's
 * environment (the container's, with `sessionExtra`: what any exec in the session gets) as data. Pure.
 */
export function planHelperEnv(containerEnv: string[], sessionExtra: string[]): string[] {
  const keys = new Set<string>();
  for (const entry of containerEnv) {
    const at = entry.indexOf("=");
    keys.add(at === -1 ? entry : entry.slice(0, at));
  }
  keys.delete("PATH");
  keys.delete("");
  return [...keys, `PATH=${helperPath}`, `${sessionEnvVar}=${JSON.stringify([...containerEnv, ...sessionExtra])}`];
}
