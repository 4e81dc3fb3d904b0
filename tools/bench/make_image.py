#!/usr/bin/env python3
"""Writes a benchmark disk image: the first half random bytes, the second half text
that compresses like logs and documents (random lines from a vocabulary, so no two chunks
are alike and dedup cannot flatter anyone).   make_image.py PATH SIZE_MIB"""
import os
import random
import sys

path, mib = sys.argv[1], int(sys.argv[2])
half = (mib << 20) // 2
rng = random.Random(1234)
words = ["backup", "virtual", "machine", "disk", "block", "chunk", "restore", "mount",
         "cache", "guest", "kernel", "boot", "error", "warning", "info", "request", "user",
         "session", "database", "query", "table", "index", "commit", "transaction"]
lines = []
for i in range(1 << 16):
    n = rng.randrange(4, 14)
    lines.append(("%08d %s %s\n" % (rng.randrange(10**8), rng.choice(["INFO", "WARN", "DEBUG"]),
                                     " ".join(rng.choice(words) for _ in range(n)))).encode())
with open(path, "wb") as f:
    left = half
    while left > 0:
        b = os.urandom(min(left, 1 << 24))
        f.write(b)
        left -= len(b)
    left = half
    while left > 0:
        block = b"".join(rng.choices(lines, k=20000))[: min(left, 1 << 24)]
        f.write(block)
        left -= len(block)
