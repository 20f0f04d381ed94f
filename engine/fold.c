/* The fold: acknowledged scores from the row store into column segments.
 *
 * Analytics read only segments, so the fold is what moves the watermark
 * (DESIGN.md "Aggregation delay"). Row refs are handed out in ingest order
 * and ingest times never decrease with them, so the scores visible at
 * watermark W are, in every project, the rows just after the project's
 * fold mark ("folded:" + project in meta: every row of the project with a
 * smaller or equal ref is in a segment or gone) up to the first one
 * ingested after W. The fold reads those rows straight from `rows`.
 *
 * DESIGN.md had ingest append each score to a separate `pending` log as
 * well. Measured, that log was a fifth of all the bytes ingest wrote
 * (an 80-byte entry per score, written, read once, then deleted), and at
 * 10M scores ingest is bound by the bytes it makes durable (the disk here
 * takes ~300 MB/s with fdatasync). The row store already holds the same
 * fixed part in ref order, so a per-project mark replaces the log.
 *
 * A fold takes the visible rows in large slices (one write transaction
 * each) and groups each slice by (project, name, bucket), keeping ref
 * order inside a group, so that every bucket's last chunk is rewritten at
 * most once per slice. Large folds are the point of the delay: they
 * amortise the chunk rewrites that small ones would repeat.
 */
#include "internal.h"
#include "traceidx.h"

#include <pthread.h>

/* Map room reserved per row before a fold slice: at 1M UUIDv4 scores with
 * bench/gen's tags the fold wrote 74 B/score (segments 35.5, traces 16,
 * attrs 14, preagg 8.2 MB; `scoredb stats`), and pages the slice rewrites
 * are copies until it commits; twice that covers both. */
#define FOLD_ROOM_PER_ROW 160u

/* Rows per fold transaction; tests shrink it to drive slice boundaries. */
uint32_t sdb__fold_slice = 1u << 20;

typedef struct fold_ctx {
    int64_t watermark;
    int64_t bucket_ms;
    int done; /* set by a slice that reached the end of the visible rows */
    sdb__fixed *rows;
    const sdb__fixed **ptrs;
    uint32_t *grp; /* group of each row */
    sdb__fixed *sorted; /* rows in group order */
    uint32_t *orig; /* index in rows of each sorted row */
    uint32_t slice; /* capacity of rows, ptrs, grp, orig, aoff */
    /* Each row's tags and properties (engine/attrs.c): their bytes as
     * taken, then as ids once the slice is taken (resolving creates ids,
     * a write, which may move the records the bytes were read from). */
    sdb__buf araw, awords;
    size_t *aoff;
    /* The trace index's keys that only the records hold (sessions,
     * observations, ...), taken as each record is read. */
    sdb__tix_keys tkeys;
} fold_ctx;

int sdb__folded_of(sdb__txn *t, uint32_t project, uint64_t *out)
{
    return sdb__meta_get_project(t, "folded:", project, out);
}

static int folded_put(sdb__txn *t, uint32_t project, uint64_t ref)
{
    return sdb__meta_put_project(t, "folded:", project, ref);
}

/* Take the visible rows of `project` after its fold mark into c->rows
 * from *n on. *out_last is the last ref taken (unchanged when none);
 * *out_more is set when the slice filled before the project's visible
 * rows ended. */
static int take_project(sdb__txn *t, fold_ctx *c, uint32_t project, int64_t wm, uint32_t *n,
                        uint64_t *out_last, int *out_more)
{
    uint64_t folded;
    int rc = sdb__folded_of(t, project, &folded);
    if (rc) return rc;
    sdb__rowit *it;
    if ((rc = sdb__rows_open(t, project, folded + 1, 0, &it))) return rc;
    uint64_t ref;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK) {
        if (*n == c->slice) {
            *out_more = 1;
            break;
        }
        sdb__fixed *fx = &c->rows[*n];
        if (sdb__row_may_have_lists(val.p, val.len)) {
            /* A record with tags or properties is decoded once for both
             * its fixed part and its lists: decoding the fixed part on
             * its own first was 4% of the fold of 1M UUIDv4 scores with
             * bench/gen's tags (perf). */
            sdb__row row;
            if ((rc = sdb__row_decode_noid(val.p, val.len, &row))) break;
            *fx = row.fx;
            if (fx->ingested > wm) break;
            c->aoff[*n] = c->araw.len;
            if ((rc = sdb__attrs_raw_add(&row, &c->araw)) ||
                (rc = sdb__tix_rec_keys(val.p, val.len, &row, fx->ref, &c->tkeys)))
                break;
        } else {
            if ((rc = sdb__row_fixed(val.p, val.len, fx))) break;
            if (fx->ingested > wm) break;
            c->aoff[*n] = c->araw.len;
            if ((rc = sdb__attrs_raw_rec(val.p, val.len, &c->araw)) || /* no lists */
                (rc = sdb__tix_rec_keys(val.p, val.len, NULL, fx->ref, &c->tkeys)))
                break;
        }
        *out_last = fx->ref;
        ++*n;
    }
    sdb__rows_close(it);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}

