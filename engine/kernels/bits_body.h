/* Kernels over selection bitmaps, one body for every SIMD table.
 *
 * A vectorized engine keeps a batch's selection as a bitmap (bit i: row i
 * passes) as long as it can: turning it into a list of row indexes costs a
 * store a row, and every later stage then gathers through the list. These
 * two kernels let the pipeline (engine/exec.c) stay on the bitmap for the
 * common dashboard aggregate, stats of rows grouped by nothing or by one
 * low-cardinality column:
 *   - bits_lut8 ANDs a byte column's membership (a 256-bit set of byte
 *     values: type/source codes, one-byte dictionary ids) into a bitmap,
 *     32 or 64 rows per step with two in-lane byte shuffles (the set's
 *     byte, then the bit in it), instead of a table load per row;
 *   - agg_bits adds the values of the set rows to one accumulator with
 *     masked vector operations, so a group-by over G values is G passes
 *     over the batch's values (in L1) with no per-row scatter.
 * On value.model.stats.frequent (10M scores) the per-row path spent 37%
 * in slot_agg, 18% mapping ids to groups and most of the rest building
 * the index list (perf record of bench_query).
 *
 * zstd's pattern: included by avx2.c and avx512.c after pipe_body.h (whose
 * pipe_vd/pipe_vi vectors and PIPE_MOVEMASK it uses), each defining
 *   BITS_BW            bytes of a byte vector (32 or 64)
 *   BITS_PSHUFB(t, i)  per-16-byte-lane byte shuffle (vpshufb)
 *   BITS_MOVEMASK8(m)  the sign bits of a BITS_BW x int8 mask, as a uint64_t
 *   BITS_LANES(b)      a pipe_vi with lane l all ones where bit l of b is set
 * Semantics are scalar.c's (kernels.h): bits exactly, count, n, min and
 * max exactly, sums within rounding.
 */
#ifndef BITS_BW
#error "define BITS_BW, BITS_PSHUFB, BITS_MOVEMASK8 and BITS_LANES before including bits_body.h"
#endif

typedef uint8_t bits_vb __attribute__((vector_size(BITS_BW)));
typedef int8_t bits_vsb __attribute__((vector_size(BITS_BW)));

