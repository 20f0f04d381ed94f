// The shape matrix over HTTP: every cell of matrix.json POSTed to a running
// `scoredb serve --cache-bytes 0` on 127.0.0.1 (the answer cache off, so
// every request is computed: issue 8 point 7), one warm-up and RUNS timed
// requests per cell on one keep-alive connection, the median kept. The
// output has bench_query's format ({queries: {id: {ms, runs_ms, answer}}}),
// so matrix_report.mjs reads it as it reads the in-process run.
//
// The client's own cost is measured too: the median of RUNS x 20 GET
// /healthz on the same connection, reported as "client_ms" (it is part of
// every cell's time, as it is of any client's).
//
// With --pid (the server's process id) each request's CPU time in the
// server is measured too, all its threads summed (/proc/PID/task/*/schedstat,
// nanoseconds run), and each cell gets "cpu_ms", the median over its runs:
// on a loaded machine the wall time is the scheduler's as much as the
// server's, the CPU time much less so.
//
// What a dashboard sees: a keep-alive agent (one connection, reused), and
// every request a body of its own (the cell's query followed by white
// space that spells the request's sequence number, which JSON ignores and
// the answer cache would not: with the cache on, no request is a hit).
//
// With --inproc F (bench_query's run of the same cells, in process) the
// overhead of HTTP per cell (HTTP time minus in-process time, and with
// --pid the server's CPU minus in-process time) is summarized as median,
// p90 and p99 over the cells, on stderr and as "overhead" in the output.
// --probes N sets the count of /healthz probes (default RUNS x 20).
//
// Every request has a 30 s timeout; only 127.0.0.1 is ever addressed.
//
// Usage: node matrix_http.mjs --port P --queries matrix.json --runs N --out F [--pid PID]
//        [--inproc F] [--probes N]
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const port = Number(args.port);
const runs = Number(args.runs || 5);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const pid = args.pid ? Number(args.pid) : 0;

// The server's CPU time so far in ms (every thread, live ones: a thread
// that ended between two reads takes its time with it; the server's
// threads live as long as it does).
function serverCpuMs() {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
  }
  return ns / 1e6;
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, timeout: 30000,
      headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'),
        ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout (30 s)')));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The request's own body: the query, then the sequence number in binary
// as spaces and tabs (JSON white space, RFC 8259 section 2).
let seq = 0;
const distinct = (body) => { let n = ++seq, pad = ''; while (n) { pad += n & 1 ? '\t' : ' '; n >>= 1; } return body + pad; };

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

const spec = JSON.parse(readFileSync(args.queries, 'utf8'));
const out = { engine: 'scoredb-http', kernels: 'http, cache off', runs, queries: {} };
const probe = [];
for (let i = 0; i < (args.probes !== undefined ? Number(args.probes) : runs * 20); i++) probe.push((await request('GET', '/healthz')).ms);
out.client_ms = probe.length ? median(probe) : 0;
for (const q of spec.queries) {
  try {
    let r = await request('POST', '/v1/query', distinct(q.scoredb));
    const ms = [], cpu = [];
    for (let i = 0; i < runs && r.status === 200; i++) {
      const c0 = pid ? serverCpuMs() : 0;
      r = await request('POST', '/v1/query', distinct(q.scoredb));
      if (pid) cpu.push(serverCpuMs() - c0);
      ms.push(r.ms);
    }
    if (r.status !== 200) { out.queries[q.id] = { error: `HTTP ${r.status}: ${r.body.slice(0, 200)}` }; continue; }
    out.queries[q.id] = { ms: median(ms), runs_ms: ms, answer: JSON.parse(r.body) };
    if (pid) out.queries[q.id].cpu_ms = median(cpu);
    process.stderr.write(`scoredb-http ${q.id}: ${median(ms).toFixed(3)} ms${pid ? `, server cpu ${median(cpu).toFixed(3)} ms` : ''}\n`);
  } catch (e) {
    out.queries[q.id] = { error: String(e.message || e) };
  }
}
agent.destroy();
if (args.inproc) {
  // Overhead percentiles over the cells both runs answered.
  const inproc = JSON.parse(readFileSync(args.inproc, 'utf8')).queries;
  const pick = (xs, f) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))] : NaN; };
  const wall = [], cpu = [];
  for (const [id, h] of Object.entries(out.queries)) {
    const p = inproc[id];
    if (!p || !(p.ms >= 0) || !(h.ms >= 0)) continue;
    wall.push(h.ms - p.ms);
    if (h.cpu_ms !== undefined) cpu.push(h.cpu_ms - p.ms);
  }
  const sum = (xs) => ({ cells: xs.length, median: pick(xs, 0.5), p90: pick(xs, 0.9), p99: pick(xs, 0.99) });
  out.overhead = { wall_ms: sum(wall) };
  if (cpu.length) out.overhead.server_cpu_ms = sum(cpu);
  for (const [k, v] of Object.entries(out.overhead))
    process.stderr.write(`scoredb-http: overhead (${k === 'wall_ms' ? 'HTTP' : 'server CPU'} minus in process) over ${v.cells} cells: median ${v.median.toFixed(3)} ms, p90 ${v.p90.toFixed(3)}, p99 ${v.p99.toFixed(3)}\n`);
}
writeFileSync(args.out, JSON.stringify(out));
process.stderr.write(`scoredb-http: ${spec.queries.length} cells, client round trip ${out.client_ms.toFixed(3)} ms\n`);
