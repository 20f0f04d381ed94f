/* The aggregation kernels: the inner loops of every analytic query.
 *
 * A kernel reads column arrays in place from the LMDB map. LMDB makes no
 * alignment promise for values, so every column pointer here is `const void *`
 * and kernels load with unaligned loads (memcpy in C, loadu in SIMD).
 * Kernels never allocate: the caller passes the output.
 *
 * Filters are closed ranges on both axes: t_lo <= ts <= t_hi and
 * v_lo <= v <= v_hi. The caller turns exclusive bounds into closed ones
 * (to - 1 for time, nextafter() for values), so one comparison shape serves
 * gt/gte/lt/lte/eq. A value filter that is absent is [-inf, +inf].
 *
 * Second moments are accumulated about a caller-chosen shift K
 * (s1 = sum(v - K), s2 = sum((v - K)^2)); with K near the mean this avoids
 * the cancellation of sum-of-squares formulas (Chan, Golub, LeVeque 1983).
 *
 * kernels/scalar.c is the definition of correct; every other table must
 * produce the same counts and bins exactly and sums within rounding.
 */
#ifndef SDB_KERNELS_H
#define SDB_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sdb_filter {
    int64_t t_lo, t_hi; /* inclusive time range, epoch ms */
    double v_lo, v_hi;  /* inclusive value range */
    double shift;       /* K for s1/s2 */
} sdb_filter;

/* Partial aggregate over the rows a filter selected. An empty one has
 * n = 0, sums 0, min = +inf, max = -inf. */
typedef struct sdb_agg {
    uint64_t n;
    double sum; /* sum(v) */
    double s1;  /* sum(v - K) */
    double s2;  /* sum((v - K)^2) */
    double min, max;
} sdb_agg;

/* One row into a partial aggregate about the shift k: the reference's
 * update, and the row-at-a-time tails of every table, so none can drift. */
/* hist_f64's bin of one value (the reference formula every table keeps):
 * bins for x < lo, bins + 1 for x > hi, else floor((x - lo) / width) by a
 * true division, the last bin when that is past it or NaN (a zero width). */
static inline uint32_t sdb_bin_of(double x, double lo, double hi, double width, uint32_t bins)
{
    if (x < lo) return bins;
    if (x > hi) return bins + 1;
    /* x - lo >= 0 here, so truncation is floor. */
    double q = (x - lo) / width;
    return (q >= 0 && q < (double)bins) ? (uint32_t)q : bins - 1;
}

static inline void sdb_agg_add(sdb_agg *a, double x, double k)
{
    double d = x - k;
    a->n++;
    a->sum += x;
    a->s1 += d;
    a->s2 += d * d;
    if (x < a->min) a->min = x;
    if (x > a->max) a->max = x;
}

/* One accumulator of the query pipeline: a group, or a (group, interval)
 * of a series. The numeric fields are an sdb_agg about the shift k, which
 * the kernels set to the first value they add when n is 0 (the caller may
 * set it beforehand, for instance to a segment's mean); count counts every
 * row the slot received, categorical rows included. Zero it, then set min
 * to +inf and max to -inf (sdb__slot_init in the engine). */
typedef struct sdb_slot {
    uint64_t n;                /* numeric and boolean rows */
    double sum, s1, s2, min, max;
    double k;                  /* the shift K of s1 and s2 */
    uint64_t count;            /* every row */
} sdb_slot;

/* One numeric row into a slot: the scalar reference's update, and the tail
 * of every vectorized slot_agg (pipe_body.h), so the two cannot drift. */
static inline void sdb_slot_add(sdb_slot *a, double x)
{
    if (a->n == 0) a->k = x;
    double d = x - a->k;
    a->n++;
    a->count++;
    a->sum += x;
    a->s1 += d;
    a->s2 += d * d;
    if (x < a->min) a->min = x;
    if (x > a->max) a->max = x;
}

/* sdb_slot_add without the moments (slot_agg_nm, for queries that ask no
 * stddev): s1, s2 and k are left as they are. */
static inline void sdb_slot_add_nm(sdb_slot *a, double x)
{
    a->n++;
    a->count++;
    a->sum += x;
    if (x < a->min) a->min = x;
    if (x > a->max) a->max = x;
}

