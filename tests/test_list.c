/* GET /v1/scores's engine call (engine/list.c) against a plain reference:
 * random scores over names, times, types, sources, dimensions, tags and
 * sessions, folded at random moments in small slices into 16-row chunks
 * (so that most rows come through the column path and some stay pending),
 * replaced and deleted at random; then random filter combinations, each
 * listed with a random offset, page by page with random limits and a
 * total, are compared id by id and in order with the reference's live
 * matching scores, newest ingested first; and the same with the scan cap
 * shrunk far below the store for the filters the refs index holds.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "scoredb.h"
#include "xorshift.h"

#define T0 1767225600000ll /* 2026-01-01 */
#define N_EVENTS 4000
#define DAY 86400000ll

static char dir[64];
static sdb_store *s;
static char err[512];
static uint32_t saved_slice;

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_list_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {0};
    o.chunk_rows = 16;
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    saved_slice = sdb__fold_slice;
}

static void teardown(void)
{
    sdb__fold_slice = saved_slice;
    sdb__list_scan_max = 2000000u;
    sdb__list_probe_rows = 256;
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(list, .init = setup, .fini = teardown);

typedef struct ev {
    char id[16];
    int name, type, source, env, tag, session;
    int obs, run, config, queue; /* -1: absent */
    bool traced;
    int trace;
    int64_t ts;
    double value; /* categorical: -1 */
    bool alive;
} ev;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { return xorshift64(&rng); }

static const char *const types[] = {"NUMERIC", "BOOLEAN", "CATEGORICAL"};
static const char *const sources[] = {"API", "EVAL", "ANNOTATION"};

/* One filter combination, as parameters and as a predicate. */
typedef struct flt {
    int name, type, source, env, tag, session; /* -1: none */
    int obs[2], run, config[2], queue[2];       /* any of; -1: none */
    bool has_trace;
    bool from, to;
    int64_t t_from, t_to;
    int vop; /* 0 none, 1 gte+lte, 2 gt, 3 lt, 4 eq, 5 ne */
    double v1, v2;
} flt;

static bool match(const flt *f, const ev *e)
{
    if (!e->alive) return false;
    if (f->name >= 0 && e->name != f->name) return false;
    if (f->type >= 0 && e->type != f->type) return false;
    if (f->source >= 0 && e->source != f->source) return false;
    if (f->env >= 0 && e->env != f->env) return false;
    if (f->tag >= 0 && e->tag != f->tag) return false;
    if (f->session >= 0 && e->session != f->session) return false;
    if (f->obs[0] >= 0 && e->obs != f->obs[0] && e->obs != f->obs[1]) return false;
    if (f->run >= 0 && e->run != f->run) return false;
    if (f->config[0] >= 0 && e->config != f->config[0] && e->config != f->config[1]) return false;
    if (f->queue[0] >= 0 && e->queue != f->queue[0] && e->queue != f->queue[1]) return false;
    if (f->has_trace && !e->traced) return false;
    if (f->from && e->ts < f->t_from) return false;
    if (f->to && e->ts >= f->t_to) return false;
    if (f->vop) {
        if (e->type == 2) return false;
        double v = e->value;
        if (f->vop == 1 && (v < f->v1 || v > f->v2)) return false;
        if (f->vop == 2 && !(v > f->v1)) return false;
        if (f->vop == 3 && !(v < f->v1)) return false;
        if (f->vop == 4 && v != f->v1) return false;
        if (f->vop == 5 && v == f->v1) return false;
    }
    return true;
}

static void check(const ev *e, size_t n, const flt *f)
{
    char b[20][64];
    sdb_param p[24];
    size_t np = 0;
#define P(k, ...) (snprintf(b[np], sizeof b[np], __VA_ARGS__), p[np] = (sdb_param){k, b[np]}, np++)
    if (f->name >= 0) P("name", "n%d", f->name);
    if (f->name >= 0 && rnd() % 4 == 0) P("name", "n%d", f->name); /* twice: still once */
    if (f->type >= 0) P("data_type", "%s", types[f->type]);
    if (f->source >= 0) P("source", "%s", sources[f->source]);
    if (f->env >= 0) P("environment", "e%d", f->env);
    if (f->tag >= 0) P("tag", "g%d", f->tag);
    if (f->session >= 0) P("session_id", "s%d", f->session);
    for (int k = 0; k < 2; k++) {
        if (f->obs[0] >= 0) P("observation_id", "o%d", f->obs[k]);
        if (f->config[0] >= 0) P("config_id", "c%d", f->config[k]);
        if (f->queue[0] >= 0) P("properties.queue_id", "q%d", f->queue[k]);
    }
    if (f->run >= 0) P("dataset_run_id", "r%d", f->run);
    if (f->has_trace) P("has_trace", "true");
    if (f->from) P("from", "%lld", (long long)f->t_from);
    if (f->to) P("to", "%lld", (long long)f->t_to);
    if (f->vop == 1) P("value_gte", "%.17g", f->v1), P("value_lte", "%.17g", f->v2);
    if (f->vop == 2) P("value_gt", "%.17g", f->v1);
    if (f->vop == 3) P("value_lt", "%.17g", f->v1);
    if (f->vop == 4) P("value_eq", "%.17g", f->v1);
    if (f->vop == 5) P("value_ne", "%.17g", f->v1);
#undef P
    size_t want_total = 0;
    for (size_t i = 0; i < n; i++) want_total += match(f, &e[i]);
    /* Mostly the column path at once, now and then after a probe. */
    sdb__list_probe_rows = rnd() % 3 ? 0 : (uint32_t)(rnd() % 300);
    uint64_t offset = rnd() % 4 == 0 ? rnd() % 40 : 0;
    size_t want = n, got = 0, skipped = 0;
    while (want > 0 && skipped < offset) /* the reference's skipped rows */
        if (match(f, &e[--want])) skipped++;
    char cur[32] = "", lim[16], off[16], desc[512] = "";
    for (size_t i = 0; i < np; i++)
        snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "%s=%s&", p[i].key, p[i].value);
    for (int page = 0;; page++) {
        cr_assert_lt(page, 5000);
        uint64_t limit = 1 + rnd() % 9;
        size_t m = np;
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)limit);
        p[m++] = (sdb_param){"limit", lim};
        if (*cur) p[m++] = (sdb_param){"cursor", cur};
        if (page == 0) {
            p[m++] = (sdb_param){"total", "true"};
            snprintf(off, sizeof off, "%llu", (unsigned long long)offset);
            p[m++] = (sdb_param){"offset", off};
        }
        char *out = NULL;
        cr_assert_eq(sdb_scores_list_json(s, 0, p, m, &out, err, sizeof err), SDB_OK, "%s", err);
        json_t *a = json_loads(out, 0, NULL);
        cr_assert_not_null(a);
        free(out);
        if (page == 0) {
            cr_assert_eq(json_integer_value(json_object_get(a, "total")), (json_int_t)want_total,
                         "%s total", desc);
            cr_assert(json_is_true(json_object_get(a, "total_exact")));
        }
        json_t *data = json_object_get(a, "data"), *x;
        size_t i;
        json_array_foreach(data, i, x)
        {
            while (want > 0 && !match(f, &e[want - 1])) want--;
            cr_assert_gt(want, 0, "%s: more rows than the reference", desc);
            want--;
            cr_assert_str_eq(json_string_value(json_object_get(x, "id")), e[want].id,
                             "%s row %zu", desc, got);
            got++;
        }
        const char *nx = json_string_value(json_object_get(a, "next_cursor"));
        if (nx) snprintf(cur, sizeof cur, "%s", nx);
        json_decref(a);
        if (!nx) break;
    }
    while (want > 0 && !match(f, &e[want - 1])) want--;
    cr_assert_eq(want, 0, "%s: the list missed rows (got %zu)", desc, got);
}

