/**
 * Values for the fuzzer's creates (fuzz-gen.ts): a plain create that must start (`--gpus 0`, busybox, `sleep`), a
 * hostile one (env, mount, port, workdir and name values aimed at the other user, the host and the executor), and
 * bodies that are not a create at all. Mount targets named /fz* are where a session's probe writes: only sources in
 * the other user's home get them, so a write that lands is a breach, never the caller's own doing.
 */
import type { Ctx, Gen, Known, Step } from "./fuzz-gen.ts";

export const fuzzImage = process.env.BEAKER_TEST_BUSYBOX ?? "beaker-test/busybox:latest";
/** The sentinel tree in each user's home: hashed after every step (fuzz-oracle.ts). */
export const sentinelDir = "fuzz-sentinel";

/** A session that writes into every /fz* mount it was given, then sleeps: what it leaves in a home is checked. */
const probeCommand = ["/bin/sh", "-c", "for d in /fz*; do echo pwn > $d/pwn 2>/dev/null; done; exec /bin/sleep 3600"];

/** Names both users draw from, so they collide across users; some are the other user's own names. */
const names = ["dev", "train", "x", "a.b_c-d", "0", "fuzz", "n".repeat(63)];
export function sessionNames(theirs: Known[]): string[] {
  return [...names, ...theirs.map((s) => s.name)];
}

export function createBody(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    gpus: 0,
    image: fuzzImage,
    name: null,
    cpus: null,
    memory: null,
    sharedMemory: null,
    ports: [],
    env: [],
    mounts: [],
    workdir: null,
    command: ["sleep", "3600"],
    cwd: "/tmp",
    tty: false,
    term: null,
    noWait: true,
    detach: true,
    ...fields,
  };
}

/**
 * A create that must start: a name (often one the other user holds), maybe a port the other user publishes too.
 * `mustStart` unless the caller already has a session of that name.
 */
export function plainCreate(g: Gen, ctx: Ctx, pool: string[]): Step & { kind: "create" } {
  const name = g.chance(0.8) ? g.pick(pool) : null;
  const taken = name !== null && ctx.own.some((s) => s.name === name && s.status !== "exited");
  const body = createBody({ name, ports: g.chance(0.3) ? [g.pick([8080, 8888, 22])] : [], tty: g.chance(0.3) });
  return { kind: "create", body, mustStart: !taken };
}

function hostileMounts(g: Gen, ctx: Ctx): string[] {
  const theirs = `${ctx.otherHome}/${sentinelDir}`;
  const mine = `${ctx.ownHome}/${sentinelDir}`;
  const fz = () => `/fz${g.int(0, 9)}`;
  const pool = [
    () => `${theirs}:${fz()}`,
    () => `${theirs}/open:${fz()}`,
    () => `${theirs}/private:${fz()}`,
    () => `${theirs}/open/file:${fz()}/f`,
    () => `${ctx.otherHome}:${fz()}`,
    () => `${ctx.ownHome}/../${ctx.otherHome.split("/").pop()}/${sentinelDir}:${fz()}`,
    () => `${mine}/to-theirs:${fz()}`,
    () => `${mine}/to-their-private:${fz()}`,
    () => `${theirs}:${fz()}:ro`,
    () => `${mine}/open:/data`,
    () => `${mine}:/etc`,
    () => `${mine}:/usr/lib`,
    () => `/etc:/data`,
    () => `/var/lib/docker:/d`,
    () => `/run/beaker:/r`,
    () => `/proc/1/root:/r`,
    () => `relative:/x`,
    () => `${mine}:relative`,
    () => ":",
    () => `${mine}:/a:rw:ro`,
    () => `${mine}/\u001b[2J:/x`,
    () => `${mine}/${"d/".repeat(1000)}:/x`,
  ];
  return Array.from({ length: g.int(1, 3) }, () => g.pick(pool)());
}

function hostileEnv(g: Gen, ctx: Ctx): string[] {
  const pool = [
    "NVIDIA_VISIBLE_DEVICES=all",
    "CUDA_VISIBLE_DEVICES=0",
    "LD_PRELOAD=/tmp/x.so",
    "HOME=/root",
    `HOME=${ctx.otherHome}`,
    "USER=root",
    "PATH=",
    "BEAKER_SESSION_ID=x",
    `K=${"v".repeat(g.int(0, 70_000))}`,
    "=x",
    "1A=b",
    "K\u0000=v",
    "A=b\nC=d",
    "NOEQUALS",
  ];
  return Array.from({ length: g.int(1, 4) }, () => g.pick(pool));
}

/** A create with one to three hostile fields; some are refused, some start (and then probe their mounts). */
export function hostileCreate(g: Gen, ctx: Ctx): Step & { kind: "create" } {
  const fields: Record<string, unknown> = { command: probeCommand };
  const choices: Array<() => void> = [
    () => (fields.mounts = hostileMounts(g, ctx)),
    () => (fields.env = hostileEnv(g, ctx)),
    () => (fields.ports = g.pick([[0], [65536], [-1], [8080, 8080], Array.from({ length: 40 }, (_, i) => 9000 + i), ["80"], [1.5], [1], [65535]])),
    () => (fields.workdir = g.pick(["/", "/root", `${ctx.otherHome}/${sentinelDir}/private`, "relative", "/tmp/../etc", "/proc/self", `/${"w".repeat(5000)}`])),
    () => (fields.name = g.pick(["-bad", "a b", "x".repeat(64), "名前", "ok.name", "\u001b]0;t\u0007"])),
    () => (fields.cwd = g.pick([`${ctx.otherHome}/${sentinelDir}/private`, ctx.otherHome, "/root", "rel"])),
    () => (fields.memory = g.pick(["1k", "100t", "-1", "1e9g"])),
    () => (fields.image = g.pick(["beaker-test/debian:bookworm", "UPPER/case", "a@sha256:00", "../../x"])),
  ];
  for (let i = g.int(1, 3); i > 0; i--) g.pick(choices)();
  return { kind: "create", body: createBody(fields), mustStart: false };
}

/** Bodies that are never a valid create: random bytes, wrong types, deep nesting, unknown fields. */
export function invalidBody(g: Gen): string[] {
  const junk = [null, -1, 1.5, "x", "", [], {}, [null], true, "\u0000", 1e300, "a".repeat(5000)];
  const keys = Object.keys(createBody());
  // timeLimit is checked after every other field: a junk value that happens to be valid still makes no session.
  return [
    String.fromCharCode(...g.bytes(g.int(0, 64))),
    JSON.stringify(createBody({ timeLimit: 0, [g.pick(keys)]: g.pick(junk) })),
    JSON.stringify(createBody({ [g.pick(["privileged", "uid", "user", "__proto__", "constructor"])]: true })),
    `{"__proto__":{"uid":0},"gpus":0}`,
    "[".repeat(g.int(1, 20_000)),
    `{"a":${"[".repeat(5000)}${"]".repeat(5000)}}`,
    JSON.stringify(g.pick(junk)),
    "",
    JSON.stringify({ timeout: g.pick([...junk, 3601, 0]) }),
  ];
}