/* The slice's trace hashes to the store's trace numbers (engine/tracenum.c),
 * in the fold's txn, so a number is as durable as the chunks that hold
 * it: the sorted copies the chunks are built from get the numbers,
 * c->rows keeps the hashes (the trace index, on its thread, reads them). */
static int assign_tnums(sdb__txn *t, fold_ctx *c, uint32_t n)
{
    uint64_t *h = malloc(sizeof *h * (n ? n : 1));
    uint32_t *num = malloc(sizeof *num * (n ? n : 1));
    int rc = h && num ? SDB_OK : SDB_ENOMEM;
    for (uint32_t i = 0; rc == SDB_OK && i < n; i++) h[i] = c->rows[i].trace;
    if (rc == SDB_OK) rc = sdb__tnum_assign(t, h, n, num);
    for (uint32_t j = 0; rc == SDB_OK && j < n; j++) c->sorted[j].trace = num[c->orig[j]];
    free(num);
    free(h);
    return rc;
}

/* Group order: (project, name, bucket). */
typedef struct group {
    uint32_t project, name;
    int64_t bucket;
    uint32_t count, start;
} group;

static int cmp_group(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->project != y->project) return x->project < y->project ? -1 : 1;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

/* Order c->ptrs[0..n) by (project, name, bucket), ref order kept inside a
 * group: rows arrive in ref order, so a counting sort over the groups does
 * it in two passes (a comparison sort of a million rows cost a third of
 * the fold). Fills *out_groups (owned, free()) and *out_n_groups. */
static inline uint32_t group_slot(uint32_t project, uint32_t name, int64_t bucket,
                                  uint32_t cap)
{
    uint64_t h = ((uint64_t)project << 32 | name) * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)bucket * 0xc2b2ae3d27d4eb4full;
    return (uint32_t)(h >> 32) & (cap - 1);
}

static int group_rows(fold_ctx *c, uint32_t n, group **out_groups, uint32_t *out_n_groups)
{
    *out_groups = NULL;
    *out_n_groups = 0;
    uint32_t cap = 1024, n_g = 0; /* slots; at most cap / 2 groups, then it doubles */
    uint32_t *slot = calloc(cap, sizeof *slot); /* group index + 1 */
    group *g = malloc(sizeof *g * (cap / 2));
    if (!slot || !g) {
        free(slot);
        free(g);
        return SDB_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (2 * (n_g + 1) > cap) { /* room for one more group: double, rehash */
            uint32_t ncap = cap * 2;
            uint32_t *ns = calloc(ncap, sizeof *ns);
            group *ng = ns ? realloc(g, sizeof *g * (ncap / 2)) : NULL;
            if (!ng) {
                free(ns);
                free(g);
                free(slot);
                return SDB_ENOMEM;
            }
            g = ng;
            for (uint32_t q = 0; q < n_g; q++) {
                uint32_t m = group_slot(g[q].project, g[q].name, g[q].bucket, ncap);
                while (ns[m]) m = (m + 1) & (ncap - 1);
                ns[m] = q + 1;
            }
            free(slot);
            slot = ns;
            cap = ncap;
        }
        const sdb__fixed *r = &c->rows[i];
        int64_t b = sdb__floor_div(r->ts, c->bucket_ms);
        uint32_t j = group_slot(r->project, r->name, b, cap);
        for (;;) {
            uint32_t s = slot[j];
            if (!s) {
                g[n_g] = (group){r->project, r->name, b, 0, 0};
                slot[j] = s = ++n_g;
                break;
            }
            const group *e = &g[s - 1];
            if (e->project == r->project && e->name == r->name && e->bucket == b) break;
            j = (j + 1) & (cap - 1);
        }
        g[slot[j] - 1].count++;
        c->grp[i] = slot[j] - 1;
    }
    free(slot);
    /* Sort the groups, then map each old group index to its sorted start. */
    for (uint32_t q = 0; q < n_g; q++) g[q].start = q; /* remember the old index */
    qsort(g, n_g, sizeof *g, cmp_group);
    uint32_t *pos = malloc(sizeof *pos * (n_g ? n_g : 1));
    if (!pos) {
        free(g);
        return SDB_ENOMEM;
    }
    uint32_t at = 0;
    for (uint32_t q = 0; q < n_g; q++) {
        pos[g[q].start] = at;
        g[q].start = at;
        at += g[q].count;
    }
    /* Copy the rows out in group order: building a chunk makes several
     * passes over its rows (widths, columns, pre-aggregates), and rows in
     * ingest order interleave every name, so each pass would miss the cache
     * on every row. */
    for (uint32_t i = 0; i < n; i++) {
        c->orig[pos[c->grp[i]]] = i;
        c->sorted[pos[c->grp[i]]++] = c->rows[i];
    }
    for (uint32_t i = 0; i < n; i++) c->ptrs[i] = &c->sorted[i];
    free(pos);
    *out_groups = g;
    *out_n_groups = n_g;
    return SDB_OK;
}

