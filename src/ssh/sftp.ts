import { constants, type Dir, type Stats } from "node:fs";
import { chmod, lstat, mkdir, open, opendir, readlink, realpath, rename, rmdir, stat, symlink, truncate, unlink, utimes, type FileHandle } from "node:fs/promises";
import { join, resolve } from "node:path";
import { utils, type Attributes, type FileEntry, type SFTPWrapper } from "ssh2";

/**
 * The SFTP subsystem (sftp, and scp, which speaks SFTP since OpenSSH 9.0) on the session's filesystem. The server
 * runs as the session's user, so the kernel applies that user's permissions to every call. Relative paths start at
 * the home folder, as with OpenSSH's sftp-server.
 */

const { STATUS_CODE, OPEN_MODE } = utils.sftp;
const listBatch = 100;

type Handle = { kind: "file"; file: FileHandle } | { kind: "dir"; path: string; dir: Dir };

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `ls -l` style, as sftp's `ls -l` prints it: "-rw-r--r--    1 1000     1000         5 Jan  2 03:04 name". Pure. */
export function formatLongname(name: string, st: Pick<Stats, "mode" | "nlink" | "uid" | "gid" | "size" | "mtimeMs">, now: number): string {
  const type = { 0o040000: "d", 0o120000: "l", 0o020000: "c", 0o060000: "b", 0o010000: "p", 0o140000: "s" }[st.mode & 0o170000] ?? "-";
  let perms = "";
  for (const shift of [6, 3, 0]) {
    const bits = (st.mode >> shift) & 7;
    perms += `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 1 ? "x" : "-"}`;
  }
  const d = new Date(st.mtimeMs);
  const recent = Math.abs(now - st.mtimeMs) < 182 * 86400_000;
  const pad = (n: number) => String(n).padStart(2, "0");
  const when = `${months[d.getMonth()]} ${String(d.getDate()).padStart(2)} ${recent ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : ` ${d.getFullYear()}`}`;
  return `${type}${perms} ${String(st.nlink).padStart(4)} ${String(st.uid).padEnd(8)} ${String(st.gid).padEnd(8)} ${String(st.size).padStart(8)} ${when} ${name}`;
}

/** SFTP open flags as open(2) flags: any combination a client sends, not only those with an fopen() name. Pure. */
export function openFlags(pflags: number): number {
  const read = (pflags & OPEN_MODE.READ) !== 0;
  const write = (pflags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND)) !== 0;
  let flags = read && write ? constants.O_RDWR : write ? constants.O_WRONLY : constants.O_RDONLY;
  if (pflags & OPEN_MODE.APPEND) flags |= constants.O_APPEND;
  if (pflags & OPEN_MODE.CREAT) flags |= constants.O_CREAT;
  if (pflags & OPEN_MODE.TRUNC) flags |= constants.O_TRUNC;
  if (pflags & OPEN_MODE.EXCL) flags |= constants.O_EXCL;
  return flags;
}

