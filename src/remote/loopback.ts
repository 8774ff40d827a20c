/**
 * A forward's local end: the same port on both loopbacks, 127.0.0.1 and ::1. A browser given `localhost` tries ::1
 * first, so a forward on 127.0.0.1 alone would let another local user who listens on [::1] at that port receive the
 * owner's requests (and the tokens in them). A loopback that is taken is an error, never a silent half; a host
 * without IPv6 gets the IPv4 one alone, and the exact address is what is printed.
 */
import { createServer, type Server, type Socket } from "node:net";
import { BeakerError } from "../errors.ts";

export interface Listening {
  port: number;
  /** What to open: `http://localhost:P` when both loopbacks are ours, else `http://127.0.0.1:P`. */
  url: string;
  close(): void;
}

/** A loopback port another program holds. */
export class PortTakenError extends BeakerError {
  override name = "PortTakenError";
}

function listenOn(host: string, port: number, onConnection: (socket: Socket) => void): Promise<Server | "unavailable"> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRNOTAVAIL" || err.code === "EAFNOSUPPORT") resolve("unavailable");
      else if (err.code === "EADDRINUSE" || err.code === "EACCES") {
        const shown = host.includes(":") ? `[${host}]` : host;
        reject(new PortTakenError(`${shown}:${port} is taken here (another program listens there): pick another LOCAL port`));
      } else reject(err);
    });
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

/** Listens on `port` of both loopbacks, or fails naming the one that is taken (and holds neither). */
export async function listenLoopbacks(port: number, onConnection: (socket: Socket) => void): Promise<Listening> {
  const v4 = await listenOn("127.0.0.1", port, onConnection);
  if (v4 === "unavailable") throw new BeakerError("this host has no IPv4 loopback (127.0.0.1) to listen on");
  let v6: Server | "unavailable";
  try {
    v6 = await listenOn("::1", port, onConnection);
  } catch (err) {
    v4.close();
    throw err;
  }
  const both = v6 !== "unavailable";
  return {
    port,
    url: `http://${both ? "localhost" : "127.0.0.1"}:${port}`,
    close: () => {
      v4.close();
      if (v6 !== "unavailable") v6.close();
    },
  };
}

/** The first port from `wanted` up that both loopbacks have free, listened on (the listen itself is the check). */
export async function listenFirstFree(wanted: number, onConnection: (socket: Socket) => void): Promise<Listening> {
  for (let port = wanted; port <= Math.min(65535, wanted + 100); port++) {
    try {
      return await listenLoopbacks(port, onConnection);
    } catch (err) {
      if (!(err instanceof PortTakenError)) throw err;
    }
  }
  throw new BeakerError(`no local port from ${wanted} to ${Math.min(65535, wanted + 100)} is free on both loopbacks here`);
}

/**
 * Joins a local connection to a stream opened for it (through the executor, or over ssh to the node); the local side
 * waits until the stream is open. A stream that cannot be opened closes the connection and is said by `onError`.
 */
export function joinConnection(
  client: Socket,
  open: (sink: { data(chunk: Uint8Array): void; end(): void }) => Promise<{ write(chunk: Uint8Array): void; end(): void }>,
  onError: (err: unknown) => void,
): void {
  client.pause();
  client.on("error", () => client.destroy());
  open({ data: (chunk) => void client.write(chunk), end: () => void client.end() }).then(
    (stream) => {
      client.on("data", (chunk: Buffer) => stream.write(chunk));
      client.on("end", () => stream.end());
      client.on("close", () => stream.end());
      client.resume();
    },
    (err) => {
      client.destroy();
      onError(err);
    },
  );
}
