/* Randomized differential test: the engine against a plain reference.
 *
 * Each round builds a random score set (every data type, dimensions,
 * tags, properties, replacements by id, timestamps on bucket edges),
 * ingests it in several batches with folds in between (so replacements hit
 * both the pending log and sealed segments), and runs random query objects.
 * The reference answers each query by filtering a plain array, grouping by
 * strings and sorting: no segments, no zone maps, no kernels. Every field
 * of every group is compared: counts exactly, floats to 1e-9 relative.
 *
 * Segments store each dimension at the width its largest id needs (0, 1,
 * 2 or 4 bytes): some rounds pad the dictionaries of model, prompt version
 * or environment (and property values) past 255 or 65535 ids before
 * ingesting, some leave model absent from every row, and trace_name is
 * always absent, so the row loop and the group-by kernel read every width. Rounds also vary what values
 * and times look like (value_kind, ts_kind) and the chunk size, so that
 * every column encoding (f64, f32, decimals and integers of 0-32 bits,
 * time offsets of 0-32 bits and raw times, trace dictionaries and raw
 * hashes) is read by every query path.
 *
 * Rounds come in two sizes: many small ones (up to 1500 rows, 40 trace
 * ids), and a few with thousands of rows and trace ids, where "traces"
 * counts past a thousand selected hashes and the distinct counter
 * partitions them. That counter (query.c) is also checked on its own
 * against sorting, down to the table doubling and the compactions that
 * a query of millions of rows would reach.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scoredb.h"
#include "query.h" /* sdb__distinct_u64, sdb__traceset; internal.h: dictionaries */
#include "xorshift.h"
#include "bounds.h"

#define BASE_MS 1767225600000ll /* 2026-01-01T00:00:00Z */
#define DAY 86400000ll
#define TOL 1e-9

typedef struct rrow {
    char id[16];
    char name[16];
    int type; /* 0 numeric, 1 boolean, 2 categorical */
    double value;
    char label[12];
    long long ts;
    int source;
    const char *model, *prompt, *env;
    char trace[12]; /* "" when absent */
    int tag_a, tag_b, tag_c; /* tag_c 2: sent twice */
    const char *feature; /* property "feature", NULL when absent */
    const char *team;    /* property "team", NULL when absent */
    const char *user;    /* user_id, NULL when absent */
    int live;
} rrow;

static const char *const MODELS[] = {NULL, "gpt-4o", "claude", "llama"};
static const char *const PROMPTS[] = {NULL, "v1", "v2", "v3", "v10"};
static const char *const ENVS[] = {"default", "production", "staging"};
static const char *const FEATURES[] = {NULL, "search", "chat"};
static const char *const TEAMS[] = {NULL, "t1", "t2", "t3"};
static const char *const USERS[] = {NULL, "u1", "u2", "u3", "u4", "u5"};
static const char *const LABELS[] = {"pass", "fail", "partial"};
static const char *const SOURCES[] = {"API", "EVAL", "ANNOTATION"};
static const char *const TYPES[] = {"NUMERIC", "BOOLEAN", "CATEGORICAL"};

