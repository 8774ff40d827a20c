/** Which requested ports a started container did not get, read from docker inspect (shapes recorded from Docker 20.10). */
import { expect, test } from "bun:test";
import { missingPorts, missingPortsMessage, portTarget, publishedPorts, sessionPortNumbers, sessionPorts, type PublishedState } from "../../src/runtime/docker/ports.ts";

const bridge = { bridge: { NetworkID: "44ba1d31d70c", EndpointID: "e1", IPAddress: "172.17.0.5" } };
// An engine started with --bridge none: the container is on "bridge" by name, but no such network exists.
const noNetwork = { bridge: { NetworkID: "", EndpointID: "", IPAddress: "" } };
const bound = { "8888/tcp": [{ HostIp: "0.0.0.0", HostPort: "49153" }] };
const unbound = { "8888/tcp": null };

test.each<[string, number[], PublishedState, boolean, { ports: number[]; why: RegExp } | null]>([
  ["published: all bound", [8888], { running: true, ports: bound, networks: bridge }, true, null],
  ["published: one of two bound", [8888, 9999], { running: true, ports: bound, networks: bridge }, true, { ports: [9999], why: /no host port/ }],
  ["published: a binding without a host port", [8888], { running: true, ports: { "8888/tcp": [{ HostIp: "", HostPort: "" }] }, networks: bridge }, true, { ports: [8888], why: /no host port/ }],
  ["not published (the default): on a network is enough", [8888, 9999], { running: true, ports: unbound, networks: bridge }, false, null],
  ["not published, in a warm namespace (the holder is on the network)", [8888], { running: true, ports: {}, networks: {}, mode: "container:abc" }, false, null],
  ["not published, no network at all", [8888], { running: true, ports: {}, networks: noNetwork }, false, { ports: [8888], why: /got no network/ }],
  ["no network at all (running)", [8888, 9999], { running: true, ports: {}, networks: noNetwork }, true, { ports: [8888, 9999], why: /got no network/ }],
  ["no network at all (already exited)", [8888], { running: false, ports: {}, networks: noNetwork }, true, { ports: [8888], why: /got no network/ }],
  ["Docker's none network", [8888], { running: true, ports: {}, networks: { none: { NetworkID: "n1" } } }, false, { ports: [8888], why: /got no network/ }],
  ["on a network but already exited (Docker empties the map)", [8888], { running: false, ports: {}, networks: bridge }, true, null],
  ["nothing requested", [], { running: true, ports: {}, networks: noNetwork }, true, null],
])("%s", (_, requested, state, published, expected) => {
  const missing = missingPorts(requested, state, published);
  if (expected === null) expect(missing).toBeNull();
  else {
    expect(missing?.ports).toEqual(expected.ports);
    expect(missing?.why).toMatch(expected.why);
  }
});

test("published bindings read as HOST:PORT->PORT/tcp, unpublished ones as PORT/tcp; the message names every missing port", () => {
  expect(publishedPorts({ ...bound, "9999/tcp": null })).toEqual(["0.0.0.0:49153->8888/tcp"]);
  expect(publishedPorts(undefined)).toEqual([]);
  expect(sessionPorts([8888, 9999])).toEqual(["8888/tcp", "9999/tcp"]);
  expect(missingPortsMessage({ ports: [8888], why: "because" })).toBe("port 8888 cannot be reached: because; ask the node's admin, or start the session without --port");
  expect(missingPortsMessage({ ports: [8888, 9999], why: "because" })).toStartWith("ports 8888, 9999 cannot be reached: because;");
});

test.each<[string, PublishedState, ReturnType<typeof portTarget>]>([
  ["its address on its network", { running: true, ports: {}, networks: bridge, mode: "beaker-sessions" }, { ip: "172.17.0.5" }],
  ["a warm namespace: its holder's", { running: true, ports: {}, networks: {}, mode: "container:0abc" }, { holder: "0abc" }],
  ["the host's network: its loopback", { running: true, ports: {}, networks: { host: { NetworkID: "h" } }, mode: "host" }, { ip: "127.0.0.1" }],
  ["no network: nowhere", { running: true, ports: {}, networks: noNetwork, mode: "bridge" }, null],
])("where the executor connects to a session's port: %s", (_, state, expected) => {
  expect(portTarget(state)).toEqual(expected);
});

test("sessionPortNumbers: the container ports of either form, once each, nothing else", () => {
  expect(sessionPortNumbers(["8888/tcp", "127.0.0.1:49153->8888/tcp", "[::1]:49154->6006/tcp", "9000/udp", "0/tcp", "70000/tcp", "junk"])).toEqual([8888, 6006]);
  expect(sessionPortNumbers([])).toEqual([]);
});
