/**
 * The in-session SSH server logs in only the session's own user, by name: a wrong `User` is refused with one line that
 * says whom to connect as, never logged in under another name. ssh2's client over a loopback socket, in process.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createServer, type Server as NetServer } from "node:net";
import { userInfo } from "node:os";
import { Client, utils } from "ssh2";
import { serveSsh } from "../../src/ssh/server.ts";
import { removeDir, tempDir } from "../harness.ts";

const home = tempDir("beaker-ssh-auth-");
const user = { name: userInfo().username, uid: userInfo().uid, home, shell: "/bin/sh" };
const hostKey = utils.generateKeyPairSync("ed25519").private;
const told: string[] = [];
let listener: NetServer;
let port: number;

beforeAll(async () => {
  listener = createServer((socket) => void serveSsh({ socket, hostKey, user, tell: (line) => told.push(line) }));
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  port = (listener.address() as { port: number }).port;
});
afterAll(() => {
  listener.close();
  removeDir(home);
});

/** "ready" or the client's error, within 10 s. */
function login(username: string): Promise<string> {
  return new Promise((resolve) => {
    const client = new Client();
    const timer = setTimeout(() => resolve("no answer within 10 s"), 10_000);
    const done = (what: string) => {
      clearTimeout(timer);
      client.end();
      resolve(what);
    };
    client.once("ready", () => done("ready")).once("error", (err) => done(err.message));
    client.connect({ host: "127.0.0.1", port, username });
  });
}

test("the session's user is let in", async () => {
  expect(await login(user.name)).toBe("ready");
});

test("another name is refused and told whom to connect as", async () => {
  told.length = 0;
  for (const name of ["root", `${user.name}x`, user.name.slice(0, -1), user.name.toUpperCase() === user.name ? user.name.toLowerCase() : user.name.toUpperCase()]) {
    expect(await login(name)).toContain("authentication methods failed");
  }
  expect(told[0]).toBe(`beaker: this session runs as ${user.name}, not root: connect as ${user.name} (User ${user.name} in ~/.ssh/config)`);
});