static uint64_t rng;
static uint64_t rnd(void) { return xorshift64(&rng); }
static int ri(int n) { return (int)(rnd() % (uint64_t)n); }
static double rf(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* ------------------------------------------------------------- data */

static int n_trace_ids = 40; /* trace ids are t0 .. t(n-1) */
static int no_model;         /* this round's rows carry no model */
/* What this round's numeric values and times look like, so that segments
 * take every encoding (internal.h): value_kind 0 the mix of integers and
 * arbitrary doubles (f64 chunks), 1 two-digit decimals like the scores
 * LLM judges give (0.85), 2 f32-exact values, 3 integers of both signs, 4
 * three-digit decimals with an arbitrary double now and then (some
 * chunks decimal, some f64); ts_kind 0 ten days, 1 a few milliseconds at
 * a day's edge (time columns of 0-2 bits), 2 a bucket of 400 days with
 * some rows 60 days out (offsets past 2^32 ms: raw times). */
static int value_kind, ts_kind;
/* This round's rows also carry a tag and a property key of their own
 * (u<i>, k<i % 23>): thousands of tag sets and keys, past the attrs
 * bounds (engine/attrs.c), which the round shrinks. */
static int long_tail;

static void make_row(rrow *r, int i, int n_names, int reuse_id, const rrow *rows, int n_rows)
{
    memset(r, 0, sizeof *r);
    if (reuse_id && n_rows > 0)
        strcpy(r->id, rows[ri(n_rows)].id);
    else
        snprintf(r->id, sizeof r->id, "id%d", i);
    int nm = ri(n_names);
    snprintf(r->name, sizeof r->name, "n%d", nm);
    /* Names are mostly one type; n3 mixes. */
    r->type = nm == 3 ? ri(3) : nm % 3;
    switch (r->type) {
    case 0:
        switch (value_kind) {
        case 1: r->value = (double)ri(101) / 100; break;
        case 2: r->value = (double)(float)(rf() * 10 - 2); break;
        case 3: r->value = (double)(ri(2001) - 1000); break;
        case 4: r->value = ri(50) == 0 ? rf() : (double)(ri(20001) - 5000) / 1000; break;
        default:
            r->value = ri(4) == 0 ? (double)(1 + ri(5)) : (ri(10) == 0 ? 1000 + rf() : rf());
            if (ri(20) == 0) r->value = -r->value;
            break;
        }
        break;
    case 1: r->value = ri(2); break;
    case 2: strcpy(r->label, LABELS[ri(3)]); break;
    }
    int k = ri(10);
    if (k == 0)
        r->ts = BASE_MS + ri(10) * DAY; /* exactly on a day edge */
    else if (k == 1)
        r->ts = BASE_MS + ri(10) * DAY - 1;
    else
        r->ts = BASE_MS + (long long)(rf() * 10 * DAY);
    if (ts_kind == 1) r->ts = BASE_MS + ri(3) * DAY - ri(2) - ri(2) * ri(3);
    if (ts_kind == 2 && ri(8) == 0) r->ts = BASE_MS + 60 * DAY + ri(1000);
    r->source = ri(3);
    r->model = MODELS[ri(4)];
    if (no_model) r->model = NULL;
    r->prompt = PROMPTS[ri(5)];
    r->env = ENVS[ri(3)];
    if (ri(5)) snprintf(r->trace, sizeof r->trace, "t%d", ri(n_trace_ids));
    r->tag_a = ri(2);
    r->tag_b = ri(3) == 0;
    r->feature = FEATURES[ri(3)];
    r->tag_c = ri(4) == 0 ? 1 + ri(2) : 0;
    r->team = TEAMS[ri(4)];
    r->user = USERS[ri(6)];
    r->live = 1;
}

static int row_json(const rrow *r, char *buf, size_t n)
{
    int o = snprintf(buf, n, "{\"id\":\"%s\",\"name\":\"%s\",", r->id, r->name);
    switch (r->type) {
    case 0: o += snprintf(buf + o, n - o, "\"value\":%.17g,", r->value); break;
    case 1:
        if (ri(2))
            o += snprintf(buf + o, n - o, "\"value\":%s,", r->value ? "true" : "false");
        else
            o += snprintf(buf + o, n - o, "\"value\":%d,\"data_type\":\"BOOLEAN\",", (int)r->value);
        break;
    case 2: o += snprintf(buf + o, n - o, "\"value\":\"%s\",", r->label); break;
    }
    if (ri(2)) {
        char t[40];
        sdb_time_format(r->ts, t);
        o += snprintf(buf + o, n - o, "\"timestamp\":\"%s\",", t);
    } else {
        o += snprintf(buf + o, n - o, "\"timestamp\":%lld,", r->ts);
    }
    o += snprintf(buf + o, n - o, "\"source\":\"%s\",", SOURCES[r->source]);
    if (r->model) o += snprintf(buf + o, n - o, "\"model\":\"%s\",", r->model);
    if (r->prompt) o += snprintf(buf + o, n - o, "\"prompt_version\":\"%s\",", r->prompt);
    if (r->user) o += snprintf(buf + o, n - o, "\"user_id\":\"%s\",", r->user);
    if (strcmp(r->env, "default") || ri(2)) o += snprintf(buf + o, n - o, "\"environment\":\"%s\",", r->env);
    if (r->trace[0])
        o += snprintf(buf + o, n - o, "\"trace_id\":\"%s\",", r->trace);
    else
        o += snprintf(buf + o, n - o, "\"session_id\":\"s1\",");
    o += snprintf(buf + o, n - o, "\"tags\":[%s%s%s", r->tag_a ? "\"a\"" : "",
                  r->tag_a && r->tag_b ? "," : "", r->tag_b ? "\"b\"" : "");
    int any = r->tag_a || r->tag_b;
    for (int c = 0; c < r->tag_c; c++, any = 1) o += snprintf(buf + o, n - o, "%s\"c\"", any ? "," : "");
    if (long_tail) o += snprintf(buf + o, n - o, "%s\"u%s\"", any ? "," : "", r->id);
    o += snprintf(buf + o, n - o, "]");
    if (r->feature || r->team || long_tail) {
        o += snprintf(buf + o, n - o, ",\"properties\":{");
        int f = 1;
        if (long_tail) {
            o += snprintf(buf + o, n - o, "\"k%d\":\"v%d\"", atoi(r->id + 2) % 23, ri(5));
            f = 0;
        }
        if (r->team) o += snprintf(buf + o, n - o, "%s\"team\":\"%s\"", f ? "" : ",", r->team);
        if (r->team) f = 0;
        if (r->feature) o += snprintf(buf + o, n - o, "%s\"feature\":\"%s\"", f ? "" : ",", r->feature);
        o += snprintf(buf + o, n - o, "}");
    }
    o += snprintf(buf + o, n - o, "}");
    return o;
}

/* ----------------------------------------------------------- queries */

typedef struct rq {
    int n_names;            /* 0: every name */
    char names[3][16];
    int has_from, has_to;
    long long from, to;
    int vop; /* 0 none, 1 gte/lt, 2 gt/lte, 3 eq */
    double va, vb;
    int src_mask, type_mask;
    const char *model_f[2];
    int n_model_f;
    int tag_f;   /* bits: require tag a (1), b (2), c (4); 8: a tag no row has */
    int feat_f;  /* 1: feature == search, 2: feature in search, chat, 3: 2 and team in t1,
                    t3, 4: team in t2, nope, 5: a key no row has */
    int prompt_f, env_f, user_f, tname_f; /* dimension filters (see match) */
    int hist_bound; /* free histogram: 0 no bound, 1 only min, 2 only max */
    int gb[4];   /* 0 name,1 model,2 source,3 data_type,4 properties.feature,5 prompt_version,
                    6 trace_name (always absent), 7 user_id, 8 environment */
    int n_gb;
    long long interval; /* 0 none */
    int hist, hist_fixed, bins;
    double hmin, hmax;
    int pct;
    int lean; /* stats without traces (lets the kernel paths run): 1 without stddev, 2 with */
    int counts; /* 1: stats ["count"], 2: ["count", "traces"] (no moments needed) */
} rq;

static const char *const GB_NAMES[] = {"name",           "model",      "source",
                                       "data_type",      "properties.feature", "prompt_version",
                                       "trace_name",     "user_id",    "environment",
                                       "properties.team", "properties.nokey"};
#define N_GB 11

static void make_query(rq *q, int n_names, const rrow *rows, int n_rows)
{
    memset(q, 0, sizeof *q);
    int k = ri(4);
    if (k > 0) {
        q->n_names = 1 + ri(2);
        for (int i = 0; i < q->n_names; i++) snprintf(q->names[i], 16, "n%d", ri(n_names + 1));
    }
    if (ri(3)) {
        q->has_from = 1;
        q->from = ri(3) == 0 && n_rows ? rows[ri(n_rows)].ts : BASE_MS + (long long)(rf() * 5 * DAY);
        if (ri(3) == 0) q->from = BASE_MS + ri(5) * DAY;
    }
    if (ri(3)) {
        q->has_to = 1;
        q->to = (q->has_from ? q->from : BASE_MS) + (long long)(rf() * 8 * DAY);
        if (ri(3) == 0 && n_rows) q->to = rows[ri(n_rows)].ts;
        if (q->has_from && q->to < q->from) q->to = q->from;
    }
    q->vop = ri(8) < 5 ? 0 : 1 + ri(3);
    q->va = ri(2) ? rf() : (double)ri(6);
    q->vb = q->va + rf() * 2;
    if (ri(6) == 0) q->src_mask = 1 + ri(7);
    if (ri(6) == 0) q->type_mask = 1 + ri(7);
    if (ri(6) == 0) {
        q->n_model_f = 1 + ri(2);
        for (int i = 0; i < q->n_model_f; i++) q->model_f[i] = MODELS[1 + ri(3)];
    }
    q->tag_f = ri(8) == 0 ? (ri(8) ? 1 + ri(7) : 8) : 0;
    q->feat_f = ri(8) == 0 ? 1 + ri(5) : 0;
    if (ri(8) == 0) q->prompt_f = 1 + ri(2);
    if (ri(8) == 0) q->env_f = 1 + ri(2);
    if (ri(8) == 0) q->user_f = 1 + ri(2);
    if (ri(16) == 0) q->tname_f = 1;
    if (ri(2)) {
        q->n_gb = 1 + ri(3);
        for (int i = 0; i < q->n_gb; i++) q->gb[i] = ri(N_GB);
        for (int i = 1; i < q->n_gb; i++)
            for (int j = 0; j < i; j++)
                if (q->gb[i] == q->gb[j]) q->n_gb = i; /* no duplicate keys */
    }
    if (ri(3) == 0) {
        static const long long iv[] = {3600000ll, 6 * 3600000ll, DAY, 7 * DAY};
        q->interval = iv[ri(4)];
    }
    if (ri(3) == 0) {
        q->hist = 1;
        q->bins = 1 + ri(12);
        q->hist_fixed = ri(2);
        q->hmin = ri(2) ? 0 : 0.25;
        q->hmax = ri(2) ? 1 : 5;
        if (!q->hist_fixed) q->hist_bound = ri(4) == 0 ? 1 + ri(2) : 0;
    }
    q->pct = ri(3) == 0;
    q->lean = ri(3);
    if (ri(6) == 0) q->counts = 1 + ri(2);
}

/* The whole matrix, not a sample of it (issue 8): query number k of
 * N_SWEEP is filter kind k % 13 x group-by kind (k / 13) % 8 x output
 * k / 104, every name, over the round's whole time range unless the
 * filter is the time one. */
enum { SW_FILTERS = 13, SW_GROUPS = 8, SW_OUTPUTS = 6 };
#define N_SWEEP (SW_FILTERS * SW_GROUPS * SW_OUTPUTS)

static void sweep_query(rq *q, int k, const rrow *rows, int n_rows)
{
    memset(q, 0, sizeof *q);
    int fk = k % SW_FILTERS, gk = (k / SW_FILTERS) % SW_GROUPS, ok = k / (SW_FILTERS * SW_GROUPS);
    switch (fk) {
    case 0: break; /* none */
    case 1:
        q->has_from = q->has_to = 1;
        q->from = n_rows ? rows[k % n_rows].ts : BASE_MS + DAY;
        q->to = q->from + 3 * DAY + 7;
        break;
    case 2: q->vop = 1 + k % 3; q->va = k % 2 ? 0.25 : 1; q->vb = q->va + 0.5; break;
    case 3: q->type_mask = 1 + k % 7; break;
    case 4: q->src_mask = 1 + k % 7; break;
    case 5: q->n_model_f = 1; q->model_f[0] = MODELS[1 + k % 3]; break;
    case 6: q->prompt_f = 1 + k % 2; break;
    case 7: q->env_f = 1 + k % 2; break;
    case 8: q->user_f = 1 + k % 2; break;
    case 9: q->tname_f = 1; break;
    case 10: q->tag_f = 1 + k % 7; break;
    case 11: q->feat_f = 1 + k % 4; break;
    case 12: /* several at once */
        q->has_from = 1;
        q->from = BASE_MS + 2 * DAY + 3600000ll;
        q->src_mask = 3;
        q->env_f = 2;
        q->user_f = 2;
        q->tag_f = 1;
        break;
    }
    switch (gk) {
    case 0: break;
    case 1: q->n_gb = 1; q->gb[0] = 1; break;
    case 2: q->n_gb = 2; q->gb[0] = 1; q->gb[1] = 5; break;
    case 3: q->n_gb = 1; q->gb[0] = 0; break;
    case 4:
        q->n_gb = 1 + k % 2;
        q->gb[0] = 4;
        q->gb[1] = 9;
        break;
    case 5: q->interval = k % 2 ? DAY : 6 * 3600000ll; break;
    case 6: q->n_gb = 2; q->gb[0] = 1; q->gb[1] = 2; q->interval = DAY; break;
    case 7: q->n_gb = 3; q->gb[0] = 7; q->gb[1] = 8; q->gb[2] = 3; q->interval = 7 * DAY; break;
    }
    switch (ok) {
    case 0: q->lean = 1; break;
    case 1: q->lean = k % 2 ? 2 : 0; break; /* stddev, with and without traces */
    case 2:
        q->lean = k % 2;
        q->counts = k % 3 == 0 ? 1 + (k / 3) % 2 : 0; /* the histogram dashboards ask for */
        q->hist = 1;
        q->bins = 1 + k % 12;
        q->hist_fixed = 1;
        q->hmin = 0;
        q->hmax = 1;
        break;
    case 3: q->lean = 1; q->hist = 1; q->bins = 1 + k % 12; break;
    case 4: q->lean = 1; q->hist = 1; q->bins = 5; q->hist_bound = 1 + k % 2; q->hmin = 0.25; q->hmax = 1; break;
    case 5: q->lean = k % 2; q->pct = 1; break;
    }
}

static int sweep_mode; /* run_round_sized: the matrix instead of random queries */
static int chunk_rows_override; /* run_round_sized: this chunk size (and one 32-day bucket)
                                   instead of small random ones */

static int query_json(const rq *q, char *buf, size_t n)
{
    int o = snprintf(buf, n, q->counts == 1 ? "{\"stats\":[\"count\"]"
                             : q->counts == 2 ? "{\"stats\":[\"count\",\"traces\"]"
                             : q->lean == 1 ? "{\"stats\":[\"count\",\"avg\",\"min\",\"max\",\"sum\"]"
                             : q->lean == 2 ? "{\"stats\":[\"count\",\"avg\",\"min\",\"max\",\"sum\",\"stddev\"]"
                                       : "{\"stats\":[\"count\",\"avg\",\"min\",\"max\",\"sum\",\"stddev\",\"traces\"]");
    if (q->n_names == 1) o += snprintf(buf + o, n - o, ",\"name\":\"%s\"", q->names[0]);
    if (q->n_names == 2)
        o += snprintf(buf + o, n - o, ",\"names\":[\"%s\",\"%s\"]", q->names[0], q->names[1]);
    if (q->has_from) o += snprintf(buf + o, n - o, ",\"from\":%lld", q->from);
    if (q->has_to) {
        char t[40];
        sdb_time_format(q->to, t);
        o += snprintf(buf + o, n - o, ",\"to\":\"%s\"", t);
    }
    o += snprintf(buf + o, n - o, ",\"where\":{");
    int first = 1;
#define SEP (first ? (first = 0, "") : ",")
    if (q->vop == 1) o += snprintf(buf + o, n - o, "%s\"value\":{\"gte\":%.17g,\"lt\":%.17g}", SEP, q->va, q->vb);
    if (q->vop == 2) o += snprintf(buf + o, n - o, "%s\"value\":{\"gt\":%.17g,\"lte\":%.17g}", SEP, q->va, q->vb);
    if (q->vop == 3) o += snprintf(buf + o, n - o, "%s\"value\":{\"eq\":%.17g}", SEP, q->va);
    if (q->src_mask) {
        o += snprintf(buf + o, n - o, "%s\"source\":[", SEP);
        int f2 = 1;
        for (int i = 0; i < 3; i++)
            if (q->src_mask & (1 << i)) o += snprintf(buf + o, n - o, "%s\"%s\"", f2 ? (f2 = 0, "") : ",", SOURCES[i]);
        o += snprintf(buf + o, n - o, "]");
    }
    if (q->type_mask) {
        o += snprintf(buf + o, n - o, "%s\"data_type\":[", SEP);
        int f2 = 1;
        for (int i = 0; i < 3; i++)
            if (q->type_mask & (1 << i)) o += snprintf(buf + o, n - o, "%s\"%s\"", f2 ? (f2 = 0, "") : ",", TYPES[i]);
        o += snprintf(buf + o, n - o, "]");
    }
    if (q->n_model_f) {
        o += snprintf(buf + o, n - o, "%s\"model\":[\"%s\"", SEP, q->model_f[0]);
        if (q->n_model_f == 2) o += snprintf(buf + o, n - o, ",\"%s\"", q->model_f[1]);
        o += snprintf(buf + o, n - o, "]");
    }
    if (q->tag_f == 8) o += snprintf(buf + o, n - o, "%s\"tags\":[\"a\",\"zz\"]", SEP);
    else if (q->tag_f)
        o += snprintf(buf + o, n - o, "%s\"tags\":[%s%s%s%s%s]", SEP, q->tag_f & 1 ? "\"a\"" : "",
                      (q->tag_f & 1) && (q->tag_f & 6) ? "," : "", q->tag_f & 2 ? "\"b\"" : "",
                      (q->tag_f & 2) && (q->tag_f & 4) ? "," : "", q->tag_f & 4 ? "\"c\"" : "");
    if (q->feat_f)
        o += snprintf(buf + o, n - o, "%s\"properties\":{%s}", SEP,
                      q->feat_f == 1   ? "\"feature\":[\"search\"]"
                      : q->feat_f == 2 ? "\"feature\":[\"search\",\"chat\"]"
                      : q->feat_f == 3 ? "\"team\":[\"t1\",\"t3\"],\"feature\":[\"chat\",\"search\"]"
                      : q->feat_f == 4 ? "\"team\":[\"t2\",\"nope\"]"
                                       : "\"nokey\":[\"x\"]");
    if (q->prompt_f)
        o += snprintf(buf + o, n - o, "%s\"prompt_version\":[%s]", SEP,
                      q->prompt_f == 1 ? "\"v2\"" : "\"v1\",\"v10\",\"nope\"");
    if (q->env_f)
        o += snprintf(buf + o, n - o, "%s\"environment\":[%s]", SEP,
                      q->env_f == 1 ? "\"default\"" : "\"production\",\"staging\"");
    if (q->user_f)
        o += snprintf(buf + o, n - o, "%s\"user_id\":[%s]", SEP,
                      q->user_f == 1 ? "\"u1\"" : "\"u2\",\"u5\"");
    if (q->tname_f) o += snprintf(buf + o, n - o, "%s\"trace_name\":[\"x\"]", SEP);
#undef SEP
    o += snprintf(buf + o, n - o, "}");
    if (q->n_gb) {
        o += snprintf(buf + o, n - o, ",\"group_by\":[\"%s\"", GB_NAMES[q->gb[0]]);
        for (int i = 1; i < q->n_gb; i++) o += snprintf(buf + o, n - o, ",\"%s\"", GB_NAMES[q->gb[i]]);
        o += snprintf(buf + o, n - o, "]");
    }
    if (q->interval) {
        const char *iv = q->interval == 3600000ll ? "1h" : q->interval == 6 * 3600000ll ? "6h"
                         : q->interval == DAY ? "1d" : "1w";
        o += snprintf(buf + o, n - o, ",\"interval\":\"%s\"", iv);
    }
    if (q->hist) {
        if (q->hist_fixed)
            o += snprintf(buf + o, n - o, ",\"histogram\":{\"bins\":%d,\"min\":%.17g,\"max\":%.17g}", q->bins, q->hmin, q->hmax);
        else if (q->hist_bound == 1)
            o += snprintf(buf + o, n - o, ",\"histogram\":{\"bins\":%d,\"min\":%.17g}", q->bins, q->hmin);
        else if (q->hist_bound == 2)
            o += snprintf(buf + o, n - o, ",\"histogram\":{\"bins\":%d,\"max\":%.17g}", q->bins, q->hmax);
        else
            o += snprintf(buf + o, n - o, ",\"histogram\":{\"bins\":%d}", q->bins);
    }
    if (q->pct) o += snprintf(buf + o, n - o, ",\"percentiles\":[0,25,50,90,99,100]");
    o += snprintf(buf + o, n - o, "}");
    return o;
}

/* --------------------------------------------------------- reference */

static const char *key_of(const rrow *r, int gb)
{
    static char buf[4][16];
    switch (gb) {
    case 0: return r->name;
    case 1: return r->model;
    case 2: return SOURCES[r->source];
    case 3: return TYPES[r->type];
    case 4: return r->feature;
    case 5: return r->prompt;
    case 6: return NULL;
    case 7: return r->user;
    case 8: return r->env;
    case 9: return r->team;
    case 10: return NULL;
    }
    (void)buf;
    return NULL;
}

static int match(const rq *q, const rrow *r)
{
    if (!r->live) return 0;
    if (q->n_names) {
        int ok = 0;
        for (int i = 0; i < q->n_names; i++) ok |= !strcmp(q->names[i], r->name);
        if (!ok) return 0;
    }
    if (q->has_from && r->ts < q->from) return 0;
    if (q->has_to && r->ts >= q->to) return 0;
    if (q->vop) {
        if (r->type == 2) return 0;
        double v = r->value;
        if (q->vop == 1 && !(v >= q->va && v < q->vb)) return 0;
        if (q->vop == 2 && !(v > q->va && v <= q->vb)) return 0;
        if (q->vop == 3 && !(v == q->va)) return 0;
    }
    if (q->src_mask && !(q->src_mask & (1 << r->source))) return 0;
    if (q->type_mask && !(q->type_mask & (1 << r->type))) return 0;
    if (q->n_model_f) {
        int ok = 0;
        for (int i = 0; i < q->n_model_f; i++) ok |= r->model && !strcmp(r->model, q->model_f[i]);
        if (!ok) return 0;
    }
    if (q->tag_f == 8) return 0;
    if ((q->tag_f & 1) && !r->tag_a) return 0;
    if ((q->tag_f & 2) && !r->tag_b) return 0;
    if ((q->tag_f & 4) && !r->tag_c) return 0;
    if (q->feat_f == 5) return 0;
    if (q->feat_f && q->feat_f <= 3 &&
        !(r->feature && (!strcmp(r->feature, "search") ||
                         (q->feat_f >= 2 && !strcmp(r->feature, "chat")))))
        return 0;
    if (q->feat_f == 3 && !(r->team && (!strcmp(r->team, "t1") || !strcmp(r->team, "t3"))))
        return 0;
    if (q->feat_f == 4 && !(r->team && !strcmp(r->team, "t2"))) return 0;
    if (q->prompt_f == 1 && !(r->prompt && !strcmp(r->prompt, "v2"))) return 0;
    if (q->prompt_f == 2 && !(r->prompt && (!strcmp(r->prompt, "v1") || !strcmp(r->prompt, "v10"))))
        return 0;
    if (q->env_f == 1 && strcmp(r->env, "default")) return 0;
    if (q->env_f == 2 && strcmp(r->env, "production") && strcmp(r->env, "staging")) return 0;
    if (q->user_f == 1 && !(r->user && !strcmp(r->user, "u1"))) return 0;
    if (q->user_f == 2 && !(r->user && (!strcmp(r->user, "u2") || !strcmp(r->user, "u5"))))
        return 0;
    if (q->tname_f) return 0; /* trace_name is never set */
    return 1;
}

static int cmp_key(const char *a, const char *b)
{
    if (!a || !b) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static const rq *sort_q;
static int cmp_rows_by_key(const void *x, const void *y)
{
    const rrow *a = *(const rrow *const *)x, *b = *(const rrow *const *)y;
    for (int k = 0; k < sort_q->n_gb; k++) {
        int c = cmp_key(key_of(a, sort_q->gb[k]), key_of(b, sort_q->gb[k]));
        if (c) return c;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void near(double got, double want, const char *what, const char *qs)
{
    double tol = TOL * (1 + fabs(want));
    cr_assert(fabs(got - want) <= tol, "%s: got %.17g want %.17g\nquery %s", what, got, want, qs);
}

static double jnum(json_t *o, const char *k, const char *qs)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_number(v), "field %s missing or not a number\nquery %s", k, qs);
    return json_number_value(v);
}

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static long long iv_idx(const rq *q, long long t)
{
    long long origin = q->interval == 7 * DAY ? 4 * DAY : 0;
    return floor_div(t - origin, q->interval);
}

/* Check numeric stats of a set of rows against a JSON object. */
static int lean_check, counts_check;

static void check_stats(json_t *o, rrow **rs, int n, const char *qs, const char *where)
{
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    int nn = 0;
    for (int i = 0; i < n; i++) {
        if (rs[i]->type == 2) continue;
        sum += rs[i]->value;
        nn++;
        if (rs[i]->value < mn) mn = rs[i]->value;
        if (rs[i]->value > mx) mx = rs[i]->value;
    }
    char what[64];
    if (counts_check) {
        for (int i = 0; i < 4; i++) {
            static const char *const K[] = {"avg", "min", "max", "stddev"};
            cr_assert_null(json_object_get(o, K[i]), "%s: %s not asked for\n%s", where, K[i], qs);
        }
        return;
    }
    if (nn == 0) {
        cr_assert(json_is_null(json_object_get(o, "avg")), "%s: avg should be null\n%s", where, qs);
        return;
    }
    double mean = sum / nn, m2 = 0;
    for (int i = 0; i < n; i++)
        if (rs[i]->type != 2) m2 += (rs[i]->value - mean) * (rs[i]->value - mean);
    snprintf(what, sizeof what, "%s avg", where);
    near(jnum(o, "avg", qs), sum / nn, what, qs);
    snprintf(what, sizeof what, "%s min", where);
    cr_assert_eq(jnum(o, "min", qs), mn, "%s got %.17g want %.17g\n%s", what, jnum(o, "min", qs), mn, qs);
    snprintf(what, sizeof what, "%s max", where);
    cr_assert_eq(jnum(o, "max", qs), mx, "%s\n%s", what, qs);
    snprintf(what, sizeof what, "%s sum", where);
    near(jnum(o, "sum", qs), sum, what, qs);
    json_t *sd = json_object_get(o, "stddev");
    if (lean_check == 1) {
        cr_assert_null(sd, "stddev not asked for\n%s", qs);
    } else if (nn < 2) {
        cr_assert(json_is_null(sd), "%s stddev should be null\n%s", where, qs);
    } else {
        snprintf(what, sizeof what, "%s stddev", where);
        near(json_number_value(sd), sqrt(m2 / (nn - 1)), what, qs);
    }
}

static int cmp_str_p(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_group(const rq *q, json_t *g, rrow **rs, int n, long long i_first,
                        long long i_last, const char *qs)
{
    cr_assert_eq(json_integer_value(json_object_get(g, "count")), n, "count got %lld want %d\n%s",
                 (long long)json_integer_value(json_object_get(g, "count")), n, qs);
    int n_num = 0, n_cat = 0;
    for (int i = 0; i < n; i++) {
        if (rs[i]->type == 2) n_cat++;
        else n_num++;
    }
    int numeric = n_num > 0 || n_cat == 0;
    /* traces: sort the ids, count the runs */
    int distinct = 0, nt = 0;
    const char **ids = malloc(sizeof *ids * (n + 1));
    for (int i = 0; i < n; i++)
        if (rs[i]->trace[0]) ids[nt++] = rs[i]->trace;
    qsort(ids, nt, sizeof *ids, cmp_str_p);
    for (int i = 0; i < nt; i++) distinct += i == 0 || strcmp(ids[i - 1], ids[i]) != 0;
    free(ids);
    if (q->counts == 1 || (!q->counts && q->lean))
        cr_assert_null(json_object_get(g, "traces"), "traces not asked for\n%s", qs);
    else
        cr_assert_eq(json_integer_value(json_object_get(g, "traces")), distinct, "traces\n%s", qs);
    if (numeric) {
        check_stats(g, rs, n, qs, "group");
    } else {
        cr_assert_null(json_object_get(g, "avg"), "categorical group has avg\n%s", qs);
    }
    /* categories */
    json_t *cats = json_object_get(g, "categories");
    if (n_cat) {
        cr_assert(json_is_object(cats), "categories missing\n%s", qs);
        for (int l = 0; l < 3; l++) {
            int c = 0;
            for (int i = 0; i < n; i++) c += rs[i]->type == 2 && !strcmp(rs[i]->label, LABELS[l]);
            json_t *x = json_object_get(cats, LABELS[l]);
            if (c)
                cr_assert_eq(json_integer_value(x), c, "category %s\n%s", LABELS[l], qs);
            else
                cr_assert_null(x, "category %s should be absent\n%s", LABELS[l], qs);
        }
    } else {
        cr_assert_null(cats, "categories present without categorical rows\n%s", qs);
    }
    double *vals = malloc(sizeof(double) * (n_num + 1));
    int nv = 0;
    for (int i = 0; i < n; i++)
        if (rs[i]->type != 2) vals[nv++] = rs[i]->value;
    qsort(vals, nv, sizeof *vals, cmp_d);
    if (q->hist && numeric) {
        json_t *h = json_object_get(g, "histogram");
        cr_assert(json_is_object(h), "histogram missing\n%s", qs);
        double lo = q->hist_fixed || q->hist_bound == 1 ? q->hmin : (nv ? vals[0] : INFINITY);
        double hi = q->hist_fixed || q->hist_bound == 2 ? q->hmax : (nv ? vals[nv - 1] : -INFINITY);
        if (!q->hist_fixed && !nv) lo = hi = 0;
        if (!(hi >= lo)) hi = lo; /* API.md: the group's own bound where one is missing */
        double width = (hi - lo) / q->bins;
        long long *cnt = calloc(q->bins + 2, sizeof *cnt);
        for (int i = 0; i < nv; i++) {
            double x = vals[i];
            if (x < lo) cnt[q->bins]++;
            else if (x > hi) cnt[q->bins + 1]++;
            else {
                double f = floor((x - lo) / width);
                int b = (f >= 0 && f < q->bins) ? (int)f : q->bins - 1;
                cnt[b]++;
            }
        }
        json_t *counts = json_object_get(h, "counts"), *edges = json_object_get(h, "edges");
        cr_assert_eq(json_array_size(counts), (size_t)q->bins, "bins\n%s", qs);
        cr_assert_eq(json_array_size(edges), (size_t)q->bins + 1, "edges\n%s", qs);
        for (int b = 0; b < q->bins; b++)
            cr_assert_eq(json_integer_value(json_array_get(counts, b)), cnt[b], "bin %d\n%s", b, qs);
        if (nv) {
            near(json_number_value(json_array_get(edges, 0)), lo, "edge 0", qs);
            near(json_number_value(json_array_get(edges, q->bins)), hi, "last edge", qs);
        }
        cr_assert_eq(json_integer_value(json_object_get(h, "underflow")), cnt[q->bins], "under\n%s", qs);
        cr_assert_eq(json_integer_value(json_object_get(h, "overflow")), cnt[q->bins + 1], "over\n%s", qs);
        free(cnt);
    }
    if (q->pct && numeric && nv) {
        static const double P[] = {0, 25, 50, 90, 99, 100};
        static const char *const PK[] = {"0", "25", "50", "90", "99", "100"};
        json_t *p = json_object_get(g, "percentiles");
        cr_assert(json_is_object(p), "percentiles missing\n%s", qs);
        for (int i = 0; i < 6; i++) {
            double pos = P[i] / 100.0 * (nv - 1);
            int lo = (int)floor(pos);
            double fr = pos - lo;
            double a = vals[lo], b = lo + 1 < nv ? vals[lo + 1] : a;
            double want = fr == 0 ? a : a + (b - a) * fr;
            near(json_number_value(json_object_get(p, PK[i])), want, PK[i], qs);
        }
    }
    free(vals);
    if (q->interval) {
        json_t *s = json_object_get(g, "series");
        cr_assert(json_is_array(s), "series missing\n%s", qs);
        cr_assert_eq((long long)json_array_size(s), i_last - i_first + 1, "series length %zu want %lld\n%s",
                     json_array_size(s), i_last - i_first + 1, qs);
        rrow **sub = malloc(sizeof *sub * (n + 1));
        for (long long k = i_first; k <= i_last; k++) {
            json_t *pt = json_array_get(s, (size_t)(k - i_first));
            long long origin = q->interval == 7 * DAY ? 4 * DAY : 0;
            int64_t t;
            cr_assert_eq(sdb_time_parse(json_string_value(json_object_get(pt, "t")),
                                        strlen(json_string_value(json_object_get(pt, "t"))), &t),
                         SDB_OK);
            cr_assert_eq(t, k * q->interval + origin, "series t\n%s", qs);
            int m = 0;
            for (int i = 0; i < n; i++)
                if (iv_idx(q, rs[i]->ts) == k) sub[m++] = rs[i];
            cr_assert_eq(json_integer_value(json_object_get(pt, "count")), m, "series count at %lld\n%s", k, qs);
            if (numeric) check_stats(pt, sub, m, qs, "series");
        }
        free(sub);
    }
}

static void check(const rq *q, const char *answer, rrow *rows, int n_rows, const char *qs)
{
    json_error_t je;
    json_t *a = json_loads(answer, 0, &je);
    cr_assert_not_null(a, "answer is not JSON: %s\n%s", je.text, answer);
    json_t *groups = json_object_get(a, "groups");
    cr_assert(json_is_array(groups));
    rrow **m = malloc(sizeof *m * (n_rows + 1));
    int n = 0;
    long long i_min = LLONG_MAX, i_max = LLONG_MIN;
    for (int i = 0; i < n_rows; i++)
        if (match(q, &rows[i])) {
            m[n++] = &rows[i];
            if (q->interval) {
                long long k = iv_idx(q, rows[i].ts);
                if (k < i_min) i_min = k;
                if (k > i_max) i_max = k;
            }
        }
    long long i_first = !q->interval ? 0 : q->has_from ? iv_idx(q, q->from) : i_min;
    long long i_last = !q->interval ? 0 : q->has_to ? iv_idx(q, q->to - 1) : i_max;
    sort_q = q;
    lean_check = q->lean;
    counts_check = q->counts != 0;
    qsort(m, n, sizeof *m, cmp_rows_by_key);
    size_t gi = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && cmp_rows_by_key(&m[i], &m[j]) == 0) j++;
        json_t *g = json_array_get(groups, gi);
        cr_assert_not_null(g, "missing group %zu\n%s\n%s", gi, qs, answer);
        json_t *key = json_object_get(g, "key");
        for (int k = 0; k < q->n_gb; k++) {
            const char *want = key_of(m[i], q->gb[k]);
            json_t *got = json_object_get(key, GB_NAMES[q->gb[k]]);
            if (want)
                cr_assert(json_is_string(got) && !strcmp(json_string_value(got), want),
                          "group %zu key %s want %s\n%s\n%s", gi, GB_NAMES[q->gb[k]], want, qs, answer);
            else
                cr_assert(json_is_null(got), "group key should be null\n%s", qs);
        }
        if (!q->n_gb) cr_assert_null(key);
        check_group(q, g, m + i, j - i, i_first, i_last, qs);
        gi++;
        i = j;
    }
    cr_assert_eq(json_array_size(groups), gi, "group count got %zu want %zu\n%s\n%s",
                 json_array_size(groups), gi, qs, answer);
    free(m);
    json_decref(a);
}

/* ------------------------------------------------------------ driver */

/* Dictionary padding: ids 1..n of dimension `dim` taken by strings no row
 * uses, so the rows' ids start past n (engine/dict.c assigns them in
 * order) and their segment columns need wider widths. */
typedef struct pad_ctx {
    int dim;
    uint32_t n;
} pad_ctx;

static int pad_txn(sdb__txn *t, void *arg)
{
    const pad_ctx *p = arg;
    char s[32];
    for (uint32_t i = 0; i < p->n; i++) {
        int len = snprintf(s, sizeof s, "~pad%06u", i);
        uint32_t id;
        int rc = sdb__dict_id(t, 0, p->dim, s, (size_t)len, 1, &id);
        if (rc) return rc;
    }
    return SDB_OK;
}

static void pad_dict(sdb_store *s, int dim, uint32_t n)
{
    pad_ctx p = {dim, n};
    if (!n) return;
    cr_assert_eq(sdb__write(s, pad_txn, &p), SDB_OK);
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    cr_assert_eq(sdb__dict_max(t, 0, dim), n, "the rows' ids start past the padding");
    sdb__txn_abort(t);
}

/* The padding of one round: mostly none; 300 ids (2-byte columns, and a
 * dictionary small enough for the group-by kernel) in some rounds, 65600
 * (4-byte columns, the row loop) in a few. */
/* A round's model and prompt version paddings when not -1 (and no other
 * padding): the dense local slots' thresholds (exec.c), see below. */
static int pad_model = -1, pad_prompt = -1;

static void pad_round(sdb_store *s, int round)
{
    if (pad_model >= 0) {
        pad_dict(s, SDB_DIM_MODEL, (uint32_t)pad_model);
        pad_dict(s, SDB_DIM_PROMPT_VERSION, (uint32_t)pad_prompt);
        return;
    }
    pad_dict(s, SDB_DIM_MODEL, round % 10 == 7 ? 65600 : round % 4 == 1 ? 300 : 0);
    pad_dict(s, SDB_DIM_PROMPT_VERSION, round % 25 == 11 ? 65600 : round % 5 == 2 ? 300 : 0);
    pad_dict(s, SDB_DIM_ENVIRONMENT, round % 6 == 3 ? 300 : 0);
    /* Property values too: their attrs columns (engine/attrs.c) are then
     * 2 or 4 bytes a row, filtered and grouped through the same words and
     * codes as a dimension's. */
    pad_dict(s, SDB_DICT_PROP, round % 7 == 5 ? 300 : round % 25 == 17 ? 65600 : 0);
}

/* scoredb check finds nothing wrong (it compares every chunk's tags and
 * properties with its rows' records). */
static int check_msg(void *ctx, const char *msg)
{
    cr_log_error("check: %s", msg);
    ++*(int *)ctx;
    return 0;
}

static void attrs_checked(sdb_store *s)
{
    int n_msgs = 0;
    uint64_t problems = 0;
    cr_assert_eq(sdb_store_check(s, check_msg, &n_msgs, &problems, NULL), SDB_OK);
    cr_assert_eq(problems, 0, "scoredb check: %llu problems", (unsigned long long)problems);
}

/* One round: a random store, n_queries random queries against the
 * reference. max_rows 0: up to 1500 rows; else max_rows / 2 to max_rows. */
static void run_round_sized(int round, int n_queries, int max_rows)
{
    char dir[] = "/tmp/sdb_diff_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(round + 1) * 0xBF58476D1CE4E5B9ull;
    rnd();
    sdb_options o = {0};
    o.chunk_rows = 8 + ri(60);
    o.bucket_ms = ri(2) ? DAY : 6 * 3600000ll;
    value_kind = round % 5;
    ts_kind = round % 11 == 4 ? 1 : round % 11 == 8 ? 2 : 0;
    /* 60 days of hours by 65k-id dictionaries pass the answer limits */
    if (ts_kind == 2 && (round % 10 == 7 || round % 25 == 11)) ts_kind = 0;
    if (ts_kind == 2) o.bucket_ms = 400 * DAY;
    /* Chunks past SDB__SEG_LEAF_MAX at full width and under it encoded
     * (34 to ~90 rows) are written at full width: some rounds take
     * larger chunks, so that those encode. */
    if (round % 3 == 1) o.chunk_rows = 100 + ri(300);
    if (chunk_rows_override) {
        o.chunk_rows = (uint32_t)chunk_rows_override;
        o.bucket_ms = 32 * DAY; /* one bucket: a name's rows in few, long segments */
    }
    o.map_size = 1 << 20; /* tiny: exercises map growth */
    o.no_sync = 1;
    sdb_store *s;
    char err[512];
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    pad_round(s, round);
    no_model = round % 8 == 5;
    long_tail = round % 9 == 4;
    /* Long tails past the attrs bounds; else, now and then, bounds that
     * some chunks reach and others do not. */
    sdb__attrs_max_sets = long_tail ? 40 : round % 5 == 3 ? 5 : SDB__ATTR_MAX_SETS;
    sdb__attrs_max_keys = long_tail ? 8 : round % 5 == 3 ? 1 : SDB__ATTR_MAX_KEYS;
    int n_rows = round % 7 == 0 ? ri(3) : max_rows ? max_rows / 2 + ri(max_rows / 2) : ri(1500);
    int n_names = 1 + ri(4);
    rrow *rows = calloc(n_rows + 1, sizeof *rows);
    sdb_batch *b;
    sdb_batch_new(&b);
    char buf[1024];
    int i = 0;
    while (i < n_rows) {
        int batch = chunk_rows_override ? n_rows : 1 + ri(400);
        for (int k = 0; k < batch && i < n_rows; k++, i++) {
            make_row(&rows[i], i, n_names, ri(8) == 0, rows, i);
            for (int j = 0; j < i; j++)
                if (rows[j].live && !strcmp(rows[j].id, rows[i].id)) rows[j].live = 0;
            int len = row_json(&rows[i], buf, sizeof buf);
            cr_assert_eq(sdb_batch_add_json(b, buf, (size_t)len, err, sizeof err), SDB_OK,
                         "%s: %s", err, buf);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, BASE_MS + 20 * DAY + i), SDB_OK);
        sdb_batch_clear(b);
        if (!chunk_rows_override && ri(2)) cr_assert_eq(sdb_store_fold(s, BASE_MS + 30 * DAY, NULL), SDB_OK);
    }
    uint64_t pending = 99;
    int frc = sdb_store_fold(s, BASE_MS + 30 * DAY, &pending);
    cr_assert_eq(frc, SDB_OK, "round %d: fold: %s", round, sdb_strerror(frc));
    cr_assert_eq(pending, 0);
    /* Some rounds delete folded scores and query before the next fold:
     * their chunks' tombstones are not purged yet, so the plan reads a copy
     * of each without its dead rows, which the tag and property columns
     * must follow row for row. */
    int deleted = 0;
    if (round % 3 == 1)
        for (int k = 0; k < n_rows / 10 + 1 && n_rows; k++) {
            rrow *r = &rows[ri(n_rows)];
            if (!r->live) continue;
            cr_assert_eq(sdb_score_delete(s, 0, r->id), SDB_OK, "delete %s", r->id);
            r->live = 0;
            deleted++;
        }
    attrs_checked(s);
    for (int qn = 0; qn < n_queries; qn++) {
        rq q;
        if (sweep_mode)
            sweep_query(&q, qn, rows, n_rows);
        else
            make_query(&q, n_names, rows, n_rows);
        char qs[2048];
        query_json(&q, qs, sizeof qs);
        char *out = NULL;
        int rc = sdb_query_json(s, 0, qs, strlen(qs), &out, err, sizeof err);
        cr_assert_eq(rc, SDB_OK, "query failed: %s\n%s", err, qs);
        check(&q, out, rows, n_rows, qs);
        if (sdb__par_parts) {
            /* Cut into parts, merged in part order: the same bits again,
             * whichever thread ran which part. */
            char *again = NULL;
            cr_assert_eq(sdb_query_json(s, 0, qs, strlen(qs), &again, err, sizeof err), SDB_OK);
            cr_assert_str_eq(again, out, "%s", qs);
            free(again);
        }
        if (qn == 0) {
            /* Reopen: the same answer from the same bytes on disk. */
            sdb_store_close(s);
            cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
            char *again = NULL;
            cr_assert_eq(sdb_query_json(s, 0, qs, strlen(qs), &again, err, sizeof err), SDB_OK);
            /* as_of is the same watermark, so the whole text matches. */
            cr_assert_str_eq(again, out);
            free(again);
        }
        free(out);
    }
    if (deleted) {
        /* The purge rewrites those chunks and their attrs values. */
        cr_assert_eq(sdb_store_fold(s, BASE_MS + 30 * DAY, NULL), SDB_OK);
        attrs_checked(s);
    }
    sdb_batch_free(b);
    sdb_store_close(s);
    free(rows);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void run_round(int round, int n_queries)
{
    n_trace_ids = 40;
    run_round_sized(round, n_queries, 0);
}

Test(engine_diff, random_scores_and_queries_match_the_reference, .timeout = SDB_BOUND_S(240))
{
    const char *kernels = getenv("SDB_KERNELS");
    (void)kernels;
    for (int round = 0; round < 250; round++) run_round(round, 40);
}

/* Every filter kind x every group-by kind x every output, on stores of
 * both bucket widths, with dimension columns of every width, and with a
 * handful of rows (empty and single-row groups). */
Test(engine_diff, the_whole_query_matrix_matches_the_reference, .timeout = SDB_BOUND_S(240))
{
    /* 1, 3: plain; 2: 2-byte prompt versions; 5: no model; 7: 4-byte
     * models; 11: 4-byte prompt versions; 14, 21: a few rows. */
    static const int rounds[] = {1, 2, 3, 5, 7, 11, 14, 21};
    sweep_mode = 1;
    n_trace_ids = 40;
    for (int i = 0; i < 8; i++) run_round_sized(rounds[i], N_SWEEP, rounds[i] % 7 ? 1500 : 0);
    sweep_mode = 0;
}

/* The matrix again on segments of thousands of rows: several 1024-row
 * batches per segment (selection words, direct group codes, traces and
 * percentile values appended a batch at a time, agg kernels on partial
 * batches), groups of hundreds of values (bucketed percentiles), with
 * plain, padded (300: still direct codes for two keys, not for three)
 * and 65600-entry dictionaries. */
Test(engine_diff, the_query_matrix_on_multi_batch_segments_matches_the_reference, .timeout = SDB_BOUND_S(240))
{
    static const int rounds[] = {1, 2, 17};
    sweep_mode = 1;
    n_trace_ids = 400;
    chunk_rows_override = 2500;
    for (int i = 0; i < 3; i++) {
        /* Round 17: a free histogram's pass 0 keeps at most 3000 rows for
         * pass 1, so the segments after them are walked again. */
        sdb__hcache_max_rows = rounds[i] == 17 ? 3000 : SDB__HCACHE_MAX_ROWS;
        run_round_sized(rounds[i], N_SWEEP, 8000);
    }
    sdb__hcache_max_rows = SDB__HCACHE_MAX_ROWS;
    chunk_rows_override = 0;
    sweep_mode = 0;
}

/* The matrix at each threshold of the bitmap path's dense local slots
 * (exec.c: a key of n ids has n local values, model ids pad + 1..pad + 3
 * so pad + 4 of them, prompt versions pad + 5): a model group-by of 8
 * local slots (GPASS_MAX: one masked pass each) and of 9 (the scatter,
 * slot_scatter and slot_bins); model x prompt_version of 4096 (DENSE_MAX,
 * the scatter over 4096 local slots) and of 4160 (the walk by group
 * code); model x source x a daily series between them. Small rounds
 * (round 14: a few rows) give empty and single-row groups. */
Test(engine_diff, the_query_matrix_at_the_dense_slot_thresholds_matches_the_reference, .timeout = SDB_BOUND_S(240))
{
    static const int pads[][3] = {{4, 0, 3}, {5, 0, 1}, {60, 59, 2}, {60, 60, 3}, {5, 0, 14}};
    sweep_mode = 1;
    n_trace_ids = 40;
    for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++) {
        pad_model = pads[i][0];
        pad_prompt = pads[i][1];
        /* Rounds 1 and 2: a free histogram's dense segments of any size
         * are selected again in pass 1 rather than kept. */
        sdb__hdrop_min_rows = pads[i][2] < 3 ? 0 : SDB__HDROP_MIN_ROWS;
        run_round_sized(pads[i][2], N_SWEEP, pads[i][2] % 7 ? 3000 : 0);
    }
    sdb__hdrop_min_rows = SDB__HDROP_MIN_ROWS;
    pad_model = pad_prompt = -1;
    sweep_mode = 0;
}

