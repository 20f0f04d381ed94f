/* The AVX-512 kernels: scalar.c's semantics, eight rows per vector.
 *
 * Invariant: counts, bins, n, min and max equal scalar.c's exactly; sums
 * differ only by the order of additions (several accumulators, lanes folded
 * at the end) and by fused multiply-add in s2. The filter is a chain of
 * masked compares into one __mmask8, and the accumulators update only the
 * lanes it selects, so a rejected row never touches them. Every load is
 * unaligned (the LMDB map only promises 2-byte alignment); tails use masked
 * loads, which do not fault on the lanes they leave out. Nothing is
 * allocated: the histogram's sub-histograms live on the stack.
 *
 * Workload: segments of a few thousand to a few million rows, ts + v =
 * 16 bytes per row, scanned once per query at memory speed.
 *
 * Built with -mavx512f -mavx512dq -mavx512bw -mavx512vl (Makefile, this file
 * only). Nothing here runs unless sdb__kernels_avx512() said the CPU can.
 */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---- loads --------------------------------------------------------------- */

static inline const char *at(const void *p, size_t i)
{
    return (const char *)p + i * 8;
}

static inline __m512i ld_i8(const void *p, size_t i)
{
    return _mm512_loadu_si512(at(p, i));
}

static inline __m512d ld_d8(const void *p, size_t i)
{
    return _mm512_loadu_pd(at(p, i));
}

/* The first `left` (< 8) lanes, the rest zero and not read. */
static inline __mmask8 tail_mask(size_t left)
{
    return (__mmask8)((1u << left) - 1u);
}

static inline double ld_f64(const void *p, size_t i)
{
    double x;
    memcpy(&x, at(p, i), 8);
    return x;
}

static inline int64_t ld_i64(const void *p, size_t i)
{
    int64_t x;
    memcpy(&x, at(p, i), 8);
    return x;
}

static inline uint32_t ld_u32(const void *p, size_t i)
{
    uint32_t x;
    memcpy(&x, (const char *)p + i * 4, 4);
    return x;
}

/* ---- the filter and one-row helpers (scalar.c's formulas) --------------- */

