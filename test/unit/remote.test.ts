/** The pure parts of sessions from anywhere: quoting for the node's shell, node picking, ssh argv, matching, ports. */
import { describe, expect, test } from "bun:test";
import { shellCommand, shellQuote } from "../../src/remote/quote.ts";
import { describePlacement, pickNode, type PlacementNode } from "../../src/remote/placement.ts";
import { buildSshArgv, childEnv, sshFailure } from "../../src/remote/ssh.ts";
import { findSessionNode, matchSession, type ClusterSession } from "../../src/remote/locate.ts";
import { forwardLine, parsePortSpec } from "../../src/remote/forward.ts";
import { listenFirstFree, listenLoopbacks, PortTakenError } from "../../src/remote/loopback.ts";
import { remoteCreateArgs } from "../../src/cli/commands/session/remote-create.ts";

const tricky = ["plain", "two words", "it's", '"double"', "$HOME", "${x:-y}", "a;b", "a && b", "`id`", "$(id)", "line1\nline2", "", " ", "back\\slash", "*", "~", "#hash", "tab\there", "'", "''", "!bang", "x=1", "-n", "--", "ümlaut", "a|b>c<d"];

describe("shellCommand: the remote shell gets back exactly the words", () => {
  const shells = ["sh", "bash", "dash", "zsh"].filter((s) => Bun.which(s));
  test.each(shells)("%s", (shell) => {
    const script = `printf '%s\\0' ${shellCommand(tricky)}`;
    const out = Bun.spawnSync([shell, "-c", script], { stdout: "pipe" }).stdout.toString();
    expect(out.split("\0").slice(0, -1)).toEqual(tricky);
  });
  test("plain words stay readable; the rest is single-quoted", () => {
    expect(shellCommand(["beaker", "session", "create", "--gpus", "2", "--env", "A=b c"])).toBe("beaker session create --gpus 2 --env 'A=b c'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote("")).toBe("''");
  });
});

const gpu = (name: string, free: boolean, healthy = true) => ({ name, healthy, free });
const node = (hostname: string, free: number, total: number, extra: Partial<PlacementNode> = {}, name = "NVIDIA H100 80GB HBM3"): PlacementNode => ({
  hostname,
  status: "online",
  queued: 0,
  gpus: Array.from({ length: total }, (_, i) => gpu(name, i < free)),
  ...extra,
});
const ask = (gpus: number, gpuType: string | null = null) => ({ cluster: "lab", gpus, gpuType });

describe("pickNode", () => {
  test.each([
    ["best fit: fewest free that still fit", [node("gpu-a", 1, 8), node("gpu-b", 6, 8), node("gpu-c", 3, 8)], ask(2), { kind: "now", node: "gpu-c", free: 3 }],
    ["ties go to the name", [node("gpu-b", 2, 8), node("gpu-a", 2, 8)], ask(2), { kind: "now", node: "gpu-a" }],
    ["a node with a queue does not fit now (strict FIFO)", [node("gpu-a", 2, 8, { queued: 1 }), node("gpu-b", 4, 8)], ask(2), { kind: "now", node: "gpu-b" }],
    ["a session without GPUs never waits: the fewest free GPUs", [node("gpu-a", 8, 8), node("gpu-b", 0, 8, { queued: 3 })], ask(0), { kind: "now", node: "gpu-b" }],
    ["offline and cordoned nodes are left out", [node("gpu-a", 8, 8, { status: "offline" }), node("gpu-b", 8, 8, { status: "cordoned" }), node("gpu-c", 1, 8)], ask(1), { kind: "now", node: "gpu-c" }],
    ["unhealthy GPUs are not free", [{ hostname: "gpu-a", status: "online", queued: 0, gpus: [gpu("H100", true, false), gpu("H100", true, false), gpu("H100", true), gpu("H100", false)] } as PlacementNode], ask(2), { kind: "queue", node: "gpu-a", free: 1, total: 2 }],
    ["the type matches the GPU name, case-insensitively", [node("gpu-a", 4, 8, {}, "NVIDIA A100-SXM4-80GB"), node("gpu-b", 8, 8)], ask(2, "h100"), { kind: "now", node: "gpu-b" }],
    ["none fits now: the shortest queue among those big enough", [node("gpu-a", 1, 8, { queued: 2 }), node("gpu-b", 0, 8, { queued: 1 }), node("gpu-c", 7, 4)], ask(7), { kind: "queue", node: "gpu-b" }],
    ["equal queues: the most free (soonest to fit)", [node("gpu-a", 1, 8), node("gpu-b", 6, 8)], ask(7), { kind: "queue", node: "gpu-b", free: 6, total: 8 }],
  ])("%s", (_, nodes, request, expected) => {
    expect(pickNode(nodes as PlacementNode[], request)).toMatchObject(expected);
  });

  test.each([
    ["no nodes", [], ask(1), "cluster lab has no nodes"],
    ["none online", [node("gpu-a", 8, 8, { status: "offline" })], ask(1), "cluster lab has no node online (gpu-a: offline)"],
    ["no GPUs of the type", [node("gpu-a", 8, 8)], ask(1, "A100"), "no online node of lab has A100 GPUs (it has: NVIDIA H100 80GB HBM3)"],
    ["none big enough", [node("gpu-a", 8, 8), node("gpu-b", 2, 4)], ask(9), "no online node of lab has 9 GPUs (the most is 8)"],
  ])("impossible: %s", (_, nodes, request, reason) => {
    expect(pickNode(nodes as PlacementNode[], request)).toEqual({ kind: "impossible", reason });
  });

  test("what the user is told", () => {
    expect(describePlacement({ kind: "now", node: "gpu-07", free: 2, total: 8, queued: 0 }, ask(2))).toBe("on gpu-07 (2 of 8 GPUs free)");
    expect(describePlacement({ kind: "queue", node: "gpu-b", free: 6, total: 8, queued: 1 }, ask(7, "H100"))).toBe(
      "no node of lab can start it now; queueing on gpu-b (6 of 8 H100 GPUs free, 1 request ahead)",
    );
  });
});

describe("ssh", () => {
  test("argv: -t on a terminal, ssh's messages to a log, `--` before the node, the command quoted once", () => {
    expect(buildSshArgv({ node: "gpu-a", command: ["beaker", "session", "create", "--", "echo", "a b"], tty: true, logFile: "/tmp/l" })).toEqual([
      "ssh", "-t", "-E", "/tmp/l", "-o", "LogLevel=ERROR", "--", "gpu-a", "beaker session create -- echo 'a b'",
    ]);
    expect(buildSshArgv({ node: "-oProxyCommand=x", command: ["true"], tty: false, logFile: "/tmp/l", control: { path: "/tmp/c", master: true } })).toEqual([
      "ssh", "-T", "-E", "/tmp/l", "-o", "LogLevel=ERROR", "-o", "ControlPath=/tmp/c", "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "--", "-oProxyCommand=x", "true",
    ]);
    expect(buildSshArgv({ node: "n", command: null, tty: false, logFile: "/l", forwards: [{ localPort: 8888, host: "127.0.0.1", port: 49153 }] })).toEqual([
      "ssh", "-T", "-E", "/l", "-o", "LogLevel=ERROR", "-L", "localhost:8888:127.0.0.1:49153", "-N", "-o", "ExitOnForwardFailure=yes", "--", "n",
    ]);
  });

  test("children never get the token from the environment", () => {
    expect(childEnv({ PATH: "/bin", BEAKER_TOKEN: "bkr_secret", HOME: "/h", X: undefined })).toEqual({ PATH: "/bin", HOME: "/h" });
  });

  test.each([
    ["", null],
    ["ssh: connect to host 127.0.0.1 port 2: Connection refused\n", { line: "connect to host 127.0.0.1 port 2: Connection refused", connecting: true }],
    ["ssh: Could not resolve hostname nope: Name or service not known\n", { line: "Could not resolve hostname nope: Name or service not known", connecting: true }],
    ["beaker-test-user@127.0.0.1: Permission denied (publickey).\n", { line: "beaker-test-user@127.0.0.1: Permission denied (publickey).", connecting: true }],
    ["client_loop: send disconnect: Broken pipe\n", { line: "client_loop: send disconnect: Broken pipe", connecting: false }],
  ])("sshFailure(%j)", (log, expected) => {
    expect(sshFailure(log)).toEqual(expected);
  });
});

const session = (id: string, name: string, node: string, status = "running"): ClusterSession => ({ id, name, node, status, user: "alice", gpus: [], image: "i", createdAt: "", startedAt: null });

describe("matchSession", () => {
  const all = [session("aaaa1111", "train", "gpu-a"), session("aaaa2222", "notebook", "gpu-b"), session("bbbb3333", "train", "gpu-b"), session("cccc4444", "old", "gpu-a", "exited")];
  test.each([
    ["an ID", "bbbb3333", undefined, "gpu-b"],
    ["a unique prefix", "bbbb", undefined, "gpu-b"],
    ["a unique name", "notebook", undefined, "gpu-b"],
    ["a name made unique by --node", "train", "gpu-a", "gpu-a"],
  ])("%s", (_, ref, node, expected) => {
    expect(matchSession(all, { cluster: "lab", ref, node }).node).toBe(expected);
  });
  test.each([
    ["a name on two nodes", "train", /several sessions are named train in lab/, 2],
    ["an ambiguous prefix", "aaaa", /aaaa matches several sessions in lab/, 2],
    ["nothing", "zzz", /no session zzz in lab/, 5],
    ["an ended one", "old", /no session old in lab/, 5],
    ["no reference with several", undefined, /multiple running sessions found, select one with an ID/, 2],
  ])("%s", (_, ref, message, exitCode) => {
    let error: unknown;
    try {
      matchSession(all, { cluster: "lab", ref });
    } catch (err) {
      error = err;
    }
    expect(String((error as Error).message)).toMatch(message);
    expect((error as { exitCode: number }).exitCode).toBe(exitCode);
  });
  test("no reference and one session: that one", () => {
    expect(matchSession([session("x1", "only", "gpu-b")], { cluster: "lab" }).id).toBe("x1");
  });
});

test("findSessionNode: an admin's name finds only their own session, even where every one listed is another user's", async () => {
  const server = (me: string) => ({ sessions: async () => [session("aaaa1111", "dev", "gpu-a")], whoami: async () => ({ name: me }) }) as unknown as Parameters<typeof findSessionNode>[0];
  await expect(findSessionNode(server("root"), { cluster: "lab", ref: "dev" })).rejects.toThrow(/no session dev in lab/);
  await expect(findSessionNode(server("root"), { cluster: "lab", ref: "aaaa1111" })).rejects.toThrow(/no session aaaa1111 in lab/);
  expect((await findSessionNode(server("alice"), { cluster: "lab", ref: "dev" })).node).toBe("gpu-a");
});

test("remoteCreateArgs: the node gets the flags it needs, none of the laptop's", () => {
  const flags = { cluster: "lab", gpuType: "H100", node: "x", port: ["8888", "6006"], env: ["A=1 2"], mount: ["/net/d:/d:ro"], cpus: "4", detach: true, wait: false, json: true, workdir: "/w" };
  expect(remoteCreateArgs(flags, ["python", "-c", "print(1)"], { gpus: 2, image: "img", name: "n1" })).toEqual([
    "session", "create", "--gpus", "2", "--image", "img", "--name", "n1", "--cpus", "4", "--port", "8888", "--port", "6006", "--env", "A=1 2",
    "--mount", "/net/d:/d:ro", "--workdir", "/w", "--detach", "--no-wait", "--json", "--", "python", "-c", "print(1)",
  ]);
  expect(remoteCreateArgs({ port: [], env: [], mount: [], wait: true }, [], { gpus: null, image: null, name: null })).toEqual(["session", "create"]);
});

describe("ports", () => {
  test.each([
    ["8888", { local: 8888, remote: 8888 }],
    ["9000:8888", { local: 9000, remote: 8888 }],
  ])("parsePortSpec(%s)", (spec, expected) => expect(parsePortSpec(spec)).toEqual(expected));
  test.each(["0", "70000", "a:1", "1:", ":1"])("parsePortSpec(%s) is a usage error", (spec) => expect(() => parsePortSpec(spec)).toThrow(/LOCAL\[:REMOTE\]/));
  test("forwardLine names the address listened on, and a wanted port that was taken", () => {
    expect(forwardLine({ url: "http://localhost:8889", local: 8889, wanted: 8888, remote: 8888, session: "s", node: "n1" })).toBe("port 8888 of session s on n1 is at http://localhost:8889; port 8888 is taken here");
  });
});

describe("a forward's local end: both loopbacks or an error", () => {
  const taken = async (host: string) => {
    for (;;) {
      const port = 20000 + Math.floor(Math.random() * 20000);
      try {
        return { port, server: Bun.listen({ hostname: host, port, socket: { data() {} } }) };
      } catch {}
    }
  };
  test("another program on [::1]:P first: an error naming it, and 127.0.0.1:P is not held either", async () => {
    const other = await taken("::1");
    try {
      const err = await listenLoopbacks(other.port, () => {}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortTakenError);
      expect((err as Error).message).toBe(`[::1]:${other.port} is taken here (another program listens there): pick another LOCAL port`);
      const again = Bun.listen({ hostname: "127.0.0.1", port: other.port, socket: { data() {} } });
      again.stop(true);
    } finally {
      other.server.stop(true);
    }
  });
  test("another program on 127.0.0.1:P: an error naming it", async () => {
    const other = await taken("127.0.0.1");
    try {
      await expect(listenLoopbacks(other.port, () => {})).rejects.toThrow(`127.0.0.1:${other.port} is taken here`);
    } finally {
      other.server.stop(true);
    }
  });
  test("both free: both are ours (localhost); the first free port skips one half taken", async () => {
    const other = await taken("::1");
    try {
      const first = await listenFirstFree(other.port, () => {});
      try {
        expect(first.port).toBeGreaterThan(other.port);
        expect(first.url).toBe(`http://localhost:${first.port}`);
        expect(() => Bun.listen({ hostname: "::1", port: first.port, socket: { data() {} } })).toThrow();
        expect(() => Bun.listen({ hostname: "127.0.0.1", port: first.port, socket: { data() {} } })).toThrow();
      } finally {
        first.close();
      }
    } finally {
      other.server.stop(true);
    }
  });
});