/* Thousands of rows and trace ids: the selected trace hashes of a group
 * run past the distinct counter's unpartitioned size (1024), with few
 * repeats (20000 ids) or many (1500 ids). */
Test(engine_diff, large_trace_sets_match_the_reference, .timeout = SDB_BOUND_S(240))
{
    static const int ids[] = {20000, 1500, 20000, 1500};
    for (int round = 0; round < 4; round++) {
        n_trace_ids = ids[round];
        run_round_sized(1001 + round, 30, 12000);
    }
    n_trace_ids = 40;
}

/* The matrix with every plan of two or more segments cut into three parts
 * (sdb__par_parts: run by the pool's helpers where the machine has them,
 * else by the caller in turn), each into its own group table, merged by
 * sdb__gtab_merge: every accumulator kind (slots, fixed and free
 * histograms, label counts, trace sets, percentile values) crosses a
 * merge, and each answer is checked against the reference and against
 * itself run again. */
Test(engine_diff, the_query_matrix_split_into_parts_matches_the_reference, .timeout = SDB_BOUND_S(240))
{
    static const int rounds[] = {1, 5, 14};
    sdb__par_min_rows = 1;
    sdb__par_parts = 3;
    sweep_mode = 1;
    n_trace_ids = 40;
    for (int i = 0; i < 3; i++) run_round_sized(rounds[i], N_SWEEP, rounds[i] % 7 ? 1500 : 0);
    n_trace_ids = 400;
    chunk_rows_override = 2500;
    run_round_sized(2, N_SWEEP, 8000);
    sdb__hcache_max_rows = 2000; /* each part keeps some rows, walks the rest again */
    run_round_sized(17, N_SWEEP, 8000);
    sdb__hcache_max_rows = SDB__HCACHE_MAX_ROWS;
    chunk_rows_override = 0;
    sweep_mode = 0;
    n_trace_ids = 40;
    for (int round = 300; round < 340; round++) run_round(round, 40);
    /* Tag and property plans run in parts too; with the attrs columns off
     * every one reads row records, so the parts take turns in row_store
     * (its block cache is the txn's) while the helpers run. */
    sdb__attrs_off = 1;
    for (int round = 340; round < 352; round++) run_round(round, 40);
    sdb__attrs_off = 0;
    sdb__par_parts = 0;
    sdb__par_min_rows = SDB__PAR_MIN_ROWS;
}

