/* The plan stage: which segments a query reads, what its filters become,
 * and what it may cost, all decided before any column is read.
 *
 * Plan, per query (DESIGN.md "Query engine"):
 *   1. resolve the strings of the query (names, dimension values) to
 *      dictionary ids; a dimension filter becomes a membership bitmap over
 *      its dictionary, a source/type/value filter a table indexed by a
 *      row's packed type and source byte;
 *   2. seek by key to (project, name, bucket of `from`), stop past the
 *      bucket of `to`, and keep the segments whose zone map (time, value,
 *      types, an absent dimension) can match;
 *   3. fix the series intervals the slots cover and check the cost budget:
 *      groups x series points, groups x histogram bins, groups x category
 *      labels and the answer's size, each against its limit, with a 400
 *      naming the product before a byte of memory is spent on it.
 * The number of groups is bounded by what the plan knows: the product of
 * each group-by column's possible values (dictionary size, or the filter's
 * values, or 3 for source and data type), capped by the rows of the kept
 * segments. It is an upper bound, so the budget never lets through a
 * query that would exceed it, and it is exact for the shapes it refuses
 * in practice (a user or minute per group).
 */
#include "query.h"

#include <math.h>
#include <time.h>

#define MAX_INTERVALS 100000

int64_t sdb__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t interval_of(const sdb__plan *p, int64_t t)
{
    return sdb__floor_div(t - p->i_origin, p->i_width);
}

