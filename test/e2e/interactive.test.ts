/** The interactive path under tmux, as a new user meets it: prompt, terminal size, Ctrl-C, exit code, detach. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { beakerBinary } from "../harness.ts";
import { busyboxImage, TestExecutor, testUser } from "../executor-harness.ts";

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

/** A second tmux server: the session-management moments of issue 5, as a user meets them. */
test("kill -9 of the CLI leaves top running; attach shows it at the new size; detach keys; two terminals; stop exits 143", async () => {
  const sock = `beaker-test-m-${process.pid}`;
  const t = (...args: string[]) => Bun.spawnSync(["tmux", "-L", sock, ...args], { stdout: "pipe", stderr: "pipe" }).stdout.toString();
  const pane = (target: string) => t("capture-pane", "-p", "-t", target);
  const waitOn = async (target: string, pattern: RegExp, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = pane(target);
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`${target} never showed ${pattern}:\n${text}`);
      await Bun.sleep(100);
    }
  };
  const type = (target: string, line: string) => t("send-keys", "-t", target, line, "Enter");
  const userShell = (name: string, x: string, y: string) =>
    t("new-session", "-d", "-s", name, "-x", x, "-y", y, "setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=/home/${testUser}`, "TERM=xterm", `PATH=${process.env.PATH}`, `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "bash", "--norc", "-i");
  try {
    userShell("a", "100", "30");
    userShell("b", "90", "25");
    type("a", `cd ~; PS1='host$ '; ${beakerBinary} session create --name topper --gpus 1 --image ${busyboxImage} -- top -d 1`);
    await waitOn("a", /[Ll]oad average/);
    Bun.spawnSync(["pkill", "-9", "-f", "session create --name topper"]);
    await waitOn("a", /^host\$\s*$/m);
    type("a", "stty sane; clear");
    t("resize-window", "-t", "a", "-x", "120", "-y", "40");
    type("a", `${beakerBinary} session attach topper`);
    await waitOn("a", /[Ll]oad average[\s\S]*PID\s+PPID\s+USER/);
    const size = await executor.run(["session", "exec", "topper", "--", "stty", "-F", "/dev/console", "size"], { user: testUser });
    expect(size.stdout).toBe("40 120\n");

    // A second terminal on the same session; then Ctrl-P Ctrl-Q leaves the first, and the session runs on.
    type("b", `${beakerBinary} session attach topper`);
    await waitOn("b", /[Ll]oad average/);
    t("send-keys", "-t", "a", "C-p", "C-q");
    await waitOn("a", /detached from session topper; it keeps running/);
    expect(pane("b")).toMatch(/[Ll]oad average/);

    type("a", `${beakerBinary} session exec topper -- sh -c 'echo gpus=$NVIDIA_VISIBLE_DEVICES; stty size'`);
    await waitOn("a", /^gpus=GPU-[0-9a-f-]+\s*\n\s*40 120\s*$/m);

    expect((await executor.run(["session", "stop", "--timeout", "1", "topper"], { user: testUser })).exitCode).toBe(0);
    await waitOn("b", /session topper was stopped by user/);
    type("b", "echo rc=$?");
    await waitOn("b", /^rc=143$/m);
  } finally {
    t("kill-server");
  }
}, 90_000);
