/* The decoders of encoded segment columns, one body for every SIMD table.
 *
 * zstd's pattern, as pipe_body.h: avx2.c and avx512.c include this header,
 * each compiled with its own ISA flags, so the loops below become that
 * ISA's vector code; nothing here names an ISA. Semantics are scalar.c's
 * (kernels.h states them); every table must give the same bits.
 *
 * A packed column is read in blocks of DEC_BLOCK entries: first the
 * entries alone into a u32 scratch on the stack, then one plain loop per
 * decoder (an add, an int-to-double conversion and a division, a
 * dictionary gather) that the compiler vectorizes. The unpack loop is
 * instantiated for each width 1..32 (DEC_W below), so the shift and the
 * byte offset of entry j within a group of 8 entries (8 entries of b bits
 * are exactly b bytes) are constants and the loop is straight-line loads,
 * shifts and masks; with the width a variable it was a chain of variable
 * shifts (measured in bench_kernels, "unpack" rows).
 */
#ifndef DEC_BODY_H
#define DEC_BODY_H
#ifndef PIPE_W
#error "include pipe_body.h (which needs PIPE_W) before dec_body.h"
#endif
/* The includer also defines
 *   DEC_LOADU2(lo, hi)  32 bytes: 16 unaligned from lo, then 16 from hi
 *   DEC_PSHUFB(x, i)    a byte shuffle within each 16-byte half (vpshufb)
 *   DEC_WIN32_MAX       the widest entries dec_win32 unpacks (9..25; 0:
 *                       none). Per table, from a sweep of every width
 *                       (8192 entries, thread CPU time, ns a row of
 *                       unpack_u64 on this machine): avx2 9-25 bits 0.72
 *                       -> 0.30 with it, 26-32 0.71 -> 0.32 with dec_win64;
 *                       up to 8 bits the broadcast below stays (0.24, where
 *                       dec_win32 took 0.29); avx512 0.24-0.25 either way
 *                       (dec_wide), so it keeps dec_wide */
/*   DEC_CVTU32          1 when the ISA converts u32 to double in one
 *                       instruction (vcvtudq2pd), else 0
 *   DEC_I32TOD(x)       PIPE_W int32 lanes as doubles (vcvtdq2pd) and
 *   DEC_I32TO64(x)      sign-extended to int64 (vpmovsxdq): GCC lowered
 *                       __builtin_convertvector of these to 16-byte halves
 *                       and an insert (perf: a third of agg_dec's AVX2
 *                       samples)
 *   DEC_MINU32(a, b)    the lane-wise unsigned min of two vectors of
 *                       PIPE_W u32s (vpminud)
 *   DEC_FMA(a, b, c)    a * b + c with one rounding, on vectors of PIPE_W
 *                       doubles (vfmadd: GCC's vector extensions have no
 *                       fused multiply-add, and -std=c11 never contracts) */
#if !defined(DEC_LOADU2) || !defined(DEC_PSHUFB) || !defined(DEC_WIN32_MAX) || !defined(DEC_FMA) || \
    !defined(DEC_CVTU32) || !defined(DEC_I32TOD) || !defined(DEC_I32TO64) || !defined(DEC_MINU32)
#error "define DEC_LOADU2, DEC_PSHUFB, DEC_WIN32_MAX, DEC_FMA, DEC_CVTU32, DEC_I32TOD, DEC_I32TO64 and DEC_MINU32 before including dec_body.h"
#endif

#define DEC_BLOCK 256

/* Two variants were built and measured against these decoders, and
 * dropped (8192-row chunks, thread CPU time, ns a row, avx2 / avx512):
 * - a fused agg over the encoded columns (decode a 256- or 1024-row block
 *   into L1, time bounds turned into offset bounds, then the table's
 *   agg_f64 on the block): 7-bit decimals with a value filter 1.12 / 0.64
 *   against 1.03 / 0.59 for unpack_dec of the whole chunk then agg_f64;
 *   with 27-bit times and a time range 1.5 / 0.91 against 1.3 / 0.87. The
 *   chunk's decoded 64 KiB stay in L2, so writing them is not the cost;
 *   the division and the accumulation are.
 * - decimals of up to 8 bits through a table of their 2^bits doubles read
 *   with vgatherdpd instead of the division: 0.54 / 0.47 against 0.43 /
 *   0.37 for the division. */

/* Entries [i0, i0 + m) of a packed column of n entries of B bits into
 * out; i0 is a multiple of 8, m <= DEC_BLOCK. */