typedef struct sdb_kernels {
    const char *name; /* "scalar", "avx2", "avx512" */

    /* Stats of rows passing f: *out is overwritten (not accumulated). */
    void (*agg_f64)(const void *v, const void *ts, size_t n, const sdb_filter *f,
                    sdb_agg *out);

    /* Histogram of rows passing f over [lo, hi] with `bins` equal bins of
     * `width` (= (hi - lo) / bins, passed so that every table divides by the
     * same double): bin = floor((v - lo) / width), clamped to bins - 1 for
     * v <= hi (so v == hi lands in the last bin). v < lo counts in
     * counts[bins], v > hi in counts[bins + 1]. counts (bins + 2 entries) is
     * accumulated into, not cleared. */
    void (*hist_f64)(const void *v, const void *ts, size_t n, const sdb_filter *f,
                     double lo, double hi, double width, uint32_t bins,
                     uint64_t *counts);

    /* Group-by over dictionary ids: for rows passing f, accumulate into
     * accs[keys[i]] (keys are u32, each < n_keys; accs accumulated into,
     * with f->shift as K). */
    void (*group_u32)(const void *keys, const void *v, const void *ts, size_t n,
                      const sdb_filter *f, uint32_t n_keys, sdb_agg *accs);

    /* Time-bucketed stats: rows passing f go to bucket
     * (ts - t0) / width (t0 <= f->t_lo, so the quotient is >= 0), which must
     * be < n_buckets. accs accumulated into, with f->shift as K. */
    void (*series_f64)(const void *v, const void *ts, size_t n, const sdb_filter *f,
                       int64_t t0, int64_t width, uint32_t n_buckets, sdb_agg *accs);

    /* Write the u64 trace hashes of rows passing f (and hash != 0) to out
     * (room for n); returns how many were written. */
    size_t (*select_u64)(const void *hash, const void *v, const void *ts, size_t n,
                         const sdb_filter *f, uint64_t *out);

    /* ---- the pipeline's batch kernels (engine/exec.c) --------------------
     * A batch is rows [0, n) of a segment's columns (the caller offsets the
     * pointers). A selection is a list of row indexes into the batch, idx
     * (NULL: every row 0..n-1, and n is then the row count); the slot of
     * the j-th selected row is slot[j] (NULL: every row goes to slot 0). */

    /* Bit i of bits (words (n + 63) / 64, overwritten; bits past n are 0)
     * is set when row i passes f. */
    void (*mask_f64)(const void *v, const void *ts, size_t n, const sdb_filter *f,
                     uint64_t *bits);

    /* For the j-th of n selected rows (value v[idx[j]]): acc[slot[j]] gains
     * the value (n, sum, s1 and s2 about its k, set to the value when the
     * slot's n is 0, min, max) and one count. */
    void (*slot_agg)(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                     sdb_slot *acc);

    /* slot_agg without the moments, for queries that ask no stddev: n,
     * count, sum, min and max as slot_agg sets them; s1, s2 and k are left
     * as they are (three fewer dependent updates a row in a slot's cache
     * line: value.model.stats.frequent at 10M spent 37% in slot_agg). */
    void (*slot_agg_nm)(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                        sdb_slot *acc);

    /* ---- kernels over selection bitmaps (bits_body.h) -------------------
     * A bitmap of n rows has (n + 63) / 64 words; bits past n are 0. */

    /* out[w] = in[w] & the rows whose byte col[i] is in set (a 256-bit
     * set: byte value b is bit b % 8 of set[b / 8]); col is not read where
     * in[w] is 0. out may be in. */
    void (*bits_lut8)(const uint8_t *col, size_t n, const uint8_t *set, const uint64_t *in,
                      uint64_t *out);

    /* acc gains the values of the rows whose bit is set: n, count, sum,
     * min, max, and with moments s1 and s2 about acc->k (set to the first
     * such value when acc->n is 0); without moments s1, s2 and k are left
     * as they are. */
    void (*bits_agg)(const void *v, const uint64_t *bits, size_t n, int moments, sdb_slot *acc);

    /* out[i] = the bin of v[i] by hist_f64's formula (bins <= 10000): below
     * lo bins, above hi bins + 1, else floor((v - lo) / width) clamped to
     * bins - 1 (a zero width puts every value in the last bin). For a
     * pipeline that bins the rows of a batch once and counts them per
     * group as it walks its selection. */
    void (*bins_f64)(const void *v, size_t n, double lo, double hi, double width, uint32_t bins,
                     uint16_t *out);

    /* Histogram of the selected rows into counts + g * (bins + 2) for
     * g = slot[j], with hist_f64's bins: bounds lo[b], hi[b], width[b] with
     * b = per_group ? g : 0. counts accumulated into. */
    void (*slot_hist)(const void *v, const uint32_t *idx, const uint32_t *slot, size_t n,
                      const double *lo, const double *hi, const double *width, int per_group,
                      uint32_t bins, uint64_t *counts);

    /* ---- decoders of encoded segment columns (engine/internal.h draws
     * the format) --------------------------------------------------------
     * A packed column holds n entries of `bits` bits (0..32), entry i at
     * bits [i bits, i bits + bits) little-endian, with 7 bytes after its
     * last entry's byte so that any entry can be read by an 8-byte load;
     * bits 0 means every entry is 0 (p is not read). */

    /* out[i] = base + entry i (mod 2^64): time offsets, refs. */
    void (*unpack_u64)(const void *p, unsigned bits, size_t n, uint64_t base, uint64_t *out);

    /* out[i] = ((double)entry i + (double)base) / scale: decimal values
     * (scale 10^e). Every operation is IEEE-rounded, so every table gives
     * the same doubles; with |base| and |base + entry| below 2^53 (the
     * segment builder's promise) the sum is the integer exactly, and the
     * division by 10^e is correctly rounded: the double strtod reads. */
    void (*unpack_dec)(const void *p, unsigned bits, size_t n, int64_t base, double scale,
                       double *out);

    /* out[i] = the i-th f32 of p, widened. */
    void (*widen_f32)(const void *p, size_t n, double *out);

    /* ---- scans of encoded columns, decoded and filtered in one pass ------ */

    /* agg_f64 over a decimal value column (v, v_bits, v_base, scale: as
     * unpack_dec) and a packed time column (t, t_bits, t_base: as
     * unpack_u64), without writing either decoded: *out is what
     * unpack_dec + unpack_u64 + agg_f64 would give (n, min and max
     * exactly, sums within rounding). t NULL: no time is read and every
     * row's time passes (the caller's filter takes the segment's whole
     * time range). The caller promises t_base + (2^t_bits - 1) does not
     * overflow int64 (else it decodes). f->shift is K; a NaN shift asks
     * for the first passing row's value (in row order) as K. *out_k (when
     * not NULL) receives the K used: f->shift, or that first value (NaN
     * still when no row passes). */
    void (*agg_dec)(const void *v, unsigned v_bits, int64_t v_base, double scale,
                    const void *t, unsigned t_bits, int64_t t_base, size_t n,
                    const sdb_filter *f, sdb_agg *out, double *out_k);

    /* ---- narrow ids (store format 6; appended as a block of its own) ---
     * Entry i of a packed column into w bytes (1, 2 or 4: the caller picks
     * a w that holds `bits`, 0..32) at out + w i: dimension ids and
     * type/source codes unpacked for the pipeline's byte gathers. */
    void (*unpack_ids)(const void *p, unsigned bits, size_t n, unsigned w, void *out);

    /* ---- packed filters (store format 6; appended as a block of its own) -
     * bits_lut8 over a packed column without unpacking it: bit j of out[w]
     * = bit j of in[w] and whether entry i0 + 64 w + j (of bits 1..8, the
     * layout of unpack_ids) is in set (bit e % 8 of set[e / 8]), for the
     * n entries from i0 (any i0: the words start where i0 does). A word
     * whose in is 0 is not read. out may be in. The column keeps the 7
     * bytes of padding after its last entry that unpack_ids reads. */
    void (*bits_pk)(const void *p, unsigned bits, size_t i0, size_t n, const uint8_t *set,
                    const uint64_t *in, uint64_t *out);

    /* ---- exact percentiles (aggregate.c's ranks_by_sample) --------------- */

    /* Over v[0..n) (doubles, unaligned, no NaN) and SDB_PCT_IV closed
     * intervals [lo[j], hi[j]], pairwise disjoint (an unused one has
     * lo = +inf, hi = -inf): below[j] += the values < lo[j], upto[j] +=
     * the values <= hi[j]; for each interval j whose bit is set in keep,
     * got[j] += the values inside it, the first cap - got[j] of which (in
     * order) are stored at out[j * cap + got[j]] on the way (got[j] may so
     * pass cap: the caller's sign that the interval overflowed); got[j] of
     * the others is left alone. Compares are the C operators', so -0.0
     * and 0.0 are one value. */
    void (*pct_count_f64)(const void *v, size_t n, const double *lo, const double *hi,
                          unsigned keep, size_t cap, uint64_t *below, uint64_t *upto,
                          uint64_t *got, double *out);

    /* ---- values of the selected rows (exec.c's vals_batch; a block of its own) ---
     * The values v[i] (doubles, unaligned) of the rows i < n whose bit is
     * set in bits (bit i % 64 of bits[i / 64]), packed in row order into
     * out[0..k); returns k. Writes only within out[0..n) (a SIMD table
     * may write lanes past k there), so out needs room for n values. The
     * bit pattern is copied (no arithmetic): -0.0 stays -0.0. */
    size_t (*sel_f64)(const void *v, const uint64_t *bits, size_t n, double *out);
    /* ---- dense local slots (engine/exec.c's walk over many groups; a block
     * of its own) ---------------------------------------------------------
     * loc holds each row's local slot in loc_w bytes (1: a key's own
     * byte column, 2: u16s exec.c summed). For the j-th set bit i of bits
     * (n rows, in row order), local slot s = loc[i]: seen[s] = 1; when acc is not NULL, copy
     * acc[SDB_SCAT_COPIES * s + j % SDB_SCAT_COPIES] gains v[i]: n (mode
     * 0), n, sum, min and max (mode 1), and with mode 2 s1 and s2 about
     * its k too (set to the value when its n is 0), as sdb_slot_add; its
     * count is left alone (the caller counts at the merge); when hist is
     * not NULL, hist[s * stride + bin[i]] += 1. The copies exist so that
     * consecutive rows of one slot update different memory: a slot's
     * update waits on its previous one, and the walk that updated the
     * group's slot itself spent ~6 ns a row on those chains
     * (type.model_env_series.stddev.frequent, 10M). loc and bin are read
     * only at set bits. */
    void (*slot_scatter)(const void *v, const uint64_t *bits, size_t n, const void *loc,
                         unsigned loc_w, int mode, sdb_slot *acc, const uint16_t *bin, uint32_t stride,
                         uint32_t *hist, uint8_t *seen);

    /* For each set bit i of bits (n rows), local slot s = loc[i]:
     * hist[s * stride + b] += 1, b the bin of v[i] by hist_f64's formula
     * with the bounds lo[s], hi[s], width[s] (bins <= 10000): pass 1 of a
     * histogram without bounds, each group's own. loc[i] is read for
     * every i < n of a word with a set bit (n entries readable), its
     * value used only at set bits. */
    void (*slot_bins)(const void *v, const uint64_t *bits, size_t n, const void *loc,
                      unsigned loc_w, const double *lo, const double *hi, const double *width, uint32_t bins,
                      uint32_t stride, uint32_t *hist);
} sdb_kernels;