static const double vals[] = {0, 0.25, 0.5, 1, 2, -0.0};

static flt blank(void)
{
    flt f;
    memset(&f, 0, sizeof f);
    f.name = f.type = f.source = f.env = f.tag = f.session = f.run = -1;
    f.obs[0] = f.config[0] = f.queue[0] = -1;
    return f;
}

/* One random filter combination; with `keyed`, one that holds a key of
 * the refs index (session, observation, dataset run, config, queue). */
static flt random_filter(bool keyed)
{
    flt f = blank();
    f.has_trace = rnd() % 5 == 0;
    if (rnd() % 2) f.name = (int)(rnd() % 6); /* n5: no such name */
    if (rnd() % 5 == 0) f.type = (int)(rnd() % 3);
    if (rnd() % 4 == 0) f.source = (int)(rnd() % 3);
    if (rnd() % 4 == 0) f.env = (int)(rnd() % 3);
    if (rnd() % 6 == 0) f.tag = (int)(rnd() % 4);
    int key = keyed ? (int)(rnd() % 5) : (int)(rnd() % 16);
    if (key == 0) f.session = (int)(rnd() % 41); /* s40: no such session */
    if (key == 1) f.obs[0] = (int)(rnd() % 300), f.obs[1] = (int)(rnd() % 301);
    if (key == 2) f.run = (int)(rnd() % 101);
    if (key == 3) f.config[0] = (int)(rnd() % 8), f.config[1] = (int)(rnd() % 9);
    if (key == 4) f.queue[0] = (int)(rnd() % 8), f.queue[1] = (int)(rnd() % 9);
    if (rnd() % 3 == 0) f.from = true, f.t_from = T0 - (int64_t)(rnd() % (11 * DAY));
    if (rnd() % 3 == 0) f.to = true, f.t_to = T0 - (int64_t)(rnd() % (11 * DAY));
    if (rnd() % 3 == 0) {
        f.vop = 1 + (int)(rnd() % 5);
        f.v1 = vals[rnd() % 6];
        f.v2 = f.v1 + (double)(rnd() % 3) * 0.5;
    }
    return f;
}