typedef uint64_t dec_v8q __attribute__((vector_size(64)));
typedef uint32_t dec_v8u __attribute__((vector_size(32)));
typedef uint16_t dec_v32w __attribute__((vector_size(64)));

/* Entries of 9-32 bits, 8 at a time, on 8-lane tables: 8 entries of B
 * bits are B bytes, and entry e starts in 16-bit word e B / 16 at bit
 * e B % 16 <= 15, so its bits lie in the 4 words from there. One 64-byte
 * load, a word permute that puts those 4 words in lane e (vpermw), a
 * shift per lane, a mask. Groups whose 64 bytes would pass the column's
 * end (n entries, the 7 bytes of padding included) are left to the
 * caller's loop; *j advances past the groups done. */
static inline __attribute__((always_inline)) void
dec_wide(const uint8_t *p, unsigned b, const uint8_t *q, size_t *j, size_t m, size_t n,
         uint32_t *out)
{
    dec_v32w idx;
    dec_v8q sh;
    for (unsigned e = 0; e < 8; e++) {
        for (unsigned w = 0; w < 4; w++) idx[4 * e + w] = (uint16_t)(e * b / 16 + w);
        sh[e] = e * b % 16;
    }
    const dec_v8q mk = (dec_v8q){0} + ((1ull << b) - 1);
    size_t end = (n * b + 7) / 8 + 7, at = (size_t)(q - p);
    for (; *j + 8 <= m && at + 64 <= end; *j += 8, at += b) {
        dec_v32w w;
        memcpy(&w, p + at, 64);
        dec_v8q x = ((dec_v8q)__builtin_shuffle(w, idx) >> sh) & mk;
        dec_v8u e8 = __builtin_convertvector(x, dec_v8u);
        memcpy(out + *j, &e8, sizeof e8);
    }
}

/* Entries of B <= 25 bits, 8 at a time, in 32-bit windows: entry e
 * starts at byte e B / 8, bit e B % 8 <= 7, so its bits lie in the 4
 * bytes from there (7 + 25 = 32). Entries 0-3 of a group lie in its first
 * 16 bytes and entries 4-7 in the 16 from entry 4's byte: two 16-byte
 * loads into the halves of one vector (DEC_LOADU2), one byte shuffle
 * within each half that puts entry e's 4 bytes in lane e (DEC_PSHUFB,
 * vpshufb), one shift per lane (vpsrlvd), a mask. AVX2 has no vpermw, and
 * the entry-at-a-time loop below ran at 5.8 GB/s of i64 written for 27
 * bits (below scalar.c's 9.4). Groups whose loads would pass the column's
 * end (the 7 bytes of padding included) are left to the caller's loop. */
typedef uint8_t dec_v32b __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) void
dec_win32(const uint8_t *p, unsigned b, const uint8_t *q, size_t *j, size_t m, size_t n,
          uint32_t *out)
{
    dec_v32b idx;
    dec_v8u sh;
    const unsigned o4 = 4 * b / 8;
    for (unsigned e = 0; e < 8; e++) {
        unsigned base = e < 4 ? 0 : o4;
        for (unsigned k = 0; k < 4; k++) idx[4 * e + k] = (uint8_t)(e * b / 8 - base + k);
        sh[e] = e * b % 8;
    }
    const dec_v8u mk = (dec_v8u){0} + (uint32_t)((1ull << b) - 1);
    size_t end = (n * b + 7) / 8 + 7, at = (size_t)(q - p);
    for (; *j + 8 <= m && at + o4 + 16 <= end; *j += 8, at += b) {
        dec_v32b w = DEC_LOADU2(p + at, p + at + o4);
        dec_v8u x = ((dec_v8u)DEC_PSHUFB(w, idx) >> sh) & mk;
        memcpy(out + *j, &x, sizeof x);
    }
}

/* Entries of 26-32 bits in 64-bit windows (7 + 32 = 39 bits: 5 bytes):
 * entries e and e + 1 (e even) lie in the 16 bytes from entry e's byte
 * (entry e + 1 starts at most 4 bytes further), so two vectors of two
 * such halves hold a group: four 16-byte loads, a byte shuffle each, a
 * shift per 64-bit lane (vpsrlvq), a mask, and the low halves of the
 * lanes kept. For the 4-lane table (the 8-lane one has dec_wide). */
