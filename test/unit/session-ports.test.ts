/** Session ports: the executor config that publishes them, the route that reaches them, the rule that guards them. */
import { describe, expect, test } from "bun:test";
import { parseExecutorConfig } from "../../src/config/executor.ts";
import { ConfigError, UnavailableError, UsageError } from "../../src/errors.ts";
import { bridgeRule, guardSessionBridge, requireIptables, ruleComment } from "../../src/executor/network/firewall.ts";
import type { ServerWebSocket } from "bun";
import { onPortMessage, parsePortRoute, type PortData } from "../../src/executor/terminals/port-relay.ts";

describe("executor config: publish", () => {
  test("by default nothing is published", () => {
    expect(parseExecutorConfig({}, "c.yml").publish).toBe("none");
  });
  test("publish: host with an address is the admin's explicit choice", () => {
    expect(parseExecutorConfig({ publish: "host", publishAddress: "0.0.0.0" }, "c.yml")).toMatchObject({ publish: "host", publishAddress: "0.0.0.0" });
  });
  test("publishAddress alone is refused: it used to publish, and must not silently stop", () => {
    expect(() => parseExecutorConfig({ publishAddress: "0.0.0.0" }, "c.yml")).toThrow(ConfigError);
    expect(() => parseExecutorConfig({ publishAddress: "0.0.0.0" }, "c.yml")).toThrow('c.yml: publishAddress applies only with "publish: host"');
  });
  test("publish takes none or host", () => {
    expect(() => parseExecutorConfig({ publish: "yes" }, "c.yml")).toThrow(/c.yml: publish must be "none"/);
  });
});

describe("the port route's path", () => {
  test.each<[string, { ref: string; port: number } | null]>([
    ["/v1/sessions/abc/ports/8888", { ref: "abc", port: 8888 }],
    ["/v1/sessions/my-run/ports/1", { ref: "my-run", port: 1 }],
    ["/v1/sessions/abc/ports/", null],
    ["/v1/sessions/abc/ports/88a", null],
    ["/v1/sessions/abc/attach", null],
    ["/v1/sessions/a/b/ports/80", null],
  ])("%s", (path, expected) => expect(parsePortRoute(path)).toEqual(expected));
  test.each(["/v1/sessions/abc/ports/0", "/v1/sessions/abc/ports/65536"])("%s: a usage error", (path) => expect(() => parsePortRoute(path)).toThrow(UsageError));
});

describe("the rule on the sessions' bridge", () => {
  test("refuses what users other than root send to the bridge, except replies and admin-published ports", () => {
    expect(bridgeRule("br-1")).toEqual(["OUTPUT", "-o", "br-1", "-m", "owner", "!", "--uid-owner", "0", "-m", "conntrack", "!", "--ctstate", "ESTABLISHED,RELATED,DNAT", "-m", "comment", "--comment", ruleComment, "-j", "REJECT"]);
  });
  test("installed once: checked first, inserted only when missing", () => {
    const calls: string[][] = [];
    let present = false;
    const run = (argv: string[]) => {
      calls.push(argv.slice(0, 3));
      if (argv[2] === "-C") return { exitCode: present ? 0 : 1, stderr: "" };
      present = true;
      return { exitCode: 0, stderr: "" };
    };
    guardSessionBridge("br-1", "/sbin/iptables", run);
    guardSessionBridge("br-1", "/sbin/iptables", run);
    expect(calls).toEqual([["/sbin/iptables", "-w", "-C"], ["/sbin/iptables", "-w", "-I"], ["/sbin/iptables", "-w", "-C"]]);
  });
  test("an insert that fails is an error naming the bridge and iptables' line", () => {
    const run = (argv: string[]) => ({ exitCode: argv[2] === "-C" ? 1 : 4, stderr: "iptables v1.8.9: can't initialize iptables table `filter'\nmore" });
    expect(() => guardSessionBridge("br-1", "iptables", run)).toThrow(UnavailableError);
    expect(() => guardSessionBridge("br-1", "iptables", run)).toThrow("cannot keep local users off the sessions' network (br-1): iptables says iptables v1.8.9: can't initialize iptables table `filter'");
  });
  test("no iptables on the node: one line saying what to install", () => {
    expect(() => requireIptables(() => null)).toThrow(ConfigError);
    expect(() => requireIptables(() => null)).toThrow(/iptables is not installed on this node/);
    expect(requireIptables(() => "/usr/sbin/iptables")).toBe("/usr/sbin/iptables");
  });
});

describe("the relay holds only so much for a caller", () => {
  const socket = (upstream: PortData["upstream"] | undefined) => {
    const closed: number[] = [];
    const data: PortData = { mode: "port", uid: 1000, sessionRef: { ref: "s", user: null }, port: 80, early: [], ...(upstream ? { upstream } : {}) };
    return { ws: { data, close: (code: number) => closed.push(code) } as unknown as ServerWebSocket<PortData>, closed, data };
  };
  test("before the port answers: up to 1 MiB is kept, then the caller is hung up on", () => {
    const { ws, closed, data } = socket(undefined);
    onPortMessage(ws, Buffer.alloc(1024 * 1024));
    expect({ closed, kept: data.early.length }).toEqual({ closed: [], kept: 1 });
    onPortMessage(ws, Buffer.alloc(1));
    expect(closed).toEqual([1009]);
  });
  test("a session that does not read: past 8 MiB waiting to be written, the caller is hung up on", () => {
    let waiting = 0;
    const upstream = { write: (b: Buffer) => void (waiting += b.length), get writableLength() { return waiting; } } as unknown as PortData["upstream"];
    const { ws, closed } = socket(upstream);
    onPortMessage(ws, Buffer.alloc(8 * 1024 * 1024));
    expect(closed).toEqual([]);
    onPortMessage(ws, Buffer.alloc(1));
    expect(closed).toEqual([1009]);
  });
  test("text messages carry nothing", () => {
    const { ws, closed, data } = socket(undefined);
    onPortMessage(ws, "hello");
    expect({ closed, early: data.early }).toEqual({ closed: [], early: [] });
  });
});
