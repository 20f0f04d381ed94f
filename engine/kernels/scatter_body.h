/* Dense local slots: the scatter of a batch's selected rows into per-slot
 * partial aggregates, one body for every SIMD table; a block of its own.
 *
 * A group-by over many groups (model x prompt_version, model x
 * environment x a daily series) cannot take one masked pass per group
 * (bits_body.h's bits_agg) and updates each row's slot in memory. When
 * the slot itself is the target, a row's update waits on the previous
 * update of the same slot through the store buffer (n, sum, s1, s2, min
 * and max are each a read-modify-write), and with tens of slots of
 * skewed popularity nearby rows share one often: the walk in exec.c cost
 * ~6 ns a row (type.model_env_series.stddev.frequent, 10M, perf annotate:
 * the slot's fields and the first-sight check). Here the j-th selected
 * row goes to copy j % SDB_SCAT_COPIES of its local slot, so rows j and
 * j + 1 never chain, and the walk is specialized on what it updates
 * (count only, no moments, moments; a histogram of local slot x bin, the
 * only update of a count-and-histogram query), with no per-row branch on
 * the query. exec.c merges the copies into the group table once a
 * segment (sdb__slot_merge, Chan's combination).
 *
 * The scatter has no vector form short of conflict detection; the bit
 * walk, the loads and the compares are what the includer's flags make of
 * them. Semantics are scalar.c's (kernels.h): the same rows into the same
 * copies in the same order, so every table gives the same bits.
 *
 * slot_bins is pass 1 of a histogram without bounds on the same local
 * slots: the bins of PIPE_W rows at a time, each lane's bounds those of
 * its row's local slot (one division a vector, where the row walk paid
 * a scalar division and its latency a row: 66% of
 * type.source.hist_free.frequent), then one increment a selected row.
 *
 * Included by avx2.c and avx512.c after bits_body.h (pipe_vd, pipe_vi,
 * pipe_ldd, bits_pick), each defining
 *   scat_vi32              PIPE_W x int32 (GCC vector)
 *   SCAT_GATHER(p, i)      the PIPE_W doubles p[i[l]] (vgatherdpd)
 *   SCAT_LANES32(b)        a scat_vi32 with lane l all ones where bit l of b is set
 */

static inline __attribute__((always_inline)) uint32_t scat_loc(const void *loc, unsigned w, size_t i)
{
    if (w == 1) return ((const uint8_t *)loc)[i];
    uint16_t s;
    memcpy(&s, (const char *)loc + 2 * i, 2);
    return s;
}

static inline __attribute__((always_inline)) void
scat_body(const void *v, const uint64_t *bits, size_t n, const void *loc, unsigned lw, int mode,
          sdb_slot *acc, const uint16_t *bin, uint32_t stride, uint32_t *hist, uint8_t *seen)
{
    size_t nw = (n + 63) / 64;
    unsigned j = 0;
    for (size_t w = 0; w < nw; w++) {
        for (uint64_t b = bits[w]; b; b &= b - 1) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(b);
            uint32_t s = scat_loc(loc, lw, i);
            seen[s] = 1;
            if (acc) {
                double x;
                memcpy(&x, (const char *)v + 8 * i, 8);
                sdb_scat_add(&acc[SDB_SCAT_COPIES * s + (j++ % SDB_SCAT_COPIES)], mode, x);
            }
            if (hist) hist[(size_t)s * stride + bin[i]]++;
        }
    }
}

static inline __attribute__((always_inline)) void
scat_modes(const void *v, const uint64_t *bits, size_t n, const void *loc, unsigned lw, int mode,
           sdb_slot *acc, const uint16_t *bin, uint32_t stride, uint32_t *hist, uint8_t *seen)
{
    if (!acc) {
        if (hist) scat_body(v, bits, n, loc, lw, 0, NULL, bin, stride, hist, seen);
        else scat_body(v, bits, n, loc, lw, 0, NULL, NULL, 0, NULL, seen);
    } else if (hist) {
        if (mode == 0) scat_body(v, bits, n, loc, lw, 0, acc, bin, stride, hist, seen);
        else if (mode == 1) scat_body(v, bits, n, loc, lw, 1, acc, bin, stride, hist, seen);
        else scat_body(v, bits, n, loc, lw, 2, acc, bin, stride, hist, seen);
    } else {
        if (mode == 0) scat_body(v, bits, n, loc, lw, 0, acc, NULL, 0, NULL, seen);
        else if (mode == 1) scat_body(v, bits, n, loc, lw, 1, acc, NULL, 0, NULL, seen);
        else scat_body(v, bits, n, loc, lw, 2, acc, NULL, 0, NULL, seen);
    }
}

