import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/write-atomic.ts";
import { ConfigError } from "../errors.ts";
import { generateEd25519 } from "../git/ssh.ts";

/**
 * The client's side of SSH into sessions: one host key per user (`~/.beaker/ssh_host_ed25519_key`), which the proxy
 * hands to the server inside every session, pinned in `~/.beaker/known_hosts` under one alias, and the `Host *.beaker`
 * block of `~/.ssh/config` that uses both. ssh never asks about the host key and never accepts one blindly.
 */
export const hostKeyAlias = "beaker-session";
export const blockMarker = "# Beaker sessions: ssh NAME.beaker (added by 'beaker session ssh-config --write')";

export interface SshPaths {
  dir: string;
  key: string;
  knownHosts: string;
  sshConfig: string;
}

export function sshPaths(home: string): SshPaths {
  const dir = join(home, ".beaker");
  return { dir, key: join(dir, "ssh_host_ed25519_key"), knownHosts: join(dir, "known_hosts"), sshConfig: join(home, ".ssh", "config") };
}

/** "ssh-ed25519 AAAA..." of an OpenSSH private key; a clear error when the file is not one. */
async function publicKeyOf(privateKey: string, path: string): Promise<string> {
  const { utils } = await import("ssh2");
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new ConfigError(`${path} is not a valid SSH key: remove it and run again to make a new one`);
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
}

/**
 * The host key, made on first use. Several proxies may start at once (VS Code opens a few connections): the key is
 * written beside its place and linked in, which fails when another got there first, so everyone uses the same key.
 */
export async function ensureHostKey(paths: SshPaths): Promise<string> {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(paths.key)) {
    const pair = await generateEd25519("beaker session host key", null);
    const temp = `${paths.key}.${process.pid}.tmp`;
    writeFileAtomic(temp, `${pair.privateKey.trim()}\n`, 0o600);
    try {
      linkSync(temp, paths.key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    } finally {
      rmSync(temp, { force: true });
    }
  }
  chmodSync(paths.key, 0o600);
  const privateKey = readFileSync(paths.key, "utf8");
  const line = `${hostKeyAlias} ${await publicKeyOf(privateKey, paths.key)}\n`;
  const current = existsSync(paths.knownHosts) ? readFileSync(paths.knownHosts, "utf8") : null;
  if (current !== line) writeFileAtomic(paths.knownHosts, line, 0o644);
  return privateKey;
}

/** The `Host *.beaker` block. Pure. */
export function buildHostBlock(options: { beaker: string; user: string; knownHosts: string }): string {
  const quote = (s: string) => (/[\s"]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s);
  return [
    blockMarker,
    "Host *.beaker",
    `  ProxyCommand ${quote(options.beaker)} session proxy %h`,
    `  User ${options.user}`,
    `  HostKeyAlias ${hostKeyAlias}`,
    `  UserKnownHostsFile ${quote(options.knownHosts)}`,
    "  StrictHostKeyChecking yes",
    "",
  ].join("\n");
}

/** Whether an ssh config has the block: the marker, or a `Host *.beaker` line written by hand. Pure. */
export function containsHostBlock(config: string): boolean {
  return config.split("\n").some((l) => l.trim() === blockMarker || /^\s*Host\s+(.*\s)?\*\.beaker(\s|$)/i.test(l));
}

/**
 * The config with the block added once, at the top: ssh takes the first value it finds for each option, so a block
 * after a `Host *` that sets, say, UserKnownHostsFile would lose to it. Null when the block (or a hand-written
 * `Host *.beaker`) is there already. Pure.
 */
export function addHostBlock(config: string, block: string): string | null {
  if (containsHostBlock(config)) return null;
  return config === "" ? block : `${block}\n${config}`;
}

/** The session's home inside: the bind mounted at its own path that ends in the user's name, else `fallback`. Pure. */
export function sessionHome(session: { user: string; mounts: string[] }, fallback: string): string {
  for (const mount of session.mounts) {
    const [source, target] = mount.split(":");
    if (source && source === target && source.endsWith(`/${session.user}`)) return source;
  }
  return fallback;
}

/** What `session create` prints so the session can be reached from an editor or another terminal. Pure. */
export function connectHint(session: { name: string; user: string; mounts: string[] }, home: string, configured: boolean): string {
  const host = `${session.name}.beaker`;
  const setup = configured ? "" : "  (once: beaker session ssh-config --write)";
  return `ssh ${host}${setup}\ncode --remote ssh-remote+${host} ${sessionHome(session, home)}\n`;
}

/** Whether ~/.ssh/config already has the `Host *.beaker` block. */
export function hasHostBlock(paths: SshPaths): boolean {
  try {
    return containsHostBlock(readFileSync(paths.sshConfig, "utf8"));
  } catch {
    return false;
  }
}