typedef uint64_t dec_v4q __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) void
dec_win64(const uint8_t *p, unsigned b, const uint8_t *q, size_t *j, size_t m, size_t n,
          uint32_t *out)
{
    dec_v32b idx[2];
    dec_v4q sh[2];
    unsigned off[4];
    for (unsigned h = 0; h < 4; h++) off[h] = 2 * h * b / 8;
    for (unsigned e = 0; e < 8; e++) {
        for (unsigned k = 0; k < 8; k++)
            idx[e / 4][8 * (e % 4) + k] = (uint8_t)(e * b / 8 - off[e / 2] + k);
        sh[e / 4][e % 4] = e * b % 8;
    }
    const dec_v4q mk = (dec_v4q){0} + ((1ull << b) - 1);
    const dec_v8u even = {0, 2, 4, 6, 8, 10, 12, 14};
    size_t end = (n * b + 7) / 8 + 7, at = (size_t)(q - p);
    for (; *j + 8 <= m && at + off[3] + 16 <= end; *j += 8, at += b) {
        dec_v4q x0 = ((dec_v4q)DEC_PSHUFB(DEC_LOADU2(p + at, p + at + off[1]), idx[0]) >> sh[0]) & mk;
        dec_v4q x1 = ((dec_v4q)DEC_PSHUFB(DEC_LOADU2(p + at + off[2], p + at + off[3]), idx[1]) >> sh[1]) & mk;
        dec_v8u x = __builtin_shuffle((dec_v8u)x0, (dec_v8u)x1, even);
        memcpy(out + *j, &x, sizeof x);
    }
}

#define DEC_W(B)                                                                     \
    static void dec_unpack_##B(const uint8_t *p, size_t i0, size_t m, size_t n,     \
                               uint32_t *out)                                    \
    {                                                                                \
        const uint8_t *q = p + i0 / 8 * (B);                                         \
        size_t j = 0;                                                                \
        if ((B) > 8 && (B) <= DEC_WIN32_MAX) {                                     \
            dec_win32(p, B, q, &j, m, n, out);                                       \
            q = p + (i0 + j) / 8 * (B);                                              \
        } else if ((B) <= 8) {                                                       \
            /* 8 entries of B <= 8 bits are one 8-byte word: broadcast it  \
             * and shift each lane by its entry's offset (vpsrlvq). */      \
            const dec_v8q sh = {0, (B), 2 * (B), 3 * (B), 4 * (B), 5 * (B), 6 * (B),  \
                                7 * (B)};                                            \
            const dec_v8q mk = (dec_v8q){0} + ((1ull << (B)) - 1);                  \
            for (; j + 8 <= m; j += 8, q += (B)) {                                   \
                uint64_t w;                                                          \
                memcpy(&w, q, 8);                                                    \
                dec_v8u e = __builtin_convertvector(((dec_v8q){0} + w) >> sh & mk, dec_v8u); \
                memcpy(out + j, &e, sizeof e);                                       \
            }                                                                        \
        } else if (PIPE_W == 8) {                                                    \
            dec_wide(p, B, q, &j, m, n, out);                                        \
            q = p + (i0 + j) / 8 * (B);                                              \
        } else if ((B) >= 26) {                                                      \
            dec_win64(p, B, q, &j, m, n, out);                                       \
            q = p + (i0 + j) / 8 * (B);                                              \
        }                                                                            \
        for (; j + 8 <= m; j += 8, q += (B)) {                                       \
            for (unsigned e = 0; e < 8; e++) {                                       \
                uint64_t x;                                                          \
                memcpy(&x, q + e * (B) / 8, 8);                                      \
                out[j + e] = (uint32_t)(x >> (e * (B) % 8) & ((1ull << (B)) - 1));   \
            }                                                                        \
        }                                                                            \
        for (unsigned e = 0; j < m; j++, e++) {                                      \
            uint64_t x;                                                              \
            memcpy(&x, q + e * (B) / 8, 8);                                          \
            out[j] = (uint32_t)(x >> (e * (B) % 8) & ((1ull << (B)) - 1));           \
        }                                                                            \
    }
DEC_W(1) DEC_W(2) DEC_W(3) DEC_W(4) DEC_W(5) DEC_W(6) DEC_W(7) DEC_W(8)
DEC_W(9) DEC_W(10) DEC_W(11) DEC_W(12) DEC_W(13) DEC_W(14) DEC_W(15) DEC_W(16)
DEC_W(17) DEC_W(18) DEC_W(19) DEC_W(20) DEC_W(21) DEC_W(22) DEC_W(23) DEC_W(24)
DEC_W(25) DEC_W(26) DEC_W(27) DEC_W(28) DEC_W(29) DEC_W(30) DEC_W(31) DEC_W(32)
#undef DEC_W

