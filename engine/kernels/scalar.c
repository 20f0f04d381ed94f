/* The scalar kernels: the definition of correct for every other table.
 *
 * Plain loops, one row at a time, with memcpy loads because LMDB values are
 * only 2-byte aligned. Every SIMD table is tested against these on random
 * data and edge lengths; counts and bins must agree exactly, sums within
 * rounding.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

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

static inline int pass(const sdb_filter *f, int64_t t, double x)
{
    return t >= f->t_lo && t <= f->t_hi && x >= f->v_lo && x <= f->v_hi;
}

void sdb__agg_empty(sdb_agg *a)
{
    a->n = 0;
    a->sum = a->s1 = a->s2 = 0.0;
    a->min = INFINITY;
    a->max = -INFINITY;
}

static void agg_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                    sdb_agg *out)
{
    sdb__agg_empty(out);
    for (size_t i = 0; i < n; i++) {
        double x = ld_f64(v, i);
        if (pass(f, ld_i64(ts, i), x)) sdb_agg_add(out, x, f->shift);
    }
}

static void hist_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                     double lo, double hi, double width, uint32_t bins,
                     uint64_t *counts)
{
    for (size_t i = 0; i < n; i++) {
        double x = ld_f64(v, i);
        if (!pass(f, ld_i64(ts, i), x)) continue;
        if (x < lo) {
            counts[bins]++;
        } else if (x > hi) {
            counts[bins + 1]++;
        } else {
            double q = floor((x - lo) / width);
            /* q is NaN when width is 0 (lo == hi == x): the last bin. */
            uint32_t b = (q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1;
            counts[b]++;
        }
    }
}

static void group_u32(const void *keys, const void *v, const void *ts, size_t n,
                      const sdb_filter *f, uint32_t n_keys, sdb_agg *accs)
{
    for (size_t i = 0; i < n; i++) {
        double x = ld_f64(v, i);
        if (!pass(f, ld_i64(ts, i), x)) continue;
        uint32_t k = ld_u32(keys, i);
        if (k < n_keys) sdb_agg_add(&accs[k], x, f->shift);
    }
}

static void series_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                       int64_t t0, int64_t width, uint32_t n_buckets, sdb_agg *accs)
{
    for (size_t i = 0; i < n; i++) {
        double x = ld_f64(v, i);
        int64_t t = ld_i64(ts, i);
        if (!pass(f, t, x)) continue;
        uint64_t b = (uint64_t)(t - t0) / (uint64_t)width;
        if (b < n_buckets) sdb_agg_add(&accs[b], x, f->shift);
    }
}

static size_t select_u64(const void *hash, const void *v, const void *ts, size_t n,
                         const sdb_filter *f, uint64_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = ld_u64(hash, i);
        if (h != 0 && pass(f, ld_i64(ts, i), ld_f64(v, i))) out[k++] = h;
    }
    return k;
}

/* ---- the pipeline's batch kernels: one row at a time, in order ---------- */

static void mask_f64(const void *v, const void *ts, size_t n, const sdb_filter *f,
                     uint64_t *bits)
{
    memset(bits, 0, ((n + 63) / 64) * sizeof *bits);
    for (size_t i = 0; i < n; i++)
        if (pass(f, ld_i64(ts, i), ld_f64(v, i))) bits[i / 64] |= 1ull << (i % 64);
}

static void slot_agg(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                     sdb_slot *acc)
{
    for (size_t j = 0; j < n; j++) {
        sdb_slot_add(&acc[slot ? slot[j] : 0], ld_f64(v, idx ? idx[j] : j));
    }
}

static void slot_agg_nm(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                        sdb_slot *acc)
{
    for (size_t j = 0; j < n; j++) sdb_slot_add_nm(&acc[slot ? slot[j] : 0], ld_f64(v, idx ? idx[j] : j));
}

static void bits_lut8(const uint8_t *col, size_t n, const uint8_t *set, const uint64_t *in,
                      uint64_t *out)
{
    for (size_t w = 0; w < (n + 63) / 64; w++) {
        uint64_t word = 0;
        for (size_t j = 0; j < 64 && w * 64 + j < n; j++) {
            uint8_t b = col[w * 64 + j];
            word |= (uint64_t)(set[b / 8] >> (b % 8) & 1) << j;
        }
        out[w] = in[w] & word;
    }
}

static void bits_agg(const void *v, const uint64_t *bits, size_t n, int moments, sdb_slot *acc)
{
    for (size_t i = 0; i < n; i++) {
        if (!(bits[i / 64] >> (i % 64) & 1)) continue;
        double x = ld_f64(v, i);
        if (moments)
            sdb_slot_add(acc, x);
        else
            sdb_slot_add_nm(acc, x);
    }
}

