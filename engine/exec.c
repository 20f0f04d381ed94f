/* The execute stage: one pipeline for every query, per segment and per
 * batch of rows.
 *
 * For each kept segment, in batches of BATCH rows:
 *   selection  time and value ranges by mask_f64 (SIMD compares), the
 *              type/source byte through the plan's pass tables, each
 *              dimension filter through its membership bitmap over the
 *              dictionary-id column, tags and properties through their
 *              fold-time columns (engine/attrs.c; the row store only for
 *              a chunk that does not keep them); the result is a list of
 *              row indexes, split into numeric and categorical rows;
 *   slots      each group-by column's raw ids (dimension column, source,
 *              type, name, property id) become one group per row through
 *              the group table's per-query maps (sdb__gtab_groups, once per
 *              batch), and the series interval makes it a slot;
 *   aggregate  kernels over (values, selection, slots): slot_agg (count,
 *              sum, min, max, moments), slot_hist, label counts, trace
 *              hashes and values per group.
 * Shortcuts feed the same accumulators, never a second set of rules: a
 * segment whose rows all pass and whose keys are constant adds its header
 * (and scans only for what a header cannot hold); one grouped by a
 * dimension, or filtered by one (and grouped by it or by constant keys),
 * adds its per-value pre-aggregates (those the filter keeps); one whose
 * only filters are time and value ranges and whose keys are constant runs
 * the filter kernels (agg, hist, select, series) over the whole column,
 * which is the batch pipeline with the selection fused into the kernel.
 *
 * A histogram whose bounds come from the data runs a second pass (pass
 * 1) once pass 0 has given each group its min and max, from headers where
 * segments are covered and from the kernels otherwise, so no value is
 * stored for it (unless percentiles store them anyway).
 *
 * The time and memory caps are checked between batches and segments.
 *
 * A plan with enough rows is cut into parts run on the process's helper
 * threads and the caller, each into its own group table, merged in part
 * order (docs/query-engine.md "Both cores"); the rest of this file does
 * not know whether it runs on one thread or several.
 */
#include "query.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#define BATCH 1024
/* The bitmap path's dense slots (bits_dense): up to GPASS_MAX local slots
 * a segment are each aggregated by one masked pass over the batch; up to
 * DENSE_MAX (over at most DENSE_IV_MAX intervals) by a walk that takes a
 * row's slot from its local slot. */
#define GPASS_MAX 8
/* Selected rows a batch per local slot for the passes: a pass costs about
 * 430 ns a batch (time.source.stats.frequent, 10M: 1.7 ns a row over 4
 * local slots), the walk about 4 ns a row when slots are few. */
#define GPASS_ROWS 100
#define DENSE_MAX 4096
#define DENSE_IV_MAX 32
#define SERIES_TMP_MAX 4096
#define PREFETCH 8 /* segments ahead */

/* A kept segment, opened. Its time, value and trace columns as the
 * kernels read them (i64, f64, u64 arrays) are set by load_cols before a
 * path scans rows: in place when the segment stores them raw, else
 * decoded into the xstate's scratch. */
typedef struct xseg {
    sdb__seg g;
    const uint8_t *key;
    uint32_t name;
    const uint8_t *ts, *value, *trace;
} xseg;

typedef struct xstate {
    const sdb__plan *p;
    sdb__gtab *g;
    int pass;
    double *lo, *hi, *width; /* pass 1: each group's histogram bounds */
    sdb_agg *stmp; /* SERIES_TMP_MAX, allocated on first use */
    int64_t *dts;  /* decoded columns of the segment at hand (load_cols) */
    double *dv;
    uint64_t *dtr;
    uint8_t *ddim; /* dimension d's ids at byte widths: 4 cap_cols bytes from ddim + 4 d cap_cols */
    uint8_t *dtsrc; /* the type/source bytes */
    uint32_t cap_cols;
    uint64_t bits[BATCH / 64];
    uint32_t sel[BATCH];
    uint64_t trd[BATCH]; /* the batch's trace numbers (batch_rows) */
    uint8_t iscat[BATCH];
    uint8_t pass_any[16];            /* pass_num | pass_cat */
    uint8_t any_set[32];             /* pass_any as a 256-bit set of tsrc bytes (bits_lut8) */
    uint8_t dset[SDB_N_DIMS][32];    /* a dimension filter over the ids of a 1-byte column */
    uint16_t bin[BATCH];             /* each row's histogram bin (bits_path) */
    /* bits_dense: each row's local slot, the rows of one local slot, and
     * each local slot's group (BITS_NONE until seen in the segment). */
    uint8_t loc8[BATCH];
    uint64_t sbits[BATCH / 64];
    uint32_t lgrp[DENSE_MAX], lslot[DENSE_MAX];
    /* What lgrp and lslot were made for (the local slots' meaning: keys,
     * their local values, the constant keys, the intervals), so that the
     * next segment with the same keeps them: resolving every local slot
     * again was a quarter of source.model_prompt.stddev.typical (1M, small
     * segments). lsig_n 0: none. */
    uint32_t lsig[3 + SDB_MAX_GROUP_BY], lsig_n;
    struct bitgroups *bg; /* the bitmap path's tables (bits_plan), kept between segments */
    uint32_t raw[SDB_MAX_GROUP_BY][BATCH];
    uint32_t grp[BATCH], slot[BATCH];
    uint32_t idx_n[BATCH], grp_n[BATCH], slot_n[BATCH];
    uint32_t idx_c[BATCH], grp_c[BATCH], slot_c[BATCH];
    /* A free histogram's pass 0 keeps the numeric rows the batch path
     * selected (value, group) so that pass 1 bins them without walking
     * those segments again (hcache_* below). */
    double *hv;
    uint32_t *hg;
    size_t hn, hcap;
    size_t *hseg;   /* per segment of the run: [hseg[2i], hseg[2i+1]) in hv, or SIZE_MAX */
    size_t hstart;  /* where its rows start in hv */
    bool hfull;     /* past sdb__hcache_max_rows: later segments walk again */
    uint32_t iota[BATCH]; /* 0, 1, ...: the row indexes of hv's batches */
    /* vals_batch: the batch's selected values packed (sel_f64), each one's
     * local slot, the rows of each local slot (0 between batches), the
     * local slots the batch touched and each one's next store. */
    double cv[BATCH];
    uint16_t cl[BATCH], vtl[BATCH];
    uint32_t vcnt[DENSE_MAX];
    double *vwp[DENSE_MAX];
} xstate;

static inline double ld_f64(const uint8_t *p, size_t i)
{
    double x;
    memcpy(&x, p + i * 8, 8);
    return x;
}
static inline int64_t ld_i64(const uint8_t *p, size_t i)
{
    int64_t x;
    memcpy(&x, p + i * 8, 8);
    return x;
}
static inline uint64_t ld_u64(const uint8_t *p, size_t i)
{
    uint64_t x;
    memcpy(&x, p + i * 8, 8);
    return x;
}

static inline int64_t interval_of(const sdb__plan *p, int64_t t)
{
    return sdb__floor_div(t - p->i_origin, p->i_width);
}

/* What one segment needs, decided from its header. */
typedef struct segclass {
    bool t_in, v_in, has_cat, all_cat, tsrc_rows, dims_rows, covered;
    bool keys_const;            /* every group key is constant over the segment */
    int var_key;                /* the one varying DIM key, or -1 */
    int fdim;                   /* the one dimension whose filter rows decide, or -1 */
    bool iv_const;
    uint32_t iv;                /* the constant interval, as a slot offset */
    uint32_t raw_const[SDB_MAX_GROUP_BY];
    bool key_var[SDB_MAX_GROUP_BY];
    double mean;                /* a shift for this segment's values */
} segclass;

static void classify(const sdb__plan *p, const xseg *ps, segclass *c)
{
    const sdb__seg_hdr *h = &ps->g.h;
    const sdb__query *q = p->q;
    memset(c, 0, sizeof *c);
    c->t_in = h->ts_min >= p->t_lo && h->ts_max <= p->t_hi;
    c->has_cat = h->n_type[SDB_CATEGORICAL] > 0;
    c->all_cat = h->n_type[SDB_CATEGORICAL] == h->n_rows;
    c->v_in = !q->has_value || (!c->has_cat && h->v_min >= p->v_lo && h->v_max <= p->v_hi);
    bool types_all = true;
    if (q->type_mask)
        for (int t = 0; t < SDB_N_TYPES; t++)
            if (h->n_type[t] && !(q->type_mask & (1u << t))) types_all = false;
    /* Rows need their type/source byte read when a source or type filter
     * is not decided by the header, or when numeric and categorical rows
     * must be told apart. */
    c->tsrc_rows = q->source_mask || !types_all || (c->has_cat && !c->all_cat);
    int n_fd = 0;
    c->fdim = -1;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (p->dim_bits[d] && h->dim_w[d]) {
            c->dims_rows = true;
            c->fdim = d;
            n_fd++;
        }
    if (n_fd != 1) c->fdim = -1;
    c->covered = c->t_in && c->v_in && !c->tsrc_rows && !c->dims_rows && !p->row_filter;
    c->keys_const = true;
    c->var_key = -1;
    int n_var = 0;
    for (uint32_t k = 0; k < q->n_group; k++) {
        const sdb__gb *gb = &q->group[k];
        bool var = false;
        switch (gb->kind) {
        case SDB_GB_NAME: c->raw_const[k] = ps->name; break;
        case SDB_GB_DIM:
            if (h->dim_w[gb->dim] == 0) c->raw_const[k] = 0;
            else var = true;
            break;
        case SDB_GB_TYPE: {
            int only = -1, n = 0;
            for (int t = 0; t < SDB_N_TYPES; t++)
                if (h->n_type[t]) {
                    only = t;
                    n++;
                }
            if (n == 1) c->raw_const[k] = (uint32_t)only + 1;
            else var = true;
            break;
        }
        default: var = true; break;
        }
        c->key_var[k] = var;
        if (var) {
            c->keys_const = false;
            n_var++;
            if (gb->kind == SDB_GB_DIM) c->var_key = (int)k;
        }
    }
    if (n_var != 1) c->var_key = -1;
    c->iv_const = true;
    if (p->i_width) {
        int64_t a = interval_of(p, h->ts_min > p->t_lo ? h->ts_min : p->t_lo);
        int64_t b = interval_of(p, h->ts_max < p->t_hi ? h->ts_max : p->t_hi);
        c->iv_const = a == b;
        c->iv = (uint32_t)(a - p->i_lo);
    }
    uint64_t n_num = (uint64_t)h->n_type[SDB_NUMERIC] + h->n_type[SDB_BOOLEAN];
    c->mean = n_num ? h->k + h->dm : 0;
}

/* The group of a segment whose keys are all constant. */
static int const_group(xstate *x, const segclass *c, uint32_t *out)
{
    uint32_t *none[SDB_MAX_GROUP_BY] = {NULL};
    return sdb__gtab_groups(x->g, none, c->raw_const, 1, out);
}

static inline sdb_slot *slot_at(xstate *x, uint32_t gi, uint32_t iv)
{
    return &x->g->slot[(size_t)gi * x->g->n_int + iv];
}

static inline uint64_t *hist_of(xstate *x, uint32_t gi)
{
    return x->g->hist + (size_t)gi * (x->g->bins + 2);
}

/* ------------------------------------------------- whole-column kernels */

/* Everything but the moments and counts, over the numeric rows of a
 * segment without categorical ones, with f selecting them: the fixed
 * histogram, trace hashes, values. */
static int filter_extras(xstate *x, const xseg *ps, uint32_t gi, const sdb_filter *f)
{
    const sdb__plan *p = x->p;
    const sdb__seg *g = &ps->g;
    if (p->fixed_hist)
        p->kern->hist_f64(ps->value, ps->ts, g->n, f, p->h_lo, p->h_hi, p->h_width, p->q->bins,
                          hist_of(x, gi));
    if (p->want_traces) {
        sdb__traceset *ts = &x->g->traces[gi];
        uint64_t *out = sdb__traceset_room(ts, g->n);
        if (!out) return SDB_ENOMEM;
        const void *tr = sdb__seg_traces(g, p->kern, x->dtr); /* load_cols leaves it */
        size_t k = p->kern->select_u64(tr, ps->value, ps->ts, g->n, f, out);
        ts->n += k;
        x->g->mem += k * 8;
    }
    if (p->want_vals) {
        sdb__dvec *d = &x->g->vals[gi];
        bool all_t = f->t_lo == INT64_MIN && f->t_hi == INT64_MAX;
        /* room for the whole segment at once: one realloc, then plain stores */
        if (sdb__dvec_reserve(x->g, d, g->n)) return SDB_ENOMEM;
        for (uint32_t i = 0; i < g->n; i++) {
            double v = ld_f64(ps->value, i);
            bool ok = v >= f->v_lo && v <= f->v_hi;
            if (!all_t) {
                int64_t t = ld_i64(ps->ts, i);
                ok = ok && t >= f->t_lo && t <= f->t_hi;
            }
            d->v[d->n] = v;
            d->n += ok;
        }
    }
    return SDB_OK;
}

