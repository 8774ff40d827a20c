/** Pulling a missing image from a real registry protocol: a progress bar on a TTY, quiet otherwise, clear failures. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { beakerBinary, eventually, testNodeName } from "../harness.ts";
import { busyboxImage, TestExecutor, testUser } from "../executor-harness.ts";
import { TestRegistry } from "../registry.ts";
import { Tmux } from "../tmux.ts";

const executor = new TestExecutor({ nodeName: testNodeName(import.meta.file) });
const registry = new TestRegistry();
const removeImage = (image: string) => Bun.spawnSync(["docker", "rmi", "-f", image], { stdout: "ignore", stderr: "ignore" });

beforeAll(async () => {
  registry.addImage(busyboxImage, "beaker/pulltest", "1", { extraLayerBytes: 1_500_000 });
  await registry.start();
  executor.removeLeftovers();
  await executor.start();
});
afterAll(async () => {
  await executor.cleanup();
  removeImage(`${registry.host}/beaker/pulltest:1`);
  registry.stop();
});

test("without a TTY the pull is quiet and the session runs", async () => {
  const image = `${registry.host}/beaker/pulltest:1`;
  removeImage(image);
  const r = await executor.run(["session", "create", "--gpus", "0", "--image", image, "--", "sh", "-c", "echo pulled; id -un"], { user: testUser });
  expect(r).toEqual({ exitCode: 0, stdout: `pulled\n${testUser}\n`, stderr: "" });
}, 60_000);

test("on a TTY a progress bar shows bytes and layers while it pulls", async () => {
  const image = `${registry.host}/beaker/pulltest:1`;
  removeImage(image);
  registry.throttle = 64 * 1024;
  using tmux = new Tmux("pull");
  try {
    tmux.start("p", ["env", `BEAKER_EXECUTOR_SOCKET=${executor.socket}`, "bash", "-c", `${beakerBinary} session create --gpus 0 --image ${image} -- echo done-pulling; echo rc=$?; sleep 60`], {
      cols: 150,
      rows: 20,
    });
    // Every frame until the CLI has exited, so the frames mid-download can be checked.
    const seen: string[] = [];
    await eventually(
      () => {
        seen.push(tmux.screen("p"));
        return /rc=\d+/.test(seen.at(-1)!);
      },
      60_000,
      { intervalMs: 50, what: "the pull to finish" },
    );
    // Some frame mid-download: part of the bar filled, bytes counted against a known total, the layer not done yet.
    const bar = seen
      .map((s) => /Pulling \S+\/beaker\/pulltest:1 {2}\[(#*)(-*)\] (\d+\.\d)\/(\d+\.\d) MB {2}[01]\/2 layers/.exec(s))
      .find((m) => m && m[1]!.length > 0 && m[2]!.length > 0 && Number(m[3]) > 0 && Number(m[4]) > Number(m[3]));
    if (!bar) console.log([...new Set(seen.map((s) => s.split("\n")[0]))].join("\n"));
    expect(bar).toBeDefined();
    expect(seen.at(-1)).toMatch(/done-pulling[\s\S]*rc=0/);
    // The bar is erased once the pull is over: the session's output starts on a clean line.
    expect(seen.at(-1)).not.toMatch(/Pulling/);
  } finally {
    registry.throttle = 0;
  }
}, 60_000);

test("an image the registry does not have: which image and why, exit 125", async () => {
  const r = await executor.run(["session", "create", "--gpus", "0", "--image", `${registry.host}/beaker/nothere:1`, "--", "true"]);
  expect(r.exitCode).toBe(125);
  expect(r.stderr).toMatch(new RegExp(`^beaker: cannot pull image ${registry.host}/beaker/nothere:1: .*(manifest unknown|not found)`, "m"));
}, 30_000);
