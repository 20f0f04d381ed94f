/* The query engine: plan over segment keys and zone maps, then aggregate.
 *
 * Plan, per segment (DESIGN.md "Query engine"):
 *   1. seek by key to (project, name, bucket of `from`) and stop past the
 *      bucket of `to`;
 *   2. drop the segment when its zone map cannot match (time, value, type);
 *   3. answer from its header when the segment lies wholly inside the time
 *      range, inside one series interval, and nothing per-row is asked for;
 *   4. otherwise run a kernel over its columns when the filters are only
 *      time and value ranges, or the general row loop when they are not.
 *
 * Every path accumulates, per group, the same sdb_agg about a shift K
 * chosen once per group (its first value), so sums, counts and moments
 * are independent of which path served which segment. Exactness: counts,
 * min, max, histogram bins and percentiles are exact; sum and avg are
 * sums of doubles (the same additions a SQL engine performs, in another
 * order).
 */
#include "query.h"

#include <math.h>

#define MAX_INTERVALS 100000
#define SERIES_TMP_MAX 4096

/* ------------------------------------------------------- small structures */

/* Distinct trace hashes. A group's trace hashes are appended to an array
 * as the scans select them (select_u64 writes straight into it) and
 * counted once, at the end, by sdb__distinct_u64. An append is a
 * sequential write; inserting each row into one hash set sized for a few
 * hundred thousand traces was a cache miss per row, 63% of the time of the
 * benchmark's query f (value range + distinct traces, 2.2M rows, 336k
 * selected, 298k distinct), plus the rehashes of its doublings.
 *
 * The count radix-partitions the array by the top bits of a multiplicative
 * hash (a bijection of u64, so distinct stays distinct) into at most 2^10
 * partitions of about DISTINCT_PART_ROWS (more partitions cost a TLB miss
 * per scattered write), then dedupes each partition with an open-addressing
 * table (linear probing) of at least 8 slots per row, mostly cache-resident:
 * at that load most probes end at the first slot, so the loop mispredicts
 * rarely. The table is allocated once and cleared slot by slot after each
 * partition (memset of the whole table per partition cost more than the
 * inserts). It doubles when a partition fills half of it, so its size
 * follows the distinct count, not the row count. Measured on 336k hashes
 * (11% repeats): 0.7 ms, against about 8 ms for the per-row set it
 * replaced.
 * The result is exact: two hashes are one trace only when all 64 bits are
 * equal (API.md: the xxh3 hash of a trace_id is its identity). */
#define DISTINCT_PART_ROWS 1024
#define DISTINCT_MAX_PART_BITS 10
#define DISTINCT_SLOTS_PER_ROW 8
#define DISTINCT_START_BITS_MAX 16 /* first table of a partition: at most 2^16 slots */
#define TRACESET_SLACK ((size_t)1 << 20) /* appends between compactions, at least */

static inline uint64_t dmix(uint64_t x)
{
    return x * 0x9E3779B97F4A7C15ull; /* odd: a bijection */
}

/* An open-addressing table of 2^bits slots, all zero between partitions,
 * and the slots the current partition filled (at most half of them). */
typedef struct dtab {
    uint64_t *t;
    size_t *used;
    unsigned bits;
} dtab;

static int dtab_reserve(dtab *d, unsigned bits)
{
    if (d->t && bits <= d->bits) return SDB_OK;
    uint64_t *t = calloc((size_t)1 << bits, sizeof *t);
    size_t *used = malloc(((size_t)1 << (bits - 1)) * sizeof *used);
    if (!t || !used) {
        free(t);
        free(used);
        return SDB_ENOMEM;
    }
    free(d->t);
    free(d->used);
    d->t = t;
    d->used = used;
    d->bits = bits;
    return SDB_OK;
}

/* The slot of x, or of the empty slot where x belongs, in a table of 2^b
 * slots; the top `skip` bits of dmix(x) chose the partition, the next b
 * choose the home slot. */
static inline size_t dtab_find(const uint64_t *t, unsigned b, unsigned skip, uint64_t x)
{
    size_t mask = ((size_t)1 << b) - 1;
    size_t j = (size_t)((dmix(x) << skip) >> (64 - b));
    while (t[j] != 0 && t[j] != x) j = (j + 1) & mask;
    return j;
}

/* Write the distinct nonzero values of src[0..n) to out (which may be src:
 * out never passes the index being read); *k_out = how many. */
static int dedupe_part(dtab *d, const uint64_t *src, size_t n, unsigned skip, uint64_t *out,
                       size_t *k_out)
{
    unsigned b = 4;
    while (b < DISTINCT_START_BITS_MAX && ((size_t)1 << b) < DISTINCT_SLOTS_PER_ROW * n) b++;
    int rc = dtab_reserve(d, b);
    if (rc) return rc;
    size_t k = 0, room = (size_t)1 << (b - 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = src[i];
        if (x == 0) continue;
        size_t j = dtab_find(d->t, b, skip, x);
        if (d->t[j] == x) continue;
        if (k == room) {
            /* Half full: empty the table, double it, re-insert. */
            for (size_t u = 0; u < k; u++) d->t[d->used[u]] = 0;
            if ((rc = dtab_reserve(d, ++b))) return rc;
            room *= 2;
            for (size_t u = 0; u < k; u++) {
                size_t s = dtab_find(d->t, b, skip, out[u]);
                d->t[s] = out[u];
                d->used[u] = s;
            }
            j = dtab_find(d->t, b, skip, x);
        }
        d->t[j] = x;
        d->used[k] = j;
        out[k++] = x;
    }
    for (size_t u = 0; u < k; u++) d->t[d->used[u]] = 0;
    *k_out = k;
    return SDB_OK;
}

int sdb__distinct_u64(uint64_t *v, size_t n, size_t *out_n)
{
    *out_n = 0;
    if (n == 0) return SDB_OK;
    unsigned pbits = 0;
    while (pbits < DISTINCT_MAX_PART_BITS && (n >> pbits) > DISTINCT_PART_ROWS) pbits++;
    size_t np = (size_t)1 << pbits, k = 0;
    uint64_t *tmp = NULL;
    size_t *end = NULL;
    dtab d = {NULL, NULL, 0};
    int rc = SDB_ENOMEM;
    if (!pbits) {
        rc = dedupe_part(&d, v, n, 0, v, &k);
        goto done;
    }
    /* Counting pass, then scatter: end[p] moves from the start of
     * partition p to its end. */
    tmp = malloc(n * sizeof *tmp);
    end = calloc(np, sizeof *end);
    if (!tmp || !end) goto done;
    for (size_t i = 0; i < n; i++) end[dmix(v[i]) >> (64 - pbits)]++;
    for (size_t p = 0, at = 0; p < np; p++) {
        size_t c = end[p];
        end[p] = at;
        at += c;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        tmp[end[dmix(x) >> (64 - pbits)]++] = x;
    }
    rc = SDB_OK;
    for (size_t p = 0, start = 0; rc == SDB_OK && p < np; start = end[p++]) {
        size_t m = end[p] - start, kp = 0;
        if (!m) continue;
        rc = dedupe_part(&d, tmp + start, m, pbits, v + k, &kp);
        k += kp;
    }
done:
    if (rc == SDB_OK) *out_n = k;
    free(tmp);
    free(end);
    free(d.t);
    free(d.used);
    return rc;
}