typedef void (*dec_unpack_fn)(const uint8_t *p, size_t i0, size_t m, size_t n, uint32_t *out);

static void dec_unpack_0(const uint8_t *p, size_t i0, size_t m, size_t n, uint32_t *out)
{
    (void)p;
    (void)i0;
    (void)n;
    memset(out, 0, m * sizeof *out);
}

static const dec_unpack_fn dec_unpack[33] = {
    dec_unpack_0,  dec_unpack_1,  dec_unpack_2,  dec_unpack_3,  dec_unpack_4,  dec_unpack_5,
    dec_unpack_6,  dec_unpack_7,  dec_unpack_8,  dec_unpack_9,  dec_unpack_10, dec_unpack_11,
    dec_unpack_12, dec_unpack_13, dec_unpack_14, dec_unpack_15, dec_unpack_16, dec_unpack_17,
    dec_unpack_18, dec_unpack_19, dec_unpack_20, dec_unpack_21, dec_unpack_22, dec_unpack_23,
    dec_unpack_24, dec_unpack_25, dec_unpack_26, dec_unpack_27, dec_unpack_28, dec_unpack_29,
    dec_unpack_30, dec_unpack_31, dec_unpack_32,
};

/* The conversions in whole vectors of PIPE_W lanes (the includer's
 * width, pipe_body.h): GCC's cost model at -O2 vectorizes no loop whose
 * trip count it does not know, so the plain loops stayed scalar (one
 * vdivsd a value: unpack_dec at 4 GB/s of output). */
typedef uint32_t dec_vu __attribute__((vector_size(4 * PIPE_W)));
typedef uint64_t dec_vq __attribute__((vector_size(8 * PIPE_W)));
typedef double dec_vd __attribute__((vector_size(8 * PIPE_W)));

static void dec_unpack_u64(const void *p, unsigned bits, size_t n, uint64_t base, uint64_t *out)
{
    uint32_t tmp[DEC_BLOCK];
    dec_unpack_fn un = dec_unpack[bits <= 32 ? bits : 0];
    dec_vq vb = (dec_vq){0} + base;
    for (size_t i = 0; i < n; i += DEC_BLOCK) {
        size_t m = n - i < DEC_BLOCK ? n - i : DEC_BLOCK, j = 0;
        un(p, i, m, n, tmp);
        uint64_t *o = out + i;
        for (; j + PIPE_W <= m; j += PIPE_W) {
            dec_vu u;
            memcpy(&u, tmp + j, sizeof u);
            dec_vq q = __builtin_convertvector(u, dec_vq) + vb;
            memcpy(o + j, &q, sizeof q);
        }
        for (; j < m; j++) o[j] = base + tmp[j];
    }
}

/* Entries (u32) as doubles, exactly. With DEC_CVTU32 (the includer has an
 * unsigned conversion: vcvtudq2pd) one instruction; else the bits of
 * 2^52 + u (u below 2^32 fills the low mantissa bits of 2^52, exactly),
 * less 2^52: a widening, an or and a subtraction. GCC's own unsigned
 * conversion on AVX2 converted two signed halves and corrected each
 * (eleven instructions for four lanes; half the time of unpack_dec). */
static inline __attribute__((always_inline)) dec_vd dec_u2d(dec_vu u)
{
#if DEC_CVTU32
    return __builtin_convertvector(u, dec_vd);
#else
    dec_vq q = __builtin_convertvector(u, dec_vq) | 0x4330000000000000ull;
    return (dec_vd)q - 0x1p52;
#endif
}

/* a / scale, correctly rounded, without a division: q = a * y with
 * y = RN(1 / scale), the remainder r = a - q scale (exact with one fused
 * multiply-add), then RN(q + r y). Markstein's theorem (Muller et al.,
 * Handbook of Floating-Point Arithmetic, 2nd ed., th. 4.10 and its use
 * in IA-64 division) makes that RN(a / scale) when y is within half an
 * ulp of 1 / scale and q within one ulp of a / scale, both true here for
 * every a the decimal encoding admits (an integer, |a| < 2^53, no
 * overflow or underflow: scale is 10^0..10^15). tests/test_kernels.c
 * checks it against the division for every scale over |a| <= 2^20 and
 * random a up to 2^53. vdivpd was the decode's cost: one per 2.5 cycles
 * a lane on AVX2 (Zen 4), where the three FMA-unit ops cost 0.75 a lane
 * (bench_kernels, "unpack_dec" row). */