#define SDB_SCAT_COPIES 4 /* slot_scatter's copies of a local slot */

/* slot_scatter for one row, into copy a (scalar.c's table and every
 * table's body, so none can drift). */
static inline void sdb_scat_add(sdb_slot *a, int mode, double x)
{
    a->n++;
    if (mode == 0) return;
    a->sum += x;
    /* Branch-free (vminsd/vmaxsd and a store): a partial that holds few
     * rows finds a new minimum or maximum on many of them. */
    a->min = x < a->min ? x : a->min;
    a->max = x > a->max ? x : a->max;
    if (mode == 2) {
        if (a->n == 1) a->k = x;
        double d = x - a->k;
        a->s1 += d;
        a->s2 += d * d;
    }
}

#define SDB_PCT_IV 4 /* pipe_body.h spells the four out */

/* pct_count_f64 for one value x. */
static inline void sdb_pct_count1(double x, const double *lo, const double *hi, unsigned keep,
                                  size_t cap, uint64_t *below, uint64_t *upto, uint64_t *got,
                                  double *out)
{
    for (uint32_t j = 0; j < SDB_PCT_IV; j++) {
        below[j] += x < lo[j];
        upto[j] += x <= hi[j];
        if ((keep >> j & 1) && x >= lo[j] && x <= hi[j]) {
            if (got[j] < cap) out[j * cap + got[j]] = x;
            got[j]++;
        }
    }
}

