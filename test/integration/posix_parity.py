#!/usr/bin/env python3
"""POSIX parity: runs the same syscall sequences in two directories (a live mount's backup
directory and a native copy of the same files) and compares every result, errno, and the
final trees byte for byte.   posix_parity.py OVERLAY_DIR NATIVE_DIR"""
import errno
import os
import random
import stat
import sys

A, B = sys.argv[1], sys.argv[2]
COMPARE_ONLY = len(sys.argv) > 3 and sys.argv[3] == "--compare-only"
failures = []


def call(root, fn, *args):
    try:
        r = fn(root, *args)
        return ("ok", r)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))


def both(name, fn, *args):
    ra, rb = call(A, fn, *args), call(B, fn, *args)
    if ra != rb:
        failures.append(f"{name}{args}: overlay {ra} != native {rb}")
    return ra


def p(root, rel):
    return os.path.join(root, rel)


# Operations: each takes the root first and returns something comparable.
def write_at(root, rel, off, data, flags=os.O_WRONLY | os.O_CREAT):
    fd = os.open(p(root, rel), flags, 0o644)
    try:
        return os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def read_at(root, rel, off, n):
    fd = os.open(p(root, rel), os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def fsync_file(root, rel):
    fd = os.open(p(root, rel), os.O_RDWR)
    try:
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def size(root, rel):
    return os.stat(p(root, rel)).st_size


def mode(root, rel):
    return stat.S_IMODE(os.lstat(p(root, rel)).st_mode)


def kind(root, rel):
    m = os.lstat(p(root, rel)).st_mode
    return "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f"


def listdir(root, rel):
    return sorted(os.listdir(p(root, rel)))


def mtime(root, rel):
    return os.stat(p(root, rel)).st_mtime_ns


def seq_basic():
    both("create", write_at, "new.txt", 0, b"hello world")
    both("read", read_at, "new.txt", 0, 100)
    both("read-unaligned", read_at, "new.txt", 3, 4)
    both("excl-create", write_at, "new.txt", 0, b"x", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    both("append-past-end", write_at, "new.txt", 10000, b"tail")
    both("size", size, "new.txt")
    both("hole-reads-zero", read_at, "new.txt", 5000, 16)
    both("truncate-down", lambda r, x: os.truncate(p(r, x), 5), "new.txt")
    both("truncate-up", lambda r, x: os.truncate(p(r, x), 9000), "new.txt")
    both("after-truncate", read_at, "new.txt", 0, 9000)
    both("fsync", fsync_file, "new.txt")
    both("open-missing", read_at, "missing", 0, 1)
    both("trunc-on-open", write_at, "new.txt", 0, b"Z", os.O_WRONLY | os.O_TRUNC)
    both("size2", size, "new.txt")


def seq_backed_up_files(files):
    for f in files:
        both("base-size", size, f)
        n = size(A, f)
        both("base-read-head", read_at, f, 0, 4096)
        both("base-read-mid", read_at, f, n // 2, 9999)
        both("overwrite-unaligned", write_at, f, n // 3, b"PATCHED" * 100)
        both("overwrite-block", write_at, f, 8192, b"B" * 4096)
        both("read-after-write", read_at, f, n // 3 - 10, 800)
        both("truncate-base", lambda r, x, s: os.truncate(p(r, x), s), f, n // 2 + 7)
        both("extend-base", lambda r, x, s: os.truncate(p(r, x), s), f, n)
        both("base-gone-after-truncate", read_at, f, n // 2, 4096)


def seq_namespace():
    both("mkdir", lambda r, x: os.mkdir(p(r, x), 0o750), "dir1")
    both("mkdir-again", lambda r, x: os.mkdir(p(r, x)), "dir1")
    both("mkdir-in-missing", lambda r, x: os.mkdir(p(r, x)), "nope/sub")
    both("file-in-dir", write_at, "dir1/a", 0, b"aaa")
    both("rmdir-nonempty", lambda r, x: os.rmdir(p(r, x)), "dir1")
    both("unlink-dir", lambda r, x: os.unlink(p(r, x)), "dir1")
    both("rmdir-file", lambda r, x: os.rmdir(p(r, x)), "dir1/a")
    both("rename-file", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir1/a", "dir1/b")
    both("rename-missing", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir1/zz", "dir1/b")
    both("rename-dir", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir1", "dir2")
    both("list-renamed", listdir, "dir2")
    both("read-moved", read_at, "dir2/b", 0, 10)
    both("rename-into-self", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir2", "dir2/x")
    both("mkdir3", lambda r, x: os.mkdir(p(r, x)), "dir3")
    both("file-over-dir", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir2/b", "dir3")
    both("dir-over-file", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir3", "new.txt")
    both("dir-over-empty-dir", lambda r, a, b: os.rename(p(r, a), p(r, b)), "dir3", "dir2")
    both("symlink", lambda r, t, x: os.symlink(t, p(r, x)), "new.txt", "link")
    both("readlink", lambda r, x: os.readlink(p(r, x)), "link")
    both("kind-link", kind, "link")
    both("read-through-link", read_at, "link", 0, 5)
    both("chmod", lambda r, x: os.chmod(p(r, x), 0o600), "new.txt")
    both("mode", mode, "new.txt")
    both("chown", lambda r, x: os.chown(p(r, x), 1234, 5678), "new.txt")
    both("owner", lambda r, x: (os.stat(p(r, x)).st_uid, os.stat(p(r, x)).st_gid), "new.txt")
    both("statfs", lambda r, x: os.statvfs(p(r, x)).f_bsize > 0, ".")
    both("utime", lambda r, x: os.utime(p(r, x), ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321)), "new.txt")
    both("mtime", mtime, "new.txt")
    both("rename-over-file", lambda r, a, b: os.rename(p(r, a), p(r, b)), "new.txt", "dir2/b")
    both("unlink", lambda r, x: os.unlink(p(r, x)), "link")
    both("unlink-missing", lambda r, x: os.unlink(p(r, x)), "link")
    both("list-root", listdir, ".")


def seq_open_unlinked():
    both("create-u", write_at, "tmp.lck", 0, b"lock")
    fa = os.open(p(A, "tmp.lck"), os.O_RDWR)
    fb = os.open(p(B, "tmp.lck"), os.O_RDWR)
    both("unlink-open", lambda r, x: os.unlink(p(r, x)), "tmp.lck")
    ra, rb = os.pread(fa, 10, 0), os.pread(fb, 10, 0)
    if ra != rb:
        failures.append(f"read of an unlinked open file: {ra} != {rb}")
    os.close(fa)
    os.close(fb)
    both("gone", listdir, ".")


def seq_backed_up_namespace(files, dirs):
    for d in dirs:
        both("list-base-dir", listdir, d)
    if files:
        f = files[0]
        both("rename-base-file", lambda r, a, b: os.rename(p(r, a), p(r, b)), f, "renamed-base")
        both("read-renamed-base", read_at, "renamed-base", 0, 65536)
        both("recreate-base-name", write_at, f, 0, b"fresh")
        both("read-recreated", read_at, f, 0, 100)
    if len(files) > 1:
        both("unlink-base", lambda r, x: os.unlink(p(r, x)), files[1])
        both("unlink-base-again", lambda r, x: os.unlink(p(r, x)), files[1])
    for d in dirs:
        both("rename-base-dir", lambda r, a, b: os.rename(p(r, a), p(r, b)), d, d + ".moved")
        both("list-moved-base-dir", listdir, d + ".moved")


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode))
            else:
                with open(full, "rb") as fh:
                    out[rel] = ("f", stat.S_IMODE(st.st_mode), fh.read())
    return out


base_files = sorted(f for f in os.listdir(B) if os.path.isfile(os.path.join(B, f)) and not os.path.islink(os.path.join(B, f)))
base_dirs = sorted(d for d in os.listdir(B) if os.path.isdir(os.path.join(B, d)) and not os.path.islink(os.path.join(B, d)))
if not COMPARE_ONLY:
    seq_basic()
    seq_backed_up_files(base_files)
    seq_namespace()
    seq_open_unlinked()
    seq_backed_up_namespace(base_files, base_dirs)
ta, tb = tree(A), tree(B)
if ta.keys() != tb.keys():
    failures.append(f"trees differ: only overlay {sorted(ta.keys() - tb.keys())}, only native {sorted(tb.keys() - ta.keys())}")
for k in sorted(ta.keys() & tb.keys()):
    if ta[k] != tb[k]:
        failures.append(f"{k} differs: overlay {str(ta[k])[:80]} native {str(tb[k])[:80]}")
for f in failures:
    print("PARITY:", f)
print(f"posix_parity: {len(failures)} differences")
sys.exit(1 if failures else 0)