/* The first value f selects: the shift of a slot that is still empty. A
 * data value of the slot keeps s2 - s1^2 / n exact when every value is
 * the same (a value filter with eq, a constant score), where a mean that
 * is not one of the values would leave rounding behind. */
static double first_value(const xseg *ps, const sdb_filter *f, double dflt)
{
    for (uint32_t i = 0; i < ps->g.n; i++) {
        double v = ld_f64(ps->value, i);
        int64_t t = ld_i64(ps->ts, i);
        if (v >= f->v_lo && v <= f->v_hi && t >= f->t_lo && t <= f->t_hi) return v;
    }
    return dflt;
}

/* Constant keys, no categorical rows, only time and value filters: the
 * filter kernels over the whole column. */
static int filter_path(xstate *x, const xseg *ps, const segclass *c)
{
    const sdb__plan *p = x->p;
    const sdb__seg *g = &ps->g;
    sdb_filter f = {p->t_lo, p->t_hi, p->v_lo, p->v_hi, 0};
    if (c->t_in) {
        /* Every timestamp passes: the SIMD tables then skip the ts column. */
        f.t_lo = INT64_MIN;
        f.t_hi = INT64_MAX;
    }
    uint32_t gi;
    int rc = const_group(x, c, &gi);
    if (rc) return rc;
    if (x->pass == 1) {
        p->kern->hist_f64(ps->value, ps->ts, g->n, &f, x->lo[gi], x->hi[gi], x->width[gi],
                          p->q->bins, hist_of(x, gi));
        return SDB_OK;
    }
    if (!c->iv_const) {
        /* A series inside the segment: series_f64 buckets it. */
        int64_t lo = interval_of(p, g->h.ts_min > p->t_lo ? g->h.ts_min : p->t_lo);
        int64_t hi = interval_of(p, g->h.ts_max < p->t_hi ? g->h.ts_max : p->t_hi);
        uint32_t nb = (uint32_t)(hi - lo + 1);
        f.t_lo = p->t_lo;
        f.t_hi = p->t_hi;
        f.shift = c->mean;
        if (!x->stmp && !(x->stmp = malloc(SERIES_TMP_MAX * sizeof *x->stmp))) return SDB_ENOMEM;
        for (uint32_t i = 0; i < nb; i++) sdb__agg_empty(&x->stmp[i]);
        p->kern->series_f64(ps->value, ps->ts, g->n, &f, lo * p->i_width + p->i_origin,
                            p->i_width, nb, x->stmp);
        for (uint32_t i = 0; i < nb; i++)
            if (x->stmp[i].n)
                sdb__slot_add_agg(slot_at(x, gi, (uint32_t)(lo + i - p->i_lo)), &x->stmp[i], f.shift);
        return filter_extras(x, ps, gi, &f);
    }
    /* The extras first: select_u64 pulls the values from memory together
     * with the hashes, and agg_f64 then finds them in L2 (query f: 4.0 ms
     * with agg first, 3.0 ms so). */
    if ((rc = filter_extras(x, ps, gi, &f))) return rc;
    sdb_slot *s = slot_at(x, gi, c->iv);
    f.shift = s->n ? s->k : first_value(ps, &f, c->mean);
    sdb_agg a;
    p->kern->agg_f64(ps->value, ps->ts, g->n, &f, &a);
    sdb__slot_add_agg(s, &a, f.shift);
    return SDB_OK;
}

/* A decimal value column (and, when the filter cuts the segment's time,
 * a packed time column that cannot overflow) that agg_dec scans without
 * decoding: the fused path's condition. */
static bool dec_fusable(const sdb__seg *g, bool need_ts)
{
    if (g->h.v_enc != SDB__V_DEC || g->h.v_bits > 32) return false;
    if (!need_ts) return true;
    if (g->h.ts_bits > 32) return false;
    int64_t top = g->h.ts_bits ? (int64_t)((1ull << g->h.ts_bits) - 1) : 0;
    return g->h.ts_min <= INT64_MAX - top;
}

/* filter_path's agg of one slot over a decimal segment, fused: agg_dec
 * compares entries and time offsets with bounds converted once and sums
 * the decoded doubles without writing them (kernels.h), so load_cols is
 * skipped. (An empty slot's shift read through the row accessors, row by
 * row until one passed, cost a query cut at a time 1.35x: 5.5 -> 7.5 us at
 * 1M, time.none.stats.) */
static int dec_path(xstate *x, xseg *ps, const segclass *c)
{
    const sdb__plan *p = x->p;
    sdb__seg *g = &ps->g;
    sdb__seg_cols(g);
    sdb_filter f = {p->t_lo, p->t_hi, p->v_lo, p->v_hi, 0};
    uint32_t gi;
    int rc = const_group(x, c, &gi);
    if (rc) return rc;
    sdb_slot *s = slot_at(x, gi, c->iv);
    /* An empty slot's shift is the first value the filter selects
     * (first_value's rule), which agg_dec finds itself for a NaN one. */
    f.shift = s->n ? s->k : NAN;
    double scale = 1.0; /* 10^e: exact for every e the format allows */
    for (unsigned e = 0; e < g->h.v_exp; e++) scale *= 10.0;
    sdb_agg a;
    double k;
    p->kern->agg_dec(g->value, g->h.v_bits, g->h.v_base, scale, c->t_in ? NULL : g->ts,
                     g->h.ts_bits, g->h.ts_min, g->n, &f, &a, &k);
    sdb__slot_add_agg(s, &a, k);
    return SDB_OK;
}

/* A categorical chunk wholly inside the query: its label counts are
 * pre-aggregated. Returns 1 when the chunk kept none (or they do not
 * cover it). */
static int labels_preagg(xstate *x, const xseg *ps, uint32_t gi)
{
    sdb__val v;
    const uint8_t *lp;
    int rc = sdb__get(x->p->t, SDB__DB_PREAGG, ps->key, SDB__SEGKEY_LEN, &v);
    if (rc == SDB_ENOTFOUND) return 1;
    if (rc) return rc;
    int m = sdb__preagg_labels(v.p, v.len, &lp);
    if (m < 0) return 1;
    uint32_t pair[2];
    uint64_t n = 0;
    for (int i = 0; i < m; i++) {
        memcpy(pair, lp + 8 * (size_t)i, 8);
        n += pair[1];
    }
    if (n != ps->g.n) return 1;
    uint64_t *cats = sdb__gtab_cats(x->g, gi);
    if (!cats) return SDB_ENOMEM;
    for (int i = 0; i < m; i++) {
        memcpy(pair, lp + 8 * (size_t)i, 8);
        if (pair[0] <= x->g->n_labels) cats[pair[0]] += pair[1];
    }
    return SDB_OK;
}

/* A chunk wholly inside the query but for a filter on dimension fdim (or
 * -1: none), grouped by that same dimension or by constant keys only: its
 * per-value pre-aggregates of the dimension, those of the values the
 * filter lets through. Returns 1 when the chunk kept none for the
 * dimension. */
static int dim_preagg(xstate *x, const xseg *ps, const segclass *c, int fdim)
{
    const sdb__query *q = x->p->q;
    int dim = c->var_key >= 0 ? q->group[c->var_key].dim : fdim;
    sdb__val v;
    int rc = sdb__get(x->p->t, SDB__DB_PREAGG, ps->key, SDB__SEGKEY_LEN, &v);
    if (rc == SDB_ENOTFOUND) return 1;
    if (rc) return rc;
    const uint8_t *pp;
    int m = sdb__preagg_find(v.p, v.len, dim, &pp);
    if (m < 0) return 1;
    /* A chunk with dead rows (sdb__live_seg gave a copy without them) has
     * fewer rows than its pre-aggregates count: its rows are scanned. */
    uint64_t total = 0;
    for (int i = 0; i < m; i++) {
        sdb__preagg pa;
        memcpy(&pa, pp + (size_t)i * sizeof pa, sizeof pa);
        total += pa.n;
    }
    if (total != ps->g.n) return 1;
    /* The entries the filter keeps (their indexes in x->sel), their ids
     * the group key's raw ids when the key is the dimension. */
    uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL};
    if (c->var_key >= 0) raw[c->var_key] = x->raw[0];
    uint32_t kept = 0;
    for (int i = 0; i < m; i++) {
        sdb__preagg pa;
        memcpy(&pa, pp + (size_t)i * sizeof pa, sizeof pa);
        if (fdim >= 0 && !sdb__plan_dim_has(x->p, fdim, pa.id)) continue;
        x->raw[0][kept] = pa.id;
        x->sel[kept++] = (uint32_t)i;
    }
    if ((rc = sdb__gtab_groups(x->g, raw, c->raw_const, kept, x->grp))) return rc;
    for (uint32_t i = 0; i < kept; i++) {
        sdb__preagg pa;
        memcpy(&pa, pp + (size_t)x->sel[i] * sizeof pa, sizeof pa);
        sdb__mom mm = {.n = pa.n, .sum = pa.sum, .k = pa.k, .dm = pa.dm, .m2 = pa.m2,
                       .min = pa.min, .max = pa.max};
        sdb__slot_add_mom(slot_at(x, x->grp[i], c->iv), pa.n, &mm);
    }
    return SDB_OK;
}

/* ------------------------------------------------------- the batch path */

/* Row filters and property keys from the row store (tags, properties),
 * for a chunk whose attrs value does not keep what the query asks (over
 * engine/attrs.c's bounds): drops the rows of sel[0..n) that fail, fills
 * the property key columns; returns the rows kept. */
static int row_store_locked(xstate *x, const sdb__seg *g, uint32_t i0, uint32_t n, uint32_t *out_n);

/* The row store's reader state (its block cache, engine/row.c) and the
 * dictionary's are the transaction's, one thread's: the parts of a
 * threaded plan take turns here, under their run's lock (exec_parallel).
 * A chunk past attrs' bounds is rare, so the parts that need none never
 * wait, and other queries (other transactions) never do. */
static int row_store(xstate *x, const sdb__seg *g, uint32_t i0, uint32_t n, uint32_t *out_n)
{
    pthread_mutex_t *mu = x->p->row_mu;
    if (mu) pthread_mutex_lock(mu);
    int rc = row_store_locked(x, g, i0, n, out_n);
    if (mu) pthread_mutex_unlock(mu);
    return rc;
}

static int row_store_locked(xstate *x, const sdb__seg *g, uint32_t i0, uint32_t n, uint32_t *out_n)
{
    const sdb__plan *p = x->p;
    const sdb__query *q = p->q;
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = i0 + x->sel[j];
        sdb__val rv;
        sdb__row row;
        int rc = sdb__row_get(p->t, p->project, sdb__seg_ref(g, i), &rv);
        if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
        if ((rc = sdb__row_decode(rv.p, rv.len, &row))) return rc;
        bool ok = true;
        for (uint32_t k = 0; ok && k < q->tags.n; k++)
            ok = sdb__row_has_tag(&row, q->tags.v[k].p, q->tags.v[k].len);
        for (uint32_t k = 0; ok && k < q->n_props; k++) {
            sdb__str pv;
            ok = sdb__row_prop_get(&row, q->props[k].key.p, q->props[k].key.len, &pv);
            bool any = false;
            for (uint32_t mm = 0; ok && !any && mm < q->props[k].values.n; mm++)
                any = pv.len == q->props[k].values.v[mm].len &&
                      memcmp(pv.p, q->props[k].values.v[mm].p, pv.len) == 0;
            ok = ok && any;
        }
        if (!ok) continue;
        for (uint32_t k = 0; k < q->n_group; k++) {
            if (q->group[k].kind != SDB_GB_PROP) continue;
            sdb__str v;
            uint32_t id = 0;
            if (sdb__row_prop_get(&row, q->group[k].key.p, q->group[k].key.len, &v))
                sdb__dict_id(p->t, p->project, SDB_DICT_PROP, v.p, v.len, 0, &id);
            x->raw[k][m] = id;
        }
        x->sel[m] = x->sel[j];
        x->iscat[m] = x->iscat[j];
        m++;
    }
    *out_n = m;
    return SDB_OK;
}

/* The dictionary ids of the selected rows of a dimension column of width
 * w (0: absent, every id 0), one loop per width. */
static void ids_of(const uint8_t *col, unsigned w, uint32_t i0, const uint32_t *sel, uint32_t n,
                   uint32_t *out)
{
    switch (w) {
    case 1:
        for (uint32_t j = 0; j < n; j++) out[j] = col[i0 + sel[j]];
        break;
    case 2:
        for (uint32_t j = 0; j < n; j++) {
            uint16_t x;
            memcpy(&x, col + 2 * ((size_t)i0 + sel[j]), 2);
            out[j] = x;
        }
        break;
    case 4:
        for (uint32_t j = 0; j < n; j++) memcpy(&out[j], col + 4 * ((size_t)i0 + sel[j]), 4);
        break;
    default: memset(out, 0, n * sizeof *out); break;
    }
}

