#!/usr/bin/env bash
# The layering check passes on the tree, and fails (naming file and line) on a copy where
# a lower layer includes a higher one.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 "$SRC/tools/check_layers.py" "$SRC" || { echo "FAIL: the tree breaks the layering" >&2; exit 1; }
mkdir -p "$W/base" "$W/store" "$W/fs"
printf '#include "base/status.h"\n' >"$W/store/ok.cc"
printf '#include <string>\n#include "fs/namespace.h"\n' >"$W/base/bad.h"
if python3 "$SRC/tools/check_layers.py" "$W" 2>"$W/err"; then
  echo "FAIL: base/ including fs/ was not caught" >&2; exit 1
fi
grep -q "base/bad.h:2: layer 'base' includes 'fs/'" "$W/err" || { cat "$W/err" >&2; echo "FAIL: no file and line" >&2; exit 1; }
echo "PASS"
