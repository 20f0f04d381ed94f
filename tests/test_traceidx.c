/* The trace index (engine/traceidx.c) against a plain reference: random
 * scores over skewed traces, folded in small slices at random moments
 * (so that runs are written and merged, and some rows stay pending),
 * replaced and deleted at random; then every trace is listed page by page
 * through GET /v1/scores's engine call and compared, id by id and in
 * order, with the reference's live scores of that trace, newest ingested
 * first. The list's scan cap is shrunk far below the store, which is what
 * made the old per-row walk miss: a page of a trace whose scores lie past
 * the cap came back empty or short with a cursor. Here every page but the
 * last must be full and the last must end the list.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "list.h"
#include "scoredb.h"
#include "traceidx.h"
#include "xorshift.h"

#define T0 1767225600000ll /* 2026-01-01 */
#define N_EVENTS 3000
#define N_TRACES 40

static char dir[64];
static sdb_store *s;
static char err[512];
static uint32_t saved_scan, saved_slice;

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_traceidx_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {0};
    o.chunk_rows = 16;
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    saved_scan = sdb__list_scan_max;
    saved_slice = sdb__fold_slice;
}

static void rm_dir(const char *d)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    cr_assert_eq(system(cmd), 0);
}

static void teardown(void)
{
    sdb__list_scan_max = saved_scan;
    sdb__fold_slice = saved_slice;
    sdb_store_close(s);
    rm_dir(dir);
}

TestSuite(traceidx, .init = setup, .fini = teardown);

/* The reference: every write in ingest (= ref) order. */
typedef struct ev {
    char id[16];
    int trace, name;
    bool alive;
} ev;

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { return xorshift64(&rng); }

/* Skewed: trace 0 is a third of the scores, the rest share what is left. */
static int pick_trace(void)
{
    return rnd() % 3 == 0 ? 0 : (int)(rnd() % N_TRACES);
}

/* List trace `tr` (with name filter `name` when >= 0) page by page with
 * random limits; compare with the reference, returning the count. With
 * `key` "session_id": the session "sess-<tr>" instead, which put_n gives
 * every score of trace tr. */
static size_t check_key(const ev *e, size_t n, int tr, int name, bool full, const char *key)
{
    char tid[32], nm[16], lim[16], cur[32] = "";
    bool session = !strcmp(key, "session_id");
    snprintf(tid, sizeof tid, session ? "sess-%d" : "trace-%d", tr);
    snprintf(nm, sizeof nm, "n%d", name);
    size_t want = n, got = 0; /* reference index, newest first */
    for (int pages = 0;; pages++) {
        cr_assert_lt(pages, 10000);
        uint64_t limit = 1 + rnd() % 7;
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)limit);
        sdb_param p[4] = {{key, tid}, {"limit", lim}};
        size_t np = 2;
        if (name >= 0) p[np++] = (sdb_param){"name", nm};
        if (*cur) p[np++] = (sdb_param){"cursor", cur};
        char *out = NULL;
        cr_assert_eq(sdb_scores_list_json(s, 0, p, np, &out, err, sizeof err), SDB_OK, "%s",
                     err);
        json_t *a = json_loads(out, 0, NULL);
        cr_assert_not_null(a, "%s", out);
        free(out);
        json_t *data = json_object_get(a, "data"), *x;
        size_t i;
        json_array_foreach(data, i, x)
        {
            while (want > 0 && !(e[want - 1].alive && e[want - 1].trace == tr &&
                                 (name < 0 || e[want - 1].name == name)))
                want--;
            cr_assert_gt(want, 0, "trace %d: the list has more scores than the reference", tr);
            want--;
            cr_assert_str_eq(json_string_value(json_object_get(x, "id")), e[want].id,
                             "trace %d, score %zu", tr, got);
            cr_assert_str_eq(json_string_value(json_object_get(x, key)), tid);
            got++;
        }
        const char *nx = json_string_value(json_object_get(a, "next_cursor"));
        if (nx && full) {
            cr_assert_eq(json_array_size(data), limit,
                         "trace %d: a page short of its limit (%zu of %llu) before the end", tr,
                         json_array_size(data), (unsigned long long)limit);
        }
        if (nx) snprintf(cur, sizeof cur, "%s", nx);
        json_decref(a);
        if (!nx) break;
    }
    while (want > 0 && !(e[want - 1].alive && e[want - 1].trace == tr &&
                         (name < 0 || e[want - 1].name == name)))
        want--;
    cr_assert_eq(want, 0, "trace %d: the list missed scores of the reference", tr);
    return got;
}

