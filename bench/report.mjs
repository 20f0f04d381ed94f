// report — one table out of one benchmark run.
//
// Reads the raw results that the Makefile's steps left in the run directory
// (duckdb.json, sqlite.json, scoredb-{auto,scalar,avx2,avx512}.json,
// scoredb-cli.json, ingest.json, http.json, kernels.txt), cross-checks every engine's
// answers against DuckDB (threads=2) — counts exactly, averages, minima and
// maxima to 1e-9 relative — and writes the markdown report to stdout and to
// --out. A mismatch is printed loudly on stderr and listed in the report; a
// step that failed shows as "—" with its error, never as a number.
//
// Usage: node report.mjs --dir RUN_DIR --queries F --out results/latest.md
import { readFileSync, existsSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const dir = args.dir;
const spec = JSON.parse(readFileSync(args.queries, 'utf8'));
const load = (f) => {
  const p = path.join(dir, f);
  if (!existsSync(p)) return null;
  try { return JSON.parse(readFileSync(p, 'utf8')); } catch (e) { return { error: `${f}: ${e.message}` }; }
};

const duck = load('duckdb.json');
const sqlite = load('sqlite.json');
const ingest = load('ingest.json');
if (ingest && existsSync(path.join(dir, 'data_mdb_bytes'))) {
  ingest.data_mdb_bytes = Number(readFileSync(path.join(dir, 'data_mdb_bytes'), 'utf8').trim()) || undefined;
}
// `scoredb ingest` prints one JSON summary line: accepted, rejected, errors.
if (ingest && existsSync(path.join(dir, 'ingest.out'))) {
  const first = readFileSync(path.join(dir, 'ingest.out'), 'utf8').split('\n')[0];
  try {
    const s = JSON.parse(first);
    Object.assign(ingest, { accepted: s.accepted, rejected: s.rejected });
    if (s.rejected) ingest.error = `${s.rejected} rejected, e.g. ${JSON.stringify((s.errors || []).slice(0, 2))}`;
  } catch { if (ingest.exit) ingest.error = `exit ${ingest.exit}: ${first.slice(0, 200)}`; }
}
const tables = ['scalar', 'avx2', 'avx512'];
const sdb = { auto: load('scoredb-auto.json'), cli: load('scoredb-cli.json') };
for (const t of tables) sdb[t] = load(`scoredb-${t}.json`);
const autoName = sdb.auto?.kernels;

// ------------------------------------------------------------ normalising
// Every answer becomes a flat map "key/field" -> number. Empty series days,
// empty histogram bins and null statistics are dropped on both sides.
const INT_FIELDS = new Set(['count', 'traces']);
const STAT_FIELDS = ['count', 'avg', 'min', 'max', 'traces'];

function normSql(kind, rows) {
  const out = {};
  for (const r of rows) {
    const key = r.k === null || r.k === undefined ? '' : String(r.k);
    if (kind === 'hist') { if (r.count) out[`bin${key}/count`] = r.count; continue; }
    if (r.count === 0) continue;
    for (const f of STAT_FIELDS) if (r[f] !== undefined && r[f] !== null) out[`${key}/${f}`] = r[f];
  }
  return out;
}

function normScoredb(kind, answer) {
  const out = {};
  if (!answer || !Array.isArray(answer.groups)) throw new Error(`not an answer: ${JSON.stringify(answer).slice(0, 200)}`);
  for (const g of answer.groups) {
    const key = g.key ? Object.values(g.key).join('|') : '';
    if (kind === 'series') {
      for (const s of g.series || []) {
        if (!s.count) continue;
        const t = String(Date.parse(s.t));
        out[`${t}/count`] = s.count;
        if (s.avg !== null && s.avg !== undefined) out[`${t}/avg`] = s.avg;
      }
    } else if (kind === 'hist') {
      const h = g.histogram || { counts: [] };
      h.counts.forEach((c, i) => { if (c) out[`bin${i}/count`] = c; });
      if (h.underflow) out['bin-1/count'] = h.underflow;
      if (h.overflow) out[`bin${h.counts.length}/count`] = h.overflow;
    } else {
      if (!g.count) continue;
      for (const f of STAT_FIELDS) if (g[f] !== undefined && g[f] !== null) out[`${key}/${f}`] = g[f];
    }
  }
  return out;
}

function compare(ref, got) {
  const bad = [];
  for (const k of new Set([...Object.keys(ref), ...Object.keys(got)])) {
    const a = ref[k], b = got[k];
    const field = k.slice(k.lastIndexOf('/') + 1);
    if (a === undefined || b === undefined) { bad.push(`${k}: ${a} vs ${b}`); continue; }
    if (INT_FIELDS.has(field)) { if (a !== b) bad.push(`${k}: ${a} vs ${b}`); continue; }
    if (Math.abs(a - b) > 1e-9 * Math.max(Math.abs(a), Math.abs(b), 1e-300)) bad.push(`${k}: ${a} vs ${b}`);
  }
  return bad;
}

const mismatches = [];
function check(engine, q, norm) {
  const ref = duck?.threads?.[2]?.[q.id];
  if (!ref || !norm) return;
  let got;
  try { got = norm(); } catch (e) { mismatches.push(`${engine} ${q.id}: ${e.message}`); return; }
  const bad = compare(normSql(q.kind, ref.rows), got);
  if (bad.length) mismatches.push(`${engine} ${q.id}: ${bad.length} differences, e.g. ${bad.slice(0, 3).join('; ')}`);
}

for (const q of spec.queries) {
  const dq = duck?.threads?.[1]?.[q.id];
  if (dq) check('duckdb(threads=1)', q, () => normSql(q.kind, dq.rows));
  const sq = sqlite?.queries?.[q.id];
  if (sq) check('sqlite', q, () => normSql(q.kind, sq.rows));
  for (const [label, r] of Object.entries(sdb)) {
    const e = r?.queries?.[q.id];
    if (e?.answer !== undefined) check(`scoredb(${label === 'auto' ? autoName : label})`, q, () => normScoredb(q.kind, e.answer));
  }
}

// ----------------------------------------------------------------- tables
const fmt = (ms) => ms === undefined || ms === null ? '—' : ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0);
const rowsOf = duck?.rows ?? sqlite?.rows ?? ingest?.rows;
const errors = [];
const cell = (label, r, id) => {
  if (!r) return '—';
  if (r.error) { errors.push(`${label}: ${r.error}`); return '—'; }
  const e = r.queries?.[id];
  if (!e) return '—';
  if (e.error) { errors.push(`${label} ${id}: ${e.error}`); return 'error'; }
  return fmt(e.ms);
};
// A forced table the CPU lacks falls back to another: show it as n/a.
const tableCell = (t, id) => sdb[t] && sdb[t].kernels && sdb[t].kernels !== t ? 'n/a' : cell(`scoredb(${t})`, sdb[t], id);

