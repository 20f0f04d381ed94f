/* The answer stage: a run's group table as the answer of API.md.
 *
 * Per group: the slots' moments merged (Chan's formula; the count of every
 * row, the moments of the numeric ones), the key strings looked up in the
 * dictionaries, the distinct traces counted, histogram edges and counts,
 * exact percentiles by selection, label counts by label, and the series
 * from `from` to `to` (or from the first to the last interval with rows)
 * with empty intervals at count 0. Groups whose count is 0 (opened by a
 * filter kernel that then selected nothing) are not answers. Groups are
 * sorted by their key strings, null first; json.c renders the result.
 */
#include "query.h"

#include <math.h>

static sdb__str key_str(const sdb__plan *p, const sdb__gb *gb, uint32_t id)
{
    sdb__str s = {NULL, 0};
    sdb__val v;
    int dict = -1;
    switch (gb->kind) {
    case SDB_GB_SOURCE:
        if (id >= 1 && id <= SDB_N_SOURCES)
            s = (sdb__str){sdb__source_names[id - 1], (uint32_t)strlen(sdb__source_names[id - 1])};
        return s;
    case SDB_GB_TYPE:
        if (id >= 1 && id <= SDB_N_TYPES)
            s = (sdb__str){sdb__type_names[id - 1], (uint32_t)strlen(sdb__type_names[id - 1])};
        return s;
    case SDB_GB_NAME: dict = SDB_DICT_NAME; break;
    case SDB_GB_DIM: dict = gb->dim; break;
    case SDB_GB_PROP: dict = SDB_DICT_PROP; break;
    }
    if (id && sdb__dict_str(p->t, p->project, dict, id, &v) == SDB_OK)
        s = (sdb__str){v.p, (uint32_t)v.len};
    return s;
}

static int cmp_str(const sdb__str *a, const sdb__str *b)
{
    if (!a->p || !b->p) return (a->p != NULL) - (b->p != NULL); /* null first */
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cmp_out(const void *x, const void *y, void *arg)
{
    const sdb__out_group *a = x, *b = y;
    uint32_t n = *(const uint32_t *)arg;
    for (uint32_t k = 0; k < n; k++) {
        int c = cmp_str(&a->key[k], &b->key[k]);
        if (c) return c;
    }
    return 0;
}

static int cmp_cat(const void *x, const void *y)
{
    return cmp_str(&((const sdb__cat *)x)->label, &((const sdb__cat *)y)->label);
}

/* Histogram edges and counts of group gi: the fixed bounds, or the
 * group's own min and max (the query's where it gives one), counted in
 * pass 1 or, when percentiles kept the values, from them. */
static int hist_out(const sdb__plan *p, sdb__gtab *g, uint32_t gi, sdb__out_group *o)
{
    const sdb__query *q = p->q;
    uint32_t bins = q->bins;
    double lo, hi, width;
    if (p->fixed_hist) {
        lo = p->h_lo;
        hi = p->h_hi;
        width = p->h_width;
    } else {
        lo = q->hist_has_min ? q->hist_min : o->mom.min;
        hi = q->hist_has_max ? q->hist_max : o->mom.max;
        if (!(hi >= lo)) hi = lo;
        width = (hi - lo) / bins;
    }
    o->hist = calloc(bins + 2, sizeof *o->hist);
    o->edges = malloc((bins + 1) * sizeof *o->edges);
    if (!o->hist || !o->edges) return SDB_ENOMEM;
    if (g->hist) {
        memcpy(o->hist, g->hist + (size_t)gi * (bins + 2), (bins + 2) * sizeof *o->hist);
    } else if (g->want_vals) {
        sdb_filter all = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0};
        int64_t t = 0;
        for (const sdb__dvec *d = &g->vals[gi]; d; d = d->more)
            for (size_t i = 0; i < d->n; i++)
                p->kern->hist_f64(&d->v[i], &t, 1, &all, lo, hi, width, bins, o->hist);
    }
    for (uint32_t i = 0; i < bins; i++) o->edges[i] = lo + width * i;
    o->edges[bins] = hi;
    o->under = o->hist[bins];
    o->over = o->hist[bins + 1];
    return SDB_OK;
}

/* What each group needs that costs time in proportion to its rows: the
 * exact percentiles of its values and its distinct trace count, per group
 * into arrays indexed by group, so that groups can run on several threads
 * (sdb__par_for) when there are enough values to pay for it. */