/* The random store and its reference; returns the clock it ended at. */
static int64_t build(ev *e, size_t *out_n)
{
    size_t n = 0;
    sdb__fold_slice = 53;
    int64_t now = T0;
    while (n < N_EVENTS) {
        sdb_batch *b;
        cr_assert_eq(sdb_batch_new(&b), SDB_OK);
        size_t k = 1 + rnd() % 50, first = n;
        for (size_t j = 0; j < k && n < N_EVENTS; j++) {
            ev *x = &e[n];
            memset(x, 0, sizeof *x);
            size_t old = first && rnd() % 12 == 0 ? rnd() % first : n;
            if (old < n && e[old].alive) {
                snprintf(x->id, sizeof x->id, "%s", e[old].id);
                e[old].alive = false;
            } else {
                snprintf(x->id, sizeof x->id, "s%zu", n);
            }
            x->name = (int)(rnd() % 5);
            x->type = x->name == 4 ? 2 : x->name == 3 ? 1 : 0;
            x->source = (int)(rnd() % 3);
            x->env = (int)(rnd() % 3);
            x->tag = (int)(rnd() % 4);
            x->session = (int)(rnd() % 40);
            x->obs = rnd() % 5 ? (int)(rnd() % 300) : -1;
            x->run = rnd() % 2 ? (int)(rnd() % 100) : -1;
            x->config = rnd() % 3 == 0 ? (int)(rnd() % 8) : -1;
            x->queue = rnd() % 4 == 0 ? (int)(rnd() % 8) : -1;
            x->ts = T0 - (int64_t)(rnd() % (10 * DAY));
            x->value = x->type == 1 ? (double)(rnd() % 2) : x->type == 0 ? vals[rnd() % 6] : -1;
            x->alive = true;
            x->traced = rnd() % 4 != 0;
            char js[600], val[32], tr[160] = "", q[64] = "";
            x->trace = (int)(rnd() % 50);
            if (!x->traced) x->obs = -1; /* an observation needs a trace */
            size_t at = 0;
            if (x->traced) at += (size_t)snprintf(tr, sizeof tr, "\"trace_id\":\"t%02d\",", x->trace);
            if (x->obs >= 0) at += (size_t)snprintf(tr + at, sizeof tr - at, "\"observation_id\":\"o%d\",", x->obs);
            if (x->run >= 0) at += (size_t)snprintf(tr + at, sizeof tr - at, "\"dataset_run_id\":\"r%d\",", x->run);
            if (x->config >= 0) snprintf(tr + at, sizeof tr - at, "\"config_id\":\"c%d\",", x->config);
            if (x->queue >= 0) snprintf(q, sizeof q, ",\"properties\":{\"queue_id\":\"q%d\"}", x->queue);
            if (x->type == 2)
                snprintf(val, sizeof val, "\"c%d\"", (int)(rnd() % 3));
            else if (x->type == 1)
                snprintf(val, sizeof val, "%s", x->value ? "true" : "false");
            else
                snprintf(val, sizeof val, "%.17g", x->value);
            snprintf(js, sizeof js, "{%s\"id\":\"%s\",\"name\":\"n%d\",\"value\":%s,\"source\":\"%s\","
                     "\"environment\":\"e%d\",\"tags\":[\"g%d\"],\"session_id\":\"s%d\","
                     "\"timestamp\":%lld%s}", tr, x->id, x->name, val, sources[x->source], x->env,
                     x->tag, x->session, (long long)x->ts, q);
            cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s",
                         err);
            n++;
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, now), SDB_OK);
        sdb_batch_free(b);
        if (rnd() % 6 == 0) {
            size_t d = rnd() % n;
            if (e[d].alive) {
                cr_assert_eq(sdb_score_delete(s, 0, e[d].id), SDB_OK);
                e[d].alive = false;
            }
        }
        if (rnd() % 3 == 0 && n < N_EVENTS - 200) cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK);
        now += 1000;
    }
    *out_n = n;
    return now;
}

