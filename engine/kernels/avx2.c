/* The AVX2 kernels: scalar.c's semantics, four rows per vector.
 *
 * Invariant: counts, bins, n, min and max equal scalar.c's exactly; sums
 * differ only by the order of additions (several accumulators, lanes folded
 * at the end) and by fused multiply-add in s2. Every load is unaligned
 * (columns come straight from the LMDB map, only 2-byte aligned), every
 * tail that does not fill a vector runs the scalar formula, and nothing is
 * allocated: the histogram's sub-histograms live on the stack.
 *
 * Workload: segments of a few thousand to a few million rows, ts + v =
 * 16 bytes per row, scanned once per query; aggregation should run at
 * memory speed, so the loops do little more than compare, mask and add.
 *
 * Built with -mavx2 -mfma (Makefile, this file only). Nothing here runs
 * unless sdb__kernels_avx2() said the CPU can.
 */
#include "kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---- loads ---------------------------------------------------------------
 * Through __m256i_u, whose alignment is 1, so a column pointer that is only
 * 2-byte aligned is never converted to a double * (undefined behaviour). */

static inline __m256i ld_i4(const void *p, size_t i)
{
    return _mm256_loadu_si256((const __m256i_u *)((const char *)p + i * 8));
}

static inline __m256d ld_d4(const void *p, size_t i)
{
    return _mm256_castsi256_pd(ld_i4(p, i));
}

static inline double ld_f64(const void *p, size_t i)
{
    double x;
    memcpy(&x, (const char *)p + i * 8, 8);
    return x;
}

static inline int64_t ld_i64(const void *p, size_t i)
{
    int64_t x;
    memcpy(&x, (const char *)p + i * 8, 8);
    return x;
}

static inline uint64_t ld_u64(const void *p, size_t i)
{
    uint64_t x;
    memcpy(&x, (const char *)p + i * 8, 8);
    return x;
}

static inline uint32_t ld_u32(const void *p, size_t i)
{
    uint32_t x;
    memcpy(&x, (const char *)p + i * 4, 4);
    return x;
}

/* ---- the filter and one-row helpers (scalar.c's formulas) --------------- */

static inline int pass(const sdb_filter *f, int64_t t, double x)
{
    return t >= f->t_lo && t <= f->t_hi && x >= f->v_lo && x <= f->v_hi;
}

