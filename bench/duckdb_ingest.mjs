// DuckDB peer of scoredb's ingest benchmark: load the same NDJSON files
// that `scoredb ingest` reads (read_json, then CHECKPOINT so that the rows
// are in the database file), timed, and the file's bytes per score.
// DuckDB runs with its default threads (every core), as a user would.
//
// Usage: node duckdb_ingest.mjs --out F --db F NAME=FILE.ndjson...
import { DuckDBInstance } from '@duckdb/node-api';
import { writeFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

const args = { files: [] };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a.startsWith('--')) args[a.slice(2)] = process.argv[++i];
  else args.files.push(a.split('='));
}
if (!args.out || !args.db || !args.files.length) {
  console.error('usage: node duckdb_ingest.mjs --out F --db F NAME=FILE.ndjson...');
  process.exit(2);
}
const result = { engine: 'duckdb', runs: {} };
for (const [name, file] of args.files) {
  rmSync(args.db, { force: true });
  rmSync(args.db + '.wal', { force: true });
  const inst = await DuckDBInstance.create(args.db);
  const conn = await inst.connect();
  result.version = (await conn.runAndReadAll('SELECT version() AS v')).getRowObjects()[0].v;
  const f = file.replace(/'/g, "''");
  const load = loadavg()[0];
  const t0 = performance.now();
  await conn.run(`CREATE TABLE scores AS SELECT * FROM read_json('${f}', format = 'newline_delimited')`);
  await conn.run('CHECKPOINT');
  const ms = performance.now() - t0;
  const rows = Number((await conn.runAndReadAll('SELECT count(*) AS n FROM scores')).getRowObjects()[0].n);
  conn.closeSync();
  const bytes = statSync(args.db).size;
  result.runs[name] = { ms, rows, file_bytes: bytes, load: Number(load.toFixed(2)) };
  console.error(`duckdb ${name}: ${rows} rows in ${(ms / 1000).toFixed(2)} s ` +
                `(${Math.round(rows / ms * 1000)} rows/s), ${(bytes / rows).toFixed(1)} bytes/score`);
}
rmSync(args.db, { force: true });
rmSync(args.db + '.wal', { force: true });
writeFileSync(args.out, JSON.stringify(result, null, 1) + '\n');
