/** The little of tar that Docker's archive API needs here: one-file archives in, small archives out. */

export interface TarEntry {
  name: string;
  body: Uint8Array;
  mode: number;
  type?: "file" | "directory";
}

function field(header: Uint8Array, offset: number, text: string, length: number): void {
  header.set(new TextEncoder().encode(text).subarray(0, length), offset);
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, "0");
}

/** A ustar archive of the entries, owned by root. */
export function createTar(entries: TarEntry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const isDir = entry.type === "directory";
    const header = new Uint8Array(512);
    field(header, 0, entry.name, 100);
    field(header, 100, octal(entry.mode, 8), 8);
    field(header, 108, octal(0, 8), 8);
    field(header, 116, octal(0, 8), 8);
    field(header, 124, octal(isDir ? 0 : entry.body.length, 12), 12);
    field(header, 136, octal(Math.floor(Date.now() / 1000), 12), 12);
    field(header, 148, "        ", 8);
    field(header, 156, isDir ? "5" : "0", 1);
    field(header, 257, "ustar\u000000", 8);
    field(header, 265, "root", 32);
    field(header, 297, "root", 32);
    const sum = header.reduce((a, b) => a + b, 0);
    field(header, 148, `${octal(sum, 7)}\u0000`, 8);
    blocks.push(header);
    if (!isDir) {
      blocks.push(entry.body);
      const pad = (512 - (entry.body.length % 512)) % 512;
      if (pad) blocks.push(new Uint8Array(pad));
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const b of blocks) {
    out.set(b, offset);
    offset += b.length;
  }
  return out;
}

/** The content of the first regular file in an archive (what `GET /containers/{id}/archive?path=FILE` returns). */
export function readFirstFile(archive: Uint8Array): Uint8Array | null {
  let offset = 0;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) return null;
    const size = parseInt(new TextDecoder().decode(header.subarray(124, 136)).replace(/\0.*$/, "").trim() || "0", 8);
    const type = String.fromCharCode(header[156]!);
    if (type === "0" || type === "\0") return archive.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return null;
}
