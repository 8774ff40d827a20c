import { UsageError } from "../errors.ts";
import { beakerInSession, beakerRuntimeInSession } from "../runtime/docker/spec.ts";

/** What `ssh X.beaker` names: a session here (`ref`, an ID, prefix or name), or else maybe NAME on another node. */
export interface SessionHost {
  ref: string;
  /** `<name>.<node>.beaker` read the other way: the session `name` on `node`, when `ref` is not found here. */
  elsewhere: { name: string; node: string } | null;
}

/**
 * Reads `<name-or-id>.beaker` and `<name>.<node>.beaker`. Session names may contain dots, so a name that ends in this
 * node's name is split off first, the whole name is tried here next, and only then is the part after the first dot
 * read as a node. OpenSSH lowercases host names, so lookups ignore case. Pure.
 */
export function parseSessionHost(host: string, localNode: string | null): SessionHost {
  const match = /^(.+)\.beaker\.?$/i.exec(host.trim());
  if (!match || match[1]!.startsWith(".")) throw new UsageError(`"${host}" is not a session's host name: use NAME.beaker or NAME.NODE.beaker`);
  const body = match[1]!;
  const suffix = localNode ? `.${localNode.toLowerCase()}` : null;
  if (suffix && body.toLowerCase().endsWith(suffix) && body.length > suffix.length) return { ref: body.slice(0, -suffix.length), elsewhere: null };
  const dot = body.indexOf(".");
  return { ref: body, elsewhere: dot > 0 && dot < body.length - 1 ? { name: body.slice(0, dot), node: body.slice(dot + 1) } : null };
}

/**
 * The command that starts the SSH server in a session: through the loader and libraries the executor mounts beside
 * the binary (see src/executor/sessions/runtime.ts), so it starts on images without glibc too.
 */
export const sshServerCommand = [`${beakerRuntimeInSession}/ld.so`, "--library-path", beakerRuntimeInSession, beakerInSession, "ssh-server", "--stdio"];

/**
 * Where the executor puts the session's environment for the SSH server, which itself runs with one Beaker sets
 * (src/executor/terminals/helper-env.ts): a JSON list of "KEY=VALUE", for the shells and commands it starts for the user.
 */
export const sessionEnvVar = "BEAKER_SESSION_ENV";
