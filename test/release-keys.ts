/** A throwaway Ed25519 release key pair for tests: the private key as PKCS#8 PEM, the public key raw and base64. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export async function makeReleaseKeys(dir: string): Promise<{ privateKeyFile: string; publicKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", pair.privateKey)).toString("base64");
  const privateKeyFile = join(dir, "release-key.pem");
  writeFileSync(privateKeyFile, `-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 });
  const publicKey = Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey)).toString("base64");
  return { privateKeyFile, publicKey };
}