/* Keep only the distinct hashes; the next compaction waits until as many
 * again, plus the slack, have been appended, so each appended hash is
 * compacted O(1) times and memory stays O(distinct + slack). */
static int traceset_compact(sdb__traceset *s)
{
    size_t k;
    int rc = sdb__distinct_u64(s->v, s->n, &k);
    if (rc) return rc;
    s->n = k;
    s->limit = 2 * k + (s->slack ? s->slack : TRACESET_SLACK);
    return SDB_OK;
}

uint64_t *sdb__traceset_room(sdb__traceset *s, size_t k)
{
    size_t limit = s->limit ? s->limit : (s->slack ? s->slack : TRACESET_SLACK);
    if (s->n > 0 && s->n + k > limit && traceset_compact(s)) return NULL;
    if (s->n + k > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->n + k) cap *= 2;
        uint64_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return NULL;
        s->v = v;
        s->cap = cap;
    }
    return s->v + s->n;
}

int sdb__traceset_add(sdb__traceset *s, uint64_t h)
{
    uint64_t *p = sdb__traceset_room(s, 1);
    if (!p) return SDB_ENOMEM;
    *p = h;
    s->n++;
    return SDB_OK;
}

int sdb__traceset_count(sdb__traceset *s, uint64_t *out)
{
    int rc = traceset_compact(s);
    *out = rc ? 0 : s->n;
    return rc;
}

void sdb__traceset_free(sdb__traceset *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static int dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v) return SDB_ENOMEM;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = x;
    return SDB_OK;
}

typedef struct group {
    uint32_t key[SDB_MAX_GROUP_BY];
    uint64_t count, n_cat;
    sdb__mom mom; /* numeric and boolean rows */
    uint64_t *cats; /* by label id, n_labels + 1 */
    dvec vals;
    uint64_t *hist; /* bins + 2 (fixed-range histograms) */
    sdb__traceset traces;
    /* series over interval indexes [s_base, s_base + s_n) */
    int64_t s_base;
    uint32_t s_n;
    sdb__mom *s_mom;
    uint64_t *s_count;
} group;

typedef struct exec {
    sdb__txn *t;
    const sdb__query *q;
    uint32_t project;
    const sdb_kernels *kern;
    int64_t t_lo, t_hi;
    double v_lo, v_hi;
    uint32_t *dim_ids[SDB_N_DIMS];
    uint32_t n_dim_ids[SDB_N_DIMS];
    bool dim_active;
    bool need_row, need_vals, fixed_hist, want_traces, want_cats_only;
    bool gb_simple; /* group keys come from the segment alone */
    double h_lo, h_hi, h_width;
    uint32_t n_labels;
    int64_t i_width, i_origin;
    int64_t i_min, i_max; /* observed interval indexes */
    group *groups;
    uint32_t n_groups, cap_groups;
    uint32_t *table; /* open addressing: group index + 1 */
    uint32_t table_cap;
    sdb_agg *stmp;
    bool gb_dim;      /* group-by exactly one dimension */
    uint32_t gb_keys; /* single-dimension group-by: dictionary size + 1, 0 = off */
    sdb_agg *gtmp;    /* gb_keys accumulators */
    uint32_t *keys;   /* a narrow dimension column widened for group_u32 */
    uint32_t keys_cap;
    char *err;
    size_t errlen;
} exec;

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

static uint64_t key_hash(const uint32_t *k, uint32_t n)
{
    return sdb__hash(k, n * sizeof *k);
}

static group *group_get(exec *e, const uint32_t *key)
{
    uint32_t nk = e->q->n_group;
    if (e->table_cap == 0 || (e->n_groups + 1) * 2 > e->table_cap) {
        uint32_t cap = e->table_cap ? e->table_cap * 2 : 64;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t) return NULL;
        for (uint32_t i = 0; i < e->n_groups; i++) {
            uint32_t j = (uint32_t)key_hash(e->groups[i].key, nk) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = i + 1;
        }
        free(e->table);
        e->table = t;
        e->table_cap = cap;
    }
    uint32_t j = (uint32_t)key_hash(key, nk) & (e->table_cap - 1);
    while (e->table[j]) {
        group *g = &e->groups[e->table[j] - 1];
        uint32_t k = 0; /* at most 4 words: no call to memcmp (query g: one per segment) */
        while (k < nk && g->key[k] == key[k]) k++;
        if (k == nk) return g;
        j = (j + 1) & (e->table_cap - 1);
    }
    if (e->n_groups == e->cap_groups) {
        uint32_t cap = e->cap_groups ? e->cap_groups * 2 : 16;
        group *g = realloc(e->groups, cap * sizeof *g);
        if (!g) return NULL;
        e->groups = g;
        e->cap_groups = cap;
    }
    group *g = &e->groups[e->n_groups];
    memset(g, 0, sizeof *g);
    memcpy(g->key, key, nk * sizeof *key);
    sdb__mom_init(&g->mom);
    if (e->fixed_hist) {
        g->hist = calloc(e->q->bins + 2, sizeof *g->hist);
        if (!g->hist) return NULL;
    }
    e->table[j] = ++e->n_groups;
    return g;
}

/* Make room in a group's series for interval index i. */
static int series_room(exec *e, group *g, int64_t lo, int64_t hi)
{
    if (g->s_n && lo >= g->s_base && hi < g->s_base + g->s_n) return SDB_OK;
    int64_t nlo = g->s_n ? (lo < g->s_base ? lo : g->s_base) : lo;
    int64_t nhi = g->s_n ? (hi >= g->s_base + g->s_n ? hi : g->s_base + g->s_n - 1) : hi;
    if (nhi - nlo + 1 > MAX_INTERVALS) {
        sdb__errf(e->err, e->errlen,
                  "field \"interval\": the answer would have more than %d intervals; use a "
                  "wider interval or a shorter time range",
                  MAX_INTERVALS);
        return SDB_ELIMIT;
    }
    uint32_t n = (uint32_t)(nhi - nlo + 1);
    sdb__mom *a = malloc(n * sizeof *a);
    uint64_t *c = calloc(n, sizeof *c);
    if (!a || !c) {
        free(a);
        free(c);
        return SDB_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) sdb__mom_init(&a[i]);
    if (g->s_n) {
        uint32_t off = (uint32_t)(g->s_base - nlo);
        memcpy(a + off, g->s_mom, g->s_n * sizeof *a);
        memcpy(c + off, g->s_count, g->s_n * sizeof *c);
    }
    free(g->s_mom);
    free(g->s_count);
    g->s_mom = a;
    g->s_count = c;
    g->s_base = nlo;
    g->s_n = n;
    return SDB_OK;
}

