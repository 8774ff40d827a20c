/** The interactive path under tmux, as a new user meets it: prompt, terminal size, Ctrl-C, exit code, detach. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { beakerBinary, eventually, testNodeName } from "../harness.ts";
import { busyboxImage, TestExecutor, testUser } from "../executor-harness.ts";
import { Tmux } from "../tmux.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
const tmux = new Tmux("interactive");
const asUser = ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=/home/${testUser}`, "TERM=xterm"];

/** Whether a process of that name runs in the user's only session (seen from inside it, as the user). */
async function runsInSession(name: string): Promise<boolean> {
  return (await executor.run(["session", "exec", "--", "pgrep", "-x", name], { user: testUser })).exitCode === 0;
}

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
});
afterAll(async () => {
  tmux.kill();
  await executor.cleanup();
});

test("prompt shows the user; stty size follows resizes; Ctrl-C reaches the program; exit 7 is the CLI's exit code", async () => {
  const shell = `cd ~ && BEAKER_EXECUTOR_SOCKET=${executor.socket} ${beakerBinary} session create --gpus 1; echo "beaker-exit=$?"; sleep 600`;
  tmux.start("t", [...asUser, "bash", "-c", shell]);
  await tmux.waitFor("t", new RegExp(`${testUser}@${node}:~\\$`));
  tmux.line("t", "stty size");
  await tmux.waitFor("t", /^30 100$/m);
  tmux.resize("t", 120, 40);
  // The new size travels tmux -> CLI -> executor -> Docker; ask again until the shell inside reports it.
  await eventually(async () => {
    tmux.line("t", "clear; stty size");
    return /^40 120$/m.test(await tmux.waitFor("t", /^\d+ \d+$/m));
  });
  tmux.line("t", "sleep 100");
  await eventually(() => runsInSession("sleep"));
  tmux.keys("t", "C-c");
  await eventually(async () => !(await runsInSession("sleep")));
  tmux.line("t", "echo after-sleep=$?");
  await tmux.waitFor("t", /^after-sleep=130$/m);
  tmux.line("t", "whoami; echo $NVIDIA_VISIBLE_DEVICES");
  await tmux.waitFor("t", new RegExp(`^${testUser}$[\\s\\S]*^GPU-`, "m"));
  tmux.line("t", "exit 7");
  await tmux.waitFor("t", /beaker-exit=7/);
}, 90_000);

/** The session-management moments of issue 5, as a user meets them. */
test("kill -9 of the CLI leaves top running; attach shows it at the new size; detach keys; two terminals; stop exits 143", async () => {
  using t = new Tmux("interactive-m");
  const userShell = (name: string, cols: number, rows: number) =>
    t.start(name, [...asUser, `PATH=${process.env.PATH}`, `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "bash", "--norc", "-i"], { cols, rows });
  userShell("a", 100, 30);
  userShell("b", 90, 25);
  t.line("a", `cd ~; PS1='host$ '; ${beakerBinary} session create --name topper --gpus 1 --image ${busyboxImage} -- top -d 1`);
  await t.waitFor("a", /[Ll]oad average/);
  // The CLI is the only child of the window's shell: kill it by its PID.
  const cli = Number(Bun.spawnSync(["pgrep", "-P", String(t.panePid("a"))]).stdout.toString().trim());
  expect(cli).toBeGreaterThan(0);
  process.kill(cli, "SIGKILL");
  await t.waitFor("a", /^host\$\s*$/m);
  t.line("a", "stty sane; clear");
  t.resize("a", 120, 40);
  t.line("a", `${beakerBinary} session attach topper`);
  await t.waitFor("a", /[Ll]oad average[\s\S]*PID\s+PPID\s+USER/);
  const size = await executor.run(["session", "exec", "topper", "--", "stty", "-F", "/dev/console", "size"], { user: testUser });
  expect(size.stdout).toBe("40 120\n");

  // A second terminal on the same session; then Ctrl-P Ctrl-Q leaves the first, and the session runs on.
  t.line("b", `${beakerBinary} session attach topper`);
  await t.waitFor("b", /[Ll]oad average/);
  t.keys("a", "C-p", "C-q");
  await t.waitFor("a", /detached from session topper; it keeps running/);
  expect(t.screen("b")).toMatch(/[Ll]oad average/);

  t.line("a", `${beakerBinary} session exec topper -- sh -c 'echo gpus=$NVIDIA_VISIBLE_DEVICES; stty size'`);
  await t.waitFor("a", /^gpus=GPU-[0-9a-f-]+\s*\n\s*40 120\s*$/m);

  expect((await executor.run(["session", "stop", "--timeout", "1", "topper"], { user: testUser })).exitCode).toBe(0);
  await t.waitFor("b", /session topper was stopped by user/);
  t.line("b", "echo rc=$?");
  await t.waitFor("b", /^rc=143$/m);
}, 90_000);