/* Add each selected row's raw code part of a dimension key column
 * (width w, stride st, ids past n_map counted as 0) to code[j]. */
static void codes_add(const uint8_t *col, unsigned w, uint32_t i0, const uint32_t *sel, uint32_t n,
                      uint32_t st, uint32_t n_map, uint32_t *code)
{
    switch (w) {
    case 1:
        for (uint32_t j = 0; j < n; j++) {
            uint32_t r = col[i0 + sel[j]];
            code[j] += (r < n_map ? r : 0) * st;
        }
        break;
    case 2:
        for (uint32_t j = 0; j < n; j++) {
            uint16_t r;
            memcpy(&r, col + 2 * ((size_t)i0 + sel[j]), 2);
            code[j] += (r < n_map ? r : 0) * st;
        }
        break;
    case 4:
        for (uint32_t j = 0; j < n; j++) {
            uint32_t r;
            memcpy(&r, col + 4 * ((size_t)i0 + sel[j]), 4);
            code[j] += (r < n_map ? r : 0) * st;
        }
        break;
    default: break; /* absent: id 0 */
    }
}

/* bits &= whether each row of the batch (m rows from i0) passes filter
 * fc (a dimension, property or tag filter, query.h's sdb__fcol): a 1-byte
 * column by the bits_lut8 kernel over its 256-bit set, a wider one by a
 * bitmap load per row from the contiguous id column, no gather through a
 * selection and no branch but the skip of a word that is already empty. */
static void fcol_words(const sdb_kernels *k, const sdb__fcol *fc, uint32_t i0, uint32_t m,
                       uint64_t *bits)
{
    const uint64_t *mem = fc->mem;
    uint32_t nb = fc->nb;
    if (fc->w == 1) {
        k->bits_lut8(fc->col + i0, m, fc->set, bits, bits);
        return;
    }
    if (fc->w == 0) {
        k->bits_pk(fc->col, fc->nb, i0, m, fc->set, bits, bits);
        return;
    }
    for (uint32_t w = 0, base = 0; base < m; w++, base += 64) {
        if (!bits[w]) continue;
        uint32_t cnt = m - base < 64 ? m - base : 64;
        uint64_t word = 0;
        switch (fc->w) {
        case 2:
            for (uint32_t j = 0; j < cnt; j++) {
                uint16_t id;
                memcpy(&id, fc->col + 2 * ((size_t)i0 + base + j), 2);
                word |= (uint64_t)(id < nb && (mem[id / 64] >> (id % 64) & 1)) << j;
            }
            break;
        default:
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t id;
                memcpy(&id, fc->col + 4 * ((size_t)i0 + base + j), 4);
                word |= (uint64_t)(id < nb && (mem[id / 64] >> (id % 64) & 1)) << j;
            }
            break;
        }
        bits[w] &= word;
    }
}

/* The selection of a batch of m rows from i0 into x->sel / x->iscat: the
 * time/value mask (all rows when !need_tv) as bit words, the type/source
 * pass table (tf, when not NULL: the packed column against any_set) and
 * each dimension filter (dc), then each tag and property filter (afc),
 * ANDed into the words from their contiguous columns, then the set bits.
 * A row is categorical by the table (read from tsrc, the unpacked bytes
 * from i0, or, without a table, when the segment is all categorical);
 * only a segment with categorical rows reads it back. */
static void select_bits(xstate *x, const sdb__fcol *dc, int n_dc, const sdb__fcol *afc,
                        uint32_t n_afc, const uint8_t *v, const uint8_t *ts, const sdb__fcol *tf,
                        uint32_t i0, uint32_t m, bool need_tv, const sdb_filter *f)
{
    const sdb__plan *p = x->p;
    uint32_t nw = (m + 63) / 64;
    if (need_tv) {
        p->kern->mask_f64(v, ts, m, f, x->bits);
    } else {
        for (uint32_t w = 0; w < nw; w++) x->bits[w] = ~0ull;
        if (m % 64) x->bits[nw - 1] = (1ull << (m % 64)) - 1;
    }
    if (tf) fcol_words(p->kern, tf, i0, m, x->bits);
    for (int k = 0; k < n_dc; k++) fcol_words(p->kern, &dc[k], i0, m, x->bits);
    for (uint32_t k = 0; k < n_afc; k++) fcol_words(p->kern, &afc[k], i0, m, x->bits);
}

static uint32_t select_rows(xstate *x, const sdb__fcol *dc, int n_dc, const sdb__fcol *afc,
                            uint32_t n_afc, const uint8_t *v, const uint8_t *ts,
                            const sdb__fcol *tf, const uint8_t *tsrc, uint32_t i0, uint32_t m,
                            bool need_tv, const segclass *c, const sdb_filter *f)
{
    const sdb__plan *p = x->p;
    uint32_t nw = (m + 63) / 64, ns = 0;
    select_bits(x, dc, n_dc, afc, n_afc, v, ts, tf, i0, m, need_tv, f);
    for (uint32_t w = 0; w < nw; w++)
        for (uint64_t b = x->bits[w]; b; b &= b - 1) x->sel[ns++] = w * 64 + (uint32_t)__builtin_ctzll(b);
    if (tf && c->has_cat && !c->all_cat)
        for (uint32_t j = 0; j < ns; j++) x->iscat[j] = p->pass_cat[tsrc[x->sel[j]] & 15u];
    else
        memset(x->iscat, c->all_cat, ns);
    return ns;
}

/* ---------------------------------------- pass 0's rows for pass 1 */

/* A histogram without bounds bins in pass 1 what pass 0 selected: the
 * batch path's selection, group codes and slots cost 20-40 ns a row at the
 * typical name (environment.model_prompt.hist_free.typical, 155k rows, 4.2
 * ms: perf puts batch_rows' selection words, code sums and set-bit
 * extraction at 43% and the two kernels at 32%), and pass 1 paid them
 * again. Pass 0 now appends each selected numeric row's value and group
 * (12 bytes), up to sdb__hcache_max_rows (2^21) per part (counted in the table's
 * memory), and pass 1 runs slot_hist over them; segments that pass 0
 * answered otherwise (headers, pre-aggregates, the filter kernels) or
 * that came after the cache filled walk again. The rows and groups are
 * the same, so the bins are the same counts. */
size_t sdb__hcache_max_rows = SDB__HCACHE_MAX_ROWS;

static int hcache_add(xstate *x, const uint8_t *v, const uint32_t *idx, const uint32_t *grp,
                      uint32_t n)
{
    if (x->hfull || !n) return SDB_OK;
    if (x->hn + n > sdb__hcache_max_rows) {
        /* This segment is walked again in pass 1, and so are later ones. */
        x->hfull = true;
        x->hn = x->hstart;
        return SDB_OK;
    }
    if (x->hn + n > x->hcap) {
        size_t cap = x->hcap ? 2 * x->hcap : 4096;
        while (cap < x->hn + n) cap *= 2;
        double *hv = realloc(x->hv, cap * sizeof *hv);
        if (!hv) return SDB_ENOMEM;
        x->hv = hv;
        uint32_t *hg = realloc(x->hg, cap * sizeof *hg);
        if (!hg) return SDB_ENOMEM;
        x->hg = hg;
        x->g->mem += (cap - x->hcap) * (sizeof *hv + sizeof *hg);
        x->hcap = cap;
    }
    for (uint32_t j = 0; j < n; j++) {
        x->hv[x->hn + j] = ld_f64(v, idx[j]);
        x->hg[x->hn + j] = grp[j];
    }
    x->hn += n;
    return SDB_OK;
}

/* Pass 1 over the rows pass 0 kept for segment i: 1, or 0 when it kept none. */
static int hcache_bin(xstate *x, size_t i)
{
    if (!x->hseg || x->hseg[2 * i] == SIZE_MAX) return 0;
    const sdb__plan *p = x->p;
    for (size_t at = x->hseg[2 * i], end = x->hseg[2 * i + 1]; at < end; at += BATCH) {
        size_t m = end - at < BATCH ? end - at : BATCH;
        p->kern->slot_hist(x->hv + at, x->iota, x->hg + at, m, x->lo, x->hi, x->width, 1,
                           p->q->bins, x->g->hist);
    }
    return 1;
}

/* The bitmap path: a segment whose query wants only slot stats and fixed
 * histograms (no categorical rows, percentiles, traces, unbounded
 * histograms, or tags and properties the chunk's attrs columns do not
 * keep), grouped by one-byte keys (dimensions and properties of one-byte
 * ids, the source, the type) and the series interval, is
 * aggregated straight from the selection bitmap, without the index list,
 * group ids and slots that the general path below writes a row at a time.
 * Every row in one slot: a masked vector pass (bits_agg). Else, when the
 * varying keys' values times the intervals the segment spans are at most
 * GPASS_MAX, dense local slots (bits_dense): each key's byte and the
 * interval map through small per-segment tables to one local slot a row,
 * and each local slot is one bits_agg pass over the bitmap of its rows
 * (bits_lut8 over the key's bytes, or over the local slot bytes computed
 * column by column). Why: the walk below updates a row's slot in memory
 * and waits on the previous row's update of the same slot; with few
 * slots most rows follow one of their own (time.source.stats.frequent,
 * three groups: 4 ns a row, nearly all of it the n, sum, min and max
 * chains). Otherwise that walk over the set bits: a row's group from its
 * key bytes through per-segment tables (the group table's direct code,
 * each key's part looked up by byte; one key without a direct table: the
 * group of each byte value, filled on first sight). Either way no group
 * is made for a value that no selected row has. */
#define BITS_NONE UINT32_MAX
typedef struct bitgroups {
    uint32_t n_var;                         /* varying keys */
    uint32_t key[SDB_MAX_GROUP_BY];         /* their indexes in the group-by */
    uint8_t kind[SDB_MAX_GROUP_BY];         /* 0: a dimension id; 1: source; 2: type */
    const uint8_t *col[SDB_MAX_GROUP_BY];   /* their byte columns (whole segment) */
    uint32_t base;                          /* direct: the constant keys' code */
    uint32_t part[SDB_MAX_GROUP_BY][256];   /* direct: each key's code part by byte */
    uint32_t grp[256];                      /* no direct table, one key: group by byte */
    /* bits_dense: local slot = sum of lp[v][byte] + interval * n_keyloc */
    bool dense, gpass;                      /* gpass: n_loc <= GPASS_MAX */
    uint32_t n_loc, n_keyloc, n_iv, iv0;    /* slots, key tuples, intervals, first interval */
    uint32_t nl[SDB_MAX_GROUP_BY];          /* local values of each key */
    int64_t bnd[DENSE_IV_MAX];              /* interval j + 1 starts at bnd[j] */
    uint16_t lp[SDB_MAX_GROUP_BY][256];     /* a byte's local value times the key's stride */
    uint8_t lbyte[SDB_MAX_GROUP_BY][256];   /* a byte of each local value */
    uint8_t lset[GPASS_MAX][32];            /* the bytes of local slot s (bits_lut8's set) */
} bitgroups;

static inline uint32_t bits_raw(uint8_t kind, uint8_t b)
{
    return kind == 0 ? b : kind == 1 ? (b >> 2 & 3u) + 1u : (b & 3u) + 1u;
}

/* A key's local values: source and type, their code's two bits (raw -
 * 1); a dimension or property, its id, bounded by the dictionary (ids
 * past it count as 0, as sdb__gtab_code_part has them). Returns the
 * number of local values. A property's ids come from every key's one
 * dictionary, so it rarely has few; bounding it by the bytes its column
 * holds cost a pass over each segment, which made model.property.stats
 * .frequent (1M, a model filter passing a quarter of the rows) 3x
 * slower, so it is not done. */
/* The direct code's parts (the group table has one): the constant keys'
 * code, and each varying key's part by byte. */
static void bits_parts(const sdb__gtab *gt, const segclass *c, bitgroups *bg)
{
    if (!gt->direct) return;
    bg->base = 0;
    for (uint32_t k = 0; k < gt->n_keys; k++)
        if (!c->key_var[k]) bg->base += sdb__gtab_code_part(gt, k, c->raw_const[k]);
    for (uint32_t v = 0; v < bg->n_var; v++)
        for (uint32_t b = 0; b < 256; b++)
            bg->part[v][b] = sdb__gtab_code_part(gt, bg->key[v], bits_raw(bg->kind[v], (uint8_t)b));
}

static uint32_t dense_key(bitgroups *bg, uint32_t v, uint32_t bound, uint32_t stride)
{
    if (bg->kind[v] != 0) {
        for (uint32_t li = 0; li < 4; li++) bg->lbyte[v][li] = (uint8_t)(bg->kind[v] == 1 ? li << 2 : li);
        for (uint32_t b = 0; b < 256; b++)
            bg->lp[v][b] = (uint16_t)((bits_raw(bg->kind[v], (uint8_t)b) - 1) * stride);
        return 4;
    }
    uint32_t nl = bound < 1 ? 1 : bound > 256 ? 256 : bound;
    for (uint32_t li = 0; li < nl; li++) bg->lbyte[v][li] = (uint8_t)li;
    for (uint32_t b = 0; b < 256; b++) bg->lp[v][b] = (uint16_t)((b < nl ? b : 0) * stride);
    return nl;
}

