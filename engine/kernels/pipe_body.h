/* The query pipeline's batch kernels, one body for every SIMD table.
 *
 * zstd's pattern: this header is included by avx2.c and avx512.c, each
 * compiled with its own ISA flags (Makefile), after defining
 *   PIPE_W            lanes of a vector of doubles (4 or 8)
 *   PIPE_MOVEMASK(m)  the sign bits of a PIPE_W x int64 mask vector, as an
 *                     unsigned (movemask_pd, movepi64_mask)
 *   PIPE_COMPRESS(d, m, x)  the lanes of x whose bit is set in m, packed to
 *                     d[0..popcount(m)); may write up to PIPE_W doubles at d
 * The vectors are GCC vector extensions, so the compares below become
 * vcmppd/vpcmpq of the includer's width; nothing here names an ISA.
 *
 * Semantics are scalar.c's (the definition of correct, see kernels.h);
 * counts, bins, n, min and max must match it exactly, sums within
 * rounding. Loads go through memcpy: columns are only 2-byte aligned.
 */
#ifndef PIPE_W
#error "define PIPE_W and PIPE_MOVEMASK before including pipe_body.h"
#endif

typedef double pipe_vd __attribute__((vector_size(8 * PIPE_W)));
typedef int64_t pipe_vi __attribute__((vector_size(8 * PIPE_W)));

static inline pipe_vd pipe_ldd(const void *p, size_t i)
{
    pipe_vd x;
    memcpy(&x, (const char *)p + 8 * i, sizeof x);
    return x;
}

static inline pipe_vi pipe_ldi(const void *p, size_t i)
{
    pipe_vi x;
    memcpy(&x, (const char *)p + 8 * i, sizeof x);
    return x;
}

static inline double pipe_ld1(const void *p, size_t i)
{
    double x;
    memcpy(&x, (const char *)p + 8 * i, 8);
    return x;
}

/* 64 rows per output word, PIPE_W per compare. A filter without a time
 * range (a segment wholly inside the query's) never loads ts. */
static inline __attribute__((always_inline)) void
pipe_mask_body(const void *v, const void *ts, size_t n, const sdb_filter *f, uint64_t *bits,
               int use_ts)
{
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        uint64_t word = 0;
        for (size_t j = 0; j < 64; j += PIPE_W) {
            pipe_vd x = pipe_ldd(v, i + j);
            pipe_vi m = (x >= f->v_lo) & (x <= f->v_hi);
            if (use_ts) {
                pipe_vi t = pipe_ldi(ts, i + j);
                m &= (t >= f->t_lo) & (t <= f->t_hi);
            }
            word |= (uint64_t)PIPE_MOVEMASK(m) << j;
        }
        bits[w] = word;
    }
    if (i < n) {
        uint64_t word = 0;
        for (size_t j = 0; i + j < n; j++) {
            double x = pipe_ld1(v, i + j);
            int64_t t = 0;
            if (use_ts) memcpy(&t, (const char *)ts + 8 * (i + j), 8);
            int ok = x >= f->v_lo && x <= f->v_hi && (!use_ts || (t >= f->t_lo && t <= f->t_hi));
            word |= (uint64_t)ok << j;
        }
        bits[w] = word;
    }
}

static void pipe_mask_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                          uint64_t *bits)
{
    if (f->t_lo == INT64_MIN && f->t_hi == INT64_MAX)
        pipe_mask_body(v, ts, n, f, bits, 0);
    else
        pipe_mask_body(v, ts, n, f, bits, 1);
}

/* One slot for every row (the common case: no group key varies inside the
 * segment) keeps the accumulator in registers, two chains deep so that
 * the adds of consecutive rows do not wait on each other; several slots
 * update memory row by row (the slot of a row is data, so there is no
 * vector form short of conflict detection). */
