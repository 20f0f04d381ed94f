// The shape matrix: every filter kind x every group-by kind x every output,
// on the frequent and a typical name, as scoredb query objects and DuckDB SQL
// (the same spec format as queries.mjs, so bench_query and duckdb_bench.mjs
// run it unchanged). Issue 8 asks for this instead of seven chosen queries.
//
// Axes (the generator's data has no user ids, so that dimension is not in
// the matrix; tests/test_engine_diff.c covers it):
//   filters  time (7 days), value range, data type, source, model,
//            environment, prompt version, tag (the most frequent, on ~37%
//            of the traces), property (feature = search, 35%), and four
//            combined
//   group-by none, model, model x prompt version, name, source, property
//            (properties.customer_tier), daily series, model x environment
//            + daily series
//   outputs  stats, stddev, histogram with bounds, histogram without bounds,
//            percentiles, distinct traces; categories on the categorical names
// Tags are a VARCHAR[] column in DuckDB (list_contains) and the property
// keys plain columns (duckdb_bench.mjs loads them so), the peer's best case.
// Every SQL query also returns count(*) per group so that matrix_report.mjs
// can check that both engines counted the same rows.
//
// Usage: node matrix.mjs INFO.json > matrix.json
import { readFileSync } from 'node:fs';

const DAY = 86400000;