static inline void merge(sdb_agg *a, const sdb_agg *b)
{
    a->n += b->n;
    a->sum += b->sum;
    a->s1 += b->s1;
    a->s2 += b->s2;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

typedef struct flt8 {
    __m512i t_lo, t_hi;
    __m512d v_lo, v_hi;
} flt8;

static inline flt8 flt8_make(const sdb_filter *f)
{
    flt8 F = {_mm512_set1_epi64(f->t_lo), _mm512_set1_epi64(f->t_hi),
              _mm512_set1_pd(f->v_lo), _mm512_set1_pd(f->v_hi)};
    return F;
}

/* Lanes of `live` where t_lo <= t <= t_hi and v_lo <= x <= v_hi. Ordered
 * compares reject NaN, as scalar's >= and <= do. */
static inline __mmask8 pass8(const flt8 *F, __mmask8 live, __m512i t, __m512d x)
{
    __mmask8 m = _mm512_mask_cmp_epi64_mask(live, t, F->t_lo, _MM_CMPINT_NLT);
    m = _mm512_mask_cmp_epi64_mask(m, t, F->t_hi, _MM_CMPINT_LE);
    m = _mm512_mask_cmp_pd_mask(m, x, F->v_lo, _CMP_GE_OQ);
    return _mm512_mask_cmp_pd_mask(m, x, F->v_hi, _CMP_LE_OQ);
}

/* The value half of pass8, for a filter whose time range is everything. */
static inline __mmask8 pass8_v(const flt8 *F, __mmask8 live, __m512d x)
{
    __mmask8 m = _mm512_mask_cmp_pd_mask(live, x, F->v_lo, _CMP_GE_OQ);
    return _mm512_mask_cmp_pd_mask(m, x, F->v_hi, _CMP_LE_OQ);
}

/* A filter whose time range is [INT64_MIN, INT64_MAX] passes every
 * timestamp, so agg, hist and select then never load the ts column. The
 * query engine passes such a filter for a segment that lies wholly inside
 * the query's time range, and those scans read half (hist, agg) or two
 * thirds (select) of the bytes. The loops are written once, with `use_ts` a
 * constant in each of their two always-inlined copies. */
static inline int all_times(const sdb_filter *f)
{
    return f->t_lo == INT64_MIN && f->t_hi == INT64_MAX;
}

/* pass8 over row block i, reading ts only when use_ts. */
static inline __attribute__((always_inline)) __mmask8
pass8_at(const flt8 *F, __mmask8 live, const void *ts, size_t i, __m512d x, int use_ts)
{
    if (!use_ts) return pass8_v(F, live, x);
    return pass8(F, live, _mm512_maskz_loadu_epi64(live, at(ts, i)), x);
}

/* ---- vector partial aggregates ----------------------------------------- */

typedef struct acc8 {
    __m512i n;
    __m512d sum, s1, s2, min, max;
} acc8;

static inline void acc8_init(acc8 *a)
{
    a->n = _mm512_setzero_si512();
    a->sum = a->s1 = a->s2 = _mm512_setzero_pd();
    a->min = _mm512_set1_pd(INFINITY);
    a->max = _mm512_set1_pd(-INFINITY);
}

static inline void acc8_add(acc8 *a, __mmask8 m, __m512d x, __m512d k)
{
    /* Zero-masked d: rejected lanes add +0 to s1 and s2. */
    __m512d d = _mm512_maskz_sub_pd(m, x, k);
    a->n = _mm512_mask_sub_epi64(a->n, m, a->n, _mm512_set1_epi64(-1));
    a->sum = _mm512_mask_add_pd(a->sum, m, a->sum, x);
    a->s1 = _mm512_add_pd(a->s1, d);
    a->s2 = _mm512_fmadd_pd(d, d, a->s2);
    a->min = _mm512_mask_min_pd(a->min, m, a->min, x);
    a->max = _mm512_mask_max_pd(a->max, m, a->max, x);
}

static inline void acc8_merge(sdb_agg *out, const acc8 *a)
{
    uint64_t n[8];
    double sum[8], s1[8], s2[8], mn[8], mx[8];
    _mm512_storeu_si512(n, a->n);
    _mm512_storeu_pd(sum, a->sum);
    _mm512_storeu_pd(s1, a->s1);
    _mm512_storeu_pd(s2, a->s2);
    _mm512_storeu_pd(mn, a->min);
    _mm512_storeu_pd(mx, a->max);
    for (int j = 0; j < 8; j++) {
        sdb_agg p = {n[j], sum[j], s1[j], s2[j], mn[j], mx[j]};
        merge(out, &p);
    }
}

/* ---- agg_f64 -------------------------------------------------------------
 * Two accumulators, sixteen rows per iteration; the tail is one or two
 * masked iterations. */
static inline __attribute__((always_inline)) void
agg_body(const void *v, const void *ts, size_t n, const sdb_filter *f, sdb_agg *out, int use_ts)
{
    flt8 F = flt8_make(f);
    __m512d k = _mm512_set1_pd(f->shift);
    acc8 a0, a1;
    acc8_init(&a0);
    acc8_init(&a1);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d x0 = ld_d8(v, i), x1 = ld_d8(v, i + 8);
        acc8_add(&a0, pass8_at(&F, 0xff, ts, i, x0, use_ts), x0, k);
        acc8_add(&a1, pass8_at(&F, 0xff, ts, i + 8, x1, use_ts), x1, k);
    }
    for (; i < n; i += 8) {
        __mmask8 live = n - i >= 8 ? (__mmask8)0xff : tail_mask(n - i);
        __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
        acc8_add(&a0, pass8_at(&F, live, ts, i, x, use_ts), x, k);
    }
    sdb__agg_empty(out);
    acc8_merge(out, &a0);
    acc8_merge(out, &a1);
}

static void agg_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                    sdb_agg *out)
{
    if (all_times(f))
        agg_body(v, ts, n, f, out, 0);
    else
        agg_body(v, ts, n, f, out, 1);
}

