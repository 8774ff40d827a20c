/**
 * What the fuzzer checks after every step (fuzz.test.ts): what a user has on the node, as one comparable value. A
 * user's state is their sessions (ID, name, status, ports, as their own list shows them), their containers (session
 * label and state, as Docker says) and a hash of the sentinel tree in their home. One user's step must leave the
 * other's state exactly as it was; the executor's pid stays the same and its memory and open files stay bounded.
 */
import { createHash } from "node:crypto";
import { chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import type { TestExecutor } from "../executor-harness.ts";
import { eventually, removeDir } from "../harness.ts";
import type { Known } from "./fuzz-gen.ts";
import { sentinelDir } from "./fuzz-values.ts";
import { proofFor } from "./harness.ts";

export interface UserState {
  sessions: string[];
  containers: string[];
  home: string;
}

interface Listed {
  id: string;
  name: string;
  uid: number;
  status: string;
  ports: string[];
}

const dockerSocket = process.env.DOCKER_HOST?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock";

/** A user's own `GET /v1/sessions?all=1`. */
export async function listOf(executor: TestExecutor, uid: number): Promise<Listed[]> {
  const res = await fetch("http://beaker/v1/sessions?all=1", { unix: executor.socket, headers: { "x-beaker-proof": proofFor(executor, uid) } });
  if (res.status !== 200) throw new Error(`list as uid ${uid}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Listed[];
}

/** The node's session containers, by owner uid: `SESSION STATE` lines, sorted. */
export async function containersByUid(node: string): Promise<Map<number, string[]>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`beaker.node=${node}`] }));
  const res = await fetch(`http://docker/containers/json?all=1&filters=${filters}`, { unix: dockerSocket });
  const containers = (await res.json()) as Array<{ Labels: Record<string, string>; State: string }>;
  const byUid = new Map<number, string[]>();
  for (const c of containers) {
    const uid = Number(c.Labels["beaker.uid"]);
    byUid.set(uid, [...(byUid.get(uid) ?? []), `${c.Labels["beaker.session"]} ${c.State}`].sort());
  }
  return byUid;
}

/** Every entry of the tree (not following links): name, mode, owner, size, content or link target. */
export function hashTree(root: string): string {
  const hash = createHash("sha256");
  const walk = (path: string) => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return void hash.update(`${path} missing\n`);
    hash.update(`${path} ${st.mode} ${st.uid}:${st.gid} ${st.size}\n`);
    if (st.isSymbolicLink()) hash.update(readlinkSync(path));
    else if (st.isFile()) hash.update(readFileSync(path));
    else if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  walk(root);
  return hash.digest("hex");
}

export function sentinelOf(home: string): string {
  return join(home, sentinelDir);
}

/**
 * The sentinel tree in `home`, owned by `uid`: an open directory and file, a private directory (0700) and file
 * (0600), and links into the other user's tree (mount sources a hostile create tries).
 */
export function plantSentinel(home: string, uid: number, otherHome: string): void {
  const root = sentinelOf(home);
  removeDir(root);
  const entries: Array<[string, "dir" | "file", number]> = [
    ["", "dir", 0o755],
    ["open", "dir", 0o755],
    ["open/file", "file", 0o644],
    ["private", "dir", 0o700],
    ["private/secret", "file", 0o600],
  ];
  for (const [rel, kind, mode] of entries) {
    const path = join(root, rel);
    if (kind === "dir") mkdirSync(path);
    else writeFileSync(path, `${rel} of ${uid}\n`);
    chmodSync(path, mode);
    chownSync(path, uid, uid);
  }
  for (const [name, target] of [["to-theirs", "open"], ["to-their-private", "private"]]) {
    symlinkSync(join(sentinelOf(otherHome), target!), join(root, name!));
    Bun.spawnSync(["chown", "-h", `${uid}:${uid}`, join(root, name!)]);
  }
}

export type Observed = UserState & { known: Known[] };

/** What each of `users` has on the node now (one look at Docker for all of them). */
export async function statesOf(executor: TestExecutor, users: Array<{ uid: number; home: string }>): Promise<Observed[]> {
  const [containers, ...lists] = await Promise.all([containersByUid(executor.nodeName), ...users.map((u) => listOf(executor, u.uid))]);
  return users.map((u, i) => ({
    sessions: lists[i]!.map((s) => `${s.id} ${s.name} uid=${s.uid} ${s.status} [${s.ports.join(",")}]`).sort(),
    containers: containers.get(u.uid) ?? [],
    home: hashTree(sentinelOf(u.home)),
    known: lists[i]!.map((s) => ({ id: s.id, name: s.name, status: s.status })),
  }));
}

/** No request of the user's is still under way: no session between states, and a container for exactly each live one. */
export function settled(state: Observed): boolean {
  if (state.known.some((s) => !["running", "exited"].includes(s.status))) return false;
  const running = state.known.filter((s) => s.status === "running").map((s) => `${s.id} running`);
  return JSON.stringify(running.sort()) === JSON.stringify(state.containers);
}

/** The user's state once what their last step started has finished (bounded: a state that never settles is a finding). */
export async function settledState(executor: TestExecutor, user: { uid: number; home: string }): Promise<Observed> {
  let last: Observed | null = null;
  return eventually(
    async () => {
      const [state] = await statesOf(executor, [user]);
      last = state!;
      return settled(state!) ? state! : null;
    },
    20_000,
    { what: `uid ${user.uid}'s sessions and containers to settle`, intervalMs: 50, detail: () => JSON.stringify(last) },
  );
}

export function sameState(a: UserState, b: UserState): boolean {
  return JSON.stringify([a.sessions, a.containers, a.home]) === JSON.stringify([b.sessions, b.containers, b.home]);
}

/** The executor's resident memory (MiB) and open file descriptors. */
export function footprint(pid: number): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { rssMiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}