static void bins_f64(const void *v, size_t n, double lo, double hi, double width, uint32_t bins,
                     uint16_t *out)
{
    for (size_t i = 0; i < n; i++) {
        double x = ld_f64(v, i);
        if (x < lo) {
            out[i] = (uint16_t)bins;
        } else if (x > hi) {
            out[i] = (uint16_t)(bins + 1);
        } else {
            double q = floor((x - lo) / width);
            out[i] = (uint16_t)((q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1);
        }
    }
}

static void slot_hist(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                      const double *lo, const double *hi, const double *width, int per_group,
                      uint32_t bins, uint64_t *counts)
{
    sdb_filter all = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0};
    int64_t t = 0;
    for (size_t j = 0; j < n; j++) {
        uint32_t g = slot ? slot[j] : 0, b = per_group ? g : 0;
        const char *x = (const char *)v + 8 * (idx ? idx[j] : j);
        hist_f64(x, &t, 1, &all, lo[b], hi[b], width[b], bins, counts + (size_t)g * (bins + 2));
    }
}

/* ---- decoders of encoded columns: one entry at a time, by the formula --- */

/* Entry i of a packed column (kernels.h): the 8 bytes at its first byte,
 * shifted and masked. */
static inline uint64_t pk_get(const void *p, unsigned bits, size_t i)
{
    if (bits == 0) return 0;
    uint64_t bit = (uint64_t)i * bits, x;
    memcpy(&x, (const char *)p + (bit >> 3), 8);
    return x >> (bit & 7) & ((1ull << bits) - 1);
}

static void unpack_u64(const void *p, unsigned bits, size_t n, uint64_t base, uint64_t *out)
{
    for (size_t i = 0; i < n; i++) out[i] = base + pk_get(p, bits, i);
}

static void unpack_dec(const void *p, unsigned bits, size_t n, int64_t base, double scale,
                       double *out)
{
    for (size_t i = 0; i < n; i++) out[i] = ((double)pk_get(p, bits, i) + (double)base) / scale;
}

static void widen_f32(const void *p, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, (const char *)p + 4 * i, 4);
        out[i] = x;
    }
}

/* ---- scans of encoded columns ------------------------------------------- */

/* The value of entry e, by unpack_dec's formula. */
static inline double dec_value(uint64_t e, int64_t base, double scale)
{
    return ((double)e + (double)base) / scale;
}

int sdb__dec_bounds(const sdb_filter *f, unsigned bits, int64_t base, double scale,
                    uint32_t *e_lo, uint32_t *e_hi)
{
    uint64_t top = bits ? (1ull << bits) - 1 : 0; /* the largest entry */
    /* The first entry whose value is >= v_lo (top + 1: none; NaN never
     * compares, so a NaN bound finds none). */
    uint64_t lo = 0, hi = top + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (dec_value(mid, base, scale) >= f->v_lo) hi = mid;
        else lo = mid + 1;
    }
    uint64_t first = lo;
    /* One past the last entry whose value is <= v_hi. */
    lo = 0, hi = top + 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (dec_value(mid, base, scale) <= f->v_hi) lo = mid + 1;
        else hi = mid;
    }
    if (first > top || lo == 0 || first > lo - 1) return 0;
    *e_lo = (uint32_t)first;
    *e_hi = (uint32_t)(lo - 1);
    return 1;
}

int sdb__off_bounds(const sdb_filter *f, unsigned bits, int64_t base, uint32_t *o_lo,
                    uint32_t *o_hi)
{
    uint64_t top = bits ? (1ull << bits) - 1 : 0;
    if (f->t_lo > f->t_hi || f->t_hi < base) return 0;
    /* Both differences are of a larger int64 minus a smaller one: exact
     * as u64. */
    uint64_t lo = f->t_lo <= base ? 0 : (uint64_t)f->t_lo - (uint64_t)base;
    uint64_t hi = (uint64_t)f->t_hi - (uint64_t)base;
    if (lo > top) return 0;
    *o_lo = (uint32_t)lo;
    *o_hi = (uint32_t)(hi < top ? hi : top);
    return 1;
}

static void agg_dec(const void *v, unsigned v_bits, int64_t v_base, double scale, const void *t,
                    unsigned t_bits, int64_t t_base, size_t n, const sdb_filter *f, sdb_agg *out,
                    double *out_k)
{
    double k = f->shift;
    sdb__agg_empty(out);
    for (size_t i = 0; i < n; i++) {
        double x = dec_value(pk_get(v, v_bits, i), v_base, scale);
        int ok = x >= f->v_lo && x <= f->v_hi;
        if (t) {
            int64_t ts = (int64_t)((uint64_t)t_base + pk_get(t, t_bits, i));
            ok = ok && ts >= f->t_lo && ts <= f->t_hi;
        }
        if (!ok) continue;
        if (k != k) k = x; /* a NaN shift: the first passing value */
        sdb_agg_add(out, x, k);
    }
    if (out_k) *out_k = k;
}