static int interval_error(sdb__plan *p)
{
    sdb__errf(p->err, p->errlen,
              "field \"interval\": the answer would have more than %d intervals; use a "
              "wider interval or a shorter time range",
              MAX_INTERVALS);
    return SDB_ELIMIT;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Filter strings to ids: a bitmap per dimension filter, the sorted
 * distinct name ids. Sets p->empty when nothing can match. */
static int resolve(sdb__plan *p, uint32_t **names, uint32_t *n_names)
{
    const sdb__query *q = p->q;
    for (int d = 0; d < SDB_N_DIMS; d++) {
        if (!q->has_dim[d]) continue;
        p->dim_filter = true;
        uint32_t nb = sdb__dict_max(p->t, p->project, d) + 1;
        p->dim_bits[d] = calloc((nb + 63) / 64, sizeof(uint64_t));
        if (!p->dim_bits[d]) return SDB_ENOMEM;
        p->dim_nbits[d] = nb;
        uint32_t m = 0;
        for (uint32_t i = 0; i < q->dim[d].n; i++) {
            uint32_t id;
            if (sdb__dict_id(p->t, p->project, d, q->dim[d].v[i].p, q->dim[d].v[i].len, 0,
                             &id) == SDB_OK &&
                id < nb) {
                p->dim_bits[d][id / 64] |= 1ull << (id % 64);
                m++;
            }
        }
        if (m == 0) p->empty = true;
    }
    if (q->has_names) {
        *names = malloc((q->names.n + 1) * sizeof(uint32_t));
        if (!*names) return SDB_ENOMEM;
        uint32_t m = 0;
        for (uint32_t i = 0; i < q->names.n; i++) {
            uint32_t id;
            if (sdb__dict_id(p->t, p->project, SDB_DICT_NAME, q->names.v[i].p,
                             q->names.v[i].len, 0, &id) == SDB_OK)
                (*names)[m++] = id;
        }
        qsort(*names, m, sizeof(uint32_t), cmp_u32);
        uint32_t u = 0;
        for (uint32_t i = 0; i < m; i++)
            if (u == 0 || (*names)[u - 1] != (*names)[i]) (*names)[u++] = (*names)[i];
        *n_names = u;
        if (u == 0) p->empty = true;
    }
    return SDB_OK;
}

/* Can any row of this segment pass (zone map, types, absent dimensions)? */
static bool seg_may_match(const sdb__plan *p, const sdb__seg *g)
{
    const sdb__seg_hdr *h = &g->h;
    const sdb__query *q = p->q;
    if (g->n == 0 || h->ts_max < p->t_lo || h->ts_min > p->t_hi) return false;
    uint64_t n_num = (uint64_t)h->n_type[SDB_NUMERIC] + h->n_type[SDB_BOOLEAN];
    if (q->has_value && (n_num == 0 || h->v_max < p->v_lo || h->v_min > p->v_hi)) return false;
    if (q->type_mask) {
        bool any = false;
        for (int t = 0; t < SDB_N_TYPES; t++)
            if (h->n_type[t] && (q->type_mask & (1u << t))) any = true;
        if (!any) return false;
    }
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (p->dim_bits[d] && h->dim_w[d] == 0 && !sdb__plan_dim_has(p, d, 0)) return false;
    return true;
}

static int keep(sdb__plan *p, const sdb__seg *g, const sdb__val *val, const uint8_t *key,
                int copied)
{
    if (p->n_segs == p->cap_segs) {
        size_t cap = p->cap_segs ? p->cap_segs * 2 : 256;
        sdb__pseg *s = realloc(p->segs, cap * sizeof *s);
        if (!s) return SDB_ENOMEM;
        p->segs = s;
        p->cap_segs = cap;
    }
    sdb__pseg *s = &p->segs[p->n_segs];
    s->val = val->p;
    s->len = val->len;
    if (copied) {
        /* sdb__live_seg's copy without dead rows lasts only until its next
         * call: the plan keeps its own (a header and columns, contiguous). */
        const uint8_t *start = g->start;
        size_t len = g->len;
        void *own = malloc(len ? len : 1);
        if (!own) return SDB_ENOMEM;
        memcpy(own, start, len);
        if (sdb__buf_add(&p->owned, &own, sizeof own)) {
            free(own);
            return SDB_ENOMEM;
        }
        s->val = own;
        s->len = len;
    }
    p->n_segs++;
    s->ts_min = g->h.ts_min;
    s->ts_max = g->h.ts_max;
    s->key = key;
    s->name = sdb__rd32(key + 4);
    p->rows += g->n;
    if (g->h.n_type[SDB_CATEGORICAL]) p->any_cat = true;
    return SDB_OK;
}

/* The segments of one name (or of every name when name == 0). */
static int scan_keys(sdb__plan *p, uint32_t name)
{
    sdb_store *s = sdb__txn_store(p->t);
    int64_t b_lo = p->t_lo == INT64_MIN ? INT64_MIN : sdb__floor_div(p->t_lo, s->bucket_ms) * s->bucket_ms;
    int64_t b_hi = p->t_hi == INT64_MAX ? INT64_MAX : sdb__floor_div(p->t_hi, s->bucket_ms) * s->bucket_ms;
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, p->project, name, b_lo, 0);
    sdb__cur *c;
    sdb__live lv; /* only live rows count (tombstones, internal.h) */
    int rc = sdb__live_open(p->t, &lv);
    if (rc == SDB_OK && (rc = sdb__cur_open(p->t, SDB__DB_SEGMENTS, &c))) sdb__live_close(&lv);
    if (rc) return rc;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, name ? sizeof k : 4, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        const uint8_t *kp = key.p;
        /* Constant lengths: the compiler compares in registers instead of
         * calling memcmp, which took 7% of a header-only scan (query g). */
        if (key.len != SDB__SEGKEY_LEN || (name ? memcmp(kp, k, 8) : memcmp(kp, k, 4)) != 0) break;
        int64_t bucket = sdb__key_ts(sdb__rd64(kp + 8));
        if (bucket < b_lo) continue;
        if (bucket > b_hi) {
            if (name) break;
            continue; /* the next name's buckets follow */
        }
        sdb__seg g;
        if ((rc = sdb__seg_open(val.p, val.len, &g))) break;
        int copied = sdb__live_seg(&lv, kp, &g);
        if ((rc = copied) < 0) break;
        rc = SDB_OK;
        if (seg_may_match(p, &g) && (rc = keep(p, &g, &val, kp, copied))) break;
    }
    sdb__cur_close(c);
    sdb__live_close(&lv);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}

