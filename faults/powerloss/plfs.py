#!/usr/bin/env python3
"""plfs: a FUSE pass-through filesystem that loses what was not made durable.

Test-only. Every operation is written through to a backing directory at once, and
whatever the strict POSIX model says is not yet durable is remembered as an undo record:

  * file data: each write/truncate of a regular file records the bytes and the size it
    replaced (an append records just the old size). fsync/fdatasync of the file drops the
    file's undo log: its data and size are now durable.
  * directory entries: create, mkdir, unlink, rmdir and rename are durable only once every
    directory they touched (the parent; both parents for a rename) has been fsynced
    afterwards. Until then they are kept in one ordered journal. unlink/rmdir and the file a
    rename replaces are moved into a hidden trash directory, so that a power cut can put them
    back; a durable removal empties its trash entry.

Strict POSIX: fsync of a new file does NOT make its directory entry durable (ext4 in
data=ordered mode would usually persist it, other file systems need not); only fsync of the
parent directory does.

A power cut happens when the filesystem is unmounted (`fusermount -u`) while running with
`--on-unmount cut` (the default): after the FUSE loop ends, the undo logs of all files are
applied newest first, then un-durable namespace operations are reversed newest first. With
`--tear`, the first undone write of each file keeps a random prefix (seeded by `--seed`)
instead of vanishing entirely, as a torn sector/page write would. With `--partial`, half the
time a random prefix of a file's unsynced writes survives, and half the time a random prefix
of the namespace journal (ordered, as a journaling file system commits it). `--on-unmount keep` is a
clean unmount (nothing is dropped). A summary of what was dropped is written as JSON to
`--report FILE`.

Usage: plfs.py BACKING MOUNTPOINT [--on-unmount cut|keep] [--tear] [--seed N] [--report F]
The process stays in the foreground until unmounted.
"""

import argparse
import errno
import json
import os
import random
import shutil
import sys
import threading
import uuid

from fuse import FUSE, FuseOSError, Operations

TRASH = ".plfs-trash"


class FileUndo:
    """Undo log of one backing inode: entries oldest first.

    ("w", off, old_bytes, old_size, new_len): a write of new_len bytes at off that replaced
        old_bytes (the part of [off, off+new_len) below old_size) when the file had old_size.
    ("t", old_size, cut_bytes): a truncate from old_size; cut_bytes are the bytes removed
        (empty when the file grew).
    """

    def __init__(self, fd, size, path):
        self.path = path  # where it was when first written (for the report only)
        self.fd = fd  # our own descriptor, valid even after unlink/rename
        self.size = size  # current size as we know it (all writes come through us)
        self.entries = []
        self.bytes = 0  # memory held in old bytes