static inline __attribute__((always_inline)) dec_vd dec_div(dec_vd a, dec_vd scale, dec_vd y)
{
    dec_vd q = a * y;
    dec_vd r = DEC_FMA(-q, scale, a);
    return DEC_FMA(r, y, q);
}

static void dec_unpack_dec(const void *p, unsigned bits, size_t n, int64_t base, double scale,
                           double *out)
{
    uint32_t tmp[DEC_BLOCK];
    dec_unpack_fn un = dec_unpack[bits <= 32 ? bits : 0];
    double b = (double)base;
    dec_vd vb = (dec_vd){0} + b, vs = (dec_vd){0} + scale, vy = (dec_vd){0} + 1.0 / scale;
    for (size_t i = 0; i < n; i += DEC_BLOCK) {
        size_t m = n - i < DEC_BLOCK ? n - i : DEC_BLOCK, j = 0;
        un(p, i, m, n, tmp);
        double *o = out + i;
        /* x / 1.0 is x: integers skip the division. */
        if (scale == 1.0) {
            for (; j + PIPE_W <= m; j += PIPE_W) {
                dec_vu u;
                memcpy(&u, tmp + j, sizeof u);
                dec_vd d = dec_u2d(u) + vb;
                memcpy(o + j, &d, sizeof d);
            }
        } else {
            for (; j + PIPE_W <= m; j += PIPE_W) {
                dec_vu u;
                memcpy(&u, tmp + j, sizeof u);
                dec_vd d = dec_div(dec_u2d(u) + vb, vs, vy);
                memcpy(o + j, &d, sizeof d);
            }
        }
        for (; j < m; j++) o[j] = ((double)tmp[j] + b) / scale;
    }
}

static void dec_widen_f32(const void *p, size_t n, double *out)
{
    typedef float dec_vf __attribute__((vector_size(4 * PIPE_W)));
    const uint8_t *q = p;
    size_t i = 0;
    for (; i + PIPE_W <= n; i += PIPE_W) {
        dec_vf f;
        memcpy(&f, q + 4 * i, sizeof f);
        dec_vd d = __builtin_convertvector(f, dec_vd);
        memcpy(out + i, &d, sizeof d);
    }
    for (; i < n; i++) {
        float x;
        memcpy(&x, q + 4 * i, 4);
        out[i] = x;
    }
}

/* ---- agg_dec: decode, filter and aggregate in one pass --------------
 * Why fused: unpack_dec then agg_f64 wrote the chunk's doubles (64 KiB:
 * L2, not L1) and read them back, and the store was the decoder's cost
 * (perf on avx2: 40% of unpack_dec's samples on its vmovupd; 0.52 ns a
 * row written, against 0.27 for the entries alone). Here a block of
 * DEC_BLOCK entries goes to a u32 scratch in L1 and is consumed from
 * there. The filter compares entries with the code bounds sdb__dec_bounds
 * found once per call (exactly the rows whose decoded value passes) and
 * time offsets with sdb__off_bounds', as one unsigned compare of e - lo
 * against hi - lo each. Min and max are kept as entries (the value is
 * non-decreasing in the entry) and decoded once at the end. The sums stay
 * per row over the decoded doubles, so they are the doubles' sums: a sum of
 * entries as integers, then one division, would be the correctly rounded
 * sum of the decimals, not the sum of the rounded doubles every other
 * path adds (bit-identical only when scale is 1, and there the doubles
 * are integers whose sum is exact anyway). */
typedef int32_t dec_vi32 __attribute__((vector_size(4 * PIPE_W)));
typedef int64_t dec_vi64 __attribute__((vector_size(8 * PIPE_W)));

/* The filter, min and max in unsigned entry arithmetic: with u = e - e_lo
 * and w = e_hi - e (wrapping), a row passes exactly when u <= span (=
 * e_hi - e_lo), and then also w <= span, while a row outside has u > span
 * and w > span. So min(u, span) over every row is the passing rows'
 * least u (a row outside counts as span, no more than any passing u),
 * and min(w, span) likewise their least w, that is e_hi less their
 * greatest entry: two unsigned mins each (vpminud) and no select. A time
 * filter adds rows that fail on time only; their u and w are set to all
 * ones. Entries of at most 31 bits are non-negative int32s for the
 * conversion to double (vcvtdq2pd on either ISA); 32-bit entries take the
 * row loop. Register pressure shaped the rest (16 ymm registers on AVX2:
 * with six accumulators a chain the sums spilled to the stack): count,
 * min and max are one chain each (integer ops of latency 1), the sums
 * two. */
