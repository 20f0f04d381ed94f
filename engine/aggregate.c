/* The aggregate stage: the group table of a query and its accumulators.
 *
 * Group keys are tuples of small local indexes: each group-by column maps
 * its raw ids through a per-query table (sdb__keycol) to the order in
 * which they first appeared, and the tuple's bits are packed into a dense
 * code that indexes a direct table while the codes fit in DENSE_MAX_BITS
 * bits (the dashboard case: models x prompt versions, sources, names);
 * beyond that an open-addressing table on the tuple takes over. With one
 * group-by column the local index is the group itself, so finding the
 * groups of a batch is one load per row. With two or more columns whose
 * dictionaries multiply to at most SDB__GTAB_DIRECT_MAX raw codes, exec
 * sums each row's raw code from the columns and sdb__gtab_groups_code
 * turns it into the group with one load (a table in front of the maps,
 * filled from them on a code's first sight). Exec calls these once per
 * batch, never once per row.
 *
 * Accumulators are per slot (group x series interval) sdb_slot moments,
 * per group histograms, label counts, trace hashes and values; all of
 * them merge (sdb__gtab_merge: the parts of a threaded run, and later
 * compare, regressions, trends), so groups, slots or whole tables combine
 * without rescanning. Distinct trace counting and exact percentiles by
 * selection live here too.
 *
 * Invariant: g->n groups each own g->n_int slots, g->bins + 2 histogram
 * counts (once allocated) and, when asked for, one trace set and one
 * value list; g->mem counts the bytes so that exec can enforce the
 * memory cap between batches.
 */
#include "query.h"

#include <math.h>

#define DENSE_MAX_BITS 20
#define KEY_FIRST_BITS 2

/* ------------------------------------------------------- distinct traces */

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
 * partitions of about sdb__distinct_part_rows (more partitions cost a TLB miss
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
 * equal (API.md: the xxh3 hash of a trace_id is its identity).
 *
 * A set is compacted to its distinct members mid-scan only past 2^22
 * appends (sdb__traceset_slack), then past 2 x distinct + 2^22: with 2^20,
 * a 1.33M-row set (source.none.traces at 10M) was counted over 1M hashes
 * and then again over the 1.33M, 40% of its distinct-count time. The
 * bound: a set holds at most 2 x distinct + 2^22 hashes (32 MiB past its
 * distinct ones), and all sets together at most 8 bytes a selected row,
 * counted in the table's memory against query_max_mem_bytes.
 * A set of sdb__par_min_rows hashes or more is counted at the end with
 * its histogram, scatter and dedupe spread over the pool's idle helpers
 * (sdb__distinct_u64_par, below). */
size_t sdb__distinct_part_rows = SDB__DISTINCT_PART_ROWS;
size_t sdb__traceset_slack = SDB__TRACESET_SLACK;
#define DISTINCT_MAX_PART_BITS 10
#define DISTINCT_SLOTS_PER_ROW 8
#define DISTINCT_START_BITS_MAX 16 /* first table of a partition: at most 2^16 slots */

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

/* The parallel shape of the count: the input is cut into chunks (one when
 * serial), each chunk histograms its partitions and then scatters into
 * the partition's run at its own offsets (so chunks never write the same
 * place), and runs of partitions are deduped in place, each with its own
 * table. Partitions of equal top bits hold every copy of a hash, so they
 * are deduped independently: which thread ran which does not change the
 * count, and the distinct values are gathered back in partition order. */
#define DISTINCT_CHUNKS 4      /* chunks of the input when parallel */
#define DISTINCT_PART_RUNS 16  /* runs of partitions when parallel */

typedef struct dpar {
    const uint64_t *v;
    uint64_t *tmp;
    size_t n, np;
    unsigned pbits, chunks, runs;
    size_t *cnt;   /* chunks x np: counts, then each chunk's write offsets */
    size_t *start; /* np + 1: partition p is tmp[start[p], start[p+1]) */
    size_t *kp;    /* np: distinct values at the start of partition p */
    int *rc;       /* runs */
    uint64_t *out; /* one run: the distinct values go straight here */
} dpar;

static void dpar_count(void *arg, uint32_t c)
{
    dpar *j = arg;
    size_t lo = j->n * c / j->chunks, hi = j->n * (c + 1) / j->chunks;
    size_t *cnt = j->cnt + (size_t)c * j->np;
    unsigned sh = 64 - j->pbits;
    for (size_t i = lo; i < hi; i++) cnt[dmix(j->v[i]) >> sh]++;
}

static void dpar_scatter(void *arg, uint32_t c)
{
    dpar *j = arg;
    size_t lo = j->n * c / j->chunks, hi = j->n * (c + 1) / j->chunks;
    size_t *at = j->cnt + (size_t)c * j->np;
    unsigned sh = 64 - j->pbits;
    uint64_t *tmp = j->tmp;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = j->v[i];
        tmp[at[dmix(x) >> sh]++] = x;
    }
}

static void dpar_dedupe(void *arg, uint32_t r)
{
    dpar *j = arg;
    size_t plo = j->np * r / j->runs, phi = j->np * (r + 1) / j->runs;
    dtab d = {NULL, NULL, 0};
    int rc = SDB_OK;
    for (size_t p = plo; rc == SDB_OK && p < phi; p++) {
        uint64_t *part = j->tmp + j->start[p];
        size_t m = j->start[p + 1] - j->start[p];
        j->kp[p] = 0;
        if (m) rc = dedupe_part(&d, part, m, j->pbits, j->out ? j->out : part, &j->kp[p]);
        if (j->out) j->out += j->kp[p];
    }
    free(d.t);
    free(d.used);
    j->rc[r] = rc;
}

int sdb__distinct_u64_par(uint64_t *v, size_t n, size_t *out_n, bool parallel)
{
    *out_n = 0;
    if (n == 0) return SDB_OK;
    unsigned pbits = 0;
    while (pbits < DISTINCT_MAX_PART_BITS && (n >> pbits) > sdb__distinct_part_rows) pbits++;
    if (!pbits) {
        /* One partition: dedupe in place (a doubling that fails leaves
         * v's prefix rewritten with distinct values of its own: the same
         * set). */
        dtab d = {NULL, NULL, 0};
        size_t k = 0;
        int rc = dedupe_part(&d, v, n, 0, v, &k);
        free(d.t);
        free(d.used);
        if (rc == SDB_OK) *out_n = k;
        return rc;
    }
    /* Chunks and runs cost a copy back and a table per run: only when a
     * helper may run some of them. */
    if (parallel && !sdb__par_may_help()) parallel = false;
    dpar j = {.v = v, .n = n, .np = (size_t)1 << pbits, .pbits = pbits};
    j.chunks = parallel ? DISTINCT_CHUNKS : 1;
    j.runs = parallel ? DISTINCT_PART_RUNS : 1;
    int rc = SDB_ENOMEM;
    j.tmp = malloc(n * sizeof *j.tmp);
    j.cnt = calloc((size_t)j.chunks * j.np, sizeof *j.cnt);
    j.start = malloc((j.np + 1) * sizeof *j.start);
    j.kp = malloc(j.np * sizeof *j.kp);
    j.rc = calloc(j.runs, sizeof *j.rc);
    if (!j.tmp || !j.cnt || !j.start || !j.kp || !j.rc) goto done;
    sdb__par_for(j.chunks, dpar_count, &j, parallel);
    /* Partition p starts after every smaller partition; within it, chunk
     * c writes after the chunks before it. */
    size_t at = 0;
    for (size_t p = 0; p < j.np; p++) {
        j.start[p] = at;
        for (unsigned c = 0; c < j.chunks; c++) {
            size_t *x = &j.cnt[(size_t)c * j.np + p], m = *x;
            *x = at;
            at += m;
        }
    }
    j.start[j.np] = at;
    sdb__par_for(j.chunks, dpar_scatter, &j, parallel);
    /* One run writes its distinct values to v as it goes (v is read no
     * more); several dedupe in place and are gathered after. */
    j.out = j.runs == 1 ? v : NULL;
    sdb__par_for(j.runs, dpar_dedupe, &j, parallel);
    rc = SDB_OK;
    for (unsigned r = 0; r < j.runs; r++)
        if (j.rc[r]) rc = j.rc[r];
    if (rc) goto done;
    size_t k = 0;
    for (size_t p = 0; p < j.np; p++) {
        if (j.runs > 1) memcpy(v + k, j.tmp + j.start[p], j.kp[p] * sizeof *v);
        k += j.kp[p];
    }
    *out_n = k;
done:
    free(j.tmp);
    free(j.cnt);
    free(j.start);
    free(j.kp);
    free(j.rc);
    return rc;
}