/* ---- narrow ids (store format 6) ---- */

static void unpack_ids(const void *p, unsigned bits, size_t n, unsigned w, void *out)
{
    uint8_t *o = out;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = pk_get(p, bits, i);
        switch (w) {
        case 1: o[i] = (uint8_t)x; break;
        case 2: {
            uint16_t y = (uint16_t)x;
            memcpy(o + 2 * i, &y, 2);
            break;
        }
        default: {
            uint32_t y = (uint32_t)x;
            memcpy(o + 4 * i, &y, 4);
            break;
        }
        }
    }
}

/* ---- packed filters (store format 6) ---- */

static void bits_pk(const void *p, unsigned bits, size_t i0, size_t n, const uint8_t *set,
                    const uint64_t *in, uint64_t *out)
{
    sdb__bits_pk_ref(p, bits, i0, n, 0, set, in, out);
}

/* ---- exact percentiles --------------------------------------------- */

static void pct_count_f64(const void *v, size_t n, const double *lo, const double *hi, unsigned keep,
                          size_t cap, uint64_t *below, uint64_t *upto, uint64_t *got, double *out)
{
    for (size_t i = 0; i < n; i++) {
        double x;
        memcpy(&x, (const char *)v + 8 * i, sizeof x);
        sdb_pct_count1(x, lo, hi, keep, cap, below, upto, got, out);
    }
}

/* ---- values of the selected rows ------------------------------------ */

/* Branch-free: every row is stored at out[k] and k moves on by its bit,
 * so a selection of any density costs the same. */
static size_t sel_f64(const void *v, const uint64_t *bits, size_t n, double *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(&out[k], (const char *)v + 8 * i, 8);
        k += bits[i / 64] >> (i % 64) & 1;
    }
    return k;
}

/* ---- dense local slots ---------------------------------------------- */

static uint32_t loc_of(const void *loc, unsigned w, size_t i)
{
    if (w == 1) return ((const uint8_t *)loc)[i];
    uint16_t s;
    memcpy(&s, (const char *)loc + 2 * i, 2);
    return s;
}

static void slot_scatter(const void *v, const uint64_t *bits, size_t n, const void *loc,
                         unsigned loc_w, int mode, sdb_slot *acc, const uint16_t *bin,
                         uint32_t stride, uint32_t *hist, uint8_t *seen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(bits[i / 64] >> (i % 64) & 1)) continue;
        uint32_t s = loc_of(loc, loc_w, i);
        seen[s] = 1;
        if (acc) sdb_scat_add(&acc[SDB_SCAT_COPIES * (size_t)s + j % SDB_SCAT_COPIES], mode, ld_f64(v, i));
        if (hist) hist[(size_t)s * stride + bin[i]]++;
        j++;
    }
}

static void slot_bins(const void *v, const uint64_t *bits, size_t n, const void *loc,
                      unsigned loc_w, const double *lo, const double *hi, const double *width,
                      uint32_t bins, uint32_t stride, uint32_t *hist)
{
    for (size_t i = 0; i < n; i++) {
        if (!(bits[i / 64] >> (i % 64) & 1)) continue;
        uint32_t s = loc_of(loc, loc_w, i);
        hist[(size_t)s * stride + sdb_bin_of(ld_f64(v, i), lo[s], hi[s], width[s], bins)]++;
    }
}

const sdb_kernels sdb__kernels_scalar = {
    .name = "scalar",
    .agg_f64 = agg_f64,
    .hist_f64 = hist_f64,
    .group_u32 = group_u32,
    .series_f64 = series_f64,
    .select_u64 = select_u64,
    .mask_f64 = mask_f64,
    .slot_agg = slot_agg,
    .slot_agg_nm = slot_agg_nm,
    .bits_lut8 = bits_lut8,
    .bits_agg = bits_agg,
    .bins_f64 = bins_f64,
    .slot_hist = slot_hist,
    .unpack_u64 = unpack_u64,
    .unpack_dec = unpack_dec,
    .widen_f32 = widen_f32,
    .agg_dec = agg_dec,
    .unpack_ids = unpack_ids,
    .bits_pk = bits_pk,
    .pct_count_f64 = pct_count_f64,
    .sel_f64 = sel_f64,
    .slot_scatter = slot_scatter,
    .slot_bins = slot_bins,
};