/* ---- hist_f64 ------------------------------------------------------------
 * The bin index is computed for eight rows at once, as a double, with
 * scalar.c's formula: a true division, floor, then the clamps. Rows the
 * filter rejects get the index bins + 2, a slot that is never copied out.
 * Blocks the filter rejects entirely are skipped.
 *
 * With few bins (bins + 2 <= HIST_CMP_SLOTS: dashboards ask for 10 or 20)
 * the indices of 64 rows are narrowed to one vector of 64 bytes and each
 * slot is counted with one byte compare and a popcount: bins + 2 compares
 * per 64 rows. Counting, not the division, was the larger cost: the
 * scattered increments (extracts and a read-modify-write per row) took
 * about 0.24 ns a row in cache, the compares about 0.14 (20 bins, Zen 5);
 * the kernel as a whole went from about 0.7 to 0.5 ns a row.
 * Otherwise, and for the last rows, counting goes row by row into eight
 * sub-histograms, one per lane, so runs of equal values do not wait on the
 * previous increment of the same counter (store-to-load forwarding). */

#define HIST_SUBS 8
#define HIST_CMP_SLOTS 32 /* bins + 2 <= this: count by byte compares */
#define HIST_LOCAL_BINS 1024 /* larger histograms count straight into counts */
#define HIST_CHUNK ((size_t)1 << 30) /* rows per flush: each u32 sub-count <= 2^27 */

typedef struct histv {
    __m512d lo, hi, width, nbins, last, under, over, skip;
} histv;