/* Trace sets past every threshold of the distinct counter inside real
 * queries: partitions of 2 hashes (so a set of 2048 fills all 2^10 of
 * them and a few dozen hashes already partition), sets compacted every 60
 * appends mid-scan, plans cut into three parts whose sets merge (the
 * same trace ids recur across segments and parts) and, with
 * sdb__par_min_rows at 1, every set counted by the parallel path. A
 * dropped partition or a merge that skips a part's hashes fails it. */
Test(engine_diff, trace_sets_past_every_partition_and_compaction_match_the_reference, .timeout = SDB_BOUND_S(240))
{
    static const int ids[] = {20000, 1500, 300};
    sdb__par_max_load = 0; /* helpers (and the chunked count) whatever the load */
    sdb__distinct_part_rows = 2;
    sdb__traceset_slack = 60;
    for (int round = 0; round < 3; round++) {
        n_trace_ids = ids[round];
        sdb__par_min_rows = round ? 1 : SDB__PAR_MIN_ROWS;
        sdb__par_parts = round ? 3 : 0;
        run_round_sized(1101 + round, 30, 12000);
    }
    /* Sets of trace numbers turned into bitmaps after 40 appends (the
     * first compaction): a group's bitmap and its buffer across segments,
     * parts whose bitmaps merge by OR into a list or a bitmap, sets that
     * stay lists (few rows) beside ones that turn. */
    sdb__traceset_dense_at = 40;
    for (int round = 0; round < 4; round++) {
        n_trace_ids = ids[round % 3];
        sdb__par_min_rows = round % 2 ? 1 : SDB__PAR_MIN_ROWS;
        sdb__par_parts = round % 2 ? 3 : 0;
        run_round_sized(1201 + round, 30, 12000);
    }
    sdb__traceset_dense_at = SDB__TRACESET_DENSE_AT;
    sdb__par_parts = 0;
    sdb__par_min_rows = SDB__PAR_MIN_ROWS;
    sdb__distinct_part_rows = SDB__DISTINCT_PART_ROWS;
    sdb__traceset_slack = SDB__TRACESET_SLACK;
    n_trace_ids = 40;
}

