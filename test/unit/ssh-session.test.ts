/**
 * The SSH server of a session (src/ssh/session.ts) driven in-process by ssh2's client over a loopback socket:
 * `signal` requests reach the running program and a program killed by a signal ends with `exit-signal`. No Docker:
 * the programs run as the test's own user.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server as NetServer } from "node:net";
import { userInfo } from "node:os";
import { Client, utils, type ClientChannel } from "ssh2";
import { serveSsh } from "../../src/ssh/server.ts";
import { removeDir, tempDir } from "../harness.ts";

const home = tempDir("beaker-ssh-session-");
const user = { name: userInfo().username, uid: userInfo().uid, home, shell: "/bin/sh" };
const hostKey = utils.generateKeyPairSync("ed25519").private;
let listener: NetServer;
let port: number;

beforeAll(async () => {
  listener = createServer((socket) => void serveSsh({ socket, hostKey, user, tell: () => {} }));
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  port = (listener.address() as { port: number }).port;
});
afterAll(() => {
  listener.close();
  removeDir(home);
});

function connect(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once("ready", () => resolve(client)).once("error", reject);
    client.connect({ host: "127.0.0.1", port, username: user.name });
  });
}

function exec(client: Client, command: string, pty: boolean): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, { pty: pty ? { cols: 80, rows: 24, term: "xterm" } : undefined }, (err, stream) => (err ? reject(err) : resolve(stream))));
}

/** How the channel ended: exit-status gives a code, exit-signal a signal name (ssh2 adds the "SIG"). */
function exited(stream: ClientChannel, ms: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit-status or exit-signal within ${ms} ms`)), ms);
    stream.once("exit", (code: number | null, signal?: string) => {
      clearTimeout(timer);
      resolve({ code, signal: signal ?? null });
    });
  });
}

/** Resolves once the output contains `text` (the program is running and past its setup). */
function printed(stream: ClientChannel, text: string): Promise<void> {
  return new Promise((resolve) => {
    let out = "";
    stream.on("data", (data: Buffer) => {
      out += data.toString();
      if (out.includes(text)) resolve();
    });
  });
}

for (const pty of [false, true]) {
  const how = pty ? "on a terminal" : "with pipes";
  test(`a signal INT request stops a running command (${how}), which ends with exit-signal INT`, async () => {
    const client = await connect();
    try {
      const stream = await exec(client, "echo started; exec sleep 30", pty);
      await printed(stream, "started");
      const end = exited(stream, 5_000);
      stream.signal("INT");
      expect(await end).toEqual({ code: null, signal: "SIGINT" });
    } finally {
      client.end();
    }
  });

  test(`a command killed by TERM ends with exit-signal TERM, not an exit status (${how})`, async () => {
    const client = await connect();
    try {
      const stream = await exec(client, "kill -TERM $$", pty);
      stream.resume();
      expect(await exited(stream, 5_000)).toEqual({ code: null, signal: "SIGTERM" });
    } finally {
      client.end();
    }
  });
}