typedef struct finish {
    const sdb__query *q;
    sdb__gtab *g;
    double *pct;     /* g->n x n_pct */
    uint64_t *traces;
    bool *counted;   /* the large trace sets, counted before the others */
    int *rc;
} finish;

static void finish_group(void *arg, uint32_t gi)
{
    finish *f = arg;
    sdb__gtab *g = f->g;
    int rc = SDB_OK;
    if (f->pct && sdb__dvec_count(&g->vals[gi]))
        rc = sdb__percentiles_dvec(&g->vals[gi], f->q->pct, f->q->n_pct,
                                   f->pct + (size_t)gi * f->q->n_pct);
    if (rc == SDB_OK && f->traces && !(f->counted && f->counted[gi]))
        rc = sdb__traceset_count(&g->traces[gi], &f->traces[gi], false);
    f->rc[gi] = rc;
}

static int finish_groups(const sdb__plan *p, sdb__gtab *g, finish *f)
{
    f->q = p->q;
    f->g = g;
    if (!g->n) return SDB_OK;
    uint64_t work = 0;
    if (p->q->n_pct && g->want_vals) {
        if (!(f->pct = malloc((size_t)g->n * p->q->n_pct * sizeof *f->pct))) return SDB_ENOMEM;
        for (uint32_t gi = 0; gi < g->n; gi++)
            work += sdb__dvec_count(&g->vals[gi]);
    }
    if (!(f->rc = calloc(g->n, sizeof *f->rc))) return SDB_ENOMEM;
    if (p->want_traces) {
        if (!(f->traces = calloc(g->n, sizeof *f->traces))) return SDB_ENOMEM;
        for (uint32_t gi = 0; gi < g->n; gi++) work += g->traces[gi].n;
    }
    if (!f->pct && !f->traces) return SDB_OK;
    bool par = work >= sdb__par_min_rows && !p->need_row;
    if (f->traces && par) {
        /* A set of sdb__par_min_rows hashes or more is counted on its own,
         * its partitions spread over the pool: one large group (a query
         * without group_by) would otherwise count on one thread. */
        if (!(f->counted = calloc(g->n, sizeof *f->counted))) return SDB_ENOMEM;
        for (uint32_t gi = 0; gi < g->n; gi++) {
            if (g->traces[gi].n < sdb__par_min_rows) continue;
            int rc = sdb__traceset_count(&g->traces[gi], &f->traces[gi], true);
            if (rc) return rc;
            f->counted[gi] = true;
        }
    }
    sdb__par_for(g->n, finish_group, f, par);
    for (uint32_t gi = 0; gi < g->n; gi++)
        if (f->rc[gi]) return f->rc[gi];
    return SDB_OK;
}