const lines = [];
const cpu = (os.cpus()[0]?.model || 'unknown CPU').replace(/\s+/g, ' ');
lines.push(`# scoredb benchmark — ${rowsOf ? rowsOf.toLocaleString('en-US') : '?'} scores`);
lines.push('');
lines.push(`${new Date().toISOString().slice(0, 10)}, ${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB. ` +
  `Data: \`bench/gen\` (50 names, Zipf; 90 days; 8 models, 20 prompt versions). ` +
  `Frequent name = \`${spec.frequent}\` (rank 1), typical = \`${spec.typical}\` (rank 10). ` +
  (existsSync(path.join(dir, 'loadavg')) ? `Load average before the run: ${readFileSync(path.join(dir, 'loadavg'), 'utf8').split(' ').slice(0, 3).join(' ')}. ` : '') +
  `Median of ${sdb.auto?.runs ?? duck?.runs ?? '?'} warm runs after one warm-up; milliseconds.`);
lines.push('');
lines.push(`## Queries (ms)`);
lines.push('');
lines.push(`| query | name | scoredb${autoName ? ` (${autoName})` : ''} | scalar | avx2 | avx512 | scoredb CLI | DuckDB t=1 | DuckDB t=2 | SQLite | DuckDB t=2 / scoredb |`);
lines.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const q of spec.queries) {
  const a = sdb.auto?.queries?.[q.id]?.ms, d = duck?.threads?.[2]?.[q.id]?.ms;
  const ratio = a && d ? `${(d / a).toFixed(d / a >= 100 ? 0 : 1)}×` : '—';
  lines.push(`| ${q.letter}. ${q.label} | ${q.target} | ${cell('scoredb', sdb.auto, q.id)} | ` +
    tables.map((t) => tableCell(t, q.id)).join(' | ') + ` | ${cell('scoredb-cli', sdb.cli, q.id)} | ` +
    `${fmt(duck?.threads?.[1]?.[q.id]?.ms)} | ${fmt(d)} | ${fmt(sqlite?.queries?.[q.id]?.ms)} | ${ratio} |`);
}
lines.push('');
lines.push('scoredb: in-process `sdb_query_json` through `bench/bench_query.c` (kernel table forced with `SDB_KERNELS`); ' +
  'scoredb CLI: the whole `scoredb query --db DIR JSON` command, spawn to exit. ' +
  'DuckDB: `@duckdb/node-api`, persistent file, `SET threads`. SQLite: libsqlite3, index on (name, ts), ANALYZE, mmap.');