/* The trace index's sort (sdb__tix_prepare) on a thread of its own while
 * the fold builds chunks: a fold's slice runs on one core (one LMDB
 * writer), and at the end of `scoredb ingest` the other core is idle; the
 * sort and the copy before it were 0.4 of the 5.0 s that the fold ending
 * a 10M UUIDv4 ingest took (perf). Below this many rows a thread costs
 * more than it saves (the server folds small slices often). */
#define TIX_THREAD_ROWS 65536u

typedef struct tix_job {
    const sdb__fixed *rows;
    uint32_t n;
    const sdb__tix_keys *keys;
    sdb__tix_prep *prep;
    int rc;
} tix_job;

static void *tix_prepare_job(void *arg)
{
    tix_job *j = arg;
    j->rc = sdb__tix_prepare_keyed(j->rows, j->n, j->keys, &j->prep);
    return NULL;
}

/* Call fn(project, count, ctx) for each project with pending rows. */
static int each_pending_project(sdb__txn *t, int (*fn)(uint32_t, uint64_t, void *), void *ctx)
{
    sdb__cur *cur;
    int rc = sdb__cur_open(t, SDB__DB_META, &cur);
    if (rc) return rc;
    sdb__val key, val;
    for (rc = sdb__cur_seek(cur, "pending:", 8, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(cur, &key, &val)) {
        if (key.len != 12 || memcmp(key.p, "pending:", 8) != 0) break;
        if (val.len != 8) {
            rc = SDB_ECORRUPT;
            break;
        }
        uint64_t count = sdb__rd64(val.p);
        if (count && (rc = fn(sdb__rd32((const uint8_t *)key.p + 8), count, ctx))) break;
    }
    sdb__cur_close(cur);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}

/* Append a project (u32) to a byte buffer. */
static int collect_project(uint32_t project, uint64_t count, void *arg)
{
    (void)count;
    return sdb__buf_add(arg, &project, sizeof project) ? SDB_ENOMEM : SDB_OK;
}

static int fold_txn(sdb__txn *t, void *arg)
{
    fold_ctx *c = arg;
    c->done = 0;
    uint64_t old_wm = 0;
    int rc = sdb__meta_get_u64(t, "watermark", &old_wm);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    int64_t wm = c->watermark;
    if (rc == SDB_OK && sdb__key_ts(old_wm) > wm) wm = sdb__key_ts(old_wm);
    c->araw.len = 0; /* a retried txn starts again */
    c->tkeys.n = 0;

    /* The projects' visible rows, copied out (the map may move once we
     * write), one project after another until the slice is full. */
    sdb__buf projects = {0};
    if ((rc = each_pending_project(t, collect_project, &projects))) goto done;
    const uint32_t *pl = (const uint32_t *)(void *)projects.p;
    size_t n_pl = projects.len / sizeof *pl;
    uint32_t n = 0;
    int more = 0;
    size_t n_taken = 0; /* projects whose rows are (partly) in this slice */
    uint64_t *last = calloc(n_pl ? n_pl : 1, sizeof *last);
    uint32_t *upto = calloc(n_pl ? n_pl : 1, sizeof *upto);
    if (!last || !upto) {
        rc = SDB_ENOMEM;
        goto done_lists;
    }
    for (size_t i = 0; i < n_pl && !more; i++) {
        if ((rc = take_project(t, c, pl[i], wm, &n, &last[i], &more))) goto done_lists;
        upto[i] = n;
        n_taken = i + 1;
    }

    /* The slice's row blocks are read: the map's resident cap applies
     * inside this transaction too (engine/ids.c's merges say why; here
     * the fold of a 29M store held 415 MiB of map pages in one slice). */
    sdb__map_trim_in_txn(t);
    /* Tags and properties to ids, in place of their bytes (aoff then
     * indexes awords). */
    sdb__acache *cache = NULL;
    if ((rc = sdb__acache_new(&cache))) goto done_lists;
    c->awords.len = 0;
    /* A slice without a single tag or property (8 bytes of raw a row) needs
     * no rows for the attrs: each chunk's new rows have none. */
    int any = c->araw.len != (size_t)n * 8;
    for (uint32_t i = 0; i < n && rc == SDB_OK && any; i++) {
        size_t used, at = c->awords.len;
        rc = sdb__attrs_resolve(t, cache, c->rows[i].project, c->araw.p + c->aoff[i], &used, 1,
                                &c->awords);
        c->aoff[i] = at;
    }
    group *g = NULL;
    uint32_t n_g = 0, big = 0;
    sdb__arow *arows = NULL;
    /* c->rows is only read from here until the join. */
    tix_job tj = {c->rows, n, &c->tkeys, NULL, SDB_OK};
    pthread_t tix_th;
    int tix_threaded = rc == SDB_OK && n >= TIX_THREAD_ROWS &&
                       pthread_create(&tix_th, NULL, tix_prepare_job, &tj) == 0;
    if (rc == SDB_OK) rc = group_rows(c, n, &g, &n_g);
    if (rc == SDB_OK) rc = assign_tnums(t, c, n);
    for (uint32_t q = 0; q < n_g; q++)
        if (g[q].count > big) big = g[q].count;
    if (rc == SDB_OK && any && !(arows = malloc(sizeof *arows * (big ? big : 1)))) rc = SDB_ENOMEM;
    for (uint32_t q = 0; q < n_g && rc == SDB_OK; q++) {
        rc = sdb__seg_append(t, c->ptrs + g[q].start, g[q].count);
        for (uint32_t j = 0; j < g[q].count && any; j++) {
            size_t at = c->aoff[c->orig[g[q].start + j]];
            sdb__arow_of((const uint32_t *)(const void *)(c->awords.p + at), &arows[j]);
        }
        if (rc == SDB_OK)
            rc = sdb__attrs_append(t, cache, c->ptrs + g[q].start, arows, g[q].count);
    }
    free(arows);
    free(g);
    sdb__acache_free(cache);
    sdb__map_trim_in_txn(t); /* and the chunks it appended to */
    if (tix_threaded) pthread_join(tix_th, NULL);
    else if (rc == SDB_OK && n) tix_prepare_job(&tj);
    if (rc == SDB_OK) rc = tj.rc;
    if (rc == SDB_OK && n) rc = sdb__tix_write(t, tj.prep); /* the trace index */
    sdb__tix_prep_free(tj.prep);
    if (rc) goto done_lists;
    for (size_t i = 0; i < n_taken; i++) {
        uint32_t taken = upto[i] - (i ? upto[i - 1] : 0);
        if (!taken) continue;
        if ((rc = sdb__pending_add(t, pl[i], -(int64_t)taken)) ||
            (rc = folded_put(t, pl[i], last[i])))
            goto done_lists;
    }
    if (!more) {
        if ((rc = sdb__meta_put_u64(t, "watermark", sdb__ts_key(wm)))) goto done_lists;
        c->done = 1;
    }
done_lists:
    free(last);
    free(upto);
done:
    sdb__buf_free(&projects);
    return rc;
}

/* Chunks one purge transaction rewrites: a few ms of other writers'
 * wait. */
#define PURGE_CHUNKS 16u

static int purge_txn(sdb__txn *t, void *arg)
{
    return sdb__dead_purge(t, PURGE_CHUNKS, arg);
}

/* And the row blocks that hold deleted records. */
#define PURGE_BLOCKS 64u

static int purge_rows_txn(sdb__txn *t, void *arg)
{
    return sdb__rows_purge(t, PURGE_BLOCKS, arg);
}

int sdb_store_fold(sdb_store *s, int64_t watermark_ms, uint64_t *out_pending)
{
    if (s->read_only) return sdb_store_watermark(s, NULL, out_pending);
    fold_ctx c = {.watermark = watermark_ms, .bucket_ms = s->bucket_ms,
                  .slice = sdb__fold_slice ? sdb__fold_slice : 1};
    c.rows = malloc(sizeof *c.rows * c.slice);
    c.ptrs = malloc(sizeof *c.ptrs * c.slice);
    c.grp = malloc(sizeof *c.grp * c.slice);
    c.sorted = malloc(sizeof *c.sorted * c.slice);
    c.orig = malloc(sizeof *c.orig * c.slice);
    c.aoff = malloc(sizeof *c.aoff * c.slice);
    int rc = SDB_ENOMEM;
    if (c.rows && c.ptrs && c.grp && c.sorted && c.orig && c.aoff) {
        do {
            /* A slice that fills the map is aborted and run again after
             * the map grows: at 1M UUIDv4 scores into a new store the one
             * slice ran three times (two doublings from 64 MiB; a perf
             * probe on fold_txn), ~0.5 s of CPU each. Growing first, to
             * what the slice may write, runs it once. A failure to grow
             * here is not an error: sdb__write grows on demand. */
            uint64_t pending = 0;
            if (sdb_store_watermark(s, NULL, &pending) == SDB_OK && pending)
                sdb__map_reserve(s, (pending < c.slice ? pending : c.slice) * FOLD_ROOM_PER_ROW);
            rc = sdb__write(s, fold_txn, &c);
        } while (rc == SDB_OK && !c.done);
    }
    /* Then the tombstoned chunks, rewritten without their dead rows. */
    for (int left = 1; rc == SDB_OK && left;) rc = sdb__write(s, purge_txn, &left);
    for (int left = 1; rc == SDB_OK && left;) rc = sdb__write(s, purge_rows_txn, &left);
    free(c.rows);
    free(c.ptrs);
    free(c.grp);
    free(c.sorted);
    free(c.orig);
    free(c.aoff);
    sdb__buf_free(&c.araw);
    sdb__buf_free(&c.awords);
    free(c.tkeys.v);
    if (rc == SDB_OK && out_pending) rc = sdb_store_watermark(s, NULL, out_pending);
    return rc;
}

static int sum_pending(uint32_t project, uint64_t count, void *arg)
{
    (void)project;
    *(uint64_t *)arg += count;
    return SDB_OK;
}

int sdb_store_watermark(sdb_store *s, int64_t *out_watermark_ms, uint64_t *out_pending)
{
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    uint64_t wm = 0, pending = 0;
    rc = sdb__meta_get_u64(t, "watermark", &wm);
    if (out_watermark_ms) *out_watermark_ms = rc == SDB_OK ? sdb__key_ts(wm) : INT64_MIN;
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    if (rc == SDB_OK && out_pending) {
        rc = each_pending_project(t, sum_pending, &pending);
        *out_pending = pending;
    }
    sdb__txn_abort(t);
    return rc;
}

/* ------------------------------------------------------------ tombstones */

/* Where row `ref` sits in its chunk: the fold appends rows to a bucket in
 * ref order (a slice's group keeps ref order, later slices have larger
 * refs, and a purge keeps the order of what is left), so a bucket's
 * chunks hold ascending refs and a chunk is found by its first and last
 * ref and the row by a binary search. A chunk that breaks the order
 * (none this build writes) is searched row by row. */
static uint32_t find_ref(const sdb__seg *g, uint64_t ref)
{
    uint32_t lo = 0, hi = g->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sdb__seg_ref(g, mid) < ref) lo = mid + 1;
        else hi = mid;
    }
    if (lo < g->n && sdb__seg_ref(g, lo) == ref) return lo;
    for (uint32_t i = 0; i < g->n; i++)
        if (sdb__seg_ref(g, i) == ref) return i;
    return UINT32_MAX;
}

