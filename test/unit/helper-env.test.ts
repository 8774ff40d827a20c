/** What Beaker's own processes in a session are started with, and where `session proxy` sends the host key. */
import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { helperPath, isBeakerHelper, planHelperEnv } from "../../src/executor/terminals/helper-env.ts";
import { runProxy, type ProxyDeps } from "../../src/cli/commands/session/proxy.ts";
import type { SessionInfo } from "../../src/executor/api-types.ts";
import { ForbiddenError } from "../../src/errors.ts";
import { sessionEnvVar, sshServerCommand } from "../../src/ssh/host.ts";
import { sessionEnvOf } from "../../src/ssh/login.ts";
import { tempDir, removeDir } from "../harness.ts";

/** Docker's rule for an exec's Env over the container's (moby ReplaceOrAppendEnvValues): "K" removes K. */
function dockerMerge(container: string[], exec: string[]): Record<string, string> {
  const env = new Map(container.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  for (const e of exec) {
    const at = e.indexOf("=");
    if (at === -1) env.delete(e);
    else env.set(e.slice(0, at), e.slice(at + 1));
  }
  return Object.fromEntries(env);
}

const sessionEnv = [
  "PATH=/evil/bin:/usr/bin",
  "HOME=/home/ada",
  "USER=ada",
  "LD_PRELOAD=/home/ada/x.so",
  "LD_LIBRARY_PATH=/home/ada/lib",
  "LD_AUDIT=/home/ada/a.so",
  "BASH_ENV=/home/ada/env.sh",
  "ENV=/home/ada/env.sh",
  "GCONV_PATH=/home/ada/gconv",
  "GLIBC_TUNABLES=glibc.malloc.check=3",
  "MALLOC_CHECK_=3",
  "NODE_OPTIONS=--require /home/ada/x.js",
  "BUN_OPTIONS=--preload /home/ada/x.ts",
  "PYTHONPATH=/home/ada/py",
  "PYTHONSTARTUP=/home/ada/s.py",
  "PERL5OPT=-Mevil",
  "JAVA_TOOL_OPTIONS=-javaagent:/home/ada/a.jar",
  "WEIRD=a=b",
  `${sessionEnvVar}=["LD_PRELOAD=/forged.so"]`,
];

describe("planHelperEnv", () => {
  const exec = planHelperEnv(sessionEnv, ["NVIDIA_VISIBLE_DEVICES=GPU-1"]);
  const helper = dockerMerge(sessionEnv, exec);

  test("the helper sees none of the session's variables: only PATH (Beaker's) and the session's environment as data", () => {
    expect(helper).toEqual({ PATH: helperPath, [sessionEnvVar]: JSON.stringify([...sessionEnv, "NVIDIA_VISIBLE_DEVICES=GPU-1"]) });
  });

  test("the session's environment reaches the shells the SSH server starts, the forged variable included as data only", () => {
    const shells = sessionEnvOf({ ...helper, HOSTNAME: "gpu-1" });
    expect(shells.LD_PRELOAD).toBe("/home/ada/x.so");
    expect(shells.PATH).toBe("/evil/bin:/usr/bin");
    expect(shells.NVIDIA_VISIBLE_DEVICES).toBe("GPU-1");
    expect(shells.WEIRD).toBe("a=b");
    expect(shells.HOSTNAME).toBe("gpu-1");
    expect(shells[sessionEnvVar]).toBe('["LD_PRELOAD=/forged.so"]');
  });

  test("an SSH server started by an older executor (no variable, or not a list) keeps its own environment", () => {
    expect(sessionEnvOf({ A: "1", PATH: "/p" })).toEqual({ A: "1", PATH: "/p" });
    expect(sessionEnvOf({ A: "1", [sessionEnvVar]: "{not json" })).toEqual({ A: "1" });
  });

  test("isBeakerHelper: exactly Beaker's ssh-server command, nothing like it", () => {
    expect(isBeakerHelper([...sshServerCommand])).toBe(true);
    expect(isBeakerHelper(sshServerCommand.slice(1))).toBe(false);
    expect(isBeakerHelper([...sshServerCommand, "x"])).toBe(false);
    expect(isBeakerHelper(["bash", "-l"])).toBe(false);
  });
});

describe("session proxy sends the host key only into the caller's own session", () => {
  const session = (uid: number, user: string) => ({ id: "0123456789ab", name: "dev", uid, user, status: "running" }) as SessionInfo;

  async function proxyAs(uid: number, owner: SessionInfo) {
    const home = tempDir("beaker-proxy-test-");
    const opened: string[] = [];
    const deps: ProxyDeps = {
      localNode: async () => "gpu-1",
      findSession: async () => owner,
      openLocal: (s) => {
        opened.push(s.id);
        throw new Error("opened");
      },
      openElsewhere: async () => null,
      stdin: new PassThrough(),
      hungUp: new Promise(() => {}),
      stdout: new PassThrough(),
      stderr: new PassThrough(),
    };
    try {
      return { result: await runProxy({ host: "dev.beaker", home, relay: false, uid }, deps).catch((err: Error) => err), opened };
    } finally {
      removeDir(home);
    }
  }

  test("root, to another user's session: refused before anything starts in it", async () => {
    const { result, opened } = await proxyAs(0, session(1001, "bob"));
    expect(result).toEqual(new ForbiddenError("session dev (0123456789ab) belongs to bob: 'beaker session proxy' opens only your own sessions"));
    expect(opened).toEqual([]);
  });

  test("the owner, root or not: the session is opened", async () => {
    expect((await proxyAs(1001, session(1001, "bob"))).opened).toEqual(["0123456789ab"]);
    expect((await proxyAs(0, session(0, "root"))).opened).toEqual(["0123456789ab"]);
  });
});
