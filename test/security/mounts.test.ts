/**
 * Issue 26, finding 1: "root creates files where the user cannot write". An ordinary user asked for a mount target
 * (or a working directory) inside another bind mount, and runc made the missing path on the host as root: in folders
 * the user may only read, in the user's own home, in the executor's state folder. Each attack here runs as
 * `beaker-test-user`; after each, no root-owned file carries the attack's tag anywhere it could have landed, and the
 * executor (the same process) still makes sessions.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestExecutor, testUser } from "../executor-harness.ts";
import { removeDir, tempDir, testNodeName } from "../harness.ts";
import { asUser, executorPid } from "./harness.ts";

const node = testNodeName(import.meta.file);
/** A folder the admin lists in mountPaths, root-owned 0755, with `ro/` in it: the user may read both, write neither. */
const shared = tempDir("beaker-mountpaths-");
const executor = new TestExecutor({ nodeName: node, extra: `mountPaths: [${shared}]\n` });
const home = `/home/${testUser}`;
let pid = 0;

beforeAll(async () => {
  mkdirSync(join(shared, "ro"), { mode: 0o755 });
  executor.removeLeftovers();
  await executor.start();
  pid = await executorPid(executor);
});
afterAll(async () => {
  await executor.cleanup();
  removeDir(shared);
});

/** Every path under the places a root mkdir could have landed whose name carries `tag`, with its owner's uid. */
function tagged(tag: string): string[] {
  const found = Bun.spawnSync(["find", home, shared, executor.dir, "-name", `*${tag}*`, "-printf", "%u %p\\n"]).stdout.toString();
  return found.trim().split("\n").filter(Boolean);
}

/** The user's own file and folder to mount, named with the tag. */
function userSources(tag: string): { file: string; dir: string } {
  const file = `${home}/f-${tag}`;
  const dir = `${home}/d-${tag}`;
  asUser(testUser, `echo mine > ${file} && mkdir ${dir}`);
  return { file, dir };
}

async function create(args: string[]) {
  return executor.run(["session", "create", "--gpus", "0", ...args], { user: testUser });
}

/** After an attack: nothing root-owned with the tag, and the executor is the same process and still makes sessions. */
async function expectNodeUnharmed(tag: string): Promise<void> {
  expect(tagged(tag).filter((line) => line.startsWith("root "))).toEqual([]);
  expect(await executorPid(executor)).toBe(pid);
  expect(await create(["--", "true"])).toEqual({ exitCode: 0, stdout: "", stderr: "" });
}

function cleanTag(tag: string): void {
  for (const line of tagged(tag)) removeDir(line.slice(line.indexOf(" ") + 1));
}

