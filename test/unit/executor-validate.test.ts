/**
 * The executor's create-request schema, field by field: every bound at both edges, every pattern at the ends of its
 * character ranges, and the exact refusal each wrong value gets (src/executor/validate.ts; mutation-tested).
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { parseCreateRequest, requestLimits } from "../../src/executor/validate.ts";

const good = { gpus: 1, image: null, name: null, cpus: null, memory: null, sharedMemory: null, ports: [8888], env: ["A=b"], mounts: [], workdir: null, command: ["python3", "x.py"], cwd: "/home/ada", tty: true, term: "xterm-256color", noWait: false, detach: false, timeLimit: 3600 };
const slurm = { job: null, partition: null, account: null, qos: null };

/** The request with one field changed: parsed, that field comes back as sent. */
const accepts = (field: string, value: unknown) => expect((parseCreateRequest({ ...good, [field]: value }) as unknown as Record<string, unknown>)[field]).toEqual(value);
const refuses = (field: string, value: unknown, message: string) => expect(() => parseCreateRequest({ ...good, [field]: value })).toThrow(new UsageError(message));

describe("limits", () => {
  test("the daemon reads bodies of up to 256 KiB", () => {
    expect(requestLimits.bodyBytes).toBe(262144);
  });
});

describe("every field is required, except those newer clients added", () => {
  test.each(Object.keys(good).filter((k) => k !== "timeLimit"))("without %s the request is refused by name", (key) => {
    const { [key]: _, ...rest } = good as Record<string, unknown>;
    expect(() => parseCreateRequest(rest)).toThrow(new UsageError(`the request has no "${key}"`));
  });
  test("ticket, slurm and timeLimit may be left out, and stay out", () => {
    const { timeLimit: _, ...oldest } = good;
    const parsed = parseCreateRequest(oldest);
    expect(parsed).toEqual(oldest as never);
    expect(Object.keys(parsed)).not.toContain("ticket");
    expect(Object.keys(parsed)).not.toContain("slurm");
  });
  test("a body that is not an object, or is a list, is refused", () => {
    for (const body of [null, [], "x", 1, undefined]) expect(() => parseCreateRequest(body)).toThrow(new UsageError("the request must be a JSON object"));
  });
});

describe("numbers", () => {
  test("gpus: whole, from 0 to 1024, or null", () => {
    for (const v of [0, 1024, null]) accepts("gpus", v);
    for (const v of [-1, 1025, 0.5, "1", true]) refuses("gpus", v, "gpus must be a whole number from 0 to 1024");
  });
  test("cpus: any number above 0 and at most 4096, or null", () => {
    for (const v of [0.5, 4096, 1, null]) accepts("cpus", v);
    for (const v of [0, -1, 4096.5, "2", true]) refuses("cpus", v, "cpus must be a number above 0 and at most 4096");
  });
  test("timeLimit: whole seconds, from 1 to a year (366 days), or null", () => {
    for (const v of [1, 366 * 86400, null]) accepts("timeLimit", v);
    refuses("timeLimit", 366 * 86400 + 1, "timeLimit must be a whole number from 1 to 31622400");
  });
  test("ports: whole numbers from 1 to 65535, at most 32, none twice", () => {
    accepts("ports", [1, 65535]);
    accepts("ports", []);
    refuses("ports", [0], "ports[0] must be a whole number from 1 to 65535");
    refuses("ports", [80, 65536], "ports[1] must be a whole number from 1 to 65535");
    const many = Array.from({ length: 33 }, (_, i) => 1000 + i);
    accepts("ports", many.slice(0, 32));
    refuses("ports", many, "ports may have at most 32 entries");
    refuses("ports", 8888, "ports must be a list");
    refuses("ports", { 0: 8888 }, "ports must be a list");
  });
});