/* The empty partial aggregate. */
void sdb__agg_empty(sdb_agg *a);

/* The encoded-domain bounds of agg_dec's filter, once per call. Entries
 * e (< 2^bits) of a decimal column with v_lo <= (e + base) / scale <=
 * v_hi are exactly e_lo <= e <= e_hi: the decoded value is non-decreasing
 * in e (an exact sum, then a correctly rounded division by a positive
 * scale), so each bound is the first or last entry that a binary search
 * by the decoder's own formula finds, and rounding at the boundary is the
 * decoder's. Returns 0 when no entry passes (a NaN bound, a range beside
 * the column's). */
int sdb__dec_bounds(const sdb_filter *f, unsigned bits, int64_t base, double scale,
                    uint32_t *e_lo, uint32_t *e_hi);

/* Time offsets o (< 2^bits) with t_lo <= base + o <= t_hi are exactly
 * o_lo <= o <= o_hi (base + o never overflowing: agg_dec's promise).
 * Returns 0 when none is. */
int sdb__off_bounds(const sdb_filter *f, unsigned bits, int64_t base, uint32_t *o_lo,
                    uint32_t *o_hi);

/* bits_pk one entry at a time, from word w (entries i0 + 64 w..) to the
 * n-th entry: scalar.c's table, and the SIMD tables' tails and unaligned
 * widths. */
