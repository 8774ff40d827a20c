/**
 * Who a relayed request runs as. The server names the Beaker account it authenticated; the node maps it to the local
 * account of the same name, or to the one `linkUsers` names for it, through NSS (`getent passwd NAME`, so LDAP and
 * SSSD accounts resolve too). Root (uid 0), system accounts (uid under 1000) and names this node does not know are
 * refused: the link can act only as an ordinary user of the node, whatever the server says.
 */
import { ForbiddenError } from "../../errors.ts";

export interface LocalAccount {
  name: string;
  uid: number;
}

/** The lowest uid a relayed request may run as (Debian's and Red Hat's first ordinary user). */
export const firstUserUid = 1000;

const beakerName = /^[a-z_][a-z0-9_.-]{0,31}$/;

/** The local account name for a Beaker account: `linkUsers`' entry, else the same name. Pure. */
export function localNameFor(account: string, linkUsers: Record<string, string>): string {
  return Object.hasOwn(linkUsers, account) ? linkUsers[account]! : account;
}

/**
 * The local account a relayed request for `account` runs as, or a ForbiddenError saying why not. `lookup` is
 * getpwnam: the entry for a name, or null.
 */
export async function mapLinkAccount(account: string, linkUsers: Record<string, string>, lookup: (name: string) => Promise<LocalAccount | null>): Promise<LocalAccount> {
  if (!beakerName.test(account)) throw new ForbiddenError(`"${account}" is not a Beaker account name`);
  const name = localNameFor(account, linkUsers);
  const local = await lookup(name);
  if (!local) throw new ForbiddenError(`Beaker account ${account} has no account on this node (looked for ${name}; an admin may map it in linkUsers)`);
  if (local.uid === 0) throw new ForbiddenError(`Beaker account ${account} maps to ${local.name}, uid 0: the node link never acts as root`);
  if (local.uid < firstUserUid) throw new ForbiddenError(`Beaker account ${account} maps to ${local.name}, a system account (uid ${local.uid}): the node link acts only as ordinary users`);
  return local;
}

/** getpwnam through NSS, cached for a minute (a page polls; `getent` runs once a minute per user, not per request). */
export function passwdLookup(now: () => number = Date.now): (name: string) => Promise<LocalAccount | null> {
  const cache = new Map<string, { entry: LocalAccount | null; at: number }>();
  return async (name) => {
    const hit = cache.get(name);
    if (hit && now() - hit.at < 60_000) return hit.entry;
    const proc = Bun.spawn(["getent", "passwd", "--", name], { stdout: "pipe", stderr: "ignore" });
    const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    const fields = out.split("\n")[0]!.split(":");
    // getent may answer a numeric name with that uid's entry: only an entry of exactly this name counts.
    const entry = fields.length >= 7 && fields[0] === name && /^\d+$/.test(fields[2]!) ? { name, uid: Number(fields[2]) } : null;
    if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
    cache.set(name, { entry, at: now() });
    return entry;
  };
}