int sdb__distinct_u64(uint64_t *v, size_t n, size_t *out_n)
{
    return sdb__distinct_u64_par(v, n, out_n, false);
}

/* Trace numbers as a bitmap. The trace column holds the store's dense
 * trace numbers (engine/tracenum.c: 1..n_traces), so a set of many of
 * them is a bitmap of n_traces bits (375 KiB at 3M traces) that each
 * value sets one bit of, and its count is a popcount: no sort, no hash
 * table, no pass at the end over every appended value. A set starts as
 * the list above (a few values, or values that are not dense) and turns
 * dense at a compaction (the first at sdb__traceset_dense_at appends)
 * when the bitmap that covers its largest value takes no more words than
 * the list holds values; the list then serves as a buffer of at most
 * DENSE_BUF values (the scan's appends stay sequential stores into L1/L2),
 * drained into the bitmap when full. Memory is therefore never more than
 * the list would take: the bitmap grows to cover a value only within the
 * values drained so far plus DENSE_SLACK_WORDS; a value past that (no
 * segment this build writes gives one: numbers are below the store's
 * count) stays in the buffer, outside the bitmap's range, and is counted
 * there, so the count stays exact whatever the values.
 * Parts (threads, partial tables) merge by OR (sdb__traceset_or). */
size_t sdb__traceset_dense_at = SDB__TRACESET_DENSE_AT;
#define DENSE_BUF ((size_t)1 << 14)
#define DENSE_SLACK_WORDS ((size_t)1 << 17) /* 1 MiB: 8M trace numbers */

static int bits_grow(sdb__traceset *s, size_t words)
{
    if (words <= s->words) return SDB_OK;
    uint64_t *b = realloc(s->bits, words * sizeof *b);
    if (!b) return SDB_ENOMEM;
    memset(b + s->words, 0, (words - s->words) * sizeof *b);
    s->bits = b;
    s->words = words;
    return SDB_OK;
}

/* Set the values of v[0..n) below lim (64 x the bitmap's words) in the
 * bitmap; the others move to the front of v: returns how many. */
static size_t bits_set(uint64_t *bits, uint64_t lim, uint64_t *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        if (x < lim) bits[x >> 6] |= 1ull << (x & 63);
        else v[k++] = x;
    }
    return k;
}

/* Set the buffer's values in the bitmap, growing it to cover them within
 * its bound; what lies past the bound stays in the buffer (distinct: it
 * is deduped when it fills half the buffer). One pass when every value
 * is inside the bitmap already (a second pass over a whole buffer was
 * half of type.none.traces.frequent's time at 10M, perf). */
static int traceset_drain(sdb__traceset *s)
{
    size_t k = bits_set(s->bits, (uint64_t)s->words * 64, s->v, s->n);
    s->seen += s->n - k;
    if (k) {
        /* Values past the bitmap: grow it to the largest of them that
         * the bound allows, then set those. */
        size_t bound = s->seen + k + DENSE_SLACK_WORDS;
        uint64_t mx = 0, top = (uint64_t)bound * 64;
        for (size_t i = 0; i < k; i++) mx = s->v[i] > mx && s->v[i] < top ? s->v[i] : mx;
        size_t want = (size_t)(mx / 64) + 1;
        if (want > s->words) {
            size_t w = want + want / 8; /* headroom: numbers grow as later segments come */
            int rc = bits_grow(s, w < bound ? w : bound);
            if (rc) return rc;
        }
        size_t kept = bits_set(s->bits, (uint64_t)s->words * 64, s->v, k);
        s->seen += k - kept;
        k = kept;
    }
    s->n = k;
    if (k > DENSE_BUF / 2) {
        int rc = sdb__distinct_u64(s->v, k, &s->n);
        if (rc) return rc;
    }
    s->limit = s->n + DENSE_BUF;
    return SDB_OK;
}

/* Turn a list into a bitmap when one covering its largest value takes no
 * more words than it holds values; true when it did. *out_words: the
 * words such a bitmap takes. */
static int traceset_densify(sdb__traceset *s, bool *out, uint64_t *out_words)
{
    *out = false;
    uint64_t mx = 0;
    for (size_t i = 0; i < s->n; i++) mx = s->v[i] > mx ? s->v[i] : mx;
    *out_words = mx / 64 + 1;
    if (mx / 64 + 1 > s->n) return SDB_OK;
    int rc = bits_grow(s, (size_t)(mx / 64) + 1);
    if (rc) return rc;
    *out = true;
    return traceset_drain(s);
}

/* Keep only the distinct hashes; the next compaction waits until as many
 * again, plus the slack, have been appended, so each appended hash is
 * compacted O(1) times and memory stays O(distinct + slack). A set of
 * trace numbers turns into a bitmap here instead. */
static int traceset_compact(sdb__traceset *s, bool parallel)
{
    if (s->bits) return traceset_drain(s);
    /* A set below the first compaction's size stays a list: the scan for
     * its largest value would cost a pass and rarely turn it (the
     * final count of a small group). */
    bool dense = false;
    uint64_t words = 0;
    int rc = s->n >= sdb__traceset_dense_at ? traceset_densify(s, &dense, &words) : SDB_OK;
    if (rc || dense) return rc;
    size_t k;
    rc = sdb__distinct_u64_par(s->v, s->n, &k, parallel);
    if (rc) return rc;
    s->n = k;
    s->limit = 2 * k + (s->slack ? s->slack : sdb__traceset_slack);
    /* Numbers too many for the list's size yet: compact again once the
     * list could turn into their bitmap (a few compactions at most: each
     * limit is at least twice the distinct values kept). */
    uint64_t again = words + 1 > 2 * k + sdb__traceset_dense_at ? words + 1 : 2 * k + sdb__traceset_dense_at;
    if (again < s->limit) s->limit = (size_t)again;
    return SDB_OK;
}

