/** Pure planning of the executor: container spec, queue, ledger, passwd merge, mounts, tar, proofs. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildContainerSpec, checkEnv, shmSizeFor, workdirFor, type SpecInput } from "../../src/runtime/docker/spec.ts";
import { mergeGroup, mergePasswd } from "../../src/runtime/docker/passwd.ts";
import { isForbiddenSource, parseMountFlag } from "../../src/executor/sessions/mounts.ts";
import { createTar, readFirstFile } from "../../src/runtime/docker/tar.ts";
import { createProof, verifyProof } from "../../src/executor/proof.ts";
import { resolveRef } from "../../src/executor/sessions/lookup.ts";
import { NotFoundError, UsageError } from "../../src/errors.ts";
import { scopedDir } from "../harness.ts";

/** The error `fn` throws (failing the test when it throws nothing), to check its class and message. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error, none was thrown");
}

const user = { name: "ada", uid: 1234, gid: 1234, groups: [1234, 27, 100], home: "/home/ada", gecos: "Ada L" };
const base: SpecInput = {
  sessionId: "abc123def456",
  name: "ada-abc123",
  node: "gpu-07.cluster",
  user,
  image: "ubuntu:22.04",
  command: null,
  gpus: ["GPU-a", "GPU-b"],
  env: [],
  cpus: null,
  memoryBytes: null,
  shmBytes: null,
  ports: [],
  mounts: [{ source: "/net", target: "/net", readOnly: false }],
  workdir: "/home/ada/project",
  tty: true,
  term: "xterm-256color",
  account: null,
  shownMounts: ["/home/ada:/home/ada", "/net:/net"],
  accountFiles: { passwd: "/var/lib/beaker/accounts/p.passwd", group: "/var/lib/beaker/accounts/g.group" },
  pidsLimit: 4096,
  network: "beaker-sessions",
  publishAddress: "127.0.0.1",
  beakerBinary: "/usr/local/bin/beaker",
  memlock: -1,
};

describe("buildContainerSpec", () => {
  const spec = buildContainerSpec(base) as Record<string, any>;
  test("runs as the caller with their groups, home and working directory", () => {
    expect(spec.User).toBe("1234:1234");
    expect(spec.HostConfig.GroupAdd).toEqual(["27", "100"]);
    expect(spec.Env).toEqual(expect.arrayContaining(["HOME=/home/ada", "USER=ada", "LOGNAME=ada", "TERM=xterm-256color"]));
    expect(spec.WorkingDir).toBe("/home/ada/project");
    const bind = (Source: string, Target: string, ReadOnly: boolean) => ({ Type: "bind", Source, Target, ReadOnly });
    expect(spec.HostConfig.Mounts).toEqual([
      bind("/home/ada", "/home/ada", false),
      bind("/net", "/net", false),
      bind("/usr/local/bin/beaker", "/usr/local/bin/beaker", true),
      bind("/var/lib/beaker/accounts/p.passwd", "/etc/passwd", true),
      bind("/var/lib/beaker/accounts/g.group", "/etc/group", true),
    ]);
    expect(spec.HostConfig.Binds).toBeUndefined();
    expect(spec.HostConfig).toMatchObject({ NetworkMode: "beaker-sessions", PidsLimit: 4096 });
    expect(spec.Labels["beaker.mounts"]).toBe(JSON.stringify(["/home/ada:/home/ada", "/net:/net"]));
  });
  test("claimed GPUs by UUID, as a device request for the nvidia driver", () => {
    expect(spec.HostConfig.DeviceRequests).toEqual([{ Driver: "nvidia", DeviceIDs: ["GPU-a", "GPU-b"], Capabilities: [["gpu"]] }]);
    expect(spec.Env.some((e: string) => e.startsWith("NVIDIA_VISIBLE_DEVICES"))).toBe(false);
  });
  test("0 GPUs: no device request and NVIDIA_VISIBLE_DEVICES=void", () => {
    const cpu = buildContainerSpec({ ...base, gpus: [] }) as Record<string, any>;
    expect(cpu.HostConfig.DeviceRequests).toEqual([]);
    expect(cpu.Env).toContain("NVIDIA_VISIBLE_DEVICES=void");
  });
  test("never privileged, no new privileges, init, memlock unlimited, capabilities dropped", () => {
    expect(spec.HostConfig).toMatchObject({ Privileged: false, SecurityOpt: ["no-new-privileges"], Init: true, CapDrop: ["ALL"] });
    expect(spec.HostConfig.Ulimits).toEqual([{ Name: "memlock", Soft: -1, Hard: -1 }]);
    expect(JSON.stringify(spec)).not.toContain("docker.sock");
  });
  test("labels are the contract", () => {
    expect(spec.name).toBe("beaker-abc123def456");
    expect(spec.Labels).toMatchObject({
      "beaker.managed": "true",
      "beaker.session": "abc123def456",
      "beaker.user": "ada",
      "beaker.uid": "1234",
      "beaker.gpus": "GPU-a,GPU-b",
      "beaker.node": "gpu-07.cluster",
    });
  });
  test("limits, ports, shared memory", () => {
    const limited = buildContainerSpec({ ...base, cpus: 4, memoryBytes: 64 * 1024 ** 3, ports: [8888] }) as Record<string, any>;
    expect(limited.HostConfig).toMatchObject({ NanoCpus: 4e9, Memory: 64 * 1024 ** 3, ShmSize: 32 * 1024 ** 3 });
    expect(limited.HostConfig.PortBindings).toEqual({ "8888/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] });
    // Not published (the executor's default): neither bound nor exposed, so it can join a warm namespace.
    const unpublished = buildContainerSpec({ ...base, ports: [8888], publishAddress: null, netnsHolder: "h0lder" }) as Record<string, any>;
    expect({ bound: unpublished.HostConfig.PortBindings, exposed: unpublished.ExposedPorts }).toEqual({ bound: {}, exposed: {} });
    expect(unpublished.HostConfig.NetworkMode).toBe("container:h0lder");
    expect(spec.HostConfig.ShmSize).toBe(8 * 1024 ** 3);
    expect(shmSizeFor(null, 1024)).toBe(1024);
  });
  test("a warm network namespace: the session joins the holder's, gets its hostname, and names it in a label", () => {
    const joined = buildContainerSpec({ ...base, netnsHolder: "h0lder" }) as Record<string, any>;
    expect(joined.HostConfig.NetworkMode).toBe("container:h0lder");
    expect(joined.Hostname).toBeUndefined();
    expect(joined.Labels["beaker.netns-holder"]).toBe("h0lder");
    expect(spec.Hostname).toBe("gpu-07");
    expect(spec.Labels["beaker.netns-holder"]).toBeUndefined();
    // Published ports belong to the namespace's maker: such a session never joins a holder.
    expect(() => buildContainerSpec({ ...base, netnsHolder: "h0lder", ports: [8888] })).toThrow("makes its own network namespace");
  });
  test("a command replaces the shell; no command runs bash or sh as a login shell", () => {
    expect((buildContainerSpec({ ...base, command: ["python3", "x.py"] }) as any).Cmd).toEqual(["python3", "x.py"]);
    expect(spec.Cmd.join(" ")).toContain("exec /bin/bash -l");
  });
  test.each([
    ["NVIDIA_VISIBLE_DEVICES=all", "--env NVIDIA_VISIBLE_DEVICES is not allowed: Beaker sets the GPU variables from the GPUs it claims"],
    ["CUDA_VISIBLE_DEVICES=0,1,2", "--env CUDA_VISIBLE_DEVICES is not allowed: Beaker sets the GPU variables from the GPUs it claims"],
    ["NVIDIA_DRIVER_CAPABILITIES=all", "--env NVIDIA_DRIVER_CAPABILITIES is not allowed: Beaker sets the GPU variables from the GPUs it claims"],
    ["GPU_DEVICE_ORDINAL=3", "--env GPU_DEVICE_ORDINAL is not allowed: Beaker sets the GPU variables from the GPUs it claims"],
    ["bad", '--env "bad" must be KEY=VALUE'],
  ])("--env %s is refused: %s", (entry, message) => {
    for (const attempt of [() => checkEnv([entry]), () => buildContainerSpec({ ...base, env: [entry] })]) {
      const err = thrown(attempt);
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toBe(message);
    }
  });
  test.each([
    ["/home/ada/x/y", "/home/ada", null, "/home/ada/x/y"],
    ["/home/ada", "/home/ada", null, "/home/ada"],
    ["/home/adam", "/home/ada", null, "/home/ada"],
    ["/tmp", "/home/ada", null, "/home/ada"],
    ["/tmp", "/home/ada", "/work", "/work"],
  ])("workdir for cwd %s, home %s, --workdir %s is %s", (cwd, home, requested, expected) => {
    expect(workdirFor(cwd, home, requested)).toBe(expected);
  });
});

describe("passwd and group injection", () => {
  test("replaces entries that clash by name or uid, keeps the rest", () => {
    const image = "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1234:1234::/home/ubuntu:/bin/sh\nada:x:999:999::/x:/bin/sh\n";
    expect(mergePasswd(image, user, "/bin/bash")).toBe("root:x:0:0:root:/root:/bin/bash\nada:x:1234:1234:Ada L:/home/ada:/bin/bash\n");
    expect(mergePasswd("", user, "/bin/sh")).toBe("ada:x:1234:1234:Ada L:/home/ada:/bin/sh\n");
  });
  test("groups: primary and supplementary, clashing gids replaced", () => {
    const image = "root:x:0:\nusers:x:100:\nada:x:1234:\n";
    expect(mergeGroup(image, user, [{ gid: 1234, name: "ada" }, { gid: 100, name: "users" }, { gid: 27, name: "sudo" }])).toBe(
      "root:x:0:\nada:x:1234:\nusers:x:100:ada\nsudo:x:27:ada\n",
    );
  });
  test("tar round trip", () => {
    const tar = createTar([{ name: "etc/", body: new Uint8Array(), mode: 0o755, type: "directory" }, { name: "etc/passwd", body: new TextEncoder().encode("hello\n"), mode: 0o644 }]);
    expect(tar.length % 512).toBe(0);
    expect(new TextDecoder().decode(readFirstFile(tar)!)).toBe("hello\n");
  });
});

describe("mounts", () => {
  test.each(["/data:/data", "/data:/mnt/data:ro"])("%s parses", (flag) => {
    expect(parseMountFlag(flag).source).toBe("/data");
  });
  test.each([
    ["data:/data", '--mount "data:/data": both paths must be absolute'],
    ["/data", '--mount "/data" must be SRC:DST or SRC:DST:ro'],
    ["/data:/", '--mount "/data:/": cannot mount over /'],
    ["/a:/b:rx", '--mount "/a:/b:rx" must be SRC:DST or SRC:DST:ro'],
    ["/a:/b:ro:x", '--mount "/a:/b:ro:x" must be SRC:DST or SRC:DST:ro'],
    ["/a:b", '--mount "/a:b": both paths must be absolute'],
  ])("%s is refused: %s", (flag, message) => {
    const err = thrown(() => parseMountFlag(flag));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(message);
  });
  test.each([["/", true], ["/etc", true], ["/etc/shadow", true], ["/run/beaker", true], ["/var/run/docker.sock", true], ["/var/lib/docker/x", true], ["/data", false], ["/etcetera", false]])(
    "%s forbidden: %p",
    (path, forbidden) => expect(isForbiddenSource(path as string)).toBe(forbidden as boolean),
  );
});

describe("caller proofs", () => {
  test("a fresh proof names its owner once; forgeries and replays are refused", () => {
    using proofs = scopedDir("beaker-proof-");
    const dir = proofs.path;
    chmodSync(dir, 0o1733);
    const proof = createProof(dir);
    expect(verifyProof(dir, proof.header)).toBe(process.getuid!());
    expect(() => verifyProof(dir, proof.header)).toThrow(/cannot be checked/);
    const second = createProof(dir);
    const [name] = second.header.split(":");
    expect(() => verifyProof(dir, `${name}:${"0".repeat(64)}`)).toThrow(/does not match/);
    expect(() => verifyProof(dir, "nonsense")).toThrow(/malformed/);
    mkdirSync(join(dir, "x"));
    writeFileSync(join(dir, "target"), "a".repeat(64));
    symlinkSync(join(dir, "target"), join(dir, "0123456789abcdef0123456789abcdef"));
    expect(() => verifyProof(dir, `0123456789abcdef0123456789abcdef:${"a".repeat(64)}`)).toThrow(/not a regular file/);
  });
});

describe("resolveRef", () => {
  const info = (id: string, name: string, uid: number, user: string) => ({ id, name, uid, user }) as unknown as import("../../src/executor/api-types.ts").SessionInfo;
  const sessions = [
    info("abc123", "train", 1000, "ann"),
    info("abd999", "eval", 1000, "ann"),
    info("ff0000", "theirs", 1001, "bob"),
    info("abc123old", "train", 1000, "ann"),
    info("ee0000", "dev", 1001, "bob"),
    info("ee1111", "dev", 0, "root"),
  ];
  const resolve = (uid: number, ref: string, user: string | null = null) => resolveRef(sessions, (s) => s, uid, { ref, user }).id;
  test("by exact ID, by name (the first listed wins), by unique prefix", () => {
    expect(resolve(1000, "abd999")).toBe("abd999");
    expect(resolve(1000, "train")).toBe("abc123");
    expect(resolve(1000, "abd")).toBe("abd999");
  });
  test("an ambiguous prefix is a usage error; someone else's is not found, like a missing one", () => {
    expect(() => resolve(1000, "ab")).toThrow(/"ab" matches 3 sessions; give more of the ID/);
    expect(() => resolve(1000, "ff")).toThrow(new NotFoundError("no session ff of yours on this node"));
    expect(() => resolve(1000, "ff0000")).toThrow(new NotFoundError("no session ff0000 of yours on this node"));
    expect(() => resolve(1000, "theirs")).toThrow(new NotFoundError("no session theirs of yours on this node"));
    expect(() => resolve(1000, "zz")).toThrow(new NotFoundError("no session zz of yours on this node"));
  });
  test("root's names and prefixes find only root's own sessions, even where another user's is older", () => {
    expect(resolve(0, "dev")).toBe("ee1111");
    expect(resolve(0, "ee")).toBe("ee1111");
    expect(() => resolve(0, "theirs")).toThrow(new NotFoundError("no session theirs of yours on this node"));
    expect(() => resolve(0, "ff")).toThrow(new NotFoundError("no session ff of yours on this node"));
    expect(() => resolve(0, "train")).toThrow(new NotFoundError("no session train of yours on this node"));
  });
  test("root reaches another user's session by its full ID, or by name and prefix with --user", () => {
    expect(resolve(0, "ff0000")).toBe("ff0000");
    expect(resolve(0, "dev", "bob")).toBe("ee0000");
    expect(resolve(0, "train", "ann")).toBe("abc123");
    expect(resolve(0, "abd", "ann")).toBe("abd999");
    expect(() => resolve(0, "ab", "ann")).toThrow(/"ab" matches 3 sessions/);
    // --user U looks among U's sessions only, full IDs included.
    expect(() => resolve(0, "ee1111", "bob")).toThrow(new NotFoundError("no session ee1111 of bob on this node"));
    expect(() => resolve(0, "eval", "bob")).toThrow(new NotFoundError("no session eval of bob on this node"));
  });
  test("--user from anyone but root: their own name works, another's is the usual not found", () => {
    expect(resolve(1000, "train", "ann")).toBe("abc123");
    expect(() => resolve(1000, "dev", "bob")).toThrow(new NotFoundError("no session dev of yours on this node"));
    expect(() => resolve(1000, "ee0000", "bob")).toThrow(new NotFoundError("no session ee0000 of yours on this node"));
    // A session of uid 1001 under another name is not 1000's, whatever its user field says.
    expect(() => resolve(1001, "train", "ann")).toThrow(new NotFoundError("no session train of yours on this node"));
  });
});
