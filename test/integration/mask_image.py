#!/usr/bin/env python3
"""Writes a copy of an image file that keeps only the byte ranges a profile lists for one
guest path (every other byte zero): reading the guest file out of it through livemount's
stack must still give the file's bytes, or the ranges were not enough.
   mask_image.py PROFILE.json IMAGE GUEST_PATH OUT"""
import json
import sys

profile, image, guest, out = sys.argv[1:5]
entries = [e for e in json.load(open(profile))["entries"] if e["source"] == "guest-file" and e["note"] == guest]
if not entries:
    sys.exit("mask_image: no guest-file entry for " + guest)
src = open(image, "rb").read()
masked = bytearray(len(src))
for e in entries:
    for off, length in e["ranges"]:
        masked[off:off + length] = src[off:off + length]
open(out, "wb").write(masked)
