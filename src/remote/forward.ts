/**
 * Ports to the laptop: a session's published port on its node, reached at localhost here. Pure parsing, a free-port
 * probe, a TCP relay for a session on this machine, and, for a session on another node, forwards added to the ssh
 * connection the CLI already holds (ControlMaster) once the session runs.
 */
import { existsSync } from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { UsageError } from "../errors.ts";
import type { SessionDetails } from "../executor/api-types.ts";
import { buildAddForwardArgv, buildSshArgv, childEnv, type Forward, type Spawned } from "./ssh.ts";
import { noPromptEnv, type RemoteContext } from "./node.ts";

/** `LOCAL[:REMOTE]`: REMOTE defaults to LOCAL. Pure. */
export function parsePortSpec(spec: string): { local: number; remote: number } {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(spec);
  const local = m ? Number(m[1]) : NaN;
  const remote = m?.[2] ? Number(m[2]) : local;
  if (!m || local < 1 || local > 65535 || remote < 1 || remote > 65535) throw new UsageError(`"${spec}" must be LOCAL[:REMOTE], ports from 1 to 65535`);
  return { local, remote };
}

/**
 * Where a session's container port is published on its node (`0.0.0.0:49153->8888/tcp`), as an address the node
 * itself can connect to; null when it is not published. Pure.
 */
export function publishedAddress(ports: string[], containerPort: number): { host: string; port: number } | null {
  const bindings = ports
    .map((p) => /^(.*):(\d+)->(\d+)\/tcp$/.exec(p))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[3]) === containerPort && m[2] !== "0")
    .map((m) => ({ ip: m[1]!, port: Number(m[2]) }));
  const best = bindings.find((b) => !b.ip.includes(":")) ?? bindings[0];
  if (!best) return null;
  const any = best.ip === "" || best.ip === "0.0.0.0" || best.ip === "::" || best.ip === "[::]";
  return { host: any ? "127.0.0.1" : best.ip.replace(/^\[|\]$/g, ""), port: best.port };
}

export function notPublished(session: { name: string; ports: string[] }, port: number): UsageError {
  const has = session.ports.length ? `it publishes ${session.ports.map((p) => p.replace(/^.*->/, "")).join(", ")}` : "it publishes no ports";
  return new UsageError(`session ${session.name} does not publish port ${port} (${has}); create it with --port ${port}`);
}

async function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "EADDRNOTAVAIL" || err.code === "EAFNOSUPPORT"));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first port from `wanted` up that nothing here listens on (IPv4 and IPv6 loopback). */
export async function freeLocalPort(wanted: number): Promise<number> {
  for (let port = wanted; port <= Math.min(65535, wanted + 100); port++) {
    if ((await canListen(port, "127.0.0.1")) && (await canListen(port, "::1"))) return port;
  }
  throw new UsageError(`no free local port from ${wanted} to ${wanted + 100}`);
}

/** "port 8888 of session x is at http://localhost:8889; localhost:8888 is taken here". */
export function forwardLine(f: { local: number; wanted: number; remote: number; session: string; node?: string }): string {
  const taken = f.local !== f.wanted ? `; localhost:${f.wanted} is taken here` : "";
  return `port ${f.remote} of session ${f.session}${f.node ? ` on ${f.node}` : ""} is at http://localhost:${f.local}${taken}`;
}

/** Relays localhost:`local` to `target` on this machine until closed (a session on this node). */
export async function relayLocalPort(local: number, target: { host: string; port: number }): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: local, host: "127.0.0.1", exclusive: true }, () => resolve());
  });
  return server;
}

/**
 * What a multiplexed ssh call wrote, once it has exited. Its stdout is handed to the master connection, which may hold
 * it open after the call is over, so end-of-file is not waited for beyond a moment.
 */
async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const all = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })().catch(() => {});
  await Promise.race([all, Bun.sleep(500)]);
  await reader.cancel().catch(() => {});
  return text;
}

/**
 * While a remote create runs with `--port`: waits for its ssh master connection, asks the node (over that
 * connection) for the session until it runs, then adds one forward per port and says where each is. Returns the
 * function that stops the watch.
 */
export function forwardWhenRunning(
  ctx: RemoteContext,
  options: { node: string; controlPath: string; session: string; ports: number[]; announce: (line: string) => void },
): () => void {
  let stopped = false;
  let child: Spawned | null = null;
  const run = async (argv: string[], capture: boolean) => {
    const spawned = ctx.spawn({ argv, env: childEnv(ctx.env), stdin: "ignore", stdout: capture ? "pipe" : "ignore", stderr: "ignore" });
    child = spawned;
    const code = await spawned.exited;
    child = null;
    return { code, text: spawned.stdout ? await drain(spawned.stdout) : "" };
  };
  const describe = async (): Promise<SessionDetails | null> => {
    const log = `${options.controlPath}.describe.log`;
    const argv = buildSshArgv({
      node: options.node,
      command: ["env", `${noPromptEnv}=1`, "beaker", "session", "describe", options.session, "--json"],
      tty: false,
      logFile: log,
      control: { path: options.controlPath, master: false },
    });
    const { code, text } = await run(argv, true);
    if (code !== 0) return null;
    try {
      return JSON.parse(text) as SessionDetails;
    } catch {
      return null;
    }
  };
  const watch = async () => {
    // A running session's published ports can lag its status by a listing; they are asked for again, for a while.
    let unlisted = 0;
    while (!stopped) {
      await Bun.sleep(existsSync(options.controlPath) ? 1000 : 100);
      if (stopped || !existsSync(options.controlPath)) continue;
      const session = await describe();
      if (!session || session.status === "queued" || session.status === "starting") continue;
      if (session.status !== "running") return;
      const targets = options.ports.map((port) => ({ port, target: publishedAddress(session.ports, port) }));
      if (targets.some((t) => !t.target) && ++unlisted < 10) continue;
      for (const { port, target } of targets) {
        if (stopped) return;
        if (!target) {
          options.announce(`could not forward port ${port} of session ${session.name}: the node lists no address for it`);
          continue;
        }
        const local = await freeLocalPort(port);
        const forward: Forward = { localPort: local, ...target };
        const { code } = await run(buildAddForwardArgv(options.controlPath, options.node, forward, `${options.controlPath}.forward.log`), false);
        options.announce(code === 0 ? forwardLine({ local, wanted: port, remote: port, session: session.name }) : `could not forward port ${port} of session ${session.name} to localhost:${local}`);
      }
      return;
    }
  };
  void watch().catch((err: Error) => options.announce(`port forwarding stopped: ${err.message}`));
  return () => {
    stopped = true;
    child?.kill();
  };
}