int sdb__answer_build(const sdb__plan *p, sdb__gtab *g, sdb__answer *a)
{
    const sdb__query *q = p->q;
    int rc;
    finish fin;
    memset(&fin, 0, sizeof fin);
    a->groups = calloc(g->n ? g->n : 1, sizeof *a->groups);
    if (!a->groups) return SDB_ENOMEM;
    a->n_groups = 0;
    /* The series runs over [first, last]: from/to where given, else the
     * intervals that have rows, in any group. */
    int64_t first = 0, last = -1;
    if (p->i_width && g->n) {
        int64_t seen_lo = INT64_MAX, seen_hi = INT64_MIN;
        for (uint32_t gi = 0; gi < g->n; gi++)
            for (uint32_t k = 0; k < g->n_int; k++)
                if (g->slot[(size_t)gi * g->n_int + k].count) {
                    if (p->i_lo + k < seen_lo) seen_lo = p->i_lo + k;
                    if (p->i_lo + k > seen_hi) seen_hi = p->i_lo + k;
                }
        first = q->has_from ? sdb__floor_div(q->from - p->i_origin, p->i_width) : seen_lo;
        last = q->has_to ? sdb__floor_div(q->to - 1 - p->i_origin, p->i_width) : seen_hi;
    }
    /* Key strings by local index, looked up once per distinct value (160
     * model x prompt groups share 28 strings). */
    sdb__str *kcache[SDB_MAX_GROUP_BY] = {NULL};
    uint8_t *khave[SDB_MAX_GROUP_BY] = {NULL};
    for (uint32_t k = 0; k < g->n_keys; k++) {
        kcache[k] = malloc((g->key[k].n_local + 1) * sizeof *kcache[k]);
        khave[k] = calloc(g->key[k].n_local + 1, 1);
        if (!kcache[k] || !khave[k]) {
            rc = SDB_ENOMEM;
            goto done;
        }
    }
    if ((rc = finish_groups(p, g, &fin))) goto done;
    for (uint32_t gi = 0; gi < g->n; gi++) {
        const sdb_slot *sl = g->slot + (size_t)gi * g->n_int;
        uint64_t count = 0;
        sdb__mom mom, m;
        sdb__mom_init(&mom);
        for (uint32_t k = 0; k < g->n_int; k++) {
            count += sl[k].count;
            sdb__slot_mom(&sl[k], &m);
            sdb__mom_merge(&mom, &m);
        }
        if (count == 0) continue;
        sdb__out_group *o = &a->groups[a->n_groups++];
        for (uint32_t k = 0; k < q->n_group; k++) {
            uint32_t local = g->local[(size_t)gi * g->n_keys + k];
            if (!khave[k][local]) {
                kcache[k][local] = key_str(p, &q->group[k], g->key[k].raw[local]);
                khave[k][local] = 1;
            }
            o->key[k] = kcache[k][local];
        }
        o->count = count;
        o->mom = mom;
        o->n_cat = count - mom.n;
        if (p->want_traces) o->traces = fin.traces[gi];
        bool numeric = o->mom.n > 0 || o->n_cat == 0;
        if (q->has_hist && numeric && (rc = hist_out(p, g, gi, o))) goto done;
        if (q->n_pct && o->mom.n && sdb__dvec_count(&g->vals[gi])) {
            o->pct = malloc(q->n_pct * sizeof *o->pct);
            if (!o->pct) {
                rc = SDB_ENOMEM;
                goto done;
            }
            memcpy(o->pct, fin.pct + (size_t)gi * q->n_pct, q->n_pct * sizeof *o->pct);
        }
        if (g->cats[gi]) {
            o->cats = malloc(sizeof *o->cats * (g->n_labels + 1));
            if (!o->cats) {
                rc = SDB_ENOMEM;
                goto done;
            }
            for (uint32_t id = 1; id <= g->n_labels; id++) {
                if (!g->cats[gi][id]) continue;
                sdb__val v;
                sdb__str s = {"", 0};
                if (sdb__dict_str(p->t, p->project, SDB_DICT_CATEGORY, id, &v) == SDB_OK)
                    s = (sdb__str){v.p, (uint32_t)v.len};
                o->cats[o->n_cats++] = (sdb__cat){s, g->cats[gi][id]};
            }
            qsort(o->cats, o->n_cats, sizeof *o->cats, cmp_cat);
        }
        if (p->i_width) {
            uint32_t n = last >= first ? (uint32_t)(last - first + 1) : 0;
            o->series = calloc(n ? n : 1, sizeof *o->series);
            if (!o->series) {
                rc = SDB_ENOMEM;
                goto done;
            }
            o->n_series = n;
            for (uint32_t i = 0; i < n; i++) {
                int64_t idx = first + i;
                sdb__point *pt = &o->series[i];
                pt->t = idx * p->i_width + p->i_origin;
                sdb__mom_init(&pt->mom);
                if (idx >= p->i_lo && idx < p->i_lo + (int64_t)g->n_int) {
                    const sdb_slot *s = &sl[idx - p->i_lo];
                    pt->count = s->count;
                    sdb__slot_mom(s, &pt->mom);
                }
            }
        }
    }
    uint32_t ng = q->n_group;
    qsort_r(a->groups, a->n_groups, sizeof *a->groups, cmp_out, &ng);
done:
    free(fin.pct);
    free(fin.traces);
    free(fin.counted);
    free(fin.rc);
    for (uint32_t k = 0; k < SDB_MAX_GROUP_BY; k++) {
        free(kcache[k]);
        free(khave[k]);
    }
    return rc;
}

void sdb__answer_free(sdb__answer *a)
{
    for (uint32_t i = 0; i < a->n_groups; i++) {
        sdb__out_group *o = &a->groups[i];
        free(o->edges);
        free(o->hist);
        free(o->pct);
        free(o->cats);
        free(o->series);
    }
    free(a->groups);
    memset(a, 0, sizeof *a);
}
