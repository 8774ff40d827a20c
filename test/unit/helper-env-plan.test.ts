/** The exact exec Env a helper gets, and which commands count as Beaker's own helper. */
import { describe, expect, test } from "bun:test";
import { isBeakerHelper, planHelperEnv } from "../../src/executor/terminals/helper-env.ts";
import { sessionEnvVar, sshServerCommand } from "../../src/ssh/host.ts";

describe("planHelperEnv: the exec Env itself", () => {
  test("every container variable is removed by name, PATH only set (to the fixed PATH), and no empty name is sent", () => {
    const container = ["PATH=/evil/bin", "LD_PRELOAD=/x.so", "BARE", "=odd", "A=b=c"];
    expect(planHelperEnv(container, ["EXTRA=1"])).toEqual([
      "LD_PRELOAD",
      "BARE",
      "A",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      `${sessionEnvVar}=${JSON.stringify([...container, "EXTRA=1"])}`,
    ]);
  });
  test("a container variable without '=' is removed under its whole name", () => {
    expect(planHelperEnv(["X", "LD_AUDIT"], [])).toContain("LD_AUDIT");
    expect(planHelperEnv(["X", "LD_AUDIT"], [])).toContain("X");
  });
});

describe("isBeakerHelper", () => {
  test("the SSH server's command exactly is the helper", () => {
    expect(isBeakerHelper([...sshServerCommand])).toBe(true);
  });
  test("a prefix of it, or it with more arguments, is not", () => {
    expect(isBeakerHelper(sshServerCommand.slice(0, -1))).toBe(false);
    expect(isBeakerHelper([])).toBe(false);
    expect(isBeakerHelper([...sshServerCommand, "--extra"])).toBe(false);
  });
  test("a command of the same length that differs in one argument, or in all, is not", () => {
    const last = [...sshServerCommand.slice(0, -1), "--not-stdio"];
    expect(isBeakerHelper(last)).toBe(false);
    const first = ["/home/ada/ld.so", ...sshServerCommand.slice(1)];
    expect(isBeakerHelper(first)).toBe(false);
    expect(isBeakerHelper(sshServerCommand.map(() => "sh"))).toBe(false);
  });
});
