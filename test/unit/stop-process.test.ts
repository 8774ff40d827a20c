/** The harness's stops are bounded: a process that ignores SIGTERM is killed after the grace period, with a line. */
import { expect, spyOn, test } from "bun:test";
import { stopProcess } from "../harness.ts";

test("a process that ignores SIGTERM gets SIGKILL once the grace period is over, and the line says what was waited for", async () => {
  const proc = Bun.spawn(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], { stdout: "pipe" });
  // Signalled only once its trap is set (it says so), so the SIGTERM is really ignored.
  await proc.stdout.getReader().read();
  const said = spyOn(console, "error").mockImplementation(() => {});
  try {
    await stopProcess(proc, "the stubborn one", "SIGTERM", 300);
    expect(proc.signalCode).toBe("SIGKILL");
    expect(said.mock.calls.map((c) => String(c[0]))).toEqual(["the stubborn one to exit after SIGTERM did not end within 300 ms: killing it"]);
  } finally {
    said.mockRestore();
  }
});

test("a process that exits on SIGTERM is not killed, and nothing is said", async () => {
  const proc = Bun.spawn(["sleep", "30"]);
  const said = spyOn(console, "error").mockImplementation(() => {});
  try {
    await stopProcess(proc, "sleep");
    expect(proc.signalCode).toBe("SIGTERM");
    expect(said).not.toHaveBeenCalled();
  } finally {
    said.mockRestore();
  }
});
