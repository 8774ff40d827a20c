import { errorFromCode, UnavailableError } from "../errors.ts";
import type { ExecutorClient } from "../executor/client.ts";
import { streamTag, type ClientControl, type ServerControl } from "../executor/api-types.ts";
import { removeProof } from "../executor/proof.ts";

/**
 * A program in a session as a plain byte pipe: what `beaker session proxy` joins to ssh. A transport to a session on
 * another node provides the same shape.
 */
export interface BytePipe {
  write(chunk: Uint8Array): void;
  /** No more input: the program reads end-of-file. */
  end(): void;
  /** The program's exit code, and why it could not start; rejects with the executor's typed error (not running). */
  done: Promise<{ code: number; message?: string }>;
}

export interface PipeOutput {
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
}

/**
 * `session exec` without a TTY over the executor's socket: bytes pass unchanged both ways (each output frame tagged
 * stdout or stderr), input written before the socket opens is queued in order, and the end of input is passed on.
 */
export function openExecPipe(client: ExecutorClient, sessionId: string, command: string[], output: PipeOutput): BytePipe {
  const query = new URLSearchParams({ start: "0", cmd: JSON.stringify(command), tty: "0" });
  const { socket, proofPath } = client.openSocket(`/v1/sessions/${encodeURIComponent(sessionId)}/exec?${query}`);
  const queued: Uint8Array[] = [];
  let open = false;
  let inputEnded = false;
  const control = (message: ClientControl) => socket.send(JSON.stringify(message));

  const done = new Promise<{ code: number; message?: string }>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      removeProof(proofPath);
      fn();
    };
    socket.onopen = () => {
      removeProof(proofPath);
      open = true;
      for (const chunk of queued.splice(0)) socket.send(chunk);
      if (inputEnded) control({ type: "stdin-eof" });
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data) as ServerControl;
        if (message.type === "exit") settle(() => resolve({ code: message.code, ...(message.message ? { message: message.message } : {}) }));
        else if (message.type === "error") settle(() => reject(errorFromCode(message.code, message.message)));
        return;
      }
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      if (bytes[0] === streamTag.stderr) output.stderr(bytes.subarray(1));
      else output.stdout(bytes.subarray(1));
    };
    const lost = () => settle(() => reject(new UnavailableError("lost the connection to the executor")));
    socket.onclose = lost;
    socket.onerror = lost;
  });

  return {
    write(chunk) {
      if (!open) queued.push(chunk);
      else if (socket.readyState === WebSocket.OPEN) socket.send(chunk);
    },
    end() {
      if (inputEnded) return;
      inputEnded = true;
      if (open && socket.readyState === WebSocket.OPEN) control({ type: "stdin-eof" });
    },
    done,
  };
}
