/* The store checked against itself: `scoredb check` (docs/reliability.md).
 *
 * Each fact analytics rely on is recomputed here from the rows, the plain
 * way, and compared with what the store keeps: a segment's header (its
 * zone map and pre-aggregate) and its per-dimension pre-aggregates against
 * a rescan of its rows; each segment row against the row record of its
 * ref; each folded row record (ref at or before its project's fold mark)
 * in exactly one segment (live: a tombstoned row's record is gone); each
 * chunk's tags and properties (engine/attrs.c) against its rows' records;
 * pending counts against the unfolded rows; each row's id looked up
 * (through the id index for client ids) back to the row; the id index's
 * runs well formed. The code shares nothing with
 * segment.c's builders on purpose: a check that reused them would agree
 * with their mistakes. One read transaction: a consistent snapshot of a
 * live store. Memory: 17 bytes per folded row (its key and a seen mark).
 */
#include "internal.h"

#include <math.h>
#include <stdarg.h>

typedef struct rowkey {
    uint32_t project;
    uint64_t ref;
} rowkey;

typedef struct checker {
    sdb__txn *t;
    int (*on_problem)(void *, const char *);
    void *ctx;
    uint64_t problems;
    int stop;
    rowkey *folded; /* folded row records in key order */
    uint8_t *seen;  /* times each was found in a segment (saturating) */
    size_t n_folded, cap_folded;
    uint64_t n_segments, n_rows, n_ids;
} checker;

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(checker *c, const char *fmt, ...)
{
    c->problems++;
    if (c->stop) return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->on_problem && c->on_problem(c->ctx, msg)) c->stop = 1;
}

/* Equal within what summation order can change: relative 1e-9 of the
 * magnitude the sum was built from. */
static int near(double a, double b, double scale)
{
    if (a == b) return 1;
    return fabs(a - b) <= 1e-9 * (scale > 1 ? scale : 1);
}

/* A chunk's attrs problem, named like the segment's own. */
typedef struct attrs_where {
    checker *c;
    const char *where;
} attrs_where;

static void attrs_problem(void *arg, uint32_t row, const char *msg)
{
    attrs_where *w = arg;
    if (row == UINT32_MAX) problem(w->c, "%s: %s", w->where, msg);
    else problem(w->c, "%s row %u: %s", w->where, row, msg);
}

/* ------------------------------------------------------------ row records */

/* Every project's records (engine/row.c's blocks, gone ones left out),
 * one project after another: the next project is the one of the first
 * block key past the last. */
static int check_project_rows(checker *c, uint32_t project)
{
    uint64_t mark = 0, unfolded = 0, ref;
    int rc = sdb__folded_of(c->t, project, &mark);
    if (rc) return rc;
    sdb__rowit *it;
    if ((rc = sdb__rows_open(c->t, project, 0, 0, &it))) return rc;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK) {
        c->n_rows++;
        sdb__row row;
        if (sdb__row_decode(val.p, val.len, &row) != SDB_OK) {
            problem(c, "row project %u ref %llu: the record does not decode", project,
                    (unsigned long long)ref);
            continue;
        }
        if (row.fx.ref != ref || row.fx.project != project)
            problem(c, "row project %u ref %llu: the record says project %u ref %llu", project,
                    (unsigned long long)ref, row.fx.project, (unsigned long long)row.fx.ref);
        /* Its id must lead back to it (generated ids name their row,
         * client ids go through the id index). */
        if (row.id.len) {
            uint64_t found = 0;
            c->n_ids++;
            int lrc = sdb__id_lookup(c->t, NULL, project, row.id.p, row.id.len, UINT64_MAX, 1,
                                     &found);
            if (lrc == SDB_ENOTFOUND)
                problem(c, "id \"%.*s\" (project %u) of row ref %llu is not in the id index",
                        (int)row.id.len, row.id.p, project, (unsigned long long)ref);
            else if (lrc == SDB_OK && found != ref)
                problem(c, "id \"%.*s\" (project %u) names ref %llu, not its row ref %llu",
                        (int)row.id.len, row.id.p, project, (unsigned long long)found,
                        (unsigned long long)ref);
            else if (lrc) {
                rc = lrc;
                break;
            }
        }
        if (ref > mark) {
            unfolded++;
            continue;
        }
        if (c->n_folded == c->cap_folded) {
            size_t cap = c->cap_folded ? c->cap_folded * 2 : 4096;
            rowkey *f = realloc(c->folded, cap * sizeof *f);
            if (!f) {
                rc = SDB_ENOMEM;
                break;
            }
            c->folded = f;
            c->cap_folded = cap;
        }
        c->folded[c->n_folded++] = (rowkey){project, ref};
    }
    sdb__rows_close(it);
    if (rc != SDB_ENOTFOUND) return rc;
    uint64_t pending;
    if ((rc = sdb__pending_of(c->t, project, &pending))) return rc;
    if (pending != unfolded)
        problem(c, "project %u: pending count %llu, but %llu row records are after "
                   "its fold mark %llu", project, (unsigned long long)pending,
                (unsigned long long)unfolded, (unsigned long long)mark);
    return SDB_OK;
}

