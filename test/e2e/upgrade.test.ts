/**
 * `beaker upgrade` with real binaries of two versions, a release signed with a test key, served by `beaker server run
 * --releases` (and by a misbehaving server for the faults). Every failure leaves the installed binary byte-identical.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { eventually, removeDir, tempDir } from "../harness.ts";
import { makeReleaseKeys } from "../release-keys.ts";
import { TestServer } from "../server-harness.ts";
import { testUser } from "../executor-harness.ts";
import { signManifest } from "../../src/update/manifest.ts";
import { buildBeaker, NodeExecutor, runBinary } from "../upgrade-harness.ts";

const work = tempDir("beaker-upgrade-");
const releases = join(work, "releases");
let keys: { privateKeyFile: string; publicKey: string };
let oldBinary: string;
let server: TestServer;
let oldDigest: string;

const sha = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

/** A fresh install of the old binary in its own folder. */
function install(dir = join(work, `inst-${crypto.randomUUID().slice(0, 8)}`)): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "beaker");
  copyFileSync(oldBinary, path);
  chmodSync(path, 0o755);
  return path;
}

const run = (binary: string, args: string[], env: Record<string, string> = {}, user?: string) => runBinary(binary, args, { HOME: join(work, "home"), BEAKER_EXECUTOR_SOCKET: join(work, "no.sock"), ...env }, user);
const version = async (binary: string) => (await run(binary, ["--version"])).stdout.split(" ")[1];
const leftovers = (binary: string) => readdirSync(join(binary, "..")).filter((f) => f.startsWith("."));

beforeAll(async () => {
  keys = await makeReleaseKeys(work);
  buildBeaker(["--out", join(work, "old"), "--version", "0.1.0"], keys);
  oldBinary = join(work, "old", "beaker");
  oldDigest = sha(oldBinary);
  buildBeaker(["--release", "--out", releases, "--version", "0.2.0", "--targets", "linux-x64,linux-x64-baseline"], keys);
  server = new TestServer(undefined, releases);
  await server.start();
}, 240_000);
afterAll(async () => {
  await server.cleanup();
  removeDir(work);
});

const url = () => ({ BEAKER_UPDATE_URL: `${server.url}/releases` });

test("dry run says what would change; upgrade installs the new version and keeps the old; rollback swaps back", async () => {
  const binary = install();
  const dry = await run(binary, ["upgrade", "--dry-run"], url());
  expect(dry.exitCode).toBe(0);
  expect(dry.stderr).toMatch(/^beaker 0\.1\.0 -> 0\.2\.0 \(stable, linux-x64(-baseline)?, \d+\.\d MB\) at /);
  expect(dry.stderr).toContain("dry run: nothing changed");
  expect(sha(binary)).toBe(oldDigest);

  const up = await run(binary, ["upgrade", "--yes"], url());
  expect(up.stderr).toContain(`upgraded to 0.2.0; the previous beaker is kept as ${binary}.old (undo: beaker upgrade --rollback)`);
  expect(up.exitCode).toBe(0);
  expect(await version(binary)).toBe("0.2.0");
  expect(sha(`${binary}.old`)).toBe(oldDigest);
  expect(leftovers(binary)).toEqual([]);

  const again = await run(binary, ["upgrade", "--yes"], url());
  expect(again).toMatchObject({ exitCode: 0, stderr: "beaker 0.2.0 is up to date (stable)\n" });

  const back = await run(binary, ["upgrade", "--rollback", "--yes"], url());
  expect(back.exitCode).toBe(0);
  expect(back.stderr).toBe(`rolled back to 0.1.0; 0.2.0 is kept as ${binary}.old\n`);
  expect(sha(binary)).toBe(oldDigest);
  expect(await version(`${binary}.old`)).toBe("0.2.0");

  const noOld = install();
  expect(await run(noOld, ["upgrade", "--rollback", "--yes"])).toMatchObject({ exitCode: 5, stderr: `beaker: there is no previous version to roll back to (${noOld}.old does not exist)\n` });
}, 120_000);