uint64_t *sdb__traceset_room(sdb__traceset *s, size_t k)
{
    if (!s->limit) {
        size_t slack = s->slack ? s->slack : sdb__traceset_slack;
        s->limit = slack < sdb__traceset_dense_at ? slack : sdb__traceset_dense_at;
    }
    if (s->n > 0 && s->n + k > s->limit && traceset_compact(s, false)) return NULL;
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

int sdb__traceset_or(sdb__traceset *a, const sdb__traceset *b)
{
    if (!b->bits) return SDB_OK;
    if (!a->bits) a->limit = a->n + DENSE_BUF; /* a's list is drained as a buffer */
    int rc = bits_grow(a, b->words);
    if (rc) return rc;
    for (size_t i = 0; i < b->words; i++) a->bits[i] |= b->bits[i];
    a->seen += b->seen;
    return SDB_OK;
}

int sdb__traceset_count(sdb__traceset *s, uint64_t *out, bool parallel)
{
    *out = 0;
    int rc = traceset_compact(s, parallel);
    if (rc) return rc;
    if (!s->bits) {
        *out = s->n;
        return SDB_OK;
    }
    /* The buffer holds only values past the bitmap, distinct once deduped. */
    size_t k = 0;
    if (s->n && (rc = sdb__distinct_u64(s->v, s->n, &k))) return rc;
    s->n = k;
    uint64_t c = 0;
    for (size_t i = 0; i < s->words; i++) c += (uint64_t)__builtin_popcountll(s->bits[i]);
    *out = c - (s->bits[0] & 1) + k; /* 0 is "no trace" */
    return SDB_OK;
}

void sdb__traceset_free(sdb__traceset *s)
{
    free(s->v);
    free(s->bits);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------- the slots */

void sdb__slot_init(sdb_slot *s)
{
    memset(s, 0, sizeof *s);
    s->min = INFINITY;
    s->max = -INFINITY;
}

/* A pre-aggregate's moments about its own k re-expressed about the
 * slot's shift K: s1 = n (mean - K), s2 = M2 + n (mean - K)^2, with
 * mean - K taken as (k - K) + dm so that the data values subtract first
 * (sdb__mom says why). An empty slot takes the pre-aggregate's k as K, so
 * the first header of a group is copied exactly. */
void sdb__slot_add_mom(sdb_slot *s, uint64_t count, const sdb__mom *m)
{
    s->count += count;
    if (m->n == 0) return;
    if (s->n == 0) s->k = m->k;
    double n = (double)m->n, d = (m->k - s->k) + m->dm;
    s->n += m->n;
    s->sum += m->sum;
    s->s1 += n * d;
    s->s2 += m->m2 + n * d * d;
    if (m->min < s->min) s->min = m->min;
    if (m->max > s->max) s->max = m->max;
}

void sdb__slot_add_agg(sdb_slot *s, const sdb_agg *a, double shift)
{
    s->count += a->n;
    if (a->n == 0) return;
    if (s->n == 0) s->k = shift;
    double n = (double)a->n, s1 = a->s1, s2 = a->s2;
    if (shift != s->k) {
        /* About K instead of K': v - K = (v - K') + (K' - K). */
        double e = shift - s->k;
        s2 += 2 * e * s1 + n * e * e;
        s1 += n * e;
    }
    s->n += a->n;
    s->sum += a->sum;
    s->s1 += s1;
    s->s2 += s2;
    if (a->min < s->min) s->min = a->min;
    if (a->max > s->max) s->max = a->max;
}

void sdb__slot_mom(const sdb_slot *s, sdb__mom *m)
{
    sdb__mom_init(m);
    if (s->n == 0) return;
    double n = (double)s->n;
    m->n = s->n;
    m->sum = s->sum;
    m->k = s->k;
    m->dm = s->s1 / n;
    /* Corrected two-pass form (Chan, Golub, LeVeque): the rounding left in
     * s1 is taken out of s2. */
    m->m2 = s->s2 - s->s1 * s->s1 / n;
    if (m->m2 < 0) m->m2 = 0;
    m->min = s->min;
    m->max = s->max;
}

/* ---------------------------------------------------------- group table */

int sdb__gtab_init(sdb__gtab *g, sdb__txn *t, uint32_t project, const sdb__query *q,
                   uint32_t n_int, uint32_t n_labels, bool hist, bool traces, bool vals)
{
    memset(g, 0, sizeof *g);
    g->n_keys = q->n_group;
    g->n_int = n_int ? n_int : 1;
    g->n_labels = n_labels;
    g->bins = hist ? q->bins : 0;
    g->want_hist = hist;
    g->want_traces = traces;
    g->want_vals = vals;
    for (uint32_t k = 0; k < g->n_keys; k++) {
        sdb__keycol *c = &g->key[k];
        c->kind = q->group[k].kind;
        c->dim = q->group[k].dim;
        uint32_t n;
        switch (c->kind) {
        case SDB_GB_DIM: n = sdb__dict_max(t, project, c->dim) + 1; break;
        case SDB_GB_NAME: n = sdb__dict_max(t, project, SDB_DICT_NAME) + 1; break;
        case SDB_GB_PROP: n = sdb__dict_max(t, project, SDB_DICT_PROP) + 1; break;
        default: n = 8; break; /* source, data_type: 1..3 */
        }
        c->n_map = n;
        c->map = calloc(n, sizeof *c->map);
        if (!c->map) return SDB_ENOMEM;
        g->mem += (size_t)n * sizeof *c->map;
        c->bits = KEY_FIRST_BITS;
    }
    if (g->n_keys >= 2) {
        uint64_t prod = 1;
        for (uint32_t k = 0; k < g->n_keys && prod <= SDB__GTAB_DIRECT_MAX; k++) {
            g->dstride[k] = (uint32_t)prod;
            prod *= g->key[k].n_map;
        }
        if (prod <= SDB__GTAB_DIRECT_MAX) {
            g->direct = calloc(prod, sizeof *g->direct);
            if (!g->direct) return SDB_ENOMEM;
            g->mem += prod * sizeof *g->direct;
        }
    }
    return SDB_OK;
}

static void dvec_release(double *v, size_t cap);

void sdb__gtab_free(sdb__gtab *g)
{
    for (uint32_t k = 0; k < g->n_keys; k++) {
        free(g->key[k].map);
        free(g->key[k].raw);
    }
    free(g->dense);
    free(g->hash);
    free(g->direct);
    free(g->local);
    free(g->slot);
    if (g->cats)
        for (uint32_t i = 0; i < g->n; i++) free(g->cats[i]);
    free(g->cats);
    free(g->hist);
    if (g->traces)
        for (uint32_t i = 0; i < g->n; i++) sdb__traceset_free(&g->traces[i]);
    free(g->traces);
    if (g->vals)
        for (uint32_t i = 0; i < g->n; i++) {
            dvec_release(g->vals[i].v, g->vals[i].cap);
            for (sdb__dvec *e = g->vals[i].more, *nx; e; e = nx) {
                nx = e->more;
                dvec_release(e->v, e->cap);
                free(e);
            }
        }
    free(g->vals);
    memset(g, 0, sizeof *g);
}

static inline uint32_t tuple_hash(const uint32_t *l, uint32_t n)
{
    return (uint32_t)sdb__hash(l, n * sizeof *l);
}

static inline uint64_t code_of(const sdb__gtab *g, const uint32_t *l)
{
    uint64_t c = 0;
    for (uint32_t k = 0; k < g->n_keys; k++) c |= (uint64_t)l[k] << g->key[k].shift;
    return c;
}

/* Rebuild the code -> group index after a key column widened (or the
 * hash table filled): dense while the codes fit, else hashed. Each
 * column's bits double at most 32 times, so rebuilds are rare. */
static int index_rebuild(sdb__gtab *g)
{
    unsigned bits = 0;
    for (uint32_t k = 0; k < g->n_keys; k++) {
        g->key[k].shift = bits;
        bits += g->key[k].bits;
    }
    free(g->dense);
    free(g->hash);
    g->dense = NULL;
    g->hash = NULL;
    g->hash_cap = 0;
    g->total_bits = bits;
    if (bits <= DENSE_MAX_BITS) {
        g->dense = calloc((size_t)1 << bits, sizeof *g->dense);
        if (!g->dense) return SDB_ENOMEM;
        for (uint32_t i = 0; i < g->n; i++)
            g->dense[code_of(g, g->local + (size_t)i * g->n_keys)] = i + 1;
        return SDB_OK;
    }
    uint32_t cap = 1024;
    while (cap < 2 * (g->n + 1)) cap *= 2;
    g->hash = calloc(cap, sizeof *g->hash);
    if (!g->hash) return SDB_ENOMEM;
    g->hash_cap = cap;
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t j = tuple_hash(g->local + (size_t)i * g->n_keys, g->n_keys) & (cap - 1);
        while (g->hash[j]) j = (j + 1) & (cap - 1);
        g->hash[j] = i + 1;
    }
    return SDB_OK;
}

/* A new group with local tuple l: grow every per-group array. */
static int group_new(sdb__gtab *g, const uint32_t *l, uint32_t *out)
{
    if (g->n == UINT32_MAX) return SDB_ENOMEM;
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 16;
        size_t nk = g->n_keys ? g->n_keys : 1;
        uint32_t *local = realloc(g->local, (size_t)cap * nk * sizeof *local);
        if (!local) return SDB_ENOMEM;
        g->local = local;
        sdb_slot *slot = realloc(g->slot, (size_t)cap * g->n_int * sizeof *slot);
        if (!slot) return SDB_ENOMEM;
        g->slot = slot;
        uint64_t **cats = realloc(g->cats, (size_t)cap * sizeof *cats);
        if (!cats) return SDB_ENOMEM;
        g->cats = cats;
        if (g->hist) {
            uint64_t *h = realloc(g->hist, (size_t)cap * (g->bins + 2) * sizeof *h);
            if (!h) return SDB_ENOMEM;
            g->hist = h;
        }
        if (g->want_traces) {
            sdb__traceset *tr = realloc(g->traces, (size_t)cap * sizeof *tr);
            if (!tr) return SDB_ENOMEM;
            g->traces = tr;
        }
        if (g->want_vals) {
            sdb__dvec *v = realloc(g->vals, (size_t)cap * sizeof *v);
            if (!v) return SDB_ENOMEM;
            g->vals = v;
        }
        size_t per = nk * sizeof *local + g->n_int * sizeof *slot + sizeof *cats +
                     (g->hist ? (g->bins + 2) * sizeof(uint64_t) : 0) +
                     (g->want_traces ? sizeof(sdb__traceset) : 0) +
                     (g->want_vals ? sizeof(sdb__dvec) : 0);
        g->mem += (size_t)(cap - g->cap) * per;
        g->cap = cap;
    }
    uint32_t i = g->n++;
    if (g->n_keys) memcpy(g->local + (size_t)i * g->n_keys, l, g->n_keys * sizeof *l);
    for (uint32_t s = 0; s < g->n_int; s++) sdb__slot_init(&g->slot[(size_t)i * g->n_int + s]);
    g->cats[i] = NULL;
    if (g->hist) memset(g->hist + (size_t)i * (g->bins + 2), 0, (g->bins + 2) * sizeof *g->hist);
    if (g->want_traces) memset(&g->traces[i], 0, sizeof g->traces[i]);
    if (g->want_vals) memset(&g->vals[i], 0, sizeof g->vals[i]);
    *out = i;
    return SDB_OK;
}

