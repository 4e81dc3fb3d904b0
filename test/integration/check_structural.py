#!/usr/bin/env python3
"""Checks a structural profile against the image itself and `qemu-img map`:
metadata ranges never overlap guest data, and every non-zero sector of the image file is
either guest data or named metadata (nothing missed).
   check_structural.py PROFILE IMAGE_IN_PROFILE IMAGE_FILE"""
import json
import subprocess
import sys

profile, name, image = sys.argv[1], sys.argv[2], sys.argv[3]
entries = [e for e in json.load(open(profile))["entries"] if e["file"] == name]
meta = [(o, o + n) for e in entries if not e.get("note", "").startswith(("guest", "small"))
        for o, n in e["ranges"]]
fmt = subprocess.run(["qemu-img", "info", "--output=json", image], capture_output=True, check=True)
fmt = json.loads(fmt.stdout)["format"]
m = subprocess.run(["qemu-img", "map", "--output=json", "-f", fmt, image], capture_output=True, check=True)
data = [(x["offset"], x["offset"] + x["length"]) for x in json.loads(m.stdout) if x.get("data") and "offset" in x]
bad = []
for a0, a1 in meta:
    for b0, b1 in data:
        if a0 < b1 and b0 < a1:
            bad.append(f"metadata {a0}-{a1} overlaps data {b0}-{b1}")
covered = sorted(meta + data)
blob = open(image, "rb").read()
missed = 0
j = 0
for sector in range(0, len(blob), 512):
    s = blob[sector:sector + 512]
    if not any(s):
        continue
    if not any(c0 <= sector < c1 for c0, c1 in covered):
        missed += 1
        if missed <= 3:
            bad.append(f"non-zero sector at {sector} is neither data nor named metadata")
if not meta:
    bad.append("no metadata named")
for b in bad:
    print("STRUCTURAL:", b)
print(f"{name}: {len(meta)} metadata ranges, {len(data)} data ranges, {missed} missed sectors")
sys.exit(1 if bad else 0)