/* sdb__par_for's items each run once; with as many queries running as the
 * pool has threads (the HTTP server's threads all busy), none goes to a
 * helper, so a busy server computes on no more threads than it has. */
typedef struct par_rec {
    pthread_t who[64];
    int runs[64];
} par_rec;

static void par_item(void *arg, uint32_t i)
{
    par_rec *r = arg;
    r->who[i] = pthread_self();
    r->runs[i]++;
    usleep(2000); /* long enough that an idle helper starts */
}

Test(engine_diff, par_for_runs_each_item_once_and_no_helper_while_cpus_are_held)
{
    sdb__par_max_load = 0; /* whatever else the machine runs */
    for (int busy = 0; busy < 2; busy++) {
        par_rec r;
        memset(&r, 0, sizeof r);
        atomic_store(&sdb__queries_running, busy ? 64u : 1u);
        sdb__par_for(64, par_item, &r, true);
        int on_caller = 0;
        for (int i = 0; i < 64; i++) {
            cr_assert_eq(r.runs[i], 1, "busy %d: item %d ran %d times", busy, i, r.runs[i]);
            on_caller += pthread_equal(r.who[i], pthread_self()) != 0;
        }
        if (busy) cr_assert_eq(on_caller, 64, "a helper ran %d items while the CPUs were held", 64 - on_caller);
        else if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
            cr_assert_lt(on_caller, 64, "an idle helper ran none of 64 items of 2 ms");
    }
    atomic_store(&sdb__queries_running, 0u);
}

/* ------------------------------------------- the distinct counter alone */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort v[0..n) and drop zeros and repeats; returns the new length. */
static size_t sorted_distinct(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0 && (k == 0 || v[k - 1] != v[i])) v[k++] = v[i];
    return k;
}

/* The inverse of query.c's multiplier modulo 2^64 (Newton's iteration),
 * to craft hashes that all land in one partition. */
static uint64_t mix_inverse(void)
{
    const uint64_t c = 0x9E3779B97F4A7C15ull;
    uint64_t x = c;
    for (int i = 0; i < 6; i++) x *= 2 - c * x;
    cr_assert_eq(x * c, 1u);
    return x;
}

/* n values: fresh random ones, with a share `rep` (per mille) repeating an
 * earlier value and a few zeros (no trace); `one_part` fixes the top 7
 * bits of the mixed hash, so that with 2^7 partitions (n = 100000) every
 * value lands in the same one, and the bits below stay random. */
static void make_hashes(uint64_t *v, size_t n, int rep, int one_part)
{
    uint64_t inv = mix_inverse();
    for (size_t i = 0; i < n; i++) {
        int r = ri(1000);
        if (i > 0 && r < rep)
            v[i] = v[(size_t)(rnd() % i)];
        else if (r == 999)
            v[i] = 0;
        else
            v[i] = one_part ? ((0x55ull << 57) | (rnd() >> 7)) * inv : rnd();
    }
}

