// The official Langfuse SDKs (langfuse 3.x, @langfuse/client 5.x) and
// Helicone's documented requests, driven against a live `scoredb serve` on
// 127.0.0.1 (an ephemeral port, a fresh store, a keys file with one Langfuse
// key pair). Every SDK call that touches scores, traces, score configs and
// annotation queues is made the way a user makes it; each check asserts on
// the values read back, and every HTTP exchange the SDKs make is counted by
// wrapping fetch, so an SDK error log or a retry fails the run.
//
// Usage: node tests/sdk/run.mjs /path/to/scoredb   (make test runs it)
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const BIN = process.argv[2] || process.env.SCOREDB;
if (!BIN) throw new Error("usage: node run.mjs SCOREDB_BINARY");
const PK = "pk-lf-sdktest", SK = "sk-lf-sdktest";
const deadline = setTimeout(() => { console.error("sdk tests: over 60 s"); process.exit(1); }, 60000);

// ------------------------------------------------------------ the server
const dir = mkdtempSync(join(tmpdir(), "sdb_sdk_"));
writeFileSync(join(dir, "keys"), `default ${PK}:${SK}\n`);
const srv = spawn(BIN, ["serve", "--db", join(dir, "db"), "--listen", "127.0.0.1:0",
  "--aggregation-delay", "0", "--keys", join(dir, "keys"), "--threads", "2"],
  { stdio: ["ignore", "ignore", "pipe"] });
const port = await new Promise((res, rej) => {
  let text = "";
  srv.stderr.on("data", (d) => {
    text += d;
    const m = text.match(/\(port (\d+)\)/);
    if (m) res(Number(m[1]));
  });
  srv.on("exit", (c) => rej(new Error(`scoredb serve exited ${c}: ${text}`)));
});
const BASE = `http://127.0.0.1:${port}`;
const BASIC = "Basic " + Buffer.from(`${PK}:${SK}`).toString("base64");

