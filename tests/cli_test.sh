#!/usr/bin/env bash
# Command-line tests: exit codes, the ingest report, stdin and files,
# a malformed file that changes nothing, and query/names output.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -u
BIN=${SCOREDB_BIN:-build/scoredb}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect_eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got [$1] want [$2]"; fi; }
expect_has() { case "$1" in *"$2"*) ok ;; *) bad "$3: [$1] lacks [$2]" ;; esac; }

cat >"$T/good.ndjson" <<'J'
{"name":"faithfulness","value":0.5,"trace_id":"t1","timestamp":"2026-01-01T10:00:00Z","model":"gpt-4o"}
{"name":"faithfulness","value":0.75,"trace_id":"t2","timestamp":1767265200000,"model":"claude"}

{"name":"thumbs","value":true,"session_id":"s1","timestamp":"2026-01-02T00:00:00.000Z"}
{"id":"r1","name":"label","value":"pass","trace_id":"t3","timestamp":"2026-01-02T12:00:00+02:00"}
J
out=$("$BIN" ingest --db "$T/db" "$T/good.ndjson"); rc=$?
expect_eq "$rc" 0 "ingest of good rows exits 0"
expect_eq "$out" '{"accepted":4,"rejected":0,"errors":[]}' "ingest report"

q='{"names":["faithfulness","thumbs"],"group_by":["name"],"stats":["count","avg","sum"]}'
out=$("$BIN" query --db "$T/db" "$q"); rc=$?
expect_eq "$rc" 0 "query exits 0"
expect_has "$out" '"groups":[{"key":{"name":"faithfulness"},"count":2,"avg":0.625,"sum":1.25},{"key":{"name":"thumbs"},"count":1,"avg":1,"sum":1}]' "query answer"
expect_has "$out" '"pending":0' "CLI reads with no delay"
out2=$(echo "$q" | "$BIN" query --db "$T/db" -)
expect_eq "$(echo "$out2" | sed 's/"as_of":"[^"]*"//')" "$(echo "$out" | sed 's/"as_of":"[^"]*"//')" "query from stdin"

before=$("$BIN" query --db "$T/db" '{"group_by":["name"],"stats":["count","sum"]}' | sed 's/"as_of":"[^"]*"//')
cat >"$T/bad.ndjson" <<'J'
{"name":"faithfulness","value":"high","data_type":"NUMERIC","trace_id":"t1"}
{"name":"faithfulness","value":0.5}
not json at all
{"name":"","value":1,"trace_id":"t"}
{"id":"r1","name":"label","value":2,"data_type":"BOOLEAN","trace_id":"t3"}
{"name":"x","value":1,"trace_id":"t","colour":"red"}
J
out=$("$BIN" ingest --db "$T/db" "$T/bad.ndjson"); rc=$?
expect_eq "$rc" 3 "malformed rows exit 3"
expect_has "$out" '"accepted":0,"rejected":6' "every malformed row rejected"
expect_has "$out" '{"line":1,"error":"field \"value\": data_type NUMERIC takes a number, got \"high\""}' "line 1 reason"
expect_has "$out" '{"line":2,"error":"a score needs at least one of trace_id, session_id or dataset_run_id"}' "line 2 reason"
expect_has "$out" '{"line":3,"error":"invalid JSON' "line 3 reason"
expect_has "$out" '{"line":5,"error":"field \"value\": data_type BOOLEAN takes true, false, 0 or 1, got 2"}' "line 5 reason"
expect_has "$out" '{"line":6,"error":"unknown field \"colour\""}' "line 6 reason"
after=$("$BIN" query --db "$T/db" '{"group_by":["name"],"stats":["count","sum"]}' | sed 's/"as_of":"[^"]*"//')
expect_eq "$after" "$before" "a rejected batch changes nothing"

printf '%s\n' '{"name":"faithfulness","value":1,"trace_id":"t9","timestamp":1767265200000}' '{"name":"faithfulness"}' \
  | "$BIN" ingest --db "$T/db" - >"$T/mixed.out"; rc=$?
expect_eq "$rc" 3 "mixed batch exits 3"
expect_has "$(cat "$T/mixed.out")" '"accepted":1,"rejected":1' "good row of a mixed batch kept"
out=$("$BIN" query --db "$T/db" '{"name":"faithfulness","stats":["count"]}')
expect_has "$out" '"count":3' "the good row is stored"

# The ingest pipeline (a reader, two parse workers, commits in file order)
# driven through thousands of turns of its ring with 3-row chunks: every
# good line is stored exactly once, every bad one reported by its number.
# SCOREDB_TEST_JITTER makes parse jobs finish out of order (the race that
# once reset a chunk still in flight needed exactly that).
awk 'BEGIN { for (i = 1; i <= 20000; i++)
  if (i % 997 == 0) print "{\"name\":\"ring\",\"value\":\"x\",\"data_type\":\"NUMERIC\",\"trace_id\":\"t\"}";
  else printf "{\"name\":\"ring\",\"value\":%d,\"trace_id\":\"t%d\",\"timestamp\":%d}\n", i, i, 1767225600000 + i }' >"$T/ring.ndjson"
