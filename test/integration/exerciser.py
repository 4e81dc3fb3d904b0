#!/usr/bin/env python3
"""Random reads, writes (unaligned, whole blocks, past the end), truncates and fsyncs on a
file of the live mount and on a local reference copy; every read is compared.
   exerciser.py MOUNT_FILE REFERENCE_FILE OPS SEED"""
import os
import random
import sys

path, ref, ops, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
fa = os.open(path, os.O_RDWR)
fb = os.open(ref, os.O_RDWR)
max_size = max(os.fstat(fb).st_size, 1) * 2
mismatches = 0
for i in range(ops):
    r = rng.random()
    size = os.fstat(fb).st_size
    if r < 0.45:
        off = rng.randrange(0, max_size - 70000)
        if rng.random() < 0.3:
            off -= off % 4096
        n = 1 + rng.randrange(65536 if rng.random() < 0.25 else 9000)
        data = rng.randbytes(n)
        assert os.pwrite(fa, data, off) == n
        os.pwrite(fb, data, off)
    elif r < 0.88:
        if size == 0:
            continue
        off = rng.randrange(size)
        n = 1 + rng.randrange(min(size - off, 70000))
        if os.pread(fa, n, off) != os.pread(fb, n, off):
            mismatches += 1
    elif r < 0.96:
        s = rng.randrange(max_size)
        os.ftruncate(fa, s)
        os.ftruncate(fb, s)
    else:
        os.fsync(fa)
    if os.fstat(fa).st_size != os.fstat(fb).st_size:
        mismatches += 1
os.close(fa)
os.close(fb)
with open(path, "rb") as a, open(ref, "rb") as b:
    if a.read() != b.read():
        mismatches += 1
print(f"exerciser seed {seed}: {ops} operations, {mismatches} mismatches")
sys.exit(1 if mismatches else 0)