/* The local index of raw id r in column c, assigned on first sight; *wid
 * is set when the column outgrew its bits. */
static inline int local_of(sdb__keycol *c, uint32_t r, uint32_t *out, bool *wid)
{
    if (r >= c->n_map) r = 0; /* an id past the dictionary: corrupt, keep it bounded */
    uint32_t l = c->map[r];
    if (l) {
        *out = l - 1;
        return SDB_OK;
    }
    if (c->n_local == c->cap_local) {
        uint32_t cap = c->cap_local ? c->cap_local * 2 : 16;
        uint32_t *raw = realloc(c->raw, (size_t)cap * sizeof *raw);
        if (!raw) return SDB_ENOMEM;
        c->raw = raw;
        c->cap_local = cap;
    }
    c->raw[c->n_local] = r;
    *out = c->n_local++;
    c->map[r] = c->n_local;
    while (((uint64_t)1 << c->bits) < c->n_local) {
        c->bits++;
        *wid = true;
    }
    return SDB_OK;
}

/* The group of one local tuple, created when new. */
static int group_of(sdb__gtab *g, const uint32_t *l, uint32_t *out)
{
    if (g->dense) {
        uint64_t c = code_of(g, l);
        if (g->dense[c]) {
            *out = g->dense[c] - 1;
            return SDB_OK;
        }
        int rc = group_new(g, l, out);
        if (rc == SDB_OK) g->dense[c] = *out + 1;
        return rc;
    }
    uint32_t mask = g->hash_cap - 1, j = tuple_hash(l, g->n_keys) & mask;
    while (g->hash[j]) {
        const uint32_t *o = g->local + (size_t)(g->hash[j] - 1) * g->n_keys;
        uint32_t k = 0;
        while (k < g->n_keys && o[k] == l[k]) k++;
        if (k == g->n_keys) {
            *out = g->hash[j] - 1;
            return SDB_OK;
        }
        j = (j + 1) & mask;
    }
    int rc = group_new(g, l, out);
    if (rc) return rc;
    g->hash[j] = *out + 1;
    if (2 * (g->n + 1) > g->hash_cap) rc = index_rebuild(g);
    return rc;
}

static int groups_multi(sdb__gtab *g, uint32_t *const *raw, const uint32_t *raw_const, size_t n,
                        uint32_t *out);

int sdb__gtab_groups(sdb__gtab *g, uint32_t *const *raw, const uint32_t *raw_const, size_t n,
                     uint32_t *out)
{
    int rc;
    if (g->n_keys == 0) {
        if (g->n == 0 && (rc = group_new(g, NULL, &(uint32_t){0}))) return rc;
        memset(out, 0, n * sizeof *out);
        return SDB_OK;
    }
    if (g->n_keys == 1) {
        /* One column: local index = group index (both count first sights). */
        sdb__keycol *c = &g->key[0];
        for (size_t j = 0; j < n; j++) {
            uint32_t r = raw[0] ? raw[0][j] : raw_const[0];
            if (r >= c->n_map) r = 0;
            uint32_t l = c->map[r];
            if (!l) {
                bool wid = false;
                uint32_t li, gi;
                if ((rc = local_of(c, r, &li, &wid)) || (rc = group_new(g, &li, &gi))) return rc;
                l = li + 1;
            }
            out[j] = l - 1;
        }
        return SDB_OK;
    }
    return groups_multi(g, raw, raw_const, n, out);
}

/* Two or more key columns through the maps: the dense index, else the
 * hash, creating groups as needed. */
static int groups_multi(sdb__gtab *g, uint32_t *const *raw, const uint32_t *raw_const, size_t n,
                        uint32_t *out)
{
    int rc;
    if (!g->dense && !g->hash && (rc = index_rebuild(g))) return rc;
    for (size_t j = 0; j < n; j++) {
        if (g->dense) {
            /* The common case, its loads hoisted out of the row loop: every
             * id seen, the group known. A constant column reads raw_const
             * (step 0). Leaves the loop at the first row that needs more. */
            const uint32_t *rp[SDB_MAX_GROUP_BY], *mp[SDB_MAX_GROUP_BY];
            uint32_t nm[SDB_MAX_GROUP_BY], st[SDB_MAX_GROUP_BY];
            unsigned sh[SDB_MAX_GROUP_BY];
            const uint32_t nk = g->n_keys, *dense = g->dense;
            for (uint32_t k = 0; k < nk; k++) {
                rp[k] = raw[k] ? raw[k] : &raw_const[k];
                st[k] = raw[k] ? 1 : 0;
                mp[k] = g->key[k].map;
                nm[k] = g->key[k].n_map;
                sh[k] = g->key[k].shift;
            }
            for (; j < n; j++) {
                uint64_t code = 0;
                uint32_t k = 0;
                for (; k < nk; k++) {
                    uint32_t r = rp[k][j * st[k]];
                    uint32_t l = r < nm[k] ? mp[k][r] : 0;
                    if (!l) break;
                    code |= (uint64_t)(l - 1) << sh[k];
                }
                if (k < nk || !dense[code]) break;
                out[j] = dense[code] - 1;
            }
            if (j == n) break;
        }
        uint32_t l[SDB_MAX_GROUP_BY];
        bool wid = false;
        for (uint32_t k = 0; k < g->n_keys; k++) {
            uint32_t r = raw[k] ? raw[k][j] : raw_const[k];
            if ((rc = local_of(&g->key[k], r, &l[k], &wid))) return rc;
        }
        if (wid && (rc = index_rebuild(g))) return rc;
        if ((rc = group_of(g, l, &out[j]))) return rc;
    }
    return SDB_OK;
}