static inline bits_vb bits_ldb(const void *p)
{
    bits_vb x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* The 16 bytes at p repeated in every 16-byte lane. */
static inline bits_vb bits_rep16(const uint8_t *p)
{
    bits_vb x;
    /* Whole lanes (a broadcast), not a loop of bytes: the kernels build
     * their tables on every call, once a batch and filter. */
    for (int l = 0; l < BITS_BW; l += 16) memcpy((uint8_t *)&x + l, p, 16);
    return x;
}

static const uint8_t bits_pow2[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

/* Bit l: whether byte l of x is in the 256-bit set whose two halves are
 * t0 and t1 (bits_rep16 of set and set + 16); p2 is bits_rep16(bits_pow2).
 * The callers build the three tables once, outside their loops (built
 * here, the byte loops of bits_rep16 ran for every 64 rows). */
static inline uint64_t bits_set_word(bits_vb x, bits_vb t0, bits_vb t1, bits_vb p2)
{
    bits_vb hi5 = x >> 3;                          /* the set's byte: 0..31 */
    bits_vb lo = BITS_PSHUFB(t0, hi5 & 15), hi = BITS_PSHUFB(t1, hi5 & 15);
    bits_vb up = (bits_vb)((hi5 & 16) != 0);       /* -1 where byte >= 16 */
    bits_vb byte = (lo & ~up) | (hi & up);
    bits_vb bit = BITS_PSHUFB(p2, x & 7);
    return BITS_MOVEMASK8((bits_vsb)((byte & bit) != 0));
}

static void bits_lut8(const uint8_t *col, size_t n, const uint8_t *set, const uint64_t *in,
                      uint64_t *out)
{
    const bits_vb t0 = bits_rep16(set), t1 = bits_rep16(set + 16), p2 = bits_rep16(bits_pow2);
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        if (!in[w]) {
            out[w] = 0;
            continue;
        }
        uint64_t word = 0;
        for (int j = 0; j < 64; j += BITS_BW) word |= bits_set_word(bits_ldb(col + i + j), t0, t1, p2) << j;
        out[w] = in[w] & word;
    }
    if (i < n) {
        uint64_t word = 0;
        for (size_t j = 0; i + j < n; j++) {
            uint8_t b = col[i + j];
            word |= (uint64_t)(set[b >> 3] >> (b & 7) & 1) << j;
        }
        out[w] = in[w] & word;
    }
}

/* Lane l of a mask vector: -1 when bit l of b (< 2^PIPE_W) is set. */
static inline pipe_vi bits_lanes(uint64_t b)
{
    return BITS_LANES(b);
}

static inline pipe_vd bits_pick(pipe_vi m, pipe_vd a, pipe_vd b) /* m ? a : b */
{
    return (pipe_vd)(((pipe_vi)a & m) | ((pipe_vi)b & ~m));
}

static void bits_agg(const void *v, const uint64_t *bits, size_t n, int moments, sdb_slot *acc)
{
    size_t nw = (n + 63) / 64;
    uint64_t cnt = 0;
    size_t first = n;
    for (size_t w = 0; w < nw; w++) {
        cnt += (uint64_t)__builtin_popcountll(bits[w]);
        if (first == n && bits[w]) first = w * 64 + (size_t)__builtin_ctzll(bits[w]);
    }
    if (!cnt) return;
    if (acc->n == 0 && moments) acc->k = pipe_ld1(v, first);
    const pipe_vd zero = {0}, inf = zero + INFINITY, ninf = zero - INFINITY, kv = zero + acc->k;
    pipe_vd sum = zero, s1 = zero, s2 = zero, mn = inf, mx = ninf;
    for (size_t w = 0; w < nw; w++) {
        uint64_t b = bits[w];
        if (!b) continue;
        size_t i = w * 64;
        if (b == ~0ull) {
            for (size_t j = 0; j < 64; j += PIPE_W) {
                pipe_vd x = pipe_ldd(v, i + j);
                sum += x;
                mn = bits_pick(x < mn, x, mn);
                mx = bits_pick(x > mx, x, mx);
                if (moments) {
                    pipe_vd d = x - kv;
                    s1 += d;
                    s2 += d * d;
                }
            }
            continue;
        }
        size_t lim = n - i < 64 ? n - i : 64;
        for (size_t j = 0; j < lim; j += PIPE_W) {
            uint64_t lb = b >> j & ((1ull << PIPE_W) - 1);
            if (!lb) continue;
            pipe_vd x;
            if (j + PIPE_W <= lim) {
                x = pipe_ldd(v, i + j);
            } else {
                x = zero;
                for (size_t l = 0; j + l < lim; l++) x[l] = pipe_ld1(v, i + j + l);
            }
            pipe_vi m = bits_lanes(lb);
            sum += bits_pick(m, x, zero);
            mn = bits_pick(m & (x < mn), x, mn);
            mx = bits_pick(m & (x > mx), x, mx);
            if (moments) {
                pipe_vd d = bits_pick(m, x - kv, zero);
                s1 += d;
                s2 += d * d;
            }
        }
    }
    double hs = 0, h1 = 0, h2 = 0, hmn = acc->min, hmx = acc->max;
    for (int l = 0; l < PIPE_W; l++) {
        hs += sum[l];
        h1 += s1[l];
        h2 += s2[l];
        hmn = mn[l] < hmn ? mn[l] : hmn;
        hmx = mx[l] > hmx ? mx[l] : hmx;
    }
    acc->n += cnt;
    acc->count += cnt;
    acc->sum += hs;
    acc->min = hmn;
    acc->max = hmx;
    if (moments) {
        acc->s1 += h1;
        acc->s2 += h2;
    }
}

/* hist_f64's bin of each value, PIPE_W at a time: the division is IEEE
 * (the scalar one's double), and truncation is floor where the quotient
 * is >= 0, the only place its result is used. */
static void bits_bins_f64(const void *v, size_t n, double lo, double hi, double width,
                          uint32_t bins, uint16_t *out)
{
    const pipe_vd zero = {0}, vlo = zero + lo, vhi = zero + hi, vw = zero + width;
    const pipe_vd vbins = zero + (double)bins;
    const pipe_vi below = (pipe_vi){0} + (int64_t)bins, above = below + 1, last = below - 1;
    size_t i = 0;
    for (; i + PIPE_W <= n; i += PIPE_W) {
        pipe_vd x = pipe_ldd(v, i), q = (x - vlo) / vw;
        pipe_vi in = (q >= zero) & (q < vbins);
        pipe_vi qi = __builtin_convertvector(bits_pick(in, q, zero), pipe_vi);
        pipe_vi b = (qi & in) | (last & ~in);
        pipe_vi lt = x < vlo, gt = x > vhi;
        b = (below & lt) | (b & ~lt);
        b = (above & gt) | (b & ~gt);
        for (int l = 0; l < PIPE_W; l++) out[i + l] = (uint16_t)b[l];
    }
    for (; i < n; i++) {
        double x = pipe_ld1(v, i);
        if (x < lo) {
            out[i] = (uint16_t)bins;
        } else if (x > hi) {
            out[i] = (uint16_t)(bins + 1);
        } else {
            double q = (x - lo) / width; /* >= 0 or NaN: truncation is floor */
            out[i] = (uint16_t)((q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1);
        }
    }
}