static inline int64_t interval_of(const exec *e, int64_t t)
{
    return sdb__floor_div(t - e->i_origin, e->i_width);
}

/* A segment header's moments: exact per chunk (two-pass at build). */
static void mom_from_header(sdb__mom *m, const sdb__seg_hdr *h)
{
    uint64_t n = (uint64_t)h->n_type[SDB_NUMERIC] + h->n_type[SDB_BOOLEAN];
    sdb__mom_init(m);
    if (!n) return;
    m->n = n;
    m->sum = h->sum;
    m->k = h->k;
    m->dm = h->dm;
    m->m2 = h->m2;
    m->min = h->v_min;
    m->max = h->v_max;
}

/* Moments of a kernel's partial aggregate taken about shift 0: the mean
 * is sum/n (k = 0), good for avg; when stddev is asked for, a second pass
 * about that mean fills in k, dm and M2 (kernel_stats). */
static void mom_from_agg(sdb__mom *m, const sdb_agg *a)
{
    sdb__mom_init(m);
    if (!a->n) return;
    m->n = a->n;
    m->sum = a->sum;
    m->k = 0;
    m->dm = a->sum / (double)a->n;
    m->min = a->min;
    m->max = a->max;
}

/* ------------------------------------------------------------ row path */

static bool id_in(const uint32_t *ids, uint32_t n, uint32_t id)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id;
}

/* Add one matched row to group g. */
static int add_row(exec *e, group *g, int64_t ts, double v, uint8_t type, uint64_t trace)
{
    int rc;
    g->count++;
    if (type == SDB_CATEGORICAL) {
        g->n_cat++;
        if (!g->cats) {
            g->cats = calloc(e->n_labels + 1, sizeof *g->cats);
            if (!g->cats) return SDB_ENOMEM;
        }
        uint32_t id = (uint32_t)v;
        if (id <= e->n_labels) g->cats[id]++;
    } else {
        sdb__mom_add(&g->mom, v);
        if (e->need_vals && (rc = dvec_push(&g->vals, v))) return rc;
        if (e->fixed_hist) e->kern->hist_f64(&v, &ts, 1, &(sdb_filter){INT64_MIN, INT64_MAX,
                                                 -INFINITY, INFINITY, 0},
                                             e->h_lo, e->h_hi, e->h_width, e->q->bins, g->hist);
    }
    if (e->want_traces && trace && (rc = sdb__traceset_add(&g->traces, trace))) return rc;
    if (e->i_width) {
        int64_t i = interval_of(e, ts);
        if ((rc = series_room(e, g, i, i))) return rc;
        uint32_t at = (uint32_t)(i - g->s_base);
        g->s_count[at]++;
        if (type != SDB_CATEGORICAL) sdb__mom_add(&g->s_mom[at], v);
        if (i < e->i_min) e->i_min = i;
        if (i > e->i_max) e->i_max = i;
    }
    return SDB_OK;
}

/* The group key part of a property: its value's dictionary id, 0 when the
 * row lacks the property. */
static uint32_t prop_key(exec *e, const sdb__row *r, const sdb__str *key)
{
    sdb__str v;
    if (!sdb__row_prop_get(r, key->p, key->len, &v)) return 0;
    uint32_t id = 0;
    sdb__dict_id(e->t, e->project, SDB_DICT_PROP, v.p, v.len, 0, &id);
    return id;
}

/* A dimension filter as the row loop of one segment applies it. */
typedef struct dim_filter {
    const uint32_t *ids; /* sorted */
    uint32_t n_ids;
    const uint8_t *col;
    unsigned w;
} dim_filter;

static int row_path(exec *e, const sdb__seg *g, uint32_t name)
{
    const sdb__query *q = e->q;
    uint32_t key[SDB_MAX_GROUP_BY] = {0};
    /* Column and width of each dimension filter and group key, found once
     * per segment rather than per row. A filter on a dimension absent from
     * the whole segment (width 0) either passes every row or none. */
    dim_filter df[SDB_N_DIMS];
    int n_df = 0;
    for (int d = 0; d < SDB_N_DIMS; d++) {
        if (!e->dim_ids[d]) continue;
        dim_filter f = {e->dim_ids[d], e->n_dim_ids[d], sdb__seg_dim_col(g, d), g->h.dim_w[d]};
        if (f.w == 0 && !id_in(f.ids, f.n_ids, 0)) return SDB_OK;
        if (f.w) df[n_df++] = f;
    }
    const uint8_t *gcol[SDB_MAX_GROUP_BY] = {0};
    unsigned gw[SDB_MAX_GROUP_BY] = {0};
    for (uint32_t k = 0; k < q->n_group; k++)
        if (q->group[k].kind == SDB_GB_DIM) {
            gcol[k] = sdb__seg_dim_col(g, q->group[k].dim);
            gw[k] = g->h.dim_w[q->group[k].dim];
        }
    for (uint32_t i = 0; i < g->n; i++) {
        int64_t ts = ld_i64(g->ts, i);
        if (ts < e->t_lo || ts > e->t_hi) continue;
        uint8_t type = sdb__seg_type(g, i), src = sdb__seg_source(g, i);
        if (q->type_mask && !(q->type_mask & (1u << type))) continue;
        if (q->source_mask && !(q->source_mask & (1u << src))) continue;
        double v = ld_f64(g->value, i);
        if (q->has_value && (type == SDB_CATEGORICAL || v < e->v_lo || v > e->v_hi)) continue;
        bool ok = true;
        for (int k = 0; ok && k < n_df; k++)
            ok = id_in(df[k].ids, df[k].n_ids, sdb__seg_ld(df[k].col, df[k].w, i));
        if (!ok) continue;
        sdb__row row;
        if (e->need_row) {
            sdb__val rv;
            int rc = sdb__row_get(e->t, e->project, sdb__seg_ref(g, i), &rv);
            if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
            if ((rc = sdb__row_decode(rv.p, rv.len, &row))) return rc;
            for (uint32_t k = 0; ok && k < q->tags.n; k++)
                ok = sdb__row_has_tag(&row, q->tags.v[k].p, q->tags.v[k].len);
            for (uint32_t k = 0; ok && k < q->n_props; k++) {
                sdb__str pv;
                ok = sdb__row_prop_get(&row, q->props[k].key.p, q->props[k].key.len, &pv);
                bool any = false;
                for (uint32_t m = 0; ok && !any && m < q->props[k].values.n; m++)
                    any = pv.len == q->props[k].values.v[m].len &&
                          memcmp(pv.p, q->props[k].values.v[m].p, pv.len) == 0;
                ok = ok && any;
            }
            if (!ok) continue;
        }
        for (uint32_t k = 0; k < q->n_group; k++) {
            const sdb__gb *gb = &q->group[k];
            switch (gb->kind) {
            case SDB_GB_NAME: key[k] = name; break;
            case SDB_GB_DIM: key[k] = sdb__seg_ld(gcol[k], gw[k], i); break;
            case SDB_GB_SOURCE: key[k] = src + 1u; break;
            case SDB_GB_TYPE: key[k] = type + 1u; break;
            case SDB_GB_PROP: key[k] = prop_key(e, &row, &gb->key); break;
            }
        }
        group *gr = group_get(e, key);
        if (!gr) return SDB_ENOMEM;
        int rc = add_row(e, gr, ts, v, type, ld_u64(g->trace, i));
        if (rc) return rc;
    }
    return SDB_OK;
}