lines.push('');

// Ingest and size.
lines.push('## Ingest and size');
lines.push('');
lines.push('| engine | what is timed | seconds | rows/s | bytes/score |');
lines.push('|---|---|--:|--:|--:|');
const rate = (n, ms) => n && ms ? Math.round(n / ms * 1000).toLocaleString('en-US') : '—';
if (ingest) {
  const fold = sdb.auto?.fold_ms ?? 0;
  const n = ingest.accepted ?? rowsOf;
  const bytes = ingest.data_mdb_bytes;
  const what = `\`scoredb ingest\` of the NDJSON${fold >= 10 ? ` + fold (${(fold / 1000).toFixed(2)} s)` : ''}` +
    (ingest.exit ? ` — exit ${ingest.exit}, ${ingest.accepted ?? '?'} accepted, ${ingest.rejected ?? '?'} rejected` : '');
  lines.push(`| scoredb | ${what} | ${((ingest.ms + fold) / 1000).toFixed(2)} | ${rate(n, ingest.ms + fold)} | ${bytes && n ? (bytes / n).toFixed(1) : '—'} |`);
  if (ingest.error) errors.push(`scoredb ingest: ${ingest.error}`);
}
if (duck && !duck.error) lines.push(`| DuckDB ${duck.version} | \`CREATE TABLE AS read_csv\` + CHECKPOINT | ${(duck.load_ms / 1000).toFixed(2)} | ${rate(duck.rows, duck.load_ms)} | ${(duck.file_bytes / duck.rows).toFixed(1)} |`);
if (sqlite && !sqlite.error) lines.push(`| SQLite ${sqlite.version} | prepared INSERTs in one transaction + index + ANALYZE (index ${(sqlite.index_ms / 1000).toFixed(2)} s) | ${((sqlite.load_ms + sqlite.index_ms) / 1000).toFixed(2)} | ${rate(sqlite.rows, sqlite.load_ms + sqlite.index_ms)} | ${(sqlite.file_bytes / sqlite.rows).toFixed(1)} |`);
lines.push('');
lines.push('scoredb bytes/score is the store\'s `data.mdb` over the scores accepted (the row store with every field, plus the column segments); ' +
  'DuckDB and SQLite hold only the ten CSV columns.');
