/** Whether `beaker upgrade` restarts the node's executor: only one of the replaced file that systemd starts again. */
import { describe, expect, test } from "bun:test";
import { decideRestart, parseSystemctlShow, serviceOfCgroup, type ExecutorFacts } from "../../src/update/executor-restart.ts";

describe("serviceOfCgroup", () => {
  test.each([
    ["cgroup v2", "0::/system.slice/beaker-executor.service\n", "beaker-executor.service"],
    ["v1 with name=systemd", "12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/beaker-executor.service\n0::/\n", "beaker-executor.service"],
    ["a user's shell", "0::/user.slice/user-1000.slice/session-4.scope\n", null],
    ["a container's root", "0::/\n", null],
    ["nested in a service's own sub-cgroup", "0::/system.slice/beaker-executor.service/payload\n", "beaker-executor.service"],
  ])("%s", (_name, text, unit) => expect(serviceOfCgroup(text)).toBe(unit));
});

test("parseSystemctlShow reads MainPID, Restart and ExecStart's program", () => {
  const shown = parseSystemctlShow(
    "Restart=always\nMainPID=4242\nExecStart={ path=/usr/local/bin/beaker ; argv[]=/usr/local/bin/beaker executor run --config /etc/beaker/config.yml ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }\nId=beaker-executor.service\n",
  );
  expect(shown).toEqual({ id: "beaker-executor.service", mainPid: 4242, restart: "always", execPath: "/usr/local/bin/beaker" });
  expect(parseSystemctlShow("MainPID=0\nRestart=no\nExecStart=\nId=gone.service\n")).toEqual({ id: "gone.service", mainPid: 0, restart: "no", execPath: null });
});

describe("decideRestart", () => {
  const binary = "/usr/local/bin/beaker";
  const unitFacts = { id: "beaker-executor.service", mainPid: 10, restart: "always", execPath: binary };
  const facts = (over: Partial<ExecutorFacts> = {}): ExecutorFacts => ({
    pid: 10,
    version: "0.1.0",
    exePath: binary,
    runsReplaced: true,
    unit: "beaker-executor.service",
    unitFacts,
    cmdline: [binary, "executor", "run"],
    ...over,
  });
  const left = (f: ExecutorFacts) => {
    const d = decideRestart(f, binary);
    return d.restart ? "restart" : d.line;
  };

  test("the replaced file, run by a unit that restarts it from the upgraded path: restart", () => {
    expect(decideRestart(facts(), binary)).toEqual({ restart: true });
    expect(decideRestart(facts({ unitFacts: { ...unitFacts, restart: "on-failure" } }), binary)).toEqual({ restart: true });
  });

  test.each<[string, Partial<ExecutorFacts>, string]>([
    ["another file", { runsReplaced: false, exePath: "/opt/beaker/beaker" }, `this node's executor (pid 10) runs /opt/beaker/beaker, not ${binary}: it was not restarted (to upgrade that one: sudo /opt/beaker/beaker upgrade)`],
    ["no unit", { unit: null, unitFacts: null }, `this node's executor (pid 10) still runs 0.1.0 from the old file, and no systemd unit would start it again, so it was not restarted: stop it (sudo kill 10) and start it again as before: ${binary} executor run`],
    ["Restart=no", { unitFacts: { ...unitFacts, restart: "no" } }, "(Restart=no), so it was not restarted: restart it with 'sudo systemctl restart beaker-executor.service'"],
    ["not the unit's main process", { unitFacts: { ...unitFacts, mainPid: 11 } }, "(it is not its main process)"],
    ["a unit that runs another program", { unitFacts: { ...unitFacts, execPath: "/opt/beaker/beaker" } }, "(it runs /opt/beaker/beaker)"],
    ["systemctl did not answer", { unitFacts: null }, "(systemd did not say how it runs)"],
  ])("%s: left running, with what to run", (_name, over, line) => {
    expect(left(facts(over))).toContain(line);
  });
});
