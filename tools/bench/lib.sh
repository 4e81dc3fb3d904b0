# Shared by the guest benchmarks (source it after setting SRC): builds livemount, and the
# helpers for timing and for a cold page cache.
#   bench_build GROUPS...: installs what is missing, builds; sets BUILD and LM
bench_build() {
  "$SRC/tools/install-deps.sh" "$@"
  BUILD=${BUILD_DIR:-$SRC/build}
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target livemount >/dev/null
  LM=$BUILD/tools/livemount
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }
# The repository chunks the live mount at ./mnt has fetched so far.
fetched() { "$LM" stats mnt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repo"]["chunks_fetched"])'; }
# bench_workdir DIR: a fresh work directory with a mountpoint DIR/mnt (unmounted on exit,
# and first if a killed run left it mounted); commands keep their chunk index inside it.
bench_workdir() {
  W=$1
  export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache
  trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true' EXIT
  fusermount3 -u -z "$W/mnt" 2>/dev/null || true
  rm -rf "$W" && mkdir -p "$W/mnt" && cd "$W"
}
