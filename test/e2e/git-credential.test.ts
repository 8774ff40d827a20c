/**
 * Beaker's git credential helper against git's helper contract (git-credential(1), gitcredentials(7), and what git's
 * own `store` does), driven through real `git credential fill|approve|reject` in a throwaway HOME. A fill the helper
 * does not answer reaches the askpass program, whose prompts show on stderr.
 */
import { afterAll, beforeEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beakerBinary, removeDir, tempDir } from "../harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
let home: string;
let askpass: string;
const storeFile = () => join(home, ".beaker", "git-credentials");

beforeEach(() => {
  home = tempDir("beaker-git-cred-");
  dirs.push(home);
  askpass = join(home, "askpass");
  writeFileSync(askpass, '#!/bin/sh\necho "askpass: $*" >&2\ncase "$*" in Username*) echo askpass-username ;; *) echo askpass-password ;; esac\n');
  chmodSync(askpass, 0o755);
  writeFileSync(join(home, ".gitconfig"), `[credential]\n\thelper = "!${beakerBinary} git credential"\n`);
});

/** `git credential ACTION` with the fields on stdin; stdout parsed back into fields. */
async function git(action: "fill" | "approve" | "reject", fields: string, config: string[] = []) {
  const proc = Bun.spawn(["git", ...config.flatMap((c) => ["-c", c]), "credential", action], {
    env: { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: "1", GIT_ASKPASS: askpass, LANG: "C" },
    cwd: home,
    stdin: new Blob([`${fields.trim().split(/\s+/).join("\n")}\n\n`]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ action, exitCode, stderr: stderr.replace(/^askpass: .*\n/gm, "") }).toEqual({ action, exitCode: 0, stderr: "" });
  return { out: stdout, prompts: stderr.split("\n").filter(Boolean) };
}

const approve = (fields: string, config?: string[]) => git("approve", fields, config);
const reject = (fields: string) => git("reject", fields);

test("nothing stored: the helper answers nothing and git asks", async () => {
  const r = await git("fill", "protocol=https host=example.com");
  expect(r.out).toBe("protocol=https\nhost=example.com\nusername=askpass-username\npassword=askpass-password\n");
  expect(r.prompts).toEqual(["askpass: Username for 'https://example.com': ", "askpass: Password for 'https://askpass-username@example.com': "]);
  expect(existsSync(storeFile())).toBe(false);
});

test("an approved credential answers the same protocol and host (any case), in a 0600 file; nothing else", async () => {
  await approve("protocol=https host=example.com username=store-user password=store-pass");
  expect(statSync(storeFile()).mode & 0o777).toBe(0o600);
  expect(statSync(join(home, ".beaker")).mode & 0o777).toBe(0o700);
  expect(await git("fill", "protocol=https host=example.com")).toEqual({ out: "protocol=https\nhost=example.com\nusername=store-user\npassword=store-pass\n", prompts: [] });
  expect((await git("fill", "protocol=https host=EXAMPLE.com")).out).toContain("password=store-pass\n");
  expect((await git("fill", "protocol=http host=example.com")).out).toContain("password=askpass-password\n");
  expect((await git("fill", "protocol=https host=other.tld")).out).toContain("password=askpass-password\n");
  const otherUser = await git("fill", "protocol=https host=example.com username=other");
  expect(otherUser).toEqual({ out: "protocol=https\nhost=example.com\nusername=other\npassword=askpass-password\n", prompts: ["askpass: Password for 'https://other@example.com': "] });
  expect(readFileSync(storeFile(), "utf8")).not.toContain("askpass");
});

test("with credential.useHttpPath a credential belongs to its path; without it, git asks for the host alone", async () => {
  const byPath = ["credential.useHttpPath=true"];
  await approve("protocol=http host=path.tld path=foo.git username=user password=pass", byPath);
  expect((await git("fill", "protocol=http host=path.tld path=bar.git", byPath)).prompts).toEqual([
    "askpass: Username for 'http://path.tld/bar.git': ",
    "askpass: Password for 'http://askpass-username@path.tld/bar.git': ",
  ]);
  expect((await git("fill", "protocol=http host=path.tld path=foo.git", byPath)).out).toBe("protocol=http\nhost=path.tld\npath=foo.git\nusername=user\npassword=pass\n");
  // git leaves the path out of the query without useHttpPath; a query that names no path matches any (as git's store).
  expect((await git("fill", "protocol=http host=path.tld path=bar.git")).out).toBe("protocol=http\nhost=path.tld\nusername=user\npassword=pass\n");
  // A credential kept for the whole host does not answer a query for one path.
  await approve("protocol=https host=host.tld username=u password=whole-host");
  expect((await git("fill", "protocol=https host=host.tld path=x.git", byPath)).out).toContain("password=askpass-password\n");
});

test("several users per host: each keeps its password, the newest answers a query without a user, erasing one keeps the other", async () => {
  await approve("protocol=https host=example.com username=user1 password=pass1");
  await approve("protocol=https host=example.com username=user2 password=pass2");
  expect((await git("fill", "protocol=https host=example.com username=user1")).out).toContain("username=user1\npassword=pass1\n");
  expect((await git("fill", "protocol=https host=example.com username=user2")).out).toContain("username=user2\npassword=pass2\n");
  expect((await git("fill", "protocol=https host=example.com")).out).toContain("username=user2\npassword=pass2\n");
  await approve("protocol=https host=example.com username=user1 password=pass1-new");
  expect((await git("fill", "protocol=https host=example.com")).out).toContain("username=user1\npassword=pass1-new\n");
  expect(JSON.parse(readFileSync(storeFile(), "utf8")).credentials).toHaveLength(2);

  await reject("protocol=https host=example.com username=user1");
  expect((await git("fill", "protocol=https host=example.com username=user1")).prompts).toEqual(["askpass: Password for 'https://user1@example.com': "]);
  expect((await git("fill", "protocol=https host=example.com username=user2")).out).toContain("password=pass2\n");
});

test("reject without a user forgets the host, and only that host", async () => {
  await approve("protocol=https host=example.com username=user1 password=pass1");
  await approve("protocol=https host=example.com username=user2 password=pass2");
  await approve("protocol=https host=keep.tld username=user1 password=kept");
  await reject("protocol=https host=example.com");
  expect((await git("fill", "protocol=https host=example.com")).prompts).toHaveLength(2);
  expect((await git("fill", "protocol=https host=keep.tld")).out).toContain("password=kept\n");
});

test("an empty username (and password) is kept and given back", async () => {
  await approve("protocol=https host=sso.tld username= password=");
  expect(await git("fill", "protocol=https host=sso.tld")).toEqual({ out: "protocol=https\nhost=sso.tld\nusername=\npassword=\n", prompts: [] });
  // An empty username is a name: it does not answer for another user, and erasing it leaves the others.
  await approve("protocol=https host=sso.tld username=named password=p");
  await reject("protocol=https host=sso.tld username=");
  expect((await git("fill", "protocol=https host=sso.tld")).out).toContain("username=named\npassword=p\n");
});

test("a file written before version 2 (one credential per host) is read, and kept when a second user is added", async () => {
  mkdirSync(join(home, ".beaker"), { mode: 0o700 });
  const old = { credentials: [{ protocol: "https", host: "example.com", username: "x-access-token", password: "old-token" }] };
  writeFileSync(storeFile(), `${JSON.stringify(old, null, 2)}\n`, { mode: 0o600 });
  expect((await git("fill", "protocol=https host=example.com")).out).toContain("username=x-access-token\npassword=old-token\n");
  await approve("protocol=https host=example.com username=second password=p2");
  expect(JSON.parse(readFileSync(storeFile(), "utf8"))).toEqual({
    version: 2,
    credentials: [
      { protocol: "https", host: "example.com", username: "second", password: "p2" },
      { protocol: "https", host: "example.com", username: "x-access-token", password: "old-token" },
    ],
  });
  expect(statSync(storeFile()).mode & 0o777).toBe(0o600);
});

test("concurrent approvals are all kept (the file is locked and replaced whole)", async () => {
  await Promise.all(Array.from({ length: 8 }, (_, i) => approve(`protocol=https host=example.com username=user${i} password=pass${i}`)));
  const kept = JSON.parse(readFileSync(storeFile(), "utf8")).credentials as Array<{ username: string }>;
  expect(kept.map((c) => c.username).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `user${i}`));
  expect(existsSync(`${storeFile()}.lock`)).toBe(false);
});

test("a corrupt file is named, never overwritten, and git falls back to asking", async () => {
  mkdirSync(join(home, ".beaker"), { mode: 0o700 });
  writeFileSync(storeFile(), "{ not json", { mode: 0o600 });
  const proc = Bun.spawnSync(["git", "credential", "fill"], {
    env: { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: "1", GIT_ASKPASS: askpass },
    stdin: new TextEncoder().encode("protocol=https\nhost=example.com\n\n"),
  });
  expect(proc.stdout.toString()).toContain("password=askpass-password\n");
  expect(proc.stderr.toString()).toContain(`beaker: cannot read ${storeFile()}`);
  const store = Bun.spawnSync([beakerBinary, "git", "credential", "store"], { env: { PATH: process.env.PATH, HOME: home }, stdin: new TextEncoder().encode("protocol=https\nhost=example.com\nusername=u\npassword=p\n\n") });
  expect(store.exitCode).toBe(1);
  expect(readFileSync(storeFile(), "utf8")).toBe("{ not json");
});