int sdb__dead_mark(sdb__txn *t, const sdb__fixed *fx)
{
    int64_t bw = sdb__txn_store(t)->bucket_ms;
    int64_t bucket = sdb__floor_div(fx->ts, bw) * bw;
    uint8_t k[SDB__SEGKEY_LEN], hit[SDB__SEGKEY_LEN];
    sdb__seg_key(k, fx->project, fx->name, bucket, 0);
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) return rc;
    uint32_t at = UINT32_MAX;
    sdb__val key, val;
    /* Two passes: chunks whose ref range holds ref, then (a chunk out of
     * order) every chunk of the bucket. */
    for (int pass = 0; pass < 2 && at == UINT32_MAX; pass++) {
        for (rc = sdb__cur_seek(c, k, sizeof k, &key, &val); rc == SDB_OK;
             rc = sdb__cur_next(c, &key, &val)) {
            if (key.len != sizeof k || memcmp(key.p, k, 16) != 0) break;
            sdb__seg g;
            if ((rc = sdb__seg_open(val.p, val.len, &g))) break;
            if (g.n == 0) continue;
            if (pass == 0 && (fx->ref < sdb__seg_ref(&g, 0) || fx->ref > sdb__seg_ref(&g, g.n - 1)))
                continue;
            if ((at = find_ref(&g, fx->ref)) != UINT32_MAX) {
                memcpy(hit, key.p, sizeof hit);
                break;
            }
        }
        if (rc != SDB_OK && rc != SDB_ENOTFOUND) break;
        rc = SDB_OK;
    }
    sdb__cur_close(c);
    if (rc) return rc;
    /* A row whose record exists but is in no segment means the store is
     * inconsistent. */
    if (at == UINT32_MAX) return SDB_ECORRUPT;
    sdb__val old = {NULL, 0};
    rc = sdb__get(t, SDB__DB_DEAD, hit, sizeof hit, &old);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    size_t need = at / 8 + 1, len = old.len > need ? old.len : need;
    uint8_t *bm = calloc(len, 1);
    if (!bm) return SDB_ENOMEM;
    if (old.len) memcpy(bm, old.p, old.len);
    if (bm[at / 8] & (1u << (at % 8))) {
        rc = SDB_ECORRUPT; /* dead already, yet its row record was there */
    } else {
        bm[at / 8] |= (uint8_t)(1u << (at % 8));
        rc = sdb__put(t, SDB__DB_DEAD, hit, sizeof hit, bm, len, 0);
    }
    free(bm);
    return rc;
}

