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
checks = 0


def call(root, fn, *args):
    try:
        r = fn(root, *args)
        return ("ok", r)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, e.errno))


def both(name, fn, *args):
    global checks
    checks += 1
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


LIBC = None


def libc():
    global LIBC
    import ctypes
    if LIBC is None:
        LIBC = ctypes.CDLL(None, use_errno=True)
        LIBC.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        LIBC.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return LIBC


def fallocate(root, rel, mode, off, n):
    import ctypes
    fd = os.open(p(root, rel), os.O_RDWR)
    try:
        if libc().fallocate(fd, mode, off, n) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def renameat2(root, a, b, flags):
    import ctypes
    AT_FDCWD = -100
    if libc().renameat2(AT_FDCWD, p(root, a).encode(), AT_FDCWD, p(root, b).encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def nlink(root, rel):
    return os.stat(p(root, rel)).st_nlink


def special(root, rel):
    st = os.lstat(p(root, rel))
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev, st.st_size)


def bind_socket(root, rel):
    import socket
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(p(root, rel))
    finally:
        s.close()


def ctime_after(root, rel, op):
    """Whether `op` moved ctime and mtime forward (the rules tmpfs and ext4 follow)."""
    before = os.lstat(p(root, rel))
    import time
    time.sleep(0.02)
    op(root, rel)
    after = os.lstat(p(root, rel))
    return (after.st_ctime_ns > before.st_ctime_ns, after.st_mtime_ns > before.st_mtime_ns)


def as_user(uid, fn):
    """Runs fn() in a child as `uid` (gid the same); returns what call() would."""
    import pickle
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = ("ok", fn())
        except OSError as e:
            out = ("err", errno.errorcode.get(e.errno, e.errno))
        except Exception as e:  # noqa: BLE001 - report, do not hang the parent
            out = ("exc", repr(e))
        os.write(wfd, pickle.dumps(out))
        os._exit(0)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 65536):
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return pickle.loads(data)


def other(name, fn, *args):
    """Like both(), as user nobody (65534): permission checks of another user."""
    global checks
    checks += 1
    ra = as_user(65534, lambda: fn(A, *args))
    rb = as_user(65534, lambda: fn(B, *args))
    if os.environ.get("PARITY_VERBOSE"):
        print("as nobody:", name, ra)
    if ra[0] == "exc" or ra != rb:
        failures.append(f"{name}{args} as nobody: overlay {ra} != native {rb}")


def seq_other_user():
    both("create-owned", write_at, "rootfile", 0, b"root")
    both("chmod-644", lambda r, x: os.chmod(p(r, x), 0o644), "rootfile")
    other("read-as-other", read_at, "rootfile", 0, 4)
    other("write-as-other", write_at, "rootfile", 0, b"x", os.O_WRONLY)
    other("chmod-as-other", lambda r, x: os.chmod(p(r, x), 0o666), "rootfile")
    other("chown-as-other", lambda r, x: os.chown(p(r, x), 65534, 65534), "rootfile")
    other("utime-as-other", lambda r, x: os.utime(p(r, x), ns=(1, 1)), "rootfile")
    other("touch-as-other", lambda r, x: os.utime(p(r, x)), "rootfile")
    other("create-in-root-dir", write_at, "nobody-file", 0, b"n")
    other("setxattr-as-other", lambda r, x: os.setxattr(p(r, x), "user.n", b"n"), "rootfile")
    both("mkdir-sticky", lambda r, x: os.mkdir(p(r, x)), "sticky")
    both("chmod-sticky", lambda r, x: os.chmod(p(r, x), 0o1777), "sticky")
    both("sticky-mode", mode, "sticky")
    both("root-in-sticky", write_at, "sticky/roots", 0, b"r")
    other("create-in-sticky", write_at, "sticky/mine", 0, b"m")
    other("chmod-own", lambda r, x: os.chmod(p(r, x), 0o600), "sticky/mine")
    other("unlink-others-in-sticky", lambda r, x: os.unlink(p(r, x)), "sticky/roots")
    other("rename-others-in-sticky", lambda r, a, b: os.rename(p(r, a), p(r, b)), "sticky/roots", "sticky/stolen")
    other("unlink-own-in-sticky", lambda r, x: os.unlink(p(r, x)), "sticky/mine")
    both("owner-sticky-file", lambda r, x: (os.stat(p(r, x)).st_uid, os.stat(p(r, x)).st_gid), "sticky/roots")