int sdb__gtab_groups_code(sdb__gtab *g, const uint32_t *code, size_t n, uint32_t *out)
{
    uint32_t *d = g->direct;
    for (size_t j = 0; j < n; j++) {
        uint32_t v = d[code[j]];
        if (__builtin_expect(v == 0, 0)) {
            /* First sight of this code: its raw ids back from the code,
             * then the maps (which know the group when another path,
             * a pre-aggregate or a constant key, opened it). */
            uint32_t r[SDB_MAX_GROUP_BY], *rp[SDB_MAX_GROUP_BY], gi;
            for (uint32_t k = 0; k < g->n_keys; k++) {
                r[k] = code[j] / g->dstride[k] % g->key[k].n_map;
                rp[k] = &r[k];
            }
            int rc = groups_multi(g, rp, NULL, 1, &gi);
            if (rc) return rc;
            v = d[code[j]] = gi + 1;
        }
        out[j] = v - 1;
    }
    return SDB_OK;
}

int sdb__gtab_hist_alloc(sdb__gtab *g)
{
    if (g->hist || !g->bins) return SDB_OK;
    size_t cap = g->cap ? g->cap : 1;
    g->hist = calloc(cap * (g->bins + 2), sizeof *g->hist);
    if (!g->hist) return SDB_ENOMEM;
    g->mem += cap * (g->bins + 2) * sizeof *g->hist;
    return SDB_OK;
}

uint64_t *sdb__gtab_cats(sdb__gtab *g, uint32_t gi)
{
    if (!g->cats[gi]) {
        g->cats[gi] = calloc(g->n_labels + 1, sizeof *g->cats[gi]);
        if (g->cats[gi]) g->mem += (g->n_labels + 1) * sizeof *g->cats[gi];
    }
    return g->cats[gi];
}

/* A value list grows by doubling (realloc) up to DVEC_CHUNK values; past
 * that, a full array is pushed onto the chain as it is and appends go to a
 * fresh one, so no value is ever copied twice. Doubling realloc copied a
 * list of millions of values (percentiles of the frequent name: 2.2M) at
 * each step into heap pages faulted in fresh: memmove and page faults
 * were 30% of type.model.pct.frequent at 10M (perf record of bench_query),
 * and more with the parts of a parallel run each growing their own. */
#define DVEC_CHUNK ((size_t)1 << 16)

static void dvec_release(double *v, size_t cap)
{
    (void)cap;
    free(v);
}

size_t sdb__dvec_count(const sdb__dvec *d)
{
    size_t n = 0;
    for (; d; d = d->more) n += d->n;
    return n;
}

int sdb__dvec_reserve(sdb__gtab *g, sdb__dvec *d, size_t k)
{
    if (d->cap - d->n >= k) return SDB_OK;
    if (d->n && d->cap >= DVEC_CHUNK) {
        /* The full array onto the chain, a fresh one in front. */
        size_t cap = k > DVEC_CHUNK ? k : DVEC_CHUNK;
        sdb__dvec *e = malloc(sizeof *e);
        double *v = malloc(cap * sizeof *v);
        if (!e || !v) {
            free(e);
            free(v);
            return SDB_ENOMEM;
        }
        *e = *d;
        d->more = e;
        d->v = v;
        d->n = 0;
        d->cap = cap;
        g->mem += cap * sizeof *v + sizeof *e;
        return SDB_OK;
    }
    size_t cap = d->cap ? d->cap : 1024;
    while (cap - d->n < k) cap *= 2;
    double *v = realloc(d->v, cap * sizeof *v);
    if (!v) return SDB_ENOMEM;
    g->mem += (cap - d->cap) * sizeof *v;
    d->v = v;
    d->cap = cap;
    return SDB_OK;
}

int sdb__dvec_push(sdb__gtab *g, sdb__dvec *d, double x)
{
    int rc = sdb__dvec_reserve(g, d, 1);
    if (rc == SDB_OK) d->v[d->n++] = x;
    return rc;
}

/* ------------------------------------------------------------ merging */

/* Slot b into slot a: b's sums about its shift re-expressed about a's
 * (the re-expression sdb__slot_add_agg makes for a kernel's partial), so
 * that merging slots is exact in the counts, min and max and is Chan's
 * pairwise combination for the moments. */
void sdb__slot_merge(sdb_slot *a, const sdb_slot *b)
{
    uint64_t count = b->count;
    if (b->n) {
        sdb_agg p = {b->n, b->sum, b->s1, b->s2, b->min, b->max};
        sdb__slot_add_agg(a, &p, b->k);
        count -= b->n; /* add_agg counted the numeric rows */
    }
    a->count += count;
}

int sdb__gtab_init_like(sdb__gtab *g, const sdb__gtab *like)
{
    memset(g, 0, sizeof *g);
    g->n_keys = like->n_keys;
    g->n_int = like->n_int;
    g->n_labels = like->n_labels;
    g->bins = like->bins;
    g->want_hist = like->want_hist;
    g->want_traces = like->want_traces;
    g->want_vals = like->want_vals;
    memcpy(g->dstride, like->dstride, sizeof g->dstride);
    for (uint32_t k = 0; k < g->n_keys; k++) {
        sdb__keycol *c = &g->key[k];
        c->kind = like->key[k].kind;
        c->dim = like->key[k].dim;
        c->n_map = like->key[k].n_map;
        c->bits = KEY_FIRST_BITS;
        if (!(c->map = calloc(c->n_map, sizeof *c->map))) return SDB_ENOMEM;
        g->mem += (size_t)c->n_map * sizeof *c->map;
    }
    if (like->direct) {
        uint64_t prod = 1;
        for (uint32_t k = 0; k < g->n_keys; k++) prod *= g->key[k].n_map;
        if (!(g->direct = calloc(prod, sizeof *g->direct))) return SDB_ENOMEM;
        g->mem += prod * sizeof *g->direct;
    }
    return SDB_OK;
}

int sdb__gtab_map(sdb__gtab *dst, const sdb__gtab *src, uint32_t *map)
{
    if (src->n == 0) return SDB_OK;
    uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL};
    uint32_t none[SDB_MAX_GROUP_BY] = {0};
    int rc = SDB_OK;
    for (uint32_t k = 0; k < src->n_keys; k++) {
        if (!(raw[k] = malloc((size_t)src->n * sizeof *raw[k]))) {
            rc = SDB_ENOMEM;
            goto done;
        }
        for (uint32_t gi = 0; gi < src->n; gi++)
            raw[k][gi] = src->key[k].raw[src->local[(size_t)gi * src->n_keys + k]];
    }
    rc = sdb__gtab_groups(dst, raw, none, src->n, map);
done:
    for (uint32_t k = 0; k < src->n_keys; k++) free(raw[k]);
    return rc;
}

void sdb__gtab_merge_hist(sdb__gtab *dst, const sdb__gtab *src, const uint32_t *map)
{
    if (!dst->hist || !src->hist) return;
    size_t w = dst->bins + 2;
    for (uint32_t gi = 0; gi < src->n; gi++) {
        uint64_t *a = dst->hist + (size_t)map[gi] * w;
        const uint64_t *b = src->hist + (size_t)gi * w;
        for (size_t i = 0; i < w; i++) a[i] += b[i];
    }
}

/* b's values into a without copying them: b's array becomes a's when a
 * has none, else the first of a's chain of further lists (a percentile
 * reads every list of the chain, sdb__percentiles_dvec). b is left empty. */
static int dvec_move(sdb__gtab *g, sdb__dvec *a, sdb__dvec *b)
{
    if (a->n == 0 && !a->more) {
        dvec_release(a->v, a->cap);
        *a = *b;
    } else {
        sdb__dvec *e = malloc(sizeof *e);
        if (!e) return SDB_ENOMEM;
        *e = *b;
        /* e then b's chain, then a's */
        sdb__dvec *t = e;
        while (t->more) t = t->more;
        t->more = a->more;
        a->more = e;
    }
    g->mem += b->cap * sizeof *b->v;
    memset(b, 0, sizeof *b);
    return SDB_OK;
}