out=$(SCOREDB_INGEST_BATCH=3 SCOREDB_TEST_JITTER=300 "$BIN" ingest --db "$T/ring" "$T/ring.ndjson"); rc=$?
expect_eq "$rc" 3 "ring ingest exits 3"
expect_has "$out" '"accepted":19980,"rejected":20,' "ring ingest counts"
expect_has "$out" '{"line":997,"error":' "ring ingest first bad line"
expect_has "$out" '{"line":19940,"error":' "ring ingest last bad line"
# sum of 1..20000 less the multiples of 997 (997 * (1 + ... + 20) = 209370)
out=$("$BIN" query --db "$T/ring" '{"name":"ring","stats":["count","sum","traces"]}')
expect_has "$out" '"count":19980,"sum":199800630,"traces":19980' "ring ingest stores each good line once"

# \u0000 would cut a string short, so it is refused; an escaped backslash
# before "u0000" is only text.
out=$(printf '%s\n' '{"name":"n","value":"x\u0000y","trace_id":"t"}' '{"name":"n","value":"x\\u0000y","trace_id":"t"}' \
  '{"name":"n","value":"x\\\u0000y","trace_id":"t"}' | "$BIN" ingest --db "$T/nul" -)
expect_has "$out" '"accepted":1,"rejected":2,' "NUL escapes refused, escaped backslashes kept"
expect_has "$out" '{"line":3,"error":"field \"value\": the escape \\u0000 (NUL) at column 25' "NUL escape after an escaped backslash"

# A raw NUL byte used to cut the id short, so "victim\0x" replaced the
# score "victim"; a raw control byte in a name was kept. Both are refused,
# naming the field, and the line's neighbours are stored.
printf '{"id":"victim","name":"n","value":1,"trace_id":"t"}\n' | "$BIN" ingest --db "$T/raw" - >/dev/null
out=$(printf '{"id":"victim\0x","name":"n","value":5,"trace_id":"t"}\n{"id":"k2","name":"n\x01","value":5,"trace_id":"t"}\n{"id":"k3","name":"n","value":2,"trace_id":"t"}\n' \
  | "$BIN" ingest --db "$T/raw" -); rc=$?
expect_eq "$rc" 3 "raw control bytes exit 3"
expect_has "$out" '"accepted":1,"rejected":2,' "raw control bytes refused, the good line stored"
expect_has "$out" '{"line":1,"error":"field \"id\": raw control byte 0x00 at column 14' "raw NUL names the id"
expect_has "$out" '{"line":2,"error":"field \"name\": raw control byte 0x01 at column 21' "raw 0x01 names the name"
out=$("$BIN" query --db "$T/raw" '{"name":"n","stats":["count","sum"]}')
expect_has "$out" '"count":2,"sum":3' "the victim's score is untouched"

printf '{"name":"n\0x"}' | "$BIN" query --db "$T/raw" - >/dev/null 2>"$T/err"; rc=$?
expect_eq "$rc" 2 "a query with a raw NUL exits 2"
expect_has "$(cat "$T/err")" 'field "name": raw control byte 0x00' "a query with a raw NUL names the field"

