#!/usr/bin/env python3
"""Checks plfs's power-cut model on a scratch mount (run.py runs it first).

    compat/.venv/bin/python faults/powerloss/selftest.py

Each case works in its own directory (made durable first), then one cut, then the backing
directory is compared with what the strict POSIX model says survives. Exit 1 on a mismatch.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def dsync(p):
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def mk(p, data, sync=True):
    f = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(f, data)
    if sync:
        os.fsync(f)
    os.close(f)


def workload(m):
    for n in "abcdefghijk":
        os.mkdir(m + "/" + n)
    dsync(m)
    # a: synced "hello", then unsynced appends (O_APPEND) -> "hello"
    f = os.open(m + "/a/x", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    os.write(f, b"hello")
    os.fsync(f)
    dsync(m + "/a")
    os.write(f, b"world" * 1000)
    os.write(f, b"more")
    os.close(f)
    # b: created, written, fsynced, directory never fsynced -> gone (strict POSIX)
    mk(m + "/b/x", b"x")
    # c: durable x replaced by rename of a fsynced temp file, directory not fsynced -> old x
    mk(m + "/c/x", b"old-c")
    dsync(m + "/c")
    mk(m + "/c/x.tmp", b"new-c")
    os.rename(m + "/c/x.tmp", m + "/c/x")
    # d: durable file unlinked, directory not fsynced -> back
    mk(m + "/d/x", b"ddd")
    dsync(m + "/d")
    os.unlink(m + "/d/x")
    # e: new subdirectory (its own entries fsynced), parent not fsynced -> gone
    os.mkdir(m + "/e/sub")
    mk(m + "/e/sub/x", b"e")
    dsync(m + "/e/sub")
    # f: rename made durable -> stays renamed
    mk(m + "/f/x", b"f")
    dsync(m + "/f")
    os.rename(m + "/f/x", m + "/f/y")
    dsync(m + "/f")
    # g: pwrite in the middle and ftruncate down and up, unsynced -> original bytes
    f = os.open(m + "/g/x", os.O_CREAT | os.O_RDWR, 0o644)
    os.write(f, b"0123456789")
    os.fsync(f)
    dsync(m + "/g")
    os.pwrite(f, b"AB", 3)
    os.ftruncate(f, 4)
    os.ftruncate(f, 20)
    os.close(f)
    # h: rename made durable, then new data synced -> y with new data
    mk(m + "/h/x", b"h1")
    dsync(m + "/h")
    os.rename(m + "/h/x", m + "/h/y")
    dsync(m + "/h")
    f = os.open(m + "/h/y", os.O_WRONLY | os.O_APPEND)
    os.write(f, b"h2")
    os.fdatasync(f)
    os.close(f)
    # i: directory removed for good (rmdir durable), then re-created with a new file
    os.mkdir(m + "/i/t")
    mk(m + "/i/t/old", b"old")
    dsync(m + "/i/t")
    dsync(m + "/i")
    shutil.rmtree(m + "/i/t")
    os.mkdir(m + "/i/t")
    mk(m + "/i/t/new", b"new")
    dsync(m + "/i/t")
    dsync(m + "/i")
    # j: O_TRUNC of a durable file, rewritten, not fsynced -> old content
    mk(m + "/j/x", b"jjjjjj")
    dsync(m + "/j")
    mk(m + "/j/x", b"J", sync=False)
    # k: everything durable -> kept
    mk(m + "/k/x", b"k")
    dsync(m + "/k")


EXPECTED = {
    "a/x": b"hello",
    "c/x": b"old-c",
    "d/x": b"ddd",
    "f/y": b"f",
    "g/x": b"0123456789",
    "h/y": b"h1h2",
    "i/t/new": b"new",
    "j/x": b"jjjjjj",
    "k/x": b"k",
}


def main():
    work = tempfile.mkdtemp(prefix="plfs-selftest-")
    b, m = os.path.join(work, "b"), os.path.join(work, "m")
    os.makedirs(b)
    os.makedirs(m)
    fs = subprocess.Popen([sys.executable, os.path.join(HERE, "plfs.py"), b, m, "--report",
                           os.path.join(work, "cut.json")], stderr=open(os.path.join(work, "plfs.log"), "w"))
    ok = False
    try:
        end = time.time() + 20
        while not os.path.ismount(m) and time.time() < end and fs.poll() is None:
            time.sleep(0.05)
        if not os.path.ismount(m):
            print("plfs selftest: mount failed (see %s/plfs.log)" % work)
            return 1
        workload(m)
        subprocess.run(["fusermount", "-u", m], check=True)
        fs.wait(timeout=30)
        got = {}
        for dp, _dn, fn in os.walk(b):
            if ".plfs-trash" in dp:
                continue
            for f in fn:
                p = os.path.join(dp, f)
                with open(p, "rb") as fh:
                    got[os.path.relpath(p, b)] = fh.read()
        trash = os.listdir(os.path.join(b, ".plfs-trash"))
        if got == EXPECTED and not trash:
            print("plfs selftest: OK (%d cases)" % len("abcdefghijk"))
            ok = True
            return 0
        print("plfs selftest: FAILED")
        for k in sorted(set(got) | set(EXPECTED)):
            if got.get(k) != EXPECTED.get(k):
                print("  %s: got %r, expected %r" % (k, got.get(k, b"<missing>")[:20], EXPECTED.get(k, b"<missing>")))
        if trash:
            print("  trash not empty: %s" % trash)
        return 1
    finally:
        if fs.poll() is None:
            subprocess.run(["fusermount", "-uz", m], capture_output=True)
            try:
                fs.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fs.kill()
        if ok:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