lines.push('');
// Where scoredb's bytes are (`scoredb stats`), against the segment target.
const stats = load('stats.json');
if (stats && ingest) {
  const n = ingest.accepted ?? rowsOf;
  const per = (b) => n ? (b / n).toFixed(1) : '—';
  const num = (x) => Number(x).toLocaleString('en-US');
  lines.push('| scoredb database | entries | bytes | bytes/score |');
  lines.push('|---|--:|--:|--:|');
  for (const [name, d] of Object.entries(stats.dbs))
    if (d.bytes) lines.push(`| ${name} | ${num(d.entries)} | ${num(d.bytes)} | ${per(d.bytes)} |`);
  lines.push(`| all pages in use (with LMDB's free list) | | ${num(stats.bytes_used)} | ${per(stats.bytes_used)} |`);
  lines.push('');
  const seg = stats.dbs.segments?.bytes;
  if (seg && n) lines.push(`Column segments: ${per(seg)} bytes/score on disk (target ≤ 16: ${seg / n <= 16 ? 'met' : '**missed**'}).`);
  lines.push('');
}
// Ingest with client ids (run-ingest-ids), beside DuckDB's NDJSON load of
// the same files, and the rate at the end of a long store.
const ids = load('ingest_ids.json');
const duckIds = load('duckdb_ingest.json');
if (ids && ids.runs) {
  const n = ids.rows, mb = (b) => (b / n).toFixed(1);
  lines.push(`## Ingest with client ids (${n.toLocaleString('en-US')} scores, same scores, only the ids differ)`);
  lines.push('');
  lines.push('| ids | scoredb s | scoredb scores/s | CPU s | load | peak RSS MiB | store B/score | DuckDB s | DuckDB scores/s | DuckDB B/score | speed vs DuckDB | size vs DuckDB |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const m of ['none', 'uuid4', 'uuid7']) {
    const r = ids.runs[m];
    if (!r) continue;
    const d = duckIds?.runs?.[m];
    if (r.exit) errors.push(`scoredb ingest (${m} ids): exit ${r.exit}: ${r.out}`);
    lines.push(`| ${m} | ${(r.ms / 1000).toFixed(2)} | ${rate(n, r.ms)} | ${r.cpu_s ?? '—'} | ${r.load ?? '—'} | ` +
      `${Math.round(r.rss_kib / 1024)} | ${mb(r.store_bytes)} | ` +
      `${d ? (d.ms / 1000).toFixed(2) : '—'} | ${d ? rate(d.rows, d.ms) : '—'} | ${d ? (d.file_bytes / d.rows).toFixed(1) : '—'} | ` +
      `${d ? (d.ms / r.ms).toFixed(2) + '×' : '—'} | ${d ? (r.store_bytes / d.file_bytes).toFixed(2) + '×' : '—'} |`);
  }
  lines.push('');
  const f = ids.runs.long_first, l = ids.runs.long_last;
  let flat;
  if (f && l) {
    const rf = ids.slice / f.ms * 1000, rl = ids.slice / l.ms * 1000;
    flat = rl / rf;
    lines.push(`UUIDv4 ids, ${ids.slice.toLocaleString('en-US')} scores into an empty store: ${(f.ms / 1000).toFixed(2)} s ` +
      `(${Math.round(rf).toLocaleString('en-US')}/s); the last ${ids.slice.toLocaleString('en-US')} of a ` +
      `${ids.long.toLocaleString('en-US')}-score store: ${(l.ms / 1000).toFixed(2)} s (${Math.round(rl).toLocaleString('en-US')}/s, ` +
      `${(rl / rf * 100).toFixed(0)}% of the first; peak RSS ${Math.round(l.rss_kib / 1024)} MiB; the store ` +
      `${(l.store_bytes / ids.long).toFixed(1)} B/score)` +
      (f.cpu_s && l.cpu_s ? `; CPU s ${f.cpu_s} first, ${l.cpu_s} last (load ${f.load}, ${l.load}).` : '.'));
    lines.push('');
  }
  // Issue 9's targets for the UUIDv4 file, met or the distance stated.
  const u = ids.runs.uuid4, du = duckIds?.runs?.uuid4;
  if (u) {
    const sps = n / u.ms * 1000, t = [];
    t.push(`≥ 1M scores/s durable: ${sps >= 1e6 ? 'met' : `**missed** (${rate(n, u.ms)}/s, ${(1e6 / sps).toFixed(2)}× short)`}`);
    if (du) t.push(`≥ 3× DuckDB's NDJSON load: ${du.ms / u.ms >= 3 ? 'met' : '**missed**'} (${(du.ms / u.ms).toFixed(2)}×)`);
    const fl = ids.runs.long_first, la = ids.runs.long_last;
    const flatCpu = fl?.cpu_s && la?.cpu_s ? fl.cpu_s / la.cpu_s : undefined;
    if (flat !== undefined) t.push(`the last million of the long store within 20% of the first: ${flat >= 0.8 ? 'met' : '**missed**'} ` +
      `(${(flat * 100).toFixed(0)}% of the first's rate by wall` +
      (flatCpu !== undefined ? `, ${(flatCpu * 100).toFixed(0)}% by CPU seconds` : '') + ')');
    if (du) t.push(`store ≤ 1.5× DuckDB's file: ${u.store_bytes / du.file_bytes <= 1.5 ? 'met' : '**missed**'} (${(u.store_bytes / du.file_bytes).toFixed(2)}×)`);
    const peak = Math.max(...Object.values(ids.runs).map((r) => r.rss_kib || 0));
    t.push(`peak RSS < 1 GiB: ${peak < 1 << 20 ? 'met' : '**missed**'} (${Math.round(peak / 1024)} MiB, the largest of these runs)`);
    lines.push(`Targets (issue 9, UUIDv4 ids${n === 10000000 ? '' : `; set for 10,000,000 scores, here ${n.toLocaleString('en-US')}`}): ${t.join('; ')}. Walls and DuckDB's every-core load move with the machine's load (the load column): read them beside it.`);
    lines.push('');
  }
  const dl = ['none', 'uuid4', 'uuid7'].map((m) => duckIds?.runs?.[m]?.load).filter((x) => x !== undefined);
  lines.push('DuckDB: `CREATE TABLE AS SELECT * FROM read_json(...)` + CHECKPOINT on every core' +
    (dl.length ? ` (load average ${dl.join(', ')} as each began)` : '') + '; scoredb: `scoredb ingest`, ' +
    'durable (each 20,000-row commit synced), store = every file of its directory; CPU s = user + sys of the whole process.');
  lines.push('');
}
const rep = load('replace.json');
if (rep) {
  lines.push(`Replacement by id (\`bench_replace\`): ${rep.replaced.toLocaleString('en-US')} stored ids re-sent in one batch into a folded ` +
    `${rep.stored.toLocaleString('en-US')}-score day: ${rep.replace_ms.toFixed(1)} ms (target < 50: ${rep.replace_ms < 50 ? 'met' : '**missed**'}); ` +
    `${rep.deleted.toLocaleString('en-US')} deletes, one durable write each: median ${rep.delete_ms_median.toFixed(2)} ms, max ${rep.delete_ms_max.toFixed(1)} ms; ` +
    `the next fold (purging tombstones and row blocks) ${rep.fold_after_ms.toFixed(0)} ms; aggregates exact: ${rep.exact}.`);
  lines.push('');
}
const get = load('get.json');
if (get) {
  lines.push(`GET by id in process (\`bench_get\`, the UUIDv4 store): ${get.gets.toLocaleString('en-US')} random ids of ` +
    `${get.of_ids.toLocaleString('en-US')}, median ${get.median_us.toFixed(1)} us, p90 ${get.p90_us.toFixed(1)} us, ` +
    `p99 ${get.p99_us.toFixed(1)} us (target < 100 us: ${get.median_us < 100 ? 'met' : '**missed**'} at the median); all found: ${get.ok}.`);
  lines.push('');
}
if (ingest && rowsOf && ingest.accepted !== undefined && ingest.accepted !== rowsOf)
  errors.push(`scoredb ingest accepted ${ingest.accepted} of ${rowsOf} rows`);

