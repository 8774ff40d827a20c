/**
 * A session from a laptop: `beaker session create --cluster lab` until the shell's prompt, against plain `ssh -t node
 * true` in the same run, alternating (so a machine that drifts affects both alike); and `ssh -t node beaker session
 * create` typed by hand, to show what the laptop's CLI adds (the server's node list, the pick, its own start).
 * Runs as root with Docker (as the e2e tests do): one executor behind a real sshd on 127.0.0.1, one server, the test
 * user as the laptop. Each command runs in a pseudo-terminal (`script`), as a person would run it.
 *
 *   flock /tmp/beaker-e2e.lock node_modules/.bin/bun bench/remote.ts [--runs 15]
 */
import { parseArgs } from "node:util";
import { beakerBinary, eventually, removeDir, tempDir, within } from "../test/harness.ts";
import { managedContainers, TestExecutor, testImage } from "../test/executor-harness.ts";
import { TestServer } from "../test/server-harness.ts";
import { TestLaptop, TestSshNode } from "../test/ssh-harness.ts";
import { shellCommand } from "../src/remote/quote.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "15" } } });
const runs = Number(values.runs);
const prompt = /@gpu-a:~\$ $/m;

const server = new TestServer();
const laptop = new TestLaptop();
const tokenDir = tempDir("beaker-bench-token-");
let executor: TestExecutor | null = null;
let node: TestSshNode | null = null;

/** How long one timed command may take, to its prompt and its end: past it, the run stops and says what it saw. */
const commandLimitMs = 60_000;

/** Runs `cmd` as the laptop user in a pty; resolves with the ms until `until` shows on screen (or the exit). */
async function timed(cmd: string[], until: RegExp | null): Promise<number> {
  const start = performance.now();
  const proc = Bun.spawn(laptop.asUser(["script", "-qfec", shellCommand(cmd), "/dev/null"], { TERM: "xterm" }), { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let elapsed = 0;
  let screen = "";
  const decoder = new TextDecoder();
  const read = async () => {
    for await (const chunk of proc.stdout) {
      screen += decoder.decode(chunk, { stream: true });
      if (until && !elapsed && until.test(screen)) {
        elapsed = performance.now() - start;
        proc.stdin.write("exit\n");
        proc.stdin.flush();
      }
    }
    return proc.exited;
  };
  const waited = until ? `${until} on the screen of '${cmd.join(" ")}', then its end` : `'${cmd.join(" ")}' to end`;
  const code = await within(read(), commandLimitMs, waited, () => `screen so far:\n${screen}`).catch((err: Error) => {
    proc.kill("SIGKILL");
    throw err;
  });
  if (!until) elapsed = performance.now() - start;
  if (code !== 0 || !elapsed) throw new Error(`${cmd.join(" ")} exited ${code}: ${screen}${await new Response(proc.stderr).text()}`);
  return elapsed;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  if (Bun.spawnSync(["docker", "image", "inspect", testImage], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) {
    throw new Error(`the test image ${testImage} is missing: scripts/test builds it (or set BEAKER_TEST_IMAGE)`);
  }
  for (const id of managedContainers("gpu-a")) Bun.spawnSync(["docker", "rm", "-f", id]);
  const alice = await server.createUser("alice");
  await server.admin(["cluster", "create", "lab"]);
  const tokenFile = await server.addNode("gpu-a", "lab", tokenDir);
  await server.start();
  executor = new TestExecutor({ nodeName: "gpu-a", extra: `server: ${server.url}\ntokenFile: ${tokenFile}\n` });
  await executor.start();
  node = new TestSshNode("gpu-a", executor.socket);
  await node.start(laptop.publicKey);
  laptop.writeSshConfig([node], node);
  await laptop.run(["account", "login", "--server", server.url, "--token-stdin"], { stdin: `${alice}\n` });
  // The node gets the token once (and the server hears from the node) before anything is timed; a create that
  // keeps failing (an image scripts/test did not leave, a node the server never saw) ends the bench with its reason.
  await eventually(
    async () => {
      const first = await within(laptop.run(["session", "create", "--cluster", "lab", "--gpus", "0", "--", "true"]), commandLimitMs, "the first remote create");
      if (first.exitCode !== 0) throw new Error(`exit ${first.exitCode}: ${first.stderr.trim().split("\n").at(-1)}`);
      return true;
    },
    120_000,
    { intervalMs: 500, what: "a first 'session create --cluster lab' to succeed", detail: () => `executor log:\n${executor?.log().slice(-1500) ?? ""}` },
  );

  const remote = [beakerBinary, "session", "create", "--cluster", "lab", "--gpus", "0", "--image", testImage];
  const byHand = ["ssh", "-t", "gpu-a", "beaker", "session", "create", "--gpus", "0", "--image", testImage];
  const sshTrue = ["ssh", "-t", "gpu-a", "true"];
  for (let i = 0; i < 2; i++) {
    await timed(remote, prompt);
    await timed(sshTrue, null);
  }
  const times = { remote: [] as number[], byHand: [] as number[], sshTrue: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const order: Array<keyof typeof times> = i % 2 ? ["remote", "byHand", "sshTrue"] : ["sshTrue", "byHand", "remote"];
    for (const which of order) times[which].push(await timed(which === "remote" ? remote : which === "byHand" ? byHand : sshTrue, which === "sshTrue" ? null : prompt));
  }
  const [r, h, s] = [median(times.remote), median(times.byHand), median(times.sshTrue)];
  console.log(`beaker session create --cluster lab, to the prompt   median ${r.toFixed(0)} ms  (${runs} runs, alternating)`);
  console.log(`ssh -t gpu-a beaker session create, to the prompt    median ${h.toFixed(0)} ms`);
  console.log(`ssh -t gpu-a true                                    median ${s.toFixed(0)} ms`);
  console.log(`ratio to ssh -t true: ${(r / s).toFixed(2)}x; the laptop CLI's own part: ${(r / h).toFixed(2)}x the same create typed over ssh (+${(r - h).toFixed(0)} ms)`);
} finally {
  await laptop.cleanup();
  await node?.cleanup();
  await executor?.cleanup();
  await server.cleanup();
  removeDir(tokenDir);
}
