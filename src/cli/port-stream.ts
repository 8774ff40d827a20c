/**
 * The CLI's side of the executor's port route (executor/terminals/port-relay.ts): one TCP connection into a session, opened
 * through the executor and checked there like any request, as a byte stream.
 */
import { errorFromCode, UnavailableError } from "../errors.ts";
import type { ExecutorClient } from "../executor/client.ts";
import { removeProof } from "../executor/proof.ts";

export interface PortStream {
  write(chunk: Uint8Array): void;
  end(): void;
}

/** Where the session's bytes go, and what to do when its side ends. */
export interface PortSink {
  data(chunk: Uint8Array): void;
  end(): void;
}

/** Port `port` of the caller's session `ref`; resolves once the executor has connected, or rejects saying why. */
export function openSessionPort(client: ExecutorClient, ref: string, port: number, sink: PortSink): Promise<PortStream> {
  const { socket, proofPath } = client.openSocket(`/v1/sessions/${encodeURIComponent(ref)}/ports/${port}`);
  const stream: PortStream = { write: (chunk) => socket.send(chunk), end: () => socket.close(1000) };
  return new Promise<PortStream>((resolve, reject) => {
    let connected = false;
    socket.onopen = () => removeProof(proofPath);
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return void (connected && sink.data(new Uint8Array(event.data as ArrayBuffer)));
      let message: { type?: string; code?: string; message?: string };
      try {
        message = JSON.parse(event.data) as typeof message;
      } catch {
        return;
      }
      if (message.type === "connected") {
        connected = true;
        resolve(stream);
      } else if (message.type === "error") reject(errorFromCode(message.code ?? "error", message.message ?? "the executor refused the connection"));
    };
    socket.onerror = () => removeProof(proofPath);
    socket.onclose = () => {
      removeProof(proofPath);
      if (connected) sink.end();
      else reject(new UnavailableError(`the executor at ${client.socketPath} did not open port ${port}: is it running, and new enough to relay ports?`));
    };
  });
}