Test(list, filtered_pages_offsets_and_totals_agree_with_a_reference)
{
    static ev e[N_EVENTS];
    size_t n;
    int64_t now = build(e, &n);
    for (int round = 0; round < 2; round++) {
        for (int c = 0; c < 80; c++) {
            flt f = random_filter(false);
            check(e, n, &f);
        }
        cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK); /* then from segments alone */
    }
}

/* The filters the refs index holds (session, observation, dataset run,
 * config, a property: Langfuse's queueId) read their key's rows alone:
 * with the scan cap far below the store (600 of 4000 rows, above any
 * key's matches and the pending rows), every page and total is exact.
 * The row walk these filters used before stopped at the cap: its total
 * was a lower bound (total_exact false) and its pages came back short. */
Test(list, keyed_filters_are_exact_past_the_scan_cap)
{
    static ev e[N_EVENTS];
    size_t n;
    int64_t now = build(e, &n);
    sdb__list_scan_max = 600;
    for (int round = 0; round < 2; round++) {
        for (int c = 0; c < 60; c++) {
            flt f = random_filter(true);
            check(e, n, &f);
        }
        cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK);
    }
}

/* The same over chunks of 150 rows, so that the column count's 64-row
 * vector steps run (a 16-row chunk is all tail) as well as their tails. */
Test(list, totals_agree_over_chunks_of_hundreds_of_rows)
{
    /* A store's chunk size is fixed when it is created: a new one. */
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_not_null(mkdtemp(strcpy(dir, "/tmp/sdb_list_XXXXXX")));
    sdb_options o = {0};
    o.chunk_rows = 150;
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    static ev e[N_EVENTS];
    size_t n;
    int64_t now = build(e, &n);
    cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK);
    for (int c = 0; c < 80; c++) {
        flt f = random_filter(false);
        check(e, n, &f);
    }
}

/* POST /v1/traces/search over the same kind of store: every trace of the
 * matching scores, in trace id order, with count, first and last, paged;
 * and past the list's bounds a 400-class refusal, not a cut answer. */