class PowerLossFS(Operations):
    use_ns = True
    # POSIX/flock locks are handled by the kernel (local to this mount).
    lock = None

    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.trash = os.path.join(self.root, TRASH)
        os.makedirs(self.trash, exist_ok=True)
        self.mu = threading.RLock()
        self.undo = {}  # ino -> FileUndo
        self.fh_ino = {}  # fh -> ino
        # Namespace journal: list of dicts, oldest first; each has "pending": set of dir inos.
        self.journal = []
        self.stats = {
            "writes": 0,
            "fsyncs": 0,
            "dir_fsyncs": 0,
            "namespace_ops": 0,
        }

    # ---------------------------------------------------------------- helpers
    def _p(self, path):
        return self.root + path

    def _dir_ino(self, path):
        return os.lstat(self._p(os.path.dirname(path)) or self.root).st_ino

    def _trash_name(self):
        return os.path.join(self.trash, uuid.uuid4().hex)

    def _file_undo(self, fh, path):
        ino = self.fh_ino[fh]
        u = self.undo.get(ino)
        if u is None:
            u = FileUndo(os.dup(fh), os.fstat(fh).st_size, path)
            self.undo[ino] = u
        return u

    def _journal(self, op, pending):
        op["pending"] = set(pending)
        self.journal.append(op)
        self.stats["namespace_ops"] += 1

    # ---------------------------------------------------------------- metadata
    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        try:
            st = os.fstat(fh) if fh is not None else os.lstat(self._p(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        d = {
            k: getattr(st, k)
            for k in (
                "st_mode",
                "st_nlink",
                "st_uid",
                "st_gid",
                "st_size",
                "st_blocks",
            )
        }
        for k in ("st_atime", "st_mtime", "st_ctime"):
            d[k] = getattr(st, k + "_ns") if hasattr(st, k + "_ns") else getattr(st, k)
        d["st_ino"] = st.st_ino
        return d

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), ns=times) if times else os.utime(self._p(path))

    def statfs(self, path):
        s = os.statvfs(self._p(path))
        return {
            k: getattr(s, k)
            for k in (
                "f_bavail",
                "f_bfree",
                "f_blocks",
                "f_bsize",
                "f_favail",
                "f_ffree",
                "f_files",
                "f_flag",
                "f_frsize",
                "f_namemax",
            )
        }

    def readlink(self, path):
        return os.readlink(self._p(path))

    # ---------------------------------------------------------------- directories
    def opendir(self, path):
        return 0

    def readdir(self, path, fh):
        names = os.listdir(self._p(path))
        if path == "/":
            names = [n for n in names if n != TRASH]
        return [".", ".."] + names

    def fsyncdir(self, path, datasync, fh):
        with self.mu:
            self.stats["dir_fsyncs"] += 1
            ino = os.lstat(self._p(path)).st_ino
            self._dir_synced(ino)
        return 0

    def _dir_synced(self, ino):
        keep = []
        gone_dirs = []
        for op in self.journal:
            op["pending"].discard(ino)
            if op["pending"]:
                keep.append(op)
            else:
                self._make_durable(op)
                if op["op"] == "rmdir":
                    gone_dirs.append(op["ino"])
        self.journal = keep
        # A directory whose removal is durable takes its (already unlinked) entries with it:
        # nothing can bring them back into it.
        for d in gone_dirs:
            self._dir_synced(d)

    def _make_durable(self, op):
        t = op.get("trash")
        if t:
            if os.path.isdir(t) and not os.path.islink(t):
                shutil.rmtree(t, ignore_errors=True)
            else:
                try:
                    os.unlink(t)
                except FileNotFoundError:
                    pass

    def mkdir(self, path, mode):
        with self.mu:
            os.mkdir(self._p(path), mode)
            self._journal({"op": "mkdir", "path": path}, [self._dir_ino(path)])

    def rmdir(self, path):
        with self.mu:
            p = self._p(path)
            if os.listdir(p):
                raise FuseOSError(errno.ENOTEMPTY)
            t = self._trash_name()
            pending = [self._dir_ino(path)]
            ino = os.lstat(p).st_ino
            os.rename(p, t)
            self._journal({"op": "rmdir", "path": path, "trash": t, "ino": ino}, pending)

    # ---------------------------------------------------------------- namespace
    def create(self, path, mode, fi=None):
        with self.mu:
            fd = os.open(self._p(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
            self.fh_ino[fd] = os.fstat(fd).st_ino
            self._journal({"op": "create", "path": path}, [self._dir_ino(path)])
            return fd

    def mknod(self, path, mode, dev):
        with self.mu:
            os.mknod(self._p(path), mode, dev)
            self._journal({"op": "create", "path": path}, [self._dir_ino(path)])

    def symlink(self, target, source):
        with self.mu:
            os.symlink(source, self._p(target))
            self._journal({"op": "create", "path": target}, [self._dir_ino(target)])

    def link(self, target, source):
        raise FuseOSError(errno.ENOTSUP)

    def unlink(self, path):
        with self.mu:
            t = self._trash_name()
            pending = [self._dir_ino(path)]
            os.rename(self._p(path), t)
            self._journal({"op": "unlink", "path": path, "trash": t}, pending)

    def rename(self, old, new):
        with self.mu:
            po, pn = self._p(old), self._p(new)
            pending = {self._dir_ino(old), self._dir_ino(new)}
            t = None
            if os.path.lexists(pn):
                if os.path.isdir(pn) and not os.path.islink(pn):
                    if os.listdir(pn):
                        raise FuseOSError(errno.ENOTEMPTY)
                t = self._trash_name()
                os.rename(pn, t)
            try:
                os.rename(po, pn)
            except OSError:
                if t:
                    os.rename(t, pn)
                raise
            self._journal({"op": "rename", "old": old, "new": new, "trash": t}, pending)

    # ---------------------------------------------------------------- file data
    def open(self, path, flags):
        with self.mu:
            fd = os.open(self._p(path), os.O_RDWR)
            self.fh_ino[fd] = os.fstat(fd).st_ino
            if flags & os.O_TRUNC:
                self._truncate_fh(fd, 0, path)
            return fd

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        with self.mu:
            self.stats["writes"] += 1
            u = self._file_undo(fh, path)
            n = len(data)
            old_size = u.size
            if offset >= old_size:
                last = u.entries[-1] if u.entries else None
                # Consecutive appends merge into one entry (undone together, torn as one).
                if (
                    last is not None
                    and last[0] == "w"
                    and not last[2]
                    and offset == old_size
                    and last[1] + last[4] == offset
                ):
                    u.entries[-1] = ("w", last[1], b"", last[3], last[4] + n)
                else:
                    u.entries.append(("w", offset, b"", old_size, n))
            else:
                old = os.pread(fh, min(n, old_size - offset), offset)
                u.entries.append(("w", offset, old, old_size, n))
                u.bytes += len(old)
            written = os.pwrite(fh, data, offset)
            u.size = max(old_size, offset + written)
            return written

    def _truncate_fh(self, fh, length, path):
        u = self._file_undo(fh, path)
        cut = b""
        if length < u.size:
            cut = os.pread(fh, u.size - length, length)
        u.entries.append(("t", u.size, cut))
        u.bytes += len(cut)
        os.ftruncate(fh, length)
        u.size = length

    def truncate(self, path, length, fh=None):
        with self.mu:
            if fh is None:
                fd = os.open(self._p(path), os.O_RDWR)
                self.fh_ino[fd] = os.fstat(fd).st_ino
                try:
                    self._truncate_fh(fd, length, path)
                finally:
                    del self.fh_ino[fd]
                    os.close(fd)
            else:
                self._truncate_fh(fh, length, path)

    def fsync(self, path, datasync, fh):
        with self.mu:
            self.stats["fsyncs"] += 1
            # The backing file itself is not fsynced: power loss is simulated by the undo
            # logs, the backing directory's own durability does not matter.
            u = self.undo.pop(self.fh_ino[fh], None)
            if u is not None:
                os.close(u.fd)
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self.mu:
            self.fh_ino.pop(fh, None)
            os.close(fh)
        return 0

    # ---------------------------------------------------------------- power cut
    def power_cut(self, tear, rng, partial=False):
        """Applies the undo logs, then reverses the un-durable namespace journal.

        Default: every unsynced write is undone (with `tear`, the first of them keeps a random
        prefix). With `partial`, half the time a random prefix of each file's unsynced write
        history survives instead (and the next write is torn), and a random prefix of the
        namespace journal survives (ops are committed in order, as a journaling file system
        does): outcomes POSIX allows as well, where data and names reach the disk partly.
        """
        rep = {
            "files_rolled_back": 0,
            "bytes_dropped": 0,
            "torn_files": 0,
            "torn_bytes_kept": 0,
            "namespace_reversed": [],
            "namespace_errors": [],
            "files": [],  # [path when first written since its last fsync, size before, size after]
            "files_partly_kept": 0,
            "namespace_kept": 0,
        }
        for ino, u in self.undo.items():
            if not u.entries:
                os.close(u.fd)
                continue
            rep["files_rolled_back"] += 1
            size_before = u.size
            first_undone = 0  # entries before it survive the cut
            if partial and rng.random() < 0.5:
                first_undone = rng.randrange(0, len(u.entries) + 1)
                if first_undone:
                    rep["files_partly_kept"] += 1
            for i in range(len(u.entries) - 1, first_undone - 1, -1):
                e = u.entries[i]
                if e[0] == "w":
                    _, off, old, old_size, n = e
                    keep = 0
                    if tear and i == first_undone and n > 0:
                        keep = rng.randrange(0, n + 1)
                        if keep:
                            rep["torn_files"] += 1
                            rep["torn_bytes_kept"] += keep
                    if len(old) > keep:
                        os.pwrite(u.fd, old[keep:], off + keep)
                    os.ftruncate(u.fd, max(old_size, off + keep) if keep else old_size)
                else:
                    _, old_size, cut = e
                    os.ftruncate(u.fd, old_size)
                    if cut:
                        os.pwrite(u.fd, cut, old_size - len(cut))
            size_after = os.fstat(u.fd).st_size
            rep["bytes_dropped"] += max(0, size_before - size_after)
            rep["files"].append([u.path, size_before, size_after])
            os.close(u.fd)
        self.undo.clear()
        durable = 0
        if partial and rng.random() < 0.5:
            durable = rng.randrange(0, len(self.journal) + 1)
        for op in self.journal[:durable]:
            self._make_durable(op)
        rep["namespace_kept"] = durable
        for op in reversed(self.journal[durable:]):
            try:
                self._reverse(op)
                rep["namespace_reversed"].append(
                    {k: v for k, v in op.items() if k not in ("pending", "trash")}
                )
            except OSError as e:
                rep["namespace_errors"].append(f"{op['op']} {op}: {e}")
        self.journal = []
        return rep

    def _reverse(self, op):
        kind = op["op"]
        if kind == "create":
            os.unlink(self._p(op["path"]))
        elif kind == "mkdir":
            shutil.rmtree(self._p(op["path"]))
        elif kind in ("unlink", "rmdir"):
            os.rename(op["trash"], self._p(op["path"]))
        elif kind == "rename":
            os.rename(self._p(op["new"]), self._p(op["old"]))
            if op["trash"]:
                os.rename(op["trash"], self._p(op["new"]))

    def clean_unmount(self):
        for u in self.undo.values():
            os.close(u.fd)
        self.undo.clear()
        for op in self.journal:
            self._make_durable(op)
        self.journal = []


def run_fuse(fs, a):
    FUSE(
        fs,
        a.mountpoint,
        foreground=True,
        nothreads=a.single_thread,
        big_writes=True,
        max_write=131072,
        max_read=131072,
        default_permissions=True,
        fsname="plfs",
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backing")
    ap.add_argument("mountpoint")
    ap.add_argument("--on-unmount", choices=["cut", "keep"], default="cut")
    ap.add_argument("--tear", action="store_true", help="keep a random prefix of the first undone write of each file")
    ap.add_argument("--partial", action="store_true",
                    help="let random prefixes of the files' unsynced writes and of the namespace journal survive")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report", help="write a JSON summary of the cut here")
    ap.add_argument("--single-thread", action="store_true")
    a = ap.parse_args()

    fs = PowerLossFS(a.backing)
    try:
        run_fuse(fs, a)
    except RuntimeError as e:
        # libfuse2 reports an unmount that raced with a request still being read
        # ("reading device: Software caused connection abort") as an error; it is an
        # unmount all the same once the mount point is gone.
        if os.path.ismount(a.mountpoint):
            raise
        print("plfs: fuse loop ended with %s after the unmount; treating it as the unmount" % e, file=sys.stderr)
    # The FUSE loop ended: the mount is gone, nobody can look at the backing directory
    # through it any more. This is the moment of the power cut.
    if a.on_unmount == "cut":
        rng = random.Random(a.seed)
        rep = fs.power_cut(a.tear, rng, a.partial)
    else:
        fs.clean_unmount()
        rep = {"clean": True}
    rep["stats"] = fs.stats
    if a.report:
        tmp = a.report + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rep, f, indent=1)
        os.rename(tmp, a.report)
    else:
        json.dump(rep, sys.stderr, indent=1)


if __name__ == "__main__":
    main()
