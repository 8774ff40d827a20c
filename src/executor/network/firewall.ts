/**
 * The host's own traffic to the sessions' network. A session's address on its bridge (172.x) is routable from the
 * node itself, so without a rule any local user could open any port of any session from the host. One iptables rule
 * on the bridge interface refuses what local users send there; root (the executor, which relays ports for their
 * owners: port-relay.ts) gets through. Replies to connections a session opened to the host, and ports an admin
 * published (`publish: host`, Docker's DNAT), are let through: they are not the host reaching in.
 */
import { ConfigError, UnavailableError } from "../../errors.ts";

export const ruleComment = "beaker: only root reaches sessions";

/** The rule's words after `iptables -w -C|-I`, for one bridge interface. Pure. */
export function bridgeRule(bridge: string): string[] {
  return [
    "OUTPUT", "-o", bridge,
    "-m", "owner", "!", "--uid-owner", "0",
    "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED,DNAT",
    "-m", "comment", "--comment", ruleComment,
    "-j", "REJECT",
  ];
}

type Run = (argv: string[]) => { exitCode: number; stderr: string };

const runSync: Run = (argv) => {
  const p = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
  return { exitCode: p.exitCode ?? 1, stderr: p.stderr.toString().trim() };
};

/** Where iptables is, or a one-line error: without it the sessions' network is open to every local user. */
export function requireIptables(which: (name: string) => string | null = Bun.which): string {
  const path = which("iptables");
  if (!path) throw new ConfigError("iptables is not installed on this node: the executor needs it to keep local users off the sessions' network; install it (apt-get install iptables)");
  return path;
}

/** Installs the rule once (checked first, so a restart adds no second copy). */
export function guardSessionBridge(bridge: string, iptables: string, run: Run = runSync): void {
  if (run([iptables, "-w", "-C", ...bridgeRule(bridge)]).exitCode === 0) return;
  const added = run([iptables, "-w", "-I", ...bridgeRule(bridge)]);
  if (added.exitCode !== 0) throw new UnavailableError(`cannot keep local users off the sessions' network (${bridge}): iptables says ${added.stderr.split("\n")[0] || `exit ${added.exitCode}`}`);
}