// HTTP: `scoredb serve` under bench/http_load (Makefile run-http).
const http = load('http.json');
const HTTP_QUERY_RPS = 20000, HTTP_QUERY_P99_MS = 10, HTTP_QUERY_CONNS = 64, HTTP_INGEST_SPS = 500000;
if (http) {
  const num = (x, d = 0) => x === undefined || x === null ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: d });
  const verdict = (ok) => ok ? 'met' : '**missed**';
  const res = Array.isArray(http.results) ? http.results : [];
  if (http.error) errors.push(`http: ${http.error}`);
  for (const r of res) if (r.error) errors.push(`${r.test}: ${r.error}`);
  const panel = spec.queries.find((q) => q.id === http.panel);
  const panelLabel = panel ? `${panel.letter}. ${panel.label}, \`${panel.name}\`` : `\`${http.panel}\``;
  lines.push('## HTTP (`scoredb serve`)');
  lines.push('');
  lines.push(`| load | connections | requests/s | p50 ms | p99 ms | errors | target |`);
  lines.push('|---|--:|--:|--:|--:|--:|---|');
  const qs = res.filter((r) => r.test === 'http_query' && !r.error);
  for (const r of qs) {
    const target = r.conns === HTTP_QUERY_CONNS
      ? `≥ ${num(HTTP_QUERY_RPS)} req/s with p99 < ${HTTP_QUERY_P99_MS} ms: ` +
        verdict(r.rps >= HTTP_QUERY_RPS && r.p99_ms < HTTP_QUERY_P99_MS && !r.errors)
      : '';
    lines.push(`| cached panel query (${panelLabel}) | ${r.conns} | ${num(r.rps)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${num(r.errors)} | ${target} |`);
    if (r.errors) errors.push(`http query at ${r.conns} connections: ${r.errors} failed requests`);
  }
  if (!qs.length) lines.push(`| cached panel query (${panelLabel}) | — | — | — | — | — | ≥ ${num(HTTP_QUERY_RPS)} req/s at ${HTTP_QUERY_CONNS} connections, p99 < ${HTTP_QUERY_P99_MS} ms: not measured |`);
  lines.push('');
  lines.push(`| load | connections | scores per request | scores | seconds | scores/s | group commits | target |`);
  lines.push('|---|--:|--:|--:|--:|--:|--:|---|');
  const ing = res.find((r) => r.test === 'http_ingest' && !r.error);
  const commits = res.find((r) => r.test === 'http_ingest_commits')?.commits;
  if (ing) {
    lines.push(`| batched NDJSON ingest (\`POST /v1/scores\`), durable, fresh store | ${ing.conns} | ${num(ing.batch)} | ${num(ing.scores)} | ${ing.seconds.toFixed(2)} | ` +
      `${num(ing.scores_per_s)} | ${num(commits)} | ≥ ${num(HTTP_INGEST_SPS)} scores/s: ${verdict(ing.scores_per_s >= HTTP_INGEST_SPS && !ing.errors)} |`);
    if (ing.errors) errors.push(`http ingest: ${ing.errors} failed requests`);
  } else {
    lines.push(`| batched NDJSON ingest (\`POST /v1/scores\`), durable, fresh store | — | — | — | — | — | — | ≥ ${num(HTTP_INGEST_SPS)} scores/s: not measured |`);
  }
  lines.push('');
  const cache = res.find((r) => r.test === 'http_query_cache');
  lines.push(`Server: \`scoredb serve --listen 127.0.0.1:0 --aggregation-delay 10m\`, default threads (${http.cores ?? '?'} cores, shared with the load client). ` +
    `Query: \`POST /v1/query\` with \`${JSON.stringify(http.query)}\` over keep-alive connections, closed loop (each connection sends its next request when the answer is in), ` +
    `latency from request sent to response read` +
    (cache ? `; ${num(cache.hits)} answers came from the cache, ${num(cache.misses)} were computed` : '') + '. ' +
    'Ingest: NDJSON bodies of new scores; a score counts once its request is acknowledged, which is after the group commit\'s fsync.');
  lines.push('');
}