/* Dense local slots for segment g (bitgroups above): false when the
 * varying keys' values times the intervals the segment spans exceed
 * DENSE_MAX. */
static bool bits_dense(xstate *x, const sdb__seg *g, const segclass *c, bitgroups *bg)
{
    const sdb__plan *p = x->p;
    const sdb__gtab *gt = x->g;
    int64_t a = 0;
    uint32_t n_iv = 1, iv0 = c->iv;
    if (!c->iv_const) {
        a = interval_of(p, g->h.ts_min > p->t_lo ? g->h.ts_min : p->t_lo);
        int64_t b = interval_of(p, g->h.ts_max < p->t_hi ? g->h.ts_max : p->t_hi);
        if (b - a + 1 > DENSE_IV_MAX) return false;
        n_iv = (uint32_t)(b - a + 1);
        iv0 = (uint32_t)(a - p->i_lo);
    }
    /* The previous segment's tables serve when its local slots meant the
     * same (the same varying keys, constant keys and intervals): their
     * groups and slots too, so that a store of small segments does not
     * resolve every local slot again (a quarter of source.model_prompt
     * .stddev.typical at 1M before), nor rebuild 256-entry tables. */
    uint32_t sig[3 + SDB_MAX_GROUP_BY], ns = 0;
    sig[ns++] = bg->n_var;
    sig[ns++] = n_iv;
    sig[ns++] = iv0;
    for (uint32_t k = 0; k < p->q->n_group; k++)
        sig[ns++] = c->key_var[k] ? 0x80000000u : c->raw_const[k];
    if (ns == x->lsig_n && !memcmp(sig, x->lsig, ns * sizeof *sig)) {
        bg->dense = true;
        return true;
    }
    x->lsig_n = 0;
    bg->n_iv = n_iv;
    bg->iv0 = iv0;
    for (uint32_t j = 0; j + 1 < n_iv; j++) bg->bnd[j] = p->i_origin + (a + (int64_t)j + 1) * p->i_width;
    uint32_t st = 1;
    for (uint32_t v = 0; v < bg->n_var; v++) {
        bg->nl[v] = dense_key(bg, v, gt->key[bg->key[v]].n_map, st);
        st *= bg->nl[v];
        if (st > DENSE_MAX) return false;
    }
    bg->n_keyloc = st;
    if ((uint64_t)st * n_iv > DENSE_MAX) return false;
    bg->n_loc = st * n_iv;
    bg->gpass = bg->n_loc <= GPASS_MAX;
    /* One key in one interval, too many values for the passes: the walk
     * below takes its group by byte in one load, the local slot's in two. */
    if (!bg->gpass && bg->n_var == 1 && n_iv == 1 && !p->want_vals) return false;
    /* Each local slot's group and slot on first sight (dense_slot, which
     * takes the group by the direct code when there is one). With one
     * key in one interval a local slot's rows come from bits_lut8 over the
     * key's own bytes; else over the local slot bytes (dense_batch). */
    for (uint32_t s = 0; s < bg->n_loc; s++) x->lgrp[s] = x->lslot[s] = BITS_NONE;
    bits_parts(gt, c, bg);
    if (bg->gpass) {
        memset(bg->lset, 0, sizeof bg->lset);
        if (bg->n_var == 1 && n_iv == 1)
            for (uint32_t b = 0; b < 256; b++) bg->lset[bg->lp[0][b]][b / 8] |= (uint8_t)(1u << b % 8);
        else
            for (uint32_t s = 0; s < bg->n_loc; s++) bg->lset[s][s / 8] = (uint8_t)(1u << s % 8);
    }
    memcpy(x->lsig, sig, ns * sizeof *sig);
    x->lsig_n = ns;
    bg->dense = true;
    return true;
}

static bool bits_plan(xstate *x, const sdb__seg *g, const segclass *c, bool skip_moments,
                      bool attrs_cols, const uint8_t *const *kcol, const unsigned *kw,
                      const uint8_t *tsrc,
                      bitgroups *bg)
{
    const sdb__plan *p = x->p;
    const sdb__query *q = p->q;
    const sdb__gtab *gt = x->g;
    /* Tags and properties from their columns (attrs_cols: the chunk keeps
     * them) are filters and keys like a dimension's; from row records,
     * not here. */
    if (x->pass != 0 || skip_moments || (p->need_row && !attrs_cols) || c->has_cat ||
        p->want_traces || p->free_hist)
        return false;
    bg->n_var = 0;
    bg->dense = false;
    for (uint32_t k = 0; k < q->n_group; k++) {
        if (!c->key_var[k]) continue;
        uint32_t v = bg->n_var++;
        bg->key[v] = k;
        switch (q->group[k].kind) {
        case SDB_GB_DIM:
        case SDB_GB_PROP: /* kcol: the property's column when attrs_cols */
            if (kw[k] != 1 || (q->group[k].kind == SDB_GB_PROP && !attrs_cols)) return false;
            bg->kind[v] = 0;
            bg->col[v] = kcol[k];
            break;
        case SDB_GB_SOURCE:
        case SDB_GB_TYPE:
            bg->kind[v] = q->group[k].kind == SDB_GB_SOURCE ? 1 : 2;
            bg->col[v] = tsrc; /* batch_rows unpacked it for this key */
            break;
        default:
            return false;
        }
    }
    if (bg->n_var == 0 && c->iv_const) return true; /* one slot: bits_path looks it up once */
    if (bits_dense(x, g, c, bg) || bg->n_var == 0) return true;
    x->lsig_n = 0; /* the parts below are this segment's, not the dense slots' */
    bits_parts(gt, c, bg);
    if (!gt->direct) {
        if (bg->n_var > 1) return false;
        for (int b = 0; b < 256; b++) bg->grp[b] = BITS_NONE;
    }
    return true;
}

/* The group of the varying keys' bytes by[v] (bits_plan's tables),
 * creating it on first sight. */
static int bits_group_bytes(sdb__gtab *gt, const segclass *c, const bitgroups *bg,
                            const uint8_t *by, uint32_t *gi)
{
    if (gt->direct) {
        uint32_t code = bg->base;
        for (uint32_t v = 0; v < bg->n_var; v++) code += bg->part[v][by[v]];
        uint32_t d = gt->direct[code];
        if (__builtin_expect(d != 0, 1)) {
            *gi = d - 1;
            return SDB_OK;
        }
        return sdb__gtab_groups_code(gt, &code, 1, gi);
    }
    uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL}, r[SDB_MAX_GROUP_BY];
    for (uint32_t v = 0; v < bg->n_var; v++) {
        r[v] = bits_raw(bg->kind[v], by[v]);
        raw[bg->key[v]] = &r[v];
    }
    return sdb__gtab_groups(gt, raw, c->raw_const, 1, gi);
}

/* The group of row i by its key bytes (the walk): the direct code summed
 * from the columns, or one key's group by byte. */
static inline int bits_group(sdb__gtab *gt, const segclass *c, bitgroups *bg, uint32_t i,
                             uint32_t *gi)
{
    uint8_t by[SDB_MAX_GROUP_BY];
    if (gt->direct) {
        uint32_t code = bg->base;
        for (uint32_t v = 0; v < bg->n_var; v++) code += bg->part[v][bg->col[v][i]];
        uint32_t d = gt->direct[code];
        if (__builtin_expect(d != 0, 1)) {
            *gi = d - 1;
            return SDB_OK;
        }
        return sdb__gtab_groups_code(gt, &code, 1, gi);
    }
    by[0] = bg->col[0][i];
    if (__builtin_expect(bg->grp[by[0]] != BITS_NONE, 1)) {
        *gi = bg->grp[by[0]];
        return SDB_OK;
    }
    int rc = bits_group_bytes(gt, c, bg, by, gi);
    if (rc == SDB_OK) bg->grp[by[0]] = *gi;
    return rc;
}

/* The group and slot of local slot s (bits_dense), the group made on
 * first sight; the slot pointer is good until the next group is made. */
static int dense_slot(xstate *x, const segclass *c, const bitgroups *bg, uint32_t s,
                      uint32_t *gi, sdb_slot **sl)
{
    sdb__gtab *gt = x->g;
    if (x->lgrp[s] == BITS_NONE) {
        uint8_t by[SDB_MAX_GROUP_BY];
        uint32_t r = s % bg->n_keyloc;
        for (uint32_t v = 0; v < bg->n_var; v++) {
            by[v] = bg->lbyte[v][r % bg->nl[v]];
            r /= bg->nl[v];
        }
        uint32_t g;
        int rc = bits_group_bytes(gt, c, bg, by, &g);
        if (rc) return rc;
        x->lgrp[s] = g;
        x->lslot[s] = g * gt->n_int + bg->iv0 + s / bg->n_keyloc;
    }
    *gi = x->lgrp[s];
    *sl = &gt->slot[x->lslot[s]];
    return SDB_OK;
}

/* The rows of bitmap bits (of m), all in slot sl of group gi: a count
 * alone (the general path's two counters a row) or the stats by the
 * vector pass, then only the fixed histogram's bins (x->bin) a row at a
 * time. */
static void bits_slot(xstate *x, const uint64_t *bits, const uint8_t *v, uint32_t m, uint32_t gi,
                      sdb_slot *sl)
{
    const sdb__plan *p = x->p;
    const uint32_t nw = (m + 63) / 64;
    const bool hist = p->fixed_hist;
    if (p->counts_only && !hist) {
        uint64_t cnt = 0;
        for (uint32_t w = 0; w < nw; w++) cnt += (uint64_t)__builtin_popcountll(bits[w]);
        sl->n += cnt;
        sl->count += cnt;
    } else {
        p->kern->bits_agg(v, bits, m, !p->no_moments, sl);
    }
    if (hist) {
        uint64_t *h = x->g->hist + (size_t)gi * (p->q->bins + 2);
        for (uint32_t w = 0; w < nw; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1) h[x->bin[w * 64 + (uint32_t)__builtin_ctzll(b)]]++;
    }
}

/* One batch on dense local slots (bitgroups above): up to GPASS_MAX, a
 * masked pass per local slot over the bitmap of its rows; more, a walk
 * over the set bits that takes each row's slot from its local slot's
 * (no code sums, direct-table lookups or interval divisions a row; the
 * rows reach each slot in the same order as before, so the sums are the
 * same bits). x->bin holds the rows' bins when the query has a fixed
 * histogram. */
static int dense_batch(xstate *x, const segclass *c, const bitgroups *bg, const uint8_t *v,
                       const uint8_t *ts, uint32_t i0, uint32_t m)
{
    const sdb__plan *p = x->p;
    sdb__gtab *gt = x->g;
    const int moments = !p->no_moments;
    const bool hist = p->fixed_hist, counts = p->counts_only && !hist;
    const uint32_t nw = (m + 63) / 64, stride = p->q->bins + 2, K = bg->n_keyloc;
    int rc;
    uint32_t ns = 0;
    if (bg->gpass)
        for (uint32_t w = 0; w < nw; w++) ns += (uint32_t)__builtin_popcountll(x->bits[w]);
    if (!bg->gpass || ns < GPASS_ROWS * bg->n_loc) {
        /* The walk, each row's slot through its local slot's, the local
         * slot summed from the key bytes and the interval compares. */
        for (uint32_t w = 0; w < nw; w++)
            for (uint64_t b = x->bits[w]; b; b &= b - 1) {
                uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(b), s = 0;
                for (uint32_t k = 0; k < bg->n_var; k++) s += bg->lp[k][bg->col[k][i0 + i]];
                if (bg->n_iv > 1) {
                    int64_t t = ld_i64(ts, i);
                    for (uint32_t j = 0; j + 1 < bg->n_iv; j++) s += t >= bg->bnd[j] ? K : 0;
                }
                if (__builtin_expect(x->lslot[s] == BITS_NONE, 0)) {
                    uint32_t gi;
                    sdb_slot *sl;
                    if ((rc = dense_slot(x, c, bg, s, &gi, &sl))) return rc;
                }
                sdb_slot *a = &gt->slot[x->lslot[s]];
                double val = ld_f64(v, i);
                if (counts) {
                    a->n++;
                    a->count++;
                } else if (moments) {
                    sdb_slot_add(a, val);
                } else {
                    sdb_slot_add_nm(a, val);
                }
                if (hist) gt->hist[(size_t)x->lgrp[s] * stride + x->bin[i]]++;
            }
        return sdb__plan_check(p, gt);
    }
    const uint8_t *col = bg->col[0] + i0;
    if (bg->n_var != 1 || bg->n_iv != 1) {
        /* Each row's local slot, column by column over the batch. */
        uint8_t *loc = x->loc8;
        memset(loc, 0, m);
        for (uint32_t k = 0; k < bg->n_var; k++) {
            const uint8_t *kc = bg->col[k] + i0;
            const uint16_t *lp = bg->lp[k];
            for (uint32_t i = 0; i < m; i++) loc[i] = (uint8_t)(loc[i] + lp[kc[i]]);
        }
        for (uint32_t j = 0; j + 1 < bg->n_iv; j++) {
            const int64_t b = bg->bnd[j];
            for (uint32_t i = 0; i < m; i++) loc[i] = (uint8_t)(loc[i] + (ld_i64(ts, i) >= b ? K : 0));
        }
        col = loc;
    }
    for (uint32_t s = 0; s < bg->n_loc; s++) {
        p->kern->bits_lut8(col, m, bg->lset[s], x->bits, x->sbits);
        uint64_t cnt = 0;
        for (uint32_t w = 0; w < nw; w++) cnt += (uint64_t)__builtin_popcountll(x->sbits[w]);
        if (!cnt) continue;
        uint32_t gi;
        sdb_slot *sl;
        if ((rc = dense_slot(x, c, bg, s, &gi, &sl))) return rc;
        bits_slot(x, x->sbits, v, m, gi, sl);
    }
    return sdb__plan_check(p, gt);
}