/* ------------------------------------------------- header and kernel paths */

static bool types_unrestricted(const exec *e, const sdb__seg_hdr *h)
{
    if (!e->q->type_mask) return true;
    for (int t = 0; t < SDB_N_TYPES; t++)
        if (h->n_type[t] && !(e->q->type_mask & (1u << t))) return false;
    return true;
}

/* Can the columns be read by kernels alone (no per-row decisions)? */
static bool kernel_ok(const exec *e, const sdb__seg_hdr *h)
{
    return e->gb_simple && !e->dim_active && !e->need_row && !e->q->source_mask &&
           h->n_type[SDB_CATEGORICAL] == 0 && types_unrestricted(e, h);
}

static int header_path(exec *e, const sdb__seg *g, group *gr)
{
    sdb__mom m;
    mom_from_header(&m, &g->h);
    gr->count += g->n;
    sdb__mom_merge(&gr->mom, &m);
    if (e->i_width) {
        int64_t i = interval_of(e, g->h.ts_min);
        int rc = series_room(e, gr, i, i);
        if (rc) return rc;
        uint32_t at = (uint32_t)(i - gr->s_base);
        gr->s_count[at] += g->n;
        sdb__mom_merge(&gr->s_mom[at], &m);
        if (i < e->i_min) e->i_min = i;
        if (i > e->i_max) e->i_max = i;
    }
    return SDB_OK;
}

/* The filter a kernel runs with. Inside a segment that lies wholly in the
 * query's time range the time test passes every row, so the range becomes
 * everything, which the SIMD tables take as "do not read ts" (kernels.h):
 * agg and hist then read 8 bytes a row instead of 16, select 16 instead of
 * 24. series_f64 keeps the real range (its buckets start at t_lo). */
static sdb_filter kernel_filter(const exec *e, const sdb__seg *g)
{
    sdb_filter f = {e->t_lo, e->t_hi, e->v_lo, e->v_hi, 0};
    if (g->h.ts_min >= e->t_lo && g->h.ts_max <= e->t_hi) {
        f.t_lo = INT64_MIN;
        f.t_hi = INT64_MAX;
    }
    return f;
}

/* The stats of the rows passing the filters, by kernel. Returns 1 when the
 * segment should go to the row path instead (nothing has been added). */
static int kernel_stats(exec *e, const sdb__seg *g, group *gr)
{
    int rc;
    bool want_m2 = e->q->stats & SDB_STAT_STDDEV;
    sdb_filter f = {e->t_lo, e->t_hi, e->v_lo, e->v_hi, 0};
    sdb_agg a;
    sdb__mom m;
    if (e->i_width) {
        int64_t lo = interval_of(e, g->h.ts_min > e->t_lo ? g->h.ts_min : e->t_lo);
        int64_t hi = interval_of(e, g->h.ts_max < e->t_hi ? g->h.ts_max : e->t_hi);
        /* Per-interval M2 would need a shift per bucket; Welford rows do it. */
        if (want_m2 || hi - lo + 1 > SERIES_TMP_MAX) return 1;
        uint32_t nb = (uint32_t)(hi - lo + 1);
        for (uint32_t i = 0; i < nb; i++) sdb__agg_empty(&e->stmp[i]);
        e->kern->series_f64(g->value, g->ts, g->n, &f, lo * e->i_width + e->i_origin,
                            e->i_width, nb, e->stmp);
        for (uint32_t i = 0; i < nb; i++) {
            if (!e->stmp[i].n) continue;
            if ((rc = series_room(e, gr, lo + i, lo + i))) return rc;
            uint32_t at = (uint32_t)(lo + i - gr->s_base);
            mom_from_agg(&m, &e->stmp[i]);
            gr->s_count[at] += m.n;
            sdb__mom_merge(&gr->s_mom[at], &m);
            gr->count += m.n;
            sdb__mom_merge(&gr->mom, &m);
            if (lo + i < e->i_min) e->i_min = lo + i;
            if (lo + i > e->i_max) e->i_max = lo + i;
        }
        return SDB_OK;
    }
    f = kernel_filter(e, g);
    e->kern->agg_f64(g->value, g->ts, g->n, &f, &a);
    mom_from_agg(&m, &a);
    if (want_m2 && a.n > 1) {
        /* Corrected two-pass (Chan, Golub, LeVeque): deviations about
         * this chunk's own mean, less the rounding left in s1. */
        f.shift = m.k + m.dm;
        e->kern->agg_f64(g->value, g->ts, g->n, &f, &a);
        m.k = f.shift;
        m.dm = a.s1 / (double)a.n;
        m.m2 = a.s2 - a.s1 * a.s1 / (double)a.n;
        if (m.m2 < 0) m.m2 = 0;
    }
    gr->count += m.n;
    sdb__mom_merge(&gr->mom, &m);
    return SDB_OK;
}

/* What stats cannot hold, by kernel: histogram bins, trace hashes, the
 * values for percentiles. */
static int kernel_extras(exec *e, const sdb__seg *g, group *gr)
{
    int rc;
    sdb_filter f = kernel_filter(e, g);
    if (e->fixed_hist)
        e->kern->hist_f64(g->value, g->ts, g->n, &f, e->h_lo, e->h_hi, e->h_width, e->q->bins,
                          gr->hist);
    if (e->want_traces) {
        uint64_t *out = sdb__traceset_room(&gr->traces, g->n);
        if (!out) return SDB_ENOMEM;
        gr->traces.n += e->kern->select_u64(g->trace, g->value, g->ts, g->n, &f, out);
    }
    if (e->need_vals) {
        for (uint32_t i = 0; i < g->n; i++) {
            int64_t ts = ld_i64(g->ts, i);
            double v = ld_f64(g->value, i);
            if (ts >= e->t_lo && ts <= e->t_hi && v >= e->v_lo && v <= e->v_hi)
                if ((rc = dvec_push(&gr->vals, v))) return rc;
        }
    }
    return SDB_OK;
}