/** A release folder copy with one change, served by its own server; returns the URL. */
async function variant(name: string, change: (dir: string) => Promise<void> | void): Promise<{ url: string; stop: () => void }> {
  const dir = join(work, `variant-${name}`);
  cpSync(releases, dir, { recursive: true });
  await change(join(dir, "stable"));
  const s = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req) => {
      const path = join(dir, new URL(req.url).pathname.replace(/^\/releases\//, ""));
      return existsSync(path) ? new Response(Bun.file(path)) : new Response("not found", { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${s.port}/releases`, stop: () => s.stop(true) };
}

async function resign(channelDir: string, edit: (m: { targets: Record<string, { sha256: string; size: number }> }) => void) {
  const path = join(channelDir, "manifest.json");
  const manifest = JSON.parse(readFileSync(path, "utf8"));
  edit(manifest);
  const body = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(path, body);
  writeFileSync(`${path}.sig`, `${await signManifest(body, readFileSync(keys.privateKeyFile, "utf8"))}\n`);
}

describe("every fault leaves the installed binary byte-identical, runnable, and says why", () => {
  const cases: Array<[string, (dir: string) => Promise<void> | void, RegExp]> = [
    [
      "a tampered binary",
      (dir) => {
        for (const t of ["linux-x64", "linux-x64-baseline"]) {
          const f = join(dir, "0.2.0", `beaker-${t}`);
          const bytes = readFileSync(f);
          bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
          writeFileSync(f, bytes);
        }
      },
      /does not match the manifest's SHA-256: refusing it/,
    ],
    ["a wrong hash (signed)", (dir) => resign(dir, (m) => Object.values(m.targets).forEach((t) => (t.sha256 = "0".repeat(64)))), /does not match the manifest's SHA-256/],
    [
      "a bad signature",
      (dir) => writeFileSync(join(dir, "manifest.json"), readFileSync(join(dir, "manifest.json"), "utf8").replace('"0.2.0"', '"0.2.1"')),
      /signature does not verify against this beaker's release key: refusing it/,
    ],
    ["a truncated download", (dir) => resign(dir, (m) => Object.values(m.targets).forEach((t) => (t.size += 1000))), /truncated: \d+ of \d+ bytes/],
    ["a manifest signed by another key", async (dir) => {
      const other = await makeReleaseKeys(tempDir());
      const body = readFileSync(join(dir, "manifest.json"));
      writeFileSync(join(dir, "manifest.json.sig"), await signManifest(new Uint8Array(body), readFileSync(other.privateKeyFile, "utf8")));
    }, /signature does not verify/],
  ];
  test.each(cases)("%s", async (_name, change, message) => {
    const v = await variant(_name.replace(/\W+/g, "-"), change);
    try {
      const binary = install();
      const r = await run(binary, ["upgrade", "--yes"], { BEAKER_UPDATE_URL: v.url });
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n").at(-1)).toMatch(/^beaker: /);
      expect(sha(binary)).toBe(oldDigest);
      expect(await version(binary)).toBe("0.1.0");
      expect(leftovers(binary)).toEqual([]);
      expect(existsSync(`${binary}.old`)).toBe(false);
    } finally {
      v.stop();
    }
  }, 60_000);

  test("the server dies in the middle of the download", async () => {
    // node:http, so the connection can really be cut: the full length is promised, half is sent, the socket dies.
    const s = createServer((req, res) => {
      const path = join(releases, (req.url ?? "/").replace(/^\/releases\//, ""));
      if (!existsSync(path)) return void res.writeHead(404).end();
      const bytes = readFileSync(path);
      res.writeHead(200, { "content-length": String(bytes.length) });
      if (!path.includes("beaker-linux")) return void res.end(bytes);
      res.write(bytes.subarray(0, bytes.length / 2), () => res.socket?.destroy());
    });
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    try {
      const binary = install();
      const r = await run(binary, ["upgrade", "--yes"], { BEAKER_UPDATE_URL: `http://127.0.0.1:${(s.address() as AddressInfo).port}/releases` });
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/broke off after \d+ of \d+ bytes|truncated: \d+ of \d+ bytes/);
      expect(sha(binary)).toBe(oldDigest);
      expect(leftovers(binary)).toEqual([]);
    } finally {
      s.closeAllConnections();
      s.close();
    }
  }, 60_000);

  test("a full disk", async () => {
    const dir = join(work, "small-fs");
    mkdirSync(dir);
    const size = Math.ceil((readFileSync(oldBinary).length * 1.5) / 2 ** 20);
    expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}m`, "tmpfs", dir]).exitCode).toBe(0);
    try {
      const binary = install(dir);
      const r = await run(binary, ["upgrade", "--yes"], url());
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/beaker: not enough disk space beside the binary for the new one \(\d+ bytes\)\n$/);
      expect(sha(binary)).toBe(oldDigest);
      expect(leftovers(binary)).toEqual([]);
    } finally {
      Bun.spawnSync(["umount", dir]);
    }
  }, 60_000);
});

test("two upgrades at once: one installs, the other says so; nothing is corrupted", async () => {
  const binary = install();
  const [a, b] = await Promise.all([run(binary, ["upgrade", "--yes"], url()), run(binary, ["upgrade", "--yes"], url())]);
  const codes = [a.exitCode, b.exitCode].sort();
  expect(codes[0]).toBe(0);
  expect([0, 6]).toContain(codes[1]!);
  const loser = a.exitCode === 6 ? a : b;
  if (loser.exitCode === 6) expect(loser.stderr).toMatch(/another beaker upgrade is running \(pid \d+\)/);
  expect(await version(binary)).toBe("0.2.0");
  expect(sha(`${binary}.old`)).toBe(oldDigest);
  expect(leftovers(binary)).toEqual([]);
}, 120_000);

describe("the node's executor after an upgrade", () => {
  const node = (binary: string, systemd: boolean) => new NodeExecutor(binary, join(binary, "..", `node-${systemd ? "unit" : "bare"}`), { systemd });
  const envOf = (e: NodeExecutor) => ({ ...url(), BEAKER_EXECUTOR_SOCKET: e.socket, PATH: e.path });

  test("run from the replaced file by a systemd unit: --yes restarts it gracefully onto the new file; status says when file and executor differ", async () => {
    const binary = install();
    const executor = node(binary, true);
    const env = envOf(executor);
    try {
      await executor.start();
      const up = await run(binary, ["upgrade", "--yes"], env);
      expect(up.exitCode).toBe(0);
      expect(up.stderr).toMatch(/executor 0\.1\.0 \(pid \d+\) is stopping: creates in flight finish, queued requests keep their places, attached terminals reconnect\nexecutor 0\.2\.0 is running \(pid \d+\)\n$/);
      expect(JSON.parse((await run(binary, ["executor", "status", "--json"], env)).stdout)).toMatchObject({ version: "0.2.0", binaryVersion: "0.2.0", restartNeeded: false });
      // Rolled back under the new executor: the file is the old version again, and status says to restart.
      expect((await run(binary, ["upgrade", "--rollback", "--yes"], env)).exitCode).toBe(0);
      const status = await run(binary, ["executor", "status"], env);
      expect(status.stdout).toContain("executor 0.2.0 ");
      expect(status.stdout).toContain(`${binary} is now 0.1.0, not the version the executor runs: restart it with 'sudo beaker executor restart' (sessions run on; terminals reconnect)`);
      expect(JSON.parse((await run(binary, ["executor", "status", "--json"], env)).stdout)).toMatchObject({ version: "0.2.0", binaryVersion: "0.1.0", restartNeeded: true });
    } finally {
      await executor.stop();
    }
  }, 90_000);

  test("an executor that runs another file is left running: exit 0, and the line says which file it runs", async () => {
    const other = install();
    const executor = node(other, true);
    try {
      await executor.start();
      const before = (await executor.health())!.pid;
      const binary = install();
      const up = await run(binary, ["upgrade", "--yes"], envOf(executor));
      expect(up.stderr).toEndWith(`this node's executor (pid ${before}) runs ${other}, not ${binary}: it was not restarted (to upgrade that one: sudo ${other} upgrade)\n`);
      expect(up.exitCode).toBe(0);
      expect(await version(binary)).toBe("0.2.0");
      expect(await executor.health()).toMatchObject({ pid: before, version: "0.1.0" });
    } finally {
      await executor.stop();
    }
  }, 60_000);

  test("an executor of the replaced file that no systemd unit would start again is left running: exit 0, with what to run", async () => {
    const binary = install();
    const executor = node(binary, false);
    try {
      await executor.start();
      const before = (await executor.health())!.pid;
      const up = await run(binary, ["upgrade", "--yes"], envOf(executor));
      expect(up.stderr).toEndWith(
        `this node's executor (pid ${before}) still runs 0.1.0 from the old file, and no systemd unit would start it again, so it was not restarted: ` +
          `stop it (sudo kill ${before}) and start it again as before: ${binary} executor run --config ${join(binary, "..", "node-bare", "config.yml")}\n`,
      );
      expect(up.exitCode).toBe(0);
      expect(await executor.health()).toMatchObject({ pid: before, version: "0.1.0" });
    } finally {
      await executor.stop();
    }
  }, 60_000);
});

