/**
 * What an unprivileged local user can do to the executor: raw HTTP and WebSocket requests on its socket, carrying a
 * proof file owned by that user (the kernel sets a file's owner; the test, as root, makes the file and gives it to the
 * user, which is what the user's own `beaker` would have made).
 */
import { chmodSync, chownSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { TestExecutor } from "../executor-harness.ts";

export function uidOf(user: string): number {
  return Number(Bun.spawnSync(["id", "-u", user]).stdout.toString().trim());
}

/** A fresh proof for `uid`: the header value to send. */
export function proofFor(executor: TestExecutor, uid: number): string {
  const name = randomBytes(16).toString("hex");
  const secret = randomBytes(32).toString("hex");
  const path = join(executor.dir, "run", "proofs", name);
  writeFileSync(path, secret, { mode: 0o600 });
  chownSync(path, uid, uid);
  chmodSync(path, 0o600);
  return `${name}:${secret}`;
}

/** One HTTP request on the executor's socket as `uid`. */
export function raw(executor: TestExecutor, uid: number, method: string, path: string, body?: string | Uint8Array, signal?: AbortSignal): Promise<Response> {
  return fetch(`http://beaker${path}`, {
    method,
    unix: executor.socket,
    headers: { "x-beaker-proof": proofFor(executor, uid), "content-type": "application/json" },
    body,
    signal,
  });
}

/** A terminal WebSocket on the executor's socket as `uid`, open. */
export async function terminalSocket(executor: TestExecutor, uid: number, path: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws+unix://${executor.socket}:${path}`, { headers: { "x-beaker-proof": proofFor(executor, uid) } } as unknown as string[]);
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("websocket did not open"));
  });
  return ws;
}

/** The executor's pid, from its health answer (the same process before and after an attack). */
export async function executorPid(executor: TestExecutor): Promise<number> {
  const res = await fetch("http://beaker/v1/health", { unix: executor.socket });
  return ((await res.json()) as { pid: number }).pid;
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const status = Bun.spawnSync(["cat", `/proc/${pid}/status`]).stdout.toString();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Runs a shell command as a user (their uid, gid and groups). */
export function asUser(user: string, script: string): { exitCode: number; stdout: string; stderr: string } {
  const p = Bun.spawnSync(["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", "sh", "-c", script], { env: { PATH: "/usr/bin:/bin", HOME: `/home/${user}` } });
  return { exitCode: p.exitCode ?? 1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}