/* Group-by one low-cardinality dimension with only time and value filters:
 * the group_u32 kernel fills direct-indexed accumulators, one per
 * dictionary id, and only the touched ones become groups. The kernel reads
 * u32 keys: a 4-byte column is read in place, a 1- or 2-byte one is first
 * widened into the exec's scratch array (a sequential pass that stays in
 * L1/L2), and a dimension absent from the whole segment is one group,
 * key 0, summed by agg_f64. */
static bool dim_kernel_ok(const exec *e, const sdb__seg_hdr *h)
{
    return !e->dim_active && !e->need_row && !e->q->source_mask && !e->need_vals &&
           !e->want_traces && !e->fixed_hist && !e->i_width &&
           !(e->q->stats & SDB_STAT_STDDEV) && h->n_type[SDB_CATEGORICAL] == 0 &&
           types_unrestricted(e, h);
}

static int dim_kernel_path(exec *e, const sdb__seg *g)
{
    const sdb__gb *gb = &e->q->group[0];
    sdb_filter f = {e->t_lo, e->t_hi, e->v_lo, e->v_hi, 0};
    for (uint32_t k = 0; k < e->gb_keys; k++) sdb__agg_empty(&e->gtmp[k]);
    if (g->h.dim_w[gb->dim] == 0) {
        /* Every row absent: one group, key 0, as agg_f64 sums it. */
        e->kern->agg_f64(g->value, g->ts, g->n, &f, &e->gtmp[0]);
    } else {
        const void *keys = sdb__seg_dim_col(g, gb->dim);
        if (g->h.dim_w[gb->dim] != 4) {
            if (g->n > e->keys_cap) {
                uint32_t *k = realloc(e->keys, sizeof *k * g->n);
                if (!k) return SDB_ENOMEM;
                e->keys = k;
                e->keys_cap = g->n;
            }
            keys = sdb__seg_dim_u32(g, gb->dim, e->keys);
        }
        e->kern->group_u32(keys, g->value, g->ts, g->n, &f, e->gb_keys, e->gtmp);
    }
    for (uint32_t k = 0; k < e->gb_keys; k++) {
        if (!e->gtmp[k].n) continue;
        group *gr = group_get(e, &k);
        if (!gr) return SDB_ENOMEM;
        sdb__mom m;
        mom_from_agg(&m, &e->gtmp[k]);
        gr->count += m.n;
        sdb__mom_merge(&gr->mom, &m);
    }
    return SDB_OK;
}

/* A purely categorical segment with only a time filter: count labels with
 * a direct-indexed array, no per-row group lookup. */
#define CAT_FAST_LABELS 256u
static bool cat_ok(const exec *e, const sdb__seg_hdr *h)
{
    return e->gb_simple && !e->dim_active && !e->need_row && !e->q->source_mask &&
           !e->q->has_value && h->n_type[SDB_CATEGORICAL] == h->n_rows && types_unrestricted(e, h);
}

static int cat_path(exec *e, const sdb__seg *g, group *gr, const uint8_t *segkey)
{
    int rc;
    if (!gr->cats) {
        gr->cats = calloc(e->n_labels + 1, sizeof *gr->cats);
        if (!gr->cats) return SDB_ENOMEM;
    }
    uint64_t n = 0;
    if (!e->want_traces && !e->i_width && g->h.ts_min >= e->t_lo && g->h.ts_max <= e->t_hi) {
        /* The whole chunk counts: its label counts are pre-aggregated. */
        sdb__val v;
        const uint8_t *p;
        int m;
        rc = sdb__get(e->t, SDB__DB_PREAGG, segkey, SDB__SEGKEY_LEN, &v);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        if (rc == SDB_OK && (m = sdb__preagg_labels(v.p, v.len, &p)) >= 0) {
            uint32_t pair[2];
            for (int i = 0; i < m; i++) {
                memcpy(pair, p + 8 * (size_t)i, 8);
                n += pair[1];
            }
            /* Taken only when it covers its chunk (else the rows count). */
            if (n == g->n) {
                for (int i = 0; i < m; i++) {
                    memcpy(pair, p + 8 * (size_t)i, 8);
                    if (pair[0] <= e->n_labels) gr->cats[pair[0]] += pair[1];
                }
                gr->count += n;
                gr->n_cat += n;
                return SDB_OK;
            }
            n = 0;
        }
    }
    if (!e->want_traces && !e->i_width && e->n_labels < CAT_FAST_LABELS) {
        /* The dashboard case (label counts, no series): a tight loop over
         * locals (the general loop reloads the exec's fields after every
         * store, which may alias them) into four sub-counters, so that
         * runs of one label do not wait on their own increments. Whole
         * segments inside the range skip the time test. Scores of a
         * categorical name are ~10% of the benchmark's rows, and counting
         * them was 64% of query g. */
        uint32_t sub[4][CAT_FAST_LABELS];
        uint32_t nl = e->n_labels + 1;
        for (int k = 0; k < 4; k++) memset(sub[k], 0, nl * sizeof sub[k][0]);
        const int64_t lo = e->t_lo, hi = e->t_hi;
        const bool inside = g->h.ts_min >= lo && g->h.ts_max <= hi;
        const uint8_t *vp = g->value, *tp = g->ts;
        uint32_t i = 0, m = g->n;
        if (inside) {
            for (; i + 4 <= m; i += 4)
                for (int k = 0; k < 4; k++) {
                    uint32_t id = (uint32_t)ld_f64(vp, i + (uint32_t)k);
                    sub[k][id < nl ? id : 0] += id < nl;
                }
            for (; i < m; i++) {
                uint32_t id = (uint32_t)ld_f64(vp, i);
                sub[0][id < nl ? id : 0] += id < nl;
            }
            n = m;
        } else {
            for (; i < m; i++) {
                int64_t ts = ld_i64(tp, i);
                bool in = ts >= lo && ts <= hi;
                uint32_t id = (uint32_t)ld_f64(vp, i);
                sub[i & 3][id < nl ? id : 0] += in && id < nl;
                n += in;
            }
        }
        for (uint32_t id = 0; id < nl; id++)
            gr->cats[id] += (uint64_t)sub[0][id] + sub[1][id] + sub[2][id] + sub[3][id];
        gr->count += n;
        gr->n_cat += n;
        return SDB_OK;
    }
    for (uint32_t i = 0; i < g->n; i++) {
        int64_t ts = ld_i64(g->ts, i);
        if (ts < e->t_lo || ts > e->t_hi) continue;
        uint32_t id = (uint32_t)ld_f64(g->value, i);
        if (id <= e->n_labels) gr->cats[id]++;
        n++;
        if (e->want_traces) {
            uint64_t h = ld_u64(g->trace, i);
            if (h && (rc = sdb__traceset_add(&gr->traces, h))) return rc;
        }
        if (e->i_width) {
            int64_t k = interval_of(e, ts);
            if ((rc = series_room(e, gr, k, k))) return rc;
            gr->s_count[k - gr->s_base]++;
            if (k < e->i_min) e->i_min = k;
            if (k > e->i_max) e->i_max = k;
        }
    }
    gr->count += n;
    gr->n_cat += n;
    return SDB_OK;
}

