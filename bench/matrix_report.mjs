// The shape matrix's table: every cell's scoredb time (in process), DuckDB's
// (threads=2), their ratio, and whether both counted the same rows; then the
// worst ratio beside the median, the cells under the 20x target and the
// typical-name cells over 2 ms (issue 8's targets). With --mode http the
// scoredb side is matrix_http.mjs's run (over HTTP, answer cache off) and
// the target is 10x.
//
// With --latest F (results/latest.md) the run's head (worst cell beside the
// median, a link to the table) replaces that file's section for this mode,
// between <!-- matrix:MODE --> and <!-- /matrix:MODE -->, or is appended,
// so that `make bench` leaves latest.md pointing at the matrix it just ran.
//
// --scoredb takes one run or several, comma-separated (F1,F2,F3): each
// cell's scoredb time is then the median of the runs' medians (the machine
// is shared, and one run can catch a writeback or a neighbour), and the
// answer is the first run's.
//
// Usage: node matrix_report.mjs --scoredb F[,F...] --duckdb F --rows N [--out F.md] [--mode http]
//        [--load "1.0 0.9 0.8"] [--latest results/latest.md]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const runs = args.scoredb.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')));
const sdb = runs[0];
if (runs.length > 1) {
  for (const [id, s] of Object.entries(sdb.queries)) {
    const ms = runs.map((r) => r.queries[id]).filter((q) => q && !q.error).map((q) => q.ms)
      .sort((a, b) => a - b);
    if (ms.length) s.ms = ms[ms.length >> 1];
  }
}
const duck = JSON.parse(readFileSync(args.duckdb, 'utf8'));
const dq = duck.threads['2'] || duck.threads[2];

// Rows counted by each engine: scoredb's groups' counts, DuckDB's count column.
const sdbCount = (a) => (a && a.groups ? a.groups.reduce((s, g) => s + (g.count || 0), 0) : NaN);
const duckCount = (rows) => rows.reduce((s, r) => s + Number(r.count || 0), 0);

const cells = [];
for (const [id, s] of Object.entries(sdb.queries)) {
  const d = dq[id];
  if (!d || s.error) { cells.push({ id, error: s.error || 'no duckdb result' }); continue; }
  const ratio = d.ms / s.ms;
  cells.push({ id, sdb: s.ms, duck: d.ms, ratio, same: sdbCount(s.answer) === duckCount(d.rows),
    n: sdbCount(s.answer), typical: id.endsWith('.typical') });
}
const http = args.mode === 'http';
const target = http ? 10 : 20;
const ok = cells.filter((c) => !c.error);
const ratios = ok.map((c) => c.ratio).sort((a, b) => a - b);
const median = ratios.length ? ratios[ratios.length >> 1] : NaN;
const worst = ok.reduce((w, c) => (!w || c.ratio < w.ratio ? c : w), null);
const under = ok.filter((c) => c.ratio < target);
const slowTypical = ok.filter((c) => c.typical && c.sdb > 2);
const mismatch = ok.filter((c) => !c.same);

const lines = [];
const where = http ? 'over HTTP (`serve --cache-bytes 0`, one keep-alive connection)' : 'in process';
lines.push(`# Shape matrix: ${args.rows || '?'} scores, scoredb ${where} vs DuckDB threads=2 in process`, '');
lines.push(`kernels: ${sdb.kernels}; duckdb ${duck.version}; median of ${sdb.runs} (scoredb) / ${duck.runs} (duckdb) warm runs; cells: ${cells.length}` +
  (sdb.client_ms !== undefined ? `; the client's own round trip (GET /healthz): ${sdb.client_ms.toFixed(3)} ms, inside every scoredb time` : '') +
  (args.load ? `; load average at the end: ${args.load}` : ''), '');
lines.push(`**worst ratio ${worst ? worst.ratio.toFixed(1) : '-'}x (${worst ? worst.id : '-'}: scoredb ${worst ? worst.sdb.toFixed(3) : '-'} ms, duckdb ${worst ? worst.duck.toFixed(2) : '-'} ms); median ${median.toFixed(1)}x**`, '');
if (sdb.overhead) for (const [k, v] of Object.entries(sdb.overhead))
  lines.push(`HTTP overhead per cell (${k === 'wall_ms' ? 'HTTP time' : "the server's CPU time"} minus the in-process time, ${v.cells} cells): median ${v.median.toFixed(3)} ms, p90 ${v.p90.toFixed(3)} ms, p99 ${v.p99.toFixed(3)} ms`, '');
lines.push(`cells under ${target}x: ${under.length} of ${ok.length}; typical-name cells over 2 ms: ${slowTypical.length}; row-count mismatches: ${mismatch.length}; errors: ${cells.length - ok.length}`, '');
lines.push('| cell (filter.group.output.name) | rows | scoredb ms | duckdb ms | ratio | same rows |', '|---|--:|--:|--:|--:|:-:|');
for (const c of cells) {
  if (c.error) { lines.push(`| ${c.id} | | error: ${String(c.error).slice(0, 80)} | | | |`); continue; }
  lines.push(`| ${c.id} | ${c.n} | ${c.sdb.toFixed(3)} | ${c.duck.toFixed(2)} | ${c.ratio.toFixed(1)} | ${c.same ? 'yes' : 'NO'} |`);
}
const text = lines.join('\n') + '\n';
if (args.out) writeFileSync(args.out, text);
process.stdout.write(lines.slice(0, 8).join('\n') + '\n');
for (const c of under.sort((a, b) => a.ratio - b.ratio).slice(0, 25))
  process.stdout.write(`  under ${target}x: ${c.id} ${c.ratio.toFixed(1)}x (${c.sdb.toFixed(3)} vs ${c.duck.toFixed(2)} ms)\n`);
for (const c of mismatch.slice(0, 10)) process.stdout.write(`  rows differ: ${c.id}\n`);

if (args.latest) {
  const mode = http ? 'http' : 'in-process';
  const open = `<!-- matrix:${mode} -->`, close = `<!-- /matrix:${mode} -->`;
  const rows = Number(args.rows || 0).toLocaleString('en-US');
  const block = [open, `## Shape matrix ${http ? 'over HTTP (cache off)' : 'in process'}, ${rows} scores`, '',
    `\`make bench\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC: ${ok.length} cells, scoredb ${where} against`,
    `DuckDB threads=2 in the same run, every cell's ratio in [${basename(args.out || 'matrix.md')}](${basename(args.out || 'matrix.md')}).`,
    `**Worst ${worst ? worst.ratio.toFixed(1) : '-'}×** (${worst ? worst.id : '-'}: ${worst ? worst.sdb.toFixed(3) : '-'} ms against ${worst ? worst.duck.toFixed(2) : '-'} ms); **median ${median.toFixed(1)}×**;`,
    `${under.length} of ${ok.length} cells under the ${target}× target; ${slowTypical.length} typical-name cells over 2 ms; ${mismatch.length} row-count mismatches${args.load ? `; load average ${args.load}` : ''}.`,
    close].join('\n');
  let text = existsSync(args.latest) ? readFileSync(args.latest, 'utf8') : '';
  const a = text.indexOf(open), b = text.indexOf(close);
  text = a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + close.length) : text.replace(/\n*$/, '\n\n') + block + '\n';
  writeFileSync(args.latest, text);
}