# A directory is not an NDJSON file: an error naming it, nothing stored.
mkdir -p "$T/adir"
"$BIN" ingest --db "$T/dirdb" "$T/good.ndjson" "$T/adir" >"$T/out" 2>"$T/err"; rc=$?
expect_eq "$rc" 1 "ingest of a directory exits 1"
expect_has "$(cat "$T/err")" "cannot read $T/adir: a directory" "ingest of a directory names it"
out=$("$BIN" query --db "$T/dirdb" '{"stats":["count"]}' 2>/dev/null)
expect_eq "$(echo "$out" | grep -c '"count"')" 0 "nothing stored before the directory was refused"
"$BIN" ingest --db "$T/dirdb" "$T/missing.ndjson" >/dev/null 2>"$T/err"; rc=$?
expect_eq "$rc" 1 "ingest of a missing file exits 1"
expect_has "$(cat "$T/err")" "cannot read $T/missing.ndjson: No such file" "missing file named"

out=$("$BIN" names --db "$T/db"); rc=$?
expect_eq "$rc" 0 "names exits 0"
expect_has "$out" '{"name":"label","data_type":"CATEGORICAL","count":1,"first":"2026-01-02T10:00:00.000Z","last":"2026-01-02T10:00:00.000Z"}' "names lists label"

out=$("$BIN" stats --db "$T/ring"); rc=$?
expect_eq "$rc" 0 "stats exits 0"
expect_has "$out" '"rows":{"entries":19980,' "stats counts the row records"
expect_has "$out" '"ids":{"entries":0,' "generated ids need no index entry"

"$BIN" query --db "$T/nope" '{}' 2>"$T/err"; rc=$?
expect_eq "$rc" 1 "query of a missing store exits 1"
expect_has "$(cat "$T/err")" "no store at" "missing store message"
"$BIN" query --db "$T/db" '{"stats":["median"]}' 2>"$T/err"; rc=$?
expect_eq "$rc" 2 "invalid query exits 2"
expect_has "$(cat "$T/err")" "unknown stat \"median\"" "invalid query message"
"$BIN" ingest 2>/dev/null; expect_eq "$?" 2 "ingest without --db exits 2"
"$BIN" frobnicate --db "$T/db" 2>/dev/null; expect_eq "$?" 2 "unknown command exits 2"
"$BIN" ingest --db "$T/db" "$T/missing.ndjson" >/dev/null 2>&1; expect_eq "$?" 1 "unreadable file exits 1"
mkdir -p "$T/ro" && touch "$T/ro/data.mdb" && chmod 000 "$T/ro/data.mdb"
if [ "$(id -u)" != 0 ]; then "$BIN" query --db "$T/ro" '{}' >/dev/null 2>&1; expect_eq "$?" 1 "unopenable store exits 1"; fi

# A regular file is read through a mapping, stdin (and SCOREDB_INGEST_NO_MAP)
# through the block reader: the same text must give the same report and the
# same scores either way, through chunk boundaries (batches of 7), with blank
# and white-space lines, CRLF, leading blanks, bad lines, a line over the
# 16 MiB limit, and no newline at the end of the file.
{
  for i in $(seq 1 60); do
    case $((i % 6)) in
      0) echo "" ;;
      1) printf '  {"id":"m%d","name":"mix","value":%d,"trace_id":"t%d"}\r\n' "$i" "$i" "$i" ;;
      2) echo '{"name":"mix","value":1}' ;;
      3) printf ' \t \n' ;;
      *) printf '{"id":"m%d","name":"mix","value":%d,"trace_id":"t%d"}\n' "$i" "$i" "$i" ;;
    esac
  done
  head -c $((16 * 1024 * 1024 + 10)) /dev/zero | tr '\0' 'x'; echo
  printf '{"id":"last","name":"mix","value":7,"trace_id":"tl"}'
} >"$T/mix.ndjson"
mq='{"names":["mix"],"stats":["count","sum"]}'
for how in map nomap stdin; do
  rm -rf "$T/mix-$how"
  case $how in
    map) SCOREDB_INGEST_BATCH=7 "$BIN" ingest --db "$T/mix-$how" "$T/mix.ndjson" >"$T/mix-$how.out" ;;
    nomap) SCOREDB_INGEST_NO_MAP=1 SCOREDB_INGEST_BATCH=7 "$BIN" ingest --db "$T/mix-$how" "$T/mix.ndjson" >"$T/mix-$how.out" ;;
    stdin) SCOREDB_INGEST_BATCH=7 "$BIN" ingest --db "$T/mix-$how" - <"$T/mix.ndjson" >"$T/mix-$how.out" ;;
  esac
  expect_eq "$?" 3 "mixed file ($how) exits 3"
  "$BIN" query --db "$T/mix-$how" "$mq" | sed 's/"as_of":"[^"]*"//' >"$T/mix-$how.q"