static inline __m512d hist_index8(const histv *H, __mmask8 m, __m512d x)
{
    __m512d q = _mm512_roundscale_pd(_mm512_div_pd(_mm512_sub_pd(x, H->lo), H->width),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    /* q is NaN when width is 0 (lo == hi == x): not valid, so the last bin. */
    __mmask8 valid = _mm512_cmp_pd_mask(q, _mm512_setzero_pd(), _CMP_GE_OQ);
    valid = _mm512_mask_cmp_pd_mask(valid, q, H->nbins, _CMP_LT_OQ);
    __m512d b = _mm512_mask_mov_pd(H->last, valid, q);
    /* Scalar tests x < lo first; applying it last makes it win likewise. */
    b = _mm512_mask_mov_pd(b, _mm512_cmp_pd_mask(x, H->hi, _CMP_GT_OQ), H->over);
    b = _mm512_mask_mov_pd(b, _mm512_cmp_pd_mask(x, H->lo, _CMP_LT_OQ), H->under);
    return _mm512_mask_mov_pd(H->skip, m, b);
}

static inline void hist_one(const sdb_filter *f, double x, int64_t t, double lo, double hi,
                            double width, uint32_t bins, uint64_t *counts)
{
    if (!(t >= f->t_lo && t <= f->t_hi && x >= f->v_lo && x <= f->v_hi)) return;
    if (x < lo) {
        counts[bins]++;
    } else if (x > hi) {
        counts[bins + 1]++;
    } else {
        double q = floor((x - lo) / width);
        uint32_t b = (q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1;
        counts[b]++;
    }
}

static inline __attribute__((always_inline)) void
hist_body(const void *v, const void *ts, size_t n, const sdb_filter *f, double lo, double hi,
          double width, uint32_t bins, uint64_t *counts, int use_ts)
{
    flt8 F = flt8_make(f);
    histv H = {_mm512_set1_pd(lo),
               _mm512_set1_pd(hi),
               _mm512_set1_pd(width),
               _mm512_set1_pd((double)bins),
               _mm512_set1_pd((double)bins - 1),
               _mm512_set1_pd((double)bins),
               _mm512_set1_pd((double)bins + 1),
               _mm512_set1_pd((double)bins + 2)};
    size_t i = 0;
    if (bins == 0) {
        /* Not a histogram; do exactly what scalar.c does with it. */
        for (; i < n; i++)
            hist_one(f, ld_f64(v, i), use_ts ? ld_i64(ts, i) : 0, lo, hi, width, bins, counts);
        return;
    }
    if (bins + 2 <= HIST_CMP_SLOTS) {
        uint64_t c[HIST_CMP_SLOTS] = {0};
        for (; i + 64 <= n; i += 64) {
            __m128i q[8];
            __mmask8 any = 0;
            for (int j = 0; j < 8; j++) {
                __m512d x = ld_d8(v, i + 8 * (size_t)j);
                __mmask8 m = pass8_at(&F, 0xff, ts, i + 8 * (size_t)j, x, use_ts);
                any |= m;
                q[j] = _mm256_cvtepi32_epi8(_mm512_cvttpd_epi32(hist_index8(&H, m, x)));
            }
            if (any == 0) continue;
            __m512i b = _mm512_castsi128_si512(_mm_unpacklo_epi64(q[0], q[1]));
            b = _mm512_inserti64x2(b, _mm_unpacklo_epi64(q[2], q[3]), 1);
            b = _mm512_inserti64x2(b, _mm_unpacklo_epi64(q[4], q[5]), 2);
            b = _mm512_inserti64x2(b, _mm_unpacklo_epi64(q[6], q[7]), 3);
            for (uint32_t s = 0; s < bins + 2; s++)
                c[s] += (uint64_t)__builtin_popcountll(
                    _mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)s)));
        }
        for (uint32_t s = 0; s < bins + 2; s++) counts[s] += c[s];
        if (i == n) return;
    }
    if (bins <= HIST_LOCAL_BINS) {
        uint32_t sub[HIST_SUBS][HIST_LOCAL_BINS + 3];
        while (i < n) {
            size_t end = n - i > HIST_CHUNK ? i + HIST_CHUNK : n;
            for (int s = 0; s < HIST_SUBS; s++) memset(sub[s], 0, (bins + 3) * sizeof(uint32_t));
            for (; i < end; i += 8) {
                __mmask8 live = end - i >= 8 ? (__mmask8)0xff : tail_mask(end - i);
                __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
                __mmask8 m = pass8_at(&F, live, ts, i, x, use_ts);
                /* Time ranges reject whole runs of rows: skip them without
                 * queueing eight increments of the spare slot. */
                if (m == 0) continue;
                __m256i bi = _mm512_cvttpd_epi32(hist_index8(&H, m, x));
                /* Indices leave through general registers, two per move: a
                 * vector store read back as eight 4-byte loads can miss
                 * store-to-load forwarding. */
                __m128i b03 = _mm256_castsi256_si128(bi), b47 = _mm256_extracti128_si256(bi, 1);
                uint64_t p01 = (uint64_t)_mm_cvtsi128_si64(b03), p23 = (uint64_t)_mm_extract_epi64(b03, 1);
                uint64_t p45 = (uint64_t)_mm_cvtsi128_si64(b47), p67 = (uint64_t)_mm_extract_epi64(b47, 1);
                sub[0][(uint32_t)p01]++;
                sub[1][p01 >> 32]++;
                sub[2][(uint32_t)p23]++;
                sub[3][p23 >> 32]++;
                sub[4][(uint32_t)p45]++;
                sub[5][p45 >> 32]++;
                sub[6][(uint32_t)p67]++;
                sub[7][p67 >> 32]++;
            }
            if (i > end) i = end;
            for (uint32_t b = 0; b < bins + 2; b++) {
                uint64_t c = 0;
                for (int s = 0; s < HIST_SUBS; s++) c += sub[s][b];
                counts[b] += c;
            }
        }
        return;
    }
    for (; i < n; i += 8) {
        __mmask8 live = n - i >= 8 ? (__mmask8)0xff : tail_mask(n - i);
        __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
        __mmask8 m = pass8_at(&F, live, ts, i, x, use_ts);
        if (m == 0) continue;
        double b[8];
        _mm512_storeu_pd(b, hist_index8(&H, m, x));
        for (unsigned bits = m; bits != 0; bits &= bits - 1)
            counts[(uint64_t)b[__builtin_ctz(bits)]]++;
    }
}

static void hist_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                     double lo, double hi, double width, uint32_t bins,
                     uint64_t *counts)
{
    if (all_times(f))
        hist_body(v, ts, n, f, lo, hi, width, bins, counts, 0);
    else
        hist_body(v, ts, n, f, lo, hi, width, bins, counts, 1);
}

/* ---- group_u32 -----------------------------------------------------------
 * The filter runs eight rows at a time. With few keys (the common case:
 * models, sources, data types) the rows of a block that has any passing row
 * go, without a branch, into four copies of the accumulators on the stack
 * (lanes j and j + 4 share copy j % 4), laid out one array per field: rows
 * that share a key then rarely wait on each other's stores, and no store is
 * a merged 16-byte one that a later 8-byte load must pick apart. A rejected
 * row, or a key >= n_keys, goes to the spare slot n_keys, never copied out.
 * With many keys, only the passing rows are added, one by one, to accs. */

