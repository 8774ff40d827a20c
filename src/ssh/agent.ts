import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { Connection } from "ssh2";

/**
 * Agent forwarding (`ssh -A`): a unix socket inside the session, in a folder only the user can enter; each program
 * that connects to it (ssh-add, git over SSH) gets its own `auth-agent@openssh.com` channel back to the client's
 * agent. Keys never leave the laptop: the agent signs there.
 */
export interface AgentRelay {
  path: string;
  close(): void;
}

/**
 * ssh2's server can ask the client for forwarded-tcpip and x11 channels but has no call for an agent channel, though
 * its protocol layer writes the request. This opens one the way its own `forwardOut` does (ssh2 1.17, pinned).
 */
export function openAgentChannel(client: Connection): Promise<Duplex> {
  const internals = client as unknown as {
    _chanMgr: { add(callback: unknown): number };
    _protocol: { openssh_authAgent(channel: number, window: number, packetSize: number): void };
  };
  return new Promise((resolve, reject) => {
    const onOpen = (err: Error | undefined, stream: Duplex) => (err ? reject(err) : resolve(stream));
    (onOpen as unknown as { type: string }).type = "auth-agent@openssh.com";
    const channel = internals._chanMgr.add(onOpen);
    if (channel === -1) return reject(new Error("no free SSH channels"));
    internals._protocol.openssh_authAgent(channel, 2 * 1024 * 1024, 32 * 1024);
  });
}

function socketFolder(home: string): string {
  for (const base of [tmpdir(), home]) {
    try {
      return mkdtempSync(join(base, "beaker-ssh-"));
    } catch {}
  }
  throw new Error("no writable folder for the agent socket (tried the temp folder and home)");
}

export async function startAgentRelay(home: string, openChannel: () => Promise<Duplex>): Promise<AgentRelay> {
  const dir = socketFolder(home);
  chmodSync(dir, 0o700);
  const path = join(dir, "agent.sock");
  const server: NetServer = createServer((local) => {
    openChannel().then(
      (remote) => {
        local.pipe(remote).pipe(local);
        local.on("error", () => remote.destroy());
        remote.on("error", () => local.destroy());
        remote.on("close", () => local.destroy());
      },
      () => local.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    path,
    close() {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
