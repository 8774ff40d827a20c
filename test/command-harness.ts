/**
 * Runs beaker commands in this process, through the same frame as the binary (`runCli`: flags parsed, checked and
 * defaulted), with in-memory IO and a temp HOME. The executor is a fake one answering on a unix socket (the real
 * client talks to it); the server, the config store and git are the real ones.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../src/cli/app.ts";
import { program } from "../src/cli/commands/index.ts";
import { createFactory, type Factory } from "../src/cli/factory.ts";
import { createTestIO } from "../src/cli/io.ts";
import { BeakerError } from "../src/errors.ts";
import type { ExecutorHealth } from "../src/executor/client.ts";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The typed error the command ended with (its exit code is `code`), or null. */
  error: BeakerError | null;
}

export interface CommandOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  /** Changes to the factory a test needs (the binary to upgrade, the release key). */
  factory?: Partial<Pick<Factory, "execPath" | "releasePublicKey" | "now">>;
}

/** A temp folder per test, removed by `cleanup`. */
export function tempHome(): { dir: string; env: Record<string, string | undefined>; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "beaker-cmd-"));
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    BEAKER_CONFIG: join(dir, ".beaker", "config.yml"),
    // No executor unless a test starts its fake one here.
    BEAKER_EXECUTOR_SOCKET: join(dir, "run", "executor.sock"),
    BEAKER_NO_UPDATE_NOTIFIER: "1",
    GIT_CONFIG_NOSYSTEM: "1",
  };
  return { dir, env, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `beaker ARGV` in process: its exit code as main.ts would return it, and what it wrote. */
export async function runCommand(argv: string[], options: CommandOptions = {}): Promise<CommandResult> {
  const io = createTestIO({ stdin: options.stdin });
  const factory: Factory = { ...createFactory(io, options.env ?? {}, false), ...options.factory };
  try {
    const code = await runCli(program, argv, factory);
    return { code, stdout: io.stdout(), stderr: io.stderr(), error: null };
  } catch (err) {
    if (!(err instanceof BeakerError)) throw err;
    return { code: err.exitCode, stdout: io.stdout(), stderr: io.stderr(), error: err };
  }
}

export interface ExecutorCall {
  method: string;
  path: string;
  body: unknown;
}

/** What the fake executor answers: a JSON value, a Response, or undefined for a 404 the real executor would give. */
export type ExecutorRoute = (call: ExecutorCall) => unknown;

export const fakeHealth: ExecutorHealth = { version: "0.0.0-test", commit: "test", node: "gpu-1", pid: 1, server: null, binary: null };

/** A fake executor on `socket`: health, then `route` for everything else; every call is recorded. */
export function fakeExecutor(socket: string, route: ExecutorRoute): { calls: ExecutorCall[]; stop: () => void } {
  mkdirSync(join(socket, "..", "proofs"), { recursive: true });
  const calls: ExecutorCall[] = [];
  const server = Bun.serve({
    unix: socket,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/v1/health") return Response.json(fakeHealth);
      const text = await req.text();
      const call = { method: req.method, path: url.pathname + url.search, body: text ? JSON.parse(text) : undefined };
      calls.push(call);
      const answer = route(call);
      if (answer instanceof Response) return answer;
      if (answer === undefined) return Response.json({ error: { code: "not_found", message: `no route ${call.method} ${call.path}` } }, { status: 404 });
      return Response.json(answer);
    },
  });
  return { calls, stop: () => void server.stop(true) };
}

/** A streamed answer of newline-delimited JSON events, as `POST /v1/sessions` sends. */
export function eventStream(events: unknown[]): Response {
  return new Response(events.map((e) => `${JSON.stringify(e)}\n`).join(""), { headers: { "content-type": "application/x-ndjson" } });
}
