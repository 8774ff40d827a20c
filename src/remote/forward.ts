/**
 * Ports to the laptop: a session's port, reached at localhost here. Nothing is published on the node: each local
 * connection runs `beaker session port-connect` on the node over ssh (sharing the command's ssh connection when it
 * has one), which opens the port through the node's executor for its owner (executor/terminals/port-relay.ts).
 */
import { existsSync } from "node:fs";
import { UsageError } from "../errors.ts";
import type { SessionDetails } from "../executor/api-types.ts";
import { errorMessage } from "../errors.ts";
import { buildSshArgv, childEnv, type Spawned } from "./ssh.ts";
import { beakerPipeOnNode, noPromptEnv, type RemoteContext } from "./node.ts";
import { joinConnection, listenFirstFree, type Listening } from "./loopback.ts";

/** `LOCAL[:REMOTE]`: REMOTE defaults to LOCAL. Pure. */
export function parsePortSpec(spec: string): { local: number; remote: number } {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(spec);
  const local = m ? Number(m[1]) : NaN;
  const remote = m?.[2] ? Number(m[2]) : local;
  if (!m || local < 1 || local > 65535 || remote < 1 || remote > 65535) throw new UsageError(`"${spec}" must be LOCAL[:REMOTE], ports from 1 to 65535`);
  return { local, remote };
}

/** "port 8888 of session x is at http://localhost:8889; port 8888 is taken here". */
export function forwardLine(f: { url: string; local: number; wanted: number; remote: number; session: string; node?: string }): string {
  const taken = f.local !== f.wanted ? `; port ${f.wanted} is taken here` : "";
  return `port ${f.remote} of session ${f.session}${f.node ? ` on ${f.node}` : ""} is at ${f.url}${taken}`;
}

/** One connection to port `port` of session `id` on `node`: `beaker session port-connect` there, over ssh. */
export function openOnNode(ctx: RemoteContext, target: { node: string; id: string; port: number; controlPath?: string }) {
  return async (sink: { data(chunk: Uint8Array): void; end(): void }) => {
    const pipe = beakerPipeOnNode(ctx, target.node, ["session", "port-connect", target.id, String(target.port)], (chunk) => sink.data(chunk), target.controlPath);
    void pipe.done.then((r) => {
      sink.end();
      if (r.message) ctx.say(r.message);
    });
    return pipe;
  };
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
 * connection) for the session until it runs, then listens here for each port and says where. Returns the function
 * that stops the watch and the listeners.
 */
export function forwardWhenRunning(
  ctx: RemoteContext,
  options: { node: string; controlPath: string; session: string; ports: number[]; announce: (line: string) => void },
): () => void {
  let stopped = false;
  let child: Spawned | null = null;
  const listening: Listening[] = [];
  const describe = async (): Promise<SessionDetails | null> => {
    const argv = buildSshArgv({
      node: options.node,
      command: ["env", `${noPromptEnv}=1`, "beaker", "session", "describe", options.session, "--json"],
      tty: false,
      logFile: `${options.controlPath}.describe.log`,
      control: { path: options.controlPath, master: false },
    });
    const spawned = ctx.spawn({ argv, env: childEnv(ctx.env), stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    child = spawned;
    const code = await spawned.exited;
    child = null;
    if (code !== 0 || !spawned.stdout) return null;
    try {
      return JSON.parse(await drain(spawned.stdout)) as SessionDetails;
    } catch {
      return null;
    }
  };
  const watch = async () => {
    while (!stopped) {
      await Bun.sleep(existsSync(options.controlPath) ? 1000 : 100);
      if (stopped || !existsSync(options.controlPath)) continue;
      const session = await describe();
      if (!session || session.status === "queued" || session.status === "starting") continue;
      if (session.status !== "running") return;
      for (const port of options.ports) {
        if (stopped) return;
        const open = openOnNode(ctx, { node: options.node, id: session.id, port, controlPath: options.controlPath });
        const local = await listenFirstFree(port, (socket) => joinConnection(socket, open, (err) => ctx.say(errorMessage(err))));
        if (stopped) return local.close();
        listening.push(local);
        options.announce(forwardLine({ url: local.url, local: local.port, wanted: port, remote: port, session: session.name }));
      }
      return;
    }
  };
  void watch().catch((err: Error) => options.announce(`port forwarding stopped: ${err.message}`));
  return () => {
    stopped = true;
    (child as Spawned | null)?.kill();
    for (const l of listening) l.close();
  };
}