export function buildMatrix(info) {
  const byRank = (r) => info.names.find((n) => n.rank === r).name;
  const targets = [['frequent', byRank(1), byRank(2)], ['typical', byRank(10), byRank(9)]];
  const catTargets = [['frequent', byRank(7), byRank(15)], ['typical', byRank(15), byRank(7)]];
  const end = info.end_ms;
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const q = (s) => `'${s.replace(/'/g, "''")}'`;
  // gen --info lists tags by rank and property values by frequency.
  const tag = info.tags[0], feature = info.properties.feature[0];

  const filters = [
    ['time', { from: iso(end - 7 * DAY), to: iso(end) }, {}, `ts >= ${end - 7 * DAY} AND ts < ${end}`],
    ['value', {}, { value: { gte: 0.2, lt: 0.8 } }, 'value >= 0.2 AND value < 0.8'],
    ['type', {}, { data_type: ['NUMERIC', 'BOOLEAN'] }, "data_type IN ('NUMERIC', 'BOOLEAN')"],
    ['source', {}, { source: ['EVAL'] }, "source = 'EVAL'"],
    ['model', {}, { model: ['gpt-4o'] }, "model = 'gpt-4o'"],
    ['environment', {}, { environment: ['production'] }, "environment = 'production'"],
    ['prompt', {}, { prompt_version: ['v03', 'v07'] }, "prompt_version IN ('v03', 'v07')"],
    ['tag', {}, { tags: [tag] }, `list_contains(tags, ${q(tag)})`],
    ['property', {}, { properties: { feature: [feature] } }, `feature = ${q(feature)}`],
    ['combined', { from: iso(end - 30 * DAY), to: iso(end) },
      { model: ['gpt-4o', 'claude-3-haiku'], environment: ['production'], source: ['API', 'EVAL'] },
      `ts >= ${end - 30 * DAY} AND ts < ${end} AND model IN ('gpt-4o', 'claude-3-haiku') AND environment = 'production' AND source IN ('API', 'EVAL')`],
  ];
  // [label, group_by, interval, SQL key expressions, uses two names]
  const groups = [
    ['none', [], null, [], false],
    ['model', ['model'], null, ['model'], false],
    ['model_prompt', ['model', 'prompt_version'], null, ['model', 'prompt_version'], false],
    ['name', ['name'], null, ['name'], true],
    ['source', ['source'], null, ['source'], false],
    ['property', ['properties.customer_tier'], null, ['customer_tier'], false],
    ['series', [], '1d', [`ts - ts % ${DAY}`], false],
    ['model_env_series', ['model', 'environment'], '1d', ['model', 'environment', `ts - ts % ${DAY}`], false],
  ];
  const outputs = ['stats', 'stddev', 'hist', 'hist_free', 'pct', 'traces'];

  const out = [];
  const cell = (target, names, [fl, fTop, fWhere, fSql], [gl, gb, iv, keys, two], o) => {
    const nameList = two ? names : [names[0]];
    const body = { ...fTop };
    if (nameList.length === 1) body.name = nameList[0];
    else body.names = nameList;
    if (Object.keys(fWhere).length) body.where = fWhere;
    if (gb.length) body.group_by = gb;
    if (iv) body.interval = iv;
    const where = `name IN (${nameList.map(q).join(', ')}) AND ${fSql}`;
    const ks = keys.map((k, i) => `${k} AS k${i}`);
    const gsql = keys.length ? `GROUP BY ${keys.map((_, i) => `k${i}`).join(', ')}` : '';
    const sel = (aggs) => `SELECT ${[...ks, 'count(*) AS count', ...aggs].join(', ')} FROM scores WHERE ${where} ${gsql}`;
    let sql;
    switch (o) {
      case 'stats':
        body.stats = ['count', 'avg', 'min', 'max'];
        sql = sel(['avg(value) AS avg', 'min(value) AS min', 'max(value) AS max']);
        break;
      case 'stddev':
        body.stats = ['count', 'avg', 'stddev'];
        sql = sel(['avg(value) AS avg', 'stddev_samp(value) AS stddev']);
        break;
      case 'traces':
        body.stats = ['count', 'traces'];
        sql = sel(['count(DISTINCT trace_id) AS traces']);
        break;
      case 'pct':
        body.stats = ['count'];
        body.percentiles = [50, 90, 99];
        sql = sel(['quantile_cont(value, [0.5, 0.9, 0.99]) AS pct']);
        break;
      case 'cats':
        body.stats = ['count'];
        sql = `SELECT ${[...ks, 'label', 'count(*) AS count'].join(', ')} FROM scores WHERE ${where} GROUP BY ${[...keys.map((_, i) => `k${i}`), 'label'].join(', ')}`;
        break;
      case 'hist': {
        body.stats = ['count'];
        body.histogram = { bins: 20, min: 0, max: 1 };
        const b = 'CASE WHEN value < 0 THEN -1 WHEN value > 1 THEN 20 ELSE least(CAST(floor((value - 0.0) / 0.05) AS BIGINT), 19) END';
        sql = `SELECT ${[...ks, `${b} AS bin`, 'count(*) AS count'].join(', ')} FROM scores WHERE ${where} GROUP BY ${[...keys.map((_, i) => `k${i}`), 'bin'].join(', ')}`;
        break;
      }
      case 'hist_free': {
        // Each group's own min and max, then the bins (a window over the group).
        body.stats = ['count'];
        body.histogram = { bins: 20 };
        const part = keys.length ? `PARTITION BY ${keys.join(', ')}` : '';
        sql = `WITH r AS (SELECT ${[...ks, 'value', `min(value) OVER (${part}) AS lo`, `max(value) OVER (${part}) AS hi`].join(', ')} FROM scores WHERE ${where})
          SELECT ${[...keys.map((_, i) => `k${i}`), "CASE WHEN hi = lo THEN 19 ELSE least(CAST(floor((value - lo) / ((hi - lo) / 20)) AS BIGINT), 19) END AS bin", 'count(*) AS count'].join(', ')}
          FROM r GROUP BY ${[...keys.map((_, i) => `k${i}`), 'bin'].join(', ')}`;
        break;
      }
    }
    out.push({ id: `${fl}.${gl}.${o}.${target}`, filter: fl, group: gl, output: o, target,
      name: nameList.join('+'), scoredb: JSON.stringify(body), sql_duckdb: sql, sql_sqlite: sql });
  };
  for (const f of filters)
    for (const g of groups) {
      for (const o of outputs)
        for (const [target, n1, n2] of targets) cell(target, [n1, n2], f, g, o);
      if (f[0] !== 'value') // a value range selects no categorical score
        for (const [target, n1, n2] of catTargets) cell(target, [n1, n2], f, g, 'cats');
    }
  return { end_ms: end, queries: out };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const info = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  process.stdout.write(JSON.stringify(buildMatrix(info), null, 1) + '\n');
}
