import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/write-atomic.ts";

/** A new ed25519 key pair in OpenSSH format (ssh2), optionally protected by a passphrase. */
export async function generateEd25519(comment: string, passphrase: string | null): Promise<{ privateKey: string; publicKey: string }> {
  const { utils } = await import("ssh2");
  const pair = utils.generateKeyPairSync("ed25519", passphrase ? { comment, passphrase, cipher: "aes256-ctr", rounds: 16 } : { comment });
  return { privateKey: pair.private, publicKey: pair.public };
}

/** Writes the key pair: the directory 0700, the private key 0600, the public key 0644. */
export function writeKeyPair(sshDir: string, name: string, pair: { privateKey: string; publicKey: string }): { privatePath: string; publicPath: string } {
  if (!existsSync(sshDir)) mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  chmodSync(sshDir, 0o700);
  const privatePath = join(sshDir, name);
  const publicPath = `${privatePath}.pub`;
  writeFileAtomic(privatePath, pair.privateKey.endsWith("\n") ? pair.privateKey : `${pair.privateKey}\n`, 0o600);
  writeFileAtomic(publicPath, `${pair.publicKey.trim()}\n`, 0o644);
  return { privatePath, publicPath };
}

/** The ssh config with a `Host <host>` block added, or null when one is already there. Pure. */
export function addHostBlock(config: string, host: string, identityFile: string): string | null {
  const hasBlock = config.split("\n").some((line) => {
    const m = /^\s*Host\s+(.+)$/i.exec(line);
    return m ? m[1]!.split(/\s+/).includes(host) : false;
  });
  if (hasBlock) return null;
  const block = `Host ${host}\n  HostName ${host}\n  User git\n  IdentityFile ${identityFile}\n  IdentitiesOnly yes\n`;
  return config.trim() ? `${config.replace(/\n*$/, "\n")}\n${block}` : block;
}

export function readIfExists(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : "";
}