/* Pass tables by a row's type/source byte (segment.c: type | source << 2). */
static void pass_tables(sdb__plan *p)
{
    const sdb__query *q = p->q;
    for (unsigned b = 0; b < 16; b++) {
        unsigned type = b & 3u, src = b >> 2 & 3u;
        bool ok = type < SDB_N_TYPES && src < SDB_N_SOURCES &&
                  (!q->type_mask || (q->type_mask & (1u << type))) &&
                  (!q->source_mask || (q->source_mask & (1u << src)));
        p->pass_num[b] = ok && type != SDB_CATEGORICAL;
        p->pass_cat[b] = ok && type == SDB_CATEGORICAL && !q->has_value;
    }
    p->tsrc_filter = q->type_mask || q->source_mask || q->has_value;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

static const char *gb_label(const sdb__query *q, uint32_t k)
{
    return q->group[k].label;
}

/* Refuse what the budget cannot hold, naming the product and its limit. */
static int budget(sdb__plan *p)
{
    const sdb__query *q = p->q;
    uint64_t groups = 1;
    char what[400] = "";
    size_t wl = 0;
    uint32_t n_names = 0;
    for (size_t i = 0; i < p->n_segs; i++)
        if (i == 0 || p->segs[i].name != p->segs[i - 1].name) n_names++;
    for (uint32_t k = 0; k < q->n_group; k++) {
        const sdb__gb *gb = &q->group[k];
        uint64_t card = 1;
        switch (gb->kind) {
        case SDB_GB_DIM:
            if (p->dim_bits[gb->dim]) {
                card = 0;
                for (uint32_t w = 0; w < (p->dim_nbits[gb->dim] + 63) / 64; w++)
                    card += (uint64_t)__builtin_popcountll(p->dim_bits[gb->dim][w]);
            } else {
                card = sdb__dict_max(p->t, p->project, gb->dim) + 1ull;
            }
            break;
        case SDB_GB_NAME: card = n_names; break;
        case SDB_GB_SOURCE: card = q->source_mask ? (uint64_t)__builtin_popcount(q->source_mask) : 3; break;
        case SDB_GB_TYPE: card = q->type_mask ? (uint64_t)__builtin_popcount(q->type_mask) : 3; break;
        case SDB_GB_PROP: card = sdb__dict_max(p->t, p->project, SDB_DICT_PROP) + 1ull; break;
        }
        groups = sat_mul(groups, card ? card : 1);
        if (wl < sizeof what)
            wl += (size_t)snprintf(what + wl, sizeof what - wl, "%s%s (%llu)", k ? " x " : "",
                                   gb_label(q, k), (unsigned long long)card);
    }
    if (groups > p->rows) groups = p->rows ? p->rows : 1;
    if (!q->n_group) snprintf(what, sizeof what, "no group_by (1)");
    uint64_t points = p->i_width ? p->n_int : 1;
    if (p->i_width && q->has_from && q->has_to && q->to > q->from) {
        uint64_t ans = (uint64_t)(interval_of(p, q->to - 1) - interval_of(p, q->from) + 1);
        if (ans > points) points = ans;
    }
    uint64_t labels = p->any_cat && !q->has_value ? p->n_labels : 0;
    uint64_t bins = q->has_hist ? q->bins : 0;
    struct {
        const char *name;
        uint64_t n;
    } prod[] = {{p->i_width ? "series points" : "1 point (no interval)", points}, {"histogram bins", bins}, {"category labels", labels}};
    for (int i = 0; i < 3; i++) {
        if (prod[i].n == 0) continue;
        uint64_t cells = sat_mul(groups, prod[i].n);
        if (cells > p->lim.max_cells) {
            sdb__errf(p->err, p->errlen,
                      "query too large: groups (up to %llu: %s) x %s (%llu) = %llu "
                      "accumulators, over the limit of %llu (query_max_cells); narrow the "
                      "time range or the groups%s",
                      (unsigned long long)groups, what, prod[i].name,
                      (unsigned long long)prod[i].n, (unsigned long long)cells,
                      (unsigned long long)p->lim.max_cells,
                      i == 0 ? ", or widen the interval" : i == 1 ? ", or use fewer bins" : "");
            return SDB_ELIMIT;
        }
    }
    /* Bytes of JSON per group, series point, bin, label and percentile,
     * roughly as json.c writes them with every stat asked for. */
    uint64_t per = 160 + sat_mul(points > 1 || p->i_width ? points : 0, 110) + bins * 24 +
                   labels * 32 + (uint64_t)q->n_pct * 30;
    uint64_t bytes = sat_mul(groups, per);
    if (bytes > p->lim.max_answer) {
        sdb__errf(p->err, p->errlen,
                  "query too large: the answer could take %llu bytes (groups up to %llu: %s), "
                  "over the limit of %llu (query_max_answer_bytes); narrow the time range or "
                  "the groups",
                  (unsigned long long)bytes, (unsigned long long)groups, what,
                  (unsigned long long)p->lim.max_answer);
        return SDB_ELIMIT;
    }
    return SDB_OK;
}

int sdb__plan_make(sdb__plan *p, sdb__txn *t, uint32_t project, const sdb__query *q,
                   const sdb__limits *lim, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->started = sdb__mono_ms();
    p->t = t;
    p->project = project;
    p->q = q;
    p->kern = sdb__kernels();
    p->err = err;
    p->errlen = errlen;
    p->lim = *lim;
    p->t_lo = q->has_from ? q->from : INT64_MIN;
    p->t_hi = q->has_to ? q->to - 1 : INT64_MAX;
    p->v_lo = q->has_value ? q->v_lo : -INFINITY;
    p->v_hi = q->has_value ? q->v_hi : INFINITY;
    p->row_filter = q->tags.n || q->n_props;
    p->need_row = p->row_filter;
    for (uint32_t k = 0; k < q->n_group; k++)
        if (q->group[k].kind == SDB_GB_PROP) p->need_row = true;
    p->want_traces = q->stats & SDB_STAT_TRACES;
    p->fixed_hist = q->has_hist && q->hist_has_min && q->hist_has_max;
    p->free_hist = q->has_hist && !p->fixed_hist;
    p->want_vals = q->n_pct > 0;
    p->counts_only = !(q->stats & ~(uint32_t)(SDB_STAT_COUNT | SDB_STAT_TRACES)) && !p->free_hist;
    p->no_moments = !(q->stats & SDB_STAT_STDDEV);
    if (p->fixed_hist) {
        p->h_lo = q->hist_min;
        p->h_hi = q->hist_max;
        p->h_width = (q->hist_max - q->hist_min) / q->bins;
    }
    p->i_width = q->interval_ms;
    p->i_origin = q->interval_origin;
    p->n_int = 1;
    if (p->i_width && q->has_from && q->has_to && q->to > q->from &&
        interval_of(p, q->to - 1) - interval_of(p, q->from) + 1 > MAX_INTERVALS) {
        interval_error(p);
        return SDB_EINVAL;
    }
    pass_tables(p);
    p->n_labels = sdb__dict_max(t, project, SDB_DICT_CATEGORY);
    uint32_t *names = NULL, n_names = 0;
    int rc = resolve(p, &names, &n_names);
    if (rc == SDB_OK) rc = sdb__attrs_plan(p);
    if (rc == SDB_OK && !p->empty && q->has_from && q->has_to && q->to <= q->from) p->empty = true;
    if (rc == SDB_OK && !p->empty) {
        if (q->has_names) {
            for (uint32_t i = 0; rc == SDB_OK && i < n_names; i++) rc = scan_keys(p, names[i]);
        } else {
            rc = scan_keys(p, 0);
        }
    }
    free(names);
    if (rc) return rc;
    if (p->n_segs == 0) p->empty = true;
    if (p->i_width && !p->empty) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = 0; i < p->n_segs; i++) {
            if (p->segs[i].ts_min < lo) lo = p->segs[i].ts_min;
            if (p->segs[i].ts_max > hi) hi = p->segs[i].ts_max;
        }
        if (lo < p->t_lo) lo = p->t_lo;
        if (hi > p->t_hi) hi = p->t_hi;
        p->i_lo = interval_of(p, lo);
        p->i_hi = interval_of(p, hi);
        /* Only the intervals with rows count when the range is open; the
         * slots cover every interval a kept segment touches. */
        if (p->i_hi - p->i_lo + 1 > MAX_INTERVALS) return interval_error(p);
        p->n_int = (uint32_t)(p->i_hi - p->i_lo + 1);
    }
    return p->empty ? SDB_OK : budget(p);
}

