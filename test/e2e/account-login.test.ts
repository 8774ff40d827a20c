/** `beaker account login --server URL` keeps the server it checked the token against, so what follows talks to it. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeDir, runBeaker, tempDir } from "../harness.ts";
import { TestServer } from "../server-harness.ts";

const first = new TestServer();
const second = new TestServer();
const dirs: string[] = [];
let ada: string;
let zed: string;

beforeAll(async () => {
  ada = await first.createUser("ada");
  zed = await second.createUser("zed");
  await Promise.all([first.start(), second.start()]);
});
afterAll(async () => {
  await Promise.all([first.cleanup(), second.cleanup()]);
  dirs.forEach(removeDir);
});

/** A user with their own config file; no executor to fall back on. */
function user(config?: string) {
  const home = tempDir("beaker-login-");
  dirs.push(home);
  const path = join(home, ".beaker", "config.yml");
  if (config !== undefined) {
    mkdirSync(join(home, ".beaker"), { mode: 0o700 });
    writeFileSync(path, config, { mode: 0o600 });
  }
  const env = { HOME: home, BEAKER_CONFIG: path, BEAKER_EXECUTOR_SOCKET: join(home, "no-executor.sock") };
  return { path, run: (args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) => runBeaker(args, { env: { ...env, ...options.env }, stdin: options.stdin }) };
}

test("login against a second server replaces the first in the config, says so, and whoami works right after", async () => {
  const u = user();
  expect(await u.run(["account", "login", "--server", first.url, "--token-stdin"], { stdin: `${ada}\n` })).toEqual({ exitCode: 0, stdout: "", stderr: "Logged in as ada\n" });
  expect(readFileSync(u.path, "utf8")).toContain(`server: ${first.url}\n`);
  expect((await u.run(["account", "whoami"])).stdout).toBe(`ada on ${first.url}\n`);

  const login = await u.run(["account", "login", "--server", second.url, "--token-stdin"], { stdin: `${zed}\n` });
  expect(login).toEqual({ exitCode: 0, stdout: "", stderr: `Logged in as zed\nsaved the server ${second.url} in ${u.path} (it was ${first.url})\n` });
  const config = readFileSync(u.path, "utf8");
  expect(config).toContain(`server: ${second.url}\n`);
  expect(config).not.toContain(first.url);
  expect(statSync(u.path).mode & 0o777).toBe(0o600);
  expect(await u.run(["account", "whoami"])).toEqual({ exitCode: 0, stdout: `zed on ${second.url}\n`, stderr: "" });

  // Logging in again to the same server (written with a trailing slash) replaces nothing, so says nothing more.
  expect((await u.run(["account", "login", "--server", `${second.url}/`, "--token-stdin"], { stdin: `${zed}\n` })).stderr).toBe("Logged in as zed\n");
});

test("an unreachable server in the config (the reported case) no longer survives a login elsewhere", async () => {
  const u = user("server: http://127.0.0.1:9\n");
  const login = await u.run(["account", "login", "--server", second.url, "--token-stdin"], { stdin: `${zed}\n` });
  expect(login.exitCode).toBe(0);
  expect(login.stderr).toBe(`Logged in as zed\nsaved the server ${second.url} in ${u.path} (it was http://127.0.0.1:9)\n`);
  expect(await u.run(["account", "whoami"])).toEqual({ exitCode: 0, stdout: `zed on ${second.url}\n`, stderr: "" });
});

test("a refused token changes nothing; BEAKER_SERVER pointing elsewhere is named after a login", async () => {
  const u = user(`server: ${first.url}\nuser_token: ${ada}\n`);
  const refused = await u.run(["account", "login", "--server", second.url, "--token-stdin"], { stdin: `${ada}\n` });
  expect(refused.exitCode).toBe(4);
  expect(readFileSync(u.path, "utf8")).toBe(`server: ${first.url}\nuser_token: ${ada}\n`);

  const login = await u.run(["account", "login", "--server", second.url, "--token-stdin"], { stdin: `${zed}\n`, env: { BEAKER_SERVER: first.url } });
  expect(login.stderr).toBe(
    `Logged in as zed\nsaved the server ${second.url} in ${u.path} (it was ${first.url})\nnote: BEAKER_SERVER=${first.url} in your environment still overrides it\n`,
  );
});