static inline __attribute__((always_inline)) dec_vu dec_minu(dec_vu a, dec_vu b)
{
    return DEC_MINU32(a, b);
}

typedef struct dec_sums {
    dec_vd sum, s1, s2; /* about k */
} dec_sums;

/* Lanes of keep (all ones or zero) add entry e's value. */
static inline __attribute__((always_inline)) void
dec_sums_add(dec_sums *a, dec_vi32 e, dec_vi32 keep, dec_vd vb, dec_vd vs, dec_vd vy, dec_vd vk,
             int div)
{
    dec_vi64 m = DEC_I32TO64(keep);
    dec_vd x = DEC_I32TOD(e) + vb;
    if (div) x = dec_div(x, vs, vy);
    dec_vd d = (dec_vd)((dec_vi64)(x - vk) & m);
    a->sum += (dec_vd)((dec_vi64)x & m);
    a->s1 += d;
    a->s2 = DEC_FMA(d, d, a->s2);
}

static inline __attribute__((always_inline)) void
dec_agg_body(const void *v, unsigned v_bits, double b, double scale, const void *t,
             unsigned t_bits, size_t n, double *kp, uint32_t elo, uint32_t ehi, uint32_t olo,
             uint32_t ohi, sdb_agg *out, int div, int use_t)
{
    double k = *kp;
    uint32_t ev[DEC_BLOCK], ov[DEC_BLOCK];
    dec_unpack_fn unv = dec_unpack[v_bits <= 32 ? v_bits : 0];
    dec_unpack_fn unt = dec_unpack[use_t && t_bits <= 32 ? t_bits : 0];
    const int vec = v_bits <= 31; /* else every row by the row loop */
    const dec_vd vb = (dec_vd){0} + b, vs = (dec_vd){0} + scale, vy = (dec_vd){0} + 1.0 / scale;
    dec_vd vk = (dec_vd){0} + k;
    const dec_vu velo = (dec_vu){0} + elo, vehi = (dec_vu){0} + ehi, vesp = vehi - velo;
    const dec_vu volo = (dec_vu){0} + olo, vosp = (dec_vu){0} + (ohi - olo);
    dec_sums a0 = {(dec_vd){0}, (dec_vd){0}, (dec_vd){0}}, a1 = a0;
    dec_vu mn = vesp, mw = vesp; /* least u and least w of the passing rows */
    uint64_t nv = 0;
    sdb_agg tl; /* the rows past the last whole pair of vectors of a block */
    sdb__agg_empty(&tl);
    for (size_t i = 0; i < n; i += DEC_BLOCK) {
        size_t m = n - i < DEC_BLOCK ? n - i : DEC_BLOCK, j = 0;
        unv(v, i, m, n, ev);
        if (use_t) unt(t, i, m, n, ov);
        if (k != k) {
            /* A NaN shift asks for the first passing row's value as K
             * (exec.c first_value's rule, without its scan of decoded
             * values); blocks before that row add nothing. */
            size_t r = 0;
            while (r < m && (ev[r] - elo > ehi - elo || (use_t && ov[r] - olo > ohi - olo))) r++;
            if (r == m) continue;
            k = ((double)ev[r] + b) / scale;
            vk = (dec_vd){0} + k;
        }
        dec_vu cnt = (dec_vu){0};
        for (; vec && j + 2 * PIPE_W <= m; j += 2 * PIPE_W) {
            dec_vu e0, e1;
            memcpy(&e0, ev + j, sizeof e0);
            memcpy(&e1, ev + j + PIPE_W, sizeof e1);
            dec_vu u0 = e0 - velo, u1 = e1 - velo;
            dec_vu um0 = dec_minu(u0, vesp), um1 = dec_minu(u1, vesp);
            dec_vu wm0 = dec_minu(vehi - e0, vesp), wm1 = dec_minu(vehi - e1, vesp);
            dec_vu k0 = (dec_vu)(um0 == u0), k1 = (dec_vu)(um1 == u1);
            if (use_t) {
                dec_vu o0, o1;
                memcpy(&o0, ov + j, sizeof o0);
                memcpy(&o1, ov + j + PIPE_W, sizeof o1);
                o0 -= volo;
                o1 -= volo;
                dec_vu t0 = (dec_vu)(dec_minu(o0, vosp) == o0);
                dec_vu t1 = (dec_vu)(dec_minu(o1, vosp) == o1);
                k0 &= t0;
                k1 &= t1;
                um0 |= ~t0;
                um1 |= ~t1;
                wm0 |= ~t0;
                wm1 |= ~t1;
            }
            cnt -= k0 + k1;
            mn = dec_minu(mn, dec_minu(um0, um1));
            mw = dec_minu(mw, dec_minu(wm0, wm1));
            dec_sums_add(&a0, (dec_vi32)e0, (dec_vi32)k0, vb, vs, vy, vk, div);
            dec_sums_add(&a1, (dec_vi32)e1, (dec_vi32)k1, vb, vs, vy, vk, div);
        }
        for (int l = 0; l < PIPE_W; l++) nv += (uint32_t)cnt[l];
        for (; j < m; j++) {
            if (ev[j] - elo > ehi - elo || (use_t && ov[j] - olo > ohi - olo)) continue;
            sdb_agg_add(&tl, ((double)ev[j] + b) / scale, k);
        }
    }
    *out = tl;
    *kp = k;
    if (nv == 0) return;
    uint32_t umin = ehi - elo, wmin = ehi - elo;
    for (int l = 0; l < PIPE_W; l++) {
        out->sum += a0.sum[l] + a1.sum[l];
        out->s1 += a0.s1[l] + a1.s1[l];
        out->s2 += a0.s2[l] + a1.s2[l];
        umin = mn[l] < umin ? mn[l] : umin;
        wmin = mw[l] < wmin ? mw[l] : wmin;
    }
    uint32_t emin = elo + umin, emax = ehi - wmin;
    /* The decoder's values of the extreme entries (dec_div and the
     * division give the same double). */
    double lo = ((double)emin + b) / scale, hi = ((double)emax + b) / scale;
    out->n += nv;
    out->min = lo < out->min ? lo : out->min;
    out->max = hi > out->max ? hi : out->max;
}

