/**
 * The git wizard's children, seen through the spawner every git command goes through: the token (and an SSH
 * passphrase) reach git only on stdin, never in any child's argv or environment, where `ps` or /proc could show them.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Git, type GitRun } from "../../src/git/git.ts";
import { applySetup, logout, type Helper, type SetupAnswers, type SetupDeps } from "../../src/git/setup.ts";
import { BeakerCredentialStore } from "../../src/git/store.ts";
import { removeDir, tempDir } from "../harness.ts";

const homes: string[] = [];
afterAll(() => homes.forEach(removeDir));

const token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
const passphrase = "correct horse battery";

interface Child {
  argv: string[];
  env: Record<string, string>;
  stdin: string | undefined;
}

/** Deps whose git records every child instead of running it, answering like a git with an empty global config. */
function recordingDeps(): { deps: SetupDeps; children: Child[] } {
  const home = tempDir("beaker-git-home-");
  homes.push(home);
  const children: Child[] = [];
  const spawner = (argv: string[], env: Record<string, string>, stdin: string | undefined): GitRun => {
    children.push({ argv, env, stdin });
    const reading = argv.includes("--get") || argv.includes("--get-all");
    return { code: reading ? 1 : 0, stdout: "", stderr: "" };
  };
  const git = new Git({ HOME: home, PATH: "/usr/bin:/bin" }, "git", spawner);
  return { deps: { git, home, store: new BeakerCredentialStore(`${home}/.beaker/git-credentials`), beakerCommand: "/usr/local/bin/beaker" }, children };
}

const tokenAnswers = (helper: Helper): SetupAnswers => ({
  protocol: "https",
  host: "git.example.org",
  name: "Ada Lovelace",
  email: "ada@example.org",
  auth: { kind: "token", username: "x-access-token", token, helper, timeoutSeconds: 3600 },
});

function expectNoSecretOutsideStdin(children: Child[], secret: string): void {
  for (const child of children) {
    expect(child.argv.filter((arg) => arg.includes(secret))).toEqual([]);
    expect(Object.entries(child.env).filter(([key, value]) => key.includes(secret) || value.includes(secret))).toEqual([]);
  }
}

describe.each(["cache", "store", "beaker"] as const)("setup with the %s helper", (helper) => {
  test("the token goes to `git credential approve` on stdin and nowhere else", async () => {
    const { deps, children } = recordingDeps();
    await applySetup(tokenAnswers(helper), deps);
    expect(children.map((c) => c.argv[0])).toEqual(children.map(() => "git"));
    expectNoSecretOutsideStdin(children, token);
    const carrying = children.filter((c) => c.stdin?.includes(token));
    expect(carrying.map((c) => c.argv)).toEqual([["git", "credential", "approve"]]);
    expect(carrying[0]!.stdin).toBe(`protocol=https\nhost=git.example.org\nusername=x-access-token\npassword=${token}\n\n`);
    // git never prompts and never asks another program for the token.
    for (const child of children) expect(child.env).toMatchObject({ GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "" });
  });
});

test("logout names only the host: the token is in no child at all", async () => {
  const { deps, children } = recordingDeps();
  await logout(deps, "https", "git.example.org", { removeSshKey: false });
  expect(children.length).toBeGreaterThan(0);
  for (const child of children) expect(JSON.stringify(child)).not.toContain(token);
  expect(children.find((c) => c.argv.join(" ") === "git credential reject")?.stdin).toBe("protocol=https\nhost=git.example.org\n\n");
});

test("an SSH key with a passphrase: the passphrase reaches no child", async () => {
  const { deps, children } = recordingDeps();
  const answers: SetupAnswers = { ...tokenAnswers("beaker"), auth: { kind: "ssh", writeKey: true, passphrase, comment: "ada@node" } };
  const { publicKey } = await applySetup(answers, deps);
  expect(publicKey).toMatch(/^ssh-ed25519 /);
  expect(children.length).toBeGreaterThan(0);
  for (const child of children) expect(JSON.stringify(child)).not.toContain(passphrase);
});