static size_t check_trace(const ev *e, size_t n, int tr, int name, bool full)
{
    return check_key(e, n, tr, name, full, "trace_id");
}

Test(traceidx, lists_by_trace_agree_with_a_reference_past_the_scan_cap)
{
    static ev e[2 * N_EVENTS];
    size_t n = 0;
    sdb__fold_slice = 37; /* many runs, merged */
    int64_t now = T0;
    while (n < N_EVENTS) {
        sdb_batch *b;
        cr_assert_eq(sdb_batch_new(&b), SDB_OK);
        size_t k = 1 + rnd() % 60;
        for (size_t j = 0; j < k && n < N_EVENTS; j++) {
            ev *x = &e[n];
            memset(x, 0, sizeof *x);
            /* One in ten re-sends an earlier id: the old row is replaced. */
            size_t old = n && rnd() % 10 == 0 ? rnd() % n : n;
            if (old < n && e[old].alive) {
                snprintf(x->id, sizeof x->id, "%s", e[old].id);
                e[old].alive = false;
            } else {
                snprintf(x->id, sizeof x->id, "s%zu", n);
            }
            x->trace = pick_trace();
            x->name = (int)(rnd() % 3);
            x->alive = true;
            /* A batch holds an id once: a repeat goes to the next batch. */
            bool dup = false;
            for (size_t q = n - j; q < n && !dup; q++) dup = !strcmp(e[q].id, x->id);
            if (dup) {
                if (old < n) e[old].alive = true;
                break;
            }
            char js[200];
            snprintf(js, sizeof js, "{\"id\":\"%s\",\"name\":\"n%d\",\"value\":%zu,"
                     "\"trace_id\":\"trace-%d\",\"timestamp\":%lld}", x->id, x->name, n, x->trace,
                     (long long)(T0 + (int64_t)(rnd() % 86400000)));
            cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s",
                         err);
            n++;
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, now), SDB_OK);
        sdb_batch_free(b);
        /* Delete one now and then. */
        if (rnd() % 8 == 0) {
            size_t d = rnd() % n;
            if (e[d].alive) {
                cr_assert_eq(sdb_score_delete(s, 0, e[d].id), SDB_OK);
                e[d].alive = false;
            }
        }
        /* Fold now and then, but never the last few hundred. */
        if (rnd() % 4 == 0 && n < N_EVENTS - 300) cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK);
        now += 1000;
    }
    uint64_t pending = 0;
    cr_assert_eq(sdb_store_watermark(s, NULL, &pending), SDB_OK);
    cr_assert_gt(pending, 0, "some rows must be past the fold mark");

    /* With more pending rows than the cap, the pending walk is cut and a
     * page may come back short with a cursor; every score is still found. */
    sdb__list_scan_max = 50;
    size_t total = 0;
    for (int tr = 0; tr < N_TRACES; tr++) total += check_trace(e, n, tr, -1, false);
    for (int tr = 0; tr < 5; tr++) check_trace(e, n, tr, 1, false);
    size_t live = 0;
    for (size_t i = 0; i < n; i++) live += e[i].alive;
    cr_assert_eq(total, live);
    /* A trace nobody sent. */
    cr_assert_eq(check_trace(e, n, N_TRACES + 1, -1, false), 0);

    /* Fold everything: from the runs alone, every page full although the
     * store is 60 times the cap (the old walk came back empty). */
    cr_assert_eq(sdb_store_fold(s, now, NULL), SDB_OK);
    total = 0;
    for (int tr = 0; tr < N_TRACES; tr++) total += check_trace(e, n, tr, -1, true);
    for (int tr = 0; tr < 5; tr++) check_trace(e, n, tr, 1, true);
    cr_assert_eq(total, live);
    /* Every row alive when it was folded has its entry (dead ones stay:
     * the reader checks the row), in a handful of runs: the binary counter
     * keeps about log2 of them. */
    sdb__txn *t;
    uint64_t entries, runs;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    cr_assert_eq(sdb__tix_stats(t, 0, &entries, &runs), SDB_OK);
    sdb__txn_abort(t);
    cr_assert_geq(entries, live);
    cr_assert_leq(entries, n);
    cr_assert_leq(runs, 12, "%llu runs for %llu entries", (unsigned long long)runs,
                  (unsigned long long)entries);
}