describe("text fields", () => {
  test("name: up to 63 letters, digits, _ . - , starting with a letter or digit", () => {
    for (const v of ["a", "z", "A", "Z", "0", "9", "xaz", "xAZ", "x09", "x_", "x.", "x-", "a".repeat(63), null]) accepts("name", v);
    for (const v of ["_x", ".x", "-x", "x y", "", "x/", "x:y"]) refuses("name", v, 'name must be letters, digits, "_", "." and "-"');
    refuses("name", "a".repeat(64), "name is longer than 63 characters");
    refuses("name", 7, "name must be a string");
    refuses("name", "x\u001f", "name may not contain control characters");
  });
  test("memory and sharedMemory: a size like 64g", () => {
    for (const v of ["64", "64g", "1.5GiB", "1.25g", "512 MB", "2T", "3kib", "1k", "1m", "1g", "1t", "1p", "1K", "1M", "1G", "1T", "1P", "1Gi", "1GI", "1Gb", "1GB", "1b", "1ib", "10  m", null]) {
      accepts("memory", v);
      accepts("sharedMemory", v);
    }
    for (const v of ["g", ".5g", "1.g", "64x", "64gg", "64 g b", "x64g", "64g ", "-1g", "1,5g", ""]) {
      refuses("memory", v, "memory must be a size like 64g");
      refuses("sharedMemory", v, "sharedMemory must be a size like 64g");
    }
    refuses("memory", "1".repeat(33), "memory is longer than 32 characters");
    accepts("memory", "1".repeat(32));
  });
  test("term: a terminal name, or null", () => {
    for (const v of ["AZaz09._+-", "xterm", null]) accepts("term", v);
    for (const v of ["", "x y", "x/y", "x;y"]) refuses("term", v, "term must be a terminal name like xterm-256color");
    accepts("term", "x".repeat(64));
    refuses("term", "x".repeat(65), "term is longer than 64 characters");
  });
  test("ticket: two base64url parts joined by a dot", () => {
    for (const v of ["AZaz09_-.AZaz09_-", "a.b"]) accepts("ticket", v);
    for (const v of ["axb", ".b", "a.", "a.b.c", "a=.b", "a.b=", "a b.c"]) refuses("ticket", v, "ticket must be a queue ticket");
    accepts("ticket", `${"a".repeat(1022)}.b`);
  });
  test("image: a reference Docker accepts, up to 512 characters, or null", () => {
    for (const v of ["ubuntu:22.04", "a".repeat(512), null]) accepts("image", v);
    refuses("image", "UPPER/case", 'image "UPPER/case" is not an image reference (like ubuntu:22.04 or registry.example.com/team/image:tag)');
    refuses("image", "a".repeat(513), "image is longer than 512 characters");
    refuses("image", 1, "image must be a string");
  });
  test("cwd and workdir: absolute paths of up to 4096 characters", () => {
    const longest = `/${"a".repeat(4095)}`;
    for (const v of ["/", longest]) {
      accepts("cwd", v);
      accepts("workdir", v);
    }
    accepts("workdir", null);
    refuses("cwd", `${longest}a`, "cwd is longer than 4096 characters");
    refuses("workdir", "a/", "workdir must be an absolute path");
    refuses("cwd", null, "cwd must be a string");
    refuses("cwd", "/a\u0000", "cwd may not contain control characters");
  });
  test("mounts: at most 32 strings of up to 8200 characters (SOURCE:TARGET)", () => {
    accepts("mounts", ["/a:/b", "x".repeat(8200)]);
    refuses("mounts", ["x".repeat(8201)], "mounts[0] is longer than 8200 characters");
    accepts("mounts", Array(32).fill("/a:/b"));
    refuses("mounts", Array(33).fill("/a:/b"), "mounts may have at most 32 entries");
    refuses("mounts", [1], "mounts[0] must be a string");
    refuses("mounts", "/a:/b", "mounts must be a list");
  });
});

describe("free text: the command and the environment", () => {
  test("command: any strings without NUL, at most 4096 of them and 128 KiB in all", () => {
    accepts("command", ["a\u0001\u007f b", "", "ü"]);
    accepts("command", Array(4096).fill("x"));
    refuses("command", Array(4097).fill("x"), "command may have at most 4096 entries");
    refuses("command", ["ok", "a\u0000b"], "command[1] must be a string without NUL");
    refuses("command", [1], "command[0] must be a string without NUL");
    accepts("command", ["a".repeat(65536), "b".repeat(65536)]);
    refuses("command", ["a".repeat(65536), "b".repeat(65537)], "command is larger than 131072 bytes in all");
    refuses("command", "ls", "command must be a list");
  });
  test("env: KEY=VALUE entries with a shell-style key, at most 256 of them and 64 KiB in all", () => {
    accepts("env", ["A=", "Z=1", "a=", "z=", "_=", "xA=", "xZ=", "xa=", "xz=", "x0=", "x9=", "x_=", "K=v=w", "K=a\nb"]);
    for (const v of ["0A=x", "A-B=x", "=x", " A=x", "A =x", "A"]) refuses("env", [v], "env[0] must be KEY=VALUE");
    refuses("env", ["A=\u0000"], "env[0] must be a string without NUL");
    accepts("env", Array(256).fill("A=b"));
    refuses("env", Array(257).fill("A=b"), "env may have at most 256 entries");
    accepts("env", [`A=${"x".repeat(65534)}`]);
    refuses("env", [`A=${"x".repeat(65535)}`], "env is larger than 65536 bytes in all");
    refuses("env", [`A=${"x".repeat(32766)}`, `B=${"x".repeat(32767)}`], "env is larger than 65536 bytes in all");
  });
});

describe("booleans", () => {
  test.each(["tty", "noWait", "detach"])("%s is true or false, nothing else", (field) => {
    accepts(field, true);
    accepts(field, false);
    for (const v of [null, 0, 1, "true"]) refuses(field, v, `${field} must be true or false`);
  });
});

describe("slurm: a record of its own four fields, each checked", () => {
  test("every field, null or a name; the job a number", () => {
    accepts("slurm", slurm);
    accepts("slurm", { job: "12345", partition: "AZaz09_.-", account: "a,b", qos: "normal" });
    accepts("slurm", { ...slurm, job: "9".repeat(32) });
    refuses("slurm", { ...slurm, job: "9".repeat(33) }, "slurm.job is longer than 32 characters");
    for (const job of ["12a", "a12", "", "1 2", "-1"]) refuses("slurm", { ...slurm, job }, "slurm.job must be a Slurm job ID (a number)");
    refuses("slurm", { ...slurm, partition: "a b" }, "slurm.partition must be a Slurm partition name");
    refuses("slurm", { ...slurm, account: "a;b" }, "slurm.account must be a Slurm account name");
    refuses("slurm", { ...slurm, qos: "" }, "slurm.qos must be a Slurm QOS name");
    refuses("slurm", { ...slurm, qos: "q".repeat(257) }, "slurm.qos is longer than 256 characters");
    refuses("slurm", { ...slurm, job: 12 }, "slurm.job must be a string");
  });
  test("every field must be there, and nothing else; the record itself an object", () => {
    for (const key of Object.keys(slurm)) {
      const { [key as keyof typeof slurm]: _, ...rest } = slurm;
      refuses("slurm", rest, `slurm has no "${key}"`);
    }
    refuses("slurm", { ...slurm, uid: 0 }, 'slurm has an unknown field "uid"');
    for (const v of [[], "x", 1]) refuses("slurm", v, "slurm must be an object");
  });
});
