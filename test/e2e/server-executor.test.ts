/** A real executor reporting to a real server: registration, heartbeats, tokens, login, cordon, and server outages. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beakerBinary, eventually, removeDir, tempDir, testNodeName } from "../harness.ts";
import { TestExecutor, testUser } from "../executor-harness.ts";
import { TestServer } from "../server-harness.ts";
import { Tmux } from "../tmux.ts";

const node = testNodeName(import.meta.file);
const server = new TestServer();
const tokenDir = tempDir("beaker-node-token-");
let executor: TestExecutor;
let alice: string;
let bob: string;
const home = `/home/${testUser}`;
const userConfig = join(home, ".beaker", "config.yml");

async function nodeNow(token = alice) {
  return ((await (await server.api("/clusters/lab/nodes", token)).json()) as Array<{ hostname: string; gpusFree: number; gpusTotal: number; status: string }>)[0]!;
}

const withToken = (token: string) => ({ user: testUser, env: { BEAKER_TOKEN: token } });

beforeAll(async () => {
  alice = await server.createUser("alice");
  bob = await server.createUser("bob");
  await server.admin(["cluster", "create", "lab"]);
  const tokenFile = await server.addNode(node, "lab", tokenDir);
  await server.start();
  executor = new TestExecutor({ nodeName: node, extra: `server: ${server.url}\ntokenFile: ${tokenFile}\n` });
  executor.removeLeftovers();
  await executor.start();
  Bun.spawnSync(["rm", "-rf", join(home, ".beaker")]);
});
afterAll(async () => {
  await executor.cleanup();
  await server.cleanup();
  removeDir(tokenDir);
  Bun.spawnSync(["rm", "-rf", join(home, ".beaker")]);
});

test("the node registers and its free GPUs follow the sessions; the session is the Beaker account's", async () => {
  const registered = await eventually(async () => {
    const n = await nodeNow();
    return n?.gpusTotal === 8 && n;
  }, 30_000, { what: "the node to report 8 GPUs" });
  expect(registered).toMatchObject({ hostname: node, gpusFree: 8, gpusTotal: 8, status: "online" });
  const created = await executor.run(["session", "create", "--detach", "--json", "--gpus", "2", "--", "sleep", "300"], withToken(alice));
  expect(created.exitCode).toBe(0);
  const id = JSON.parse(created.stdout).id;
  await eventually(async () => (await nodeNow()).gpusFree === 6, 30_000, { what: "the server to count 6 free GPUs" });
  const mine = await executor.run(["session", "list", "--cluster", "lab", "--json"], { ...withToken(alice), env: { BEAKER_TOKEN: alice, BEAKER_SERVER: server.url } });
  expect(JSON.parse(mine.stdout)).toMatchObject([{ id, user: "alice", node }]);
  const theirs = await executor.run(["session", "list", "--cluster", "lab", "--json"], { user: testUser, env: { BEAKER_TOKEN: bob, BEAKER_SERVER: server.url } });
  expect(JSON.parse(theirs.stdout)).toEqual([]);
  await executor.run(["session", "stop", "--timeout", "0", id], withToken(alice));
  await eventually(async () => (await nodeNow()).gpusFree === 8, 30_000, { what: "the server to count 8 free GPUs again" });
}, 60_000);

test("cluster list, cluster nodes, node list and account whoami from the CLI", async () => {
  const env = { user: testUser, env: { BEAKER_TOKEN: bob, BEAKER_SERVER: server.url } };
  const clusters = await executor.run(["cluster", "list"], env);
  expect(clusters.stdout).toMatch(/^NAME\s+NODES ONLINE\s+GPUS FREE\/TOTAL\nlab\s+1\/1\s+8\/8\n$/);
  const nodes = await executor.run(["cluster", "nodes", "lab"], env);
  expect(nodes.stdout).toMatch(new RegExp(String.raw`^HOSTNAME\s+GPU TYPE\s+GPUS FREE\/TOTAL\s+STATUS\s+LAST SEEN\n${node}\s+Tesla V100S-PCIE-32GB\s+8\/8\s+online\s+\d+s ago\n$`));
  expect(JSON.parse((await executor.run(["node", "list", "--json"], env)).stdout)).toMatchObject([{ hostname: node, cluster: "lab" }]);
  expect((await executor.run(["account", "whoami"], env)).stdout).toBe(`bob on ${server.url}\n`);
  const missing = await executor.run(["cluster", "nodes", "nope"], env);
  expect(missing).toEqual({ exitCode: 5, stdout: "", stderr: "beaker: no cluster nope\n" });
  const noToken = await executor.run(["cluster", "list"], { user: testUser, env: { BEAKER_SERVER: server.url } });
  expect(noToken).toEqual({ exitCode: 4, stdout: "", stderr: `beaker: not logged in to ${server.url}: run 'beaker account login' (or set BEAKER_TOKEN)\n` });
});

test("without a token and without a terminal: a clear error naming BEAKER_TOKEN and beaker account login, exit 4", async () => {
  const r = await executor.run(["session", "create", "--gpus", "0", "--", "true"], { user: testUser });
  expect(r.exitCode).toBe(4);
  expect(r.stderr).toBe(
    `beaker: This node uses the Beaker server at ${server.url} and needs your user token: set BEAKER_TOKEN, or run 'beaker account login' on a terminal (or 'beaker account login --token-stdin')\n`,
  );
  const wrong = await executor.run(["session", "list"], withToken("bkr_0123456789_" + "A".repeat(43)));
  expect(wrong.exitCode).toBe(4);
  expect(wrong.stderr).toMatch(/refused your token/);
  expect(wrong.stderr).not.toContain("A".repeat(43));
});

test("first use on a terminal: asks for the token (three tries), says Logged in as NAME, saves it 0600, carries on", async () => {
  using tmux = new Tmux("login");
  tmux.start("l", ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", "-u", "CI", `HOME=${home}`, "TERM=xterm",
    `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "bash", "-c", `cd ~; ${beakerBinary} session create --gpus 0 -- sh -c 'echo inside-as-$(id -un)'; echo rc=$?; sleep 60`], { cols: 160, rows: 30 });
  await tmux.waitFor("l", /needs your user token[\s\S]*Beaker user token/);
  tmux.line("l", "bkr_0123456789_" + "B".repeat(43));
  await tmux.waitFor("l", /That token was not accepted; try again/);
  tmux.line("l", alice);
  await tmux.waitFor("l", /Logged in as alice[\s\S]*inside-as-beaker-test-user[\s\S]*rc=0/);
  expect(tmux.screen("l")).not.toContain(alice.slice(15));
  expect(statSync(userConfig).mode & 0o777).toBe(0o600);
  expect(readFileSync(userConfig, "utf8")).toContain(alice);
  const again = await executor.run(["session", "create", "--gpus", "0", "--", "true"], { user: testUser });
  expect(again).toEqual({ exitCode: 0, stdout: "", stderr: "" });
}, 60_000);

test("account login --token-stdin, token rotate, logout", async () => {
  const env = { user: testUser, env: { BEAKER_SERVER: server.url } };
  const login = await executor.run(["account", "login", "--token-stdin"], { ...env, stdin: `${bob}\n` });
  expect(login).toEqual({ exitCode: 0, stdout: "", stderr: "Logged in as bob\n" });
  const rotate = await executor.run(["account", "token", "rotate"], env);
  expect(rotate.exitCode).toBe(0);
  expect((await server.api("/whoami", bob)).status).toBe(401);
  const fresh = /user_token: (\S+)/.exec(readFileSync(userConfig, "utf8"))![1]!;
  expect(fresh).not.toBe(bob);
  expect((await executor.run(["account", "whoami"], env)).stdout).toBe(`bob on ${server.url}\n`);
  expect((await executor.run(["account", "logout"], env)).stderr).toBe(`logged out: removed your token from ${userConfig}\n`);
  expect(readFileSync(userConfig, "utf8")).not.toContain("user_token");
  bob = fresh;
});

test("a cordoned node refuses new sessions (exit 6); uncordoned it takes them again", async () => {
  await server.admin(["node", "cordon", node]);
  const refused = await eventually(async () => {
    const r = await executor.run(["session", "create", "--gpus", "0", "--", "true"], withToken(alice));
    return r.exitCode === 6 && r;
  }, 30_000, { what: "the cordon to reach the executor" });
  expect(refused.stderr).toBe("beaker: this node is cordoned by an admin: no new sessions start here (running ones go on)\n");
  expect((await nodeNow()).status).toBe("cordoned");
  await server.admin(["node", "uncordon", node]);
  await eventually(async () => (await executor.run(["session", "create", "--gpus", "0", "--", "true"], withToken(alice))).exitCode === 0, 30_000, {
    what: "the uncordon to reach the executor",
  });
}, 30_000);

test("server down: known users keep working, unknown tokens get a clear error; the node reports again when it is back", async () => {
  const port = server.port;
  await server.stop();
  const known = await executor.run(["session", "create", "--gpus", "0", "--", "echo", "still-works"], withToken(alice));
  expect(known).toMatchObject({ exitCode: 0, stdout: "still-works\n" });
  const unknown = await executor.run(["session", "list"], withToken(bob));
  expect(unknown.exitCode).toBe(1);
  expect(unknown.stderr).toMatch(/^beaker: cannot check your token: cannot reach the Beaker server at http:\/\/127\.0\.0\.1:\d+/);
  expect(executor.log()).toMatch(/cannot report to the server/);
  await server.start(port);
  await eventually(async () => (await executor.run(["session", "list"], withToken(bob))).exitCode === 0, 30_000, { what: "bob's token to be accepted again" });
  await eventually(() => /reporting to .* again/.test(executor.log()), 30_000, { what: "the executor to report again" });
  expect(executor.log()).not.toContain(alice.slice(15));
}, 60_000);