/* A chunk wholly inside the query, grouped by one dimension: merge its
 * pre-aggregates. Returns 1 when the chunk kept none for the dimension. */
static int preagg_path(exec *e, const sdb__seg *g, const uint8_t *key)
{
    sdb__val v;
    int rc = sdb__get(e->t, SDB__DB_PREAGG, key, SDB__SEGKEY_LEN, &v);
    if (rc == SDB_ENOTFOUND) return 1;
    if (rc) return rc;
    const uint8_t *p;
    int m = sdb__preagg_find(v.p, v.len, e->q->group[0].dim, &p);
    if (m < 0) return 1;
    /* A chunk with dead rows (sdb__live_seg) has fewer rows than its
     * pre-aggregates count: its rows are scanned instead. */
    uint64_t total = 0;
    for (int i = 0; i < m; i++) {
        uint32_t cnt;
        memcpy(&cnt, p + (size_t)i * sizeof(sdb__preagg) + offsetof(sdb__preagg, n), 4);
        total += cnt;
    }
    if (total != g->n) return 1;
    for (int i = 0; i < m; i++) {
        sdb__preagg pa;
        memcpy(&pa, p + (size_t)i * sizeof pa, sizeof pa);
        group *gr = group_get(e, &pa.id);
        if (!gr) return SDB_ENOMEM;
        sdb__mom mm = {.n = pa.n, .sum = pa.sum, .k = pa.k, .dm = pa.dm, .m2 = pa.m2,
                       .min = pa.min, .max = pa.max};
        gr->count += pa.n;
        sdb__mom_merge(&gr->mom, &mm);
    }
    return SDB_OK;
}

static int scan_segment(exec *e, const sdb__seg *g, const uint8_t *segkey)
{
    const sdb__seg_hdr *h = &g->h;
    uint32_t name = sdb__rd32(segkey + 4);
    if (h->ts_max < e->t_lo || h->ts_min > e->t_hi || g->n == 0) return SDB_OK;
    uint64_t n_num = (uint64_t)h->n_type[SDB_NUMERIC] + h->n_type[SDB_BOOLEAN];
    if (e->q->has_value && (n_num == 0 || h->v_max < e->v_lo || h->v_min > e->v_hi))
        return SDB_OK;
    if (e->q->type_mask) {
        bool any = false;
        for (int t = 0; t < SDB_N_TYPES; t++)
            if (h->n_type[t] && (e->q->type_mask & (1u << t))) any = true;
        if (!any) return SDB_OK;
    }
    if (e->gb_dim && h->ts_min >= e->t_lo && h->ts_max <= e->t_hi &&
        (!e->q->has_value || (h->v_min >= e->v_lo && h->v_max <= e->v_hi)) &&
        !e->dim_active && !e->need_row && !e->q->source_mask && !e->need_vals &&
        !e->want_traces && !e->fixed_hist && !e->i_width && h->n_type[SDB_CATEGORICAL] == 0 &&
        types_unrestricted(e, h)) {
        int rc = preagg_path(e, g, segkey);
        if (rc != 1) return rc;
    }
    if (e->gb_keys && dim_kernel_ok(e, h)) return dim_kernel_path(e, g);
    bool cat = cat_ok(e, h);
    if (!cat && !kernel_ok(e, h)) return row_path(e, g, name);

    uint32_t key[SDB_MAX_GROUP_BY] = {0};
    for (uint32_t k = 0; k < e->q->n_group; k++) key[k] = name; /* only NAME is simple */
    group *gr = group_get(e, key);
    if (!gr) return SDB_ENOMEM;
    if (cat) return cat_path(e, g, gr, segkey);
    bool inside = h->ts_min >= e->t_lo && h->ts_max <= e->t_hi &&
                  (!e->q->has_value || (h->v_min >= e->v_lo && h->v_max <= e->v_hi));
    bool one_interval = !e->i_width || interval_of(e, h->ts_min) == interval_of(e, h->ts_max);
    int rc;
    bool extras = e->fixed_hist || e->want_traces || e->need_vals;
    if (inside && one_interval) {
        /* Every row passes: the header holds the stats, and only what it
         * cannot hold is scanned (a histogram then reads the values alone). */
        if ((rc = header_path(e, g, gr)) || !extras) return rc;
        return kernel_extras(e, g, gr);
    }
    if (e->i_width) {
        /* The series may send the segment to the row path: ask it first. */
        if ((rc = kernel_stats(e, g, gr)) == 1) return row_path(e, g, name);
        return rc || !extras ? rc : kernel_extras(e, g, gr);
    }
    /* The extras first: select_u64 pulls the values from memory together
     * with the hashes (two streams in flight rather than one after the
     * other), and agg_f64 then finds the values in L2. Query f: 4.0 ms
     * with agg first, 3.0 ms so. */
    if (extras && (rc = kernel_extras(e, g, gr))) return rc;
    return kernel_stats(e, g, gr);
}

/* Scan the segments of one name (or of every name when name == 0). */
static int scan(exec *e, uint32_t name)
{
    sdb_store *s = sdb__txn_store(e->t);
    int64_t b_lo = e->t_lo == INT64_MIN ? INT64_MIN : sdb__floor_div(e->t_lo, s->bucket_ms) * s->bucket_ms;
    int64_t b_hi = e->t_hi == INT64_MAX ? INT64_MAX : sdb__floor_div(e->t_hi, s->bucket_ms) * s->bucket_ms;
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, e->project, name, b_lo, 0);
    sdb__cur *c;
    sdb__live lv;
    int rc = sdb__live_open(e->t, &lv);
    if (rc == SDB_OK) rc = sdb__cur_open(e->t, SDB__DB_SEGMENTS, &c);
    if (rc) {
        sdb__live_close(&lv);
        return rc;
    }
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
        if ((rc = sdb__live_seg(&lv, kp, &g)) < 0) break; /* only live rows count */
        if ((rc = scan_segment(e, &g, kp))) break;
    }
    sdb__cur_close(c);
    sdb__live_close(&lv);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}

/* ------------------------------------------------------------- finishing */

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Hoare-style quickselect: v[k] becomes the k-th smallest of v[lo..hi],
 * everything left of it <= and right of it >=. */