static int bits_path(xstate *x, const segclass *c, bitgroups *bg, const uint8_t *v,
                     const uint8_t *ts, uint32_t i0, uint32_t m)
{
    const sdb__plan *p = x->p;
    sdb__gtab *gt = x->g;
    int moments = !p->no_moments, rc;
    const uint32_t nw = (m + 63) / 64, ni = gt->n_int, bins = p->q->bins, stride = bins + 2;
    const bool hist = p->fixed_hist, one = bg->n_var == 0;
    uint32_t gi = 0;
    uint64_t any = 0;
    for (uint32_t w = 0; w < nw; w++) any |= x->bits[w];
    if (!any) return SDB_OK;
    if (one && !bg->dense) {
        /* Every row in one group: looked up once, when a row passes. */
        uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL};
        if ((rc = sdb__gtab_groups(gt, raw, c->raw_const, 1, &gi))) return rc;
    }
    if (hist) p->kern->bins_f64(v, m, p->h_lo, p->h_hi, p->h_width, bins, x->bin);
    if (bg->dense) return dense_batch(x, c, bg, v, ts, i0, m);
    if (one && c->iv_const) {
        bits_slot(x, x->bits, v, m, gi, &gt->slot[gi * ni + c->iv]);
        return sdb__plan_check(p, gt);
    }
    for (uint32_t w = 0; w < nw; w++)
        for (uint64_t b = x->bits[w]; b; b &= b - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(b);
            if (!one && (rc = bits_group(gt, c, bg, i0 + i, &gi))) return rc;
            uint32_t iv = c->iv_const ? c->iv : (uint32_t)(interval_of(p, ld_i64(ts, i)) - p->i_lo);
            sdb_slot *a = &gt->slot[(size_t)gi * ni + iv];
            double val = ld_f64(v, i);
            if (moments)
                sdb_slot_add(a, val);
            else
                sdb_slot_add_nm(a, val);
            if (hist) gt->hist[(size_t)gi * stride + x->bin[i]]++;
        }
    return sdb__plan_check(p, gt);
}

/* ------------------------------------------ values for percentiles */

/* The bitmap path for a query that keeps each group's values (exact
 * percentiles): the selection bitmap's rows are packed by sel_f64 (a
 * vector compress), each selected row's local slot (bits_dense) is taken
 * by a walk over the set bits, which also counts the rows of each local
 * slot; each group touched gets room once, and the values are stored
 * through one write pointer per local slot (a counting sort: no per-row
 * branch, capacity check or group lookup). The counts are the slots'
 * counts (a count with percentiles asks nothing else); other stats and a
 * fixed histogram run their kernels over the packed values, in row order,
 * so sums are the same bits as the general path's. Why: perf record of
 * type.model.pct.frequent (10M, one thread) put 50% in batch_rows (its
 * per-row value appends with a capacity check, 24%; the per-row count
 * increments, 12%; the index list, 7%) and 16% in the group lookups
 * through the index list (sdb__gtab_groups, ids_of). */
static inline uint32_t vals_loc(const bitgroups *bg, uint32_t i0, uint32_t i, const uint8_t *ts)
{
    uint32_t s = 0;
    for (uint32_t k = 0; k < bg->n_var; k++) s += bg->lp[k][bg->col[k][i0 + i]];
    if (bg->n_iv > 1) {
        int64_t t = ld_i64(ts, i);
        for (uint32_t j = 0; j + 1 < bg->n_iv; j++) s += t >= bg->bnd[j] ? bg->n_keyloc : 0;
    }
    return s;
}

/* The stats other than a count and the fixed histogram over the n packed
 * values cv, the j-th in slot slot[j] (NULL: all in *one) of group grp[j]. */
static void vals_stats(xstate *x, const double *cv, const uint32_t *slot, sdb_slot *one,
                       const uint32_t *grp, uint32_t n)
{
    const sdb__plan *p = x->p;
    sdb__gtab *gt = x->g;
    if (!p->counts_only)
        (p->no_moments ? p->kern->slot_agg_nm : p->kern->slot_agg)(cv, x->iota, slot, n,
                                                                  slot ? gt->slot : one);
    if (p->fixed_hist)
        p->kern->slot_hist(cv, x->iota, grp, n, &p->h_lo, &p->h_hi, &p->h_width, 0, p->q->bins,
                           gt->hist);
}

static int vals_batch(xstate *x, const segclass *c, bitgroups *bg, const uint8_t *v,
                      const uint8_t *ts, uint32_t i0, uint32_t m)
{
    const sdb__plan *p = x->p;
    sdb__gtab *gt = x->g;
    const uint32_t nw = (m + 63) / 64;
    uint32_t ns = 0;
    int rc;
    for (uint32_t w = 0; w < nw; w++) ns += (uint32_t)__builtin_popcountll(x->bits[w]);
    if (!ns) return SDB_OK;
    if (!bg->dense) {
        /* One group, one slot: packed straight into its list. */
        uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL}, gi;
        if ((rc = sdb__gtab_groups(gt, raw, c->raw_const, 1, &gi))) return rc;
        sdb__dvec *d = &gt->vals[gi];
        if ((rc = sdb__dvec_reserve(gt, d, m))) return rc;
        double *o = d->v + d->n;
        p->kern->sel_f64(v, x->bits, m, o);
        d->n += ns;
        sdb_slot *sl = &gt->slot[(size_t)gi * gt->n_int + c->iv];
        if (p->counts_only) {
            sl->n += ns;
            sl->count += ns;
        }
        if (!p->counts_only || p->fixed_hist) {
            for (uint32_t j = 0; j < ns; j++) x->grp[j] = gi;
            vals_stats(x, o, NULL, sl, x->grp, ns);
        }
        return sdb__plan_check(p, gt);
    }
    uint32_t nt = 0, j = 0;
    if (bg->n_iv == 1 && p->counts_only && !p->fixed_hist) {
        /* One interval: a local slot is a group of its own, so each gets
         * its list's room on first sight and the values go straight
         * through its write pointer, one walk (no counts kept on the way:
         * they are where the pointers end). */
        for (uint32_t w = 0; w < nw; w++)
            for (uint64_t b = x->bits[w]; b; b &= b - 1) {
                uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(b), s = vals_loc(bg, i0, i, ts);
                if (__builtin_expect(!x->vwp[s], 0)) {
                    uint32_t gi;
                    sdb_slot *sl;
                    if (x->lgrp[s] == BITS_NONE && (rc = dense_slot(x, c, bg, s, &gi, &sl))) goto walked;
                    sdb__dvec *d = &gt->vals[x->lgrp[s]];
                    if (d->cap - d->n < ns && (rc = sdb__dvec_reserve(gt, d, ns))) goto walked;
                    x->vwp[s] = d->v + d->n;
                    x->vtl[nt++] = (uint16_t)s;
                }
                memcpy(x->vwp[s]++, v + 8 * i, 8);
            }
    walked:
        for (uint32_t t = 0; t < nt; t++) {
            uint32_t s = x->vtl[t];
            sdb__dvec *d = &gt->vals[x->lgrp[s]];
            uint32_t cnt = (uint32_t)(x->vwp[s] - (d->v + d->n));
            x->vwp[s] = NULL;
            d->n += cnt;
            gt->slot[x->lslot[s]].n += cnt;
            gt->slot[x->lslot[s]].count += cnt;
        }
        return rc ? rc : sdb__plan_check(p, gt);
    }
    p->kern->sel_f64(v, x->bits, m, x->cv);
    for (uint32_t w = 0; w < nw; w++)
        for (uint64_t b = x->bits[w]; b; b &= b - 1) {
            uint32_t s = vals_loc(bg, i0, w * 64 + (uint32_t)__builtin_ctzll(b), ts);
            x->cl[j++] = (uint16_t)s;
            x->vtl[nt] = (uint16_t)s;
            nt += x->vcnt[s]++ == 0;
        }
    /* Room first for every group touched (a group's local slots of
     * several intervals share its list, so no pointer is taken until no
     * list can move), then the write pointers. */
    rc = SDB_OK;
    for (uint32_t t = 0; t < nt && rc == SDB_OK; t++) {
        uint32_t s = x->vtl[t], gi;
        sdb_slot *sl;
        if (x->lgrp[s] == BITS_NONE && (rc = dense_slot(x, c, bg, s, &gi, &sl))) break;
        sdb__dvec *d = &gt->vals[x->lgrp[s]];
        if (d->cap - d->n < ns) rc = sdb__dvec_reserve(gt, d, ns);
    }
    for (uint32_t t = 0; t < nt; t++) {
        uint32_t s = x->vtl[t], cnt = x->vcnt[s];
        x->vcnt[s] = 0;
        if (rc) continue;
        sdb__dvec *d = &gt->vals[x->lgrp[s]];
        x->vwp[s] = d->v + d->n;
        d->n += cnt;
        if (p->counts_only) {
            gt->slot[x->lslot[s]].n += cnt;
            gt->slot[x->lslot[s]].count += cnt;
        }
    }
    if (rc) return rc;
    for (j = 0; j < ns; j++) *x->vwp[x->cl[j]]++ = x->cv[j];
    for (uint32_t t = 0; t < nt; t++) x->vwp[x->vtl[t]] = NULL; /* the walk above tells touched by it */
    if (!p->counts_only || p->fixed_hist) {
        for (j = 0; j < ns; j++) {
            x->slot[j] = x->lslot[x->cl[j]];
            x->grp[j] = x->lgrp[x->cl[j]];
        }
        vals_stats(x, x->cv, x->slot, NULL, x->grp, ns);
    }
    return sdb__plan_check(p, gt);
}

