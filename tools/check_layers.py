#!/usr/bin/env python3
"""Checks that dependencies point one way: a layer may include its own headers and those of
layers to its left, never one to its right (shared DESIGN.md, "Layers and folders").
   check_layers.py [ROOT]   (exit 1 and one line per violation, naming file and line)"""
import os
import re
import sys

LAYERS = ["base", "store", "cache", "guest", "profile", "fs", "agent", "tools"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def violations(root):
    out = []
    for rank, layer in enumerate(LAYERS):
        top = os.path.join(root, layer)
        for dirpath, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if m and m.group(1) in LAYERS and LAYERS.index(m.group(1)) > rank:
                            out.append(f"{os.path.relpath(path, root)}:{lineno}: layer '{layer}' includes "
                                       f"'{m.group(1)}/', a layer above it")
    return out


if __name__ == "__main__":
    found = violations(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    for v in found:
        print(v, file=sys.stderr)
    sys.exit(1 if found else 0)