def seq_posix_more(base_files):
    # Name length limits.
    both("mkdir-256", lambda r, x: os.mkdir(p(r, x)), "n" * 256)
    both("create-255", write_at, "m" * 255, 0, b"x")
    both("stat-256", size, "m" * 256)
    both("rename-to-256", lambda r, a, b: os.rename(p(r, a), p(r, b)), "m" * 255, "k" * 256)
    both("unlink-255", lambda r, x: os.unlink(p(r, x)), "m" * 255)
    # A directory's link count: 2 plus one per subdirectory.
    both("mkdir-nl", lambda r, x: os.mkdir(p(r, x)), "nl")
    both("nlink-empty", nlink, "nl")
    for sub in ("nl/a", "nl/b", "nl/c"):
        both("mkdir-sub", lambda r, x: os.mkdir(p(r, x)), sub)
    both("file-in-nl", write_at, "nl/f", 0, b"f")
    both("nlink-3-subdirs", nlink, "nl")
    both("rmdir-sub", lambda r, x: os.rmdir(p(r, x)), "nl/a")
    both("rename-sub-out", lambda r, a, b: os.rename(p(r, a), p(r, b)), "nl/b", "nl-b")
    both("nlink-after", nlink, "nl")
    both("nlink-file", nlink, "nl/f")
    # FIFOs, sockets and device nodes live in the overlay.
    both("mkfifo", lambda r, x: os.mkfifo(p(r, x), 0o640), "fifo")
    both("fifo-stat", special, "fifo")
    both("mknod-reg", lambda r, x: os.mknod(p(r, x), 0o600 | stat.S_IFREG), "regnode")
    both("regnode-stat", special, "regnode")
    both("mknod-chr", lambda r, x: os.mknod(p(r, x), 0o600 | stat.S_IFCHR, os.makedev(1, 3)), "null2")
    both("chr-stat", special, "null2")
    both("mknod-blk", lambda r, x: os.mknod(p(r, x), 0o600 | stat.S_IFBLK, os.makedev(7, 0)), "loop2")
    both("blk-stat", special, "loop2")
    both("bind", bind_socket, "sock")
    both("sock-stat", special, "sock")
    both("bind-again", bind_socket, "sock")
    both("mkfifo-exists", lambda r, x: os.mkfifo(p(r, x)), "fifo")
    both("rename-fifo", lambda r, a, b: os.rename(p(r, a), p(r, b)), "fifo", "fifo2")
    both("chmod-fifo", lambda r, x: os.chmod(p(r, x), 0o600), "fifo2")
    both("fifo2-stat", special, "fifo2")
    both("unlink-sock", lambda r, x: os.unlink(p(r, x)), "sock")
    both("list-specials", listdir, ".")
    # Extended attributes on a new file, a directory and a backed-up file.
    targets = ["new-x.txt", "nl"] + base_files[:1]
    both("create-x", write_at, "new-x.txt", 0, b"xattrs")
    for t in targets:
        both("setxattr", lambda r, x: os.setxattr(p(r, x), "user.one", b"1"), t)
        both("setxattr-create-exists", lambda r, x: os.setxattr(p(r, x), "user.one", b"2", os.XATTR_CREATE), t)
        both("setxattr-replace-missing", lambda r, x: os.setxattr(p(r, x), "user.two", b"2", os.XATTR_REPLACE), t)
        both("setxattr-replace", lambda r, x: os.setxattr(p(r, x), "user.one", b"one", os.XATTR_REPLACE), t)
        both("setxattr-binary", lambda r, x: os.setxattr(p(r, x), "user.bin", bytes(range(256))), t)
        both("setxattr-trusted", lambda r, x: os.setxattr(p(r, x), "trusted.libvirt.security.dac", b"+0:+0"), t)
        both("setxattr-empty", lambda r, x: os.setxattr(p(r, x), "user.empty", b""), t)
        both("setxattr-too-big", lambda r, x: os.setxattr(p(r, x), "user.big", b"b" * 65537), t)
        both("getxattr", lambda r, x: os.getxattr(p(r, x), "user.one"), t)
        both("getxattr-binary", lambda r, x: os.getxattr(p(r, x), "user.bin"), t)
        both("getxattr-missing", lambda r, x: os.getxattr(p(r, x), "user.nope"), t)
        both("listxattr", lambda r, x: sorted(n for n in os.listxattr(p(r, x)) if not n.startswith("security.")), t)
        both("removexattr", lambda r, x: os.removexattr(p(r, x), "user.bin"), t)
        both("removexattr-missing", lambda r, x: os.removexattr(p(r, x), "user.bin"), t)
        both("xattr-ctime", ctime_after, t, lambda r, x: os.setxattr(p(r, x), "user.t", b"t"))
    both("xattr-symlink-user", lambda r, x: os.setxattr(p(r, x), "user.l", b"l", follow_symlinks=False), "link-x")
    # fallocate: allocation, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE; on new and backed-up files.
    KEEP, PUNCH, ZERO = 1, 2, 16
    both("create-fa", write_at, "fa", 0, bytes(range(256)) * 64)
    for f in ["fa"] + base_files[:1]:
        both("fallocate-extend", fallocate, f, 0, 0, size(B, f) + 10000)
        both("fallocate-keep", fallocate, f, KEEP, 0, size(B, f) + 50000)
        both("size-after-keep", size, f)
        both("punch", fallocate, f, PUNCH | KEEP, 1000, 9000)
        both("read-punched", read_at, f, 0, 12000)
        both("punch-no-keep", fallocate, f, PUNCH, 0, 4096)
        both("zero-range", fallocate, f, ZERO, 5000, 3000)
        both("zero-range-extend", fallocate, f, ZERO, size(B, f) - 100, 9000)
        both("zero-range-keep", fallocate, f, ZERO | KEEP, size(B, f) - 100, 9000)
        both("read-zeroed", read_at, f, size(B, f) - 20000, 30000)
        both("fallocate-bad-mode", fallocate, f, 0x40, 0, 4096)
        both("fallocate-zero-len", fallocate, f, 0, 0, 0)
        both("fallocate-ctime", ctime_after, f, lambda r, x: fallocate(r, x, PUNCH | KEEP, 0, 4096))
    # Hard links: one inode, several names, in new and backed-up files, across renames.
    both("create-hl", write_at, "hl-a", 0, b"linked")
    both("link", lambda r, a, b: os.link(p(r, a), p(r, b)), "hl-a", "hl-b")
    both("link-nlink", nlink, "hl-a")
    both("link-same-ino", lambda r, a, b: os.stat(p(r, a)).st_ino == os.stat(p(r, b)).st_ino, "hl-a", "hl-b")
    both("write-one-read-other", lambda r, a, b: (write_at(r, a, 2, b"NK"), read_at(r, b, 0, 10)), "hl-a", "hl-b")
    both("link-exists", lambda r, a, b: os.link(p(r, a), p(r, b)), "hl-a", "hl-b")
    both("link-dir", lambda r, a, b: os.link(p(r, a), p(r, b)), "nl", "nl-link")
    both("link-missing", lambda r, a, b: os.link(p(r, a), p(r, b)), "nope", "nope2")
    both("link-into-dir", lambda r, a, b: os.link(p(r, a), p(r, b)), "hl-a", "nl/hl-c")
    both("nlink-3", nlink, "hl-b")
    both("rename-link", lambda r, a, b: os.rename(p(r, a), p(r, b)), "hl-b", "hl-b2")
    both("rename-same-inode", lambda r, a, b: os.rename(p(r, a), p(r, b)), "hl-a", "hl-b2")
    both("unlink-first", lambda r, x: os.unlink(p(r, x)), "hl-a")
    both("nlink-after-unlink", nlink, "hl-b2")
    both("read-after-unlink", read_at, "hl-b2", 0, 10)
    both("rename-dir-with-link", lambda r, a, b: os.rename(p(r, a), p(r, b)), "nl", "nl2")
    both("read-moved-link", read_at, "nl2/hl-c", 0, 10)
    both("write-moved-link", write_at, "nl2/hl-c", 0, b"M")
    both("read-other-name", read_at, "hl-b2", 0, 10)
    both("create-victim", write_at, "victim", 0, b"v")
    both("link-victim", lambda r, a, b: os.link(p(r, a), p(r, b)), "victim", "victim2")
    both("rename-over-link", lambda r, a, b: os.rename(p(r, a), p(r, b)), "hl-b2", "victim")
    both("victim2-nlink", nlink, "victim2")
    both("chmod-via-link", lambda r, x: os.chmod(p(r, x), 0o604), "victim")
    both("mode-other-name", mode, "nl2/hl-c")
    if base_files:
        both("link-base", lambda r, a, b: os.link(p(r, a), p(r, b)), base_files[0], "base-link")
        both("base-link-read", read_at, "base-link", 0, 4096)
        both("base-link-nlink", nlink, base_files[0])
    both("link-symlink", lambda r, a, b: os.link(p(r, a), p(r, b), follow_symlinks=False), "link-x", "link-x2")
    both("readlink-linked", lambda r, x: os.readlink(p(r, x)), "link-x2")
    both("link-fifo", lambda r, a, b: os.link(p(r, a), p(r, b)), "fifo2", "fifo3")
    both("fifo-nlink", lambda r, x: os.lstat(p(r, x)).st_nlink, "fifo3")
    # rename edge cases: RENAME_NOREPLACE, onto itself, a directory into its own child.
    both("rn-src", write_at, "rn-a", 0, b"a")
    both("rn-dst", write_at, "rn-b", 0, b"b")
    both("noreplace-existing", renameat2, "rn-a", "rn-b", 1)
    both("noreplace-free", renameat2, "rn-a", "rn-c", 1)
    both("rename-onto-itself", lambda r, a, b: os.rename(p(r, a), p(r, b)), "rn-c", "rn-c")
    both("mkdir-rn", lambda r, x: os.makedirs(p(r, x)), "rn-d/sub")
    both("dir-into-child", lambda r, a, b: os.rename(p(r, a), p(r, b)), "rn-d", "rn-d/sub/x")
    both("dir-onto-nonempty", lambda r, a, b: os.rename(p(r, a), p(r, b)), "nl2", "rn-d")
    both("rn-list", listdir, ".")
    # Timestamp rules: a write moves mtime and ctime, chmod only ctime.
    both("write-times", ctime_after, "fa", lambda r, x: write_at(r, x, 0, b"w"))
    both("chmod-times", ctime_after, "fa", lambda r, x: os.chmod(p(r, x), 0o640))
    both("rename-keeps-mtime", ctime_after, "fa", lambda r, x: (os.rename(p(r, x), p(r, "fa.tmp")),
                                                              os.rename(p(r, "fa.tmp"), p(r, x))))


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
            elif not stat.S_ISREG(st.st_mode):  # FIFOs, sockets, devices: never opened
                out[rel] = ("s", stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev)
            else:
                with open(full, "rb") as fh:
                    out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_nlink, fh.read())
    return out