static int batch_rows(xstate *x, const xseg *ps, const segclass *c, bool skip_moments,
                      const sdb__aseg *as, int amode)
{
    const sdb__plan *p = x->p;
    const sdb__query *q = p->q;
    const sdb__seg *g = &ps->g;
    sdb__gtab *gt = x->g;
    sdb_filter f = {p->t_lo, p->t_hi, p->v_lo, p->v_hi, 0};
    if (c->t_in) {
        f.t_lo = INT64_MIN;
        f.t_hi = INT64_MAX;
    }
    bool need_tv = !c->t_in || q->has_value;
    /* Dimension and type/source filters read the packed columns (bits_pk)
     * up to 8 bits; a wider dimension, a group key and the categorical
     * flag are unpacked to bytes once per segment (load_cols sized the
     * scratch), a dimension that both filters and groups once. */
    const uint8_t *dcol[SDB_N_DIMS] = {NULL};
    unsigned dw[SDB_N_DIMS] = {0};
    sdb__fcol dc[SDB_N_DIMS];
    int n_dc = 0;
    for (int d = 0; d < SDB_N_DIMS; d++) {
        if (!p->dim_bits[d] || !g->h.dim_w[d]) continue;
        if (g->h.dim_w[d] <= 8) {
            dc[n_dc++] = (sdb__fcol){sdb__seg_dim_col(g, d), 0, NULL, g->h.dim_w[d], x->dset[d]};
            continue;
        }
        dcol[d] = sdb__seg_dim_bytes(g, p->kern, d, x->ddim + (size_t)4 * d * x->cap_cols, &dw[d]);
        dc[n_dc++] = (sdb__fcol){dcol[d], dw[d], p->dim_bits[d], p->dim_nbits[d], x->dset[d]};
    }
    /* Tags and properties: their columns (engine/attrs.c) where the chunk
     * keeps what the query asks (amode 1), filtered and grouped as a
     * dimension's; else the row records (row_store, per batch). */
    const sdb__fcol *afc = amode == 1 ? as->fc : NULL;
    uint32_t n_afc = amode == 1 ? as->n_fc : 0;
    const uint8_t *kcol[SDB_MAX_GROUP_BY] = {NULL};
    unsigned kw[SDB_MAX_GROUP_BY] = {0};
    /* The type/source table decides something only with a source or type
     * filter the header leaves open, in a segment that mixes categorical
     * rows, or when a value filter drops categorical rows; a time range
     * alone does not need it. */
    bool tables = c->tsrc_rows || (q->has_value && c->has_cat);
    const sdb__fcol tfc = {g->tsrc, 0, NULL, g->h.tsrc_bits, x->any_set};
    const sdb__fcol *tf = tables ? &tfc : NULL;
    bool need_tsrc = tables && c->has_cat && !c->all_cat;
    for (uint32_t k = 0; k < q->n_group; k++) {
        int d = q->group[k].dim;
        if (!c->key_var[k]) continue; /* constant over the segment: no column read */
        if (q->group[k].kind == SDB_GB_DIM) {
            if (!dcol[d])
                dcol[d] = sdb__seg_dim_bytes(g, p->kern, d, x->ddim + (size_t)4 * d * x->cap_cols, &dw[d]);
            kcol[k] = dcol[d];
            kw[k] = dw[d];
        } else if (q->group[k].kind == SDB_GB_PROP && amode == 1) {
            kcol[k] = as->gcol[k];
            kw[k] = as->gw[k];
        }
        need_tsrc |= q->group[k].kind == SDB_GB_SOURCE || q->group[k].kind == SDB_GB_TYPE;
    }
    const uint8_t *tsrc_col = need_tsrc ? sdb__seg_tsrc(g, p->kern, x->dtsrc) : NULL;
    bool want_num = x->pass == 1 || !skip_moments || p->fixed_hist || p->want_vals || p->want_traces;
    bool want_cat = x->pass == 0 && c->has_cat;
    int rc;
    bitgroups *bg = x->bg;
    bg->dense = false;
    bool on_bits = bits_plan(x, g, c, skip_moments, amode == 1, kcol, kw, tsrc_col, bg);
    /* Values are kept from the bitmap on dense local slots or one slot
     * (vals_batch); other plans take the general path below. */
    bool on_vals = on_bits && p->want_vals && (bg->dense || (bg->n_var == 0 && c->iv_const));
    if (p->want_vals && !on_vals) on_bits = false;
    for (uint32_t i0 = 0; i0 < g->n; i0 += BATCH) {
        uint32_t m = g->n - i0 < BATCH ? g->n - i0 : BATCH;
        const uint8_t *v = ps->value + 8ull * i0, *ts = ps->ts + 8ull * i0;
        if (on_bits) {
            select_bits(x, dc, n_dc, afc, n_afc, v, ts, tf, i0, m, need_tv, &f);
            if ((rc = on_vals ? vals_batch(x, c, bg, v, ts, i0, m) : bits_path(x, c, bg, v, ts, i0, m)))
                return rc;
            continue;
        }
        /* 1. Selection: time and value by mask, type and source by the
         * pass tables, then each dimension filter over the survivors. */
        uint32_t ns = 0;
        const uint8_t *tsrc = tsrc_col ? tsrc_col + i0 : NULL;
        if (!need_tv && !c->tsrc_rows && n_dc == 0 && n_afc == 0) {
            for (uint32_t i = 0; i < m; i++) x->sel[i] = i;
            memset(x->iscat, c->all_cat, m);
            ns = m;
        } else {
            ns = select_rows(x, dc, n_dc, afc, n_afc, v, ts, tf, tsrc, i0, m, need_tv, c, &f);
        }
        if (p->need_row && amode != 1 && ns && (rc = row_store(x, g, i0, ns, &ns))) return rc;
        if (ns == 0) continue;
        /* 2. Slots: with a direct code table, each row's raw code is
         * summed column by column straight from the columns; else the raw
         * ids go through the group table's maps. */
        if (gt->direct) {
            uint32_t *code = x->slot; /* scratch until the slots below */
            uint32_t base = 0;
            for (uint32_t k = 0; k < q->n_group; k++)
                if (!c->key_var[k]) base += sdb__gtab_code_part(gt, k, c->raw_const[k]);
            for (uint32_t j = 0; j < ns; j++) code[j] = base;
            for (uint32_t k = 0; k < q->n_group; k++) {
                if (!c->key_var[k]) continue;
                uint32_t st = gt->dstride[k], nm = gt->key[k].n_map;
                switch (q->group[k].kind) {
                case SDB_GB_DIM: codes_add(kcol[k], kw[k], i0, x->sel, ns, st, nm, code); break;
                case SDB_GB_SOURCE:
                    for (uint32_t j = 0; j < ns; j++) code[j] += ((tsrc[x->sel[j]] >> 2 & 3u) + 1u) * st;
                    break;
                case SDB_GB_TYPE:
                    for (uint32_t j = 0; j < ns; j++) code[j] += ((tsrc[x->sel[j]] & 3u) + 1u) * st;
                    break;
                default: /* properties: their column, or row_store's ids */
                    if (amode == 1) codes_add(kcol[k], kw[k], i0, x->sel, ns, st, nm, code);
                    else
                        for (uint32_t j = 0; j < ns; j++) code[j] += sdb__gtab_code_part(gt, k, x->raw[k][j]);
                    break;
                }
            }
            if ((rc = sdb__gtab_groups_code(gt, code, ns, x->grp))) return rc;
        } else {
            uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL};
            for (uint32_t k = 0; k < q->n_group; k++) {
                if (!c->key_var[k]) continue;
                uint32_t *r = x->raw[k];
                raw[k] = r;
                switch (q->group[k].kind) {
                case SDB_GB_DIM: ids_of(kcol[k], kw[k], i0, x->sel, ns, r); break;
                case SDB_GB_SOURCE:
                    for (uint32_t j = 0; j < ns; j++) r[j] = (tsrc[x->sel[j]] >> 2 & 3u) + 1u;
                    break;
                case SDB_GB_TYPE:
                    for (uint32_t j = 0; j < ns; j++) r[j] = (tsrc[x->sel[j]] & 3u) + 1u;
                    break;
                default: /* properties: their column, or row_store's ids */
                    if (amode == 1) ids_of(kcol[k], kw[k], i0, x->sel, ns, r);
                    break;
                }
            }
            if ((rc = sdb__gtab_groups(gt, raw, c->raw_const, ns, x->grp))) return rc;
        }
        uint32_t ni = gt->n_int;
        if (c->iv_const) {
            for (uint32_t j = 0; j < ns; j++) x->slot[j] = x->grp[j] * ni + c->iv;
        } else {
            for (uint32_t j = 0; j < ns; j++)
                x->slot[j] = x->grp[j] * ni +
                             (uint32_t)(interval_of(p, ld_i64(ts, x->sel[j])) - p->i_lo);
        }
        /* 3. Split numeric and categorical rows (a segment without
         * categorical rows uses the selection as it is). */
        uint32_t nn = ns, ncat = 0;
        const uint32_t *idx_n = x->sel, *grp_n = x->grp, *slot_n = x->slot;
        if (c->has_cat) {
            nn = 0;
            for (uint32_t j = 0; j < ns; j++) {
                if (x->iscat[j]) {
                    x->idx_c[ncat] = x->sel[j];
                    x->grp_c[ncat] = x->grp[j];
                    x->slot_c[ncat++] = x->slot[j];
                } else {
                    x->idx_n[nn] = x->sel[j];
                    x->grp_n[nn] = x->grp[j];
                    x->slot_n[nn++] = x->slot[j];
                }
            }
            idx_n = x->idx_n;
            grp_n = x->grp_n;
            slot_n = x->slot_n;
        }
        if (x->pass == 0 && x->hseg && (rc = hcache_add(x, v, idx_n, grp_n, nn))) return rc;
        /* 4. Aggregate kernels. */
        if (x->pass == 1) {
            p->kern->slot_hist(v, idx_n, grp_n, nn, x->lo, x->hi, x->width, 1, q->bins, gt->hist);
            continue;
        }
        if (want_num && nn) {
            if (skip_moments) {
                /* the header counted them */
            } else if (p->counts_only && c->keys_const && c->iv_const) {
                /* One slot takes the whole batch (a count of traces without
                 * group_by: 19% of source.none.traces at 10M was the per-row
                 * increments below). */
                gt->slot[slot_n[0]].n += nn;
                gt->slot[slot_n[0]].count += nn;
            } else if (p->counts_only) {
                /* Nothing asked for needs the values' moments (a count, a
                 * fixed histogram): two counters a row, not seven fields. */
                for (uint32_t j = 0; j < nn; j++) {
                    sdb_slot *sl = &gt->slot[slot_n[j]];
                    sl->n++;
                    sl->count++;
                }
            } else {
                /* Every row in one slot (no key varies in the segment):
                 * the kernel keeps that slot in registers. */
                bool one = c->keys_const && c->iv_const;
                sdb_slot *acc = one ? &gt->slot[slot_n[0]] : gt->slot;
                (p->no_moments ? p->kern->slot_agg_nm : p->kern->slot_agg)(v, idx_n, one ? NULL : slot_n,
                                                                          nn, acc);
            }
            if (p->fixed_hist)
                p->kern->slot_hist(v, idx_n, grp_n, nn, &p->h_lo, &p->h_hi, &p->h_width, 0,
                                   q->bins, gt->hist);
            if (p->want_vals && c->keys_const) {
                /* One group: room once, then a plain gather. */
                sdb__dvec *d = &gt->vals[grp_n[0]];
                if ((rc = sdb__dvec_reserve(gt, d, nn))) return rc;
                double *o = d->v + d->n;
                for (uint32_t j = 0; j < nn; j++) o[j] = ld_f64(v, idx_n[j]);
                d->n += nn;
            } else if (p->want_vals)
                for (uint32_t j = 0; j < nn; j++) {
                    sdb__dvec *d = &gt->vals[grp_n[j]];
                    double val = ld_f64(v, idx_n[j]);
                    if (d->n < d->cap) d->v[d->n++] = val;
                    else if ((rc = sdb__dvec_push(gt, d, val))) return rc;
                }
        }
        if (want_cat && ncat) {
            for (uint32_t j = 0; j < ncat; j++) {
                uint64_t *cats = sdb__gtab_cats(gt, x->grp_c[j]);
                if (!cats) return SDB_ENOMEM;
                uint32_t id = (uint32_t)ld_f64(v, x->idx_c[j]);
                if (id <= gt->n_labels) cats[id]++;
                if (!skip_moments) gt->slot[x->slot_c[j]].count++;
            }
        }
        if (p->want_traces) {
            /* Trace numbers of the selected rows: a batch that selects
             * many decodes its range of the packed column, one that
             * selects few reads each (typical-name cells select a few
             * rows a segment, and decoding every segment's whole column
             * cost them up to 40%). */
            const uint8_t *tr = (const uint8_t *)x->trd;
            unsigned trb = g->h.tr_bits;
            uint32_t n_b = g->n - i0 < BATCH ? g->n - i0 : BATCH;
            if (ns >= n_b / 8 && trb) /* i0 is a multiple of BATCH: a whole byte */
                p->kern->unpack_u64(g->trace + (size_t)i0 * trb / 8, trb, n_b, g->h.tr_base, x->trd);
            else
                for (uint32_t j = 0; j < ns; j++) x->trd[x->sel[j]] = sdb__seg_trace_at(g, i0 + x->sel[j]);
            if (c->keys_const) {
                /* One group: room for the batch once, then plain stores
                 * (a zero hash, no trace, is overwritten by the next). */
                sdb__traceset *s = &gt->traces[x->grp[0]];
                uint64_t *o = sdb__traceset_room(s, ns);
                if (!o) return SDB_ENOMEM;
                size_t k = 0;
                for (uint32_t j = 0; j < ns; j++) {
                    uint64_t h = ld_u64(tr, x->sel[j]);
                    o[k] = h;
                    k += h != 0;
                }
                s->n += k;
            } else {
                for (uint32_t j = 0; j < ns; j++) {
                    uint64_t h = ld_u64(tr, x->sel[j]);
                    if (h && (rc = sdb__traceset_push(&gt->traces[x->grp[j]], h))) return rc;
                }
            }
            gt->mem += (size_t)ns * 8;
        }
        if ((rc = sdb__plan_check(p, gt))) return rc;
    }
    return SDB_OK;
}

static int batch_path(xstate *x, const xseg *ps, const segclass *c, bool skip_moments)
{
    if (!x->p->need_row) return batch_rows(x, ps, c, skip_moments, NULL, 0);
    sdb__aseg as;
    int amode = sdb__aseg_open(&as, x->p, ps->key, ps->g.n);
    int rc = amode < 0 ? amode : amode == 2 ? SDB_OK : batch_rows(x, ps, c, skip_moments, &as, amode);
    sdb__aseg_close(&as);
    return rc;
}

/* ------------------------------------------------------------ a segment */

/* Point ps's time, value and trace columns at arrays the kernels read:
 * in place or decoded (sdb__seg_ts/values/traces). Without need_ts no
 * kernel compares a time (the filter takes every time and the segment
 * lies in one interval), so ts is pointed at the values: any n * 8
 * readable bytes serve scalar.c, which loads a time for every row. */