int sdb__gtab_merge(sdb__gtab *dst, sdb__gtab *src, uint32_t *map)
{
    int rc = sdb__gtab_map(dst, src, map);
    if (rc) return rc;
    if (src->hist && (rc = sdb__gtab_hist_alloc(dst))) return rc;
    for (uint32_t gi = 0; gi < src->n; gi++) {
        uint32_t di = map[gi];
        for (uint32_t s = 0; s < src->n_int; s++)
            sdb__slot_merge(&dst->slot[(size_t)di * dst->n_int + s],
                            &src->slot[(size_t)gi * src->n_int + s]);
        if (src->cats[gi]) {
            uint64_t *c = sdb__gtab_cats(dst, di);
            if (!c) return SDB_ENOMEM;
            for (uint32_t i = 0; i <= src->n_labels; i++) c[i] += src->cats[gi][i];
        }
        if (src->want_traces && src->traces[gi].bits &&
            (rc = sdb__traceset_or(&dst->traces[di], &src->traces[gi])))
            return rc;
        if (src->want_traces && src->traces[gi].n) {
            const sdb__traceset *b = &src->traces[gi];
            uint64_t *o = sdb__traceset_room(&dst->traces[di], b->n);
            if (!o) return SDB_ENOMEM;
            memcpy(o, b->v, b->n * sizeof *o);
            dst->traces[di].n += b->n;
            dst->mem += b->n * sizeof *o;
        }
        if (src->want_vals && src->vals[gi].n && (rc = dvec_move(dst, &dst->vals[di], &src->vals[gi])))
            return rc;
    }
    sdb__gtab_merge_hist(dst, src, map);
    return SDB_OK;
}

/* ---------------------------------------------------------- percentiles */

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

/* The ranks of `want` (sorted, at most 2 x 128) of v[0..n) by bucketing:
 * one pass for min and max, one counting each value's bucket (a
 * monotonic function of the value, so the buckets are ordered and the
 * k-th smallest lies in the bucket where the running count passes k), one
 * copying out the values of the buckets that hold a wanted rank, then a
 * selection inside each (small unless the values crowd into one, and
 * skipped when a bucket's values are all equal: scores clamped to 0 or 1
 * pile into the end buckets). Two or three sequential passes with no
 * data-dependent branch, where quickselect makes several with a
 * mispredicted branch per value: p50/p90/p99 of 80 groups of ~900 values
 * (environment.model_prompt.pct.frequent of the shape matrix) spent 54% of
 * the query in select_kth before groups that small were bucketed too.
 * The bucket count follows n (about n / PCT_PER_BUCKET, a power of two
 * between PCT_MIN_BUCKETS and PCT_MAX_BUCKETS) so that a small group does
 * not pay for clearing 4096 counters. Returns 0 when it cannot (out of
 * memory, or a range whose scale overflows); out[i] is rank want[i]. */
#define PCT_MIN_BUCKETS 64
#define PCT_MAX_BUCKETS 4096
#define PCT_PER_BUCKET 4
#define PCT_BUCKET_MIN_N 256 /* below this quickselect is as fast */
#define PCT_BID_MAX 8192     /* values whose bucket ids are kept between passes */

/* The bucket of x: last = nb - 1 (as a double and as an index). Through
 * int64_t: t is in [0, nb) there, and a double to unsigned conversion is
 * a compare and a branch on x86-64 where this is one instruction. */
static inline uint16_t pct_bucket(double x, double mn, double scale, double lastd, uint16_t last)
{
    double t = (x - mn) * scale; /* >= 0: mn is the minimum */
    return t < lastd ? (uint16_t)(int64_t)t : last;
}

/* The k-th smallest of v[0..len), which may be reordered: a selection,
 * skipped when the values are all equal (scores clamped to 0 or 1 pile
 * into one bucket). */
static double rank_in(double *v, size_t len, size_t k)
{
    double mn = v[0], mx = v[0];
    for (size_t j = 1; j < len; j++) {
        mn = v[j] < mn ? v[j] : mn;
        mx = v[j] > mx ? v[j] : mx;
    }
    if (mn == mx) return mn;
    select_kth(v, 0, len - 1, k);
    return v[k];
}

/* The values are np pieces vs[i][0..ns[i]) (one, or a group's lists from
 * the parts of a parallel run, sdb__dvec_more), n in all. */
static int ranks_by_buckets(const double *const *vs, const size_t *ns, uint32_t np, size_t n,
                            const size_t *want, uint32_t m, double *out)
{
    /* Four running minima and maxima: independent chains. */
    double first = vs[0][0];
    double mn4[4] = {first, first, first, first}, mx4[4] = {first, first, first, first};
    size_t i = 0;
    for (uint32_t pc = 0; pc < np; pc++) {
        const double *v = vs[pc];
        size_t nv = ns[pc];
        for (i = 0; i + 4 <= nv; i += 4)
            for (int k = 0; k < 4; k++) {
                mn4[k] = v[i + k] < mn4[k] ? v[i + k] : mn4[k];
                mx4[k] = v[i + k] > mx4[k] ? v[i + k] : mx4[k];
            }
        for (; i < nv; i++) {
            mn4[0] = v[i] < mn4[0] ? v[i] : mn4[0];
            mx4[0] = v[i] > mx4[0] ? v[i] : mx4[0];
        }
    }
    double mn = mn4[0], mx = mx4[0];
    for (int k = 1; k < 4; k++) {
        mn = mn4[k] < mn ? mn4[k] : mn;
        mx = mx4[k] > mx ? mx4[k] : mx;
    }
    if (!(mx > mn)) {
        for (uint32_t i = 0; i < m; i++) out[i] = mn;
        return 1;
    }
    size_t nb = PCT_MIN_BUCKETS;
    while (nb < PCT_MAX_BUCKETS && nb * PCT_PER_BUCKET < n) nb *= 2;
    double scale = (double)nb / (mx - mn);
    if (!isfinite(scale)) return 0;
    /* One block: counts (nb + 1), the copy slot of each bucket (nb), and
     * three more count arrays: consecutive values in one bucket (scores
     * clamped to 0 or 1) would otherwise wait on each other's increments
     * in memory; four arrays, summed after, make four chains. */
    uint32_t *cnt = calloc(5 * nb + 1, sizeof *cnt);
    /* Each value's bucket, kept for the copy pass while that array stays
     * in L1 (pct micro-bench, 160 groups of 1300: 3.5 against 4.0 ns a
     * value); past that recomputing it is cheaper than the traffic (one
     * group of 70000: 2.7 against 3.6 ns). */
    bool keep_bid = n <= PCT_BID_MAX && np == 1;
    uint16_t *bid = keep_bid ? malloc(n * sizeof *bid) : NULL;
    if (!cnt || (keep_bid && !bid)) {
        free(cnt);
        free(bid);
        return 0;
    }
    int32_t *slot = (int32_t *)(cnt + nb + 1);
    uint32_t *c1 = cnt + 2 * nb + 1, *c2 = c1 + nb, *c3 = c2 + nb;
    const double lastd = (double)(nb - 1);
    const uint16_t last = (uint16_t)(nb - 1);
#define PCT_B(x) pct_bucket(x, mn, scale, lastd, last)
    if (bid) {
        const double *v = vs[0];
        for (i = 0; i < n; i++) bid[i] = PCT_B(v[i]);
        for (i = 0; i + 4 <= n; i += 4) {
            cnt[bid[i]]++;
            c1[bid[i + 1]]++;
            c2[bid[i + 2]]++;
            c3[bid[i + 3]]++;
        }
        for (; i < n; i++) cnt[bid[i]]++;
    } else {
        for (uint32_t pc = 0; pc < np; pc++) {
            const double *v = vs[pc];
            size_t nv = ns[pc];
            for (i = 0; i + 4 <= nv; i += 4) {
                cnt[PCT_B(v[i])]++;
                c1[PCT_B(v[i + 1])]++;
                c2[PCT_B(v[i + 2])]++;
                c3[PCT_B(v[i + 3])]++;
            }
            for (; i < nv; i++) cnt[PCT_B(v[i])]++;
        }
    }
    for (size_t b = 0; b < nb; b++) cnt[b] += c1[b] + c2[b] + c3[b];
    /* The bucket of each wanted rank and its rank inside it. */
    size_t bk[256], in[256], start[256], offs[256], total = 0;
    uint32_t nsl = 0;
    size_t acc = 0;
    for (uint32_t i = 0, b = 0; i < m; i++) {
        while (acc + cnt[b] <= want[i]) acc += cnt[b++];
        bk[i] = b;
        in[i] = want[i] - acc;
    }
    for (size_t b = 0; b < nb; b++) slot[b] = -1;
    for (uint32_t i = 0; i < m; i++) {
        if (slot[bk[i]] >= 0) continue;
        slot[bk[i]] = (int32_t)nsl;
        start[nsl] = total;
        offs[nsl] = total;
        total += cnt[bk[i]];
        nsl++;
    }
    double *tmp = malloc((total ? total : 1) * sizeof *tmp);
    if (!tmp) {
        free(cnt);
        free(bid);
        return 0;
    }
    if (bid) {
        const double *v = vs[0];
        for (i = 0; i < n; i++) {
            int32_t sl = slot[bid[i]];
            if (sl >= 0) tmp[offs[sl]++] = v[i];
        }
    } else {
        for (uint32_t pc = 0; pc < np; pc++) {
            const double *v = vs[pc];
            for (i = 0; i < ns[pc]; i++) {
                int32_t sl = slot[PCT_B(v[i])];
                if (sl >= 0) tmp[offs[sl]++] = v[i];
            }
        }
    }
#undef PCT_B
    for (uint32_t i = 0; i < m; i++) {
        uint32_t sl = (uint32_t)slot[bk[i]];
        out[i] = rank_in(tmp + start[sl], cnt[bk[i]], in[i]);
    }
    free(tmp);
    free(cnt);
    free(bid);
    return 1;
}

