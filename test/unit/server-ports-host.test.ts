/** Which Hosts are port origins, and which (session, port) each names; hostile ones name none. */
import { describe, expect, test } from "bun:test";
import { checkPortsDomain, hostName, isPortsHost, parsePortHost, portOrigin } from "../../src/server/ports/host.ts";
import { openPortRedirect, parseHandoffPath } from "../../src/server/ports/routes.ts";

const d = "ports.example.org";
const id = "0123456789ab";

describe("parsePortHost", () => {
  test.each([
    [`${id}-8888.${d}`, { sessionId: id, port: 8888 }],
    [`${id}-8888.${d}:8443`, { sessionId: id, port: 8888 }],
    [`${id}-1.${d}`, { sessionId: id, port: 1 }],
    [`${id}-65535.${d}`, { sessionId: id, port: 65535 }],
    [`0123456789AB-8888.PORTS.EXAMPLE.ORG`, { sessionId: id, port: 8888 }],
  ])("%s names a port", (host, want) => {
    expect(parsePortHost(host, d)).toEqual(want);
  });
  test.each([
    [`${id}-8888.example.org`, "another domain"],
    [`${id}-8888.${d}.evil.com`, "the domain as a prefix"],
    [`${id}-8888.x${d}`, "a suffix without the dot"],
    [`${id}-8888.${d}.`, "a trailing dot (another origin to a browser)"],
    [`${id}-8888..${d}`, "an empty label"],
    [`..${d}`, "dots only"],
    [`x.${id}-8888.${d}`, "a label more"],
    [`${id}-0.${d}`, "port 0"],
    [`${id}-65536.${d}`, "port past 65535"],
    [`${id}-99999.${d}`, "five digits past 65535"],
    [`${id}-08888.${d}`, "a leading zero (one port, two origins)"],
    [`${id}-123456.${d}`, "six digits"],
    [`0123456789a-8888.${d}`, "11 hex"],
    [`0123456789abc-8888.${d}`, "13 hex"],
    [`0123456789ag-8888.${d}`, "not hex"],
    [`${id}8888.${d}`, "no dash"],
    [`${id}-8888-1.${d}`, "two dashes"],
    [`${id}-8888`, "no domain"],
    [d, "the domain itself"],
    ["", "empty"],
    [`${id}-+888.${d}`, "a sign"],
    [`${id}-8888.${d}@evil.com`, "userinfo tricks"],
  ])("%s names none (%s)", (host) => {
    expect(parsePortHost(host, d)).toBeNull();
  });
});

describe("isPortsHost", () => {
  test("every name strictly under the domain is a port origin's, however malformed", () => {
    for (const host of [`${id}-8888.${d}`, `x.${d}`, `A.PORTS.example.ORG`, `x.${d}.`, `${id}-99999.${d}:80`, `a..${d}`]) expect(isPortsHost(host, d)).toBe(true);
  });
  test("Beaker's own names are not", () => {
    for (const host of [d, `${d}:8080`, "beaker.example.org", `x${d}`, `${d}.evil.com`, "127.0.0.1:8080", "[::1]:8080", ""]) expect(isPortsHost(host, d)).toBe(false);
  });
  test("with portsDomain localhost, localhost itself stays Beaker's", () => {
    expect(isPortsHost("localhost:8080", "localhost")).toBe(false);
    expect(isPortsHost(`${id}-8888.localhost:8080`, "localhost")).toBe(true);
  });
  test("hostName lowercases and drops the port", () => {
    expect(hostName("A.B:80")).toBe("a.b");
    expect(hostName("[::1]:80")).toBe("[::1]");
  });
});

describe("portOrigin", () => {
  const t = { sessionId: id, port: 8888 };
  test("the scheme and listening port the browser used; default ports left out", () => {
    expect(portOrigin(t, d, "https", "beaker.example.org")).toBe(`https://${id}-8888.${d}`);
    expect(portOrigin(t, d, "https", "beaker.example.org:443")).toBe(`https://${id}-8888.${d}`);
    expect(portOrigin(t, d, "http", "127.0.0.1:8080")).toBe(`http://${id}-8888.${d}:8080`);
    expect(portOrigin(t, d, "http", "[::1]:8080")).toBe(`http://${id}-8888.${d}:8080`);
    expect(portOrigin(t, d, "http", "[::1]")).toBe(`http://${id}-8888.${d}`);
  });
});

describe("checkPortsDomain and the hand-off path", () => {
  test("a DNS name, or localhost", () => {
    for (const ok of [d, "localhost", "p.example"]) expect(checkPortsDomain(ok)).toBeNull();
    for (const bad of ["", "org", "*.ports.example.org", "ports.example.org.", "a..b", "-a.b", "a_b.c", "a.b/c", "a.b:80"]) expect(checkPortsDomain(bad)).not.toBeNull();
  });
  test.each([
    [`/sessions/${id}/ports/8888/`, { sessionId: id, port: 8888 }],
    [`/sessions/${id}/ports/8888`, { sessionId: id, port: 8888 }],
    [`/sessions/${id}/ports/0/`, null],
    [`/sessions/${id}/ports/65536/`, null],
    [`/sessions/${id}/ports/08888/`, null],
    [`/sessions/${id.toUpperCase()}/ports/8888/`, null],
    [`/sessions/${id}/ports/8888/x`, null],
    [`/sessions/../ports/8888/`, null],
  ])("%s", (path, want) => {
    expect(parseHandoffPath(path)).toEqual(want);
  });
});

describe("openPortRedirect (the page's form for another port)", () => {
  test.each([
    [`/sessions/${id}/ports`, "?port=6006", `/sessions/${id}/ports/6006/`],
    [`/sessions/${id}/ports`, "?port=%206006%20", `/sessions/${id}/ports/6006/`],
    [`/sessions/${id}/ports`, "?port=0", null],
    [`/sessions/${id}/ports`, "?port=65536", null],
    [`/sessions/${id}/ports`, "?port=1e3", null],
    [`/sessions/${id}/ports`, "?port=..%2F..%2Flogout", null],
    [`/sessions/${id}/ports`, "", null],
    [`/sessions/${id}/ports/`, "?port=6006", null],
    [`/sessions/x/ports`, "?port=6006", null],
  ])("%s%s", (path, search, want) => {
    expect(openPortRedirect(path, search)).toBe(want);
  });
});
