import { NotFoundError } from "../../errors.ts";
import type { SessionUser } from "../../runtime/docker/spec.ts";

/**
 * The caller's account by uid, through NSS (`getent`), so LDAP and SSSD users on cluster nodes resolve too.
 * Answers are cached for a minute: a session create asks once, not per request.
 */
export class UserDirectory {
  private cache = new Map<number, { user: SessionUser; at: number }>();
  private groupNames = new Map<number, string>();

  private inflight = new Map<number, Promise<SessionUser>>();

  /** One lookup per uid at a time: a burst of requests from one user spawns `getent` once. */
  lookup(uid: number): Promise<SessionUser> {
    const hit = this.cache.get(uid);
    if (hit && Date.now() - hit.at < 60_000) return Promise.resolve(hit.user);
    let pending = this.inflight.get(uid);
    if (!pending) {
      pending = this.resolveUser(uid).finally(() => this.inflight.delete(uid));
      this.inflight.set(uid, pending);
    }
    return pending;
  }

  private async resolveUser(uid: number): Promise<SessionUser> {
    const entry = (await run(["getent", "passwd", String(uid)])).trim();
    if (!entry) throw new NotFoundError(`uid ${uid} has no account on this node`);
    const [name, , , gid, gecos, home] = entry.split(":");
    const ids = (await run(["id", "-G", name!])).trim().split(/\s+/).filter(Boolean).map(Number);
    const user: SessionUser = { name: name!, uid, gid: Number(gid), groups: ids, home: home!, gecos: gecos ?? "" };
    this.cache.set(uid, { user, at: Date.now() });
    return user;
  }

  /** Group names for the container's /etc/group. */
  async groupName(gid: number): Promise<string | null> {
    const known = this.groupNames.get(gid);
    if (known) return known;
    const entry = (await run(["getent", "group", String(gid)])).trim();
    const name = entry ? entry.split(":")[0]! : null;
    if (name) this.groupNames.set(gid, name);
    return name;
  }
}

async function run(cmd: string[]): Promise<string> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "ignore" });
  const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return out;
}