static void slot_scatter(const void *v, const uint64_t *bits, size_t n, const void *loc,
                         unsigned loc_w, int mode, sdb_slot *acc, const uint16_t *bin,
                         uint32_t stride, uint32_t *hist, uint8_t *seen)
{
    if (loc_w == 1) scat_modes(v, bits, n, loc, 1, mode, acc, bin, stride, hist, seen);
    else scat_modes(v, bits, n, loc, 2, mode, acc, bin, stride, hist, seen);
}

#define SCAT_SPARSE 16 /* exec.c's DENSE_SPARSE */
typedef uint16_t scat_vu16 __attribute__((vector_size(2 * PIPE_W)));
typedef uint8_t scat_vu8 __attribute__((vector_size(PIPE_W)));

static void slot_bins(const void *v, const uint64_t *bits, size_t n, const void *loc,
                      unsigned loc_w, const double *lo, const double *hi, const double *width, uint32_t bins,
                      uint32_t stride, uint32_t *hist)
{
    const pipe_vd zero = {0}, vbins = zero + (double)bins;
    const pipe_vi below = (pipe_vi){0} + (int64_t)bins, above = below + 1, last = below - 1;
    const size_t nw = (n + 63) / 64;
    for (size_t w = 0; w < nw; w++) {
        uint64_t b = bits[w];
        if (!b) continue;
        size_t base = w * 64, lim = n - base < 64 ? n - base : 64;
        if (__builtin_popcountll(b) < SCAT_SPARSE) {
            /* Few rows in the word: one at a time, by the same formula
             * (the vectors' gathers and division cost the same for one
             * lane as for all). */
            for (; b; b &= b - 1) {
                size_t i = base + (size_t)__builtin_ctzll(b);
                uint32_t s = scat_loc(loc, loc_w, i);
                hist[(size_t)s * stride + sdb_bin_of(pipe_ld1(v, i), lo[s], hi[s], width[s], bins)]++;
            }
            continue;
        }
        for (size_t j = 0; j < lim; j += PIPE_W) {
            uint64_t lb = b >> j & ((1ull << PIPE_W) - 1);
            if (!lb) continue;
            pipe_vd x = zero;
            scat_vu16 s16 = {0};
            if (j + PIPE_W <= lim) {
                x = pipe_ldd(v, base + j);
                if (loc_w == 1) {
                    scat_vu8 s8;
                    memcpy(&s8, (const uint8_t *)loc + base + j, sizeof s8);
                    s16 = __builtin_convertvector(s8, scat_vu16);
                } else {
                    memcpy(&s16, (const uint16_t *)loc + base + j, sizeof s16);
                }
            } else {
                for (size_t q = 0; j + q < lim; q++) {
                    x[q] = pipe_ld1(v, base + j + q);
                    s16[q] = (uint16_t)scat_loc(loc, loc_w, base + j + q);
                }
            }
            /* Lanes without a selected row take local slot 0's bounds and
             * count nowhere. */
            scat_vi32 si = __builtin_convertvector(s16, scat_vi32) & SCAT_LANES32(lb);
            pipe_vd l = SCAT_GATHER(lo, si), h = SCAT_GATHER(hi, si), wd = SCAT_GATHER(width, si);
            pipe_vd qd = (x - l) / wd;
            pipe_vi in = (qd >= zero) & (qd < vbins);
            pipe_vi qi = __builtin_convertvector(bits_pick(in, qd, zero), pipe_vi);
            pipe_vi bb = (qi & in) | (last & ~in);
            pipe_vi lt = x < l, gt = x > h;
            bb = (below & lt) | (bb & ~lt);
            bb = (above & gt) | (bb & ~gt);
            for (; lb; lb &= lb - 1) {
                int q = __builtin_ctzll(lb);
                hist[(size_t)si[q] * stride + (size_t)bb[q]]++;
            }
        }
    }
}
