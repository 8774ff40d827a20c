/**
 * Sessions from anywhere: a laptop (the test user, no executor) reaches two nodes, gpu-a and gpu-b (each a real sshd
 * on 127.0.0.1 in front of its own executor with eight fake GPUs), both reporting to one server.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { beakerBinary, eventually, removeDir, tempDir, within } from "../harness.ts";
import { busyboxImage, managedContainers, TestExecutor, testUser } from "../executor-harness.ts";
import { TestServer } from "../server-harness.ts";
import { TestLaptop, TestSshNode } from "../ssh-harness.ts";
import { Tmux } from "../tmux.ts";

const server = new TestServer();
const laptop = new TestLaptop();
const tokenDirs = [tempDir("beaker-node-token-"), tempDir("beaker-node-token-")];
const executors: Record<string, TestExecutor> = {};
const nodes: Record<string, TestSshNode> = {};
let alice: string;

interface Placed {
  hostname: string;
  status: string;
  gpusFree: number;
  queued: number;
}

const placement = async () => (await (await server.api("/clusters/lab/nodes?placement=1", alice)).json()) as Placed[];
/** Waits until the server's placement view shows both nodes online with these free GPUs; a failure shows the last view. */
const freeOnServer = (want: Record<string, number>) =>
  eventually(async () => {
    const seen = Object.fromEntries((await placement()).map((n) => [n.hostname, n.status === "online" ? n.gpusFree : n.status]));
    expect(seen).toEqual(want);
    return true;
  }, 30_000, { what: `free GPUs on the server: ${JSON.stringify(want)}` });
const serverSessions = async () => (await (await server.api("/sessions?cluster=lab", alice)).json()) as Array<{ name: string; node: string; status: string }>;
const onNode = (node: string, args: string[]) => executors[node]!.run(args, { user: testUser, env: { BEAKER_TOKEN: alice } });

/** Everything a stream says, as it arrives. */
function collect(stream: ReadableStream<Uint8Array>): { text: string } {
  const out = { text: "" };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out.text += decoder.decode(chunk, { stream: true });
  })();
  return out;
}

