/**
 * `beaker git setup`, the credential helper, logout and status, as a new user on a node: real git pushing to and
 * cloning from a real git server over HTTPS that takes a token as the password.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { chownSync, existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beakerBinary, eventually, testNodeName } from "../harness.ts";
import { TestExecutor, testUser } from "../executor-harness.ts";
import { TestGitServer } from "../git-server.ts";
import { Tmux } from "../tmux.ts";

const token = `tok_${crypto.randomUUID().replace(/-/g, "")}`;
const server = new TestGitServer(token);
const home = `/home/${testUser}`;
const uid = Number(Bun.spawnSync(["id", "-u", testUser]).stdout.toString());
const gid = Number(Bun.spawnSync(["id", "-g", testUser]).stdout.toString());
let work: string;

interface Result {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as the test user, in their home, asynchronously (the git server lives in this process). */
async function asUser(cmd: string[], options: { stdin?: string; cwd?: string } = {}): Promise<Result> {
  const proc = Bun.spawn(["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", ...cmd], {
    env: { PATH: process.env.PATH, HOME: home, USER: testUser, GIT_SSL_CAINFO: server.caFile, GIT_TERMINAL_PROMPT: "0", LANG: "C" },
    cwd: options.cwd ?? home,
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

const beaker = (args: string[], options: { stdin?: string } = {}) => asUser([beakerBinary, ...args], options);
const gitConfig = async () => (await asUser(["git", "config", "--global", "-l"])).stdout;

/** Clones, commits a file and pushes; the result of the push. */
async function cloneCommitPush(repo: string, message: string): Promise<{ clone: Result; push: Result }> {
  const dir = join(work, `${repo}-${crypto.randomUUID().slice(0, 8)}`);
  const clone = await asUser(["git", "clone", "-q", server.url(`${repo}.git`), dir]);
  if (clone.exitCode !== 0) return { clone, push: clone };
  await asUser(["sh", "-c", `echo "${message}" > file.txt && git add file.txt && git commit -q -m "${message}"`], { cwd: dir });
  const push = await asUser(["git", "push", "-q", "origin", "HEAD:main"], { cwd: dir });
  return { clone, push };
}

async function pushOnly(repo: string, message: string): Promise<Result> {
  const dir = join(work, `${repo}-push-${crypto.randomUUID().slice(0, 8)}`);
  await asUser(["git", "init", "-q", "-b", "main", dir]);
  await asUser(["sh", "-c", `echo "${message}" > f.txt && git add f.txt && git commit -q -m "${message}"`], { cwd: dir });
  // A new branch each time: a refusal can only be about credentials, never about history.
  return asUser(["git", "push", "-q", server.url(`${repo}.git`), `HEAD:refs/heads/side-${crypto.randomUUID().slice(0, 8)}`], { cwd: dir });
}

function resetHome(): void {
  Bun.spawnSync(["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "git", "credential-cache", "exit"], { env: { HOME: home, PATH: process.env.PATH } });
  for (const f of [".gitconfig", ".git-credentials", ".beaker/git-credentials", ".ssh", ".cache/git", ".git-credential-cache"]) Bun.spawnSync(["rm", "-rf", join(home, f)]);
}

beforeAll(async () => {
  await server.start();
  server.createRepo("project.git");
  work = mkdtempSync("/tmp/beaker-git-work-");
  chownSync(work, uid, gid);
});
afterAll(() => {
  resetHome();
  server.stop();
  Bun.spawnSync(["rm", "-rf", work]);
});
beforeEach(resetHome);

const scripted = (helper: string, extra: string[] = []) =>
  beaker(["git", "setup", "--yes", "--host", server.host, "--name", "Ada Lovelace", "--email", "ada@example.org", "--token-stdin", "--helper", helper, ...extra], {
    stdin: `${token}\n`,
  });

describe.each(["store", "beaker", "cache"])("token with the %s helper", (helper) => {
  test("setup configures git, pushes and clones work, logout makes the next push fail", async () => {
    const setup = await scripted(helper);
    expect(setup.exitCode).toBe(0);
    expect(setup.stderr).toContain("undo: beaker git logout --host");
    const config = await gitConfig();
    expect(config).toContain("user.name=Ada Lovelace\nuser.email=ada@example.org\n");
    const key = `credential.https://${server.host}.helper`;
    const expected = helper === "cache" ? "cache --timeout 3600" : helper === "store" ? "store" : `${beakerBinary} git credential`;
    expect(config).toContain(`${key}=\n${key}=${expected}\n`);

    const storeFile = join(home, ".git-credentials");
    const beakerFile = join(home, ".beaker", "git-credentials");
    if (helper === "store") {
      expect(statSync(storeFile).mode & 0o777).toBe(0o600);
      // git-credential-store writes the URL-encoded form: https://user:token@127.0.0.1%3aPORT
      expect(readFileSync(storeFile, "utf8")).toBe(`https://x-access-token:${token}@${server.host.replace(":", "%3a")}\n`);
    } else expect(existsSync(storeFile)).toBe(false);
    if (helper === "beaker") {
      expect(statSync(beakerFile).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(beakerFile, "utf8"))).toEqual({ version: 2, credentials: [{ protocol: "https", host: server.host, username: "x-access-token", password: token }] });
    } else expect(existsSync(beakerFile)).toBe(false);

    const { clone, push } = await cloneCommitPush("project", `from ${helper}`);
    expect(clone.exitCode).toBe(0);
    expect(push).toMatchObject({ exitCode: 0 });
    expect(server.log("project.git")[0]).toBe(`from ${helper}`);
    const status = await beaker(["git", "status"]);
    expect(status.stdout).toContain(`https://${server.host}: helper ${expected}; token ********${token.slice(-4)}`);
    expect(status.stdout).not.toContain(token);

    const logout = await beaker(["git", "logout", "--host", server.host, "--yes"]);
    expect(logout.exitCode).toBe(0);
    if (helper === "store") expect(existsSync(storeFile)).toBe(false);
    const after = await pushOnly("project", "after logout");
    expect(after.exitCode).not.toBe(0);
    expect(after.stderr).toMatch(/Authentication failed|could not read Username|terminal prompts disabled/);
  }, 60_000);
});

test("the cache helper forgets the token after its timeout", async () => {
  // 5 s: long enough for the first push to come well within it on a loaded machine.
  expect((await scripted("cache", ["--timeout", "5"])).exitCode).toBe(0);
  // Asks git for the token: fill never stores it again (a good push does, which restarts the timeout).
  const fill = () => asUser(["git", "credential", "fill"], { stdin: `protocol=https\nhost=${server.host}\n\n` });
  expect((await fill()).stdout).toContain(`password=${token}\n`);
  expect((await pushOnly("project", "within the timeout")).exitCode).toBe(0);
  await eventually(async () => (await fill()).exitCode !== 0, 30_000, { what: "the cache to forget the token" });
  const late = await pushOnly("project", "after the timeout");
  expect(late.stderr).toMatch(/could not read Username|terminal prompts disabled/);
}, 30_000);

test("the helper answers only for hosts it holds; get, store and erase speak git's protocol", async () => {
  expect((await scripted("beaker")).exitCode).toBe(0);
  const held = await beaker(["git", "credential", "get"], { stdin: `protocol=https\nhost=${server.host}\n\n` });
  expect(held).toEqual({ exitCode: 0, stdout: `username=x-access-token\npassword=${token}\n`, stderr: "" });
  expect(await beaker(["git", "credential", "get"], { stdin: "protocol=https\nhost=other.example.com\n\n" })).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  await beaker(["git", "credential", "store"], { stdin: "protocol=https\nhost=other.example.com\nusername=u\npassword=p2\n\n" });
  expect((await beaker(["git", "credential", "get"], { stdin: "protocol=https\nhost=other.example.com\n" })).stdout).toContain("password=p2\n");
  await beaker(["git", "credential", "erase"], { stdin: "protocol=https\nhost=other.example.com\n\n" });
  expect((await beaker(["git", "credential", "get"], { stdin: "protocol=https\nhost=other.example.com\n\n" })).stdout).toBe("");
});

test("SSH key: generated 0600 in a 0700 ~/.ssh, a real OpenSSH key, a Host block added once; kept unless asked", async () => {
  const r = await beaker(["git", "setup", "--yes", "--ssh", "--name", "Ada", "--email", "ada@example.org"]);
  expect(r.exitCode).toBe(0);
  const key = join(home, ".ssh", "id_ed25519");
  expect(statSync(join(home, ".ssh")).mode & 0o777).toBe(0o700);
  expect(statSync(key).mode & 0o777).toBe(0o600);
  expect(statSync(key).uid).toBe(uid);
  const pub = readFileSync(`${key}.pub`, "utf8").trim();
  expect(r.stdout.trim()).toBe(pub);
  expect(r.stderr).toContain("paste it at https://github.com/settings/ssh/new");
  // ssh-keygen derives the same public key from the private one: the file is a valid OpenSSH key.
  const derived = await asUser(["ssh-keygen", "-y", "-f", key]);
  expect(derived.stdout.trim().split(" ").slice(0, 2)).toEqual(pub.split(" ").slice(0, 2));
  const config = readFileSync(join(home, ".ssh", "config"), "utf8");
  expect(config).toBe("Host github.com\n  HostName github.com\n  User git\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n");
  const again = await beaker(["git", "setup", "--yes", "--ssh"]);
  expect(again.stdout.trim()).toBe(pub);
  expect(readFileSync(join(home, ".ssh", "config"), "utf8")).toBe(config);
  expect((await beaker(["git", "logout", "--yes"])).exitCode).toBe(0);
  expect(existsSync(key)).toBe(true);
  await beaker(["git", "logout", "--yes", "--ssh"]);
  expect(existsSync(key)).toBe(false);
});

test("bad input: a clear line, exit 2, and the token never echoed", async () => {
  const bad = await beaker(["git", "setup", "--yes", "--name", "A", "--email", "a@b.org", "--token-stdin"], { stdin: "ghp_short-and-wrong\n" });
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toMatch(/^beaker: --token-stdin: GitHub tokens start with ghp_/);
  expect(bad.stderr).not.toContain("short-and-wrong");
  const email = await beaker(["git", "setup", "--yes", "--name", "A", "--email", "not-an-email", "--ssh"]);
  expect(email.stderr).toMatch(/^beaker: --email not-an-email: that does not look like an email address/);
  const noTty = await beaker(["git", "setup"]);
  expect(noTty.exitCode).toBe(2);
  expect(noTty.stderr).toMatch(/there is no terminal; for scripts: --yes/);
  expect(existsSync(join(home, ".gitconfig"))).toBe(false);
});

describe("the wizard under tmux, as a new user meets it", () => {
  // A tmux server per test, killed at its end.
  let tmux: Tmux;
  const screen = () => tmux.screen("w");
  const waitFor = (re: RegExp) => tmux.waitFor("w", re);
  const type = (text: string) => tmux.type("w", text);
  const key = (...keys: string[]) => tmux.keys("w", ...keys);
  const start = (args: string) => {
    const hist = join(home, ".bash_history");
    tmux = new Tmux("git");
    tmux.start("w", ["setpriv", `--reuid=${testUser}`, `--regid=${testUser}`, "--init-groups", "env", "-u", "CI", `HOME=${home}`, "TERM=xterm",
      `PATH=${process.env.PATH}`, `GIT_SSL_CAINFO=${server.caFile}`, `HISTFILE=${hist}`, "bash", "--norc", "-i"], { cols: 150, rows: 40 });
    tmux.line("w", `${beakerBinary} git setup ${args}; echo rc=$?`);
  };
  const finish = () => tmux.kill();

  test.each([
    ["cache", 0],
    ["store", 1],
    ["beaker", 2],
  ] as const)("token kept by %s: every prompt answered, then push works", async (helper, position) => {
    try {
      start(`--host ${server.host}`);
      await waitFor(/Your name, for commits/);
      type("Grace Hopper");
      key("Enter");
      await waitFor(/Your email, for commits/);
      type("grace@example");
      key("Enter");
      await waitFor(/does not look like an email address/);
      type(".org");
      key("Enter");
      await waitFor(/How should git prove who you are/);
      key("Enter");
      await waitFor(/Token for/);
      type(token);
      key("Enter");
      await waitFor(/Where should git keep it/);
      // The list starts on "beaker" (the third entry).
      for (let i = 2; i > position; i--) key("Up");
      key("Enter");
      if (helper === "cache") {
        await waitFor(/Forget it after how many seconds/);
        key("Enter");
      }
      await waitFor(/rc=0/);
      expect(screen()).not.toContain(token);
      expect(await gitConfig()).toContain("user.name=Grace Hopper\nuser.email=grace@example.org\n");
      const expected = helper === "cache" ? "cache --timeout 3600" : helper === "store" ? "store" : `${beakerBinary} git credential`;
      expect(await gitConfig()).toContain(`credential.https://${server.host}.helper=${expected}\n`);
      expect((await pushOnly("project", `wizard ${helper}`)).exitCode).toBe(0);
      // The marker's output differs from the line typed, so seeing it means history -a has run.
      tmux.line("w", "history -a; echo history-$((1 + 1))");
      await waitFor(/^history-2$/m);
      const history = existsSync(join(home, ".bash_history")) ? readFileSync(join(home, ".bash_history"), "utf8") : "";
      expect(history).not.toContain(token);
    } finally {
      finish();
    }
  }, 60_000);

  test("SSH key with a passphrase", async () => {
    try {
      start("");
      await waitFor(/Your name, for commits/);
      type("Grace");
      key("Enter");
      await waitFor(/Your email/);
      type("grace@example.org");
      key("Enter");
      await waitFor(/How should git prove who you are/);
      key("Down");
      key("Enter");
      await waitFor(/Passphrase for the key/);
      type("correct horse");
      key("Enter");
      await waitFor(/The passphrase again/);
      type("correct horse");
      key("Enter");
      await waitFor(/rc=0/);
      expect(screen()).toContain("ssh-ed25519 ");
      const key_ = join(home, ".ssh", "id_ed25519");
      const wrong = await asUser(["ssh-keygen", "-y", "-P", "wrong", "-f", key_]);
      expect(wrong.exitCode).not.toBe(0);
      const right = await asUser(["ssh-keygen", "-y", "-P", "correct horse", "-f", key_]);
      expect(right.exitCode).toBe(0);
    } finally {
      finish();
    }
  }, 60_000);

  test("Ctrl-C at a prompt changes nothing and exits 3", async () => {
    try {
      start("");
      await waitFor(/Your name, for commits/);
      type("Someone");
      key("Enter");
      await waitFor(/Your email/);
      key("C-c");
      await waitFor(/rc=3/);
      expect(screen()).toContain("Nothing was changed.");
      expect(existsSync(join(home, ".gitconfig"))).toBe(false);
    } finally {
      finish();
    }
  }, 30_000);
});

test("inside a session, the helper path git was given resolves, and answers from the same home", async () => {
  expect((await scripted("beaker")).exitCode).toBe(0);
  await using executor = new TestExecutor({ nodeName: testNodeName(import.meta.file) });
  executor.removeLeftovers();
  await executor.start();
  const r = await executor.run(["session", "create", "--gpus", "0", "--", "/usr/local/bin/beaker", "git", "credential", "get"], {
    user: testUser,
    stdin: `protocol=https\nhost=${server.host}\n\n`,
  });
  expect(r).toEqual({ exitCode: 0, stdout: `username=x-access-token\npassword=${token}\n`, stderr: "" });
}, 60_000);
