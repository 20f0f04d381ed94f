#!/bin/sh
# The list routes' page times (issue 10): `scoredb serve` on 127.0.0.1
# (a port the kernel picks) over an existing store, then every URL below
# timed with curl, ROUNDS interleaved rounds (each round asks every URL
# once, so that the machine's load falls on all of them alike); prints a
# markdown table of min and median milliseconds. The native limit=1 list
# is the peer in the same run.
#   bench/lists.sh SCOREDB DB [ROUNDS]
set -eu
BIN=$1 DB=$2 ROUNDS=${3:-15}
LOG=$(mktemp /tmp/lists-bench-XXXXXX)
timeout 600 "$BIN" serve --db "$DB" --listen 127.0.0.1:0 --aggregation-delay 0 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$LOG" "$LOG.t"' EXIT INT TERM
port=
for i in $(seq 1 100); do
  port=$(sed -n 's/.*listening on http:[^ ]* (port \([0-9]*\)).*/\1/p' "$LOG")
  [ -n "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "lists.sh: the server did not start" >&2; cat "$LOG" >&2; exit 1; }
# One trace id of the store, for the trace filter.
TRACE=$(curl -s "http://127.0.0.1:$port/v1/scores?limit=1&cursor=500000" |
        sed -n 's/.*"trace_id":"\([^"]*\)".*/\1/p')
URLS="/v1/scores?limit=1
/v1/scores?limit=100
/v1/scores?limit=1&name=policy_compliance
/v1/scores?limit=1&trace_id=$TRACE
/api/public/v2/scores?limit=1
/api/public/v2/scores?limit=50&page=3
/api/public/v2/scores?limit=50&page=100
/api/public/v2/scores?limit=1&name=helpfulness
/api/public/v2/scores?limit=1&name=policy_compliance
/api/public/v2/scores?limit=1&environment=production&source=API
/api/public/v2/scores?limit=1&dataType=BOOLEAN
/api/public/v2/scores?limit=1&value=0.5&operator=%3E%3D
/api/public/v2/scores?limit=1&traceId=$TRACE
/api/public/v2/scores?limit=1&configId=none
/api/public/v2/scores?limit=1&sessionId=none
/api/public/v2/scores?limit=1&queueId=none
/api/public/v2/scores?limit=1&value=0.5&operator=%21%3D
/api/public/v2/scores?limit=1&fromTimestamp=2026-10-01T00:00:00Z&toTimestamp=2026-10-02T00:00:00Z
/api/public/scores?limit=1
/api/public/v3/scores?limit=1
/api/public/v3/scores?limit=100
/api/public/v3/scores?limit=1&name=policy_compliance&source=ANNOTATION"
: > "$LOG.t"
for r in $(seq 1 "$ROUNDS"); do
  echo "$URLS" | while read -r u; do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port$u")
    printf '%s\t%s\n' "$u" "$t" >> "$LOG.t"
  done
done
echo "| request | min ms | median ms |"
echo "|---|--:|--:|"
echo "$URLS" | while read -r u; do
  grep -F "$(printf '%s\t' "$u")" "$LOG.t" | cut -f2 | sort -g |
    awk -v u="$u" '{v[NR]=$1*1000} END {printf "| `%s` | %.2f | %.2f |\n", u, v[1], v[int((NR+1)/2)]}'
done