static void select_kth(double *v, size_t lo, size_t hi, size_t k)
{
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap_d(&v[mid], &v[lo]);
        if (v[hi] < v[lo]) swap_d(&v[hi], &v[lo]);
        if (v[hi] < v[mid]) swap_d(&v[hi], &v[mid]);
        double p = v[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                swap_d(&v[i], &v[j]);
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Exact percentiles with linear interpolation between closest ranks
 * (SQL quantile_cont): position p/100 * (n - 1). */
static int percentiles(const sdb__query *q, dvec *d, double *out)
{
    size_t n = d->n;
    if (n == 0) return 0;
    if (q->n_pct > 8) {
        qsort(d->v, n, sizeof *d->v, cmp_double);
    }
    for (uint32_t i = 0; i < q->n_pct; i++) {
        double pos = q->pct[i] / 100.0 * (double)(n - 1);
        size_t lo = (size_t)floor(pos);
        if (lo >= n) lo = n - 1;
        double frac = pos - (double)lo;
        double a, b;
        if (q->n_pct > 8) {
            a = d->v[lo];
            b = lo + 1 < n ? d->v[lo + 1] : a;
        } else {
            select_kth(d->v, 0, n - 1, lo);
            a = d->v[lo];
            b = a;
            if (lo + 1 < n) {
                b = d->v[lo + 1];
                for (size_t j = lo + 2; j < n; j++)
                    if (d->v[j] < b) b = d->v[j];
            }
        }
        out[i] = frac == 0 ? a : a + (b - a) * frac;
    }
    return 1;
}

static sdb__str key_str(exec *e, const sdb__gb *gb, uint32_t id)
{
    sdb__str s = {NULL, 0};
    sdb__val v;
    switch (gb->kind) {
    case SDB_GB_SOURCE:
        if (id >= 1 && id <= SDB_N_SOURCES) s = (sdb__str){sdb__source_names[id - 1], (uint32_t)strlen(sdb__source_names[id - 1])};
        return s;
    case SDB_GB_TYPE:
        if (id >= 1 && id <= SDB_N_TYPES) s = (sdb__str){sdb__type_names[id - 1], (uint32_t)strlen(sdb__type_names[id - 1])};
        return s;
    case SDB_GB_NAME:
        if (id && sdb__dict_str(e->t, e->project, SDB_DICT_NAME, id, &v) == SDB_OK) s = (sdb__str){v.p, (uint32_t)v.len};
        return s;
    case SDB_GB_DIM:
        if (id && sdb__dict_str(e->t, e->project, gb->dim, id, &v) == SDB_OK) s = (sdb__str){v.p, (uint32_t)v.len};
        return s;
    case SDB_GB_PROP:
        if (id && sdb__dict_str(e->t, e->project, SDB_DICT_PROP, id, &v) == SDB_OK) s = (sdb__str){v.p, (uint32_t)v.len};
        return s;
    }
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

static void hist_of(exec *e, group *g, sdb__out_group *o)
{
    const sdb__query *q = e->q;
    uint32_t bins = q->bins;
    double lo, hi, width;
    if (e->fixed_hist) {
        lo = e->h_lo;
        hi = e->h_hi;
        width = e->h_width;
    } else {
        lo = q->hist_has_min ? q->hist_min : o->mom.min;
        hi = q->hist_has_max ? q->hist_max : o->mom.max;
        if (!(hi >= lo)) hi = lo;
        width = (hi - lo) / bins;
        g->hist = calloc(bins + 2, sizeof *g->hist);
        if (!g->hist) return;
        sdb_filter all = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0};
        for (size_t i = 0; i < g->vals.n; i++) {
            int64_t t = 0;
            e->kern->hist_f64(&g->vals.v[i], &t, 1, &all, lo, hi, width, bins, g->hist);
        }
    }
    o->edges = malloc((bins + 1) * sizeof *o->edges);
    if (!o->edges) return;
    for (uint32_t i = 0; i < bins; i++) o->edges[i] = lo + width * i;
    o->edges[bins] = hi;
    o->hist = g->hist;
    o->under = g->hist[bins];
    o->over = g->hist[bins + 1];
    g->hist = NULL;
}

static int finish(exec *e, sdb__answer *a)
{
    const sdb__query *q = e->q;
    int rc;
    a->groups = calloc(e->n_groups ? e->n_groups : 1, sizeof *a->groups);
    if (!a->groups) return SDB_ENOMEM;
    a->n_groups = e->n_groups;
    int64_t first = 0, last = -1;
    bool any = false;
    for (uint32_t gi = 0; gi < e->n_groups; gi++) any |= e->groups[gi].count > 0;
    if (e->i_width && any) {
        first = q->has_from ? interval_of(e, q->from) : e->i_min;
        last = q->has_to ? interval_of(e, q->to - 1) : e->i_max;
        if (last - first + 1 > MAX_INTERVALS) {
            sdb__errf(e->err, e->errlen,
                      "field \"interval\": the answer would have more than %d intervals; use "
                      "a wider interval or a shorter time range",
                      MAX_INTERVALS);
            return SDB_ELIMIT;
        }
    }
    a->n_groups = 0;
    for (uint32_t gi = 0; gi < e->n_groups; gi++) {
        group *g = &e->groups[gi];
        /* The kernel path opens a group before it knows a row matched. */
        if (g->count == 0) continue;
        sdb__out_group *o = &a->groups[a->n_groups++];
        for (uint32_t k = 0; k < q->n_group; k++) o->key[k] = key_str(e, &q->group[k], g->key[k]);
        o->count = g->count;
        o->n_cat = g->n_cat;
        o->mom = g->mom;
        if (e->want_traces && (rc = sdb__traceset_count(&g->traces, &o->traces))) return rc;
        bool numeric = o->mom.n > 0 || o->n_cat == 0;
        if (q->has_hist && numeric) hist_of(e, g, o);
        if (q->n_pct && o->mom.n) {
            o->pct = malloc(q->n_pct * sizeof *o->pct);
            if (!o->pct) return SDB_ENOMEM;
            percentiles(q, &g->vals, o->pct);
        }
        if (g->cats) {
            o->cats = malloc(sizeof *o->cats * (e->n_labels + 1));
            if (!o->cats) return SDB_ENOMEM;
            for (uint32_t id = 1; id <= e->n_labels; id++) {
                if (!g->cats[id]) continue;
                sdb__val v;
                sdb__str s = {"", 0};
                if (sdb__dict_str(e->t, e->project, SDB_DICT_CATEGORY, id, &v) == SDB_OK)
                    s = (sdb__str){v.p, (uint32_t)v.len};
                o->cats[o->n_cats++] = (sdb__cat){s, g->cats[id]};
            }
            qsort(o->cats, o->n_cats, sizeof *o->cats, cmp_cat);
        }
        if (e->i_width) {
            uint32_t n = (uint32_t)(last - first + 1);
            o->series = calloc(n ? n : 1, sizeof *o->series);
            if (!o->series) return SDB_ENOMEM;
            o->n_series = n;
            for (uint32_t i = 0; i < n; i++) {
                int64_t idx = first + i;
                sdb__point *p = &o->series[i];
                p->t = idx * e->i_width + e->i_origin;
                sdb__mom_init(&p->mom);
                if (g->s_n && idx >= g->s_base && idx < g->s_base + g->s_n) {
                    uint32_t at = (uint32_t)(idx - g->s_base);
                    p->count = g->s_count[at];
                    p->mom = g->s_mom[at];
                }
            }
        }
    }
    uint32_t ng = q->n_group;
    qsort_r(a->groups, a->n_groups, sizeof *a->groups, cmp_out, &ng);
    return SDB_OK;
}

static void answer_free(sdb__answer *a)
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
}

static void exec_free(exec *e)
{
    for (uint32_t i = 0; i < e->n_groups; i++) {
        group *g = &e->groups[i];
        free(g->cats);
        free(g->vals.v);
        free(g->hist);
        sdb__traceset_free(&g->traces);
        free(g->s_mom);
        free(g->s_count);
    }
    free(e->groups);
    free(e->table);
    free(e->stmp);
    free(e->gtmp);
    free(e->keys);
    for (int d = 0; d < SDB_N_DIMS; d++) free(e->dim_ids[d]);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Resolve filter strings to ids. Returns 1 when the query cannot match. */
static int resolve(exec *e, uint32_t **names, uint32_t *n_names)
{
    const sdb__query *q = e->q;
    for (int d = 0; d < SDB_N_DIMS; d++) {
        if (!q->has_dim[d]) continue;
        e->dim_active = true;
        e->dim_ids[d] = malloc((q->dim[d].n + 1) * sizeof(uint32_t));
        if (!e->dim_ids[d]) return SDB_ENOMEM;
        uint32_t m = 0;
        for (uint32_t i = 0; i < q->dim[d].n; i++) {
            uint32_t id;
            if (sdb__dict_id(e->t, e->project, d, q->dim[d].v[i].p, q->dim[d].v[i].len, 0,
                             &id) == SDB_OK)
                e->dim_ids[d][m++] = id;
        }
        if (m == 0) return 1;
        qsort(e->dim_ids[d], m, sizeof(uint32_t), cmp_u32);
        e->n_dim_ids[d] = m;
    }
    if (q->has_names) {
        *names = malloc((q->names.n + 1) * sizeof(uint32_t));
        if (!*names) return SDB_ENOMEM;
        uint32_t m = 0;
        for (uint32_t i = 0; i < q->names.n; i++) {
            uint32_t id;
            if (sdb__dict_id(e->t, e->project, SDB_DICT_NAME, q->names.v[i].p,
                             q->names.v[i].len, 0, &id) == SDB_OK)
                (*names)[m++] = id;
        }
        qsort(*names, m, sizeof(uint32_t), cmp_u32);
        uint32_t u = 0;
        for (uint32_t i = 0; i < m; i++)
            if (u == 0 || (*names)[u - 1] != (*names)[i]) (*names)[u++] = (*names)[i];
        *n_names = u;
        if (u == 0) return 1;
    }
    return SDB_OK;
}

int sdb_query_json(sdb_store *s, uint32_t project, const char *text, size_t len,
                   char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    sdb__query q;
    int rc = sdb__query_parse(text, len, &q, err, errlen);
    if (rc) return rc;
    exec e;
    memset(&e, 0, sizeof e);
    e.q = &q;
    e.project = project;
    e.kern = sdb__kernels();
    e.err = err;
    e.errlen = errlen;
    e.t_lo = q.has_from ? q.from : INT64_MIN;
    e.t_hi = q.has_to ? q.to - 1 : INT64_MAX;
    e.v_lo = q.has_value ? q.v_lo : -INFINITY;
    e.v_hi = q.has_value ? q.v_hi : INFINITY;
    e.need_row = q.tags.n || q.n_props;
    e.want_traces = q.stats & SDB_STAT_TRACES;
    e.fixed_hist = q.has_hist && q.hist_has_min && q.hist_has_max;
    e.need_vals = q.n_pct || (q.has_hist && !e.fixed_hist);
    e.gb_simple = true;
    for (uint32_t k = 0; k < q.n_group; k++) {
        if (q.group[k].kind != SDB_GB_NAME) e.gb_simple = false;
        if (q.group[k].kind == SDB_GB_PROP) e.need_row = true;
    }
    if (e.fixed_hist) {
        e.h_lo = q.hist_min;
        e.h_hi = q.hist_max;
        e.h_width = (q.hist_max - q.hist_min) / q.bins;
    }
    e.i_width = q.interval_ms;
    e.i_origin = q.interval_origin;
    e.i_min = INT64_MAX;
    e.i_max = INT64_MIN;
    if (e.i_width && q.has_from && q.has_to && q.to > q.from &&
        interval_of(&e, q.to - 1) - interval_of(&e, q.from) + 1 > MAX_INTERVALS) {
        sdb__errf(err, errlen,
                  "field \"interval\": the answer would have more than %d intervals; use a "
                  "wider interval or a shorter time range",
                  MAX_INTERVALS);
        sdb__query_free(&q);
        return SDB_EINVAL;
    }
    if (e.i_width) {
        e.stmp = malloc(SERIES_TMP_MAX * sizeof *e.stmp);
        if (!e.stmp) {
            sdb__query_free(&q);
            return SDB_ENOMEM;
        }
    }

    sdb__answer a;
    memset(&a, 0, sizeof a);
    uint32_t *names = NULL, n_names = 0;
    if ((rc = sdb__txn_begin(s, 0, &e.t))) goto done;
    uint64_t wm = 0;
    a.as_of = sdb__meta_get_u64(e.t, "watermark", &wm) == SDB_OK ? sdb__key_ts(wm) : INT64_MIN;
    if ((rc = sdb__pending_of(e.t, project, &a.pending))) goto done;
    e.n_labels = sdb__dict_max(e.t, project, SDB_DICT_CATEGORY);
    if (q.n_group == 1 && q.group[0].kind == SDB_GB_DIM) {
        e.gb_dim = true;
        uint32_t n = sdb__dict_max(e.t, project, q.group[0].dim) + 1;
        if (n <= 4096 && (e.gtmp = malloc(n * sizeof *e.gtmp))) e.gb_keys = n;
    }
    rc = resolve(&e, &names, &n_names);
    if (rc == 1) {
        rc = SDB_OK; /* nothing can match: no groups */
    } else if (rc == SDB_OK && !(q.has_from && q.has_to && q.to <= q.from)) {
        if (q.has_names) {
            for (uint32_t i = 0; rc == SDB_OK && i < n_names; i++) rc = scan(&e, names[i]);
        } else {
            rc = scan(&e, 0);
        }
    }
    if (rc == SDB_OK) rc = finish(&e, &a);
    if (rc == SDB_OK) rc = sdb__answer_render(&q, &a, out_json);
done:
    if (rc == SDB_ELIMIT) rc = SDB_EINVAL;
    sdb__txn_abort(e.t);
    answer_free(&a);
    exec_free(&e);
    free(names);
    sdb__query_free(&q);
    return rc;
}
