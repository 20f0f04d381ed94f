// DuckDB peer of scoredb's benchmark, through DuckDB's own Node API.
//
// Loads the generator's CSV into a DuckDB database file (timed: rows/s, then
// the file's bytes per score after a checkpoint), then runs every query of
// queries.json with threads=1 and threads=2: one warm-up run, then the median
// of RUNS warm runs. The last run's rows go into the output for report.mjs to
// cross-check against the other engines.
//
// Usage: node duckdb_bench.mjs --csv F --db F --queries F --runs N --out F
//          [--threads 1,2] [--reuse 1]   (reuse: keep a loaded --db, skip the load)
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['csv', 'db', 'queries', 'out']) {
  if (!args[k]) { console.error(`duckdb_bench: --${k} is required`); process.exit(2); }
}
const runs = Math.max(5, Number(args.runs || 7));
const spec = JSON.parse(readFileSync(args.queries, 'utf8'));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
// Counts come back as BigInt; every count here is far below 2^53.
const plain = (row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));

let reuse = false;
// A database older than the CSV holds an earlier generator's rows (or
// lacks its columns): load it again.
try { reuse = args.reuse === '1' && statSync(args.db).size > 0 && statSync(args.db).mtimeMs >= statSync(args.csv).mtimeMs; } catch { reuse = false; }
if (!reuse) {
  rmSync(args.db, { force: true });
  rmSync(args.db + '.wal', { force: true });
}
const inst = await DuckDBInstance.create(args.db);
const conn = await inst.connect();
const version = (await conn.runAndReadAll('SELECT version() AS v')).getRowObjects()[0].v;

const csv = args.csv.replace(/'/g, "''");
let t0 = performance.now();
// Tags arrive '|'-joined (gen.c) and become a VARCHAR[] column, which
// list_contains / list_has_all filter on; the two property keys are plain
// columns (DuckDB's best case: dictionary-compressed strings, zone maps),
// not a MAP or a JSON blob it would have to unpack per row.
if (!reuse) await conn.run(`CREATE TABLE scores AS SELECT * REPLACE (coalesce(string_split(tags, '|'), []::VARCHAR[]) AS tags)
  FROM read_csv('${csv}', header = true, columns = {
  'name': 'VARCHAR', 'value': 'DOUBLE', 'label': 'VARCHAR', 'data_type': 'VARCHAR', 'ts': 'BIGINT',
  'source': 'VARCHAR', 'environment': 'VARCHAR', 'model': 'VARCHAR', 'prompt_version': 'VARCHAR',
  'trace_id': 'VARCHAR', 'tags': 'VARCHAR', 'feature': 'VARCHAR', 'customer_tier': 'VARCHAR'})`);
if (!reuse) await conn.run('CHECKPOINT');
const loadMs = performance.now() - t0;
const rows = Number((await conn.runAndReadAll('SELECT count(*) AS n FROM scores')).getRowObjects()[0].n);
const fileBytes = statSync(args.db).size;
console.error(`duckdb ${version}: loaded ${rows} rows in ${(loadMs / 1000).toFixed(2)} s (${Math.round(rows / loadMs * 1000)} rows/s), ${(fileBytes / rows).toFixed(1)} bytes/score`);

const result = { engine: 'duckdb', version, rows, load_ms: loadMs, file_bytes: fileBytes, runs, threads: {} };
for (const threads of (args.threads || '1,2').split(',').map(Number)) {
  await conn.run(`SET threads = ${threads}`);
  const qs = {};
  for (const q of spec.queries) {
    let answer = (await conn.runAndReadAll(q.sql_duckdb)).getRowObjects().map(plain); // warm-up
    const times = [];
    for (let r = 0; r < runs; r++) {
      t0 = performance.now();
      const reader = await conn.runAndReadAll(q.sql_duckdb);
      answer = reader.getRowObjects();
      times.push(performance.now() - t0);
    }
    qs[q.id] = { ms: median(times), runs_ms: times, rows: answer.map(plain) };
    console.error(`duckdb threads=${threads} ${q.id}: ${median(times).toFixed(2)} ms`);
  }
  result.threads[threads] = qs;
}
conn.closeSync();
writeFileSync(args.out, JSON.stringify(result, null, 1) + '\n');