static inline void sdb__bits_pk_ref(const uint8_t *p, unsigned bits, size_t i0, size_t n, size_t w,
                                    const uint8_t *set, const uint64_t *in, uint64_t *out)
{
    for (size_t base = w * 64; base < n; w++, base += 64) {
        if (!in[w]) {
            out[w] = 0;
            continue;
        }
        size_t cnt = n - base < 64 ? n - base : 64;
        uint64_t word = 0;
        for (size_t j = 0; j < cnt; j++) {
            uint32_t e = 0;
            if (bits) { /* 0 bits: an absent column, every entry 0 and no bytes */
                uint64_t x, bit = (uint64_t)(i0 + base + j) * bits;
                memcpy(&x, p + (bit >> 3), 8);
                e = (uint32_t)(x >> (bit & 7) & ((1ull << bits) - 1));
            }
            word |= (uint64_t)(set[e >> 3] >> (e & 7) & 1) << j;
        }
        out[w] = in[w] & word;
    }
}

/* Tables. sdb__kernels_scalar always exists; the others are NULL when the
 * build or the CPU lacks them. */
extern const sdb_kernels sdb__kernels_scalar;
const sdb_kernels *sdb__kernels_avx2(void);   /* NULL unless built and supported */
const sdb_kernels *sdb__kernels_avx512(void); /* NULL unless built and supported */

/* The table chosen once at start-up from the CPU, or from the environment
 * variable SDB_KERNELS=scalar|avx2|avx512 (an unsupported choice falls back
 * to the best supported table). Thread-safe. */
const sdb_kernels *sdb__kernels(void);

/* The table whose variant of `kernel` (a field name of sdb_kernels, such
 * as "mask_f64") sdb__kernels() runs: "avx512", "avx2" or "scalar"; NULL
 * for an unknown name. On a CPU with both SIMD tables the default table
 * takes each kernel from the faster one (dispatch.c says which and why). */
const char *sdb__kernels_choice(const char *kernel);

/* The name of the i-th kernel of a table (field order), NULL past the
 * last: for listing every kernel's choice. A kernel added to sdb_kernels
 * is added to dispatch.c's list too (tests/test_kernels.c checks the
 * count against the struct's size). */
const char *sdb__kernels_field(size_t i);

/* A table by name, or NULL when not built or not supported by this CPU. */
const sdb_kernels *sdb__kernels_by_name(const char *name);

#endif