/* A store folded by a version without the index: its runs and bases are
 * gone, as they never were. */
static int forget_index(sdb__txn *t, void *ctx)
{
    (void)ctx;
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_TRACES, &c);
    if (rc) return rc;
    sdb__val k, v;
    for (rc = sdb__cur_seek(c, "t", 1, &k, &v); rc == SDB_OK;) {
        if (((const char *)k.p)[0] != 't') break;
        if ((rc = sdb__cur_del(c))) break;
        rc = sdb__cur_seek(c, "t", 1, &k, &v);
    }
    sdb__cur_close(c);
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) return rc;
    static const char *const bases[] = {"tixbase:", "rixbase:"};
    for (int i = 0; i < 2; i++) {
        char key[12];
        memcpy(key, bases[i], 8);
        memset(key + 8, 0, 4);
        rc = sdb__del(t, SDB__DB_META, key, sizeof key);
        if (rc && rc != SDB_ENOTFOUND) return rc;
    }
    return SDB_OK;
}

static void put_n(ev *e, size_t *n, size_t k, int64_t now)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (size_t j = 0; j < k; j++, ++*n) {
        ev *x = &e[*n];
        snprintf(x->id, sizeof x->id, "s%zu", *n);
        x->trace = pick_trace();
        x->name = 0;
        x->alive = true;
        char js[160];
        snprintf(js, sizeof js, "{\"id\":\"%s\",\"name\":\"n0\",\"value\":1,\"trace_id\":"
                 "\"trace-%d\",\"session_id\":\"sess-%d\"}", x->id, x->trace, x->trace);
        cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, now), SDB_OK);
    sdb_batch_free(b);
}

Test(traceidx, a_store_folded_before_the_index_is_still_listed_exactly)
{
    static ev e[1000];
    size_t n = 0;
    put_n(e, &n, 400, T0);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    sdb_store *st = s;
    cr_assert_eq(sdb__write(st, forget_index, NULL), SDB_OK);
    for (int tr = 0; tr < N_TRACES; tr++) check_trace(e, n, tr, -1, true);
    for (int tr = 0; tr < N_TRACES; tr++) check_key(e, n, tr, -1, true, "session_id");
    /* Indexing begins at the next fold, above the old rows. */
    put_n(e, &n, 300, T0 + 1000);
    cr_assert_eq(sdb_store_fold(s, T0 + 1000, NULL), SDB_OK);
    put_n(e, &n, 200, T0 + 2000); /* and some pending */
    size_t total = 0;
    for (int tr = 0; tr < N_TRACES; tr++) total += check_trace(e, n, tr, -1, true);
    cr_assert_eq(total, n);
    total = 0;
    for (int tr = 0; tr < N_TRACES; tr++) total += check_key(e, n, tr, -1, true, "session_id");
    cr_assert_eq(total, n);
    sdb__txn *t;
    uint64_t entries, runs;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    cr_assert_eq(sdb__tix_stats(t, 0, &entries, &runs), SDB_OK);
    sdb__txn_abort(t);
    cr_assert_eq(entries, 600, "only the rows folded since (a trace and a session each): %llu",
                 (unsigned long long)entries);
}

/* A slice of at least 65,536 rows sorts its entries on a thread of its own
 * while the fold builds chunks (engine/fold.c): two projects' rows in one
 * such slice must index exactly what small slices (sorted inline) index,
 * every trace with every one of its scores. */
#define BIG_ROWS 70000
#define BIG_TRACES 997

static void put_big(sdb_store *st)
{
    for (int i = 0; i < BIG_ROWS;) {
        uint32_t project = (uint32_t)(i / 1000 % 2);
        sdb_batch *b;
        cr_assert_eq(sdb_batch_new(&b), SDB_OK);
        for (int j = 0; j < 1000; j++, i++) {
            char js[160];
            snprintf(js, sizeof js, "{\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"big-%d\","
                     "\"timestamp\":%lld}", i % 3, i, i % BIG_TRACES,
                     (long long)(T0 + (int64_t)(i % 86400) * 1000));
            cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s",
                         err);
        }
        cr_assert_eq(sdb_store_ingest(st, project, b, T0), SDB_OK);
        sdb_batch_free(b);
    }
}