static inline void merge(sdb_agg *a, const sdb_agg *b)
{
    a->n += b->n;
    a->sum += b->sum;
    a->s1 += b->s1;
    a->s2 += b->s2;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

typedef struct flt4 {
    __m256i t_lo, t_hi;
    __m256d v_lo, v_hi;
} flt4;

static inline flt4 flt4_make(const sdb_filter *f)
{
    flt4 F = {_mm256_set1_epi64x(f->t_lo), _mm256_set1_epi64x(f->t_hi),
              _mm256_set1_pd(f->v_lo), _mm256_set1_pd(f->v_hi)};
    return F;
}

/* All-ones lanes where t_lo <= t <= t_hi and v_lo <= x <= v_hi. AVX2 has
 * only a signed greater-than for 64-bit integers, so the time test is
 * "neither t_lo > t nor t > t_hi". Ordered compares reject NaN, as
 * scalar's >= and <= do. */
static inline __m256d pass4(const flt4 *F, __m256i t, __m256d x)
{
    __m256i out = _mm256_or_si256(_mm256_cmpgt_epi64(F->t_lo, t), _mm256_cmpgt_epi64(t, F->t_hi));
    __m256d in = _mm256_and_pd(_mm256_cmp_pd(x, F->v_lo, _CMP_GE_OQ),
                               _mm256_cmp_pd(x, F->v_hi, _CMP_LE_OQ));
    return _mm256_andnot_pd(_mm256_castsi256_pd(out), in);
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

/* pass4 over rows i..i+3, reading ts only when use_ts. */
static inline __attribute__((always_inline)) __m256d
pass4_at(const flt4 *F, const void *ts, size_t i, __m256d x, int use_ts)
{
    if (use_ts) return pass4(F, ld_i4(ts, i), x);
    return _mm256_and_pd(_mm256_cmp_pd(x, F->v_lo, _CMP_GE_OQ), _mm256_cmp_pd(x, F->v_hi, _CMP_LE_OQ));
}

/* ---- vector partial aggregates ----------------------------------------- */

typedef struct acc4 {
    __m256i n; /* per lane, incremented by subtracting the all-ones mask */
    __m256d sum, s1, s2, min, max;
} acc4;

static inline void acc4_init(acc4 *a)
{
    a->n = _mm256_setzero_si256();
    a->sum = a->s1 = a->s2 = _mm256_setzero_pd();
    a->min = _mm256_set1_pd(INFINITY);
    a->max = _mm256_set1_pd(-INFINITY);
}

/* Rows outside m add 0 to the sums (and(m, .) rather than a multiply, so a
 * rejected inf or NaN cannot leak in) and +-inf to min/max. */
static inline void acc4_add(acc4 *a, __m256d m, __m256d x, __m256d k)
{
    __m256d d = _mm256_and_pd(m, _mm256_sub_pd(x, k));
    a->n = _mm256_sub_epi64(a->n, _mm256_castpd_si256(m));
    a->sum = _mm256_add_pd(a->sum, _mm256_and_pd(m, x));
    a->s1 = _mm256_add_pd(a->s1, d);
    a->s2 = _mm256_fmadd_pd(d, d, a->s2);
    a->min = _mm256_min_pd(a->min, _mm256_blendv_pd(_mm256_set1_pd(INFINITY), x, m));
    a->max = _mm256_max_pd(a->max, _mm256_blendv_pd(_mm256_set1_pd(-INFINITY), x, m));
}

/* Fold the four lanes of a into *out (accumulating). */
static inline void acc4_merge(sdb_agg *out, const acc4 *a)
{
    uint64_t n[4];
    double sum[4], s1[4], s2[4], mn[4], mx[4];
    _mm256_storeu_si256((__m256i_u *)n, a->n);
    _mm256_storeu_pd(sum, a->sum);
    _mm256_storeu_pd(s1, a->s1);
    _mm256_storeu_pd(s2, a->s2);
    _mm256_storeu_pd(mn, a->min);
    _mm256_storeu_pd(mx, a->max);
    for (int j = 0; j < 4; j++) {
        sdb_agg p = {n[j], sum[j], s1[j], s2[j], mn[j], mx[j]};
        merge(out, &p);
    }
}

/* ---- agg_f64 -------------------------------------------------------------
 * Two independent accumulators, eight rows per iteration: enough to hide
 * the add latency when the segment is already in cache; from memory the
 * loop waits on loads either way. */
static inline __attribute__((always_inline)) void
agg_body(const void *v, const void *ts, size_t n, const sdb_filter *f, sdb_agg *out, int use_ts)
{
    flt4 F = flt4_make(f);
    __m256d k = _mm256_set1_pd(f->shift);
    acc4 a0, a1;
    acc4_init(&a0);
    acc4_init(&a1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d x0 = ld_d4(v, i), x1 = ld_d4(v, i + 4);
        acc4_add(&a0, pass4_at(&F, ts, i, x0, use_ts), x0, k);
        acc4_add(&a1, pass4_at(&F, ts, i + 4, x1, use_ts), x1, k);
    }
    if (i + 4 <= n) {
        __m256d x0 = ld_d4(v, i);
        acc4_add(&a0, pass4_at(&F, ts, i, x0, use_ts), x0, k);
        i += 4;
    }
    sdb__agg_empty(out);
    acc4_merge(out, &a0);
    acc4_merge(out, &a1);
    for (; i < n; i++) {
        double x = ld_f64(v, i);
        if (pass(f, use_ts ? ld_i64(ts, i) : 0, x)) sdb_agg_add(out, x, f->shift);
    }
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
 * The bin index is computed for four rows at once, as a double, with
 * scalar.c's formula: a true division, floor, then the clamps. Rows the
 * filter rejects get the index bins + 2, a slot that is never copied out.
 * Blocks the filter rejects entirely are skipped. Counting goes row by
 * row into four sub-histograms, one per lane, so
 * runs of equal values (pass/fail scores land in two bins) do not wait on
 * the previous increment of the same counter (store-to-load forwarding). */

#define HIST_SUBS 4
#define HIST_LOCAL_BINS 1024 /* larger histograms count straight into counts */
#define HIST_CHUNK ((size_t)1 << 30) /* rows per flush: each u32 sub-count <= 2^28 */

typedef struct histv {
    __m256d lo, hi, width, nbins, last, under, over, skip;
} histv;

static inline __m256d hist_index4(const histv *H, __m256d m, __m256d x)
{
    __m256d q = _mm256_round_pd(_mm256_div_pd(_mm256_sub_pd(x, H->lo), H->width),
                                _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    /* q is NaN when width is 0 (lo == hi == x): not valid, so the last bin. */
    __m256d valid = _mm256_and_pd(_mm256_cmp_pd(q, _mm256_setzero_pd(), _CMP_GE_OQ),
                                  _mm256_cmp_pd(q, H->nbins, _CMP_LT_OQ));
    __m256d b = _mm256_blendv_pd(H->last, q, valid);
    /* Scalar tests x < lo first; applying it last makes it win likewise. */
    b = _mm256_blendv_pd(b, H->over, _mm256_cmp_pd(x, H->hi, _CMP_GT_OQ));
    b = _mm256_blendv_pd(b, H->under, _mm256_cmp_pd(x, H->lo, _CMP_LT_OQ));
    return _mm256_blendv_pd(H->skip, b, m);
}

static inline void hist_one(const sdb_filter *f, double x, int64_t t, double lo, double hi,
                            double width, uint32_t bins, uint64_t *counts)
{
    if (!pass(f, t, x)) return;
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
    flt4 F = flt4_make(f);
    histv H = {_mm256_set1_pd(lo),
               _mm256_set1_pd(hi),
               _mm256_set1_pd(width),
               _mm256_set1_pd((double)bins),
               _mm256_set1_pd((double)bins - 1),
               _mm256_set1_pd((double)bins),
               _mm256_set1_pd((double)bins + 1),
               _mm256_set1_pd((double)bins + 2)};
    size_t i = 0;
    if (bins >= 1 && bins <= HIST_LOCAL_BINS) {
        uint32_t sub[HIST_SUBS][HIST_LOCAL_BINS + 3];
        while (i + 4 <= n) {
            size_t end = n - i > HIST_CHUNK ? i + HIST_CHUNK : n;
            for (int s = 0; s < HIST_SUBS; s++) memset(sub[s], 0, (bins + 3) * sizeof(uint32_t));
            for (; i + 4 <= end; i += 4) {
                __m256d x = ld_d4(v, i);
                __m256d m = pass4_at(&F, ts, i, x, use_ts);
                /* Time ranges reject whole runs of rows: skip them without
                 * queueing four increments of the spare slot. */
                if (_mm256_movemask_pd(m) == 0) continue;
                __m128i bi = _mm256_cvttpd_epi32(hist_index4(&H, m, x));
                sub[0][_mm_cvtsi128_si32(bi)]++;
                sub[1][_mm_extract_epi32(bi, 1)]++;
                sub[2][_mm_extract_epi32(bi, 2)]++;
                sub[3][_mm_extract_epi32(bi, 3)]++;
            }
            for (uint32_t b = 0; b < bins + 2; b++)
                counts[b] += (uint64_t)sub[0][b] + sub[1][b] + sub[2][b] + sub[3][b];
        }
    } else if (bins > HIST_LOCAL_BINS) {
        for (; i + 4 <= n; i += 4) {
            __m256d x = ld_d4(v, i);
            __m256d m = pass4_at(&F, ts, i, x, use_ts);
            unsigned bits = (unsigned)_mm256_movemask_pd(m);
            if (bits == 0) continue;
            double b[4];
            _mm256_storeu_pd(b, hist_index4(&H, m, x));
            for (; bits != 0; bits &= bits - 1) counts[(uint64_t)b[__builtin_ctz(bits)]]++;
        }
    }
    for (; i < n; i++)
        hist_one(f, ld_f64(v, i), use_ts ? ld_i64(ts, i) : 0, lo, hi, width, bins, counts);
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
 * The filter runs four rows at a time. With few keys (the common case:
 * models, sources, data types) the rows go, without a branch, into four
 * copies of the accumulators on the stack, one per lane and laid out one
 * array per field: rows that share a key then rarely wait on each other's
 * stores, and no store is a merged 16-byte one that a later 8-byte load
 * must pick apart. A rejected row, or a key >= n_keys, goes to the spare
 * slot n_keys, which is never copied out. With many keys, only the rows
 * that pass are added, one by one, straight into accs. */

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
    flt4 F = flt4_make(f);
    double k = f->shift;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned bits = (unsigned)_mm256_movemask_pd(pass4(&F, ld_i4(ts, i), ld_d4(v, i)));
        if (bits == 0) continue;
        for (unsigned j = 0; j < 4; j++) {
            uint32_t key = ld_u32(keys, i + j);
            uint32_t slot = ((bits >> j) & 1) && key < n_keys ? key : n_keys;
            gacc_add(&g[j], slot, ld_f64(v, i + j), k);
        }
    }
    for (; i < n; i++) {
        double x = ld_f64(v, i);
        uint32_t key = ld_u32(keys, i);
        if (pass(f, ld_i64(ts, i), x) && key < n_keys) gacc_add(&g[0], key, x, k);
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
    flt4 F = flt4_make(f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d x = ld_d4(v, i);
        unsigned bits = (unsigned)_mm256_movemask_pd(pass4(&F, ld_i4(ts, i), x));
        for (; bits != 0; bits &= bits - 1) {
            size_t r = i + (size_t)__builtin_ctz(bits);
            uint32_t key = ld_u32(keys, r);
            if (key < n_keys) sdb_agg_add(&accs[key], ld_f64(v, r), f->shift);
        }
    }
    for (; i < n; i++) {
        double x = ld_f64(v, i);
        if (!pass(f, ld_i64(ts, i), x)) continue;
        uint32_t key = ld_u32(keys, i);
        if (key < n_keys) sdb_agg_add(&accs[key], x, f->shift);
    }
}

/* ---- series_f64 ----------------------------------------------------------
 * Segments are mostly in time order, so consecutive rows mostly share a
 * bucket. We keep the current bucket's unsigned offset range [b_lo, b_hi]
 * (offset = ts - t0) and a vector accumulator for it: a block of four whose
 * passing rows all fall in the range is added without any division. Any
 * other block flushes the accumulator and runs row by row with scalar.c's
 * division, and the bucket of its last passing row becomes current. Either
 * way each row lands in the bucket scalar.c would pick. */

#define SIGN64 ((int64_t)INT64_MIN)

typedef struct bucket {
    uint64_t b; /* current bucket; >= n_buckets means none */
    __m256i lo, hi; /* its offset range, sign-flipped for signed compares */
} bucket;

static inline void bucket_set(bucket *B, uint64_t b, uint64_t w, uint32_t n_buckets)
{
    B->b = b;
    if (b >= n_buckets) {
        /* An empty range: every row is outside it. */
        B->lo = _mm256_set1_epi64x(INT64_MAX);
        B->hi = _mm256_set1_epi64x(INT64_MIN);
        return;
    }
    uint64_t lo = b * w; /* <= some offset, so no overflow */
    uint64_t hi = lo + (w - 1) < lo ? UINT64_MAX : lo + (w - 1);
    B->lo = _mm256_set1_epi64x((int64_t)(lo ^ (uint64_t)SIGN64));
    B->hi = _mm256_set1_epi64x((int64_t)(hi ^ (uint64_t)SIGN64));
}

static void series_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                       int64_t t0, int64_t width, uint32_t n_buckets, sdb_agg *accs)
{
    flt4 F = flt4_make(f);
    __m256d k = _mm256_set1_pd(f->shift);
    /* offset ^ sign = (t - t0) ^ sign = t - (t0 ^ sign), all wrapping. */
    __m256i t0s = _mm256_set1_epi64x((int64_t)((uint64_t)t0 ^ (uint64_t)SIGN64));
    uint64_t w = (uint64_t)width;
    bucket B;
    bucket_set(&B, UINT64_MAX, w, n_buckets);
    acc4 a;
    acc4_init(&a);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i t = ld_i4(ts, i);
        __m256d x = ld_d4(v, i);
        __m256d m = pass4(&F, t, x);
        unsigned bits = (unsigned)_mm256_movemask_pd(m);
        if (bits == 0) continue;
        __m256i off = _mm256_sub_epi64(t, t0s);
        __m256i out = _mm256_or_si256(_mm256_cmpgt_epi64(B.lo, off), _mm256_cmpgt_epi64(off, B.hi));
        if (_mm256_movemask_pd(_mm256_and_pd(m, _mm256_castsi256_pd(out))) == 0) {
            acc4_add(&a, m, x, k);
            continue;
        }
        if (B.b < n_buckets) acc4_merge(&accs[B.b], &a);
        acc4_init(&a);
        uint64_t b = UINT64_MAX;
        for (; bits != 0; bits &= bits - 1) {
            size_t r = i + (size_t)__builtin_ctz(bits);
            b = ((uint64_t)ld_i64(ts, r) - (uint64_t)t0) / w;
            if (b < n_buckets) sdb_agg_add(&accs[b], ld_f64(v, r), f->shift);
        }
        bucket_set(&B, b, w, n_buckets);
    }
    if (B.b < n_buckets) acc4_merge(&accs[B.b], &a);
    for (; i < n; i++) {
        double x = ld_f64(v, i);
        int64_t t = ld_i64(ts, i);
        if (!pass(f, t, x)) continue;
        uint64_t b = ((uint64_t)t - (uint64_t)t0) / w;
        if (b < n_buckets) sdb_agg_add(&accs[b], x, f->shift);
    }
}

/* ---- select_u64 ----------------------------------------------------------
 * Left-pack the passing hashes of four rows with one permute (a 16-entry
 * table of 32-bit lane orders), store all four lanes and advance by the
 * number kept. The store may write up to three lanes past the kept ones;
 * they stay inside out because k <= i and out has room for n. */

#define P2(a, b) (2 * (a)), (2 * (a) + 1), (2 * (b)), (2 * (b) + 1)
static const int32_t pack_lut[16][8] = {
    {P2(0, 0), P2(0, 0)}, {P2(0, 0), P2(0, 0)}, {P2(1, 0), P2(0, 0)}, {P2(0, 1), P2(0, 0)},
    {P2(2, 0), P2(0, 0)}, {P2(0, 2), P2(0, 0)}, {P2(1, 2), P2(0, 0)}, {P2(0, 1), P2(2, 0)},
    {P2(3, 0), P2(0, 0)}, {P2(0, 3), P2(0, 0)}, {P2(1, 3), P2(0, 0)}, {P2(0, 1), P2(3, 0)},
    {P2(2, 3), P2(0, 0)}, {P2(0, 2), P2(3, 0)}, {P2(1, 2), P2(3, 0)}, {P2(0, 1), P2(2, 3)},
};
#undef P2

static inline __attribute__((always_inline)) size_t
select_body(const void *hash, const void *v, const void *ts, size_t n, const sdb_filter *f,
            uint64_t *out, int use_ts)
{
    flt4 F = flt4_make(f);
    size_t k = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i h = ld_i4(hash, i);
        __m256d m = pass4_at(&F, ts, i, ld_d4(v, i), use_ts);
        m = _mm256_andnot_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(h, _mm256_setzero_si256())), m);
        unsigned bits = (unsigned)_mm256_movemask_pd(m);
        __m256i perm = _mm256_loadu_si256((const __m256i_u *)pack_lut[bits]);
        _mm256_storeu_si256((__m256i_u *)(out + k), _mm256_permutevar8x32_epi32(h, perm));
        k += (size_t)__builtin_popcount(bits);
    }
    for (; i < n; i++) {
        uint64_t h = ld_u64(hash, i);
        if (h != 0 && pass(f, use_ts ? ld_i64(ts, i) : 0, ld_f64(v, i))) out[k++] = h;
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

#define PIPE_W 4
#define PIPE_MOVEMASK(m) (unsigned)_mm256_movemask_pd((__m256d)(m))
/* AVX2 has no compress: the lanes of mask m (4 bits) moved to the front
 * by a permutation of 32-bit halves from a table, then one full store. */
static const int32_t pipe_compress_perm[16][8] = {
    {0, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0}, {2, 3, 0, 0, 0, 0, 0, 0},
    {0, 1, 2, 3, 0, 0, 0, 0}, {4, 5, 0, 0, 0, 0, 0, 0}, {0, 1, 4, 5, 0, 0, 0, 0},
    {2, 3, 4, 5, 0, 0, 0, 0}, {0, 1, 2, 3, 4, 5, 0, 0}, {6, 7, 0, 0, 0, 0, 0, 0},
    {0, 1, 6, 7, 0, 0, 0, 0}, {2, 3, 6, 7, 0, 0, 0, 0}, {0, 1, 2, 3, 6, 7, 0, 0},
    {4, 5, 6, 7, 0, 0, 0, 0}, {0, 1, 4, 5, 6, 7, 0, 0}, {2, 3, 4, 5, 6, 7, 0, 0},
    {0, 1, 2, 3, 4, 5, 6, 7},
};
#define PIPE_COMPRESS(dst, m, x)                                                                 \
    _mm256_storeu_pd((dst), _mm256_castps_pd(_mm256_permutevar8x32_ps(                            \
                                _mm256_castpd_ps((__m256d)(x)),                                   \
                                _mm256_loadu_si256((const __m256i *)pipe_compress_perm[(m)]))))
#include "pipe_body.h"
#define BITS_BW 32
#define BITS_PSHUFB(t, i) (bits_vb)_mm256_shuffle_epi8((__m256i)(t), (__m256i)(i))
#define BITS_MOVEMASK8(m) (uint64_t)(uint32_t)_mm256_movemask_epi8((__m256i)(m))
/* Lane masks of the 16 nibbles: one load instead of a broadcast, an and
 * and a compare. */
static const int64_t bits_nib[16][4] __attribute__((aligned(32))) = {
#define BN(b) {-(int64_t)((b) & 1), -(int64_t)((b) >> 1 & 1), -(int64_t)((b) >> 2 & 1), -(int64_t)((b) >> 3 & 1)}
    BN(0), BN(1), BN(2), BN(3), BN(4), BN(5), BN(6), BN(7),
    BN(8), BN(9), BN(10), BN(11), BN(12), BN(13), BN(14), BN(15)
#undef BN
};
#define BITS_LANES(b) (*(const pipe_vi *)bits_nib[(b)])
#include "bits_body.h"
#define DEC_LOADU2(lo, hi) (dec_v32b)_mm256_loadu2_m128i((const __m128i_u *)(hi), (const __m128i_u *)(lo))
#define DEC_PSHUFB(x, i) (dec_v32b)_mm256_shuffle_epi8((__m256i)(x), (__m256i)(i))
#define DEC_WIN32_MAX 25
#define DEC_FMA(a, b, c) (dec_vd)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c))
#define DEC_CVTU32 0
#define DEC_I32TOD(x) (dec_vd)_mm256_cvtepi32_pd((__m128i)(x))
#define DEC_I32TO64(x) (dec_vi64)_mm256_cvtepi32_epi64((__m128i)(x))
#define DEC_MINU32(a, b) (dec_vu)_mm_min_epu32((__m128i)(a), (__m128i)(b))
#include "dec_body.h"
#define PK_UNPACKLO8(a, b) (bits_vb)_mm256_unpacklo_epi8((__m256i)(a), (__m256i)(b))
#define PK_UNPACKHI8(a, b) (bits_vb)_mm256_unpackhi_epi8((__m256i)(a), (__m256i)(b))
#define PK_UNPACKLO16(a, b) (bits_vb)_mm256_unpacklo_epi16((__m256i)(a), (__m256i)(b))
#define PK_UNPACKHI16(a, b) (bits_vb)_mm256_unpackhi_epi16((__m256i)(a), (__m256i)(b))
#include "pkbits_body.h"
typedef int32_t scat_vi32 __attribute__((vector_size(16)));
#define SCAT_GATHER(p, i) (pipe_vd)_mm256_i32gather_pd((p), (__m128i)(i), 8)
static const int32_t scat_nib[16][4] __attribute__((aligned(16))) = {
#define SN(b) {-((b) & 1), -((b) >> 1 & 1), -((b) >> 2 & 1), -((b) >> 3 & 1)}
    SN(0), SN(1), SN(2), SN(3), SN(4), SN(5), SN(6), SN(7),
    SN(8), SN(9), SN(10), SN(11), SN(12), SN(13), SN(14), SN(15)
#undef SN
};
#define SCAT_LANES32(b) (*(const scat_vi32 *)scat_nib[(b)])
#include "scatter_body.h"

static const sdb_kernels table = {
    .name = "avx2",
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

/* Compiled for the baseline ISA although the file is built with -mavx2: a
 * CPU without AVX must be able to call this and hear "no". libgcc's
 * __builtin_cpu_supports also checks, through XGETBV, that the OS saves the
 * YMM registers, so a CPU that has AVX2 under an OS that does not enable it
 * reports no AVX2. */
__attribute__((target("no-avx")))
const sdb_kernels *sdb__kernels_avx2(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &table;
    return NULL;
}
