// The seven dashboard queries of the benchmark, written once for every engine.
//
// Each query exists as a scoredb query object (API.md) and as SQL for DuckDB
// and SQLite. Every SQL query returns the same column shape — k (the group key,
// the day in epoch ms, or the histogram bin; NULL without grouping), then any
// of count, avg, min, max, traces — so that report.mjs can compare the answers
// of all engines after one normalisation. The names and the time range come
// from `gen --info`, so the generator stays the single source of truth.
//
// Usage: node queries.mjs INFO.json > queries.json
import { readFileSync } from 'node:fs';

const DAY = 86400000;

export function buildQueries(info) {
  const frequent = info.names.find((n) => n.rank === 1).name;
  const typical = info.names.find((n) => n.rank === 10).name;
  const end = info.end_ms, start = info.start_ms;
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const q = (s) => `'${s.replace(/'/g, "''")}'`;
  const out = [];

  const add = (letter, label, target, name, kind, scoredb, sql) => {
    const id = `${letter}_${target}`;
    out.push({
      id, letter, label, target, name, kind,
      scoredb: JSON.stringify(scoredb),
      sql_duckdb: typeof sql === 'function' ? sql('duckdb') : sql,
      sql_sqlite: typeof sql === 'function' ? sql('sqlite') : sql,
    });
  };

  for (const [target, name] of [['frequent', frequent], ['typical', typical]]) {
    const w = `name = ${q(name)}`;
    add('a', 'full-range stats', target, name, 'stats',
      { name, stats: ['count', 'avg', 'min', 'max'] },
      `SELECT NULL AS k, count(*) AS count, avg(value) AS avg, min(value) AS min, max(value) AS max
         FROM scores WHERE ${w}`);
    add('b', '7-day window stats', target, name, 'stats',
      { name, from: iso(end - 7 * DAY), to: iso(end), stats: ['count', 'avg', 'min', 'max'] },
      `SELECT NULL AS k, count(*) AS count, avg(value) AS avg, min(value) AS min, max(value) AS max
         FROM scores WHERE ${w} AND ts >= ${end - 7 * DAY} AND ts < ${end}`);
    add('c', '90-day daily series', target, name, 'series',
      { name, from: iso(start), to: iso(end), interval: '1d', stats: ['count', 'avg'] },
      `SELECT ts - ts % ${DAY} AS k, count(*) AS count, avg(value) AS avg
         FROM scores WHERE ${w} AND ts >= ${start} AND ts < ${end}
         GROUP BY 1 ORDER BY 1`);
    // Bin as the kernels do: floor((v - lo) / width) with width = (hi - lo) / bins
    // = 0.05, the value hi in the last bin; -1 and 20 stand for under/overflow.
    add('d', '30-day histogram (20 bins)', target, name, 'hist',
      { name, from: iso(end - 30 * DAY), to: iso(end), histogram: { bins: 20, min: 0, max: 1 }, stats: ['count'] },
      (d) => `SELECT CASE WHEN value < 0 THEN -1 WHEN value > 1 THEN 20
                ELSE ${d === 'duckdb' ? 'least' : 'min'}(CAST(floor((value - 0.0) / 0.05) AS BIGINT), 19) END AS k,
                count(*) AS count
         FROM scores WHERE ${w} AND ts >= ${end - 30 * DAY} AND ts < ${end} AND value IS NOT NULL
         GROUP BY 1 ORDER BY 1`);
    add('e', 'avg by prompt version', target, name, 'group',
      { name, group_by: ['prompt_version'], stats: ['count', 'avg'] },
      `SELECT prompt_version AS k, count(*) AS count, avg(value) AS avg
         FROM scores WHERE ${w} GROUP BY 1 ORDER BY 1`);
    add('f', 'value range + distinct traces', target, name, 'stats',
      { name, where: { value: { gte: 0.2, lt: 0.4 } }, stats: ['count', 'traces'] },
      `SELECT NULL AS k, count(*) AS count, count(DISTINCT trace_id) AS traces
         FROM scores WHERE ${w} AND value >= 0.2 AND value < 0.4`);
  }
  add('g', 'avg by name (all names)', 'all', null, 'group',
    { group_by: ['name'], stats: ['count', 'avg'] },
    `SELECT name AS k, count(*) AS count, avg(value) AS avg FROM scores GROUP BY 1 ORDER BY 1`);

  // Table order: by query letter, the frequent name before the typical one.
  out.sort((x, y) => x.letter.localeCompare(y.letter));
  return { frequent, typical, start_ms: start, end_ms: end, queries: out };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const info = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  process.stdout.write(JSON.stringify(buildQueries(info), null, 1) + '\n');
}