// Cross-check.
lines.push('## Cross-check');
lines.push('');
if (!duck?.threads) lines.push('No DuckDB reference answers: nothing was cross-checked.');
else if (!mismatches.length) lines.push('Every engine\'s answers agree with DuckDB (threads=2): counts exactly, averages, minima and maxima to 1e-9 relative.');
else {
  lines.push(`**${mismatches.length} MISMATCHES** against DuckDB (threads=2):`);
  lines.push('');
  for (const m of mismatches) lines.push(`- ${m}`);
}
if (errors.length) {
  lines.push('');
  lines.push('Errors:');
  lines.push('');
  for (const e of [...new Set(errors)]) lines.push(`- ${e.replace(/\s+/g, ' ').slice(0, 300)}`);
}
lines.push('');

// Kernels.
const kpath = path.join(dir, 'kernels.txt');
if (existsSync(kpath) && statSync(kpath).size > 0) {
  lines.push('## Kernels (`bench/bench_kernels`)');
  lines.push('');
  lines.push(readFileSync(kpath, 'utf8').trimEnd());
  lines.push('');
}

const md = lines.join('\n') + '\n';
process.stdout.write(md);
if (args.out) writeFileSync(args.out, md);
if (mismatches.length) {
  console.error('\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
  console.error(`!!! CROSS-CHECK FAILED: ${mismatches.length} query answers differ between engines`);
  for (const m of mismatches) console.error(`!!! ${m}`);
  console.error('!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n');
}