function attrsOf(st: Stats): Attributes {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

function statusOf(err: unknown): { code: number; message: string } {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT" || e.code === "ENOTDIR") return { code: STATUS_CODE.NO_SUCH_FILE, message: "No such file" };
  if (e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS") return { code: STATUS_CODE.PERMISSION_DENIED, message: "Permission denied" };
  return { code: STATUS_CODE.FAILURE, message: e.message ?? String(err) };
}

/** Applies SETSTAT/FSETSTAT attributes that were sent (each field is optional on the wire). */
async function applyAttrs(target: FileHandle | string, attrs: Partial<Attributes>): Promise<void> {
  const path = typeof target === "string" ? target : null;
  const fh = typeof target === "string" ? null : target;
  if (typeof attrs.size === "number") await (fh ? fh.truncate(attrs.size) : truncate(path!, attrs.size));
  if (typeof attrs.mode === "number") await (fh ? fh.chmod(attrs.mode & 0o7777) : chmod(path!, attrs.mode & 0o7777));
  if (typeof attrs.atime === "number" && typeof attrs.mtime === "number") {
    await (fh ? fh.utimes(attrs.atime, attrs.mtime) : utimes(path!, attrs.atime, attrs.mtime));
  }
}

export function serveSftp(sftp: SFTPWrapper, home: string): void {
  const handles = new Map<string, Handle>();
  let next = 0;
  const at = (path: string) => resolve(home, path || ".");
  const newHandle = (h: Handle) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(next++ >>> 0);
    handles.set(id.toString("hex"), h);
    return id;
  };
  const file = (id: Buffer) => {
    const h = handles.get(id.toString("hex"));
    return h?.kind === "file" ? h.file : null;
  };
  /**
   * Runs requests one at a time, in the order they came, so replies leave in that order too, as from OpenSSH's
   * sftp-server: its scp and sftp clients take an upload's acknowledgements out of order for a failure and truncate
   * the file at the last one in order. A thrown error becomes the request's status reply.
   */
  let queue = Promise.resolve();
  const serve = (reqId: number, work: () => Promise<void>) => {
    queue = queue.then(work).catch((err) => {
      const { code, message } = statusOf(err);
      sftp.status(reqId, code, message);
    });
  };
  const ok = (reqId: number) => sftp.status(reqId, STATUS_CODE.OK);
  const badHandle = (reqId: number) => sftp.status(reqId, STATUS_CODE.FAILURE, "invalid handle");

  sftp.on("OPEN", (reqId, filename, flags, attrs) =>
    serve(reqId, async () => {
      const fh = await open(at(filename), openFlags(flags), typeof attrs.mode === "number" ? attrs.mode & 0o7777 : 0o666);
      sftp.handle(reqId, newHandle({ kind: "file", file: fh }));
    }),
  );
  sftp.on("READ", (reqId, handle, offset, length) =>
    serve(reqId, async () => {
      const fh = file(handle);
      if (!fh) return badHandle(reqId);
      const buffer = Buffer.alloc(Math.min(length, 256 * 1024));
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) sftp.status(reqId, STATUS_CODE.EOF);
      else sftp.data(reqId, buffer.subarray(0, bytesRead));
    }),
  );
  sftp.on("WRITE", (reqId, handle, offset, view) =>
    serve(reqId, async () => {
      // ssh2 hands over a view of its receive buffer, which the next packet reuses: keep a copy across the await.
      const data = Buffer.from(view);
      const fh = file(handle);
      if (!fh) return badHandle(reqId);
      let written = 0;
      while (written < data.length) written += (await fh.write(data, written, data.length - written, offset + written)).bytesWritten;
      ok(reqId);
    }),
  );
  sftp.on("CLOSE", (reqId, handle) =>
    serve(reqId, async () => {
      const key = handle.toString("hex");
      const h = handles.get(key);
      if (!h) return badHandle(reqId);
      handles.delete(key);
      await (h.kind === "file" ? h.file.close() : h.dir.close());
      ok(reqId);
    }),
  );
  sftp.on("FSTAT", (reqId, handle) =>
    serve(reqId, async () => {
      const fh = file(handle);
      if (!fh) return badHandle(reqId);
      sftp.attrs(reqId, attrsOf(await fh.stat()));
    }),
  );
  sftp.on("FSETSTAT", (reqId, handle, attrs) =>
    serve(reqId, async () => {
      const fh = file(handle);
      if (!fh) return badHandle(reqId);
      await applyAttrs(fh, attrs);
      ok(reqId);
    }),
  );
  sftp.on("SETSTAT", (reqId, path, attrs) => serve(reqId, async () => (await applyAttrs(at(path), attrs), ok(reqId))));
  sftp.on("STAT", (reqId, path) => serve(reqId, async () => sftp.attrs(reqId, attrsOf(await stat(at(path))))));
  sftp.on("LSTAT", (reqId, path) => serve(reqId, async () => sftp.attrs(reqId, attrsOf(await lstat(at(path))))));
  sftp.on("OPENDIR", (reqId, path) =>
    serve(reqId, async () => {
      const dir = await opendir(at(path));
      sftp.handle(reqId, newHandle({ kind: "dir", path: at(path), dir }));
    }),
  );
  sftp.on("READDIR", (reqId, handle) =>
    serve(reqId, async () => {
      const h = handles.get(handle.toString("hex"));
      if (h?.kind !== "dir") return badHandle(reqId);
      const names: FileEntry[] = [];
      const now = Date.now();
      for (let entry = await h.dir.read(); entry; entry = names.length < listBatch ? await h.dir.read() : null) {
        const st = await lstat(join(h.path, entry.name)).catch(() => null);
        if (st) names.push({ filename: entry.name, longname: formatLongname(entry.name, st, now), attrs: attrsOf(st) });
      }
      if (names.length === 0) sftp.status(reqId, STATUS_CODE.EOF);
      else sftp.name(reqId, names);
    }),
  );
  sftp.on("REMOVE", (reqId, path) => serve(reqId, async () => (await unlink(at(path)), ok(reqId))));
  sftp.on("RMDIR", (reqId, path) => serve(reqId, async () => (await rmdir(at(path)), ok(reqId))));
  sftp.on("MKDIR", (reqId, path, attrs) =>
    serve(reqId, async () => (await mkdir(at(path), typeof attrs.mode === "number" ? attrs.mode & 0o7777 : 0o777), ok(reqId))),
  );
  sftp.on("RENAME", (reqId, from, to) =>
    serve(reqId, async () => {
      // SFTP v3 renames do not replace an existing file (OpenSSH's client asks first, or uses posix-rename).
      if (await lstat(at(to)).then(() => true, () => false)) return sftp.status(reqId, STATUS_CODE.FAILURE, "target exists");
      await rename(at(from), at(to));
      ok(reqId);
    }),
  );
  sftp.on("READLINK", (reqId, path) =>
    serve(reqId, async () => {
      const target = await readlink(at(path));
      sftp.name(reqId, [{ filename: target, longname: target, attrs: {} as Attributes }]);
    }),
  );
  sftp.on("SYMLINK", (reqId, target, link) => serve(reqId, async () => (await symlink(target, at(link)), ok(reqId))));
  sftp.on("REALPATH", (reqId, path) =>
    serve(reqId, async () => {
      const absolute = at(path);
      const real = await realpath(absolute).catch(() => absolute);
      sftp.name(reqId, [{ filename: real, longname: real, attrs: {} as Attributes }]);
    }),
  );
  sftp.on("EXTENDED", (reqId) => sftp.status(reqId, STATUS_CODE.OP_UNSUPPORTED));
  const closeAll = () => {
    for (const h of handles.values()) void (h.kind === "file" ? h.file.close() : h.dir.close()).catch(() => {});
    handles.clear();
  };
  sftp.on("close", closeAll);
  // The client is done (end of its input): exit 0 and close, as OpenSSH's sftp-server does. scp fails without the
  // exit status; ssh2's SFTP object has no exit(), so its protocol layer sends it (ssh2 1.17, pinned).
  sftp.on("end", () => {
    closeAll();
    void queue.then(() => {
      const internals = sftp as unknown as { outgoing: { id: number; state: string }; _protocol: { exitStatus(channel: number, status: number): void } };
      if (internals.outgoing.state === "open" || internals.outgoing.state === "eof") internals._protocol.exitStatus(internals.outgoing.id, 0);
      sftp.end();
    });
  });
}