test("a root-owned binary run by a user is refused with the command to run instead", async () => {
  const binary = install();
  chownSync(join(binary, ".."), 0, 0);
  chmodSync(join(binary, ".."), 0o755);
  const r = await run(binary, ["upgrade", "--yes"], url(), testUser);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain(`beaker: cannot replace ${binary}: ${join(binary, "..")} is owned by root and not writable by you; run: sudo beaker upgrade\n`);
  expect(sha(binary)).toBe(oldDigest);
}, 60_000);

test("where to look: the user's update_url, else the server's /releases; BEAKER_UPDATE_URL over both", async () => {
  const binary = install();
  const home = join(work, "url-home");
  mkdirSync(join(home, ".beaker"), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, ".beaker", "config.yml"), `update_url: ${server.url}/releases\n`, { mode: 0o600 });
  const fromConfig = await run(binary, ["upgrade", "--dry-run"], { HOME: home });
  expect(fromConfig.stderr).toMatch(/^beaker 0\.1\.0 -> 0\.2\.0/);
  const fromServer = await run(binary, ["upgrade", "--dry-run"], { BEAKER_SERVER: server.url });
  expect(fromServer.stderr).toMatch(/^beaker 0\.1\.0 -> 0\.2\.0/);
  const overridden = await run(binary, ["upgrade", "--dry-run"], { HOME: home, BEAKER_UPDATE_URL: "http://127.0.0.1:1/releases" });
  expect(overridden.exitCode).toBe(1);
  expect(overridden.stderr).toMatch(/^beaker: cannot reach the update server: http:\/\/127\.0\.0\.1:1\/releases\/stable\/manifest\.json/);
  const none = await run(binary, ["upgrade", "--dry-run"], { HOME: join(work, "empty-home") });
  expect(none.stderr).toBe("beaker: no update URL is known: 'beaker config set update_url https://...' (or set BEAKER_UPDATE_URL)\n");
}, 60_000);

