#!/usr/bin/env bash
# Interleaved A/B of `scoredb ingest` builds on one NDJSON file: ROUNDS
# rounds, each build once per round into a fresh store, so that a noisy
# machine's load falls on every build alike. Prints per run the wall, the
# CPU seconds (user + sys of the whole process: the load inflates them far
# less than the wall), the peak RSS, the store's bytes and the load average
# before it. Compare CPU seconds and medians, not single walls.
#
# Usage: bench/ingest_ab.sh FILE ROUNDS SCOREDB_BIN...
set -u
[ $# -ge 3 ] || { echo "usage: $0 FILE ROUNDS SCOREDB_BIN..." >&2; exit 2; }
F=$1 R=$2
shift 2
T=$(mktemp -d "${TMPDIR:-/tmp}/ingest-ab.XXXXXX")
trap 'rm -rf "$T"' EXIT
for _ in $(seq "$R"); do
  for b in "$@"; do
    rm -rf "$T/db"
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$b" ingest --db "$T/db" "$F" >"$T/out"
    rc=$?
    read -r wall user sys rss <"$T/time"
    printf '%s exit %s wall %s cpu %.2f (user %s sys %s) rss_mib %d store %s load %s\n' \
      "$b" "$rc" "$wall" "$(echo "$user + $sys" | bc)" "$user" "$sys" $((rss / 1024)) \
      "$(du -sb "$T/db" | cut -f1)" "$load"
  done
done
