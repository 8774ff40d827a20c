/** What the executor sets up on the node itself at start: the limits it can grant, and its socket's directories. */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../errors.ts";
import { proofDirFor } from "./proof.ts";

/**
 * Sessions get unlimited locked memory (NCCL pins buffers), which needs CAP_SYS_RESOURCE to grant. Where the node's
 * root lacks it (a container-in-container, a locked-down host), the hard limit in force is the most runc can set.
 */
export function memlockLimit(): number {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? "0"}`);
    if (capEff & (1n << 24n)) return -1;
    const limits = readFileSync("/proc/self/limits", "utf8");
    const hard = /Max locked memory\s+\S+\s+(\S+)/.exec(limits)?.[1];
    return !hard || hard === "unlimited" ? -1 : Number(hard);
  } catch {
    return -1;
  }
}

/** Creates the socket's directory (root-owned) and the sticky proof directory, and clears a stale socket. */
export function prepareSocket(socket: string): void {
  const dir = dirname(socket);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chownSync(dir, 0, 0);
  chmodSync(dir, 0o755);
  const proofs = proofDirFor(socket);
  mkdirSync(proofs, { recursive: true });
  chownSync(proofs, 0, 0);
  chmodSync(proofs, 0o1733);
  if (existsSync(socket)) {
    if (!statSync(socket).isSocket()) throw new UsageError(`${socket} exists and is not a socket`);
    unlinkSync(socket);
  }
}