static inline bool is_dead(const uint8_t *bm, size_t len, uint32_t i)
{
    return (size_t)i / 8 < len && (bm[i / 8] >> (i % 8) & 1u);
}

/* The live rows of segment g (key: segkey), copied out into lv's scratch:
 * *out_rows[0..*out_n) point at them. */
static int live_rows(sdb__live *lv, const uint8_t *segkey, const sdb__seg *g,
                     const uint8_t *bm, size_t bm_len, uint32_t *out_n)
{
    if (lv->cap_rows < g->n) {
        size_t cap = g->n;
        void *r = realloc(lv->rows, cap * sizeof(sdb__fixed));
        if (!r) return SDB_ENOMEM;
        lv->rows = r;
        void *p = realloc(lv->ptrs, cap * sizeof(sdb__fixed *));
        if (!p) return SDB_ENOMEM;
        lv->ptrs = p;
        lv->cap_rows = cap;
    }
    sdb__fixed *rows = lv->rows;
    const sdb__fixed **ptrs = lv->ptrs;
    uint32_t m = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        if (is_dead(bm, bm_len, i)) continue;
        sdb__seg_row(g, i, &rows[m]);
        rows[m].project = sdb__rd32(segkey);
        rows[m].name = sdb__rd32(segkey + 4);
        ptrs[m] = &rows[m];
        m++;
    }
    *out_n = m;
    return SDB_OK;
}