static void check_distinct(size_t n, int rep, int one_part)
{
    uint64_t *v = malloc((n + 1) * sizeof *v), *want = malloc((n + 1) * sizeof *want);
    cr_assert(v && want);
    make_hashes(v, n, rep, one_part);
    memcpy(want, v, n * sizeof *v);
    size_t nw = sorted_distinct(want, n);
    uint64_t *orig = malloc((n + 1) * sizeof *orig);
    cr_assert(orig);
    memcpy(orig, v, n * sizeof *v);
    /* Serial, then cut into chunks and partition runs for the pool. */
    for (int par = 0; par < 2; par++) {
        size_t k = 12345;
        memcpy(v, orig, n * sizeof *v);
        cr_assert_eq(sdb__distinct_u64_par(v, n, &k, par), SDB_OK);
        cr_assert_eq(k, nw, "n=%zu rep=%d one_part=%d par=%d: got %zu distinct, want %zu", n, rep,
                     one_part, par, k, nw);
        /* The distinct values themselves, each once. */
        qsort(v, k, sizeof *v, cmp_u64);
        cr_assert(memcmp(v, want, k * sizeof *v) == 0, "n=%zu rep=%d par=%d: other values", n, rep,
                  par);
    }
    free(orig);
    free(v);
    free(want);
}

Test(engine_diff, distinct_counter_matches_sorting)
{
    rng = 0x5DEECE66Dull;
    sdb__par_max_load = 0; /* the chunked layout whatever else the machine runs */
    static const size_t sizes[] = {0, 1, 2, 15, 16, 17, 1023, 1024, 1025, 2049, 5000, 70001};
    static const int reps[] = {0, 500, 990};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < 3; j++) check_distinct(sizes[i], reps[j], 0);
    /* All 2^10 partitions, repeats across partitions. */
    check_distinct(600000, 300, 0);
    /* Every value in one partition: its table doubles twice, mid-partition. */
    check_distinct(100000, 0, 1);
    check_distinct(100000, 500, 1);
}

/* A set of small numbers (trace numbers) turns into a bitmap at its
 * first compaction and stays exact: appends through room and add, the
 * value 0 (no trace) never counted, values past the bitmap's bound kept
 * in its buffer, and two sets merged by OR plus the other's buffer. */
Test(engine_diff, traceset_of_numbers_turns_dense_and_stays_exact)
{
    rng = 0x9E3779B97F4A7C15ull;
    enum { TOTAL = 40000 };
    uint64_t *seen = malloc(2 * TOTAL * sizeof *seen), *want = malloc(2 * TOTAL * sizeof *want);
    cr_assert(seen && want);
    sdb__traceset a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    sdb__traceset_dense_at = 64;
    size_t n_seen = 0;
    for (size_t step = 0; step < TOTAL; step++) {
        sdb__traceset *s = step % 3 ? &a : &b;
        uint64_t x = 1 + rnd() % 20000;
        if (ri(50) == 0) x = 0;
        /* Far past any bound, once dense (a list with one turns dense
         * only when a bitmap to it would be no larger): kept. */
        if (step > 2000 && ri(200) == 0) x = (1ull << 40) + ri(5);
        if (ri(2)) {
            uint64_t *o = sdb__traceset_room(s, 1);
            cr_assert_not_null(o);
            *o = x;
            s->n++;
        } else {
            cr_assert_eq(sdb__traceset_add(s, x), SDB_OK);
        }
        seen[n_seen++] = x;
        if (s == &a && ri(3000) == 0) {
            /* a alone: b's values are not in it */
            size_t m = 0;
            for (size_t i = 0; i < n_seen; i++)
                if (i % 3) want[m++] = seen[i];
            uint64_t got = 0;
            cr_assert_eq(sdb__traceset_count(&a, &got, false), SDB_OK);
            cr_assert_eq(got, sorted_distinct(want, m), "a after %zu", n_seen);
        }
    }
    cr_assert_not_null(a.bits, "numbers turn dense");
    cr_assert_not_null(b.bits);
    cr_assert_leq(a.words, (20001 / 64 + 1) * 9 / 8, "the bitmap covers the numbers, no more: %zu", a.words);
    /* a OR b, then b's buffer appended: the union. */
    cr_assert_eq(sdb__traceset_or(&a, &b), SDB_OK);
    uint64_t *o = sdb__traceset_room(&a, b.n);
    cr_assert_not_null(o);
    memcpy(o, b.v, b.n * sizeof *o);
    a.n += b.n;
    memcpy(want, seen, n_seen * sizeof *want);
    uint64_t got = 0;
    cr_assert_eq(sdb__traceset_count(&a, &got, false), SDB_OK);
    cr_assert_eq(got, sorted_distinct(want, n_seen));
    /* A list merged into by a dense set becomes dense. */
    sdb__traceset c;
    memset(&c, 0, sizeof c);
    cr_assert_eq(sdb__traceset_add(&c, 1ull << 50), SDB_OK);
    cr_assert_eq(sdb__traceset_add(&c, 7), SDB_OK);
    cr_assert_eq(sdb__traceset_count(&b, &got, false), SDB_OK); /* drained: its buffer only the kept */
    cr_assert_eq(sdb__traceset_or(&c, &b), SDB_OK);
    cr_assert_not_null(c.bits);
    o = sdb__traceset_room(&c, b.n);
    cr_assert_not_null(o);
    memcpy(o, b.v, b.n * sizeof *o);
    c.n += b.n;
    uint64_t got_c = 0;
    cr_assert_eq(sdb__traceset_count(&c, &got_c, false), SDB_OK);
    size_t m = 0;
    for (size_t i = 0; i < n_seen; i++)
        if (i % 3 == 0) want[m++] = seen[i];
    want[m++] = 1ull << 50;
    want[m++] = 7;
    cr_assert_eq(got_c, sorted_distinct(want, m));
    sdb__traceset_dense_at = SDB__TRACESET_DENSE_AT;
    sdb__traceset_free(&a);
    sdb__traceset_free(&b);
    sdb__traceset_free(&c);
    cr_assert_null(a.bits);
    free(seen);
    free(want);
}

Test(engine_diff, traceset_compacts_and_stays_exact)
{
    rng = 0x2545F4914F6CDD1Dull;
    size_t pool_n = 3000, total = 60000, slack = 700;
    uint64_t *pool = malloc(pool_n * sizeof *pool), *seen = malloc(total * sizeof *seen);
    cr_assert(pool && seen);
    for (size_t i = 0; i < pool_n; i++) pool[i] = rnd() | 1;
    sdb__traceset s;
    memset(&s, 0, sizeof s);
    s.slack = slack;
    size_t n_seen = 0, checks = 0;
    while (n_seen < total) {
        /* A draw from a pool that grows: the distinct count keeps rising. */
        size_t live = pool_n * (n_seen + 1) / total + 1;
        if (ri(2)) {
            size_t k = 1 + (size_t)ri(400);
            if (k > total - n_seen) k = total - n_seen;
            uint64_t *out = sdb__traceset_room(&s, k);
            cr_assert_not_null(out);
            for (size_t i = 0; i < k; i++) out[i] = seen[n_seen++] = pool[rnd() % live];
            s.n += k;
        } else {
            uint64_t h = pool[rnd() % live];
            seen[n_seen++] = h;
            cr_assert_eq(sdb__traceset_add(&s, h), SDB_OK);
        }
        /* Memory follows the distinct count, not the rows appended. */
        cr_assert(s.n <= 2 * live + slack + 400, "n %zu with at most %zu distinct", s.n, live);
        if (ri(20) == 0 || n_seen == total) {
            uint64_t *want = malloc(n_seen * sizeof *want);
            memcpy(want, seen, n_seen * sizeof *want);
            size_t nw = sorted_distinct(want, n_seen);
            uint64_t got = 0;
            cr_assert_eq(sdb__traceset_count(&s, &got, ri(2)), SDB_OK);
            cr_assert_eq(got, nw, "after %zu appends: got %llu want %zu", n_seen,
                         (unsigned long long)got, nw);
            free(want);
            checks++;
        }
    }
    cr_assert(checks > 10);
    sdb__traceset_free(&s);
    cr_assert_null(s.v);
    free(pool);
    free(seen);
}

/* ------------------------------------------------------- cost budget */

/* A store of n scores of `users` users, one name, spread one a minute
 * apart over `span_min` minutes (issue 7: 200 scores of 100 users over
 * 100k minutes grouped by user and minute took 1.6 GiB and 5-8 s). */
