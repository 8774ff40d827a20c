/** The compiled binary as a user meets it: version, usage errors, help, and the config store. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { program } from "../../src/cli/commands/index.ts";
import { walkCommands } from "../../src/cli/command.ts";
import { hostTarget } from "../../scripts/host-target.ts";
import { beakerBinary, removeDir, runBeaker, scopedDir, tempDir } from "../harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
function configEnv() {
  const home = tempDir("beaker-home-");
  dirs.push(home);
  return { home, path: join(home, ".beaker", "config.yml"), env: { HOME: home } };
}

describe("version", () => {
  test("--version prints version, commit and platform", async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8"));
    const result = await runBeaker(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^beaker ${pkg.version.replace(/\./g, "\\.")} \\([0-9a-f]{7}(-dirty)?, ${hostTarget()}\\)\\n$`));
  });

  test("version --json", async () => {
    const result = await runBeaker(["version", "--json"]);
    expect(JSON.parse(result.stdout)).toEqual({ version: expect.any(String), commit: expect.stringMatching(/^[0-9a-f]{7}/), target: hostTarget() });
  });
});

describe("usage errors exit 2 with usage", () => {
  test.each([
    [["nosuchcommand"], /unknown command "nosuchcommand" for "beaker"/],
    [["confg", "list"], /did you mean "config"\?/],
    [["config", "lst"], /unknown command "lst" for "beaker config"; did you mean "list"\?/],
    [["config", "list", "--jsn"], /unknown flag --jsn; did you mean --json\?/],
    [["config", "get"], /missing argument/],
    [["config", "get", "a", "b"], /unexpected argument/],
    [["config", "set", "colour", "x"], /unknown config key "colour"/],
    [["node", "gpus", "--", "ls"], /takes no command after "--"/],
  ])("beaker %p", async (args, message) => {
    const result = await runBeaker(args);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage:/);
    expect(result.stdout).toBe("");
  });
});

const commandPaths = program.nouns.flatMap((n) => walkCommands(n).map((c) => c.path));
const nounPaths = [...new Set(commandPaths.flatMap((p) => p.slice(0, -1).map((_, i) => p.slice(0, i + 1).join(" "))))].map((s) => s.split(" "));

describe("--help on every command", () => {
  const paths = [
    ...nounPaths,
    ...commandPaths,
    ...program.commands.map((c) => [c.name]),
  ];
  test.each(paths)("beaker %s ... --help", async (...path) => {
    const result = await runBeaker([...path, "--help"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`beaker ${path.join(" ")}`);
  });
});

describe("config store", () => {
  test("set creates a 0700 directory and a 0600 file; get and list read it back", async () => {
    const { home, path, env } = configEnv();
    const set = await runBeaker(["config", "set", "default_image", "x"], { env });
    expect(set.exitCode).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, ".beaker")).mode & 0o777).toBe(0o700);
    expect((await runBeaker(["config", "get", "default_image"], { env })).stdout).toBe("x\n");
    expect(JSON.parse((await runBeaker(["config", "list", "--json"], { env })).stdout)).toEqual({ default_image: "x" });
    const unset = await runBeaker(["config", "unset", "default_image"], { env });
    expect(unset.exitCode).toBe(0);
    expect((await runBeaker(["config", "get", "default_image"], { env })).exitCode).toBe(5);
  });

  test("BEAKER_CONFIG overrides the path; values are validated", async () => {
    const { home } = configEnv();
    const path = join(home, "elsewhere", "c.yml");
    expect((await runBeaker(["config", "set", "server", "not a url"], { env: { BEAKER_CONFIG: path } })).exitCode).toBe(2);
    expect(existsSync(path)).toBe(false);
    expect((await runBeaker(["config", "set", "server", "https://beaker.example.org"], { env: { BEAKER_CONFIG: path } })).exitCode).toBe(0);
    expect(readFileSync(path, "utf8")).toContain("server: https://beaker.example.org");
  });

  test("a token comes from stdin, is stored, and is only ever shown masked", async () => {
    const { path, env } = configEnv();
    const token = "bkr_0123456789abcdefSECRET9876";
    const refused = await runBeaker(["config", "set", "user_token", token], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).not.toContain(token);
    const set = await runBeaker(["config", "set", "user_token", "-"], { env, stdin: `${token}\n` });
    expect(set.exitCode).toBe(0);
    expect(readFileSync(path, "utf8")).toContain(token);
    for (const args of [["config", "list"], ["config", "list", "--json"], ["config", "get", "user_token"]]) {
      const result = await runBeaker(args, { env });
      expect(result.stdout + result.stderr).not.toContain(token);
      expect(result.stdout).toContain("9876");
    }
    const fromEnv = await runBeaker(["config", "list"], { env: { ...env, BEAKER_TOKEN: "env-token-abcdefgh1234" } });
    expect(fromEnv.stdout).toMatch(/user_token\s+\*+1234\s+BEAKER_TOKEN/);
  });

  test("looser permissions are tightened with a warning", async () => {
    const { path, env } = configEnv();
    await runBeaker(["config", "set", "default_image", "x"], { env });
    chmodSync(path, 0o644);
    const result = await runBeaker(["config", "list"], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toMatch(/was readable by others \(mode 644\); changed it to 600/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("a corrupt file is named with its line, and is not overwritten", async () => {
    const { home, path, env } = configEnv();
    mkdirSync(join(home, ".beaker"), { mode: 0o700 });
    const corrupt = "server: https://a.example\ndefault_image: [unclosed\nother: 1\n";
    writeFileSync(path, corrupt, { mode: 0o600 });
    for (const args of [["config", "list"], ["config", "set", "default_image", "y"]]) {
      const result = await runBeaker(args, { env });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^beaker: ${path.replace(/[.]/g, "\\.")} line \\d+: not valid YAML`));
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(readFileSync(path, "utf8")).toBe(corrupt);
  });

  test("concurrent writers lose nothing and never corrupt the file", async () => {
    const { path, env } = configEnv();
    const keys = ["default_image", "server", "detach_keys", "update_url"];
    const values = (i: number) => [`image-${i}:latest`, `https://s${i}.example`, "ctrl-p,ctrl-q", `https://u${i}.example`];
    const runs = Array.from({ length: 16 }, (_, i) => runBeaker(["config", "set", keys[i % 4]!, values(i)[i % 4]!], { env }));
    const results = await Promise.all(runs);
    expect(results.map((r) => r.exitCode)).toEqual(Array(16).fill(0));
    const final = JSON.parse((await runBeaker(["config", "list", "--json"], { env })).stdout);
    expect(Object.keys(final).sort()).toEqual([...keys].sort());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

test("the binary is a single self-contained file: a copy alone in an empty folder runs with an empty environment", async () => {
  using dir = scopedDir("beaker-alone-");
  const alone = join(dir.path, "beaker");
  copyFileSync(beakerBinary, alone);
  chmodSync(alone, 0o755);
  expect(readdirSync(dir.path)).toEqual(["beaker"]);
  // No node_modules (nor package.json) in the folder or any folder above it, where a runtime could look.
  for (let d = dir.path; ; d = dirname(d)) {
    expect([existsSync(join(d, "node_modules")), existsSync(join(d, "package.json"))]).toEqual([false, false]);
    if (d === dirname(d)) break;
  }
  const run = async (args: string[], stdin?: string) => {
    const proc = Bun.spawn([alone, ...args], { env: {}, cwd: dir.path, stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  };
  // What `env: {}` gives a child: nothing at all.
  const env = Bun.spawn(["/usr/bin/env"], { env: {}, stdout: "pipe" });
  expect(await new Response(env.stdout).text()).toBe("");

  expect(await run(["--version"])).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(new RegExp(`^beaker \\S+ \\(\\S+, ${hostTarget()}\\)\\n$`)) });
  expect((await run(["session", "create", "--help"])).stdout).toContain("beaker session create");
  // A command that loads a dependency on first use (the prompt library) before it answers.
  const git = await run(["git", "setup", "--yes", "--name", "A", "--email", "a@b.org", "--token-stdin"], "ghp_short\n");
  expect(git).toMatchObject({ exitCode: 2, stderr: expect.stringMatching(/^beaker: --token-stdin: GitHub tokens start with ghp_/) });
  expect(readdirSync(dir.path)).toEqual(["beaker"]);
});

describe("executor install", () => {
  test("writes a config the executor accepts (kept when present) and a systemd unit; refuses non-root", async () => {
    const dir = tempDir("beaker-install-");
    dirs.push(dir);
    const config = join(dir, "etc", "beaker", "config.yml");
    const unitDir = join(dir, "systemd");
    const first = await runBeaker(["executor", "install", "--config", config, "--unit-dir", unitDir]);
    expect(first.exitCode).toBe(0);
    expect(first.stderr).toContain("systemctl daemon-reload && systemctl enable --now beaker-executor");
    const unit = readFileSync(join(unitDir, "beaker-executor.service"), "utf8");
    expect(unit).toContain(`ExecStart=${beakerBinary} executor run --config ${config}\n`);
    expect(unit).toContain("KillMode=process");
    const { parseExecutorConfig } = await import("../../src/config/executor.ts");
    const { parseYamlMapping } = await import("../../src/config/yaml-file.ts");
    expect(parseExecutorConfig(parseYamlMapping(readFileSync(config, "utf8"), config), config).socket).toBe("/run/beaker/executor.sock");
    writeFileSync(config, "nodeName: mine\n");
    const second = await runBeaker(["executor", "install", "--config", config, "--unit-dir", unitDir]);
    expect(second.stderr).toContain(`kept the existing ${config}`);
    expect(readFileSync(config, "utf8")).toBe("nodeName: mine\n");
    const user = Bun.spawnSync(["setpriv", "--reuid=beaker-test-user", "--regid=beaker-test-user", "--init-groups", beakerBinary, "executor", "install", "--config", join(dir, "x.yml")], { stderr: "pipe" });
    expect(user.exitCode).toBe(1);
    expect(user.stderr.toString()).toBe("beaker: run 'sudo beaker executor install': it writes to /etc\n");
  });
});
