/** runBeakerOnNode with an injected spawner: what each ssh process gets (argv, environment, stdin), and ssh failures. */
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { removeDir, tempDir } from "../harness.ts";
import { runBeakerOnNode, type RemoteContext } from "../../src/remote/node.ts";
import type { SpawnRequest, Spawner } from "../../src/remote/ssh.ts";

const token = "bkr_0123456789_" + "S".repeat(43);
const dir = tempDir("beaker-remote-unit-");
afterAll(() => removeDir(dir));

/** Answers each ssh call by the remote command it runs; remembers every request. */
function fakeSsh(answer: (remote: string, request: SpawnRequest) => number | { code: number; log: string; killedBy?: NodeJS.Signals }) {
  const requests: SpawnRequest[] = [];
  const spawn: Spawner = (request) => {
    requests.push(request);
    const result = answer(request.argv[request.argv.length - 1]!, request);
    const { code, log, killedBy = null } = typeof result === "number" ? { code: result, log: "" } : result;
    if (log) writeFileSync(request.argv[request.argv.indexOf("-E") + 1]!, log);
    return { exited: Promise.resolve(code), stdout: null, stdin: null, kill: () => {}, killedBy: () => killedBy };
  };
  return { spawn, requests };
}

function context(spawn: Spawner, said: string[]): RemoteContext {
  return { spawn, env: { PATH: "/usr/bin:/bin", HOME: "/home/u", BEAKER_TOKEN: token }, token: () => token, say: (line) => said.push(line), dir };
}

function expectNoTokenOutsideStdin(requests: SpawnRequest[]) {
  for (const r of requests) {
    expect(r.argv.join(" ")).not.toContain(token);
    expect(Object.values(r.env).join(" ")).not.toContain(token);
    expect(r.env.BEAKER_TOKEN).toBeUndefined();
  }
}

test("a node without the token: exit 4, checked with whoami, sent once on stdin to account login --token-stdin, then the command again", async () => {
  let created = 0;
  const { spawn, requests } = fakeSsh((remote) => {
    if (remote.includes("session create")) return created++ === 0 ? 4 : 0;
    if (remote.includes("account whoami")) return 4;
    if (remote.includes("account login --token-stdin")) return 0;
    return 99;
  });
  const said: string[] = [];
  const code = await runBeakerOnNode(context(spawn, said), { node: "gpu-a", args: ["session", "create", "--", "echo", "a b"], tty: true });
  expect(code).toBe(0);
  expect(requests.map((r) => r.argv[r.argv.length - 1])).toEqual([
    "env BEAKER_NO_LOGIN_PROMPT=1 beaker session create -- echo 'a b'",
    "env BEAKER_NO_LOGIN_PROMPT=1 beaker account whoami",
    "env BEAKER_NO_LOGIN_PROMPT=1 beaker account login --token-stdin",
    "env BEAKER_NO_LOGIN_PROMPT=1 beaker session create -- echo 'a b'",
  ]);
  expect(requests.map((r) => r.argv[1])).toEqual(["-t", "-T", "-T", "-t"]);
  expect(new TextDecoder().decode(requests[2]!.stdin as Uint8Array)).toBe(`${token}\n`);
  expect(requests.filter((r) => r.stdin instanceof Uint8Array)).toHaveLength(1);
  expectNoTokenOutsideStdin(requests);
  expect(said).toEqual(["sending your Beaker token to gpu-a (once, on the SSH connection's stdin)"]);
});

test("a node that has a working token: the 4 was the command's own exit code, and nothing is sent", async () => {
  const { spawn, requests } = fakeSsh((remote) => (remote.includes("whoami") ? 0 : 4));
  const said: string[] = [];
  expect(await runBeakerOnNode(context(spawn, said), { node: "gpu-a", args: ["session", "exec", "x", "--", "sh", "-c", "exit 4"], tty: false })).toBe(4);
  expect(requests).toHaveLength(2);
  expect(requests.some((r) => r.stdin instanceof Uint8Array)).toBe(false);
  expect(said).toEqual([]);
});

test("ssh failing: one line naming the node, exit 1; a 255 with nothing in ssh's log is the command's own", async () => {
  const refused = fakeSsh(() => ({ code: 255, log: "ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n" }));
  const error = await runBeakerOnNode(context(refused.spawn, []), { node: "gpu-b", args: ["session", "create"], tty: false }).catch((e) => e);
  expect(error.message).toBe("cannot reach gpu-b over SSH: connect to host 127.0.0.1 port 2222: Connection refused");
  expect(error.exitCode).toBe(1);
  const dropped = fakeSsh(() => ({ code: 255, log: "client_loop: send disconnect: Broken pipe\n" }));
  const lost = await runBeakerOnNode(context(dropped.spawn, []), { node: "gpu-b", args: ["session", "create"], tty: true, afterDrop: "a session created before it dropped keeps running" }).catch((e) => e);
  expect(lost.message).toBe("lost the SSH connection to gpu-b: client_loop: send disconnect: Broken pipe; a session created before it dropped keeps running");
  const killed = fakeSsh(() => ({ code: 137, log: "", killedBy: "SIGKILL" }));
  const gone = await runBeakerOnNode(context(killed.spawn, []), { node: "gpu-b", args: ["session", "create"], tty: false, afterDrop: "a session created before it dropped keeps running" }).catch((e) => e);
  expect(gone.message).toBe("lost the SSH connection to gpu-b: ssh was killed by SIGKILL; a session created before it dropped keeps running");
  expect(gone.exitCode).toBe(1);
  const own = fakeSsh(() => 255);
  expect(await runBeakerOnNode(context(own.spawn, []), { node: "gpu-b", args: ["session", "create", "--", "sh", "-c", "exit 255"], tty: false })).toBe(255);
});