Test(list, trace_search_agrees_with_a_reference_and_refuses_past_its_bounds)
{
    static ev e[N_EVENTS];
    size_t n;
    build(e, &n);
    for (int c = 0; c < 40; c++) {
        flt f = blank();
        char body[256] = "{", *w = body + 1;
        if (rnd() % 2) f.name = (int)(rnd() % 5), w += sprintf(w, "\"name\":\"n%d\",", f.name);
        if (rnd() % 2) {
            f.from = true, f.t_from = T0 - (int64_t)(rnd() % (11 * DAY));
            w += sprintf(w, "\"from\":%lld,", (long long)f.t_from);
        }
        if (rnd() % 2) {
            f.vop = 1, f.v1 = vals[rnd() % 6], f.v2 = f.v1 + 1;
            w += sprintf(w, "\"where\":{\"value\":{\"gte\":%.17g,\"lte\":%.17g}},", f.v1, f.v2);
        }
        /* The reference: per trace, count, first, last. */
        uint64_t cnt[50] = {0};
        int64_t lo[50], hi[50];
        for (size_t i = 0; i < n; i++) {
            if (!e[i].traced || !match(&f, &e[i])) continue;
            int t = e[i].trace;
            if (!cnt[t]++) lo[t] = hi[t] = e[i].ts;
            if (e[i].ts < lo[t]) lo[t] = e[i].ts;
            if (e[i].ts > hi[t]) hi[t] = e[i].ts;
        }
        int next = 0;
        char cur[64] = "";
        for (int page = 0; page < 100; page++) {
            char req[400];
            int lim = 1 + (int)(rnd() % 9);
            snprintf(req, sizeof req, "%s\"limit\":%d%s%s%s}", body, lim, *cur ? ",\"cursor\":\"" : "",
                     cur, *cur ? "\"" : "");
            char *out = NULL;
            cr_assert_eq(sdb_traces_search_json(s, 0, req, strlen(req), &out, err, sizeof err),
                         SDB_OK, "%s: %s", req, err);
            json_t *a = json_loads(out, 0, NULL), *x;
            cr_assert_not_null(a);
            free(out);
            size_t i;
            json_array_foreach(json_object_get(a, "data"), i, x)
            {
                while (next < 50 && !cnt[next]) next++;
                cr_assert_lt(next, 50, "%s: a trace the reference lacks", req);
                char tid[16];
                snprintf(tid, sizeof tid, "t%02d", next);
                cr_assert_str_eq(json_string_value(json_object_get(x, "trace_id")), tid, "%s", req);
                cr_assert_eq(json_integer_value(json_object_get(x, "count")), (json_int_t)cnt[next],
                             "%s %s", req, tid);
                int64_t first, last;
                const char *fs = json_string_value(json_object_get(x, "first"));
                const char *ls = json_string_value(json_object_get(x, "last"));
                cr_assert_eq(sdb_time_parse(fs, strlen(fs), &first), SDB_OK);
                cr_assert_eq(sdb_time_parse(ls, strlen(ls), &last), SDB_OK);
                cr_assert_eq(first, lo[next]);
                cr_assert_eq(last, hi[next]);
                next++;
            }
            const char *nx = json_string_value(json_object_get(a, "next_cursor"));
            if (nx) snprintf(cur, sizeof cur, "%s", nx);
            json_decref(a);
            if (!nx) break;
        }
        while (next < 50 && !cnt[next]) next++;
        cr_assert_eq(next, 50, "%s: the search missed trace t%02d", body, next);
    }
    /* Past the bounds: refused, naming what to narrow. */
    uint32_t saved = sdb__list_scan_max;
    sdb__list_scan_max = 100;
    char *out = NULL;
    int rc = sdb_traces_search_json(s, 0, "{}", 2, &out, err, sizeof err);
    sdb__list_scan_max = saved;
    cr_assert_eq(rc, SDB_EINVAL, "an answer from a walk cut at 100 rows: %s", out ? out : "");
    cr_assert(strstr(err, "narrow it"), "%s", err);
    free(out);
}