static int load_cols(xstate *x, xseg *ps, bool need_ts)
{
    sdb__seg_cols(&ps->g);
    const sdb__seg *g = &ps->g;
    const sdb_kernels *k = x->p->kern;
    if (x->cap_cols < g->n) {
        uint32_t cap = g->n;
        free(x->dts);
        free(x->dv);
        free(x->dtr);
        free(x->ddim);
        free(x->dtsrc);
        x->dts = malloc((size_t)cap * sizeof *x->dts);
        x->dv = malloc((size_t)cap * sizeof *x->dv);
        x->dtr = malloc((size_t)cap * sizeof *x->dtr);
        x->ddim = malloc((size_t)cap * 4 * SDB_N_DIMS);
        x->dtsrc = malloc(cap);
        x->cap_cols = x->dts && x->dv && x->dtr && x->ddim && x->dtsrc ? cap : 0;
        if (!x->cap_cols) return SDB_ENOMEM;
    }
    ps->value = sdb__seg_values(g, k, x->dv);
    ps->ts = need_ts ? sdb__seg_ts(g, k, x->dts) : ps->value;
    ps->trace = NULL; /* trace numbers: decoded by the path that reads them */
    return SDB_OK;
}

static int exec_segment(xstate *x, xseg *ps)
{
    const sdb__plan *p = x->p;
    const sdb__seg *g = &ps->g;
    segclass c;
    classify(p, ps, &c);
    int rc;
    if (x->pass == 1 && c.all_cat) return SDB_OK; /* no numeric rows to bin */
    bool extras = p->fixed_hist || p->want_traces || p->want_vals;
    if (x->pass == 0 && c.covered && c.keys_const && c.iv_const) {
        /* Every row passes and lands in one slot: the header holds count
         * and moments; only what it cannot hold is scanned. */
        uint32_t gi;
        if ((rc = const_group(x, &c, &gi))) return rc;
        sdb__mom m;
        sdb__mom_init(&m);
        uint64_t n_num = (uint64_t)g->h.n_type[SDB_NUMERIC] + g->h.n_type[SDB_BOOLEAN];
        if (n_num) {
            m.n = n_num;
            m.sum = g->h.sum;
            m.k = g->h.k;
            m.dm = g->h.dm;
            m.m2 = g->h.m2;
            m.min = g->h.v_min;
            m.max = g->h.v_max;
        }
        sdb__slot_add_mom(slot_at(x, gi, c.iv), g->n, &m);
        if (!c.has_cat) {
            if (!extras) return SDB_OK;
            sdb_filter all = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0};
            if ((rc = load_cols(x, ps, false))) return rc;
            return filter_extras(x, ps, gi, &all);
        }
        if (c.all_cat && !p->want_traces && (rc = labels_preagg(x, ps, gi)) != 1) return rc;
        if ((rc = load_cols(x, ps, false))) return rc;
        return batch_path(x, ps, &c, true);
    }
    if (x->pass == 0 && c.covered && c.var_key >= 0 && c.iv_const && !c.has_cat && !extras) {
        if ((rc = dim_preagg(x, ps, &c, -1)) != 1) return rc;
    }
    /* Covered but for one dimension filter, grouped by nothing that varies
     * or by that dimension: the pre-aggregates of the values it keeps. */
    if (x->pass == 0 && c.t_in && c.v_in && !c.tsrc_rows && !p->row_filter && c.fdim >= 0 &&
        (c.keys_const || (c.var_key >= 0 && p->q->group[c.var_key].dim == c.fdim)) &&
        c.iv_const && !c.has_cat && !extras) {
        if ((rc = dim_preagg(x, ps, &c, c.fdim)) != 1) return rc;
    }
    if (x->pass == 0 && c.t_in && c.v_in && !c.tsrc_rows && !c.dims_rows && p->need_row &&
        !p->q->tags.n && p->q->n_props <= 1 && c.iv_const && !c.has_cat && !extras) {
        /* The same for one varying properties.KEY, or for one property
         * filter over constant keys (engine/attrs.c's per-value moments,
         * those of the values the filter keeps). */
        int pk = -1, n_var = 0;
        for (uint32_t k = 0; k < p->q->n_group; k++)
            if (c.key_var[k]) {
                n_var++;
                if (p->q->group[k].kind == SDB_GB_PROP) pk = (int)k;
            }
        if (((n_var == 1 && pk >= 0) || (n_var == 0 && p->q->n_props == 1)) &&
            (rc = sdb__aseg_preagg(p, x->g, ps->key, g->n, pk, c.raw_const, c.iv)) != 1)
            return rc;
    }
    bool only_tv = !c.tsrc_rows && !c.dims_rows && !p->row_filter && !c.has_cat;
    if (x->pass == 0 && only_tv && c.keys_const && c.iv_const && !extras &&
        dec_fusable(g, !c.t_in))
        return dec_path(x, ps, &c);
    if ((rc = load_cols(x, ps, !c.t_in || !c.iv_const))) return rc;
    if (only_tv && c.keys_const) {
        bool series_ok = true;
        if (!c.iv_const) {
            int64_t lo = interval_of(p, g->h.ts_min > p->t_lo ? g->h.ts_min : p->t_lo);
            int64_t hi = interval_of(p, g->h.ts_max < p->t_hi ? g->h.ts_max : p->t_hi);
            /* series_f64 takes one shift for every interval: good for
             * sums, not for each interval's M2 (the batch path gives each
             * slot its own). */
            series_ok = x->pass == 0 && hi - lo + 1 <= SERIES_TMP_MAX &&
                        !(p->q->stats & SDB_STAT_STDDEV);
        }
        if (c.iv_const || series_ok || x->pass == 1) return filter_path(x, ps, &c);
    }
    return batch_path(x, ps, &c, false);
}

static int run_pass(xstate *x)
{
    const sdb__plan *p = x->p;
    int rc = SDB_OK;
    if (x->pass == 0 && p->free_hist && !p->want_vals && !x->hseg) {
        if (!(x->hseg = malloc((p->n_segs ? p->n_segs : 1) * 2 * sizeof *x->hseg))) return SDB_ENOMEM;
        for (size_t i = 0; i < 2 * p->n_segs; i++) x->hseg[i] = SIZE_MAX;
    }
    for (size_t i = 0; rc == SDB_OK && i < p->n_segs; i++) {
        if (x->pass == 1 && hcache_bin(x, i)) continue;
        xseg xs;
        const sdb__pseg *ps = &p->segs[i];
        /* The plan read these headers a while ago: most are out of cache
         * again, and a header-only segment costs little but its miss, so
         * the next ones are fetched while this one runs. */
        if (i + PREFETCH < p->n_segs) {
            const char *nx = p->segs[i + PREFETCH].val;
            __builtin_prefetch(nx);
            __builtin_prefetch(nx + 64);
        }
        /* The plan opened (and checked) it in this txn: the header now,
         * the column views when a path scans rows (load_cols). */
        sdb__seg_head(ps->val, ps->len, &xs.g);
        xs.key = ps->key;
        xs.name = ps->name;
        size_t at = x->hstart = x->hn;
        bool keep = x->pass == 0 && x->hseg && !x->hfull;
        rc = exec_segment(x, &xs);
        if (keep && !x->hfull && x->hn > at) {
            x->hseg[2 * i] = at;
            x->hseg[2 * i + 1] = x->hn;
        }
        if (rc == SDB_OK && (i & 63) == 63) rc = sdb__plan_check(p, x->g);
    }
    return rc ? rc : sdb__plan_check(p, x->g);
}

/* Scratch for one part of a run (nothing is read before it is written). */
static xstate *xstate_new(const sdb__plan *p, sdb__gtab *g)
{
    xstate *x = malloc(sizeof *x);
    if (!x) return NULL;
    if (!(x->bg = malloc(sizeof *x->bg))) {
        free(x);
        return NULL;
    }
    x->stmp = NULL;
    x->dts = NULL;
    x->dv = NULL;
    x->dtr = NULL;
    x->ddim = NULL;
    x->dtsrc = NULL;
    x->cap_cols = 0;
    x->lo = x->hi = x->width = NULL;
    x->hv = NULL;
    x->hg = NULL;
    x->hn = x->hcap = 0;
    x->hseg = NULL;
    x->hfull = false;
    x->hstart = 0;
    x->lsig_n = 0;
    for (uint32_t j = 0; j < BATCH; j++) x->iota[j] = j;
    memset(x->vcnt, 0, sizeof x->vcnt);
    for (uint32_t s = 0; s < DENSE_MAX; s++) x->vwp[s] = NULL;
    x->pass = 0;
    x->p = p;
    x->g = g;
    for (int b = 0; b < 16; b++) x->pass_any[b] = p->pass_num[b] | p->pass_cat[b];
    memset(x->any_set, 0, sizeof x->any_set);
    memset(x->dset, 0, sizeof x->dset);
    for (uint32_t b = 0; b < 256; b++)
        if (x->pass_any[b & 15u]) x->any_set[b / 8] |= (uint8_t)(1u << b % 8);
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (p->dim_bits[d])
            for (uint32_t id = 0; id < 256; id++)
                if (sdb__plan_dim_has(p, d, id)) x->dset[d][id / 8] |= (uint8_t)(1u << id % 8);
    return x;
}

static void xstate_free(xstate *x)
{
    if (!x) return;
    free(x->bg);
    free(x->lo);
    free(x->hi);
    free(x->width);
    free(x->stmp);
    free(x->hv);
    free(x->hg);
    free(x->hseg);
    free(x->dts);
    free(x->dv);
    free(x->dtr);
    free(x->ddim);
    free(x->dtsrc);
    free(x);
}

/* Pass 1's bounds of g's groups: each group's min and max from its slots
 * (the query's where it gives one). */
static int hist_bounds(const sdb__plan *p, const sdb__gtab *g, double **lo, double **hi,
                       double **width)
{
    const sdb__query *q = p->q;
    *lo = malloc(g->n * sizeof **lo);
    *hi = malloc(g->n * sizeof **hi);
    *width = malloc(g->n * sizeof **width);
    if (!*lo || !*hi || !*width) return SDB_ENOMEM;
    for (uint32_t gi = 0; gi < g->n; gi++) {
        sdb__mom m, s;
        sdb__mom_init(&m);
        for (uint32_t k = 0; k < g->n_int; k++) {
            sdb__slot_mom(&g->slot[(size_t)gi * g->n_int + k], &s);
            sdb__mom_merge(&m, &s);
        }
        double l = q->hist_has_min ? q->hist_min : m.min;
        double h = q->hist_has_max ? q->hist_max : m.max;
        if (!(h >= l)) h = l;
        (*lo)[gi] = l;
        (*hi)[gi] = h;
        (*width)[gi] = (h - l) / q->bins;
    }
    return SDB_OK;
}

/* ------------------------------------------------ intra-query parallelism */

/* A plan with enough rows is cut into parts, consecutive runs of its kept
 * segments of about equal bytes, each run by one thread into its own group
 * table and merged into the caller's in part order at the end. The parts
 * depend only on the plan and the pool's size, never on which thread ran
 * which part or when, so the merged sums are the same bits run to run.
 * Threads take the next part from a shared counter, so a helper that the
 * machine's other load delays costs only the parts it holds.
 *
 * The helpers are one pool per process, made on first use: online CPUs - 1
 * threads (the caller is the other). A query takes only idle helpers, and
 * only as many as there are CPUs that no other running query holds
 * (sdb__queries_running, counted by query.c): when the HTTP server runs as
 * many queries at once as there are CPUs, each runs its parts on its own
 * thread, so the threads that compute never exceed max(CPUs, the queries
 * running) (no threads x threads storm). Nor does a query take helpers
 * while the 1-minute load average is above CPUs + 1 (sdb__par_max_load):
 * other processes hold the CPUs, a helper then waits for one, and the
 * query waits for the helper's part (the 10M matrix at load 9-12 ran
 * 0.87x main's serial build with helpers). */
#define POOL_MAX 7
#define PARTS_PER_THREAD 4

uint64_t sdb__par_min_rows = SDB__PAR_MIN_ROWS;
atomic_uint sdb__queries_running;
double sdb__par_max_load = -1; /* -1: CPUs + 1, set when the pool starts */
uint32_t sdb__par_parts;

typedef struct helper {
    pthread_t th;
    pthread_cond_t cv;
    void (*fn)(void *);
    void *arg;
    int busy;    /* taken by a query */
    int started; /* took fn: the caller waits for it */
    int done;    /* fn returned */
} helper;

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    helper h[POOL_MAX];
    int n;       /* helpers running */
    int threads; /* threads a query may use: n + 1, or SDB_QUERY_THREADS's cap */
} pool = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
          .done_cv = PTHREAD_COND_INITIALIZER};

static void *helper_main(void *arg)
{
    helper *h = arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!h->fn) pthread_cond_wait(&h->cv, &pool.mu);
        h->started = 1;
        void (*fn)(void *) = h->fn;
        void *a = h->arg;
        pthread_mutex_unlock(&pool.mu);
        fn(a);
        pthread_mutex_lock(&pool.mu);
        h->fn = NULL;
        h->started = 0;
        h->done = 1;
        pthread_cond_broadcast(&pool.done_cv);
    }
    return NULL;
}