function curlAsLaptop(url: string): { code: number; body: string } {
  const r = Bun.spawnSync(laptop.asUser(["curl", "-fsS", "--max-time", "5", url]), { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, body: r.stdout.toString() };
}

beforeAll(async () => {
  for (const name of ["gpu-a", "gpu-b"]) for (const id of managedContainers(name)) Bun.spawnSync(["docker", "rm", "-f", id]);
  alice = await server.createUser("alice");
  await server.admin(["cluster", "create", "lab"]);
  const tokenFiles = [await server.addNode("gpu-a", "lab", tokenDirs[0]!), await server.addNode("gpu-b", "lab", tokenDirs[1]!)];
  await server.start();
  for (const [i, name] of ["gpu-a", "gpu-b"].entries()) {
    executors[name] = new TestExecutor({ nodeName: name, extra: `server: ${server.url}\ntokenFile: ${tokenFiles[i]}\n` });
    await executors[name].start();
    nodes[name] = new TestSshNode(name, executors[name].socket);
    await nodes[name].start(laptop.publicKey);
  }
  laptop.writeSshConfig([nodes["gpu-a"]!, nodes["gpu-b"]!], nodes["gpu-a"]!);
  const login = await laptop.run(["account", "login", "--server", server.url, "--token-stdin"], { stdin: `${alice}\n` });
  expect(login).toMatchObject({ exitCode: 0, stderr: "Logged in as alice\n" });
  await freeOnServer({ "gpu-a": 8, "gpu-b": 8 });
}, 120_000);

afterAll(async () => {
  await laptop.cleanup();
  for (const node of Object.values(nodes)) await node.cleanup();
  for (const executor of Object.values(executors)) await executor.cleanup();
  await server.cleanup();
  for (const dir of tokenDirs) removeDir(dir);
});

test("on the laptop: node-only commands say so in one line; create without a cluster says how to name one", async () => {
  const gpus = await laptop.run(["node", "gpus"]);
  expect(gpus).toEqual({
    exitCode: 1,
    stdout: "",
    stderr: "beaker: 'beaker node gpus' runs on a Linux GPU node and this machine has no executor; from here, 'beaker cluster nodes CLUSTER' shows the nodes and their GPUs\n",
  });
  expect((await laptop.run(["executor", "status"])).stderr).toMatch(/^beaker: 'beaker executor status' runs on a Linux GPU node and this machine has no executor; [^\n]*\n$/);
  expect(await laptop.run(["session", "create", "--", "true"])).toEqual({
    exitCode: 1,
    stdout: "",
    stderr: "beaker: there is no executor on this machine: name the cluster with --cluster NAME (or 'beaker config set default_cluster NAME'), or the node with --node HOST\n",
  });
});

test("first contact with a node: the token goes once over the SSH connection's stdin, never in an argv or an environment", async () => {
  expect(existsSync(nodes["gpu-a"]!.userConfig)).toBe(false);
  const first = await laptop.run(["session", "create", "--node", "gpu-a", "--gpus", "0", "--", "echo", "hello from gpu-a"], { env: { BEAKER_TOKEN: alice } });
  expect(first.stdout).toBe("hello from gpu-a\n");
  expect(first.exitCode).toBe(0);
  expect(first.stderr).toContain("sending your Beaker token to gpu-a (once, on the SSH connection's stdin)\nLogged in as alice\n");
  expect(readFileSync(nodes["gpu-a"]!.userConfig, "utf8")).toContain(`user_token: ${alice}`);
  const again = await laptop.run(["session", "create", "--node", "gpu-a", "--gpus", "0", "--", "true"]);
  expect(again).toEqual({ exitCode: 0, stdout: "", stderr: "" });

  const nodeSide = nodes["gpu-a"]!.beakerCalls();
  expect(nodeSide).toContain("argv: [account] [login] [--token-stdin]\n");
  expect(nodeSide).not.toContain(alice);
  const laptopSide = laptop.sshCalls();
  expect(laptopSide).toMatch(/^argv: \[-[tT]\] /m);
  expect(laptopSide).not.toContain(alice);
  expect(laptopSide).not.toContain("BEAKER_TOKEN");
}, 60_000);

test("placement: --gpus 2 lands on the node it fits best, --gpus 7 queues on the right one and says so, --no-wait exits 6", async () => {
  expect(await onNode("gpu-a", ["session", "create", "--detach", "--gpus", "7", "--name", "hold-a", "--", "sleep", "600"])).toMatchObject({ exitCode: 0 });
  expect(await onNode("gpu-b", ["session", "create", "--detach", "--gpus", "2", "--name", "hold-b", "--", "sleep", "600"])).toMatchObject({ exitCode: 0 });
  await freeOnServer({ "gpu-a": 1, "gpu-b": 6 });

  const two = await laptop.run(["session", "create", "--cluster", "lab", "--gpus", "2", "--detach", "--json", "--name", "two", "--", "sleep", "600"]);
  expect(two.exitCode).toBe(0);
  // gpu-b meets this user for the first time: it gets the token, then the session.
  expect(two.stderr).toBe(
    `on gpu-b (6 of 8 GPUs free)\nbeaker: this node uses the Beaker server at ${server.url}: a user token is needed\nsending your Beaker token to gpu-b (once, on the SSH connection's stdin)\nLogged in as alice\n`,
  );
  expect(JSON.parse(two.stdout)).toMatchObject({ name: "two", node: "gpu-b", status: "running" });
  await freeOnServer({ "gpu-a": 1, "gpu-b": 4 });

  const refused = await laptop.run(["session", "create", "--cluster", "lab", "--gpus", "7", "--no-wait", "--detach", "--", "true"]);
  expect(refused).toEqual({ exitCode: 6, stdout: "", stderr: "beaker: no node of lab has 7 free GPUs now (the most: gpu-b, 4 of 8); without --no-wait it would queue there\n" });

  const seven = laptop.spawn(["session", "create", "--cluster", "lab", "--gpus", "7", "--detach", "--json", "--name", "seven", "--", "sleep", "600"]);
  const sevenErr = collect(seven.stderr);
  await eventually(async () => {
    const listed = JSON.parse((await onNode("gpu-b", ["session", "list", "--json"])).stdout) as Array<{ name: string; status: string }>;
    return listed.some((x) => x.name === "seven" && x.status === "queued");
  }, 30_000, { what: "seven queued on gpu-b" });
  await eventually(async () => (await serverSessions()).some((x) => x.name === "two"), 30_000, { what: "the server to know session two" });
  const stopped = await laptop.run(["session", "stop", "two", "--cluster", "lab", "--timeout", "0"]);
  expect(stopped).toMatchObject({ exitCode: 0 });
  expect(stopped.stderr).toMatch(/^stopped session two \(\w+\)\n$/);
  expect(await onNode("gpu-b", ["session", "stop", "hold-b", "--timeout", "0"])).toMatchObject({ exitCode: 0 });
  expect(await seven.exited).toBe(0);
  expect(JSON.parse(await new Response(seven.stdout).text())).toMatchObject({ name: "seven", node: "gpu-b", status: "running" });
  expect(sevenErr.text).toStartWith("no node of lab can start it now; queueing on gpu-b (4 of 8 GPUs free)\n");
  expect(sevenErr.text).toContain("Waiting for 7 GPUs: position 1 in the queue (4 free now)");
  expect(await onNode("gpu-b", ["session", "stop", "seven", "--timeout", "0"])).toMatchObject({ exitCode: 0 });
}, 90_000);

test("default_cluster: arguments with quotes, spaces, $, ; and newlines arrive unchanged; the exit code comes back", async () => {
  expect(await laptop.run(["config", "set", "default_cluster", "lab"])).toMatchObject({ exitCode: 0 });
  const words = ["a b", "it's", '"double"', "$HOME", "${x:-y}", "x;y", "a && b", "$(id)", "`id`", "line1\nline2", "", "back\\slash", "*", "#"];
  const r = await laptop.run(["session", "create", "--gpus", "0", "--image", busyboxImage, "--", "printf", "[%s]\\n", ...words]);
  expect(r.stdout).toBe(words.map((w) => `[${w}]\n`).join(""));
  expect(r.exitCode).toBe(0);
  expect(r.stderr).toMatch(/^on gpu-[ab] \(\d of 8 GPUs free\)\n$/);
  const seven = await laptop.run(["session", "create", "--gpus", "0", "--", "sh", "-c", "exit 7"]);
  expect(seven.exitCode).toBe(7);
}, 60_000);

test("under tmux through SSH: the prompt, a resize, Ctrl-C, and the exit code", async () => {
  using tmux = new Tmux("remote");
  tmux.start("r", laptop.asUser(["bash", "-c", `cd ~; ${beakerBinary} session create --gpus 1; echo beaker-exit=$?; sleep 600`], { TERM: "xterm" }));
  await tmux.waitFor("r", new RegExp(`${testUser}@gpu-[ab]:~\\$`));
  expect(tmux.screen("r")).toContain("on gpu-a (1 of 8 GPUs free)");
  tmux.line("r", "stty size");
  await tmux.waitFor("r", /^30 100$/m);
  tmux.resize("r", 120, 40);
  // The new size travels tmux -> CLI -> SSH -> executor -> Docker; ask again until the shell inside reports it.
  await eventually(async () => {
    tmux.line("r", "clear; stty size");
    return /^40 120$/m.test(await tmux.waitFor("r", /^\d+ \d+$/m));
  });
  tmux.line("r", "sleep 100");
  const listed = JSON.parse((await onNode("gpu-a", ["session", "list", "--json"])).stdout) as Array<{ id: string; name: string }>;
  const id = listed.find((s) => s.name !== "hold-a")!.id;
  await eventually(async () => (await onNode("gpu-a", ["session", "exec", id, "--", "ps", "-e", "-o", "comm="])).stdout.includes("sleep"), 30_000, { what: "sleep running in the session" });
  tmux.keys("r", "C-c");
  await tmux.waitFor("r", /^\^C\n.*\$ *$/m);
  tmux.line("r", "echo after-sleep=$?");
  await tmux.waitFor("r", /^after-sleep=130$/m);
  tmux.line("r", "exit 7");
  await tmux.waitFor("r", /beaker-exit=7/);
}, 60_000);

test("attach, exec, describe and stop a remote session by its name", async () => {
  const created = await laptop.run(["session", "create", "--gpus", "0", "--image", busyboxImage, "--name", "ticker", "--detach", "--", "sh", "-c", "while true; do echo tick; sleep 1; done"]);
  expect(created.exitCode).toBe(0);
  await eventually(async () => (await serverSessions()).some((x) => x.name === "ticker"), 30_000, { what: "the server to know ticker" });
  const described = await laptop.run(["session", "describe", "ticker", "--json"]);
  expect(described.exitCode).toBe(0);
  const node = JSON.parse(described.stdout).node as string;
  expect(JSON.parse(described.stdout)).toMatchObject({ name: "ticker", status: "running", user: testUser });
  const exec = await laptop.run(["session", "exec", "ticker", "--", "sh", "-c", "echo in-$(hostname)"]);
  expect(exec).toMatchObject({ exitCode: 0, stdout: `in-${node}\n` });

  const attach = laptop.spawn(["session", "attach", "ticker"]);
  const out = collect(attach.stdout);
  const err = collect(attach.stderr);
  await eventually(() => out.text.includes("tick"), 30_000, { what: "ticks through the attach" });
  const stop = await laptop.run(["session", "stop", "ticker", "--timeout", "0"]);
  expect(stop.exitCode).toBe(0);
  expect(await attach.exited).toBe(143);
  expect(err.text).toContain("session ticker was stopped by user");
}, 60_000);

test("the laptop's ssh killed while attached: one line naming the node and `session list`, exit 1; the session runs on", async () => {
  const create = laptop.spawn(["session", "create", "--cluster", "lab", "--node", "gpu-a", "--gpus", "0", "--image", busyboxImage, "--name", "dropped", "--", "sh", "-c", "while true; do echo tick; sleep 1; done"], {
    env: { BEAKER_TOKEN: alice },
  });
  const out = collect(create.stdout);
  const err = collect(create.stderr);
  try {
    await eventually(() => out.text.includes("tick"), 30_000, { what: "ticks from the session" });
    const ssh = Bun.spawnSync(["pgrep", "-P", String(create.pid), "-x", "ssh"]).stdout.toString().trim();
    expect(ssh).toMatch(/^\d+$/);
    process.kill(Number(ssh), "SIGKILL");
    expect(await create.exited).toBe(1);
    await eventually(() => err.text.endsWith("\n") && err.text.includes("lost the SSH connection"), 30_000, { what: "the CLI's last line", detail: () => err.text });
    expect(err.text).toEndWith("beaker: lost the SSH connection to gpu-a: ssh was killed by SIGKILL; a session created before it dropped keeps running (beaker session list --cluster lab)\n");
    // The node's CLI loses its connection too (its next tick finds no reader); the session outlives it.
    const nodeCliGone = () => Bun.spawnSync(["pgrep", "-u", testUser, "-f", "session create --gpus 0 .* --name dropped"]).exitCode === 1;
    await eventually(nodeCliGone, 30_000, { what: "the node's CLI to end" });
    const listed = JSON.parse((await onNode("gpu-a", ["session", "list", "--json"])).stdout) as Array<{ name: string; status: string }>;
    expect(listed.find((s) => s.name === "dropped")?.status).toBe("running");
  } finally {
    await onNode("gpu-a", ["session", "stop", "dropped", "--timeout", "0"]);
  }
}, 60_000);

test("--port: httpd on 8888 inside is at the printed http://localhost:PORT (the next port free on both loopbacks here), nothing published on the node; port-forward too, remote and local", async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.once("error", () => resolve()).listen(8888, "127.0.0.1", () => resolve()));
  const serve = "mkdir -p /tmp/w && echo hello-from-$(hostname) > /tmp/w/index.html && exec httpd -f -p 8888 -h /tmp/w";
  const web = laptop.spawn(["session", "create", "--gpus", "0", "--image", busyboxImage, "--name", "web", "--port", "8888", "--", "sh", "-c", serve]);
  const said: Record<string, { text: string }> = { "create --port": collect(web.stderr) };
  // Whatever a step stalls on, the failure shows what each command said and what the laptop asked of ssh.
  const detail = () =>
    [...Object.entries(said).map(([what, err]) => `${what} said: ${JSON.stringify(err.text)}`), `ssh calls:\n${laptop.sshCalls().split("\n").slice(-12).join("\n")}`].join("\n");
  const announced = (what: string) =>
    eventually(() => /is at http:\/\/localhost:\d+/.test(said[what]!.text) && said[what]!.text, 30_000, { what: `${what}'s line`, detail });
  try {
    const line = await announced("create --port");
    expect(line).toMatch(/port 8888 of session web is at http:\/\/localhost:\d+; port 8888 is taken here/);
    const [, port] = /is at http:\/\/localhost:(\d+)/.exec(line)!;
    expect(Number(port)).toBeGreaterThan(8888);
    const node = /hello-from-(gpu-[ab])/.exec(curlAsLaptop(`http://localhost:${port}/`).body)?.[1];
    expect(node).toMatch(/^gpu-[ab]$/);
    // Nothing of it is published on the node: each connection came through the node's executor.
    const published = Bun.spawnSync(["docker", "ps", "--filter", "label=beaker.name=web", "--filter", `label=beaker.node=${executors[node!]!.nodeName}`, "--format", "{{.Names}} [{{.Ports}}]"]);
    expect(published.stdout.toString().trim()).toMatch(/^beaker-[0-9a-f]+ \[\]$/);

    const forward = laptop.spawn(["session", "port-forward", "web", "9000:8888"]);
    said["port-forward"] = collect(forward.stderr);
    const fwdLine = await announced("port-forward");
    expect(fwdLine).toMatch(new RegExp(`^port 8888 of session web on ${node} is at http://localhost:9000; Ctrl-C stops it\n$`));
    const fwdPort = /is at http:\/\/localhost:(\d+)/.exec(fwdLine)![1];
    const answer = await eventually(() => {
      const r = curlAsLaptop(`http://localhost:${fwdPort}/`);
      return r.code === 0 && r;
    }, 30_000, { what: "port-forward to answer", detail });
    expect(answer.body).toBe(`hello-from-${node}\n`);
    forward.kill("SIGINT");
    expect(await within(forward.exited, 10_000, "port-forward after Ctrl-C", detail)).toBe(0);

    // On the node itself, through its executor (nothing is published on the node).
    const local = executors[node!]!.spawn(["session", "port-forward", "web", "9100:8888"], { user: testUser, env: { BEAKER_TOKEN: alice } });
    said["port-forward on the node"] = collect(local.stderr);
    const localLine = await announced("port-forward on the node");
    expect(localLine).toBe("port 8888 of session web is at http://localhost:9100; Ctrl-C stops it\n");
    const localPort = /is at http:\/\/localhost:(\d+)/.exec(localLine)![1];
    expect(curlAsLaptop(`http://localhost:${localPort}/`).body).toBe(`hello-from-${node}\n`);
    local.kill("SIGINT");
    expect(await within(local.exited, 10_000, "port-forward on the node after Ctrl-C", detail)).toBe(0);
  } finally {
    const stopped = await within(laptop.run(["session", "stop", "web", "--timeout", "0"]), 30_000, "session stop web", detail);
    blocker.close();
    expect({ ...stopped, detail: stopped.exitCode === 0 ? "" : detail() }).toMatchObject({ exitCode: 0 });
  }
  expect(await within(web.exited, 15_000, "create --port after its session stopped", detail)).toBe(143);
}, 200_000);

