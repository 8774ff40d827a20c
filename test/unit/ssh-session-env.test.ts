/**
 * sessionEnvOf (src/ssh/login.ts; mutation-tested): the session's environment, passed to the SSH server as data in
 * BEAKER_SESSION_ENV, is what the user's shells get; the server's own variables are not, but Docker's HOSTNAME and
 * Beaker's PATH stand unless the session sets its own.
 */
import { describe, expect, test } from "bun:test";
import { sessionEnvVar } from "../../src/ssh/host.ts";
import { sessionEnvOf } from "../../src/ssh/login.ts";

const passed = (list: unknown) => ({ HOSTNAME: "gpu-1", PATH: "/beaker/bin", SERVER_ONLY: "x", [sessionEnvVar]: JSON.stringify(list) });

describe("sessionEnvOf", () => {
  test("the variable is named BEAKER_SESSION_ENV", () => {
    expect(sessionEnvVar).toBe("BEAKER_SESSION_ENV");
  });
  test("a passed list replaces the server's own variables; HOSTNAME and PATH come from Docker unless the list sets them", () => {
    expect(sessionEnvOf(passed(["A=1", "B="]))).toEqual({ HOSTNAME: "gpu-1", PATH: "/beaker/bin", A: "1", B: "" });
    expect(sessionEnvOf(passed(["PATH=/usr/bin", "HOSTNAME=mine"]))).toEqual({ HOSTNAME: "mine", PATH: "/usr/bin" });
    expect(sessionEnvOf(passed([]))).toEqual({ HOSTNAME: "gpu-1", PATH: "/beaker/bin" });
  });
  test("only the first = splits an entry", () => {
    expect(sessionEnvOf(passed(["K=a=b", "L==c"]))).toMatchObject({ K: "a=b", L: "=c" });
  });
  test("entries that are not KEY=VALUE strings are skipped, and the rest still apply", () => {
    const env = sessionEnvOf(passed([5, null, { A: "1" }, ["B=2"], "NOEQUALS", "=nokey", "C=3"]));
    expect(env).toEqual({ HOSTNAME: "gpu-1", PATH: "/beaker/bin", C: "3" });
  });
  test("a later entry wins over an earlier one, as in Docker", () => {
    expect(sessionEnvOf(passed(["A=1", "A=2"])).A).toBe("2");
  });
  test("a variable that is JSON but not a list leaves the server's own environment, less the variable", () => {
    for (const value of ['{"A":"1"}', '"A=1"', "null", "1"]) {
      expect(sessionEnvOf({ HOSTNAME: "gpu-1", B: "2", [sessionEnvVar]: value })).toEqual({ HOSTNAME: "gpu-1", B: "2" });
    }
  });
  test("without the variable (an older executor), the server's own environment as it is", () => {
    expect(sessionEnvOf({ A: "1", HOSTNAME: "h", PATH: undefined })).toEqual({ A: "1", HOSTNAME: "h", PATH: undefined });
  });
});