Test(traceidx, a_slice_sorted_on_its_own_thread_indexes_like_small_slices)
{
    char d2[64] = "/tmp/sdb_traceidx2_XXXXXX";
    cr_assert_not_null(mkdtemp(d2));
    sdb_store *small;
    sdb_options o = {0};
    cr_assert_eq(sdb_store_open(d2, &o, &small, err, sizeof err), SDB_OK, "%s", err);
    put_big(s);
    put_big(small);
    sdb__fold_slice = 1u << 20; /* one slice: the threaded sort */
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    sdb__fold_slice = 5000; /* inline sorts */
    cr_assert_eq(sdb_store_fold(small, T0, NULL), SDB_OK);
    sdb__txn *ta, *tb;
    cr_assert_eq(sdb__txn_begin(s, 0, &ta), SDB_OK);
    cr_assert_eq(sdb__txn_begin(small, 0, &tb), SDB_OK);
    for (uint32_t project = 0; project < 2; project++) {
        size_t total = 0;
        for (int tr = 0; tr < BIG_TRACES; tr++) {
            char tid[32];
            snprintf(tid, sizeof tid, "big-%d", tr);
            uint64_t h = sdb__tix_hash(tid, strlen(tid)), *ra, *rb, base, cut;
            size_t na, nb;
            cr_assert_eq(sdb__tix_refs(ta, project, SDB__TIX_TRACE, &h, 1, UINT64_MAX, BIG_ROWS,
                                       &ra, &na, &base, &cut),
                         SDB_OK);
            cr_assert_eq(sdb__tix_refs(tb, project, SDB__TIX_TRACE, &h, 1, UINT64_MAX, BIG_ROWS,
                                       &rb, &nb, &base, &cut),
                         SDB_OK);
            /* Rows i with i % 997 == tr, in project (i / 1000) % 2. */
            size_t want = 0;
            for (int i = tr; i < BIG_ROWS; i += BIG_TRACES) want += (uint32_t)(i / 1000 % 2) == project;
            cr_assert_eq(na, want, "project %u trace %d: %zu refs, want %zu", project, tr, na, want);
            cr_assert_eq(nb, want, "project %u trace %d (small slices): %zu refs", project, tr, nb);
            for (size_t k = 0; k < na; k++)
                cr_assert_eq(ra[k], rb[k], "project %u trace %d: ref %zu differs", project, tr, k);
            total += na;
            free(ra);
            free(rb);
        }
        cr_assert_eq(total, BIG_ROWS / 2, "project %u: every score indexed", project);
    }
    sdb__txn_abort(ta);
    sdb__txn_abort(tb);
    sdb_store_close(small);
    rm_dir(d2);
}

/* The run coding (version 2: blocks of hash deltas and refs bit-packed
 * to each block's widths) against a plain reference, written straight
 * through sdb__tix_prepare/sdb__tix_write in slices so that runs merge:
 * hashes at the ends of the 64-bit range (deltas of 2^63 and more: full
 * 64-bit widths), keys with one entry and keys with hundreds (spanning
 * blocks, so a lookup walks several blocks back from its bound), refs far
 * apart and adjacent. Every key is then looked up with random bounds and
 * caps, and must give exactly the newest `max` refs below the bound. */
