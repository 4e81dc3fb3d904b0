#!/usr/bin/env python3
"""Replays a recorded boot read trace (`mount --record-reads`): the same files, offsets,
lengths and order, with O_DIRECT, against a VM directory or a live mount; prints seconds.
   replay.py TRACE local VMDIR       (files by their path inside the backup)
   replay.py TRACE mount MOUNTPOINT  (MOUNTPOINT/<vm>/<id>/<path>)
Runs it REPEAT times (default 5, page cache dropped before each) and prints the median.
A trace holds the guest's reads as the mount saw them, some unaligned (a 1-byte read at
offset 0); O_DIRECT refuses those with EINVAL, so each read is widened to whole 4 KiB
pages, as the page cache would have read it, on both sides alike."""
import mmap
import os
import sys
import time

PAGE = 4096
trace, kind, root = sys.argv[1], sys.argv[2], sys.argv[3]
ops = []
for line in open(trace):
    what, off, size = line.rsplit(" ", 2)
    spec, path = what.split(":", 1)
    vm, bid = spec.split("@", 1)
    full = os.path.join(root, path) if kind == "local" else os.path.join(root, vm, bid, path)
    start, end = int(off), int(off) + int(size)
    start, end = start & ~(PAGE - 1), (end + PAGE - 1) & ~(PAGE - 1)
    ops.append((full, start, end - start))
buf = mmap.mmap(-1, max(s for _, _, s in ops) + 4096)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def run():
    fds = {}
    drop_caches()
    start = time.monotonic()
    for full, off, size in ops:
        fd = fds.get(full)
        if fd is None:
            fd = fds[full] = os.open(full, os.O_RDONLY | os.O_DIRECT)
        os.preadv(fd, [memoryview(buf)[:size]], off)
    elapsed = time.monotonic() - start
    for fd in fds.values():
        os.close(fd)
    return elapsed


repeat = int(os.environ.get("REPEAT", "5"))
times = sorted(run() for _ in range(repeat))
print(f"{times[len(times) // 2]:.3f}")
