/**
 * SSH into sessions with Debian's OpenSSH client, as a non-root user, through `beaker session proxy` and the
 * `beaker ssh-server --stdio` inside: exec, exit codes, a terminal under tmux, scp, sftp, rsync, -L, -A, another
 * user refused, and the way VS Code Remote-SSH connects. On the Debian test image and on busybox (no glibc, no sshd).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { beakerBinary, eventually, removeDir, tempDir, testNodeName, type RunResult } from "../harness.ts";
import { busyboxImage, otherUser, sshImage, TestExecutor, testUser } from "../executor-harness.ts";
import { Tmux } from "../tmux.ts";

const node = testNodeName(import.meta.file);
const executor = new TestExecutor({ nodeName: node });
const homes: Record<string, string> = {};
const configs: Record<string, string> = {};
const hosts = [
  { image: "debian", host: "train.beaker", name: "train" },
  { image: "busybox", host: "bb.beaker", name: "bb" },
] as const;

function idOf(user: string, flag: "-u" | "-g"): number {
  return Number(Bun.spawnSync(["id", flag, user]).stdout.toString().trim());
}

/** A program run as `user`, with a temporary HOME of theirs (their ~/.beaker and ~/.ssh for this file only). */
function spawnAs(user: string, cmd: string[], options: { stdin?: string | Uint8Array; env?: Record<string, string> } = {}) {
  const home = homes[user]!;
  return Bun.spawn(["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", ...cmd], {
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: home, USER: user, BEAKER_EXECUTOR_SOCKET: executor.socket, BEAKER_CONFIG: join(home, ".beaker", "config.yml"), ...options.env },
    cwd: home,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function runAs(user: string, cmd: string[], options: { stdin?: string | Uint8Array; env?: Record<string, string> } = {}): Promise<RunResult> {
  const proc = spawnAs(user, cmd, options);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

/** OpenSSH with the printed block as its only config, never prompting (an unknown host key would fail, not ask). */
const ssh = (args: string[], options: { user?: string; stdin?: string | Uint8Array; env?: Record<string, string> } = {}) =>
  runAs(options.user ?? testUser, ["ssh", "-F", configs[options.user ?? testUser]!, "-o", "BatchMode=yes", ...args], options);

beforeAll(async () => {
  executor.removeLeftovers();
  await executor.start();
  for (const user of [testUser, otherUser]) {
    homes[user] = tempDir("beaker-ssh-home-");
    chownSync(homes[user]!, idOf(user, "-u"), idOf(user, "-g"));
    const printed = await runAs(user, [beakerBinary, "session", "ssh-config"]);
    expect(printed).toMatchObject({ exitCode: 0, stderr: "" });
    configs[user] = join(homes[user]!, "ssh_config");
    writeFileSync(configs[user]!, printed.stdout);
  }
  for (const { name, image } of hosts) {
    const created = await executor.run(["session", "create", "--detach", "--gpus", "0", "--name", name, "--image", image === "debian" ? sshImage : busyboxImage, "--", "sleep", "infinity"], { user: testUser });
    expect(created.exitCode).toBe(0);
    // Shown beside the ID (which alone is on stdout): the lines to use, and the one-time setup not done yet here.
    expect(created.stderr).toContain(`ssh ${name}.beaker`);
    expect(created.stderr).toContain(`code --remote ssh-remote+${name}.beaker /home/${testUser}\n`);
  }
}, 60_000);

afterAll(async () => {
  await executor.cleanup();
  for (const home of Object.values(homes)) removeDir(home);
});

for (const { image, host, name } of hosts) describe(image, () => {
  test("exec prints the user, and the exit code comes back", async () => {
    expect(await ssh([host, "--", "id", "-un"])).toEqual({ exitCode: 0, stdout: `${testUser}\n`, stderr: "" });
    expect((await ssh([host, "--", "sh", "-c", "'exit 7'"])).exitCode).toBe(7);
    const env = await ssh(["-o", "SetEnv=LANG=C.UTF-8 NVIDIA_VISIBLE_DEVICES=all", host, "--", "sh", "-c", "'echo $HOME $LANG $NVIDIA_VISIBLE_DEVICES; pwd'"]);
    expect(env.stdout).toBe(`/home/${testUser} C.UTF-8 void\n/home/${testUser}\n`);
  }, 30_000);

  test("scp 20 MB in and out, byte for byte; sftp ls, put and get", async () => {
    const home = homes[testUser]!;
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(join(home, "big.bin"), data);
    chownSync(join(home, "big.bin"), idOf(testUser, "-u"), idOf(testUser, "-g"));
    const scp = (from: string, to: string) => runAs(testUser, ["scp", "-F", configs[testUser]!, "-o", "BatchMode=yes", from, to]);
    expect(await scp("big.bin", `${host}:/tmp/big-${name}.bin`)).toMatchObject({ exitCode: 0, stderr: "" });
    expect(await scp(`${host}:/tmp/big-${name}.bin`, "back.bin")).toMatchObject({ exitCode: 0, stderr: "" });
    expect(Buffer.compare(readFileSync(join(home, "back.bin")), data)).toBe(0);
    // The upload itself, in the session, against the original sent again on stdin.
    const compared = await ssh([host, "--", "sh", "-c", `'cmp - /tmp/big-${name}.bin && wc -c < /tmp/big-${name}.bin'`], { stdin: data });
    expect(compared).toMatchObject({ exitCode: 0, stdout: `${data.length}\n` });

    writeFileSync(join(home, "note.txt"), `hello ${name}\n`);
    const batch = `mkdir /tmp/sftp-${name}\ncd /tmp/sftp-${name}\nput note.txt\nls -l\nget note.txt note-back.txt\nrm note.txt\nrmdir /tmp/sftp-${name}\n`;
    const sftp = await runAs(testUser, ["sftp", "-F", configs[testUser]!, "-o", "BatchMode=yes", "-b", "-", host], { stdin: batch });
    expect(sftp.exitCode).toBe(0);
    expect(sftp.stdout).toMatch(new RegExp(`^-rw\\S+\\s+\\d+\\s+${idOf(testUser, "-u")}\\s+\\d+\\s+${`hello ${name}\n`.length}\\s.*note\\.txt$`, "m"));
    expect(readFileSync(join(home, "note-back.txt"), "utf8")).toBe(`hello ${name}\n`);
    expect((await ssh([host, "--", "ls", `/tmp/sftp-${name}`])).exitCode).not.toBe(0);
  }, 60_000);

  test("a terminal under tmux: prompt, stty size after a resize, Ctrl-C stops sleep 100 and not the shell", async () => {
    using tmux = new Tmux(`ssh-${name}`);
    const shows = (pattern: RegExp) => tmux.waitFor("s", pattern);
    const type = (line: string) => tmux.line("s", line);
    const home = homes[testUser]!;
    const command = `ssh -F ${configs[testUser]} ${host}; echo ssh-exit=$?; sleep 600`;
    tmux.start("s", ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", `HOME=${home}`, "TERM=xterm",
      `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "PATH=/usr/local/bin:/usr/bin:/bin", "bash", "-c", command]);
    await shows(name === "train" ? new RegExp(`${testUser}@${node}:~\\$\\s*$`, "m") : /\$\s*$/m);
    type("PS1='in-session> '");
    await shows(/^in-session>\s*$/m);
    type("stty size");
    await shows(/^30 100$/m);
    tmux.resize("s", 120, 40);
    // The new size travels as a window-change request: ask again until it has landed.
    await eventually(
      async () => {
        type("clear; stty size");
        return /^40 120$/m.test(await shows(/^(30 100|40 120)$/m));
      },
      30_000,
      { what: "stty size to say 40 120" },
    );
    type("sleep 100");
    const sleeping = () => Bun.spawnSync(["pgrep", "-f", "-x", "sleep 100"]).exitCode === 0;
    await eventually(sleeping, 30_000, { what: "sleep 100 to run in the session" });
    tmux.keys("s", "C-c");
    await eventually(() => !sleeping(), 30_000, { what: "Ctrl-C to stop sleep 100" });
    type("echo after-sleep=$?; tty");
    await shows(/^after-sleep=130\n\/dev\/pts\/\d+$/m);
    type("exit 3");
    await shows(/^ssh-exit=3$/m);
  }, 60_000);
});

test("rsync -e ssh copies a tree there and back", async () => {
  const home = homes[testUser]!;
  const src = join(home, "tree");
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "a.txt"), "alpha\n");
  writeFileSync(join(src, "sub", "b.bin"), randomBytes(300_000));
  Bun.spawnSync(["chown", "-R", `${testUser}:${testUser}`, src]);
  const rsync = (from: string, to: string) => runAs(testUser, ["rsync", "-a", "-e", `ssh -F ${configs[testUser]} -o BatchMode=yes`, from, to]);
  expect(await rsync("tree/", "train.beaker:/tmp/tree/")).toMatchObject({ exitCode: 0, stderr: "" });
  expect((await ssh(["train.beaker", "--", "cat", "/tmp/tree/a.txt"])).stdout).toBe("alpha\n");
  expect((await ssh(["train.beaker", "--", "sh", "-c", "'echo changed > /tmp/tree/a.txt'"])).exitCode).toBe(0);
  expect(await rsync("train.beaker:/tmp/tree/", "tree-back/")).toMatchObject({ exitCode: 0, stderr: "" });
  expect(readFileSync(join(home, "tree-back", "a.txt"), "utf8")).toBe("changed\n");
  expect(Buffer.compare(readFileSync(join(home, "tree-back", "sub", "b.bin")), readFileSync(join(src, "sub", "b.bin")))).toBe(0);
}, 60_000);

/** ssh with a local port forwarded to 127.0.0.1:8000 inside, where its command (fed `script`) serves; the page there. */
async function forwardAndFetch(args: string[], script: string): Promise<string> {
  const port = 20000 + (process.pid % 20000);
  const proc = spawnAs(testUser, ["ssh", "-F", configs[testUser]!, "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-L", `${port}:127.0.0.1:8000`, ...args], { stdin: script });
  try {
    const reader = proc.stdout.getReader();
    let out = "";
    // Reads until the line; a read waits for output, so this never spins.
    while (!out.includes("listening")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ssh ended: ${out}${await new Response(proc.stderr).text()}`);
      out += new TextDecoder().decode(value);
    }
    return await (await fetch(`http://127.0.0.1:${port}/`)).text();
  } finally {
    proc.kill();
    await proc.exited;
  }
}

test("ssh -L reaches a server listening on 127.0.0.1:8000 inside (busybox httpd)", async () => {
  const script = "mkdir -p /tmp/www && echo hello from bb > /tmp/www/index.html && httpd -p 127.0.0.1:8000 -h /tmp/www && echo listening && exec sleep 60";
  expect(await forwardAndFetch(["bb.beaker", "sh", "-c", `'${script}'`], "")).toBe("hello from bb\n");
}, 30_000);

test("the VS Code way: ssh -T HOST bash fed a script on stdin, which starts a server reached through a forwarded port", async () => {
  const server = `use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:8000", Listen => 5, ReuseAddr => 1) or die "$!";
    $| = 1; print "listening\\n"; while (my $c = $s->accept) { <$c>; print $c "HTTP/1.0 200 OK\\r\\n\\r\\nhello from $ENV{USER}\\n"; close $c }`;
  const script = `set -e\ncd ~\necho "server for $(uname -m) in $PWD"\nperl -e '${server}' &\nwait\n`;
  expect(await forwardAndFetch(["-T", "train.beaker", "bash"], script)).toBe(`hello from ${testUser}\n`);
}, 30_000);

test("ssh -A: ssh-add -l inside lists the laptop agent's key; without -A there is no agent", async () => {
  const home = homes[testUser]!;
  const agentSocket = join(home, "agent.sock");
  const agent = spawnAs(testUser, ["ssh-agent", "-D", "-a", agentSocket]);
  try {
    await eventually(() => existsSync(agentSocket), 30_000, { what: "ssh-agent to listen" });
    expect((await runAs(testUser, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "laptop-key", "-f", join(home, "laptop_key")])).exitCode).toBe(0);
    const env = { SSH_AUTH_SOCK: agentSocket };
    expect((await runAs(testUser, ["ssh-add", join(home, "laptop_key")], { env })).exitCode).toBe(0);
    const fingerprint = (await runAs(testUser, ["ssh-keygen", "-l", "-f", join(home, "laptop_key.pub")])).stdout.split(" ")[1]!;
    const listed = await ssh(["-A", "train.beaker", "--", "ssh-add", "-l"], { env });
    expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
    expect(listed.stdout).toMatch(new RegExp(`^256 ${fingerprint.replace(/[+/]/g, "\\$&")} laptop-key \\(ED25519\\)$`, "m"));
    const inside = await ssh(["-A", "train.beaker", "--", "sh", "-c", "'stat -c %a $(dirname $SSH_AUTH_SOCK)'"], { env });
    expect(inside.stdout).toBe("700\n");
    expect((await ssh(["train.beaker", "--", "sh", "-c", "'echo ${SSH_AUTH_SOCK:-none}'"], { env })).stdout).toBe("none\n");
  } finally {
    agent.kill();
    await agent.exited;
  }
}, 30_000);

test("another user's ssh to the session is refused and learns nothing; a wrong User is refused plainly", async () => {
  const other = await ssh(["-v", "train.beaker", "--", "id"], { user: otherUser });
  expect(other.exitCode).toBe(255);
  expect(other.stdout).toBe("");
  // The same answer as for a session that does not exist; the server never started: no banner, no host key.
  expect(other.stderr).toMatch(/^beaker: no session train of yours on this node$/m);
  expect(other.stderr).not.toMatch(/Remote protocol version|Server host key|beaker_/);
  const wrongUser = await ssh(["-l", "root", "train.beaker", "--", "id"]);
  expect(wrongUser.exitCode).toBe(255);
  expect(wrongUser.stderr).toMatch(/this session runs as beaker-test-user, not root/);
  const missing = await ssh(["nosuch.beaker", "--", "id"]);
  expect(missing.stderr).toMatch(/^beaker: no session nosuch of yours on this node$/m);
  // NAME.NODE.beaker for another node goes there over ssh (tested with real nodes in remote.test.ts); here there is none.
  const elsewhere = await ssh(["train.gpu-99.beaker", "--", "id"]);
  expect(elsewhere.stderr).toMatch(/^beaker: cannot reach gpu-99 over SSH: /m);
  expect((await ssh([`train.${node}.beaker`, "--", "id", "-un"])).stdout).toBe(`${testUser}\n`);
}, 30_000);

test("ssh-config --write adds the block to ~/.ssh/config once; the host key is the user's, 0600, and pinned", async () => {
  const home = homes[testUser]!;
  const first = await runAs(testUser, [beakerBinary, "session", "ssh-config", "--write"]);
  expect(first).toMatchObject({ exitCode: 0, stdout: "" });
  expect(first.stderr).toContain(`Added a Host *.beaker block to ${home}/.ssh/config`);
  const again = await runAs(testUser, [beakerBinary, "session", "ssh-config", "--write"]);
  expect(again.stderr).toContain("already has a Host *.beaker block; nothing changed");
  const written = readFileSync(join(home, ".ssh", "config"), "utf8");
  expect(written).toBe(readFileSync(configs[testUser]!, "utf8"));
  expect(statSync(join(home, ".ssh", "config")).mode & 0o777).toBe(0o600);
  expect(statSync(join(home, ".beaker", "ssh_host_ed25519_key")).mode & 0o777).toBe(0o600);
  const pinned = readFileSync(join(home, ".beaker", "known_hosts"), "utf8");
  expect(pinned).toMatch(/^beaker-session ssh-ed25519 \S+\n$/);
  const scan = await runAs(testUser, ["ssh", "-F", join(home, ".ssh", "config"), "-o", "BatchMode=yes", "-v", "train.beaker", "--", "true"]);
  expect(scan.exitCode).toBe(0);
  expect(scan.stderr).toMatch(/Host 'beaker-session' is known and matches the ED25519 host key/);
  // The other user's key is their own.
  expect(readFileSync(join(homes[otherUser]!, ".beaker", "known_hosts"), "utf8")).not.toBe(pinned);
}, 30_000);