static void pipe_slot_agg(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                          sdb_slot *acc)
{
    if (!slot) {
        sdb_slot *a = acc;
        if (n == 0) return;
        if (a->n == 0) a->k = pipe_ld1(v, idx ? idx[0] : 0);
        double k = a->k, sum[2] = {0, 0}, s1[2] = {0, 0}, s2[2] = {0, 0};
        double mn = a->min, mx = a->max;
        size_t j = 0;
        for (; j + 2 <= n; j += 2) {
            for (int c = 0; c < 2; c++) {
                double x = pipe_ld1(v, idx ? idx[j + c] : j + c), d = x - k;
                sum[c] += x;
                s1[c] += d;
                s2[c] += d * d;
                mn = x < mn ? x : mn;
                mx = x > mx ? x : mx;
            }
        }
        for (; j < n; j++) {
            double x = pipe_ld1(v, idx ? idx[j] : j), d = x - k;
            sum[0] += x;
            s1[0] += d;
            s2[0] += d * d;
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
        }
        a->n += n;
        a->count += n;
        a->sum += sum[0] + sum[1];
        a->s1 += s1[0] + s1[1];
        a->s2 += s2[0] + s2[1];
        a->min = mn;
        a->max = mx;
        return;
    }
    for (size_t j = 0; j < n; j++) {
        sdb_slot_add(&acc[slot[j]], pipe_ld1(v, idx ? idx[j] : j));
    }
}

/* slot_agg without s1, s2 and k (kernels.h). One slot: two chains in
 * registers; several: row by row, five fields instead of eight. */
static void pipe_slot_agg_nm(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                             sdb_slot *acc)
{
    if (!slot) {
        sdb_slot *a = acc;
        double sum[2] = {0, 0}, mn = a->min, mx = a->max;
        size_t j = 0;
        for (; j + 2 <= n; j += 2)
            for (int c = 0; c < 2; c++) {
                double x = pipe_ld1(v, idx ? idx[j + c] : j + c);
                sum[c] += x;
                mn = x < mn ? x : mn;
                mx = x > mx ? x : mx;
            }
        for (; j < n; j++) {
            double x = pipe_ld1(v, idx ? idx[j] : j);
            sum[0] += x;
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
        }
        a->n += n;
        a->count += n;
        a->sum += sum[0] + sum[1];
        a->min = mn;
        a->max = mx;
        return;
    }
    for (size_t j = 0; j < n; j++) sdb_slot_add_nm(&acc[slot[j]], pipe_ld1(v, idx ? idx[j] : j));
}

/* scalar.c's bin formula, row by row: the bounds and the counters of a row
 * depend on its slot. */
