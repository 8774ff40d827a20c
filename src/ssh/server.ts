import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { Server, type Connection } from "ssh2";
import { buildInfo } from "../version.ts";
import { openAgentChannel, startAgentRelay, type AgentRelay } from "./agent.ts";
import type { LoginUser } from "./login.ts";
import { handleSession } from "./session.ts";

export interface SshServerOptions {
  /** The connection: stdin and stdout of `beaker ssh-server --stdio`, past the preamble. */
  socket: Duplex;
  hostKey: string;
  user: LoginUser;
  /** One line for the person connecting (it reaches their terminal through ssh's stderr). */
  tell(line: string): void;
}

/**
 * Serves one SSH connection and resolves when it ends. Authentication accepts the session's user with no
 * credentials: the bytes arrive through `session exec`, which the executor allows only to the session's owner (or
 * root), so whoever speaks here has already proved who they are, and gets no more than `session exec` gives them.
 * The name must still match, so that a wrong `User` fails plainly instead of logging in under another name.
 */
export function serveSsh(options: SshServerOptions): Promise<void> {
  const { user, tell } = options;
  return new Promise<void>((resolve) => {
    const server = new Server({ hostKeys: [options.hostKey], ident: `beaker_${buildInfo.version}` }, (client: Connection) => {
      const hangUps = new Set<() => void>();
      let agent: Promise<AgentRelay> | null = null;
      client.on("authentication", (ctx) => {
        if (ctx.username === user.name) return ctx.accept();
        tell(`beaker: this session runs as ${user.name}, not ${ctx.username}: connect as ${user.name} (User ${user.name} in ~/.ssh/config)`);
        ctx.reject([]);
      });
      client.on("ready", () => {
        client.on("session", (accept) =>
          handleSession(accept(), {
            user,
            agentSocket: () => (agent ??= startAgentRelay(user.home, () => openAgentChannel(client))).then((relay) => relay.path),
            track(hangUp) {
              hangUps.add(hangUp);
              return () => hangUps.delete(hangUp);
            },
          }),
        );
        // ssh -L, -D and VS Code's port forwarding: a connection made from inside the session.
        client.on("tcpip", (accept, reject, info) => {
          const target = connect(info.destPort, info.destIP);
          target.once("connect", () => {
            const channel = accept();
            target.pipe(channel).pipe(target);
            channel.on("close", () => target.destroy());
            target.on("close", () => channel.end());
          });
          target.once("error", () => (target.connecting ? reject() : target.destroy()));
        });
      });
      client.on("request", (_accept, reject) => reject?.());
      client.on("error", () => {});
      client.on("close", () => {
        for (const hangUp of hangUps) hangUp();
        void agent?.then((relay) => relay.close(), () => {});
        resolve();
      });
    });
    server.injectSocket(options.socket as never);
  });
}