static int check_rows(checker *c)
{
    sdb__cur *cur;
    int rc = sdb__cur_open(c->t, SDB__DB_ROWS, &cur);
    if (rc) return rc;
    uint8_t k[4] = {0, 0, 0, 0};
    sdb__val key, val;
    for (rc = sdb__cur_seek(cur, k, 4, &key, &val); rc == SDB_OK && !c->stop;) {
        if (key.len != 12) {
            problem(c, "rows: a key of %zu bytes (12 expected)", key.len);
            rc = sdb__cur_next(cur, &key, &val);
            continue;
        }
        uint32_t project = sdb__rd32(key.p);
        if ((rc = check_project_rows(c, project))) break;
        if (project == UINT32_MAX) break;
        sdb__be32(k, project + 1);
        rc = sdb__cur_seek(cur, k, 4, &key, &val);
    }
    sdb__cur_close(cur);
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    if (rc == SDB_OK) {
        c->seen = calloc(c->n_folded ? c->n_folded : 1, 1);
        if (!c->seen) rc = SDB_ENOMEM;
    }
    return rc;
}

static size_t find_folded(const checker *c, uint32_t project, uint64_t ref)
{
    size_t lo = 0, hi = c->n_folded;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        const rowkey *k = &c->folded[m];
        if (k->project < project || (k->project == project && k->ref < ref))
            lo = m + 1;
        else
            hi = m;
    }
    if (lo < c->n_folded && c->folded[lo].project == project && c->folded[lo].ref == ref)
        return lo;
    return SIZE_MAX;
}

/* -------------------------------------------------------------- segments */

/* A plain rescan's aggregate of a set of numeric rows. */
typedef struct ref_agg {
    uint64_t n;
    double sum, abs_sum, min, max, m2;
} ref_agg;

static void agg_rows(const sdb__fixed *rows, uint32_t n, int d, uint32_t id, ref_agg *a)
{
    memset(a, 0, sizeof *a);
    a->min = INFINITY;
    a->max = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i].type == SDB_CATEGORICAL || (d >= 0 && rows[i].dims[d] != id)) continue;
        double v = rows[i].value;
        a->n++;
        a->sum += v;
        a->abs_sum += fabs(v);
        if (v < a->min) a->min = v;
        if (v > a->max) a->max = v;
    }
    double mean = a->n ? a->sum / (double)a->n : 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i].type == SDB_CATEGORICAL || (d >= 0 && rows[i].dims[d] != id)) continue;
        double dv = rows[i].value - mean;
        a->m2 += dv * dv;
    }
}