/* Large lists (PCT_SAMPLE_MIN_N values and more): Floyd and Rivest's
 * SELECT (CACM 18(3), 1975) made one pass. A sample of n / 16 values, at
 * most 8,192 (blocks of 32 consecutive ones spread over the list: cache
 * lines, not a miss a value), ranks each wanted rank k between two sample
 * values lo and hi, 3.5 standard deviations of a sample rank and a block either side of k's
 * place; then one pass over the list counts, for up to PCT_SAMPLE_IV
 * disjoint intervals [lo, hi], the values below lo and up to hi (compares
 * added into registers: no branch, no memory chain) and copies out the
 * few values inside one (a branch taken for a few percent of them). When
 * every k lands in its interval, the ranks are found among the copies
 * (small, in cache); else (an unlucky or adversarial order: the sample is
 * only as good as the list is shuffled) the bucket path runs as before.
 * Either way the answer is the k-th smallest value, so it is exact. The
 * passes it replaces: ranks_by_buckets reads a large list three times
 * (min/max, counts, copy), from memory (8 groups of 220k values at 10M,
 * value.model.pct.frequent: perf record put 28% of the query there); a
 * radix variant (buckets from the top 16 bits of each value's
 * order-preserving key, no min/max pass) measured 0.92-1.21x, median
 * 1.03x, on the 10 worst 10M pct cells and was dropped: scores in [0, 1]
 * share their exponents, so its buckets were few and full. */
#define PCT_SAMPLE_MIN_N 32768
#define PCT_SAMPLE_BLOCK 32
#define PCT_SAMPLE_MAX_BLOCKS 256 /* n / 512 blocks: 2,048 to 8,192 values */
#define PCT_SAMPLE_SIGMAS 3.5
#define PCT_SAMPLE_IV SDB_PCT_IV

/* The index of place pos in the sorted places spos[0..n) (present). */
static uint32_t sdb__pct_find(const size_t *spos, uint32_t n, size_t pos)
{
    uint32_t i = 0;
    while (i + 1 < n && spos[i] < pos) i++;
    return i;
}

/* Ranks want[0..m) (sorted) of the len values at v, which may be
 * reordered: by buckets when many, else one selection each. */
static void ranks_small(double *v, size_t len, const size_t *want, uint32_t m, double *out)
{
    if (len >= PCT_BUCKET_MIN_N) {
        const double *vs[1] = {v};
        if (ranks_by_buckets(vs, &len, 1, len, want, m, out)) return;
    }
    for (uint32_t i = 0; i < m; i++) out[i] = rank_in(v, len, want[i]);
}


/* Sort the few wanted ranks (at most a few hundred) in place. */
static void sort_ranks(size_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
            size_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}
/* 1 with out set, 0 when the sample's intervals missed (or more than
 * PCT_SAMPLE_IV were needed, or no memory): then the caller buckets. */
static int ranks_by_sample(const double *const *vs, const size_t *ns, uint32_t np, size_t n,
                           const size_t *want, uint32_t m, double *out)
{
    double smp[PCT_SAMPLE_MAX_BLOCKS * PCT_SAMPLE_BLOCK];
    size_t nbl = n / 512 < PCT_SAMPLE_MAX_BLOCKS ? n / 512 : PCT_SAMPLE_MAX_BLOCKS;
    const size_t S = nbl * PCT_SAMPLE_BLOCK;
    size_t pc = 0, base = 0, k = 0;
    for (size_t b = 0; b < nbl; b++) {
        size_t g = (n - PCT_SAMPLE_BLOCK) / (nbl - 1) * b;
        for (size_t t = 0; t < PCT_SAMPLE_BLOCK; t++, g++) {
            while (g - base >= ns[pc]) base += ns[pc++];
            smp[k++] = vs[pc][g - base];
        }
    }
    /* Each wanted rank's interval in sample places, then merged. */
    long lo_at[256], hi_at[256], mid_at[256];
    for (uint32_t i = 0; i < m; i++) {
        double p = (double)want[i] / (double)(n - 1);
        /* The sample rank's spread, plus a block: in a list ordered by
         * value (or drifting) a block's values are one place of the list
         * each, so a sample place is only known to a block's width. */
        double at = p * (double)(S - 1),
               d = PCT_SAMPLE_SIGMAS * sqrt((double)S * p * (1 - p)) + PCT_SAMPLE_BLOCK + 4;
        lo_at[i] = (long)floor(at - d);
        hi_at[i] = (long)ceil(at + d);
        mid_at[i] = lround(at);
    }
    size_t spos[768];
    uint32_t nsp = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (lo_at[i] >= 0) spos[nsp++] = (size_t)lo_at[i];
        if (hi_at[i] < (long)S) spos[nsp++] = (size_t)hi_at[i];
        spos[nsp++] = (size_t)mid_at[i];
    }
    sort_ranks(spos, nsp);
    double sval[768];
    if (nsp) {
        const double *sv[1] = {smp};
        size_t sn = S;
        if (!ranks_by_buckets(sv, &sn, 1, sn, spos, nsp, sval)) return 0;
    }
    /* sval in place order; look a place up in spos (sorted, nsp small) */
#define SVAL(pos) sval[sdb__pct_find(spos, nsp, (size_t)(pos))]
    double lo[PCT_SAMPLE_IV], hi[PCT_SAMPLE_IV];
    bool same[PCT_SAMPLE_IV]; /* lo == hi: the values inside are not kept */
    uint32_t iv_of[256], ni = 0;
    for (uint32_t i = 0; i < m; i++) {
        double l = lo_at[i] < 0 ? -INFINITY : SVAL(lo_at[i]);
        double h = hi_at[i] >= (long)S ? INFINITY : SVAL(hi_at[i]);
        /* A pile (scores clamped to 1: p99 of the frequent name): the
         * sample's value at k's place equals an end, so k is most likely
         * one of the pile, whose values need counting, not copying. */
        double c = SVAL(mid_at[i]);
        if (c == l || c == h) l = h = c;
        if (ni && l <= hi[ni - 1]) {
            hi[ni - 1] = h > hi[ni - 1] ? h : hi[ni - 1];
        } else {
            if (ni == PCT_SAMPLE_IV) return 0;
            lo[ni] = l;
            hi[ni++] = h;
        }
        iv_of[i] = ni - 1;
    }