static sdb_store *budget_store(char *dir, const sdb_options *o, int n, int users, long long span_min)
{
    cr_assert_not_null(mkdtemp(dir));
    sdb_store *s;
    char err[512];
    cr_assert_eq(sdb_store_open(dir, o, &s, err, sizeof err), SDB_OK, "%s", err);
    sdb_batch *b;
    sdb_batch_new(&b);
    char buf[512];
    for (int i = 0; i < n; i++) {
        long long ts = BASE_MS + (span_min * i / (n > 1 ? n - 1 : 1)) * 60000ll;
        int len = snprintf(buf, sizeof buf,
                           "{\"name\":\"q\",\"value\":%g,\"timestamp\":%lld,\"trace_id\":\"t%d\","
                           "\"user_id\":\"u%d\",\"tags\":[\"x\"]}",
                           (double)(i % 7) / 7, ts, i, i % users);
        cr_assert_eq(sdb_batch_add_json(b, buf, (size_t)len, err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, BASE_MS + 200 * 1440 * 60000ll), SDB_OK);
    cr_assert_eq(sdb_store_fold(s, BASE_MS + 300 * 1440 * 60000ll, NULL), SDB_OK);
    sdb_batch_free(b);
    return s;
}

static void budget_drop(sdb_store *s, const char *dir)
{
    sdb_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static int run_q(sdb_store *s, const char *q, char *err, size_t errlen)
{
    char *out = NULL;
    err[0] = 0;
    int rc = sdb_query_json(s, 0, q, strlen(q), &out, err, errlen);
    free(out);
    return rc;
}

Test(engine_diff, budget_refuses_groups_times_series_points_before_any_work)
{
    char dir[] = "/tmp/sdb_budget_XXXXXX";
    sdb_options o = {.no_sync = 1};
    sdb_store *s = budget_store(dir, &o, 200, 100, 99000);
    char err[512];
    int rc = run_q(s, "{\"group_by\":[\"user_id\"],\"interval\":\"1m\"}", err, sizeof err);
    cr_assert_eq(rc, SDB_EINVAL, "the issue's query must be refused, got %d", rc);
    cr_assert(strstr(err, "series points") && strstr(err, "user_id") && strstr(err, "4000000"),
              "the message names the product and the limit: %s", err);
    /* The same grouping at a day per point fits, and is answered. */
    cr_assert_eq(run_q(s, "{\"group_by\":[\"user_id\"],\"interval\":\"1d\"}", err, sizeof err),
                 SDB_OK, "%s", err);
    /* group_by x a 10,000-bin histogram over many users: the bins. */
    rc = run_q(s, "{\"group_by\":[\"user_id\",\"name\"],\"histogram\":{\"bins\":10000}}", err, sizeof err);
    cr_assert_eq(rc, SDB_OK, "100 users x 10000 bins = 1M cells fits: %s", err);
    budget_drop(s, dir);

    char dir2[] = "/tmp/sdb_budget_XXXXXX";
    s = budget_store(dir2, &o, 2000, 2000, 1000);
    rc = run_q(s, "{\"group_by\":[\"user_id\"],\"histogram\":{\"bins\":10000}}", err, sizeof err);
    cr_assert_eq(rc, SDB_EINVAL);
    cr_assert(strstr(err, "histogram bins") && strstr(err, "query_max_cells"), "%s", err);
    budget_drop(s, dir2);
}

Test(engine_diff, budget_limits_are_settable_and_caps_stop_a_running_query)
{
    char dir[] = "/tmp/sdb_budget_XXXXXX";
    sdb_options o = {.no_sync = 1, .query_max_cells = 50};
    sdb_store *s = budget_store(dir, &o, 400, 100, 1000);
    char err[512];
    /* 100 users x 1 point is over a limit of 50. */
    int rc = run_q(s, "{\"group_by\":[\"user_id\"]}", err, sizeof err);
    cr_assert_eq(rc, SDB_EINVAL);
    cr_assert(strstr(err, "over the limit of 50"), "%s", err);
    cr_assert_eq(run_q(s, "{\"stats\":[\"count\"]}", err, sizeof err), SDB_OK, "%s", err);
    sdb_store_close(s);

    /* The memory cap: values kept for percentiles of 400 rows pass 1 KiB. */
    sdb_options m = {.no_sync = 1, .query_max_mem_bytes = 1024};
    cr_assert_eq(sdb_store_open(dir, &m, &s, err, sizeof err), SDB_OK, "%s", err);
    rc = run_q(s, "{\"percentiles\":[50],\"group_by\":[\"user_id\"]}", err, sizeof err);
    cr_assert_eq(rc, SDB_EINVAL);
    cr_assert(strstr(err, "query_max_mem_bytes"), "%s", err);
    budget_drop(s, dir);

    /* The time cap: 1 ms cannot read 20,000 rows' records (tags); the
     * query stops with SDB_EBUSY and says why. (The tag columns answer it
     * in well under a millisecond: the records are what a chunk over the
     * attrs bounds reads, so this turns the columns off.) */
    sdb__attrs_off = 1;
    char dir2[] = "/tmp/sdb_budget_XXXXXX";
    sdb_options t = {.no_sync = 1, .query_max_ms = 1};
    s = budget_store(dir2, &t, 20000, 100, 1000);
    int busy = 0;
    for (int i = 0; i < 20 && !busy; i++) {
        rc = run_q(s, "{\"where\":{\"tags\":[\"x\"]},\"group_by\":[\"user_id\"],\"percentiles\":[5],"
                      "\"interval\":\"1h\"}", err, sizeof err);
        cr_assert(rc == SDB_OK || rc == SDB_EBUSY, "rc %d: %s", rc, err);
        busy = rc == SDB_EBUSY;
    }
    cr_assert(busy, "a 1 ms cap must stop one of 20 queries");
    cr_assert(strstr(err, "query_max_ms"), "%s", err);
    budget_drop(s, dir2);
}

/* ------------------------------------------------- number rendering */

/* json.c prints numbers without printf in [1e-3, 1e15); the text must be
 * what the shortest of %.15g, %.16g and %.17g that reads back gives. */
static void printf_shortest(double v, char *tmp, size_t n)
{
    if (v == 0) v = 0;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, n, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
}

static void check_num(double v)
{
    char got[64], want[64];
    cr_assert(sdb__j_num_text(v, got, 48));
    printf_shortest(v, want, sizeof want);
    if (strcmp(got, want) != 0 && fabs(v) < 1e15 && v == (double)(long long)v) {
        /* integers print as integers, which %.15g also does below 1e15 */
        snprintf(want, sizeof want, "%lld", (long long)v);
    }
    cr_assert_str_eq(got, want, "%.17g", v);
    cr_assert(strtod(got, NULL) == v, "%s does not read back as %.17g", got, v);
    /* sdb__j_num writes straight into the answer's buffer: the same text,
     * also after a buffer grows from an odd length. */
    static sdb__buf b;
    b.len = 0;
    if (v > 0.5) sdb__buf_add(&b, "x", 1);
    size_t at = b.len;
    sdb__j_num(&b, v);
    cr_assert_eq(b.len - at, strlen(want), "%.17g", v);
    cr_assert(memcmp(b.p + at, want, b.len - at) == 0, "%.17g: %.*s", v, (int)(b.len - at),
              b.p + at);
}

Test(engine_diff, numbers_print_as_the_shortest_printf_text_that_reads_back)
{
    static const double fixed[] = {0.1, 0.2, 0.3, 0.15000000000000002, 1e-3, 0.001000000000000001,
                                   999999999999999.9, 1e15 - 0.125, 0.5, 0.25, 1.5, 2.5,
                                   0.049999999999999996, 0.95, 1.0000000000000002,
                                   0.9999999999999999, 123456.78901234567, 0.0625,
                                   4503599627370496.5, 9007199254740993.0, 1e-4, 12.34,
                                   -0.1, -2.5e-3, 5e-324, 1e300, -1e300};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_num(fixed[i]);
    for (int i = 0; i <= 10000; i++) check_num(0.05 * i); /* histogram edges */
    /* The printer's first guess at the decimal exponent comes from the
     * binary one: every power of two, and both neighbours of every power
     * of ten, across its range and past its ends. */
    for (int e = -1074; e <= 1023; e++) {
        double v = ldexp(1, e);
        check_num(v);
        check_num(nextafter(v, 0));
        check_num(nextafter(v, INFINITY));
    }
    for (int e = -6; e <= 18; e++) {
        double v = pow(10, e);
        for (int k = 0; k < 4; k++) {
            check_num(v);
            check_num(-v);
            v = nextafter(v, INFINITY);
        }
        v = pow(10, e);
        for (int k = 0; k < 4; k++) check_num(v = nextafter(v, 0));
    }
    static const double ints[] = {1e15 - 1, 1e15, 1e15 + 2, 9007199254740992.0, 4294967296.0,
                                  -1e15 + 1, -123456789012345.0};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) check_num(ints[i]);
    uint64_t r = 12345;
    for (int i = 0; i < 300000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        double v;
        switch (i % 5) {
        case 0: v = (double)(r >> 11) / 9007199254740992.0; break;        /* [0, 1) */
        case 1: v = ldexp((double)(r >> 11), (int)(r % 100) - 80); break; /* wide */
        case 2: { uint64_t bits = r & 0x7FEFFFFFFFFFFFFFull; memcpy(&v, &bits, 8); break; }
        case 3: v = (double)(r % 1000000) / 1000.0 + 1e-9 * (double)(r % 7); break;
        default: v = (double)(r >> 11) / pow(10, (double)(r % 23)); break; /* decimals */
        }
        if (r & 1) v = -v;
        check_num(v);
    }
}

/* Percentiles of many values go through buckets; they must equal the
 * quickselect ones exactly, whatever the distribution. */
Test(engine_diff, bucketed_percentiles_equal_quickselect_on_every_distribution)
{
    /* Eleven percentiles (more intervals than the sample path takes: the
     * buckets), and the dashboards' three, which it takes. */
    static const double P11[] = {0, 0.1, 1, 25, 50, 50, 90, 99, 99.9, 100, 33.333};
    static const double P3[] = {99, 50, 90};
    uint64_t r = 99;
    /* n crosses 256 (buckets), 8192 (ranks_by_buckets' kept bucket ids
     * end: past it each value's bucket is computed again in the copy
     * pass) and 32768 (the sampled select). */
    for (int ps = 0; ps < 2; ps++)
    for (int mode = 0; mode < 16; mode++)
        for (size_t n = 1; n < 100000;
             n = n < 2000 ? n * 3 + 1 : n < 9000 ? 9000 : n < 20000 ? 20000 : n < 32768 ? 32768 : n + 20011) {
            const double *P = ps ? P3 : P11;
            const uint32_t np = ps ? 3 : 11;
            double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
            /* aggregate.c's sample for lists of 32768 and more: blocks of
             * 32 values, n / 512 of them (at most 256) spread evenly.
             * Modes 14 and 15 put other values there than elsewhere, so
             * that its intervals miss the ranks or overflow with values. */
            size_t nbl = n / 512 < 256 ? n / 512 : 256;
            size_t sp = nbl > 1 ? (n - 32) / (nbl - 1) : n + 1;
            for (size_t i = 0; i < n; i++) {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                double u = (double)(r >> 11) / 9007199254740992.0;
                switch (mode) {
                case 0: a[i] = u; break;
                case 1: a[i] = (double)i; break;                  /* sorted */
                case 2: a[i] = floor(u * 100) / 100; break;       /* few distinct */
                case 3: a[i] = 0.5; break;                        /* all equal */
                case 4: a[i] = (u - 0.5) * 1e12; break;           /* wide, negative */
                case 5: a[i] = i % 1000 == 0 ? 1e300 : u; break;  /* one far outlier */
                case 6: a[i] = (double)(n - i) * (i % 2 ? 1 : -1); break;
                /* Zeros of both signs among negatives and positives
                 * (`<` holds -0.0 equal to 0.0, so do the keys). */
                case 7: a[i] = r % 3 == 0 ? 0.0 : r % 3 == 1 ? -0.0 : (u - 0.5) * 4; break;
                case 8: a[i] = r % 10 < 7 ? (r & 16 ? 1.0 : 0.0) : u; break; /* clamped piles */
                case 9: a[i] = 0.5 + u * 1e-12; break;  /* all in one top-bits bucket */
                case 10: a[i] = (double)(r % 5) / 4; break; /* grades: decimal codes */
                case 11: a[i] = (double)((int64_t)(r % 2001) - 1000); break; /* integers */
                case 12: a[i] = (u - 0.5) * 1e-310; break; /* subnormals */
                case 13: a[i] = i % 2 ? u : floor(u * 4); break; /* values and heavy ties */
                case 14: a[i] = i % sp < 32 ? 1 + u : u; break;  /* a sample above the rest */
                default: /* a crowd at the median that the sample misses */
                    a[i] = i % sp < 32 ? u : i % 3 == 0 ? u * 0.4 : i % 3 == 1 ? 0.5 + u * 1e-9 : 0.6 + u * 0.4;
                    break;
                }
            }
            memcpy(b, a, n * sizeof *a);
            /* The same values as a chain of lists (a parallel run's merge):
             * an empty head is not allowed, pieces of 1 and of a third. */
            sdb__dvec d = {0}, *tail = &d;
            for (size_t at = 0, k = 0; at < n; k++) {
                size_t len = k % 2 ? 1 : n / 3 + 1;
                if (len > n - at) len = n - at;
                sdb__dvec *e = k ? calloc(1, sizeof *e) : &d;
                e->v = malloc(len * sizeof *e->v);
                memcpy(e->v, a + at, len * sizeof *e->v);
                e->n = e->cap = len;
                if (k) tail->more = e;
                tail = e;
                at += len;
            }
            double got[16], want[16], chain[16];
            sdb__percentiles(a, n, P, np, got);
            sdb__percentiles_select(b, n, P, np, want);
            cr_assert_eq(sdb__percentiles_dvec(&d, P, np, chain), SDB_OK);
            for (uint32_t i = 0; i < np; i++) {
                cr_assert(got[i] == want[i], "mode %d n %zu p%g: %.17g, quickselect %.17g", mode,
                          n, P[i], got[i], want[i]);
                cr_assert(chain[i] == want[i], "mode %d n %zu p%g: chain %.17g, quickselect %.17g",
                          mode, n, P[i], chain[i], want[i]);
            }
            free(d.v);
            for (sdb__dvec *e = d.more, *nx; e; e = nx) {
                nx = e->more;
                free(e->v);
                free(e);
            }
            free(a);
            free(b);
        }
}

/* Groups of tens of thousands of values through the whole engine (the
 * sampled select of lists of 32,768 and more, aggregate.c), on one
 * thread and cut into three parts (a chain of lists per group): chunks of
 * f64 values, decimals, integers and booleans mixed in one name, heavy
 * ties (a pile at 1), zeros of both signs, a one-row group and groups the
 * filter empties; each percentile must be the reference's exactly. */
static int cmp_d_total(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

Test(engine_diff, percentiles_of_large_groups_match_sorting, .timeout = SDB_BOUND_S(240))
{
    char dir[] = "/tmp/sdb_pctbig_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {.no_sync = 1, .chunk_rows = 4096, .bucket_ms = 32 * DAY};
    sdb_store *s;
    char err[512], buf[512];
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    enum { N = 120000 };
    static double val[N];
    static int grp[N];
    rng = 0x5eed5eedull;
    sdb_batch *b;
    sdb_batch_new(&b);
    for (int i = 0; i < N; i++) {
        /* model: gpt-4o 2/3, claude 1/3 (both over 32,768 unfiltered), llama one row */
        grp[i] = i == N / 2 ? 2 : ri(3) == 0;
        int kind = (i / 4096) % 5; /* the chunk's values: f64, decimal, integer, boolean, ties */
        double v;
        switch (kind) {
        case 0: v = rf(); break;
        case 1: v = (double)ri(1001) / 1000; break;
        case 2: v = (double)(ri(21) - 10); break;
        case 3: v = ri(2); break;
        default: v = ri(3) == 0 ? 1.0 : ri(2) ? (ri(2) ? 0.0 : -0.0) : rf() - 0.5; break;
        }
        val[i] = v;
        int len = snprintf(buf, sizeof buf,
                           "{\"id\":\"p%d\",\"name\":\"big\",\"value\":%.17g,\"timestamp\":%lld,\"trace_id\":\"t%d\","
                           "\"model\":\"%s\"}",
                           i, v, (long long)(BASE_MS + (long long)i * 1000), i % 50, MODELS[1 + grp[i]]);
        cr_assert_eq(sdb_batch_add_json(b, buf, (size_t)len, err, sizeof err), SDB_OK, "%s: %s", err, buf);
        if (i % 10000 == 9999 || i == N - 1) {
            cr_assert_eq(sdb_store_ingest(s, 0, b, BASE_MS + 20 * DAY + i), SDB_OK);
            sdb_batch_clear(b);
        }
    }
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, BASE_MS + 30 * DAY, NULL), SDB_OK);
    static const char *const PS[] = {"[50,90,99]", "[99,1,50]", "[0,25,50,75,100]"};
    static const double PV[3][5] = {{50, 90, 99}, {99, 1, 50}, {0, 25, 50, 75, 100}};
    static const int PN[3] = {3, 3, 5};
    double *sorted = malloc(N * sizeof *sorted);
    for (int parts = 0; parts < 2; parts++) {
        sdb__par_min_rows = parts ? 1 : SDB__PAR_MIN_ROWS;
        sdb__par_parts = parts ? 3 : 0;
        for (int pi = 0; pi < 3; pi++)
            for (int vf = 0; vf < 3; vf++)
            for (int sh = 0; sh < 4; sh++) {
                /* vf: none, a value filter that keeps some of every chunk
                 * kind, a time range that starts and ends inside chunks;
                 * sh: the default stats (the bitmap path's scatter and
                 * stat kernels), a count only (its walk through write
                 * pointers, lists growing past one array), one model
                 * grouped by model (one local slot), one model and no
                 * group_by (one group packed straight into its list) */
                char qs[384];
                static const char *const VF[3] = {
                    "", "\"where\":{\"value\":{\"gte\":-0.25,\"lte\":0.75}},",
                    "\"from\":1767235600000,\"to\":1767325600000,"};
                if (sh < 2)
                    snprintf(qs, sizeof qs, "{\"name\":\"big\",%s%s\"group_by\":[\"model\"],\"percentiles\":%s}",
                             VF[vf], sh ? "\"stats\":[\"count\"]," : "", PS[pi]);
                else /* the model filter's where carries the value filter */
                    snprintf(qs, sizeof qs, "{\"name\":\"big\",\"stats\":[\"count\"],%s\"where\":{\"model\":[\"gpt-4o\"]%s},%s\"percentiles\":%s}",
                             vf == 2 ? VF[2] : "", vf == 1 ? ",\"value\":{\"gte\":-0.25,\"lte\":0.75}" : "",
                             sh == 2 ? "\"group_by\":[\"model\"]," : "", PS[pi]);
                char *out = NULL;
                cr_assert_eq(sdb_query_json(s, 0, qs, strlen(qs), &out, err, sizeof err), SDB_OK, "%s", err);
                json_error_t je;
                json_t *a = json_loads(out, 0, &je);
                cr_assert_not_null(a, "%s", out);
                json_t *groups = json_object_get(a, "groups");
                size_t gi;
                json_t *g;
                int seen = 0;
                json_array_foreach(groups, gi, g)
                {
                    const char *model = json_string_value(json_object_get(json_object_get(g, "key"), "model"));
                    int want_g = sh == 3 ? 0 : -1;
                    for (int k = 0; k < 3; k++)
                        if (model && !strcmp(model, MODELS[1 + k])) want_g = k;
                    if (sh == 3) model = "(all)";
                    cr_assert(want_g >= 0, "group %s\n%s", model ? model : "(none)", qs);
                    cr_assert(sh < 2 || want_g == 0, "group %s past the model filter\n%s", model, qs);
                    size_t n = 0;
                    for (int i = 0; i < N; i++) {
                        long long t = BASE_MS + (long long)i * 1000;
                        if (grp[i] == want_g && (vf != 1 || (val[i] >= -0.25 && val[i] <= 0.75)) &&
                            (vf != 2 || (t >= 1767235600000ll && t < 1767325600000ll)))
                            sorted[n++] = val[i];
                    }
                    json_t *cnt = json_object_get(g, "count");
                    cr_assert(!cnt || json_integer_value(cnt) == (json_int_t)n, "%s group %s: count %lld, want %zu", qs,
                              model, (long long)json_integer_value(cnt), n);
                    if (n == 0) continue; /* emptied by the filter: no group, or no percentiles */
                    seen++;
                    qsort(sorted, n, sizeof *sorted, cmp_d_total);
                    json_t *p = json_object_get(g, "percentiles");
                    cr_assert(json_is_object(p), "percentiles missing\n%s", qs);
                    for (int k = 0; k < PN[pi]; k++) {
                        double pos = PV[pi][k] / 100.0 * (double)(n - 1);
                        size_t lo = (size_t)floor(pos);
                        double fr = pos - (double)lo;
                        double x = sorted[lo], y = lo + 1 < n ? sorted[lo + 1] : x;
                        double want = fr == 0 ? x : x + (y - x) * fr;
                        char key[16];
                        snprintf(key, sizeof key, "%g", PV[pi][k]);
                        double got = json_number_value(json_object_get(p, key));
                        cr_assert(got == want, "%s group %s p%s: %.17g, sorting %.17g (n %zu, parts %d)", qs,
                                  model, key, got, want, n, parts);
                    }
                }
                cr_assert(seen >= (sh >= 2 ? 1 : 2), "%s: %d groups checked", qs, seen);
                json_decref(a);
                free(out);
            }
    }
    sdb__par_parts = 0;
    sdb__par_min_rows = SDB__PAR_MIN_ROWS;
    free(sorted);
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Times print by hand for years 0 to 9999: the same text as the printf
 * form (checked across the range, day and leap edges, and outside it). */
Test(engine_diff, times_print_like_the_printf_form)
{
    static const long long edges[] = {0, -1, 1, 86399999, 86400000, -62167219200000ll,
                                      -62167219200001ll, 253402300799999ll, 253402300800000ll,
                                      951782400000ll, 951868799999ll, 4102444800000ll};
    uint64_t r = 7;
    for (int i = 0; i < 200000; i++) {
        long long ms;
        if (i < (int)(sizeof edges / sizeof edges[0])) {
            ms = edges[i];
        } else {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            ms = (long long)(r % 330000000000000ull) - 70000000000000ll;
        }
        char got[40], want[96];
        sdb_time_format(ms, got);
        long long rem = ms % 86400000;
        if (rem < 0) rem += 86400000;
        long long days = ms / 86400000 - (ms % 86400000 < 0);
        /* civil from days (Hinnant), independently of util.c */
        long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
        y += m <= 2;
        snprintf(want, sizeof want, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", y, m, d,
                 rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000);
        want[31] = 0;
        cr_assert_str_eq(got, want, "ms %lld", ms);
    }
}

/* Replacing folded scores marks their rows dead (tombstones, fold.c) until
 * a later fold rewrites the chunks: in between, every path of the pipeline
 * (headers, per-value pre-aggregates, label counts, kernels, batches) must
 * leave the dead rows out, and the replacements are not folded yet. */
Test(engine_diff, dead_rows_between_a_replacement_and_the_next_fold_are_left_out)
{
    char dir[] = "/tmp/sdb_dead_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {.no_sync = 1, .chunk_rows = 64};
    sdb_store *s;
    char err[512], buf[400];
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    sdb_batch *b;
    sdb_batch_new(&b);
    const int n = 600;
    double sum_live = 0, sum_all = 0;
    long long live = 0, live_pass = 0;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < n; i++) {
            if (round == 1 && i % 5) continue; /* every fifth score replaced */
            double v = round ? 100 + i : (double)(i % 10) / 10;
            const char *label = i % 3 ? "" : "pass";
            int len = label[0]
                ? snprintf(buf, sizeof buf,
                           "{\"id\":\"c%d\",\"name\":\"lab\",\"value\":\"%s\",\"timestamp\":%lld,"
                           "\"trace_id\":\"t%d\",\"model\":\"m%d\"}",
                           i, round ? "fail" : label, BASE_MS + i * 60000ll, i, i % 4)
                : snprintf(buf, sizeof buf,
                           "{\"id\":\"d%d\",\"name\":\"num\",\"value\":%g,\"timestamp\":%lld,"
                           "\"trace_id\":\"t%d\",\"model\":\"m%d\"}",
                           i, v, BASE_MS + i * 60000ll, i, i % 4);
            cr_assert_eq(sdb_batch_add_json(b, buf, (size_t)len, err, sizeof err), SDB_OK, "%s", err);
            if (round == 0 && !label[0]) sum_all += v;
            if (round == 0 && !label[0] && i % 5) {
                sum_live += v;
                live++;
            }
            if (round == 0 && label[0] && i % 5) live_pass++;
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, BASE_MS + 20 * DAY), SDB_OK);
        sdb_batch_clear(b);
        if (round == 0) cr_assert_eq(sdb_store_fold(s, BASE_MS + 30 * DAY, NULL), SDB_OK);
    }
    (void)sum_all;
    static const char *const qs[] = {
        "{\"name\":\"num\",\"stats\":[\"count\",\"sum\"]}",                         /* headers */
        "{\"name\":\"num\",\"group_by\":[\"model\"],\"stats\":[\"count\",\"sum\"]}", /* pre-aggregates */
        "{\"name\":\"num\",\"where\":{\"value\":{\"lt\":50}},\"stats\":[\"count\",\"sum\"]}",
        "{\"name\":\"num\",\"where\":{\"model\":[\"m0\",\"m1\",\"m2\",\"m3\"]},\"stats\":[\"count\",\"sum\"],\"percentiles\":[50]}",
        "{\"name\":\"num\",\"stats\":[\"count\",\"sum\",\"traces\"],\"histogram\":{\"bins\":4}}",
    };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        char *out = NULL;
        cr_assert_eq(sdb_query_json(s, 0, qs[k], strlen(qs[k]), &out, err, sizeof err), SDB_OK, "%s", err);
        json_t *a = json_loads(out, 0, NULL), *gs = json_object_get(a, "groups");
        long long cnt = 0;
        double sum = 0;
        for (size_t gi = 0; gi < json_array_size(gs); gi++) {
            cnt += json_integer_value(json_object_get(json_array_get(gs, gi), "count"));
            sum += json_number_value(json_object_get(json_array_get(gs, gi), "sum"));
        }
        cr_assert_eq(cnt, live, "%s: count %lld, live rows %lld\n%s", qs[k], cnt, live, out);
        near(sum, sum_live, "sum of live rows", qs[k]);
        json_decref(a);
        free(out);
    }
    const char *cq = "{\"name\":\"lab\"}";
    char *out = NULL;
    cr_assert_eq(sdb_query_json(s, 0, cq, strlen(cq), &out, err, sizeof err), SDB_OK, "%s", err);
    json_t *a = json_loads(out, 0, NULL);
    json_t *g0 = json_array_get(json_object_get(a, "groups"), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(g0, "categories"), "pass")),
                 live_pass, "label counts of live rows only\n%s", out);
    cr_assert_null(json_object_get(json_object_get(g0, "categories"), "fail"), "not folded yet\n%s", out);
    json_decref(a);
    free(out);
    sdb_batch_free(b);
    budget_drop(s, dir);
}
