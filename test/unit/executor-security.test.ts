/** The executor's checks of what callers send: request schema, image references, mount resolution, proofs. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { openSourceAs, parseMountFlag, permits } from "../../src/executor/sessions/mounts.ts";
import { createProof, sweepProofs, verifyProof } from "../../src/executor/proof.ts";
import { isImageReference, parseControl, parseCreateRequest, parseKeepRequest, parseStopRequest } from "../../src/executor/validate.ts";
import { redactGpuReport } from "../../src/gpu/report.ts";
import { removeDir, scopedDir, tempDir } from "../harness.ts";

const good = { gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [8888], env: ["A=b"], mounts: [], workdir: null, command: ["python3", "x.py"], cwd: "/home/ada", tty: true, term: "xterm-256color", noWait: false, detach: false, timeLimit: 3600 };

describe("image references (Docker's grammar)", () => {
  test.each([
    ["ubuntu", true],
    ["ubuntu:22.04", true],
    ["nvcr.io/nvidia/pytorch:24.05-py3", true],
    ["localhost:5000/team/image", true],
    [`busybox@sha256:${"a".repeat(64)}`, true],
    ["Ubuntu", false],
    ["UPPER/case", false],
    ["Registry.example.com/team/image", true],
    ["LOCALHOST/x", false],
    ["busybox\u001b]0;x\u0007", false],
    ["a b", false],
    ["-rm", false],
    ["", false],
    ["image:tag:tag", false],
  ])("%p is a reference: %p", (ref, ok) => expect(isImageReference(ref)).toBe(ok));
});

describe("create requests", () => {
  test("a well-formed request comes back unchanged, with or without a queue ticket", () => {
    expect(parseCreateRequest(good)).toEqual(good);
    expect(parseCreateRequest({ ...good, ticket: "eyJzIjoiYSJ9.c2lnbmF0dXJl" })).toEqual({ ...good, ticket: "eyJzIjoiYSJ9.c2lnbmF0dXJl" });
  });
  test("a request from a client that sends no timeLimit is still good, and has none", () => {
    const { timeLimit: _, ...older } = good;
    expect(parseCreateRequest(older).timeLimit).toBeUndefined();
  });
  test.each([
    [null, "the request must be a JSON object"],
    [{ ...good, extra: 1 }, 'unknown field "extra" in the request'],
    [{ ...good, constructor: 1 }, 'unknown field "constructor" in the request'],
    [{ ...good, slurm: { job: null, partition: null, account: null, qos: null, toString: 1 } }, 'slurm has an unknown field "toString"'],
    [{ ...good, gpus: -1 }, "gpus must be a whole number from 0 to 1024"],
    [{ ...good, gpus: "1" }, "gpus must be a whole number from 0 to 1024"],
    [{ ...good, ports: [8888, 8888] }, "ports lists a port twice"],
    [{ ...good, ports: [70000] }, "ports[0] must be a whole number from 1 to 65535"],
    [{ ...good, env: ["NOEQUALS"] }, "env[0] must be KEY=VALUE"],
    [{ ...good, image: "a\u0007b" }, "image may not contain control characters"],
    [{ ...good, cwd: "relative" }, "cwd must be an absolute path"],
    [{ ...good, term: "xterm 256" }, "term must be a terminal name like xterm-256color"],
    [{ ...good, detach: "yes" }, "detach must be true or false"],
    [{ ...good, command: Array(5000).fill("x") }, "command may have at most 4096 entries"],
    [{ ...good, ticket: null }, "ticket must be a string"],
    [{ ...good, ticket: "no-dot" }, "ticket must be a queue ticket"],
    [{ ...good, ticket: "a.b\n" }, "ticket may not contain control characters"],
    [{ ...good, ticket: `${"a".repeat(1024)}.b` }, "ticket is longer than 1024 characters"],
    [{ ...good, timeLimit: 0 }, "timeLimit must be a whole number from 1 to 31622400"],
    [{ ...good, timeLimit: 1.5 }, "timeLimit must be a whole number from 1 to 31622400"],
    [{ ...good, timeLimit: "4h" }, "timeLimit must be a whole number from 1 to 31622400"],
  ])("%j is refused: %s", (body, message) => {
    expect(() => parseCreateRequest(body)).toThrow(new UsageError(message));
  });
  test("stop: the timeout is bounded", () => {
    expect(parseStopRequest({})).toEqual({ timeout: 10 });
    expect(() => parseStopRequest({ timeout: 1e9 })).toThrow(new UsageError("timeout must be a whole number from 0 to 3600"));
  });
  test("keep: a whole number of seconds, nothing else", () => {
    expect(parseKeepRequest({ for: 7200 })).toEqual({ seconds: 7200 });
    expect(() => parseKeepRequest({ for: 0 })).toThrow(new UsageError("for must be a whole number from 1 to 31622400"));
    expect(() => parseKeepRequest({ for: 60, uid: 0 })).toThrow(new UsageError('unknown field "uid" in the request'));
    expect(() => parseKeepRequest([])).toThrow(new UsageError("the request must be a JSON object"));
  });
  test("terminal frames: only well-formed control messages count; anything else is null, never an error", () => {
    expect(parseControl('{"type":"resize","cols":80,"rows":24}')).toEqual({ type: "resize", cols: 80, rows: 24 });
    for (const junk of ["null", "1", "[]", '{"type":null}', '{"type":"resize","cols":"a"}', '{"type":"signal","name":"KILL; rm"}', "not json"]) {
      expect(parseControl(junk)).toBeNull();
    }
  });
});

describe("mounts", () => {
  test.each(["/etc", "/etc/ssh", "/usr", "/usr/local/bin/beaker", "/lib64", "/proc/1", "/dev", "/run", "/data/../etc"])("target %s is refused", (target) => {
    expect(() => parseMountFlag(`/data:${target}`)).toThrow(UsageError);
  });
  test("a control character anywhere is refused before it can be echoed", () => {
    expect(() => parseMountFlag("/da\u001b[2Jta:/x")).toThrow(new UsageError("--mount paths may not contain control characters or commas"));
  });
  test("permission bits: owner, group, other", () => {
    const user = { uid: 1000, gid: 1000, groups: [1000, 27] };
    expect(permits({ uid: 1000, gid: 0, mode: 0o700 }, user, 4)).toBe(true);
    expect(permits({ uid: 0, gid: 27, mode: 0o750 }, user, 1)).toBe(true);
    expect(permits({ uid: 0, gid: 0, mode: 0o750 }, user, 1)).toBe(false);
    expect(permits({ uid: 0, gid: 0, mode: 0o755 }, user, 4)).toBe(true);
    expect(permits({ uid: 0, gid: 0, mode: 0o700 }, { ...user, uid: 0 }, 4)).toBe(true);
  });
  test("a source resolves through links the way the kernel would, and every failure reads the same", () => {
    const root = tempDir("beaker-mnt-");
    try {
      mkdirSync(join(root, "real"));
      symlinkSync(join(root, "real"), join(root, "link"));
      symlinkSync("/etc", join(root, "etc-link"));
      mkdirSync(join(root, "closed"));
      writeFileSync(join(root, "closed", "x"), "x");
      chmodSync(join(root, "closed"), 0o700);
      const nobody = { name: "nobody", uid: 65534, gid: 65534, groups: [65534], home: "/", gecos: "" };
      const policy = { roots: [root], anywhere: false, refused: [], listed: [] };
      const opened = openSourceAs(join(root, "link"), nobody, policy);
      expect(opened.path).toBe(join(root, "real"));
      expect(opened.isDirectory).toBe(true);
      opened.close();
      const refusal = (path: string) => `--mount ${path}: no such file or directory that you (nobody) can read`;
      for (const path of [join(root, "missing"), join(root, "closed", "x"), join(root, "closed", "nope"), join(root, "etc-link")]) {
        expect(() => openSourceAs(path, nobody, policy)).toThrow(new UsageError(refusal(path)));
      }
    } finally {
      removeDir(root);
    }
  });
});

describe("caller proofs", () => {
  test("a proof others could have written is refused, whoever owns it", () => {
    using proofs = scopedDir("beaker-proof-");
    const dir = proofs.path;
    chmodSync(dir, 0o1733);
    const proof = createProof(dir);
    chmodSync(proof.path, 0o620);
    expect(() => verifyProof(dir, proof.header)).toThrow(/may be written by others/);
  });
  test("the sweep clears large and surplus files (stale ones go by ctime, which a test cannot set back)", () => {
    const dir = tempDir("beaker-proof-");
    for (let i = 0; i < 80; i++) writeFileSync(join(dir, `p${i}`), "x");
    writeFileSync(join(dir, "big"), Buffer.alloc(4096));
    sweepProofs(dir);
    const left = readdirSync(dir);
    expect(left).not.toContain("big");
    expect(left.length).toBe(64);
    removeDir(dir);
  });
});

describe("what a user may see of the GPUs", () => {
  test("no other user's session IDs, process names or pids", () => {
    const gpu = (uuid: string, claimedBy: string | null) => ({ index: 0, uuid, name: "x", busId: null, memoryTotalMiB: 1, memoryUsedMiB: 1, utilization: 0, migMode: null, migDevices: [], processes: [{ pid: 4242, name: "train.py", usedMemoryMiB: 1 }], healthy: true, error: null, claimedBy });
    const unavailable: Record<string, string> = { "GPU-c": "busy with processes no session owns: train.py (pid 4242)" };
    const report = { gpus: [gpu("GPU-a", "mine"), gpu("GPU-b", "theirs"), gpu("GPU-c", null)], unavailable };
    const seen = redactGpuReport(report, new Set(["mine"]));
    expect(seen.gpus.map((g) => [g.claimedBy, g.processes])).toEqual([["mine", []], [null, []], [null, []]]);
    expect(seen.unavailable).toEqual({ "GPU-b": "in use by another user's session", "GPU-c": "busy, no session" });
  });
});