#define RC_KEYS 300
#define RC_SLICES 9
Test(traceidx, block_coded_runs_answer_like_a_plain_list)
{
    static uint64_t key[RC_KEYS];
    for (int i = 0; i < RC_KEYS; i++) key[i] = rnd() | 1;
    key[0] = 1;
    key[1] = 2;
    key[2] = UINT64_MAX;
    key[3] = UINT64_MAX - 1;
    key[4] = 1ull << 63;
    key[5] = (1ull << 63) + 1;
    /* Entries (key index, ref), in ref order: key 6 takes a quarter. */
    size_t cap = 20000, n = 0;
    uint32_t *who = malloc(cap * sizeof *who);
    uint64_t *refs = malloc(cap * sizeof *refs), ref = 1;
    cr_assert(who && refs);
    for (int sl = 0; sl < RC_SLICES; sl++) {
        /* The last slice is keys 1 and UINT64_MAX alone: a run of its own
         * (the run before it is larger) whose one delta needs 64 bits. */
        bool last = sl == RC_SLICES - 1;
        uint32_t m = last ? 2 : 1 + (uint32_t)(rnd() % 1500);
        sdb__fixed *rows = calloc(m, sizeof *rows);
        cr_assert_not_null(rows);
        for (uint32_t i = 0; i < m; i++) {
            ref += rnd() % 4 == 0 ? 1 + rnd() % 100000 : 1;
            uint32_t k = last ? 2 * i : rnd() % 4 == 0 ? 6 : (uint32_t)(rnd() % RC_KEYS);
            rows[i].project = 0;
            rows[i].ref = ref;
            rows[i].trace = key[k];
            cr_assert_lt(n, cap);
            who[n] = k;
            refs[n++] = ref;
        }
        sdb__tix_prep *p;
        cr_assert_eq(sdb__tix_prepare(rows, m, &p), SDB_OK);
        sdb__txn *t;
        cr_assert_eq(sdb__txn_begin(s, 1, &t), SDB_OK);
        cr_assert_eq(sdb__tix_write(t, p), SDB_OK);
        cr_assert_eq(sdb__txn_commit(t), SDB_OK);
        sdb__tix_prep_free(p);
        free(rows);
    }
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    uint64_t entries, runs;
    cr_assert_eq(sdb__tix_stats(t, 0, &entries, &runs), SDB_OK);
    cr_assert_eq(entries, n);
    for (int k = 0; k < RC_KEYS; k++) {
        for (int trial = 0; trial < 3; trial++) {
            uint64_t below = trial == 0 ? UINT64_MAX : 1 + rnd() % (ref + 1);
            size_t max = trial == 2 ? 1 + rnd() % 40 : n + 1;
            uint64_t *got, base, cut;
            size_t ng;
            cr_assert_eq(sdb__tix_refs(t, 0, SDB__TIX_TRACE, &key[k], 1, below, max, &got, &ng,
                                       &base, &cut),
                         SDB_OK);
            size_t w = 0;
            for (size_t i = n; i > 0 && w < max; i--) {
                if (who[i - 1] != (uint32_t)k || refs[i - 1] >= below) continue;
                cr_assert_lt(w, ng, "key %d: %zu refs, the reference has more", k, ng);
                cr_assert_eq(got[w], refs[i - 1], "key %d, ref %zu: %llu, want %llu", k, w,
                             (unsigned long long)got[w], (unsigned long long)refs[i - 1]);
                w++;
            }
            cr_assert_eq(ng, w, "key %d (below %llu, max %zu): %zu refs, want %zu", k,
                         (unsigned long long)below, max, ng, w);
            free(got);
        }
    }
    sdb__txn_abort(t);
    free(who);
    free(refs);
}

/* A store of format 5 holds version 1 runs (16 plain bytes an entry): they
 * are read as they are, and a later fold's merge rewrites them in version
 * 2 with the new entries, every ref still found. */
