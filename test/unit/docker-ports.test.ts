/** Which requested ports a started container did not get, read from docker inspect (shapes recorded from Docker 20.10). */
import { expect, test } from "bun:test";
import { missingPorts, missingPortsMessage, publishedPorts, type PublishedState } from "../../src/runtime/docker/ports.ts";

const bridge = { bridge: { NetworkID: "44ba1d31d70c", EndpointID: "e1" } };
// An engine started with --bridge none: the container is on "bridge" by name, but no such network exists.
const noNetwork = { bridge: { NetworkID: "", EndpointID: "" } };
const bound = { "8888/tcp": [{ HostIp: "0.0.0.0", HostPort: "49153" }] };

test.each<[string, number[], PublishedState, { ports: number[]; why: RegExp } | null]>([
  ["all published", [8888], { running: true, ports: bound, networks: bridge }, null],
  ["one of two published", [8888, 9999], { running: true, ports: bound, networks: bridge }, { ports: [9999], why: /no host port/ }],
  ["a binding without a host port", [8888], { running: true, ports: { "8888/tcp": [{ HostIp: "", HostPort: "" }] }, networks: bridge }, { ports: [8888], why: /no host port/ }],
  ["no network at all (running)", [8888, 9999], { running: true, ports: {}, networks: noNetwork }, { ports: [8888, 9999], why: /no network to publish on/ }],
  ["no network at all (already exited)", [8888], { running: false, ports: {}, networks: noNetwork }, { ports: [8888], why: /no network to publish on/ }],
  ["on a network but already exited (Docker empties the map)", [8888], { running: false, ports: {}, networks: bridge }, null],
  ["nothing requested", [], { running: true, ports: {}, networks: noNetwork }, null],
])("%s", (_, requested, state, expected) => {
  const missing = missingPorts(requested, state);
  if (expected === null) expect(missing).toBeNull();
  else {
    expect(missing?.ports).toEqual(expected.ports);
    expect(missing?.why).toMatch(expected.why);
  }
});

test("published bindings read as HOST:PORT->PORT/tcp; the message names every missing port", () => {
  expect(publishedPorts({ ...bound, "9999/tcp": null })).toEqual(["0.0.0.0:49153->8888/tcp"]);
  expect(publishedPorts(undefined)).toEqual([]);
  expect(missingPortsMessage({ ports: [8888], why: "because" })).toBe("port 8888 could not be published: because; ask the node's admin, or start the session without --port");
  expect(missingPortsMessage({ ports: [8888, 9999], why: "because" })).toStartWith("ports 8888, 9999 could not be published: because;");
});
