/**
 * Carries out the fuzzer's steps (fuzz-gen.ts) on the executor's socket as one user, and says what came back in one
 * line. A probe step (one naming the other user's session) is sent twice, with the real reference and with its twin,
 * and both answers come back with the reference replaced, for the caller to compare.
 */
import { randomBytes } from "node:crypto";
import type { TestExecutor } from "../executor-harness.ts";
import { rng } from "../sim/world.ts";
import { tameBytes, type Frame, type Step } from "./fuzz-gen.ts";
import { proofFor } from "./harness.ts";

export interface Answer {
  /** What came back, for the step log. */
  text: string;
  /** The session a create made, if it did. */
  created?: string;
  /** Every byte of text the caller was shown (bodies, control messages), to check for the other user's IDs. */
  shown: string;
}

const clip = (text: string, n = 160) => (text.length > n ? `${text.slice(0, n)}...` : text).replace(/\s+/g, " ");

function headersFor(executor: TestExecutor, uid: number, proof: "own" | "none" | "forged" = "own"): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (proof === "own") headers["x-beaker-proof"] = proofFor(executor, uid);
  if (proof === "forged") headers["x-beaker-proof"] = `../../../etc/passwd:${randomBytes(8).toString("hex")}`;
  return headers;
}

async function http(executor: TestExecutor, uid: number, step: Step & { kind: "http" }, path: string): Promise<Answer> {
  const signal = step.hangUpMs === undefined ? undefined : AbortSignal.timeout(step.hangUpMs);
  try {
    const res = await fetch(`http://beaker${path}`, { method: step.method, unix: executor.socket, headers: headersFor(executor, uid, step.proof), body: step.body, signal });
    const body = await res.text();
    return { text: `${res.status} ${clip(body)}`, shown: body };
  } catch (err) {
    return { text: `no answer (${signal?.aborted ? "hung up" : (err as Error).message})`, shown: "" };
  }
}

/** A create's stream, read to its end: `created ID` or `error CODE`. */
async function create(executor: TestExecutor, uid: number, step: Step & { kind: "create" }): Promise<Answer> {
  const signal = step.hangUpMs === undefined ? undefined : AbortSignal.timeout(step.hangUpMs);
  const body = typeof step.body === "string" ? step.body : JSON.stringify(step.body);
  try {
    const res = await fetch("http://beaker/v1/sessions", { method: "POST", unix: executor.socket, headers: headersFor(executor, uid), body, signal });
    const text = await res.text();
    if (res.status !== 200) return { text: `${res.status} ${clip(text)}`, shown: text };
    const events = text
      .split("\n")
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as { type: string; code?: string; message?: string; session?: { id: string } });
    const last = events.at(-1);
    if (last?.type === "created") return { text: `created ${last.session!.id}`, created: last.session!.id, shown: text };
    return { text: `${last?.type ?? "nothing"} ${last?.code ?? ""} ${clip(last?.message ?? "")}`, shown: text };
  } catch (err) {
    return { text: `no answer (${signal?.aborted ? "hung up" : (err as Error).message})`, shown: "" };
  }
}

function* framesOf(frames: Frame[], seed: number): Generator<string | Uint8Array> {
  const random = rng(seed);
  for (const f of frames) {
    if ("text" in f) yield f.text;
    else if ("binary" in f) yield new Uint8Array(f.binary);
    else {
      for (let i = 0; i < f.flood; i++) {
        const drawn = Array.from({ length: f.size }, () => Math.floor(random() * 256));
        const bytes = Uint8Array.from(f.tame ? tameBytes(drawn) : drawn);
        yield f.asBinary ? bytes : new TextDecoder().decode(bytes);
      }
    }
  }
}

/**
 * A terminal WebSocket: open (or refused), the frames sent, then either closed at once (a hang-up) or read until the
 * executor closes it (at most `endMs`). Text messages and the close code are the answer; binary output is counted.
 */
async function terminal(executor: TestExecutor, uid: number, step: Step & { kind: "terminal" }, path: string, endMs: number): Promise<Answer> {
  const ws = new WebSocket(`ws+unix://${executor.socket}:${path}`, { headers: { "x-beaker-proof": proofFor(executor, uid) } } as unknown as string[]);
  const texts: string[] = [];
  let binary = 0;
  let closeCode: number | null = null;
  const closed = new Promise<void>((resolve) => {
    ws.onclose = (e) => {
      closeCode = e.code;
      resolve();
    };
  });
  ws.onmessage = (e) => (typeof e.data === "string" ? texts.push(e.data) : (binary += 1));
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => {
      ws.onopen = () => resolve(true);
      ws.onerror = () => resolve(false);
    }),
    closed.then(() => false),
  ]);
  if (!opened) {
    await withTimeout(closed, 5000);
    return { text: `refused (close ${closeCode})`, shown: texts.join("\n") };
  }
  for (const frame of framesOf(step.frames, step.frames.length)) {
    if (ws.readyState !== WebSocket.OPEN) break;
    ws.send(frame);
  }
  const ended = step.waitForEnd ? await withTimeout(closed, endMs) : false;
  if (!ended) ws.close();
  await withTimeout(closed, 5000);
  const shown = texts.join("\n");
  return { text: `${ended ? "ended" : "hung up"}: ${clip(shown)} ${binary ? `+${binary} binary ` : ""}(close ${closeCode})`, shown };
}

/** Whether `promise` settled within `ms` (a bounded wait that says so, instead of hanging the run). */
async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One step as `uid`, with `ref` standing for `{ref}` in its path; its answer with `ref` replaced by REF. */
export async function runStep(executor: TestExecutor, uid: number, step: Step, ref = ""): Promise<Answer> {
  const path = "path" in step ? step.path.replaceAll("{ref}", ref) : "";
  const answer =
    step.kind === "http" ? await http(executor, uid, step, path) : step.kind === "create" ? await create(executor, uid, step) : await terminal(executor, uid, step, path, 10_000);
  if (!ref) return answer;
  // Only where it stands alone: a one-letter name must not turn a close code 1011 into 1REF11.
  const alone = new RegExp(`(?<![A-Za-z0-9])${ref.replace(/[.]/g, "\\.")}(?![A-Za-z0-9])`, "g");
  return { ...answer, text: answer.text.replace(alone, "REF"), shown: answer.shown.replace(alone, "REF") };
}