#define GROUP_LOCAL_KEYS 64
#define GROUP_COPIES 4

typedef struct gacc {
    uint64_t n[GROUP_LOCAL_KEYS + 1];
    double sum[GROUP_LOCAL_KEYS + 1], s1[GROUP_LOCAL_KEYS + 1], s2[GROUP_LOCAL_KEYS + 1];
    double min[GROUP_LOCAL_KEYS + 1], max[GROUP_LOCAL_KEYS + 1];
} gacc;

static inline void gacc_add(gacc *g, uint32_t slot, double x, double k)
{
    double d = x - k;
    g->n[slot]++;
    g->sum[slot] += x;
    g->s1[slot] += d;
    g->s2[slot] += d * d;
    g->min[slot] = x < g->min[slot] ? x : g->min[slot];
    g->max[slot] = x > g->max[slot] ? x : g->max[slot];
}

static void group_local(const void *keys, const void *v, const void *ts, size_t n,
                        const sdb_filter *f, uint32_t n_keys, sdb_agg *accs)
{
    gacc g[GROUP_COPIES];
    for (int c = 0; c < GROUP_COPIES; c++) {
        for (uint32_t s = 0; s <= n_keys; s++) {
            g[c].n[s] = 0;
            g[c].sum[s] = g[c].s1[s] = g[c].s2[s] = 0.0;
            g[c].min[s] = INFINITY;
            g[c].max[s] = -INFINITY;
        }
    }
    flt8 F = flt8_make(f);
    double k = f->shift;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        unsigned bits = pass8(&F, 0xff, ld_i8(ts, i), ld_d8(v, i));
        if (bits == 0) continue;
        for (unsigned j = 0; j < 8; j++) {
            uint32_t key = ld_u32(keys, i + j);
            uint32_t slot = ((bits >> j) & 1) && key < n_keys ? key : n_keys;
            gacc_add(&g[j % GROUP_COPIES], slot, ld_f64(v, i + j), k);
        }
    }
    for (; i < n; i++) {
        double x = ld_f64(v, i);
        int64_t t = ld_i64(ts, i);
        uint32_t key = ld_u32(keys, i);
        if (t >= f->t_lo && t <= f->t_hi && x >= f->v_lo && x <= f->v_hi && key < n_keys)
            gacc_add(&g[0], key, x, k);
    }
    for (int c = 0; c < GROUP_COPIES; c++) {
        for (uint32_t s = 0; s < n_keys; s++) {
            if (g[c].n[s] == 0) continue;
            sdb_agg p = {g[c].n[s], g[c].sum[s], g[c].s1[s], g[c].s2[s], g[c].min[s], g[c].max[s]};
            merge(&accs[s], &p);
        }
    }
}

static void group_u32(const void *keys, const void *v, const void *ts, size_t n,
                      const sdb_filter *f, uint32_t n_keys, sdb_agg *accs)
{
    if (n_keys <= GROUP_LOCAL_KEYS) {
        group_local(keys, v, ts, n, f, n_keys, accs);
        return;
    }
    flt8 F = flt8_make(f);
    for (size_t i = 0; i < n; i += 8) {
        __mmask8 live = n - i >= 8 ? (__mmask8)0xff : tail_mask(n - i);
        __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
        __m512i t = _mm512_maskz_loadu_epi64(live, at(ts, i));
        for (unsigned bits = pass8(&F, live, t, x); bits != 0; bits &= bits - 1) {
            size_t r = i + (size_t)__builtin_ctz(bits);
            uint32_t key = ld_u32(keys, r);
            if (key < n_keys) sdb_agg_add(&accs[key], ld_f64(v, r), f->shift);
        }
    }
}

/* ---- series_f64 ----------------------------------------------------------
 * Segments are mostly in time order, so consecutive rows mostly share a
 * bucket. We keep the current bucket's offset range [b_lo, b_hi] (offset =
 * ts - t0, unsigned, as scalar.c divides it) and a vector accumulator for
 * it: a block of eight whose passing rows all fall in the range is added
 * without any division. Any other block flushes the accumulator and runs
 * row by row with scalar.c's division, and the bucket of its last passing
 * row becomes current. Either way each row lands where scalar.c puts it. */