Test(traceidx, version_1_runs_are_read_and_merged_into_version_2)
{
    enum { N1 = 700, N2 = 900 };
    static uint64_t h1[N1];
    uint8_t *v1 = malloc(16 + N1 * 16);
    cr_assert_not_null(v1);
    uint32_t magic = 0x58495453u, zero = 0;
    uint64_t n1 = N1;
    memcpy(v1, &magic, 4);
    memcpy(v1 + 4, &zero, 4);
    memcpy(v1 + 8, &n1, 8);
    /* Sorted hashes 3, 6, 9, ... (every fifth repeated), refs 1..N1. */
    for (uint64_t i = 0; i < N1; i++) {
        h1[i] = 3 * (i - i % 5 / 4) + 3;
        uint64_t ref = i + 1;
        memcpy(v1 + 16 + i * 16, &h1[i], 8);
        memcpy(v1 + 24 + i * 16, &ref, 8);
    }
    uint8_t key[13] = {'t'};
    sdb__be32(key + 1, 0);
    sdb__be64(key + 5, 1);
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 1, &t), SDB_OK);
    cr_assert_eq(sdb__put(t, SDB__DB_TRACES, key, sizeof key, v1, 16 + N1 * 16, 0), SDB_OK);
    cr_assert_eq(sdb__txn_commit(t), SDB_OK);
    free(v1);
    /* A fold's entries: the same hashes again at refs past N1, so the
     * merge takes the version 1 run (it is not larger). */
    sdb__fixed *rows = calloc(N2, sizeof *rows);
    cr_assert_not_null(rows);
    for (uint32_t i = 0; i < N2; i++) {
        rows[i].ref = N1 + 1 + i;
        rows[i].trace = h1[rnd() % N1];
    }
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
        uint64_t entries, runs;
        cr_assert_eq(sdb__tix_stats(t, 0, &entries, &runs), SDB_OK);
        cr_assert_eq(entries, round ? (uint64_t)N1 + N2 : N1);
        cr_assert_eq(runs, 1, "round %d: %llu runs", round, (unsigned long long)runs);
        for (uint64_t i = 0; i < N1; i++) {
            if (i && h1[i] == h1[i - 1]) continue;
            uint64_t *got, base, cut;
            size_t ng, want = 0;
            cr_assert_eq(sdb__tix_refs(t, 0, SDB__TIX_TRACE, &h1[i], 1, UINT64_MAX, 1u << 20,
                                       &got, &ng, &base, &cut),
                         SDB_OK);
            for (uint64_t j = 0; j < N1; j++) want += h1[j] == h1[i];
            if (round)
                for (uint32_t j = 0; j < N2; j++) want += rows[j].trace == h1[i];
            cr_assert_eq(ng, want, "round %d, hash %llu: %zu refs, want %zu", round,
                         (unsigned long long)h1[i], ng, want);
            for (size_t k = 1; k < ng; k++) cr_assert_gt(got[k - 1], got[k]);
            free(got);
        }
        sdb__txn_abort(t);
        if (round) break;
        sdb__tix_prep *p;
        cr_assert_eq(sdb__tix_prepare(rows, N2, &p), SDB_OK);
        cr_assert_eq(sdb__txn_begin(s, 1, &t), SDB_OK);
        cr_assert_eq(sdb__tix_write(t, p), SDB_OK);
        cr_assert_eq(sdb__txn_commit(t), SDB_OK);
        sdb__tix_prep_free(p);
    }
    free(rows);
}

/* The keys only the records hold (session, observation, dataset run,
 * config, the indexed property queue_id), which the fold now takes as it
 * reads each record once instead of the index reading the records again:
 * against a plain reference of which ref carries which key, over two
 * projects ingested in turns (their ref ranges interleave), records with
 * lists (decoded whole by the fold) and without (only their masks looked
 * at), keys on some rows and not others, folded in slices of 29 rows.
 * Every key of every kind must list exactly its refs, none missing, none
 * extra (no score is replaced: every entry is live). */