int sdb__live_open(sdb__txn *t, sdb__live *lv)
{
    memset(lv, 0, sizeof *lv);
    lv->t = t;
    lv->any = sdb__count(t, SDB__DB_DEAD) != 0;
    if (!lv->any) return SDB_OK;
    return sdb__cur_open(t, SDB__DB_DEAD, &lv->cur);
}

void sdb__live_close(sdb__live *lv)
{
    sdb__cur_close(lv->cur);
    free(lv->rows);
    free(lv->ptrs);
    free(lv->buf);
    memset(lv, 0, sizeof *lv);
}

int sdb__live_seg(sdb__live *lv, const uint8_t *segkey, sdb__seg *g)
{
    if (!lv->any) return 0;
    /* lv->next is the first tombstoned key at or after lv->seek; it
     * answers for every key from seek up to next. Seek again only when
     * segkey falls outside that span. */
    if (!lv->valid || memcmp(segkey, lv->seek, SDB__SEGKEY_LEN) < 0 ||
        (!lv->end && memcmp(lv->next, segkey, SDB__SEGKEY_LEN) < 0)) {
        sdb__val key, val;
        int rc = sdb__cur_seek(lv->cur, segkey, SDB__SEGKEY_LEN, &key, &val);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        memcpy(lv->seek, segkey, SDB__SEGKEY_LEN);
        lv->valid = 1;
        lv->end = rc == SDB_ENOTFOUND || key.len != SDB__SEGKEY_LEN;
        if (!lv->end) memcpy(lv->next, key.p, SDB__SEGKEY_LEN);
    }
    if (lv->end || memcmp(lv->next, segkey, SDB__SEGKEY_LEN) != 0) return 0;
    sdb__val bm;
    int rc = sdb__get(lv->t, SDB__DB_DEAD, segkey, SDB__SEGKEY_LEN, &bm);
    if (rc) return rc;
    uint32_t m;
    if ((rc = live_rows(lv, segkey, g, bm.p, bm.len, &m))) return rc;
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan((const sdb__fixed *const *)lv->ptrs, m, &f);
    if (lv->cap_buf < len) {
        void *b = realloc(lv->buf, len);
        if (!b) return SDB_ENOMEM;
        lv->buf = b;
        lv->cap_buf = len;
    }
    if ((rc = sdb__seg_build((const sdb__fixed *const *)lv->ptrs, m, &f, lv->buf))) return rc;
    if ((rc = sdb__seg_open(lv->buf, len, g))) return rc;
    return 1;
}