typedef struct bucket {
    uint64_t b; /* current bucket; >= n_buckets means none */
    __m512i lo, hi;
} bucket;

static inline void bucket_set(bucket *B, uint64_t b, uint64_t w, uint32_t n_buckets)
{
    B->b = b;
    if (b >= n_buckets) {
        /* An empty range: every row is outside it. */
        B->lo = _mm512_set1_epi64(-1);
        B->hi = _mm512_setzero_si512();
        return;
    }
    uint64_t lo = b * w; /* <= some offset, so no overflow */
    uint64_t hi = lo + (w - 1) < lo ? UINT64_MAX : lo + (w - 1);
    B->lo = _mm512_set1_epi64((int64_t)lo);
    B->hi = _mm512_set1_epi64((int64_t)hi);
}

static void series_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                       int64_t t0, int64_t width, uint32_t n_buckets, sdb_agg *accs)
{
    flt8 F = flt8_make(f);
    __m512d k = _mm512_set1_pd(f->shift);
    __m512i t0v = _mm512_set1_epi64(t0);
    uint64_t w = (uint64_t)width;
    bucket B;
    bucket_set(&B, UINT64_MAX, w, n_buckets);
    acc8 a;
    acc8_init(&a);
    for (size_t i = 0; i < n; i += 8) {
        __mmask8 live = n - i >= 8 ? (__mmask8)0xff : tail_mask(n - i);
        __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
        __m512i t = _mm512_maskz_loadu_epi64(live, at(ts, i));
        __mmask8 m = pass8(&F, live, t, x);
        if (m == 0) continue;
        __m512i off = _mm512_sub_epi64(t, t0v);
        __mmask8 in = _mm512_mask_cmp_epu64_mask(m, off, B.lo, _MM_CMPINT_NLT);
        in = _mm512_mask_cmp_epu64_mask(in, off, B.hi, _MM_CMPINT_LE);
        if (in == m) {
            acc8_add(&a, m, x, k);
            continue;
        }
        if (B.b < n_buckets) acc8_merge(&accs[B.b], &a);
        acc8_init(&a);
        uint64_t b = UINT64_MAX;
        for (unsigned bits = m; bits != 0; bits &= bits - 1) {
            size_t r = i + (size_t)__builtin_ctz(bits);
            b = ((uint64_t)ld_i64(ts, r) - (uint64_t)t0) / w;
            if (b < n_buckets) sdb_agg_add(&accs[b], ld_f64(v, r), f->shift);
        }
        bucket_set(&B, b, w, n_buckets);
    }
    if (B.b < n_buckets) acc8_merge(&accs[B.b], &a);
}

/* ---- select_u64 ----------------------------------------------------------
 * Compress the passing hashes into the low lanes of a register and store
 * the whole register: vpcompressq to memory is microcoded and slow on some
 * cores (AMD Zen 4), the register form is not. The full store may write up
 * to seven lanes past the kept ones; they stay inside out because k <= i
 * and out has room for n. The tail stores only the kept lanes. */
static inline __attribute__((always_inline)) size_t
select_body(const void *hash, const void *v, const void *ts, size_t n, const sdb_filter *f,
            uint64_t *out, int use_ts)
{
    flt8 F = flt8_make(f);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 8) {
        int full = n - i >= 8;
        __mmask8 live = full ? (__mmask8)0xff : tail_mask(n - i);
        __m512i h = _mm512_maskz_loadu_epi64(live, at(hash, i));
        __m512d x = _mm512_maskz_loadu_pd(live, at(v, i));
        __mmask8 m = _mm512_mask_test_epi64_mask(pass8_at(&F, live, ts, i, x, use_ts), h, h);
        __m512i packed = _mm512_maskz_compress_epi64(m, h);
        unsigned kept = (unsigned)__builtin_popcount(m);
        if (full)
            _mm512_storeu_si512(out + k, packed);
        else
            _mm512_mask_storeu_epi64(out + k, tail_mask(kept), packed);
        k += kept;
    }
    return k;
}

static size_t select_u64(const void *hash, const void *v, const void *ts, size_t n,
                         const sdb_filter *f, uint64_t *out)
{
    return all_times(f) ? select_body(hash, v, ts, n, f, out, 0)
                        : select_body(hash, v, ts, n, f, out, 1);
}

/* ---- the pipeline's batch kernels: one body for both tables ----------- */

