import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/write-atomic.ts";
import type { Git } from "./git.ts";
import { addHostBlock, generateEd25519, readIfExists, writeKeyPair } from "./ssh.ts";
import type { BeakerCredentialStore } from "./store.ts";

export type Helper = "cache" | "store" | "beaker";

/** Everything the wizard asked, gathered before anything changes (so Ctrl-C at any prompt changes nothing). */
export interface SetupAnswers {
  protocol: string;
  host: string;
  name: string;
  email: string;
  auth:
    | { kind: "token"; username: string; token: string; helper: Helper; timeoutSeconds: number }
    | { kind: "ssh"; writeKey: boolean; passphrase: string | null; comment: string };
}

export interface Change {
  what: string;
  undo: string;
}

export interface SetupDeps {
  git: Git;
  home: string;
  store: BeakerCredentialStore;
  /** How git should run Beaker's helper: a path that stays valid across upgrades and inside sessions. */
  beakerCommand: string;
}

export function helperKey(protocol: string, host: string): string {
  return `credential.${protocol}://${host}.helper`;
}

/** The helper string git runs for each choice. Pure. */
export function helperValue(helper: Helper, timeoutSeconds: number, beakerCommand: string): string {
  if (helper === "cache") return `cache --timeout ${timeoutSeconds}`;
  if (helper === "store") return "store";
  return `${/^[\w/.-]+$/.test(beakerCommand) ? beakerCommand : `!'${beakerCommand.replace(/'/g, "'\\''")}'`} git credential`;
}

const quote = (v: string) => `'${v.replace(/'/g, "'\\''")}'`;

/** Applies the answers in order and says what changed and how to undo each change. */
export async function applySetup(a: SetupAnswers, deps: SetupDeps): Promise<{ changes: Change[]; publicKey: string | null }> {
  const { git } = deps;
  const changes: Change[] = [];
  for (const [key, value] of [
    ["user.name", a.name],
    ["user.email", a.email],
  ] as const) {
    const before = git.getGlobal(key);
    if (before === value) continue;
    git.setGlobal(key, value);
    changes.push({ what: `git config --global ${key} ${quote(value)}`, undo: before === null ? `git config --global --unset ${key}` : `git config --global ${key} ${quote(before)}` });
  }

  let publicKey: string | null = null;
  if (a.auth.kind === "token") {
    const key = helperKey(a.protocol, a.host);
    const value = helperValue(a.auth.helper, a.auth.timeoutSeconds, deps.beakerCommand);
    // An empty entry first cuts off helpers configured more widely (a system-wide store, say) for this host.
    git.unsetAllGlobal(key);
    git.setGlobal(key, "");
    git.setGlobal(key, value, true);
    changes.push({ what: `git config --global ${key} ${quote(value)} (after an empty entry)`, undo: `git config --global --unset-all ${key}` });
    git.credential("approve", { protocol: a.protocol, host: a.host, username: a.auth.username, password: a.auth.token });
    const credentialsFile = join(deps.home, ".git-credentials");
    if (a.auth.helper === "store" && existsSync(credentialsFile)) chmodSync(credentialsFile, 0o600);
    const where =
      a.auth.helper === "cache" ? `in git's memory cache for ${a.auth.timeoutSeconds} s` : a.auth.helper === "store" ? `in ${credentialsFile} (0600)` : `in ${deps.store.path} (0600)`;
    changes.push({ what: `your token for ${a.protocol}://${a.host}, ${where}`, undo: `beaker git logout --host ${a.host}` });
  } else {
    const sshDir = join(deps.home, ".ssh");
    const keyPath = join(sshDir, "id_ed25519");
    if (a.auth.writeKey) {
      const pair = await generateEd25519(a.auth.comment, a.auth.passphrase);
      writeKeyPair(sshDir, "id_ed25519", pair);
      changes.push({ what: `a new ed25519 key ${keyPath}${a.auth.passphrase ? " (with a passphrase)" : ""}`, undo: `rm ${keyPath} ${keyPath}.pub` });
    }
    publicKey = readIfExists(`${keyPath}.pub`).trim() || null;
    const sshHost = a.host.replace(/:\d+$/, "");
    const configPath = join(sshDir, "config");
    const updated = addHostBlock(readIfExists(configPath), sshHost, "~/.ssh/id_ed25519");
    if (updated !== null) {
      writeFileAtomic(configPath, updated, 0o600);
      changes.push({ what: `a "Host ${sshHost}" block in ${configPath}`, undo: `remove the "Host ${sshHost}" block from ${configPath}` });
    }
  }
  return { changes, publicKey };
}

/** Forgets the token for a host wherever it is kept; optionally removes the SSH key. Says what it did. */
export async function logout(deps: SetupDeps, protocol: string, host: string, options: { removeSshKey: boolean }): Promise<string[]> {
  const done: string[] = [];
  const removed = await deps.store.erase({ protocol, host });
  if (removed > 0) done.push(`removed your token for ${host} from ${deps.store.path}`);
  const helpers = deps.git.getAllGlobal(helperKey(protocol, host)).filter(Boolean);
  const before = readIfExists(join(deps.home, ".git-credentials"));
  // git erases through every helper configured for the URL: the cache daemon, the store file, Beaker's own.
  deps.git.credential("reject", { protocol, host });
  const after = readIfExists(join(deps.home, ".git-credentials"));
  if (before !== after) done.push(`removed your token for ${host} from ${join(deps.home, ".git-credentials")}`);
  if (helpers.some((h) => h.startsWith("cache"))) done.push(`told git's credential cache to forget ${host}`);
  if (options.removeSshKey) {
    for (const file of ["id_ed25519", "id_ed25519.pub"].map((f) => join(deps.home, ".ssh", f))) {
      if (existsSync(file)) {
        unlinkSync(file);
        done.push(`deleted ${file}`);
      }
    }
  }
  return done;
}