void sdb__plan_free(sdb__plan *p)
{
    for (size_t i = 0; i < p->owned.len / sizeof(void *); i++) {
        void *own;
        memcpy(&own, p->owned.p + i * sizeof own, sizeof own);
        free(own);
    }
    sdb__buf_free(&p->owned);
    for (int d = 0; d < SDB_N_DIMS; d++) free(p->dim_bits[d]);
    sdb__attrs_plan_free(p);
    free(p->segs);
    memset(p, 0, sizeof *p);
}

int sdb__plan_check(const sdb__plan *p, const sdb__gtab *g)
{
    if (p->lim.max_ms > 0 && sdb__mono_ms() - p->started > p->lim.max_ms) {
        sdb__errf(p->err, p->errlen,
                  "query stopped after %lld ms, over the limit of %lld ms (query_max_ms); "
                  "narrow the time range or the groups",
                  (long long)(sdb__mono_ms() - p->started), (long long)p->lim.max_ms);
        return SDB_EBUSY;
    }
    if (g->mem > p->lim.max_mem) {
        sdb__errf(p->err, p->errlen,
                  "query too large: its accumulators took %zu bytes, over the limit of %llu "
                  "(query_max_mem_bytes); narrow the time range or the groups",
                  g->mem, (unsigned long long)p->lim.max_mem);
        return SDB_ELIMIT;
    }
    return SDB_OK;
}