// --------------------------------------------- every SDK exchange, counted
const calls = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, opts) => {
  const r = await realFetch(url, opts);
  calls.push({ url: String(url), method: opts?.method || "GET", status: r.status });
  return r;
};
const logged = [];
for (const k of ["error", "warn"]) {
  const orig = console[k];
  console[k] = (...a) => { logged.push(a.map(String).join(" ")); orig(...a); };
}
async function raw(method, path, body, auth = BASIC, headers = {}) {
  const r = await realFetch(BASE + path, { method, headers: { authorization: auth,
    "content-type": "application/json", ...headers }, body: body === undefined ? undefined :
    typeof body === "string" ? body : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}
const query = async (q) => (await raw("POST", "/v1/query", q)).json;

let passed = 0;
const failures = [];
async function check(name, fn) {
  const c0 = calls.length, l0 = logged.length;
  try {
    await fn();
    const bad = calls.slice(c0).filter((c) => c.status >= 400);
    assert.equal(logged.length, l0, `the SDK logged: ${logged.slice(l0).join(" | ")}`);
    assert.deepEqual(bad, [], "an SDK request failed");
    passed++;
  } catch (e) {
    failures.push(`${name}: ${e.message}`);
  }
}

// ------------------------------------------------------ langfuse 3.x (v3)
const { Langfuse, LangfuseWeb } = await import("langfuse");
await check("v3 trace + span + generation + event + scores in one batch", async () => {
  const lf = new Langfuse({ publicKey: PK, secretKey: SK, baseUrl: BASE, flushAt: 1000,
    fetchRetryCount: 3, fetchRetryDelay: 100 });
  let errors = 0;
  lf.on("error", () => errors++);
  const trace = lf.trace({ id: "t-v3-1", name: "chat", userId: "u-1", sessionId: "s-1",
    tags: ["prod", "beta"], release: "r1", version: "v7", metadata: { team: "a" },
    input: { big: "dropped" } });
  const span = trace.span({ name: "retrieve", input: "q" });
  span.end({ output: "docs" });
  const gen = trace.generation({ id: "o-gen-1", name: "llm", model: "gpt-4o",
    input: [{ role: "user", content: "hi" }] });
  gen.end({ output: "hello" });
  trace.event({ name: "clicked" });
  trace.score({ name: "quality", value: 0.8 });
  gen.score({ name: "helpful", value: 1, dataType: "BOOLEAN" });
  lf.score({ traceId: "t-v3-1", name: "tone", value: "polite", dataType: "CATEGORICAL" });
  // A score first, its trace after: the trace still applies to it.
  lf.score({ traceId: "t-v3-late", name: "quality", value: 0.2 });
  await lf.flushAsync();
  lf.trace({ id: "t-v3-late", name: "search", userId: "u-2", tags: ["prod"] });
  await lf.shutdownAsync();
  assert.equal(errors, 0, "the v3 SDK emitted errors");
  const ingests = calls.filter((c) => c.url.endsWith("/api/public/ingestion"));
  assert.equal(ingests.length, 2, `ingestion requests (a retry?): ${ingests.length}`);
  const byName = await query({ name: "quality", group_by: ["trace_name"], stats: ["count", "avg"] });
  assert.deepEqual(byName.groups.map((g) => [g.key.trace_name, g.count, g.avg]),
    [["chat", 1, 0.8], ["search", 1, 0.2]]);
  const byUser = await query({ names: ["quality", "helpful", "tone"], group_by: ["user_id"],
    stats: ["count"] });
  assert.deepEqual(byUser.groups.map((g) => [g.key.user_id, g.count]), [["u-1", 3], ["u-2", 1]]);
  const tagged = await query({ name: "quality", where: { tags: ["beta"] }, stats: ["count", "avg"] });
  assert.equal(tagged.groups[0].count, 1);
  assert.equal(tagged.groups[0].avg, 0.8);
  const model = await query({ name: "helpful", group_by: ["model"], stats: ["count"] });
  assert.deepEqual(model.groups.map((g) => g.key.model), ["gpt-4o"]);
  const v2 = (await raw("GET", "/api/public/v2/scores?userId=u-1&traceTags=prod")).json;
  assert.equal(v2.meta.totalItems, 3);
  const t = (await raw("GET", "/v1/traces/t-v3-1")).json;
  assert.equal(t.name, "chat");
  assert.deepEqual(t.tags, ["beta", "prod"]);
  assert.equal(t.input, undefined, "inputs are not kept");
});

await check("v3 LangfuseWeb score with the public key only", async () => {
  const web = new LangfuseWeb({ publicKey: PK, baseUrl: BASE });
  await web.score({ id: "web-1", traceId: "t-v3-1", name: "thumbs", value: 1 });
  const got = (await raw("GET", "/api/public/scores/web-1")).json;
  assert.equal(got.value, 1);
  assert.equal(got.trace.userId, "u-1");
});

await check("public key only: reads and trace events refused as hosted Langfuse does", async () => {
  const bearer = "Bearer " + PK;
  const r = await raw("GET", "/api/public/v2/scores", undefined, bearer);
  assert.equal(r.status, 401);
  assert.ok(r.json.message, "401 body has message");
  const ing = await raw("POST", "/api/public/ingestion", { batch: [
    { id: "e1", type: "trace-create", timestamp: new Date().toISOString(), body: { id: "x" } },
    { id: "e2", type: "score-create", timestamp: new Date().toISOString(),
      body: { traceId: "x", name: "pk", value: 1 } }] }, bearer);
  assert.equal(ing.status, 207);
  assert.deepEqual(ing.json.successes.map((s) => s.id), ["e2"]);
  assert.deepEqual(ing.json.errors.map((e) => [e.id, e.status]), [["e1", 403]]);
  calls.length = calls.length; // raw() does not count
});

// ------------------------------------------------ @langfuse/client 5.x (v5)
const { LangfuseClient } = await import("@langfuse/client");
const v5 = new LangfuseClient({ publicKey: PK, secretKey: SK, baseUrl: BASE });
let numCfg, catCfg, queue, item2;

await check("v5 score configs: create, get, getById, update", async () => {
  numCfg = await v5.api.scoreConfigs.create({ name: "accuracy", dataType: "NUMERIC",
    minValue: 0, maxValue: 1, description: "d" });
  catCfg = await v5.api.scoreConfigs.create({ name: "verdict", dataType: "CATEGORICAL",
    categories: [{ label: "bad", value: 0 }, { label: "good", value: 1 }] });
  assert.equal(numCfg.maxValue, 1);
  const list = await v5.api.scoreConfigs.get({ page: 1, limit: 10 });
  assert.equal(list.meta.totalItems, 2);
  const one = await v5.api.scoreConfigs.getById(catCfg.id);
  assert.deepEqual(one.categories.map((c) => c.label), ["bad", "good"]);
  const upd = await v5.api.scoreConfigs.update(numCfg.id, { description: "e", maxValue: 2 });
  assert.equal(upd.description, "e");
  assert.equal(upd.maxValue, 2);
});

await check("v5 scores: create, getById, getMany (v2), getManyV3, legacy create/delete", async () => {
  const a = await v5.api.scores.create({ id: "v5-a", traceId: "t-v3-1", name: "accuracy",
    value: 0.5, configId: numCfg.id, metadata: ["any", "json"] });
  assert.equal(a.id, "v5-a");
  await v5.api.scores.create({ id: "v5-b", traceId: "t-v3-1", name: "verdict", value: 1,
    configId: catCfg.id });
  await v5.api.scores.create({ id: "v5-c", sessionId: "s-9", name: "summary", value: "fine",
    dataType: "TEXT" });
  const b = await v5.api.scores.getById("v5-b");
  assert.equal(b.stringValue, "good");
  assert.equal(b.value, 1);
  assert.equal(b.projectId !== undefined, true);
  const page = await v5.api.scores.getMany({ traceId: "t-v3-1", limit: 2, page: 1 });
  assert.equal(page.data.length, 2);
  assert.ok(page.meta.totalItems >= 5);
  const ids = await v5.api.scores.getMany({ scoreIds: "v5-a, v5-b" });
  assert.deepEqual(ids.data.map((s) => s.id).sort(), ["v5-a", "v5-b"]);
  const v3 = await v5.api.scoresV3.getManyV3({ traceId: "t-v3-1", limit: 2 });
  assert.equal(v3.data.length, 2);
  assert.ok(v3.meta.cursor);
  const v3b = await v5.api.scoresV3.getManyV3({ traceId: "t-v3-1", limit: 100, cursor: v3.meta.cursor });
  assert.ok(v3b.data.length >= 3);
  await v5.api.legacy.scoreV1.create({ id: "v1-x", traceId: "t-v3-1", name: "legacy", value: 2 });
  await v5.api.legacy.scoreV1.delete("v1-x");
  await assert.rejects(v5.api.scores.getById("v1-x"));
  calls.pop(); // the expected 404 above
});

await check("v5 score.create + flush (ingestion batch)", async () => {
  v5.score.create({ id: "v5-ing", traceId: "t-v3-late", name: "quality", value: 0.4 });
  await v5.score.flush();
  const s = await v5.api.scores.getById("v5-ing");
  assert.equal(s.value, 0.4);
});

await check("v5 annotation queues: queues, items, status, assignments, queueId on scores", async () => {
  queue = await v5.api.annotationQueues.createQueue({ name: "review", description: "weekly",
    scoreConfigIds: [numCfg.id] });
  assert.equal(queue.name, "review");
  const got = await v5.api.annotationQueues.getQueue(queue.id);
  assert.deepEqual(got.scoreConfigIds, [numCfg.id]);
  const qs = await v5.api.annotationQueues.listQueues({ page: 1, limit: 10 });
  assert.equal(qs.meta.totalItems, 1);
  const i1 = await v5.api.annotationQueues.createQueueItem(queue.id, { objectId: "t-v3-1",
    objectType: "TRACE" });
  assert.equal(i1.status, "PENDING");
  item2 = await v5.api.annotationQueues.createQueueItem(queue.id, { objectId: "t-v3-late",
    objectType: "TRACE", status: "PENDING" });
  const done = await v5.api.annotationQueues.updateQueueItem(queue.id, i1.id, { status: "COMPLETED" });
  assert.equal(done.status, "COMPLETED");
  assert.ok(done.completedAt);
  const one = await v5.api.annotationQueues.getQueueItem(queue.id, i1.id);
  assert.equal(one.objectId, "t-v3-1");
  const pending = await v5.api.annotationQueues.listQueueItems(queue.id, { status: "PENDING" });
  assert.deepEqual(pending.data.map((i) => i.id), [item2.id]);
  const all = await v5.api.annotationQueues.listQueueItems(queue.id, {});
  assert.equal(all.meta.totalItems, 2);
  const del = await v5.api.annotationQueues.deleteQueueItem(queue.id, item2.id);
  assert.equal(del.success, true);
  const as = await v5.api.annotationQueues.createQueueAssignment(queue.id, { userId: "ann-1" });
  assert.equal(as.userId, "ann-1");
  const das = await v5.api.annotationQueues.deleteQueueAssignment(queue.id, { userId: "ann-1" });
  assert.equal(das.success, true);
  await v5.api.scores.create({ id: "q-s1", traceId: "t-v3-1", name: "accuracy", value: 0.9,
    queueId: queue.id, source: "ANNOTATION", configId: numCfg.id });
  const byQ = await v5.api.scores.getMany({ queueId: queue.id });
  assert.deepEqual(byQ.data.map((s) => [s.id, s.queueId]), [["q-s1", queue.id]]);
  const native = (await raw("GET", `/v1/annotation-queues/${queue.id}`)).json;
  assert.deepEqual([native.items, native.pending, native.completed], [1, 0, 1]);
});

await check("v3 fetchTrace, v5 api.trace.get and api.ingestion.batch with a trace", async () => {
  const lf = new Langfuse({ publicKey: PK, secretKey: SK, baseUrl: BASE, fetchRetryCount: 0 });
  const { data } = await lf.fetchTrace("t-v3-1");
  assert.equal(data.name, "chat");
  assert.equal(data.userId, "u-1");
  assert.equal(data.input, null);
  assert.ok(data.scores.some((x) => x.name === "quality" && x.value === 0.8));
  await lf.shutdownAsync();
  const now = new Date().toISOString();
  const res = await v5.api.ingestion.batch({ batch: [
    { id: "b1", type: "trace-create", timestamp: now, body: { id: "t-v5", name: "v5-trace",
      userId: "u-5", tags: ["v5"] } },
    { id: "b2", type: "generation-create", timestamp: now, body: { id: "g-v5", traceId: "t-v5",
      model: "claude-x", promptName: "p", promptVersion: 4 } },
    { id: "b3", type: "score-create", timestamp: now, body: { id: "s-v5", traceId: "t-v5",
      observationId: "g-v5", name: "v5score", value: 0.3 } }] });
  assert.deepEqual(res.successes.map((x) => x.id).sort(), ["b1", "b2", "b3"]);
  assert.deepEqual(res.errors, []);
  const t = await v5.api.trace.get("t-v5");
  assert.deepEqual([t.name, t.userId, t.tags], ["v5-trace", "u-5", ["v5"]]);
  assert.equal(t.scores[0].id, "s-v5");
  const g = await query({ name: "v5score", group_by: ["prompt_version"], stats: ["count"] });
  assert.deepEqual(g.groups.map((x) => [x.key.prompt_version, x.count]), [["4", 1]]);
});

// ------------------------------------------------- Helicone, as documented
await check("Helicone: score a request (properties from headers), evals, distributions", async () => {
  const auth = "Bearer " + PK + ":" + SK;
  const r = await raw("POST", "/v1/request/req-1/score",
    { scores: { accuracy_hc: 0.75, passed: true } }, auth, { "Helicone-Property-Feature": "search" });
  assert.equal(r.status, 200, r.text);
  const r2 = await raw("POST", "/v1/request/req-2/score", { scores: { accuracy_hc: 0.25 } }, auth,
    { "Helicone-Property-Feature": "chat" });
  assert.equal(r2.status, 200, r2.text);
  // The other documented score route: POST /v1/evals/{requestId} {score, name}
  const r3 = await raw("POST", "/v1/evals/req-3", { score: 1, name: "accuracy_hc" }, auth,
    { "Helicone-Property-Feature": "other" });
  assert.equal(r3.status, 200, r3.text);
  const bad = await raw("POST", "/v1/evals/req-3", { score: "x", name: "a" }, auth);
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /score/);
  const day = new Date(Date.now() - 86400000).toISOString();
  const tf = { start: day, end: new Date(Date.now() + 86400000).toISOString() };
  const prop = (v) => ({ request_response_rmt: { properties: { feature: { equals: v } } } });
  const one = await raw("POST", "/v1/evals/query", { filter: prop("search"), timeFilter: tf }, auth);
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.data.find((d) => d.name === "accuracy_hc").averageScore, 0.75);
  const either = await raw("POST", "/v1/evals/query", { filter: { left: prop("search"),
    operator: "or", right: prop("chat") }, timeFilter: tf }, auth);
  assert.equal(either.status, 200, either.text);
  const acc = either.json.data.find((d) => d.name === "accuracy_hc");
  assert.deepEqual([acc.count, acc.averageScore], [2, 0.5]);
  const all = await raw("POST", "/v1/evals/query", { filter: { left: prop("search"),
    operator: "or", right: "all" }, timeFilter: tf }, auth);
  assert.equal(all.json.data.find((d) => d.name === "accuracy_hc").count, 3);
  const dist = await raw("POST", "/v1/evals/score-distributions/query", { filter: "all",
    timeFilter: tf, bins: 2, min: 0, max: 1 }, auth);
  const dv = dist.json.data.find((d) => d.name === "accuracy_hc").distribution.map((x) => x.value);
  assert.deepEqual(dv, [1, 2]);
  // Departures, refused with a message that says so (docs/compat.md):
  const ne = await raw("POST", "/v1/evals/query", { filter: { request_response_rmt:
    { properties: { feature: { "not-equals": "search" } } } }, timeFilter: tf }, auth);
  assert.equal(ne.status, 400);
  assert.match(ne.json.error, /not-equals/);
  const cross = await raw("POST", "/v1/evals/query", { filter: { left: prop("search"),
    operator: "or", right: { request_response_rmt: { model: { equals: "m" } } } }, timeFilter: tf }, auth);
  assert.equal(cross.status, 400);
  assert.match(cross.json.error, /across columns/);
});

// -------------------------------------------------------------- the end
srv.kill("SIGTERM");
await new Promise((r) => srv.on("exit", r));
rmSync(dir, { recursive: true, force: true });
clearTimeout(deadline);
console.log(`sdk tests: ${passed} passed, ${failures.length} failed`);
for (const f of failures) console.log("  FAIL " + f);
process.exit(failures.length ? 1 : 0);