test("no terminal and no --yes: asks for --yes, changes nothing", async () => {
  const binary = install();
  const r = await run(binary, ["upgrade"], url());
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toMatch(/pass --yes to do it without a terminal/);
  expect(sha(binary)).toBe(oldDigest);
}, 60_000);

describe("the update notice", () => {
  /** Runs under script(1), so stdin, stdout and stderr are a terminal. */
  async function onTty(binary: string, args: string, env: Record<string, string>) {
    const proc = Bun.spawn(["script", "-qec", `${binary} ${args}`, "/dev/null"], {
      env: { PATH: process.env.PATH, HOME: join(work, "notice-home"), BEAKER_EXECUTOR_SOCKET: join(work, "no.sock"), TERM: "xterm", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await new Response(proc.stdout).text();
    await proc.exited;
    return { out };
  }
  const state = join(work, "notice-home", ".beaker", "update-state.json");

  test("checked in the background at most daily, shown after the output once a day, never slowing a command", async () => {
    const binary = install();
    // An update server that takes the check's request and never answers: the command must end while it waits.
    const connections = { opened: 0, closed: 0 };
    const hang = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: () => void connections.opened++, close: () => void connections.closed++, data() {} } });
    const slow = await onTty(binary, "version", { BEAKER_UPDATE_URL: `http://127.0.0.1:${hang.port}/releases` });
    const closedWhenDone = connections.closed;
    await eventually(() => connections.opened > 0, 30_000, { what: "the background check's request" });
    hang.stop(true);
    expect(slow.out).toMatch(/^beaker 0\.1\.0/);
    // No request had ended (the check gives up only after seconds) when the command had already returned.
    expect(closedWhenDone).toBe(0);
    Bun.spawnSync(["rm", "-rf", join(work, "notice-home")]);

    const first = await onTty(binary, "version", url());
    expect(first.out).not.toContain("A new beaker is available");
    await eventually(() => JSON.parse(readFileSync(state, "utf8")).latest === "0.2.0", 30_000, { what: "the background check to record 0.2.0" });
    const second = await onTty(binary, "version", url());
    expect(second.out).toMatch(/^beaker 0\.1\.0 .*\r?\n\r?\nA new beaker is available: 0\.1\.0 -> 0\.2\.0\. Run 'beaker upgrade'/);
    const third = await onTty(binary, "version", url());
    expect(third.out).not.toContain("A new beaker is available");
  }, 60_000);

  test("silent with BEAKER_NO_UPDATE_NOTIFIER, in CI, and without a terminal", async () => {
    const binary = install();
    Bun.spawnSync(["rm", "-rf", join(work, "notice-home")]);
    await onTty(binary, "version", { ...url(), BEAKER_NO_UPDATE_NOTIFIER: "1" });
    await onTty(binary, "version", { ...url(), CI: "true" });
    await run(binary, ["version"], { ...url(), HOME: join(work, "notice-home") });
    // The command writes the state file itself before it starts a background check, so none was started.
    expect(existsSync(state)).toBe(false);
  }, 30_000);
});
