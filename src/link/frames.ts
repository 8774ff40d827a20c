/**
 * The node link's wire format (docs/ARCHITECTURE.md "Node link"): every WebSocket message on the link is one binary
 * frame `[u32 stream id, big-endian][u8 kind][payload]`. Pure: no I/O, no clock.
 *
 * Kinds: `open` (server -> node: the request head as JSON), `head` (node -> server: an HTTP answer's status and
 * content type as JSON), `data` (bytes), `text` (one text message, UTF-8), `end` (the sender's body is over), `close`
 * (u16 code + UTF-8 reason: the stream is gone, nothing more on it either way), `credit` (u32: the receiver took this
 * many more `data`/`text` bytes, so the sender may send that many more).
 */

export const frameKinds = { open: 1, head: 2, data: 3, text: 4, end: 5, close: 6, credit: 7 } as const;
export type FrameKind = keyof typeof frameKinds;
const kindNames = new Map<number, FrameKind>(Object.entries(frameKinds).map(([name, code]) => [code, name as FrameKind]));

export const linkLimits = {
  /** Bytes of `data` and `text` one side may have sent on a stream and not had credited back. */
  window: 1024 * 1024,
  /** The most payload one frame carries (a terminal message is at most 1 MiB, as on the executor's socket). */
  maxPayload: 1024 * 1024,
  /** Streams open at once on one link. */
  maxStreams: 1024,
};

export const headerBytes = 5;

export interface Frame {
  id: number;
  kind: FrameKind;
  payload: Uint8Array;
}

export function encodeFrame(id: number, kind: FrameKind, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`stream id ${id} is not a u32`);
  const frame = new Uint8Array(headerBytes + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, id);
  frame[4] = frameKinds[kind];
  frame.set(payload, headerBytes);
  return frame;
}

/** A frame as received; null when it is too short or of an unknown kind (the caller ignores it). */
export function decodeFrame(bytes: Uint8Array): Frame | null {
  if (bytes.length < headerBytes) return null;
  const kind = kindNames.get(bytes[4]!);
  if (!kind) return null;
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  return { id, kind, payload: bytes.subarray(headerBytes) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (text: string): Uint8Array => encoder.encode(text);

/** UTF-8 text, or null when the bytes are not valid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

export function jsonPayload(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

/** A JSON object from a payload, or null for anything else. */
export function parseJsonPayload(bytes: Uint8Array): Record<string, unknown> | null {
  const text = fromUtf8(bytes);
  if (text === null) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
export function closePayload(code: number, reason: string): Uint8Array {
  let bytes = utf8(reason);
  while (bytes.length > 123) bytes = utf8((reason = reason.slice(0, -1)));
  const payload = new Uint8Array(2 + bytes.length);
  new DataView(payload.buffer).setUint16(0, code);
  payload.set(bytes, 2);
  return payload;
}

export function parseClose(bytes: Uint8Array): { code: number; reason: string } {
  if (bytes.length < 2) return { code: 1005, reason: "" };
  const code = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(0);
  return { code, reason: fromUtf8(bytes.subarray(2)) ?? "" };
}

export function creditPayload(bytes: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, bytes);
  return payload;
}

/** The bytes a `credit` frame gives; null when it is not exactly a u32. */
export function parseCredit(bytes: Uint8Array): number | null {
  return bytes.length === 4 ? new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0) : null;
}
