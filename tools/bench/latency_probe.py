#!/usr/bin/env python3
"""A guest's reads while something else runs: random 4 KiB reads with O_DIRECT, one at a
time, one every INTERVAL ms, from FILE, until SECONDS have passed or STOPFILE exists.
Prints the latencies' percentiles in ms as one JSON line.
   latency_probe.py FILE SECONDS INTERVAL_MS SEED [STOPFILE]"""
import json
import mmap
import os
import random
import sys
import time

path, seconds, interval, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]) / 1000, int(sys.argv[4])
stop = sys.argv[5] if len(sys.argv) > 5 else None
rng = random.Random(seed)
buf = mmap.mmap(-1, 4096)
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
pages = os.fstat(fd).st_size // 4096
lat = []
end = time.monotonic() + seconds
while time.monotonic() < end and not (stop and os.path.exists(stop)):
    off = rng.randrange(pages) * 4096
    t = time.monotonic()
    os.preadv(fd, [buf], off)
    lat.append((time.monotonic() - t) * 1000)
    time.sleep(interval)
os.close(fd)
lat.sort()


def pct(p):
    return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 2) if lat else None


print(json.dumps({"reads": len(lat), "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": pct(100)}))
