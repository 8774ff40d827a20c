/** Pure parts of SSH into sessions: host names, the stdin preamble, the login plan, the ssh config block, the runtime. */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildContainerSpec } from "../../src/runtime/docker/spec.ts";
import { ensureBeakerRuntime, parseLoadedLibraries } from "../../src/executor/sessions/runtime.ts";
import { parseSessionHost, sshServerCommand } from "../../src/ssh/host.ts";
import { encodePreamble, parsePreamble, PreambleError } from "../../src/ssh/stdio.ts";
import { acceptsEnv, buildChildEnv, parsePasswdEntry, planProcess, type LoginUser } from "../../src/ssh/login.ts";
import { addHostBlock, blockMarker, buildHostBlock, connectHint, ensureHostKey, sshPaths } from "../../src/ssh/client-config.ts";
import { constants } from "node:fs";
import { formatLongname, openFlags } from "../../src/ssh/sftp.ts";
import { removeDir, tempDir } from "../harness.ts";

describe("parseSessionHost", () => {
  test.each([
    ["train.beaker", null, { ref: "train", elsewhere: null }],
    ["TRAIN.BEAKER", null, { ref: "TRAIN", elsewhere: null }],
    ["abc123.beaker.", null, { ref: "abc123", elsewhere: null }],
    ["train.gpu-01.beaker", "gpu-01", { ref: "train", elsewhere: null }],
    ["train.GPU-01.beaker", "gpu-01", { ref: "train", elsewhere: null }],
    ["my.run.gpu-01.lab.org.beaker", "gpu-01.lab.org", { ref: "my.run", elsewhere: null }],
    ["train.gpu-02.beaker", "gpu-01", { ref: "train.gpu-02", elsewhere: { name: "train", node: "gpu-02" } }],
    ["train.gpu-02.lab.beaker", null, { ref: "train.gpu-02.lab", elsewhere: { name: "train", node: "gpu-02.lab" } }],
    // What a shell or a config file may leave around the name.
    ["  train.beaker\n", null, { ref: "train", elsewhere: null }],
    // A name that ends in a dot is no NAME.NODE pair: there is no node after the dot.
    ["train..beaker", null, { ref: "train.", elsewhere: null }],
  ])("%s on node %s", (host, node, expected) => {
    expect(parseSessionHost(host, node)).toEqual(expected);
  });

  test.each(["train", "train.example.com", ".beaker", "..beaker", "beaker", ".train.beaker", "train.beaker.example.com", "evil\ntrain.beaker"])("%s is refused with what to type", (host) => {
    expect(() => parseSessionHost(host, "gpu-01")).toThrow(/use NAME\.beaker or NAME\.NODE\.beaker/);
  });
});

test("sshServerCommand: the server through the mounted loader", () => {
  expect(sshServerCommand).toEqual(["/usr/local/lib/beaker/ld.so", "--library-path", "/usr/local/lib/beaker", "/usr/local/bin/beaker", "ssh-server", "--stdio"]);
});

describe("preamble", () => {
  const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
  const ssh = Buffer.from("SSH-2.0-OpenSSH_9.2\r\n");
  const whole = Buffer.concat([encodePreamble(key), ssh]);

  test("gives the key and leaves the SSH bytes, however the input is split", () => {
    for (let cut = 0; cut <= whole.length; cut++) {
      const first = parsePreamble(whole.subarray(0, cut));
      const expected = { hostKey: key, rest: whole.subarray(encodePreamble(key).length, cut) };
      if (cut < encodePreamble(key).length) expect(first).toBeNull();
      else expect(first).toEqual(expected);
    }
  });

  test.each([
    ["an SSH client speaking directly", "SSH-2.0-OpenSSH_9.2\r\n"],
    ["a wrong tag", "BEAKER-SSH/2 3\nabc"],
    ["a zero length", "BEAKER-SSH/1 0\n"],
    ["a huge key", "BEAKER-SSH/1 99999\n"],
    ["no newline in time", "x".repeat(40)],
  ])("refuses %s", (_what, text) => {
    expect(() => parsePreamble(Buffer.from(text))).toThrow(PreambleError);
  });
});