/* A child of fork() has no helpers (only the forking thread survives). */
static void pool_after_fork(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    pool.n = 0;
    pool.threads = 1;
}

/* Freed memory stays with the process for the next query. glibc's
 * defaults hand a block of 128 KiB or more (a value list's arrays, a trace
 * set, the distinct counter's scatter array, a histogram table) back to
 * the kernel on free, by munmap or by trimming the heap's top past 128
 * KiB (raised at most to 32 MiB as blocks are freed), so each query faulted
 * its accumulators in afresh, zeroed: page faults were 25-35% of the 10M
 * percentile and traces cells (perf record, one thread). With blocks up
 * to 32 MiB from the heap and up to 256 MiB of free heap kept, the traces
 * cells take 0.53-0.61x the CPU, the percentile cells with large lists
 * 0.67-0.85x (docs/query-engine.md "Memory between queries"). Set once
 * for the process, on its first query; a GLIBC_TUNABLES that sets malloc
 * parameters is left to decide. */
static atomic_bool malloc_hosts; /* sdb_malloc_policy_is_hosts was called */

void sdb_malloc_policy_is_hosts(void)
{
    atomic_store(&malloc_hosts, true);
}

static void malloc_keep(void)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
    if (atomic_load(&malloc_hosts)) return;
    const char *tun = getenv("GLIBC_TUNABLES");
    if (tun && strstr(tun, "glibc.malloc.")) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

static void pool_start(void)
{
    malloc_keep();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cpus > 1 ? (int)(cpus - 1) : 0;
    if (want > POOL_MAX) want = POOL_MAX;
    const char *env = getenv("SDB_QUERY_THREADS");
    if (env && *env) {
        long cap = strtol(env, NULL, 10);
        if (cap >= 1 && cap - 1 < want) want = (int)(cap - 1);
        if (sdb__par_max_load < 0) sdb__par_max_load = 0; /* asked for: no load gate */
    }
    if (sdb__par_max_load < 0) sdb__par_max_load = (double)(cpus > 1 ? cpus : 1) + 1;
    /* Helpers take no signals: the server's handlers run on its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < want; i++) {
        helper *h = &pool.h[pool.n];
        memset(h, 0, sizeof *h);
        if (pthread_cond_init(&h->cv, NULL)) break;
        if (pthread_create(&h->th, NULL, helper_main, h)) {
            pthread_cond_destroy(&h->cv);
            break;
        }
        pthread_detach(h->th);
        pool.n++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pool.threads = pool.n + 1;
    /* Benchmarks measure the cut-off with SDB_QUERY_PAR_MIN_ROWS=N and the
     * parts with SDB_QUERY_PARTS=N. */
    const char *mr = getenv("SDB_QUERY_PAR_MIN_ROWS");
    if (mr && *mr) sdb__par_min_rows = strtoull(mr, NULL, 10);
    const char *np = getenv("SDB_QUERY_PARTS");
    if (np && *np) sdb__par_parts = (uint32_t)strtoul(np, NULL, 10);
    pthread_atfork(NULL, NULL, pool_after_fork);
}

/* Up to `want` idle helpers, marked busy, into out; how many. */
static int pool_take(int want, helper **out)
{
    int k = 0;
    pthread_mutex_lock(&pool.mu);
    for (int i = 0; i < pool.n && k < want; i++)
        if (!pool.h[i].busy) {
            pool.h[i].busy = 1;
            out[k++] = &pool.h[i];
        }
    pthread_mutex_unlock(&pool.mu);
    return k;
}

static void pool_run(helper *h, void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&pool.mu);
    h->arg = arg;
    h->done = 0;
    h->started = 0;
    h->fn = fn;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&pool.mu);
}

/* Once the caller has run out of work: a helper that has not started yet
 * (the machine's other load kept it off a CPU) is taken back rather than
 * waited for; one that started is waited for. */
static void pool_wait(helper *h)
{
    pthread_mutex_lock(&pool.mu);
    if (h->fn && !h->started) {
        h->fn = NULL;
        h->done = 1;
    }
    while (!h->done) pthread_cond_wait(&pool.done_cv, &pool.mu);
    h->done = 0;
    h->busy = 0;
    pthread_mutex_unlock(&pool.mu);
}

/* One part: its plan is the query's with its own run of segments and its
 * own error text; part 0's table is the caller's, the others their own. */
typedef struct xpart {
    sdb__plan p;
    sdb__gtab own;
    sdb__gtab *g;
    xstate *x;
    uint32_t *map; /* after pass 0: its groups -> the caller's */
    int rc;
    char err[256];
} xpart;

typedef struct xjob {
    xpart *parts;
    int pass;
} xjob;

static void part_pass(xpart *pt, int pass)
{
    if (pt->rc) return;
    if (pass == 0) {
        if (!(pt->x = xstate_new(&pt->p, pt->g))) {
            pt->rc = SDB_ENOMEM;
            return;
        }
        if (pt->p.fixed_hist && (pt->rc = sdb__gtab_hist_alloc(pt->g))) return;
    }
    pt->x->pass = pass;
    pt->rc = run_pass(pt->x);
}

static void part_run(void *arg, uint32_t i)
{
    xjob *j = arg;
    part_pass(&j->parts[i], j->pass);
}

typedef struct par_job {
    void (*fn)(void *, uint32_t);
    void *arg;
    uint32_t n;
    atomic_uint next;
} par_job;

static void par_work(void *arg)
{
    par_job *j = arg;
    for (;;) {
        unsigned i = atomic_fetch_add(&j->next, 1u);
        if (i >= j->n) return;
        j->fn(j->arg, i);
    }
}

/* Helpers only for the CPUs that no other running query holds: the
 * caller is one of the running queries, so alone it takes all, and with
 * as many queries running as CPUs none. */
static int par_free_cpus(void)
{
    pthread_once(&pool.once, pool_start);
    int free_cpus = pool.threads - (int)atomic_load(&sdb__queries_running);
    double load;
    if (sdb__par_max_load > 0 && getloadavg(&load, 1) == 1 && load > sdb__par_max_load)
        free_cpus = 0;
    return free_cpus;
}

bool sdb__par_may_help(void)
{
    return par_free_cpus() > 0;
}

void sdb__par_for(uint32_t n, void (*fn)(void *arg, uint32_t i), void *arg, bool parallel)
{
    par_job j = {.fn = fn, .arg = arg, .n = n};
    atomic_init(&j.next, 0u);
    helper *h[POOL_MAX];
    int nh = 0;
    if (parallel && n > 1) {
        int free_cpus = par_free_cpus();
        int want = free_cpus < (int)n - 1 ? free_cpus : (int)n - 1;
        nh = want > 0 ? pool_take(want, h) : 0;
    }
    for (int i = 0; i < nh; i++) pool_run(h[i], par_work, &j);
    par_work(&j);
    for (int i = 0; i < nh; i++) pool_wait(h[i]);
}

/* The first error of the parts in part order (its text into the plan's). */
static int parts_rc(const sdb__plan *p, const xpart *pt, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (pt[i].rc) {
            if (p->err && p->errlen) snprintf(p->err, p->errlen, "%s", pt[i].err);
            return pt[i].rc;
        }
    return SDB_OK;
}

static int exec_parallel(const sdb__plan *p, sdb__gtab *g, uint32_t n_parts)
{
    xpart *pt = calloc(n_parts, sizeof *pt);
    if (!pt) return SDB_ENOMEM;
    pthread_mutex_t row_mu = PTHREAD_MUTEX_INITIALIZER;
    int rc = SDB_OK;
    /* Consecutive runs of about equal bytes (a segment's bytes follow its
     * rows), part i ending where the running total passes (i+1)/n. */
    uint64_t total = 0, run = 0;
    for (size_t i = 0; i < p->n_segs; i++) total += p->segs[i].len;
    size_t at = 0;
    for (uint32_t i = 0; i < n_parts; i++) {
        xpart *x = &pt[i];
        x->p = *p;
        x->p.err = x->err;
        x->p.errlen = sizeof x->err;
        x->p.row_mu = &row_mu;
        x->p.segs = p->segs + at;
        uint64_t end = total * (i + 1) / n_parts;
        size_t e = at;
        while (e < p->n_segs && (i + 1 == n_parts || run + p->segs[e].len <= end || e == at))
            run += p->segs[e++].len;
        x->p.n_segs = e - at;
        at = e;
        if (i == 0) x->g = g;
        else if ((rc = sdb__gtab_init_like(&x->own, g))) goto done;
        else x->g = &x->own;
    }
    /* Worker threads read the transaction's pages concurrently: LMDB
     * refreshes a named database's root on its first use in a txn (a write
     * into the txn), so that use happens here, once, before they start. */
    static const uint8_t none[SDB__SEGKEY_LEN];
    sdb__val v;
    sdb__get(p->t, SDB__DB_PREAGG, none, sizeof none, &v);
    if (p->need_row) sdb__get(p->t, SDB__DB_ATTRS, none, sizeof none, &v);
    xjob j = {.parts = pt, .pass = 0};
    sdb__par_for(n_parts, part_run, &j, true);
    if ((rc = parts_rc(p, pt, n_parts))) goto done;
    for (uint32_t i = 1; i < n_parts; i++) {
        if (!(pt[i].map = malloc((pt[i].g->n ? pt[i].g->n : 1) * sizeof *pt[i].map))) {
            rc = SDB_ENOMEM;
            goto done;
        }
        if ((rc = sdb__gtab_merge(g, pt[i].g, pt[i].map))) goto done;
    }
    if ((rc = sdb__plan_check(p, g))) goto done;
    if (p->free_hist && !p->want_vals && g->n) {
        double *lo, *hi, *width;
        rc = hist_bounds(p, g, &lo, &hi, &width);
        pt[0].x->lo = lo;
        pt[0].x->hi = hi;
        pt[0].x->width = width;
        if (rc == SDB_OK) rc = sdb__gtab_hist_alloc(g);
        for (uint32_t i = 1; rc == SDB_OK && i < n_parts; i++) {
            xstate *x = pt[i].x;
            uint32_t n = pt[i].g->n ? pt[i].g->n : 1;
            x->lo = malloc(n * sizeof *x->lo);
            x->hi = malloc(n * sizeof *x->hi);
            x->width = malloc(n * sizeof *x->width);
            if (!x->lo || !x->hi || !x->width || sdb__gtab_hist_alloc(pt[i].g)) rc = SDB_ENOMEM;
            for (uint32_t gi = 0; rc == SDB_OK && gi < pt[i].g->n; gi++) {
                x->lo[gi] = lo[pt[i].map[gi]];
                x->hi[gi] = hi[pt[i].map[gi]];
                x->width[gi] = width[pt[i].map[gi]];
            }
        }
        if (rc) goto done;
        j.pass = 1;
        sdb__par_for(n_parts, part_run, &j, true);
        if ((rc = parts_rc(p, pt, n_parts))) goto done;
        for (uint32_t i = 1; i < n_parts; i++) sdb__gtab_merge_hist(g, pt[i].g, pt[i].map);
    }
done:
    for (uint32_t i = 0; i < n_parts; i++) {
        xstate_free(pt[i].x);
        free(pt[i].map);
        if (i) sdb__gtab_free(&pt[i].own);
    }
    free(pt);
    return rc;
}

/* How many parts a plan is cut into: 1 (the caller's thread alone) for a
 * small plan or a process without helpers. A plan with tags or properties
 * is cut too: its parts read the attrs columns concurrently, and take
 * turns in row_store for a chunk past attrs' bounds. */
static uint32_t parts_of(const sdb__plan *p)
{
    pthread_once(&pool.once, pool_start);
    if (p->rows < sdb__par_min_rows || p->n_segs < 2) return 1;
    if (pool.threads < 2 && !sdb__par_parts) return 1;
    uint64_t n = sdb__par_parts ? sdb__par_parts : (uint64_t)pool.threads * PARTS_PER_THREAD;
    return (uint32_t)(n < p->n_segs ? n : p->n_segs);
}

int sdb__exec_run(const sdb__plan *p, sdb__gtab *g)
{
    if (p->empty) return SDB_OK;
    uint32_t n_parts = parts_of(p);
    if (n_parts > 1) return exec_parallel(p, g, n_parts);
    xstate *x = xstate_new(p, g);
    if (!x) return SDB_ENOMEM;
    int rc = SDB_OK;
    if (p->fixed_hist) rc = sdb__gtab_hist_alloc(g);
    if (rc == SDB_OK) rc = run_pass(x);
    if (rc == SDB_OK && p->free_hist && !p->want_vals && g->n) {
        /* Pass 1: each group's bounds from its moments, then the bins. */
        rc = hist_bounds(p, g, &x->lo, &x->hi, &x->width);
        if (rc == SDB_OK) rc = sdb__gtab_hist_alloc(g);
        x->pass = 1;
        if (rc == SDB_OK) rc = run_pass(x);
    }
    xstate_free(x);
    return rc;
}