/* Moments of a kept aggregate against the rescan's. */
static int same_moments(const ref_agg *a, uint64_t n, double sum, double min, double max,
                        double mean, double m2)
{
    double scale = a->abs_sum, m2scale = a->m2 + (a->abs_sum / (a->n ? a->n : 1)) * a->abs_sum;
    return n == a->n && near(sum, a->sum, scale) && min == a->min && max == a->max &&
           (a->n == 0 || near(mean, a->sum / (double)a->n, scale / (double)a->n)) &&
           near(m2, a->m2, m2scale);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The pre-aggregates of a chunk of n rows (rows) against a rescan. */
static void check_preagg(checker *c, const char *where, const uint8_t *k, const sdb__fixed *rows,
                         uint32_t n, uint32_t *ids)
{
    sdb__val pv;
    int rc = sdb__get(c->t, SDB__DB_PREAGG, k, SDB__SEGKEY_LEN, &pv);
    if (rc && rc != SDB_ENOTFOUND) {
        problem(c, "%s: pre-aggregates cannot be read (%s)", where, sdb_strerror(rc));
        return;
    }
    uint32_t n_cat = 0;
    for (uint32_t i = 0; i < n; i++) n_cat += rows[i].type == SDB_CATEGORICAL;
    if (n_cat && n_cat < n) {
        if (rc == SDB_OK) problem(c, "%s: a mixed chunk has pre-aggregates", where);
        return;
    }
    if (rc == SDB_ENOTFOUND) {
        problem(c, "%s: no pre-aggregates", where);
        return;
    }
    if (n_cat == n) { /* label counts */
        const uint8_t *pairs;
        int m = sdb__preagg_labels(pv.p, pv.len, &pairs);
        if (m < 0) {
            problem(c, "%s: label counts do not decode", where);
            return;
        }
        for (uint32_t i = 0; i < n; i++) ids[i] = (uint32_t)rows[i].value;
        qsort(ids, n, sizeof *ids, cmp_u32);
        uint32_t at = 0;
        for (int j = 0; j < m; j++) {
            uint32_t pr[2];
            memcpy(pr, pairs + 8 * (size_t)j, 8);
            uint32_t cnt = 0;
            while (at < n && ids[at] < pr[0]) {
                problem(c, "%s: label %u has no count", where, ids[at]);
                at++;
            }
            while (at < n && ids[at] == pr[0]) cnt++, at++;
            if (cnt != pr[1])
                problem(c, "%s: label %u counted %u, the rows hold %u", where, pr[0], pr[1], cnt);
        }
        if (at < n) problem(c, "%s: label %u has no count", where, ids[at]);
        return;
    }
    for (int d = 0; d < SDB_N_DIMS; d++) {
        for (uint32_t i = 0; i < n; i++) ids[i] = rows[i].dims[d];
        qsort(ids, n, sizeof *ids, cmp_u32);
        uint32_t distinct = 0;
        for (uint32_t i = 0; i < n; i++) distinct += !i || ids[i] != ids[i - 1];
        const uint8_t *e;
        int m = sdb__preagg_find(pv.p, pv.len, d, &e);
        if (m < 0) {
            if (distinct <= SDB__PREAGG_MAX)
                problem(c, "%s: %s: pre-aggregates missing for %u values", where,
                        sdb__dim_names[d], distinct);
            continue;
        }
        if ((uint32_t)m != distinct)
            problem(c, "%s: %s: %d pre-aggregates for %u values", where, sdb__dim_names[d], m,
                    distinct);
        for (int j = 0; j < m; j++) {
            sdb__preagg p;
            memcpy(&p, e + sizeof p * (size_t)j, sizeof p);
            ref_agg a;
            agg_rows(rows, n, d, p.id, &a);
            if (!same_moments(&a, p.n, p.sum, p.min, p.max, p.k + p.dm, p.m2))
                problem(c, "%s: %s id %u: pre-aggregate n=%u sum=%.17g min=%g max=%g m2=%g, "
                           "rows n=%llu sum=%.17g min=%g max=%g m2=%g", where,
                        sdb__dim_names[d], p.id, p.n, p.sum, p.min, p.max, p.m2,
                        (unsigned long long)a.n, a.sum, a.min, a.max, a.m2);
        }
    }
}

static void check_header(checker *c, const char *where, const sdb__seg *g, const sdb__fixed *rows)
{
    const sdb__seg_hdr *h = &g->h;
    uint32_t n_type[SDB_N_TYPES] = {0};
    int64_t ts_min = INT64_MAX, ts_max = INT64_MIN;
    for (uint32_t i = 0; i < g->n; i++) {
        if (rows[i].type < SDB_N_TYPES) n_type[rows[i].type]++;
        if (rows[i].ts < ts_min) ts_min = rows[i].ts;
        if (rows[i].ts > ts_max) ts_max = rows[i].ts;
    }
    for (int y = 0; y < SDB_N_TYPES; y++)
        if (h->n_type[y] != n_type[y])
            problem(c, "%s: header counts %u %s rows, the rows hold %u", where, h->n_type[y],
                    sdb__type_names[y], n_type[y]);
    if (h->ts_min != ts_min || h->ts_max != ts_max)
        problem(c, "%s: header time range [%lld, %lld], the rows span [%lld, %lld]", where,
                (long long)h->ts_min, (long long)h->ts_max, (long long)ts_min, (long long)ts_max);
    /* The header's max ingest time is not checked: no reader uses it, and
     * a chunk rewritten by the fold's purge of tombstones keeps the bound
     * of rows it no longer holds, while one rewritten from seg_rows (which
     * reads no ingest times back) keeps less than its rows had. */
    ref_agg a;
    agg_rows(rows, g->n, -1, 0, &a);
    double mean = a.n ? h->k + h->dm : 0;
    if (!same_moments(&a, a.n, h->sum, a.n ? h->v_min : INFINITY, a.n ? h->v_max : -INFINITY,
                      mean, h->m2) ||
        (!a.n && (h->v_min != INFINITY || h->v_max != -INFINITY)))
        problem(c, "%s: header sum=%.17g min=%g max=%g mean=%.17g m2=%g, rows sum=%.17g min=%g "
                   "max=%g m2=%g", where, h->sum, h->v_min, h->v_max, mean, h->m2, a.sum, a.min,
                a.max, a.m2);
}

static int check_segments(checker *c)
{
    sdb_store *s = sdb__txn_store(c->t);
    sdb__cur *cur;
    int rc = sdb__cur_open(c->t, SDB__DB_SEGMENTS, &cur);
    if (rc) return rc;
    sdb__fixed *rows = NULL;
    uint32_t *ids = NULL, cap = 0;
    sdb__val key, val;
    for (rc = sdb__cur_seek(cur, NULL, 0, &key, &val); rc == SDB_OK && !c->stop;
         rc = sdb__cur_next(cur, &key, &val)) {
        c->n_segments++;
        if (key.len != SDB__SEGKEY_LEN) {
            problem(c, "segments: a key of %zu bytes (%d expected)", key.len, SDB__SEGKEY_LEN);
            continue;
        }
        uint8_t k[SDB__SEGKEY_LEN];
        memcpy(k, key.p, sizeof k);
        uint32_t project = sdb__rd32(k), name = sdb__rd32(k + 4), chunk = sdb__rd32(k + 16);
        int64_t bucket = sdb__key_ts(sdb__rd64(k + 8));
        char where[160];
        snprintf(where, sizeof where, "segment project %u name %u bucket %lld chunk %u", project,
                 name, (long long)bucket, chunk);
        sdb__seg g;
        if (sdb__seg_open(val.p, val.len, &g) != SDB_OK) {
            problem(c, "%s: the segment does not open (%zu bytes)", where, val.len);
            continue;
        }
        if (g.n == 0 || g.n > s->chunk_rows)
            problem(c, "%s: %u rows (1 to %u expected)", where, g.n, s->chunk_rows);
        if (g.n > cap) {
            sdb__fixed *r = realloc(rows, sizeof *r * g.n);
            if (r) rows = r;
            uint32_t *d = r ? realloc(ids, sizeof *d * g.n) : NULL;
            if (!d) {
                rc = SDB_ENOMEM;
                break;
            }
            ids = d;
            cap = g.n;
        }
        for (uint32_t i = 0; i < g.n; i++) {
            sdb__seg_row(&g, i, &rows[i]);
            rows[i].project = project;
            rows[i].name = name;
        }
        /* Each live row against its record (a row with a tombstone in
         * `dead` was replaced or deleted: its record is gone). The header
         * and pre-aggregates describe every row of the chunk, dead or
         * not, until the fold's purge rewrites it. Reads below do not
         * move val: this is a read transaction. */
        sdb__val dead = {NULL, 0};
        if (sdb__get(c->t, SDB__DB_DEAD, k, sizeof k, &dead) != SDB_OK) dead.len = 0;
        for (uint32_t i = 0; i < g.n && !c->stop; i++) {
            sdb__fixed *r = &rows[i];
            if (i / 8 < dead.len && (((const uint8_t *)dead.p)[i / 8] >> (i % 8) & 1)) continue;
            if (sdb__floor_div(r->ts, s->bucket_ms) * s->bucket_ms != bucket)
                problem(c, "%s row %u: time %lld is outside the bucket", where, i,
                        (long long)r->ts);
            size_t at = find_folded(c, project, r->ref);
            if (at == SIZE_MAX) {
                problem(c, "%s row %u: ref %llu is not a folded row record", where, i,
                        (unsigned long long)r->ref);
                continue;
            }
            if (c->seen[at] < 255) c->seen[at]++;
            sdb__val rv;
            sdb__fixed fx;
            if (sdb__row_get(c->t, project, r->ref, &rv) != SDB_OK ||
                sdb__row_fixed(rv.p, rv.len, &fx) != SDB_OK)
                continue; /* reported by check_rows */
            r->ingested = fx.ingested;
            /* The segment holds the trace's number, the record its hash. */
            uint32_t num = 0;
            int trc = sdb__tnum_lookup(c->t, fx.trace, &num);
            if (trc && trc != SDB_ENOTFOUND)
                problem(c, "%s row %u: trace number map: %s", where, i, sdb_strerror(trc));
            int same = fx.ts == r->ts && fx.name == name && fx.type == r->type &&
                       fx.source == r->source && num == r->trace &&
                       memcmp(&fx.value, &r->value, sizeof fx.value) == 0 &&
                       memcmp(fx.dims, r->dims, sizeof fx.dims) == 0;
            if (!same)
                problem(c, "%s row %u: differs from row record ref %llu (time %lld/%lld, value "
                           "%.17g/%.17g, name %u/%u)", where, i, (unsigned long long)r->ref,
                        (long long)r->ts, (long long)fx.ts, r->value, fx.value, name, fx.name);
        }
        check_header(c, where, &g, rows);
        check_preagg(c, where, k, rows, g.n, ids);
        attrs_where aw = {c, where};
        if (!c->stop && (rc = sdb__attrs_check_chunk(c->t, k, &g, dead.p, dead.len, attrs_problem,
                                                     &aw)))
            break;
    }
    free(rows);
    free(ids);
    sdb__cur_close(cur);
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    for (size_t i = 0; rc == SDB_OK && i < c->n_folded && !c->stop; i++) {
        if (c->seen[i] == 1) continue;
        if (c->seen[i] == 0)
            problem(c, "row project %u ref %llu is folded but in no segment",
                    c->folded[i].project, (unsigned long long)c->folded[i].ref);
        else
            problem(c, "row project %u ref %llu is in %u segment rows", c->folded[i].project,
                    (unsigned long long)c->folded[i].ref, c->seen[i]);
    }
    return rc;
}

/* Pre-aggregates and attrs values whose segment is gone. */
static int check_orphans(checker *c)
{
    static const int dbs[2] = {SDB__DB_PREAGG, SDB__DB_ATTRS};
    static const char *const what[2] = {"pre-aggregates", "tags and properties (attrs)"};
    int rc = SDB_OK;
    for (int i = 0; i < 2 && rc == SDB_OK; i++) {
        sdb__cur *cur;
        if ((rc = sdb__cur_open(c->t, dbs[i], &cur))) return rc;
        sdb__val key, val;
        for (rc = sdb__cur_seek(cur, NULL, 0, &key, &val); rc == SDB_OK && !c->stop;
             rc = sdb__cur_next(cur, &key, &val)) {
            sdb__val sv;
            if (sdb__get(c->t, SDB__DB_SEGMENTS, key.p, key.len, &sv) == SDB_ENOTFOUND)
                problem(c, "%s of key %zu bytes (project %u name %u) have no segment", what[i],
                        key.len, key.len >= 8 ? sdb__rd32(key.p) : 0,
                        key.len >= 8 ? sdb__rd32((const uint8_t *)key.p + 4) : 0);
        }
        sdb__cur_close(cur);
        if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    }
    return rc;
}

/* ------------------------------------------------------------------- ids */

static int idx_problem(void *arg, const char *msg)
{
    problem(arg, "id index: %s", msg);
    return 0;
}

/* The runs themselves: sorted, their directories consistent. Every id of
 * a row was looked up in check_rows. */
static int check_ids(checker *c) { return sdb__idx_check(c->t, idx_problem, c); }

int sdb_store_check(sdb_store *s, int (*on_problem)(void *ctx, const char *msg), void *ctx,
                    uint64_t *out_problems, char **out_summary)
{
    if (out_summary) *out_summary = NULL;
    checker c = {.on_problem = on_problem, .ctx = ctx};
    int rc = sdb__txn_begin(s, 0, &c.t);
    if (rc) return rc;
    if ((rc = check_rows(&c)) == SDB_OK && (rc = check_segments(&c)) == SDB_OK &&
        (rc = check_orphans(&c)) == SDB_OK)
        rc = check_ids(&c);
    sdb__txn_abort(c.t);
    if (out_problems) *out_problems = c.problems;
    if (rc == SDB_OK && out_summary) {
        char b[160];
        snprintf(b, sizeof b, "%llu segments, %llu rows (%zu folded), %llu ids",
                 (unsigned long long)c.n_segments, (unsigned long long)c.n_rows, c.n_folded,
                 (unsigned long long)c.n_ids);
        if (!(*out_summary = strdup(b))) rc = SDB_ENOMEM;
    }
    free(c.folded);
    free(c.seen);
    return rc;
}