static void dec_agg_dec(const void *v, unsigned v_bits, int64_t v_base, double scale,
                        const void *t, unsigned t_bits, int64_t t_base, size_t n,
                        const sdb_filter *f, sdb_agg *out, double *out_k)
{
    uint32_t elo, ehi, olo = 0, ohi = UINT32_MAX;
    double b = (double)v_base, kk = f->shift, *k = out_k ? out_k : &kk;
    *k = f->shift;
    sdb__agg_empty(out);
    if (!sdb__dec_bounds(f, v_bits, v_base, scale, &elo, &ehi)) return;
    if (t && !sdb__off_bounds(f, t_bits, t_base, &olo, &ohi)) return;
    /* x / 1.0 is x: integers skip the division. */
    if (t) {
        if (scale == 1.0)
            dec_agg_body(v, v_bits, b, scale, t, t_bits, n, k, elo, ehi, olo, ohi, out, 0, 1);
        else
            dec_agg_body(v, v_bits, b, scale, t, t_bits, n, k, elo, ehi, olo, ohi, out, 1, 1);
    } else {
        if (scale == 1.0)
            dec_agg_body(v, v_bits, b, scale, t, t_bits, n, k, elo, ehi, olo, ohi, out, 0, 0);
        else
            dec_agg_body(v, v_bits, b, scale, t, t_bits, n, k, elo, ehi, olo, ohi, out, 1, 0);
    }
}

/* ---- narrow ids (store format 6; a block of its own) ----
 * Dimension ids and type/source codes: each block's entries unpacked to
 * u32 by the same width-specialised loops, then narrowed to the caller's
 * width in whole vectors (vpmovdb / vpmovdw, or a pack on avx2). */
typedef uint16_t dec_vw __attribute__((vector_size(2 * PIPE_W)));
typedef uint8_t dec_vb __attribute__((vector_size(PIPE_W)));

/* Entries of B <= 8 bits straight into bytes: 8 entries are the B bytes
 * of one group, and three spreads of a 64-bit word (entries 4-7 up to
 * bit 32, then 2-3 of each half up by 16, then every odd entry up by 8)
 * put entry e in byte e; a vector holds 8 groups, so 64 entries take 8
 * loads and 15 operations. Through the u32 scratch (the loop below) a
 * 2-5 bit column took 0.5 ns a row on avx512, as long as a 12-bit one
 * into u16s. Groups whose load would pass the column's end (n entries,
 * 7 bytes of padding) are left to the caller's loop; returns the entries
 * done. */