static void pipe_slot_hist(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                           const double *lo, const double *hi, const double *width,
                           int per_group, uint32_t bins, uint64_t *counts)
{
    const size_t stride = (size_t)bins + 2;
    for (size_t j = 0; j < n; j++) {
        uint32_t g = slot ? slot[j] : 0, b = per_group ? g : 0;
        double x = pipe_ld1(v, idx ? idx[j] : j);
        uint64_t *c = counts + (size_t)g * stride;
        if (x < lo[b]) {
            c[bins]++;
        } else if (x > hi[b]) {
            c[bins + 1]++;
        } else {
            double q = floor((x - lo[b]) / width[b]);
            uint32_t at = (q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1;
            c[at]++;
        }
    }
}

/* ---- exact percentiles ---------------------------------------------- */

/* scalar.c's pct_count_f64, PIPE_W values a step: two compares an
 * interval into lane counters (a true compare is -1, so subtracting
 * counts), the intervals spelled out so that every counter stays in a
 * register, and each kept interval's lanes packed out by PIPE_COMPRESS
 * (no branch on the data: 5-10% of values are inside an interval for
 * p50/p90/p99 at 10M, so a branch per vector mispredicted often). */
static void pipe_pct_count_f64(const void *v, size_t n, const double *lo, const double *hi,
                               unsigned keep, size_t cap, uint64_t *below, uint64_t *upto,
                               uint64_t *got, double *out)
{
    const pipe_vd l0 = (pipe_vd){0} + lo[0], l1 = (pipe_vd){0} + lo[1], l2 = (pipe_vd){0} + lo[2],
                  l3 = (pipe_vd){0} + lo[3];
    const pipe_vd h0 = (pipe_vd){0} + hi[0], h1 = (pipe_vd){0} + hi[1], h2 = (pipe_vd){0} + hi[2],
                  h3 = (pipe_vd){0} + hi[3];
    /* a kept interval's mask: all ones */
    const pipe_vi k0 = (pipe_vi){0} - (int64_t)(keep & 1), k1 = (pipe_vi){0} - (int64_t)(keep >> 1 & 1),
                  k2 = (pipe_vi){0} - (int64_t)(keep >> 2 & 1), k3 = (pipe_vi){0} - (int64_t)(keep >> 3 & 1);
    pipe_vi a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    size_t g[SDB_PCT_IV] = {got[0], got[1], got[2], got[3]};
    size_t i = 0;
    for (; i + PIPE_W <= n; i += PIPE_W) {
        pipe_vd x = pipe_ldd(v, i);
        pipe_vi c0 = x < l0, c1 = x < l1, c2 = x < l2, c3 = x < l3;
        pipe_vi d0 = x <= h0, d1 = x <= h1, d2 = x <= h2, d3 = x <= h3;
        a0 -= c0, a1 -= c1, a2 -= c2, a3 -= c3;
        b0 -= d0, b1 -= d1, b2 -= d2, b3 -= d3;
        unsigned m[SDB_PCT_IV] = {PIPE_MOVEMASK(d0 & ~c0 & k0), PIPE_MOVEMASK(d1 & ~c1 & k1),
                                  PIPE_MOVEMASK(d2 & ~c2 & k2), PIPE_MOVEMASK(d3 & ~c3 & k3)};
        for (uint32_t j = 0; j < SDB_PCT_IV; j++) {
            /* an interval not kept (unused, or a pile) stores nothing: a
             * branch the same way every time, where the stores of zero
             * lanes were 29% of this kernel in a 10M pct query */
            if (!(keep >> j & 1)) continue;
            if (g[j] + PIPE_W <= cap) {
                PIPE_COMPRESS(out + j * cap + g[j], m[j], x);
            } else {
                /* near the end of the room: lane by lane, within it */
                size_t at = g[j];
                for (unsigned mj = m[j]; mj; mj &= mj - 1, at++)
                    if (at < cap) out[j * cap + at] = x[__builtin_ctz(mj)];
            }
            g[j] += (size_t)__builtin_popcount(m[j]);
        }
    }
    for (int k = 0; k < PIPE_W; k++) {
        below[0] += (uint64_t)a0[k], below[1] += (uint64_t)a1[k];
        below[2] += (uint64_t)a2[k], below[3] += (uint64_t)a3[k];
        upto[0] += (uint64_t)b0[k], upto[1] += (uint64_t)b1[k];
        upto[2] += (uint64_t)b2[k], upto[3] += (uint64_t)b3[k];
    }
    for (uint32_t j = 0; j < SDB_PCT_IV; j++) got[j] = g[j];
    for (; i < n; i++) sdb_pct_count1(pipe_ld1(v, i), lo, hi, keep, cap, below, upto, got, out);
}

/* ---- values of the selected rows ------------------------------------ */

/* scalar.c's sel_f64, PIPE_W rows a step: each step's bits of the
 * selection word packed out by PIPE_COMPRESS at out + k (within out[0..n):
 * k <= i), no branch on the data; a word with no bit set is skipped (a
 * sparse selection: a property filter passing few rows of a batch). */
static size_t pipe_sel_f64(const void *v, const uint64_t *bits, size_t n, double *out)
{
    size_t i = 0, k = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t w = bits[i / 64];
        if (!w) continue;
        for (size_t j = 0; j < 64; j += PIPE_W) {
            unsigned m = (unsigned)(w >> j) & ((1u << PIPE_W) - 1);
            PIPE_COMPRESS(out + k, m, pipe_ldd(v, i + j));
            k += (size_t)__builtin_popcount(m);
        }
    }
    for (; i < n; i++) {
        memcpy(&out[k], (const char *)v + 8 * i, 8);
        k += bits[i / 64] >> (i % 64) & 1;
    }
    return k;
}
