/**
 * `node gpus`, `config get/set`, `git status`, `cluster nodes` and `upgrade --dry-run` run in process: a fake executor,
 * the real config store, real git, the real server (SQLite) and a local release channel with a throwaway key.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GpuStatus } from "../../src/gpu/report.ts";
import { createHandler } from "../../src/server/app.ts";
import { migrate, openDb } from "../../src/server/db.ts";
import { Store } from "../../src/server/store.ts";
import { detectPlatform, pickTarget, signManifest, type ReleaseManifest } from "../../src/update/manifest.ts";
import { fakeExecutor, runCommand, tempHome } from "../command-harness.ts";
import { makeReleaseKeys } from "../release-keys.ts";

let home: ReturnType<typeof tempHome>;
const stops: Array<() => unknown> = [];

beforeEach(() => {
  home = tempHome();
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  home.cleanup();
});

describe("node gpus", () => {
  const gpu = (over: Partial<GpuStatus>): GpuStatus => ({
    index: 0,
    uuid: "GPU-aaaa",
    name: "NVIDIA H100 80GB HBM3",
    busId: "0000:07:00.0",
    memoryTotalMiB: 81559,
    memoryUsedMiB: null,
    utilization: null,
    migMode: "disabled",
    migDevices: [],
    processes: [],
    healthy: true,
    error: null,
    claimedBy: null,
    ...over,
  });
  const report = {
    inventory: { gpus: [], driverVersion: "550.54", cudaVersion: "12.4", source: "xml", error: null, note: null },
    gpus: [
      gpu({ utilization: 37, memoryUsedMiB: 40960 }),
      gpu({ index: 1, uuid: "GPU-bbbb", claimedBy: "0123456789ab" }),
      gpu({ index: 2, uuid: "GPU-cccc", healthy: false, error: "XID 79" }),
      gpu({ index: 3, uuid: "GPU-dddd" }),
    ],
    unavailable: { "GPU-dddd": "busy, no session" },
  };

  test("a row per GPU with who holds it, from the executor that knows the claims", async () => {
    const ex = fakeExecutor(home.env.BEAKER_EXECUTOR_SOCKET!, (call) => (call.path === "/v1/gpus" ? report : undefined));
    stops.push(ex.stop);
    const r = await runCommand(["node", "gpus"], { env: home.env });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n").map((l) => l.split(/\s{3,}/));
    expect(lines).toEqual([
      ["INDEX", "NAME", "UTIL", "MEMORY USED", "UUID", "MIG", "STATE"],
      ["0", "NVIDIA H100 80GB HBM3", "37%", "40 GiB / 79.6 GiB", "GPU-aaaa", "disabled", "free"],
      ["1", "NVIDIA H100 80GB HBM3", "-", "? / 79.6 GiB", "GPU-bbbb", "disabled", "claimed by 0123456789ab"],
      ["2", "NVIDIA H100 80GB HBM3", "-", "? / 79.6 GiB", "GPU-cccc", "disabled", "unhealthy: XID 79"],
      ["3", "NVIDIA H100 80GB HBM3", "-", "? / 79.6 GiB", "GPU-dddd", "disabled", "unavailable: busy, no session"],
    ]);
  });

  test("--json: the GPUs as the executor reports them", async () => {
    stops.push(fakeExecutor(home.env.BEAKER_EXECUTOR_SOCKET!, (call) => (call.path === "/v1/gpus" ? report : undefined)).stop);
    const r = await runCommand(["node", "gpus", "--json"], { env: home.env });
    expect(JSON.parse(r.stdout)).toEqual(report.gpus);
  });

  test("the node's GPU discovery failed: exit 1 with nvidia-smi's reason", async () => {
    const broken = { ...report, inventory: { ...report.inventory, error: "nvidia-smi: NVML driver/library version mismatch" }, gpus: [] };
    stops.push(fakeExecutor(home.env.BEAKER_EXECUTOR_SOCKET!, () => broken).stop);
    const r = await runCommand(["node", "gpus"], { env: home.env });
    expect(r.code).toBe(1);
    expect(r.error?.message).toBe("nvidia-smi: NVML driver/library version mismatch");
  });
});

describe("config get/set", () => {
  test.each([
    [["config", "set", "default_image", "ubuntu:22.04"], 0, "", "default_image saved in"],
    [["config", "set", "user_token", "bkr_x"], 2, "", "is a secret and is not taken from the command line"],
    [["config", "set", "nope", "x"], 2, "", "unknown"],
    [["config", "set", "server", "not a url"], 2, "", "server"],
    [["config", "get", "default_cluster"], 5, "", '"default_cluster" is not set'],
  ])("%p: exit %d", async (argv, code, stdout, message) => {
    const r = await runCommand(argv, { env: home.env });
    expect(r.code).toBe(code);
    expect(r.stdout).toBe(stdout);
    expect(`${r.stderr}${r.error?.message ?? ""}`).toContain(message);
  });

  test("set then get: the value, the file 0600; a secret from stdin comes back masked", async () => {
    expect((await runCommand(["config", "set", "default_image", "ubuntu:22.04"], { env: home.env })).code).toBe(0);
    expect((await runCommand(["config", "get", "default_image"], { env: home.env })).stdout).toBe("ubuntu:22.04\n");
    expect((await runCommand(["config", "set", "user_token", "-"], { env: home.env, stdin: "bkr_abcdefgh_0123456789\n" })).code).toBe(0);
    expect((await runCommand(["config", "get", "user_token"], { env: home.env })).stdout).toBe("********6789\n");
    expect(statSync(home.env.BEAKER_CONFIG!).mode & 0o777).toBe(0o600);
    expect(readFileSync(home.env.BEAKER_CONFIG!, "utf8")).toContain("default_image: ubuntu:22.04");
  });

  test("the environment wins over the file", async () => {
    await runCommand(["config", "set", "server", "https://file.example.org"], { env: home.env });
    const r = await runCommand(["config", "get", "server"], { env: { ...home.env, BEAKER_SERVER: "https://env.example.org" } });
    expect(r.stdout).toBe("https://env.example.org\n");
  });
});

describe("git status", () => {
  const git = (...args: string[]) => Bun.spawnSync(["git", ...args], { env: home.env });

  test("a fresh home: no identity, no helpers, no key", async () => {
    const r = await runCommand(["git", "status"], { env: home.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("identity: (no user.name) <no user.email>\ntokens:   none configured (beaker git setup)\nssh key:  none\n");
  });

  test("--json: identity, each host's helpers and the token it would send, masked", async () => {
    git("config", "--global", "user.name", "Ada L");
    git("config", "--global", "user.email", "ada@example.org");
    git("config", "--global", "credential.https://github.com.helper", "store");
    writeFileSync(join(home.dir, ".git-credentials"), "https://x-access-token:ghp_0123456789abcdefghij@github.com\n", { mode: 0o600 });
    const r = await runCommand(["git", "status", "--json"], { env: home.env });
    expect(JSON.parse(r.stdout)).toEqual({
      name: "Ada L",
      email: "ada@example.org",
      credentials: [{ url: "https://github.com", helpers: ["store"], token: "********ghij" }],
      sshKey: null,
    });
  });
});

describe("cluster nodes", () => {
  async function startServer() {
    const db = openDb(`sqlite://${join(home.dir, "server.db")}`);
    await migrate(db);
    const store = new Store(db);
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: createHandler({ store, releasesDir: null, log: () => {} }) });
    stops.push(() => db.close(), () => server.stop(true));
    const { token } = await store.createUser("ada", false);
    return { store, env: { ...home.env, BEAKER_SERVER: `http://127.0.0.1:${server.port}`, BEAKER_TOKEN: token } };
  }
  const gpu = (uuid: string, claimedBy: string | null) => ({ index: 0, uuid, name: "NVIDIA H100", memoryMiB: 81559, claimedBy, healthy: true });

  test("a row per node of the cluster; --json the same records", async () => {
    const { store, env } = await startServer();
    await store.createCluster("lab");
    await store.addNode("gpu-1", "lab");
    await store.addNode("gpu-2", "lab");
    await store.heartbeat("gpu-1", { cpus: 8, memoryBytes: 1, version: "v", gpus: [gpu("GPU-a", null), gpu("GPU-b", "s1")], sessions: [] });
    const r = await runCommand(["cluster", "nodes", "lab"], { env });
    expect(r.code).toBe(0);
    const rows = r.stdout.trimEnd().split("\n").map((l) => l.split(/\s{3,}/));
    expect(rows[0]).toEqual(["HOSTNAME", "GPU TYPE", "GPUS FREE/TOTAL", "STATUS", "LAST SEEN"]);
    expect(rows.slice(1).map((row) => row.slice(0, 4))).toEqual([
      ["gpu-1", "NVIDIA H100", "1/2", "online"],
      ["gpu-2", "-", "0/0", "offline"],
    ]);
    const json = await runCommand(["cluster", "nodes", "lab", "--json"], { env });
    expect((JSON.parse(json.stdout) as Array<{ hostname: string }>).map((n) => n.hostname)).toEqual(["gpu-1", "gpu-2"]);
  });

  test("an empty cluster says so on stderr; an unknown one is exit 5; no NAME is exit 2", async () => {
    const { store, env } = await startServer();
    await store.createCluster("empty");
    expect(await runCommand(["cluster", "nodes", "empty"], { env })).toMatchObject({ code: 0, stdout: "", stderr: "no nodes in empty\n" });
    expect((await runCommand(["cluster", "nodes", "nope"], { env })).code).toBe(5);
    expect((await runCommand(["cluster", "nodes"], { env })).code).toBe(2);
  });
});

describe("upgrade --dry-run", () => {
  async function channel(version: string, signWith?: string) {
    const keys = await makeReleaseKeys(home.dir);
    const target = pickTarget(detectPlatform());
    const manifest: ReleaseManifest = { version, channel: "stable", date: "2026-11-27", targets: { [target]: { file: `beaker-${target}`, size: 52_428_800, sha256: "a".repeat(64) } } };
    const body = new TextEncoder().encode(JSON.stringify(manifest));
    const signature = await signManifest(body, readFileSync(signWith ?? keys.privateKeyFile, "utf8"));
    const requests: string[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const path = new URL(req.url).pathname;
        requests.push(path);
        if (path === "/releases/stable/manifest.json") return new Response(body);
        if (path === "/releases/stable/manifest.json.sig") return new Response(signature);
        return new Response("not found", { status: 404 });
      },
    });
    stops.push(() => server.stop(true));
    const binary = join(home.dir, "beaker");
    writeFileSync(binary, "#!/bin/sh\n", { mode: 0o755 });
    const env = { ...home.env, BEAKER_UPDATE_URL: `http://127.0.0.1:${server.port}/releases` };
    return { env, binary, target, requests, factory: { execPath: binary, releasePublicKey: keys.publicKey } };
  }

  test("says what would change, downloads nothing and leaves the binary alone", async () => {
    const c = await channel("9.9.9");
    const r = await runCommand(["upgrade", "--dry-run"], { env: c.env, factory: c.factory });
    expect(r.error).toBeNull();
    expect(r.stderr).toBe(`beaker 0.0.0-dev -> 9.9.9 (stable, ${c.target}, 52.4 MB) at ${c.binary}\ndry run: nothing changed\n`);
    expect(c.requests.sort()).toEqual(["/releases/stable/manifest.json", "/releases/stable/manifest.json.sig"]);
    expect(readFileSync(c.binary, "utf8")).toBe("#!/bin/sh\n");
  });

  test("a manifest signed with another key is refused (exit 1)", async () => {
    const other = await makeReleaseKeys(join(home.dir));
    const otherKey = join(home.dir, "other.pem");
    writeFileSync(otherKey, readFileSync(other.privateKeyFile));
    const c = await channel("9.9.9", otherKey);
    const r = await runCommand(["upgrade", "--dry-run"], { env: c.env, factory: c.factory });
    expect(r.code).toBe(1);
    expect(r.error?.message).toContain("signature does not verify");
  });

  test.each([
    [["--channel", "nightly"], '--channel must be stable or canary, not "nightly"'],
    [["--version", "1.2"], "--version 1.2 is not a version like 1.2.3"],
  ])("%p: exit 2 before anything is fetched", async (flags, message) => {
    const c = await channel("9.9.9");
    const r = await runCommand(["upgrade", "--dry-run", ...flags], { env: c.env, factory: c.factory });
    expect(r.code).toBe(2);
    expect(r.error?.message).toBe(message);
    expect(c.requests).toEqual([]);
  });
});