#define RK_ROWS 1200
#define RK_KEYS 7
Test(traceidx, record_keys_taken_by_the_fold_list_exactly_their_rows)
{
    static const char *const field[] = {"session_id", "observation_id", "dataset_run_id",
                                        "config_id", "queue_id"};
    static const int kind[] = {SDB__TIX_SESSION, SDB__TIX_OBS, SDB__TIX_RUN, SDB__TIX_CONFIG,
                               SDB__TIX_PROP};
    enum { NF = 5 };
    /* key[r][f]: the key index row r carries in field f, or -1. */
    static int key[RK_ROWS][NF];
    static uint32_t proj[RK_ROWS];
    sdb__fold_slice = 29;
    uint64_t ref = 0;
    for (int r = 0; r < RK_ROWS;) {
        uint32_t project = (uint32_t)(rnd() % 2);
        sdb_batch *b;
        cr_assert_eq(sdb_batch_new(&b), SDB_OK);
        int k = 1 + (int)(rnd() % 40);
        for (int j = 0; j < k && r < RK_ROWS; j++, r++) {
            char js[600];
            int o = snprintf(js, sizeof js, "{\"name\":\"n\",\"value\":1,\"trace_id\":\"t%d\"",
                             (int)(rnd() % 5));
            int props = 0;
            for (int f = 0; f < NF; f++) {
                key[r][f] = rnd() % 3 == 0 ? (int)(rnd() % RK_KEYS) : -1;
                if (key[r][f] < 0) continue;
                if (f < 4) {
                    o += snprintf(js + o, sizeof js - (size_t)o, ",\"%s\":\"%c%d\"", field[f],
                                  'a' + f, key[r][f]);
                }
            }
            /* Lists on some rows: tags, or properties (queue_id among
             * others that are not indexed). */
            if (rnd() % 2) o += snprintf(js + o, sizeof js - (size_t)o, ",\"tags\":[\"x\"]");
            if (key[r][4] >= 0 || rnd() % 3 == 0) {
                o += snprintf(js + o, sizeof js - (size_t)o, ",\"properties\":{\"feature\":\"f\"");
                if (key[r][4] >= 0)
                    o += snprintf(js + o, sizeof js - (size_t)o, ",\"queue_id\":\"q%d\"",
                                  key[r][4]);
                o += snprintf(js + o, sizeof js - (size_t)o, "}");
                props = 1;
            }
            (void)props;
            snprintf(js + o, sizeof js - (size_t)o, "}");
            cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s: %s",
                         js, err);
            proj[r] = project;
        }
        cr_assert_eq(sdb_store_ingest(s, project, b, T0 + r), SDB_OK);
        sdb_batch_free(b);
        if (rnd() % 3 == 0) cr_assert_eq(sdb_store_fold(s, T0 + r, NULL), SDB_OK);
        ref = (uint64_t)r;
    }
    cr_assert_eq(sdb_store_fold(s, T0 + RK_ROWS + 1, NULL), SDB_OK);
    uint64_t pending = 1;
    cr_assert_eq(sdb_store_watermark(s, NULL, &pending), SDB_OK);
    cr_assert_eq(pending, 0);
    cr_assert_eq(ref, RK_ROWS);

    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    size_t checked = 0;
    for (uint32_t project = 0; project < 2; project++) {
        for (int f = 0; f < NF; f++) {
            for (int v = 0; v < RK_KEYS; v++) {
                char a[16];
                snprintf(a, sizeof a, "%s%d", f < 4 ? (char[]){(char)('a' + f), 0} : "q", v);
                uint64_t h = f < 4 ? sdb__tix_key(kind[f], a, strlen(a), NULL, 0)
                                   : sdb__tix_key(SDB__TIX_PROP, "queue_id", 8, a, strlen(a));
                uint64_t *got, base, cut;
                size_t ng;
                cr_assert_eq(sdb__tix_refs(t, project, kind[f], &h, 1, UINT64_MAX, RK_ROWS + 1,
                                           &got, &ng, &base, &cut),
                             SDB_OK);
                cr_assert_eq(base, 0);
                /* Refs are 1 + the row's index, newest first. */
                size_t w = 0;
                for (int r = RK_ROWS - 1; r >= 0; r--) {
                    if (proj[r] != project || key[r][f] != v) continue;
                    cr_assert_lt(w, ng, "project %u %s=%s: %zu refs, the reference has more",
                                 project, field[f], a, ng);
                    cr_assert_eq(got[w], (uint64_t)r + 1, "project %u %s=%s, #%zu: ref %llu, want %d",
                                 project, field[f], a, w, (unsigned long long)got[w], r + 1);
                    w++;
                }
                cr_assert_eq(ng, w, "project %u %s=%s: %zu refs, want %zu", project, field[f], a,
                             ng, w);
                checked += w;
                free(got);
            }
        }
    }
    sdb__txn_abort(t);
    cr_assert_gt(checked, RK_ROWS / 2);
}

/* A key whose ref is no row's (or out of the rows' order) is refused,
 * not dropped. */
Test(traceidx, a_record_key_of_no_row_is_refused)
{
    sdb__fixed rows[2];
    memset(rows, 0, sizeof rows);
    rows[0].ref = 5;
    rows[1].ref = 9;
    sdb__tix_ent e[2] = {{42, 9}, {43, 5}}; /* out of order */
    sdb__tix_keys k = {e, 2, 2};
    sdb__tix_prep *p = NULL;
    cr_assert_eq(sdb__tix_prepare_keyed(rows, 2, &k, &p), SDB_EINVAL);
    cr_assert_null(p);
    e[0].ref = 5;
    e[1].ref = 9;
    cr_assert_eq(sdb__tix_prepare_keyed(rows, 2, &k, &p), SDB_OK);
    sdb__tix_prep_free(p);
}