test("ssh into a session on another node from the laptop: NAME.NODE.beaker, and NAME.beaker found through the server", async () => {
  expect(await laptop.run(["config", "set", "default_cluster", "lab"])).toMatchObject({ exitCode: 0 });
  const made = await onNode("gpu-b", ["session", "create", "--detach", "--name", "far", "--gpus", "0", "--image", busyboxImage, "--", "sleep", "300"]);
  expect(made).toMatchObject({ exitCode: 0 });
  await eventually(async () => (await serverSessions()).some((x) => x.name === "far" && x.node === "gpu-b" && x.status === "running"), 30_000, {
    what: "the server to list the session",
  });
  expect(await laptop.run(["session", "ssh-config", "--write"])).toMatchObject({ exitCode: 0 });
  try {
    for (const host of ["far.gpu-b.beaker", "far.beaker"]) {
      const proc = Bun.spawn(laptop.asUser(["ssh", host, "--", "sh", "-c", "'id -un; exit 7'"]), { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      expect({ host, code, out, err }).toEqual({ host, code: 7, out: `${testUser}\n`, err: "" });
    }
  } finally {
    await onNode("gpu-b", ["session", "stop", "far"]);
  }
}, 60_000);

test("SSH failures: an unknown host, a refused key, a dead node: one line naming the node, exit 1", async () => {
  const unknown = await laptop.run(["session", "create", "--node", "no-such-node.invalid", "--gpus", "0", "--", "true"]);
  expect(unknown).toMatchObject({ exitCode: 1, stdout: "" });
  expect(unknown.stderr).toMatch(/^beaker: cannot reach no-such-node\.invalid over SSH: Could not resolve hostname no-such-node\.invalid: [^\n]+\n$/);
  const stranger = await laptop.run(["session", "create", "--node", "gpu-a-stranger", "--gpus", "0", "--", "true"]);
  expect(stranger).toMatchObject({ exitCode: 1, stdout: "" });
  expect(stranger.stderr).toMatch(/^beaker: cannot reach gpu-a-stranger over SSH: [^\n]*Permission denied \(publickey\)\.\n$/);
  await nodes["gpu-b"]!.stop();
  const dead = await laptop.run(["session", "create", "--node", "gpu-b", "--gpus", "0", "--", "true"]);
  expect(dead).toEqual({ exitCode: 1, stdout: "", stderr: `beaker: cannot reach gpu-b over SSH: connect to host 127.0.0.1 port ${nodes["gpu-b"]!.port}: Connection refused\n` });
}, 30_000);