int sdb__dead_purge(sdb__txn *t, uint32_t max_chunks, int *out_left)
{
    *out_left = 0;
    sdb__live lv = {0};
    sdb__buf keys = {0}, dead = {0};
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_DEAD, &c);
    if (rc) return rc;
    sdb__val key, val;
    uint32_t n = 0;
    for (rc = sdb__cur_seek(c, NULL, 0, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (n == max_chunks) {
            *out_left = 1;
            break;
        }
        if (key.len != SDB__SEGKEY_LEN) {
            rc = SDB_ECORRUPT;
            break;
        }
        if (sdb__buf_add(&keys, key.p, key.len)) {
            rc = SDB_ENOMEM;
            break;
        }
        n++;
    }
    sdb__cur_close(c);
    if (rc && rc != SDB_ENOTFOUND) goto done;
    rc = SDB_OK;
    lv.t = t;
    for (uint32_t i = 0; i < n && rc == SDB_OK; i++) {
        const uint8_t *k = (const uint8_t *)keys.p + (size_t)i * SDB__SEGKEY_LEN;
        sdb__val seg, bm;
        sdb__seg g;
        uint32_t m = 0;
        rc = sdb__get(t, SDB__DB_SEGMENTS, k, SDB__SEGKEY_LEN, &seg);
        if (rc == SDB_ENOTFOUND) { /* a bitmap without its chunk: only it goes */
            rc = sdb__del(t, SDB__DB_DEAD, k, SDB__SEGKEY_LEN);
            continue;
        }
        if (rc == SDB_OK && (rc = sdb__seg_open(seg.p, seg.len, &g)) == SDB_OK &&
            (rc = sdb__get(t, SDB__DB_DEAD, k, SDB__SEGKEY_LEN, &bm)) == SDB_OK)
            rc = live_rows(&lv, k, &g, bm.p, bm.len, &m);
        /* The bitmap, kept past the chunk's write (which may move it) for
         * the chunk's tags and properties. */
        dead.len = 0;
        if (rc == SDB_OK && sdb__buf_add(&dead, bm.p, bm.len)) rc = SDB_ENOMEM;
        if (rc == SDB_OK)
            rc = sdb__seg_put(t, k, (const sdb__fixed *const *)lv.ptrs, m);
        if (rc == SDB_OK) rc = sdb__attrs_purge(t, k, (const uint8_t *)dead.p, dead.len);
        if (rc == SDB_OK) rc = sdb__del(t, SDB__DB_DEAD, k, SDB__SEGKEY_LEN);
    }
done:
    sdb__live_close(&lv);
    sdb__buf_free(&keys);
    sdb__buf_free(&dead);
    return rc;
}