#define PIPE_W 8
#define PIPE_MOVEMASK(m) (unsigned)_mm512_movepi64_mask((__m512i)(m))
/* Compress in a register, then a plain store: a compress straight to
 * memory (vcompresspd m512) is microcoded on AMD Zen 4, this machine's
 * CPU, and made the percentile pass 2.5x slower than without it. */
#define PIPE_COMPRESS(dst, m, x) _mm512_storeu_pd((dst), _mm512_maskz_compress_pd((__mmask8)(m), (__m512d)(x)))
#include "pipe_body.h"
#define BITS_BW 64
#define BITS_PSHUFB(t, i) (bits_vb)_mm512_shuffle_epi8((__m512i)(t), (__m512i)(i))
#define BITS_MOVEMASK8(m) (uint64_t)_mm512_movepi8_mask((__m512i)(m))
#define BITS_LANES(b) (pipe_vi)_mm512_movm_epi64((__mmask8)(b))
#include "bits_body.h"
#define DEC_LOADU2(lo, hi) (dec_v32b)_mm256_loadu2_m128i((const __m128i_u *)(hi), (const __m128i_u *)(lo))
#define DEC_PSHUFB(x, i) (dec_v32b)_mm256_shuffle_epi8((__m256i)(x), (__m256i)(i))
#define DEC_WIN32_MAX 0
#define DEC_FMA(a, b, c) (dec_vd)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c))
#define DEC_CVTU32 1
#define DEC_I32TOD(x) (dec_vd)_mm512_cvtepi32_pd((__m256i)(x))
#define DEC_I32TO64(x) (dec_vi64)_mm512_cvtepi32_epi64((__m256i)(x))
#define DEC_MINU32(a, b) (dec_vu)_mm256_min_epu32((__m256i)(a), (__m256i)(b))
#include "dec_body.h"
#define PK_UNPACKLO8(a, b) (bits_vb)_mm512_unpacklo_epi8((__m512i)(a), (__m512i)(b))
#define PK_UNPACKHI8(a, b) (bits_vb)_mm512_unpackhi_epi8((__m512i)(a), (__m512i)(b))
#define PK_UNPACKLO16(a, b) (bits_vb)_mm512_unpacklo_epi16((__m512i)(a), (__m512i)(b))
#define PK_UNPACKHI16(a, b) (bits_vb)_mm512_unpackhi_epi16((__m512i)(a), (__m512i)(b))
#include "pkbits_body.h"
typedef int32_t scat_vi32 __attribute__((vector_size(32)));
#define SCAT_GATHER(p, i) (pipe_vd)_mm512_i32gather_pd((__m256i)(i), (p), 8)
#define SCAT_LANES32(b) (scat_vi32)_mm256_movm_epi32((__mmask8)(b))
#include "scatter_body.h"

static const sdb_kernels table = {
    .name = "avx512",
    .agg_f64 = agg_f64,
    .hist_f64 = hist_f64,
    .group_u32 = group_u32,
    .series_f64 = series_f64,
    .select_u64 = select_u64,
    .mask_f64 = pipe_mask_f64,
    .slot_agg = pipe_slot_agg,
    .slot_agg_nm = pipe_slot_agg_nm,
    .bits_lut8 = bits_lut8,
    .bits_agg = bits_agg,
    .bins_f64 = bits_bins_f64,
    .slot_hist = pipe_slot_hist,
    .unpack_u64 = dec_unpack_u64,
    .unpack_dec = dec_unpack_dec,
    .widen_f32 = dec_widen_f32,
    .agg_dec = dec_agg_dec,
    .unpack_ids = dec_unpack_ids,
    .bits_pk = bits_pk,
    .pct_count_f64 = pipe_pct_count_f64,
    .sel_f64 = pipe_sel_f64,
    .slot_scatter = slot_scatter,
    .slot_bins = slot_bins,
};

/* Compiled for the baseline ISA although the file is built with AVX-512
 * flags: a CPU without AVX must be able to call this and hear "no". libgcc's
 * __builtin_cpu_supports also checks, through XGETBV, that the OS saves the
 * ZMM and mask registers. */
__attribute__((target("no-avx")))
const sdb_kernels *sdb__kernels_avx512(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return &table;
    return NULL;
}