static inline uint64_t dec_ld8(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The 64 entries of b (1..8) bits from bit sh of p (sh < 8, and 0 when b
 * is 8: 8b <= 56 bits of each group's load remain after the shift), entry
 * e in byte e of *out (by pointer: a 64-byte vector return changes the
 * avx2 ABI). The vector is built from eight scalar loads, not through
 * memory: a vector load of the 8 stores just made stalls on store
 * forwarding (perf: 70% of dec_ids8's samples on that store and load,
 * combined.none / model.model_prompt cells at 1M). pkbits_body.h tests
 * the same spread against a set without storing it. */
static inline __attribute__((always_inline)) void dec_spread8(const uint8_t *p, unsigned b,
                                                              unsigned sh, dec_v8q *out)
{
    const uint64_t lo4 = (1ull << 4 * b) - 1, lo2 = (1ull << 2 * b) - 1, lo1 = (1ull << b) - 1;
    const uint64_t a2 = lo2 | lo2 << 32, a1 = lo1 | lo1 << 16 | lo1 << 32 | lo1 << 48;
    dec_v8q x = {dec_ld8(p), dec_ld8(p + b), dec_ld8(p + 2 * b), dec_ld8(p + 3 * b),
                 dec_ld8(p + 4 * b), dec_ld8(p + 5 * b), dec_ld8(p + 6 * b), dec_ld8(p + 7 * b)};
    x >>= sh;
    dec_v8q t = (x & lo4) | ((x >> (4 * b)) & lo4) << 32;
    t = (t & a2) | ((t >> (2 * b)) & a2) << 16;
    *out = (t & a1) | ((t >> b) & a1) << 8;
}

static inline __attribute__((always_inline)) size_t dec_ids8(const uint8_t *p, unsigned b, size_t n,
                                                             uint8_t *o)
{
    size_t end = (n * b + 7) / 8 + 7, i = 0;
    for (; i + 64 <= n && (i / 8 + 7) * b + 8 <= end; i += 64) {
        dec_v8q t;
        dec_spread8(p + i / 8 * b, b, 0, &t);
        memcpy(o + i, &t, 64);
    }
    return i;
}

#define DEC_IDS8(B)                                                                  \
    static size_t dec_ids8_##B(const uint8_t *p, size_t n, uint8_t *o) { return dec_ids8(p, B, n, o); }
DEC_IDS8(1) DEC_IDS8(2) DEC_IDS8(3) DEC_IDS8(4) DEC_IDS8(5) DEC_IDS8(6) DEC_IDS8(7) DEC_IDS8(8)
#undef DEC_IDS8
static size_t (*const dec_ids8_fn[9])(const uint8_t *, size_t, uint8_t *) = {
    NULL, dec_ids8_1, dec_ids8_2, dec_ids8_3, dec_ids8_4, dec_ids8_5, dec_ids8_6, dec_ids8_7, dec_ids8_8,
};

static void dec_unpack_ids(const void *p, unsigned bits, size_t n, unsigned w, void *out)
{
    if (w == 1 && bits >= 1 && bits <= 8) {
        const uint8_t *q = p;
        uint8_t *o = out;
        size_t i = dec_ids8_fn[bits](q, n, o);
        for (; i < n; i++) {
            uint64_t x;
            memcpy(&x, q + i * bits / 8, 8);
            o[i] = (uint8_t)(x >> (i * bits % 8) & ((1u << bits) - 1));
        }
        return;
    }
    uint32_t tmp[DEC_BLOCK];
    dec_unpack_fn un = dec_unpack[bits <= 32 ? bits : 0];
    uint8_t *o = out;
    for (size_t i = 0; i < n; i += DEC_BLOCK) {
        size_t m = n - i < DEC_BLOCK ? n - i : DEC_BLOCK, j = 0;
        if (w == 4) {
            un(p, i, m, n, tmp);
            memcpy(o + 4 * i, tmp, 4 * m);
            continue;
        }
        un(p, i, m, n, tmp);
        if (w == 1) {
            for (; j + PIPE_W <= m; j += PIPE_W) {
                dec_vu u;
                memcpy(&u, tmp + j, sizeof u);
                dec_vb b = __builtin_convertvector(u, dec_vb);
                memcpy(o + i + j, &b, sizeof b);
            }
            for (; j < m; j++) o[i + j] = (uint8_t)tmp[j];
        } else {
            for (; j + PIPE_W <= m; j += PIPE_W) {
                dec_vu u;
                memcpy(&u, tmp + j, sizeof u);
                dec_vw h = __builtin_convertvector(u, dec_vw);
                memcpy(o + 2 * (i + j), &h, sizeof h);
            }
            for (; j < m; j++) {
                uint16_t h = (uint16_t)tmp[j];
                memcpy(o + 2 * (i + j), &h, 2);
            }
        }
    }
}

#endif