#undef SVAL
    for (uint32_t j = 0; j < ni; j++) same[j] = lo[j] == hi[j];
    /* Unused intervals are empty: nothing is below -inf's... below lo =
     * +inf counts everything and nothing is inside (x <= hi = -inf). */
    for (uint32_t j = ni; j < PCT_SAMPLE_IV; j++) {
        lo[j] = INFINITY;
        hi[j] = -INFINITY;
    }
    /* Room for each interval: its expected share with a wide margin;
     * more than that and the sample missed (a fallback, not an error). */
    double share = 2 * (PCT_SAMPLE_SIGMAS * sqrt((double)S * 0.25) + PCT_SAMPLE_BLOCK + 6) / (double)S;
    size_t cap = (size_t)((double)n * share) * 2 + 64;
    double *buf = malloc(PCT_SAMPLE_IV * cap * sizeof *buf);
    if (!buf) return 0;
    uint64_t below[PCT_SAMPLE_IV] = {0}, upto[PCT_SAMPLE_IV] = {0}, got[PCT_SAMPLE_IV] = {0};
    unsigned keep = 0; /* a pile's values are counted, not kept */
    for (uint32_t j = 0; j < ni; j++) keep |= (unsigned)!same[j] << j;
    const sdb_kernels *kern = sdb__kernels();
    for (pc = 0; pc < np; pc++)
        kern->pct_count_f64(vs[pc], ns[pc], lo, hi, keep, cap, below, upto, got, buf);
    /* Every wanted rank inside its interval, and the interval's values
     * all kept (or all equal), then ranked among them (an interval's
     * wants are consecutive in want). */
    int ok = 1;
    for (uint32_t i = 0; i < m && ok; i++) {
        uint32_t j = iv_of[i];
        ok = want[i] >= below[j] && want[i] < upto[j] && (same[j] || got[j] <= cap);
    }
    for (uint32_t i = 0; i < m && ok;) {
        uint32_t e = i, j = iv_of[i];
        if (same[j]) {
            for (; e < m && iv_of[e] == j; e++) out[e] = lo[j];
            i = e;
            continue;
        }
        size_t in[256];
        while (e < m && iv_of[e] == j) {
            in[e - i] = want[e] - below[j];
            e++;
        }
        ranks_small(buf + j * cap, got[j], in, e - i, out + i);
        i = e;
    }
    free(buf);
    return ok;
}

/* Percentiles of the pieces by buckets: 1, or 0 when this path does not
 * serve (few values, many percentiles, no memory), out then unset. */
static int pct_pieces(const double *const *vs, const size_t *ns, uint32_t np, size_t n,
                      const double *pct, uint32_t n_pct, double *out)
{
    if (n < PCT_BUCKET_MIN_N || n_pct > 128) return 0;
    /* Every rank asked for and the one after it, sorted. */
    size_t want[256], pos_lo[128];
    double frac[128];
    uint32_t m = 0;
    for (uint32_t i = 0; i < n_pct; i++) {
        double pos = pct[i] / 100.0 * (double)(n - 1);
        size_t lo = (size_t)floor(pos);
        if (lo >= n) lo = n - 1;
        pos_lo[i] = lo;
        frac[i] = pos - (double)lo;
        want[m++] = lo;
        if (lo + 1 < n) want[m++] = lo + 1;
    }
    sort_ranks(want, m);
    double got[256];
    if (!(n >= PCT_SAMPLE_MIN_N && ranks_by_sample(vs, ns, np, n, want, m, got)) &&
        !ranks_by_buckets(vs, ns, np, n, want, m, got))
        return 0;
    for (uint32_t i = 0; i < n_pct; i++) {
        uint32_t a = 0;
        while (want[a] != pos_lo[i]) a++;
        double x = got[a], y = x;
        if (pos_lo[i] + 1 < n) {
            uint32_t b = a;
            while (want[b] != pos_lo[i] + 1) b++;
            y = got[b];
        }
        out[i] = frac[i] == 0 ? x : x + (y - x) * frac[i];
    }
    return 1;
}

void sdb__percentiles(double *v, size_t n, const double *pct, uint32_t n_pct, double *out)
{
    const double *vs[1] = {v};
    if (pct_pieces(vs, &n, 1, n, pct, n_pct, out)) return;
    sdb__percentiles_select(v, n, pct, n_pct, out);
}

int sdb__percentiles_dvec(sdb__dvec *d, const double *pct, uint32_t n_pct, double *out)
{
    if (!d->more) {
        sdb__percentiles(d->v, d->n, pct, n_pct, out);
        return SDB_OK;
    }
    uint32_t np = 0;
    size_t n = 0;
    for (const sdb__dvec *e = d; e; e = e->more) {
        np++;
        n += e->n;
    }
    if (!n) return SDB_OK;
    const double **vs = malloc(np * sizeof *vs);
    size_t *ns = malloc(np * sizeof *ns);
    int rc = vs && ns ? SDB_OK : SDB_ENOMEM;
    if (rc == SDB_OK) {
        np = 0;
        for (const sdb__dvec *e = d; e; e = e->more)
            if (e->n) {
                vs[np] = e->v;
                ns[np++] = e->n;
            }
        if (!pct_pieces(vs, ns, np, n, pct, n_pct, out)) {
            /* Few values or many percentiles: one array for quickselect. */
            double *all = malloc((n ? n : 1) * sizeof *all);
            if (!all) rc = SDB_ENOMEM;
            else {
                size_t at = 0;
                for (uint32_t i = 0; i < np; i++) {
                    memcpy(all + at, vs[i], ns[i] * sizeof *all);
                    at += ns[i];
                }
                sdb__percentiles_select(all, n, pct, n_pct, out);
                free(all);
            }
        }
    }
    free(vs);
    free(ns);
    return rc;
}

/* The ranks asked for, in increasing order, are selected one after the
 * other, each in the part of the array right of the previous one (which
 * holds exactly the larger ranks), so m percentiles cost about n log m
 * comparisons rather than a sort's n log n; the rank after each (for the
 * interpolation) is the minimum of the part right of it. */
void sdb__percentiles_select(double *v, size_t n, const double *pct, uint32_t n_pct, double *out)
{
    uint32_t order[128];
    uint32_t m = n_pct < 128 ? n_pct : 128;
    for (uint32_t i = 0; i < m; i++) order[i] = i;
    for (uint32_t i = 1; i < m; i++) /* insertion sort of at most 100 */
        for (uint32_t j = i; j > 0 && pct[order[j]] < pct[order[j - 1]]; j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t from = 0; /* v[from..n) holds ranks from..n-1, unordered */
    size_t have = SIZE_MAX;
    for (uint32_t oi = 0; oi < m; oi++) {
        uint32_t i = order[oi];
        double pos = pct[i] / 100.0 * (double)(n - 1);
        size_t lo = (size_t)floor(pos);
        if (lo >= n) lo = n - 1;
        double frac = pos - (double)lo;
        if (lo != have) {
            select_kth(v, from, n - 1, lo);
            from = lo;
            have = lo;
        }
        double a = v[lo], b = a;
        if (frac != 0 && lo + 1 < n) {
            /* The next rank is the least of what lies right of lo: one
             * pass, cheaper than another selection. */
            b = v[lo + 1];
            for (size_t j = lo + 2; j < n; j++) b = v[j] < b ? v[j] : b;
        }
        out[i] = frac == 0 ? a : a + (b - a) * frac;
    }
}
