import { classifyNodeFailure, findDeviceHandleErrors } from "./diagnose.ts";
import { describeFailure, emptyInventory, mergeInventory } from "./inventory.ts";
import { parseNvidiaSmiList, type ListReport } from "./parse-list.ts";
import { parseNvidiaSmiXml, XmlParseError, type XmlReport } from "./parse-xml.ts";
import type { Inventory } from "./types.ts";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The executable does not exist. */
  missing: boolean;
}

export type Runner = (args: string[]) => Promise<RunResult>;

export const defaultTimeoutMs = 10_000;

/** Runs nvidia-smi with a deadline: a sick GPU can hang it, so it is killed (SIGKILL) when time is up. */
export function createNvidiaSmiRunner(executable: string, timeoutMs = defaultTimeoutMs): Runner {
  return async (args) => {
    const resolved = executable.includes("/") ? executable : Bun.which(executable);
    if (!resolved) return { exitCode: 127, stdout: "", stderr: "", timedOut: false, missing: true };
    let proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
    try {
      proc = Bun.spawn([resolved, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { exitCode: 127, stdout: "", stderr: "", timedOut: false, missing: true };
      return { exitCode: 126, stdout: "", stderr: `cannot run ${resolved}: ${(err as Error).message}`, timedOut: false, missing: false };
    }
    const stdout = new Response(proc.stdout).text();
    const stderr = new Response(proc.stderr).text();
    const exitCode = await proc.exited;
    if (proc.signalCode === "SIGKILL") {
      // A child it left behind may hold the pipes open; what a killed call printed is not wanted anyway.
      void proc.stdout.cancel().catch(() => {});
      void proc.stderr.cancel().catch(() => {});
      return { exitCode, stdout: "", stderr: "", timedOut: true, missing: false };
    }
    return { exitCode, stdout: await stdout, stderr: await stderr, timedOut: false, missing: false };
  };
}

/**
 * Asks nvidia-smi what the node has: one `-q -x` call, plus `-L` only when a GPU is in MIG mode (MIG UUIDs and
 * profiles are only there) or when the XML call fails or cannot be parsed.
 */
export async function discoverGpus(run: Runner, timeoutMs = defaultTimeoutMs): Promise<Inventory> {
  const result = await run(["-q", "-x"]);
  if (result.missing) {
    return emptyInventory({ note: "nvidia-smi is not installed, so this node has no usable NVIDIA GPUs" });
  }
  if (result.timedOut) {
    return emptyInventory({ error: `nvidia-smi did not answer within ${Math.round(timeoutMs / 1000)}s and was killed; a GPU or the driver may be hung` });
  }
  const output = `${result.stdout}\n${result.stderr}`;
  const verdict = classifyNodeFailure(result.exitCode, output);
  if (verdict?.kind === "no-gpus") return emptyInventory({ note: verdict.note });
  if (verdict?.kind === "error") return emptyInventory({ error: verdict.message });

  let xml: XmlReport | null = null;
  let xmlProblem: string | null = null;
  try {
    xml = parseNvidiaSmiXml(result.stdout);
  } catch (err) {
    if (!(err instanceof XmlParseError)) throw err;
    xmlProblem = result.exitCode === 0 ? `cannot parse its output: ${err.message}` : describeFailure(result.exitCode, result.stdout, result.stderr);
  }
  const handleErrors = findDeviceHandleErrors(output);

  let list: ListReport | null = null;
  let listProblem: string | null = null;
  if (xml === null || xml.gpus.some((g) => g.migMode === "enabled")) {
    const listed = await run(["-L"]);
    if (listed.timedOut) listProblem = `did not answer within ${Math.round(timeoutMs / 1000)}s`;
    else if (listed.missing) listProblem = "disappeared";
    else {
      const listOutput = `${listed.stdout}\n${listed.stderr}`;
      const listVerdict = classifyNodeFailure(listed.exitCode, listOutput);
      if (listVerdict?.kind === "no-gpus" && xml === null) return emptyInventory({ note: listVerdict.note });
      list = parseNvidiaSmiList(listed.stdout);
      for (const e of findDeviceHandleErrors(listOutput)) if (!handleErrors.some((h) => h.busId === e.busId)) handleErrors.push(e);
      if (list.gpus.length === 0) listProblem = listVerdict?.kind === "error" ? listVerdict.message : describeFailure(listed.exitCode, listed.stdout, listed.stderr);
    }
  }
  return mergeInventory({ xml, xmlProblem, list, listProblem, handleErrors });
}
