/** What Docker published of the ports a session asked for, read from `docker inspect` after the start. Pure. */

type PortMap = Record<string, Array<{ HostIp: string; HostPort: string }> | null>;

/** The parts of a container's inspect that tell whether its ports were published. */
export interface PublishedState {
  running: boolean;
  ports: PortMap | undefined;
  networks: Record<string, { NetworkID?: string }> | undefined;
}

/** `HOST_IP:HOST_PORT->PORT/tcp` for each published binding. */
export function publishedPorts(ports: PortMap | undefined): string[] {
  return Object.entries(ports ?? {}).flatMap(([port, bindings]) => (bindings ?? []).map((b) => `${b.HostIp}:${b.HostPort}->${port}`));
}

/**
 * The requested ports the session did not get, with why; null when it got them all. A container on no network (an
 * engine without a bridge network) got none of them. Docker also empties the port map of a container that has already
 * exited, so a session that ends at once is not held to its ports unless it never had a network.
 */
export function missingPorts(requested: number[], state: PublishedState): { ports: number[]; why: string } | null {
  // Docker's "none" network is a network in name only: nothing can be published on it.
  const onNetwork = Object.entries(state.networks ?? {}).some(([name, n]) => name !== "none" && Boolean(n.NetworkID));
  if (!onNetwork) return requested.length > 0 ? { ports: requested, why: 'the container got no network to publish on (the node\'s sessionNetwork is "none", or its Docker engine has no bridge)' } : null;
  if (!state.running) return null;
  const published = new Set(
    Object.entries(state.ports ?? {})
      .filter(([, bindings]) => (bindings ?? []).some((b) => b.HostPort !== ""))
      .map(([port]) => port),
  );
  const missing = requested.filter((p) => !published.has(`${p}/tcp`));
  return missing.length > 0 ? { ports: missing, why: "Docker bound no host port to it" } : null;
}

/** `port 8888 could not be published: ...` (one line, for the user). */
export function missingPortsMessage(missing: { ports: number[]; why: string }): string {
  const [one, ...more] = missing.ports;
  const what = more.length === 0 ? `port ${one}` : `ports ${missing.ports.join(", ")}`;
  return `${what} could not be published: ${missing.why}; ask the node's admin, or start the session without --port`;
}
