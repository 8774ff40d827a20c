/** The interactive path under tmux, as a new user meets it: prompt, terminal size, Ctrl-C, exit code, detach. */
import { afterAll, beforeAll, test } from "bun:test";
import { beakerBinary } from "../harness.ts";
import { TestExecutor, testUser } from "../executor-harness.ts";

const executor = new TestExecutor();
const tmuxSocket = `beaker-test-${process.pid}`;
const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", tmuxSocket, ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
const screen = () => tmux("capture-pane", "-p", "-t", "t");

async function waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = screen();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`screen never showed ${pattern}:\n${text}`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  await executor.start();
  const shell = `cd ~ && BEAKER_EXECUTOR_SOCKET=${executor.socket} ${beakerBinary} session create --gpus 1; echo "beaker-exit=$?"; sleep 600`;
  tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=/home/${testUser}`, "TERM=xterm", "bash", "-c", shell);
});
afterAll(async () => {
  tmux("kill-server");
  await executor.cleanup();
});

test("prompt shows the user; stty size follows resizes; Ctrl-C reaches the program; exit 7 is the CLI's exit code", async () => {
  await waitFor(new RegExp(`${testUser}@test-node:~\\$`));
  tmux("send-keys", "-t", "t", "stty size", "Enter");
  await waitFor(/^30 100$/m);
  tmux("resize-window", "-t", "t", "-x", "120", "-y", "40");
  await Bun.sleep(300);
  tmux("send-keys", "-t", "t", "clear; stty size", "Enter");
  await waitFor(/^40 120$/m);
  tmux("send-keys", "-t", "t", "sleep 100", "Enter");
  await Bun.sleep(700);
  tmux("send-keys", "-t", "t", "C-c", "");
  await Bun.sleep(300);
  tmux("send-keys", "-t", "t", "echo after-sleep=$?", "Enter");
  await waitFor(/^after-sleep=130$/m, 5000);
  tmux("send-keys", "-t", "t", "whoami; echo $NVIDIA_VISIBLE_DEVICES", "Enter");
  await waitFor(new RegExp(`^${testUser}$[\\s\\S]*^GPU-`, "m"));
  tmux("send-keys", "-t", "t", "exit 7", "Enter");
  await waitFor(/beaker-exit=7/);
}, 60_000);
