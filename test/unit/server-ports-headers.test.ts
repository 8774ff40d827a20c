/** What crosses the proxy: hop-by-hop headers and Beaker's cookie never; the rest as sent. */
import { describe, expect, test } from "bun:test";
import { cookieValues, hostOnlyCookie, mayAct, requestHeaders, responseHeaders, withoutBeakerCookies } from "../../src/server/ports/headers.ts";

describe("requests", () => {
  test("hop-by-hop headers, those Connection names, and the port cookie are dropped; Host is the port origin's", () => {
    const h = requestHeaders(
      new Headers({
        host: "evil",
        connection: "keep-alive, x-secret",
        "x-secret": "1",
        "keep-alive": "5",
        te: "trailers",
        "transfer-encoding": "chunked",
        upgrade: "h2c",
        expect: "100-continue",
        "proxy-authorization": "Basic x",
        "accept-language": "en",
        authorization: "Bearer app",
        cookie: "a=1; beaker_port=secret; __Host-beaker_port=secret2; b=2",
      }),
      "0123456789ab-8888.localhost:8080",
    );
    expect(Object.fromEntries(h)).toEqual({
      host: "0123456789ab-8888.localhost:8080",
      "accept-language": "en",
      authorization: "Bearer app",
      cookie: "a=1; b=2",
    });
  });
  test("no cookie left: no Cookie header", () => {
    expect(requestHeaders(new Headers({ cookie: "beaker_port=x" }), "h").has("cookie")).toBe(false);
  });
  test("cookie parsing", () => {
    expect(cookieValues("a=1; beaker_port=x; beaker_port=y;beaker_port = z", "beaker_port")).toEqual(["x", "y", "z"]);
    expect(cookieValues(null, "a")).toEqual([]);
    expect(cookieValues("xbeaker_port=1; beaker_portx=2", "beaker_port")).toEqual([]);
    expect(withoutBeakerCookies("beaker_port=1; __Host-beaker_port=2; beaker_session=3; flag; c=3")).toBe("flag; c=3");
    expect(withoutBeakerCookies("beaker_port=1")).toBeNull();
  });
});

describe("responses", () => {
  test("hop-by-hop headers dropped, Set-Cookie kept one by one without Domain", () => {
    const incoming = new Headers([
      ["content-type", "text/html"],
      ["connection", "close, x-hop"],
      ["x-hop", "1"],
      ["transfer-encoding", "chunked"],
      ["set-cookie", "a=1; Domain=.localhost; Path=/; HttpOnly"],
      ["set-cookie", "b=2; domain = ports.example.org"],
    ]);
    const out = responseHeaders(incoming);
    expect(out.get("content-type")).toBe("text/html");
    expect(out.has("x-hop")).toBe(false);
    expect(out.has("transfer-encoding")).toBe(false);
    expect(out.getSetCookie()).toEqual(["a=1; Path=/; HttpOnly", "b=2"]);
  });
  test("a cookie whose value says domain= keeps it", () => {
    expect(hostOnlyCookie("domain=x; Domain=y")).toBe("domain=x");
  });
});

describe("mayAct", () => {
  const origin = "http://0123456789ab-8888.localhost:8080";
  test("safe methods from anywhere (reading is the same-origin policy's business)", () => {
    expect(mayAct("GET", new Headers({ origin: "http://evil" }), origin, false)).toBe(true);
    expect(mayAct("HEAD", new Headers(), origin, false)).toBe(true);
  });
  test("unsafe methods and WebSockets only from the port origin itself", () => {
    expect(mayAct("POST", new Headers({ origin }), origin, false)).toBe(true);
    expect(mayAct("POST", new Headers({ origin: origin.toUpperCase() }), origin, false)).toBe(true);
    expect(mayAct("POST", new Headers({ origin: "http://0123456789ab-8889.localhost:8080" }), origin, false)).toBe(false);
    expect(mayAct("PUT", new Headers({ origin: "null" }), origin, false)).toBe(false);
    expect(mayAct("GET", new Headers({ origin: "http://ffffffffffff-8888.localhost:8080" }), origin, true)).toBe(false);
    expect(mayAct("GET", new Headers({ origin }), origin, true)).toBe(true);
  });
  test("without Origin, Sec-Fetch-Site decides; neither: not a browser page", () => {
    expect(mayAct("POST", new Headers({ "sec-fetch-site": "same-site" }), origin, false)).toBe(false);
    expect(mayAct("POST", new Headers({ "sec-fetch-site": "cross-site" }), origin, false)).toBe(false);
    expect(mayAct("POST", new Headers({ "sec-fetch-site": "same-origin" }), origin, false)).toBe(true);
    expect(mayAct("POST", new Headers(), origin, false)).toBe(true);
  });
});
