import { Duplex, type Readable, type Writable } from "node:stream";

/**
 * `beaker session proxy` starts `beaker ssh-server --stdio` in the session and sends, before the SSH stream, the host
 * key the server must present: "BEAKER-SSH/1 <length>\n" then the key's bytes. The key lives with the client
 * (`~/.beaker/ssh_host_ed25519_key`, pinned in `~/.beaker/known_hosts`), which may be a laptop whose home the session
 * does not mount, so it has to travel; stdin keeps it out of argv (which `ps` on the node shows to every user) and out
 * of the environment.
 */
export const preambleTag = "BEAKER-SSH/1";
const maxHeader = 32;
const maxKeyBytes = 16 * 1024;

export class PreambleError extends Error {
  override name = "PreambleError";
}

export function encodePreamble(hostKey: string): Buffer {
  const key = Buffer.from(hostKey);
  return Buffer.concat([Buffer.from(`${preambleTag} ${key.length}\n`), key]);
}

/** The key and the bytes after it, or null while more input is needed. Throws on anything else. Pure. */
export function parsePreamble(data: Buffer): { hostKey: string; rest: Buffer } | null {
  const newline = data.indexOf(0x0a);
  if (newline === -1) {
    if (data.length > maxHeader) throw new PreambleError("not started by 'beaker session proxy' (no preamble)");
    return null;
  }
  const header = /^BEAKER-SSH\/1 (\d{1,5})$/.exec(data.subarray(0, newline).toString("latin1"));
  if (!header) throw new PreambleError("not started by 'beaker session proxy' (bad preamble)");
  const length = Number(header[1]);
  if (length === 0 || length > maxKeyBytes) throw new PreambleError(`host key of ${length} bytes in the preamble`);
  const start = newline + 1;
  if (data.length < start + length) return null;
  return { hostKey: data.subarray(start, start + length).toString(), rest: data.subarray(start + length) };
}

/** Reads the preamble from a stream; what follows it stays for the SSH server. */
export function readPreamble(input: Readable): Promise<{ hostKey: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const finish = (error: Error | null, result?: { hostKey: string; rest: Buffer }) => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.pause();
      if (error) reject(error);
      else resolve(result!);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      try {
        const parsed = parsePreamble(buffered);
        if (parsed) finish(null, parsed);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onEnd = () => finish(new PreambleError("stdin ended before the preamble"));
    input.on("data", onData);
    input.on("end", onEnd);
    input.resume();
  });
}

/** stdin and stdout as the one socket-like stream ssh2 serves, with the bytes read past the preamble first. */
export function stdioSocket(input: Readable, output: Writable, initial: Buffer): Duplex {
  const socket = new Duplex({
    read() {
      input.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (output.write(chunk)) callback();
      else output.once("drain", () => callback());
    },
    final(callback) {
      output.end(callback);
    },
  });
  if (initial.length > 0) socket.push(initial);
  input.on("data", (chunk: Buffer) => {
    if (!socket.push(chunk)) input.pause();
  });
  input.on("end", () => socket.push(null));
  input.on("error", (err) => socket.destroy(err));
  output.on("error", (err) => socket.destroy(err));
  return socket;
}