def link_groups(root):
    """Which names share an inode: {rel: sorted names of its inode} for linked names."""
    by_ino = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            if st.st_nlink > 1:
                by_ino.setdefault(st.st_ino, []).append(os.path.relpath(full, root))
    return sorted(sorted(v) for v in by_ino.values())


base_files = sorted(f for f in os.listdir(B) if os.path.isfile(os.path.join(B, f)) and not os.path.islink(os.path.join(B, f)))
base_dirs = sorted(d for d in os.listdir(B) if os.path.isdir(os.path.join(B, d)) and not os.path.islink(os.path.join(B, d)))
if not COMPARE_ONLY:
    seq_basic()
    seq_backed_up_files(base_files)
    seq_namespace()
    seq_open_unlinked()
    seq_backed_up_namespace(base_files, base_dirs)
    both("symlink-x", lambda r, t, x: os.symlink(t, p(r, x)), "new.txt", "link-x")
    seq_posix_more([f for f in base_files if os.path.exists(os.path.join(B, f))])
    if os.environ.get("PARITY_OTHER_USER") == "1":  # needs a mount with --allow-other
        seq_other_user()
ta, tb = tree(A), tree(B)
ga, gb = link_groups(A), link_groups(B)
if ga != gb:
    failures.append(f"hard links differ: overlay {ga} native {gb}")
if ta.keys() != tb.keys():
    failures.append(f"trees differ: only overlay {sorted(ta.keys() - tb.keys())}, only native {sorted(tb.keys() - ta.keys())}")
for k in sorted(ta.keys() & tb.keys()):
    if ta[k] != tb[k]:
        failures.append(f"{k} differs: overlay {str(ta[k])[:80]} native {str(tb[k])[:80]}")
for f in failures:
    print("PARITY:", f)
print(f"posix_parity: {checks} calls compared, {len(failures)} differences")
sys.exit(1 if failures else 0)