describe("a mount target inside another bind mount is never made by root", () => {
  test.each([
    ["a file", (s: { file: string; dir: string }, tag: string) => `${s.file}:/data/planted-${tag}`],
    ["a folder two levels down", (s: { file: string; dir: string }, tag: string) => `${s.dir}:/data/a-${tag}/b`],
  ])("inside a folder the user may read but not write: %s is refused", async (_, target) => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${shared}/ro:/data`, "--mount", target(sources, tag), "--", "true"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`/data/`);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("inside a folder of the node's mountPaths: refused, nothing made there", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${sources.dir}:${shared}/ro/planted-${tag}`, "--", "true"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("inside the user's home: made as the user, and the mount is there", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${sources.file}:${home}/in-${tag}/file`, "--mount", `${sources.dir}:${home}/dir-${tag}`, "--", "cat", `${home}/in-${tag}/file`]);
      expect(r).toEqual({ exitCode: 0, stdout: "mine\n", stderr: "" });
      expect(tagged(tag).sort()).toEqual([`${testUser} ${home}/d-${tag}`, `${testUser} ${home}/dir-${tag}`, `${testUser} ${home}/f-${tag}`, `${testUser} ${home}/in-${tag}`].sort());
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("through a link in the home that points, inside the session, at a folder the user may only read: refused", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    asUser(testUser, `ln -s /data ${home}/lnk-${tag}`);
    try {
      const r = await create(["--mount", `${shared}/ro:/data`, "--mount", `${sources.dir}:${home}/lnk-${tag}/planted-${tag}`, "--", "true"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("home inside a user's mount (--mount DIR:/home) is made in DIR as the user", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${sources.dir}:/home`, "--", "true"]);
      expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "" });
      const made = Bun.spawnSync(["stat", "-c", "%U", join(sources.dir, testUser)]).stdout.toString().trim();
      expect(made).toBe(testUser);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("the executor's own folder cannot be mounted, so nothing can be planted in its state", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${executor.dir}:/data`, "--mount", `${sources.file}:/data/state/planted-${tag}`, "--", "true"]);
      expect(r.exitCode).toBe(4);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });
});

describe("--workdir inside a bind mount is never made by root", () => {
  test.each([
    ["a folder the user may read but not write", (tag: string) => ["--mount", `${shared}/ro:/data`, "--workdir", `/data/w-${tag}`]],
    ["a folder of mountPaths", (tag: string) => ["--workdir", `${shared}/ro/w-${tag}`]],
  ])("inside %s: refused", async (_, args) => {
    const tag = randomBytes(4).toString("hex");
    try {
      const r = await create([...args(tag), "--", "true"]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`w-${tag}`);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });

  test("in a folder the user may not search: the same answer whether the path exists there or not", async () => {
    mkdirSync(join(shared, "closed", "exists"), { recursive: true, mode: 0o700 });
    const answers = await Promise.all(
      ["exists", "missing"].map(async (name) => {
        const r = await create(["--workdir", `${shared}/closed/${name}`, "--", "true"]);
        return { code: r.exitCode, err: r.stderr.replace(name, "NAME") };
      }),
    );
    expect(answers[0]!.code).toBe(2);
    expect(answers[1]).toEqual(answers[0]!);
  });

  test("inside the user's home: made as the user, and the session starts there", async () => {
    const tag = randomBytes(4).toString("hex");
    try {
      const r = await create(["--workdir", `${home}/w-${tag}/x`, "--", "pwd"]);
      expect(r).toEqual({ exitCode: 0, stdout: `${home}/w-${tag}/x\n`, stderr: "" });
      expect(tagged(tag)).toEqual([`${testUser} ${home}/w-${tag}`]);
      await expectNodeUnharmed(tag);
    } finally {
      cleanTag(tag);
    }
  });
});

describe("sources: only the user's home and what the admin lists", () => {
  test.each(["/var", "/var/tmp", "/opt", "/usr/local", "/srv"])("--mount %s:/data is refused by name", async (source) => {
    const r = await create(["--mount", `${source}:/data`, "--", "true"]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toBe(`beaker: --mount ${source}: not allowed in a session (only your home and this node's mountPaths: ${shared})\n`);
  });

  test("a folder of mountPaths and the user's home are mounted", async () => {
    const tag = randomBytes(4).toString("hex");
    const sources = userSources(tag);
    try {
      const r = await create(["--mount", `${shared}/ro:/data:ro`, "--mount", `${sources.file}:/mine`, "--", "sh", "-c", "ls -d /data; cat /mine"]);
      expect(r).toEqual({ exitCode: 0, stdout: "/data\nmine\n", stderr: "" });
    } finally {
      cleanTag(tag);
    }
  });
});

describe("the executor's start never fails on what is left in its staging folder", () => {
  test("a file and a folder that is still a mount in <stateDir>/mounts: the executor starts", async () => {
    const staging = join(executor.dir, "state", "mounts");
    mkdirSync(join(staging, "leftover", "0"), { recursive: true });
    writeFileSync(join(staging, "planted"), "");
    const held = tempDir("beaker-held-");
    writeFileSync(join(held, "keep"), "user data");
    expect(Bun.spawnSync(["mount", "--bind", held, join(staging, "leftover", "0")]).exitCode).toBe(0);
    // Mounted twice: one lazy unmount leaves the first bind in place.
    expect(Bun.spawnSync(["mount", "--bind", held, join(staging, "leftover", "0")]).exitCode).toBe(0);
    try {
      await executor.kill();
      await executor.start();
      pid = await executorPid(executor);
      expect(Bun.spawnSync(["cat", join(held, "keep")]).stdout.toString()).toBe("user data");
      expect(await create(["--", "true"])).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    } finally {
      Bun.spawnSync(["umount", "--lazy", join(staging, "leftover", "0")]);
      Bun.spawnSync(["umount", "--lazy", join(staging, "leftover", "0")]);
      removeDir(held);
    }
  });
});
