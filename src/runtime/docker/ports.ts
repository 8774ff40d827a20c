/**
 * A session's ports, read from `docker inspect` after the start: whether it got them (on a network; and, on a node
 * that publishes, a host port each), and where the executor connects to reach one. Pure.
 */

type PortMap = Record<string, Array<{ HostIp: string; HostPort: string }> | null>;

/** The parts of a container's inspect that tell whether its ports were had, and where it is on its network. */
export interface PublishedState {
  running: boolean;
  ports: PortMap | undefined;
  networks: Record<string, { NetworkID?: string; IPAddress?: string }> | undefined;
  /** HostConfig.NetworkMode: a network's name, `host`, `none`, or `container:ID` (a warm namespace's holder). */
  mode?: string;
}

/** `HOST_IP:HOST_PORT->PORT/tcp` for each published binding. */
export function publishedPorts(ports: PortMap | undefined): string[] {
  return Object.entries(ports ?? {}).flatMap(([port, bindings]) => (bindings ?? []).map((b) => `${b.HostIp}:${b.HostPort}->${port}`));
}

/** How the session's requested ports are shown when nothing is published: `8888/tcp`, reached through the executor. */
export function sessionPorts(requested: number[]): string[] {
  return requested.map((p) => `${p}/tcp`);
}

/** The container ports of a session's `ports` (`8888/tcp`, `127.0.0.1:49153->8888/tcp`), once each: what the server links. */
export function sessionPortNumbers(ports: string[]): number[] {
  const numbers = ports.map((p) => Number(/(?:^|->)(\d{1,5})\/tcp$/.exec(p)?.[1])).filter((n) => n >= 1 && n <= 65535);
  return [...new Set(numbers)];
}

function onNetwork(state: PublishedState): boolean {
  // A warm namespace's holder is on the sessions' network. Docker's "none" network is a network in name only.
  if (state.mode?.startsWith("container:") || state.mode === "host") return true;
  return Object.entries(state.networks ?? {}).some(([name, n]) => name !== "none" && Boolean(n.NetworkID));
}

/**
 * The requested ports the session did not get, with why; null when it got them all. A container on no network (an
 * engine without a bridge network, or sessionNetwork none) got none of them. `published`: the node publishes ports on
 * its host network (`publish: host`), so each must have a host port too. Docker empties the port map of a container
 * that has already exited, so a session that ends at once is not held to its ports unless it never had a network.
 */
export function missingPorts(requested: number[], state: PublishedState, published: boolean): { ports: number[]; why: string } | null {
  if (requested.length === 0) return null;
  if (!onNetwork(state)) return { ports: requested, why: 'the container got no network (the node\'s sessionNetwork is "none", or its Docker engine has no bridge)' };
  if (!published || !state.running) return null;
  const bound = new Set(
    Object.entries(state.ports ?? {})
      .filter(([, bindings]) => (bindings ?? []).some((b) => b.HostPort !== ""))
      .map(([port]) => port),
  );
  const missing = requested.filter((p) => !bound.has(`${p}/tcp`));
  return missing.length > 0 ? { ports: missing, why: "Docker bound no host port to it" } : null;
}

/** `port 8888 cannot be reached: ...` (one line, for the user). */
export function missingPortsMessage(missing: { ports: number[]; why: string }): string {
  const [one, ...more] = missing.ports;
  const what = more.length === 0 ? `port ${one}` : `ports ${missing.ports.join(", ")}`;
  return `${what} cannot be reached: ${missing.why}; ask the node's admin, or start the session without --port`;
}

/**
 * Where the executor connects to reach the session's ports: its address on its network, its holder's (a warm
 * namespace: look that container up next), or this host's loopback (sessionNetwork host); null: it has no network.
 */
export function portTarget(state: PublishedState): { ip: string } | { holder: string } | null {
  if (state.mode?.startsWith("container:")) return { holder: state.mode.slice("container:".length) };
  if (state.mode === "host") return { ip: "127.0.0.1" };
  const ip = Object.entries(state.networks ?? {}).find(([name, n]) => name !== "none" && n.IPAddress)?.[1].IPAddress;
  return ip ? { ip } : null;
}