describe("login", () => {
  const passwd = "root:x:0:0:root:/root:/bin/bash\nada:x:1234:1234:Ada L:/home/ada:/bin/zsh\nbad:x::0::/:/bin/sh\n";
  test("parsePasswdEntry finds the uid's entry and ignores lines without one", () => {
    expect(parsePasswdEntry(passwd, 1234)).toEqual({ name: "ada", home: "/home/ada", shell: "/bin/zsh" });
    expect(parsePasswdEntry(passwd, 0)).toEqual({ name: "root", home: "/root", shell: "/bin/bash" });
    expect(parsePasswdEntry(passwd, 99)).toBeNull();
  });

  const ada: LoginUser = { name: "ada", uid: 1234, home: "/home/ada", shell: "/bin/bash" };
  test.each([
    ["a shell: the login shell", ada, null, { argv: ["/bin/bash", "-l"] }],
    ["an exec: SHELL -c", ada, "ls -la | wc -l", { argv: ["/bin/bash", "-c", "ls -la | wc -l"] }],
    ["no shell, exec: split on spaces", { ...ada, shell: null }, "/app/busybox  whoami", { argv: ["/app/busybox", "whoami"] }],
  ])("planProcess: %s", (_what, user, command, expected) => {
    expect(planProcess(user, command)).toEqual(expected);
  });
  test("planProcess: no shell and no command says so", () => {
    expect(planProcess({ ...ada, shell: null }, null)).toEqual({ error: expect.stringMatching(/no shell/) });
  });

  test("acceptsEnv: anything a user may set, not the variables that pick GPUs", () => {
    expect(["LANG", "LC_ALL", "MY_VAR", "_X"].every(acceptsEnv)).toBe(true);
    expect(["NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "1BAD", "A-B", ""].some(acceptsEnv)).toBe(false);
  });

  test("buildChildEnv: the session's variables, the login ones, what was sent; TERM only with a terminal", () => {
    const base = { PATH: "/usr/bin", TERM: "xterm", HOME: "/wrong", NVIDIA_VISIBLE_DEVICES: "GPU-a", SSH_AUTH_SOCK: "/stale" };
    const env = buildChildEnv(base, { user: ada, term: null, sent: { LANG: "C.UTF-8", CUDA_VISIBLE_DEVICES: "0,1" }, agentSocket: null });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/home/ada", USER: "ada", LOGNAME: "ada", SHELL: "/bin/bash", NVIDIA_VISIBLE_DEVICES: "GPU-a", LANG: "C.UTF-8" });
    const tty = buildChildEnv(base, { user: ada, term: "xterm-256color", sent: {}, agentSocket: "/tmp/beaker-ssh-x/agent.sock" });
    expect(tty).toMatchObject({ TERM: "xterm-256color", SSH_AUTH_SOCK: "/tmp/beaker-ssh-x/agent.sock" });
  });
});

describe("ssh config", () => {
  const block = buildHostBlock({ beaker: "/usr/local/bin/beaker", user: "ada", knownHosts: "/home/ada/.beaker/known_hosts" });
  test("the block: proxy, user and a pinned host key", () => {
    expect(block).toBe(
      `${blockMarker}\nHost *.beaker\n  ProxyCommand /usr/local/bin/beaker session proxy %h\n  User ada\n  HostKeyAlias beaker-session\n  UserKnownHostsFile /home/ada/.beaker/known_hosts\n  StrictHostKeyChecking yes\n`,
    );
    expect(buildHostBlock({ beaker: "/opt/my tools/beaker", user: "ada", knownHosts: "/k" })).toContain('ProxyCommand "/opt/my tools/beaker" session proxy %h');
  });

  test.each([
    ["an empty file", "", block],
    ["a file with hosts of its own", "Host a\n  User b\n", `${block}\nHost a\n  User b\n`],
    ["a file whose Host * would otherwise win", "Host *\n  UserKnownHostsFile /x", `${block}\nHost *\n  UserKnownHostsFile /x`],
  ])("addHostBlock puts the block first in %s", (_what, config, expected) => {
    expect(addHostBlock(config, block)).toBe(expected);
    expect(addHostBlock(expected, block)).toBeNull();
  });
  test("addHostBlock leaves a hand-written Host *.beaker alone", () => {
    expect(addHostBlock("Host gpu *.beaker\n  User me\n", block)).toBeNull();
  });

  test("connectHint: ssh and VS Code lines, with the session's home, and the setup step until it is done", () => {
    const session = { name: "train", user: "ada", mounts: ["/net:/net", "/scratch/homes/ada:/scratch/homes/ada", "/usr/bin/beaker:/usr/local/bin/beaker:ro"] };
    expect(connectHint(session, "/home/ada", true)).toBe("ssh train.beaker\ncode --remote ssh-remote+train.beaker /scratch/homes/ada\n");
    expect(connectHint({ ...session, mounts: [] }, "/home/ada", false)).toBe(
      "ssh train.beaker  (once: beaker session ssh-config --write)\ncode --remote ssh-remote+train.beaker /home/ada\n",
    );
  });

  test("ensureHostKey makes one key (0600), pins it, and keeps it", async () => {
    const home = tempDir();
    try {
      const paths = sshPaths(home);
      const first = await ensureHostKey(paths);
      expect(statSync(paths.key).mode & 0o777).toBe(0o600);
      expect(readFileSync(paths.knownHosts, "utf8")).toMatch(/^beaker-session ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
      const pinned = readFileSync(paths.knownHosts, "utf8");
      expect(await ensureHostKey(paths)).toBe(first);
      writeFileSync(paths.knownHosts, "stale\n");
      await ensureHostKey(paths);
      expect(readFileSync(paths.knownHosts, "utf8")).toBe(pinned);
      writeFileSync(paths.key, "not a key\n");
      await expect(ensureHostKey(paths)).rejects.toThrow(/is not a valid SSH key: remove it/);
    } finally {
      removeDir(home);
    }
  });
});

describe("session runtime", () => {
  const maps = [
    "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234   /usr/local/bin/beaker",
    "7f1000000000-7f1000022000 r--p 00000000 08:01 2001   /usr/lib/x86_64-linux-gnu/libc.so.6",
    "7f1000100000-7f1000101000 r-xp 00000000 08:01 2002   /usr/lib/x86_64-linux-gnu/libm.so.6 (deleted)",
    "7f1000200000-7f1000201000 r--p 00000000 08:01 2003   /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "7f1000300000-7f1000301000 rw-p 00000000 00:00 0      [heap]",
    "7f1000400000-7f1000401000 r--p 00000000 08:01 2001   /usr/lib/x86_64-linux-gnu/libc.so.6",
  ].join("\n");
  test("parseLoadedLibraries: the loader and each library once, replaced ones by their path", () => {
    expect(parseLoadedLibraries(maps)).toEqual({
      loader: "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
      libraries: ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"],
    });
    expect(parseLoadedLibraries("55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /app/static-binary\n")).toBeNull();
  });

  test("ensureBeakerRuntime copies them once into a folder named by their content, loader as ld.so", () => {
    const state = tempDir();
    const libs = tempDir();
    try {
      for (const name of ["ld-linux-x86-64.so.2", "libc.so.6"]) writeFileSync(join(libs, name), name);
      const fake = `1-2 r--p 0 0:0 1 ${libs}/libc.so.6\n1-2 r--p 0 0:0 1 ${libs}/ld-linux-x86-64.so.2\n`;
      const dir = ensureBeakerRuntime(state, fake)!;
      expect(readdirSync(dir).sort()).toEqual(["ld.so", "libc.so.6"]);
      expect(readFileSync(join(dir, "ld.so"), "utf8")).toBe("ld-linux-x86-64.so.2");
      expect(statSync(join(dir, "ld.so")).mode & 0o777).toBe(0o755);
      expect(ensureBeakerRuntime(state, fake)).toBe(dir);
      writeFileSync(join(libs, "libc.so.6"), "a newer libc");
      const upgraded = ensureBeakerRuntime(state, fake)!;
      expect(upgraded).not.toBe(dir);
      expect(existsSync(dir)).toBe(true);
      expect(ensureBeakerRuntime(state, "1-2 r--p 0 0:0 1 /nonexistent/ld-linux-x86-64.so.2\n")).toBeNull();
    } finally {
      removeDir(state);
      removeDir(libs);
    }
  });

  test("the container spec mounts it read-only at /usr/local/lib/beaker, beside the binary", () => {
    const spec = buildContainerSpec({
      sessionId: "abc", name: "n", node: "gpu", user: { name: "ada", uid: 1, gid: 1, groups: [1], home: "/home/ada", gecos: "" }, image: "i",
      command: null, gpus: [], env: [], cpus: null, memoryBytes: null, shmBytes: null, ports: [], mounts: [], shownMounts: [], accountFiles: null,
      pidsLimit: 0, network: "n", publishAddress: "127.0.0.1", workdir: "/home/ada", tty: true, term: null, account: null, memlock: -1,
      beakerBinary: "/usr/bin/beaker", beakerRuntime: "/var/lib/beaker/runtime/ab12",
    }) as { HostConfig: { Mounts: Array<{ Type: string; Source: string; Target: string; ReadOnly: boolean }> } };
    expect(spec.HostConfig.Mounts).toContainEqual({ Type: "bind", Source: "/usr/bin/beaker", Target: "/usr/local/bin/beaker", ReadOnly: true });
    expect(spec.HostConfig.Mounts).toContainEqual({ Type: "bind", Source: "/var/lib/beaker/runtime/ab12", Target: "/usr/local/lib/beaker", ReadOnly: true });
  });
});

test("formatLongname reads like ls -l", () => {
  const now = Date.parse("2026-06-01T12:00:00");
  const st = { mode: 0o100644, nlink: 1, uid: 1000, gid: 1000, size: 5, mtimeMs: Date.parse("2026-05-02T03:04:00") };
  expect(formatLongname("a.txt", st, now)).toBe("-rw-r--r--    1 1000     1000            5 May  2 03:04 a.txt");
  expect(formatLongname("d", { ...st, mode: 0o040755, mtimeMs: Date.parse("2024-01-10T00:00:00") }, now)).toBe("drwxr-xr-x    1 1000     1000            5 Jan 10  2024 d");
});

test.each([
  ["read", 0x01, constants.O_RDONLY],
  ["write, create, truncate (scp's upload)", 0x1a, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC],
  ["write, create (no fopen() name)", 0x0a, constants.O_WRONLY | constants.O_CREAT],
  ["read and write, create, exclusive", 0x2b, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL],
  ["append", 0x0c, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT],
])("openFlags: %s", (_what, pflags, expected) => {
  expect(openFlags(pflags)).toBe(expected);
});
