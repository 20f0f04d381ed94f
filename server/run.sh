#!/usr/bin/env bash
# `make run`: start the query server on a local store, loading a generated
# sample (200,000 scores from bench/gen.c) when the store is empty.
# Usage: bash server/run.sh BIN DATA LISTEN DELAY
set -euo pipefail
BIN=${1:?scoredb binary}
DATA=${2:-data}
LISTEN=${3:-127.0.0.1:8080}
DELAY=${4:-10m}
ROWS=${SAMPLE_ROWS:-200000}

if [ ! -f "$DATA/data.mdb" ]; then
    gen_bin="$(dirname "$BIN")/gen"
    if [ ! -x "$gen_bin" ] || [ bench/gen.c -nt "$gen_bin" ]; then
        ${CC:-cc} -O2 -o "$gen_bin" bench/gen.c
    fi
    sample="$(mktemp /tmp/scoredb-sample.XXXXXX.ndjson)"
    trap 'rm -f "$sample"' EXIT
    echo "run: the store $DATA is empty; loading $ROWS sample scores (bench/gen.c)"
    "$gen_bin" -n "$ROWS" --ndjson "$sample"
    "$BIN" ingest --db "$DATA" "$sample" >/dev/null
    rm -f "$sample"
    trap - EXIT
fi

url="http://$LISTEN"
cat <<MSG
run: scoredb serves $DATA on $url (aggregation delay $DELAY; Ctrl-C stops)
try:
  curl -s $url/v1/query -d '{"name":"faithfulness","interval":"1w","stats":["count","avg"]}'
  curl -s $url/v1/names
  curl -s '$url/v1/scores?name=faithfulness&limit=2'
MSG
exec "$BIN" serve --db "$DATA" --listen "$LISTEN" --aggregation-delay "$DELAY"