done
expect_has "$(cat "$T/mix-map.out")" '"accepted":31,"rejected":11' "mixed file (map) counts"
expect_has "$(cat "$T/mix-map.out")" '{"line":61,"error":"line: 16777226 bytes, over the limit' "mixed file (map) names the long line"
expect_eq "$(cat "$T/mix-map.out")" "$(cat "$T/mix-nomap.out")" "mapped and read reports agree"
expect_eq "$(cat "$T/mix-map.out")" "$(cat "$T/mix-stdin.out")" "mapped and stdin reports agree"
expect_has "$(cat "$T/mix-map.q")" '"count":31,' "mixed file (map) stores the good rows"
expect_eq "$(cat "$T/mix-map.q")" "$(cat "$T/mix-nomap.q")" "mapped and read stores agree"
expect_eq "$(cat "$T/mix-map.q")" "$(cat "$T/mix-stdin.q")" "mapped and stdin stores agree"

# A mapped file holds only the chunks in flight, a line over the limit
# included: 200 MB without a newline (skipped, named) must not become
# 200 MB of resident pages.
{ echo '{"name":"big","value":1,"trace_id":"t"}'; head -c 200000000 /dev/zero | tr '\0' 'x'; echo
  echo '{"name":"big","value":2,"trace_id":"t"}'; } >"$T/huge.ndjson"
peak=$(python3 -c '
import resource, subprocess, sys
r = subprocess.run([sys.argv[1], "ingest", "--db", sys.argv[2], sys.argv[3]], stdout=subprocess.DEVNULL)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)' "$BIN" "$T/huge-db" "$T/huge.ndjson")
rm -f "$T/huge.ndjson"
expect_eq "${peak% *}" 3 "a 200 MB line is refused, the others stored (exit 3)"
if [ "${peak#* }" -lt 100 ]; then ok; else bad "a 200 MB line held ${peak#* } MiB resident (limit 100)"; fi

# A mapped file that shrinks while it is read (SCOREDB_TEST_SHRINK truncates
# it to half once mapped) is a clear error with exit 1, not a SIGBUS death,
# and the store stays usable.
for i in $(seq 1 40000); do printf '{"id":"s%d","name":"shrink","value":%d,"trace_id":"t%d"}\n' "$i" "$((i % 5))" "$i"; done >"$T/shrink.ndjson"
SCOREDB_TEST_SHRINK=1 SCOREDB_INGEST_BATCH=1000 "$BIN" ingest --db "$T/shrink-db" "$T/shrink.ndjson" >"$T/shrink.out" 2>"$T/shrink.err"
expect_eq "$?" 1 "a file that shrinks while mapped exits 1"
expect_has "$(cat "$T/shrink.err")" "the input file shrank while it was being read" "a shrinking file is named as such"
expect_eq "$(cat "$T/shrink.out")" "" "no summary for a shrinking file"
out=$("$BIN" ingest --db "$T/shrink-db" "$T/shrink.ndjson"); rc=$?
expect_eq "$rc" 3 "the store takes the shrunk file afterwards (its cut last line refused)"
expect_has "$out" '"rejected":1,' "only the cut last line of the shrunk file is refused"
expect_has "$("$BIN" query --db "$T/shrink-db" '{"names":["shrink"],"stats":["count"]}')" '"count":' "the store answers after the shrink"

echo "cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
