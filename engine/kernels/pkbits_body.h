/* Filters over bit-packed columns (store format 6), one body for every
 * SIMD table; a block of its own.
 *
 * Format 6 keeps dimension ids and type/source codes at the chunk's
 * widths (an environment 2 bits, a model 4). A filter over such a column
 * used to unpack the whole segment to bytes (unpack_ids) and then run
 * bits_lut8 over the bytes: a store and a reload of every row, also of
 * the rows the time filter had already dropped. bits_pk tests the packed
 * entries where they lie: 64 entries at a time are spread into a 64-byte
 * register by dec_body.h's three shifts (dec_spread8, from any bit offset)
 * and looked up in the filter's 256-bit set by bits_lut8's two shuffles,
 * straight into the selection word; a 1-bit column is its own bitmap (the
 * word or its complement); an 8-bit one is a byte column (bits_lut8).
 * A word whose selection is already empty is not read.
 *
 * zstd's pattern: included by avx2.c and avx512.c after bits_body.h
 * (bits_vb, bits_set_word, BITS_BW) and dec_body.h (dec_spread8), each
 * defining PK_UNPACKLO8/HI8/LO16/HI16(a, b): the in-lane interleaves of
 * bytes and 16-bit words (vpunpck*). Semantics are scalar.c's
 * (kernels.h): bits exactly.
 */
#ifndef BITS_BW
#error "include bits_body.h before pkbits_body.h"
#endif

/* The whole words (64 entries each, at most nw) of B bits; returns the
 * words done. The loads stay inside the column and its 7 bytes of padding:
 * the last group of a whole word ends at byte 8B + 7 of the word's start. */
static inline __attribute__((always_inline)) size_t pk_words(const uint8_t *p, unsigned b, size_t i0,
                                                             size_t nw, const uint8_t *set,
                                                             const uint64_t *in, uint64_t *out)
{
    const bits_vb t0 = bits_rep16(set), t1 = bits_rep16(set + 16), p2 = bits_rep16(bits_pow2);
    const unsigned sh = (unsigned)(i0 * b % 8);
    const uint8_t *q = p + i0 * b / 8;
    for (size_t w = 0; w < nw; w++, q += 8 * b) {
        if (!in[w]) {
            out[w] = 0;
            continue;
        }
        dec_v8q t;
        dec_spread8(q, b, sh, &t);
        uint64_t word = 0;
        for (int j = 0; j < 64; j += BITS_BW) {
            bits_vb x;
            memcpy(&x, (const uint8_t *)&t + j, sizeof x);
            word |= bits_set_word(x, t0, t1, p2) << j;
        }
        out[w] = in[w] & word;
    }
    return nw;
}

#define PK_WORDS(B)                                                                             \
    static size_t pk_words_##B(const uint8_t *p, size_t i0, size_t nw, const uint8_t *set,      \
                               const uint64_t *in, uint64_t *out)                               \
    {                                                                                           \
        return pk_words(p, B, i0, nw, set, in, out);                                            \
    }
PK_WORDS(2) PK_WORDS(3) PK_WORDS(4) PK_WORDS(5) PK_WORDS(6) PK_WORDS(7)
#undef PK_WORDS
static size_t (*const pk_words_fn[8])(const uint8_t *, size_t, size_t, const uint8_t *,
                                      const uint64_t *, uint64_t *) = {
    NULL, NULL, pk_words_2, pk_words_3, pk_words_4, pk_words_5, pk_words_6, pk_words_7,
};

/* 2 and 4 bits from a byte boundary: each 16-byte lane of a vector holds
 * whole entries, so the membership of every entry is one pshufb of a
 * 16-entry table (t16[e] = 0xff when e is in the set) per field of the
 * bytes, and the in-lane byte (and for 2 bits word) interleaves of those
 * put the entries back in order, 16 of a lane in 16 bits of a movemask:
 * 64 entries cost one load and ~6 operations at 4 bits, against the
 * spread's 8 loads and ~20. */
static inline uint64_t pk_lane(uint64_t m, unsigned l)
{
    return m >> 16 * l & 0xffff;
}

/* Whether the k words of in are all empty (then so are out's): a step of
 * several words is skipped whole. */
static inline int pk_none(const uint64_t *in, uint64_t *out, unsigned k)
{
    uint64_t any = 0;
    for (unsigned j = 0; j < k; j++) any |= in[j];
    if (any) return 0;
    for (unsigned j = 0; j < k; j++) out[j] = 0;
    return 1;
}

/* 4 bits: BITS_BW bytes are BITS_BW / 32 words, lane l entries 32 l... */
static size_t pk_nib4(const uint8_t *q, size_t nw, bits_vb t16, const uint64_t *in, uint64_t *out)
{
    enum { WPS = BITS_BW / 32 };
    size_t w = 0;
    for (; w + WPS <= nw; w += WPS, q += BITS_BW) {
        if (pk_none(in + w, out + w, WPS)) continue;
        bits_vb x = bits_ldb(q);
        bits_vb lo = BITS_PSHUFB(t16, x & 15), hi = BITS_PSHUFB(t16, x >> 4);
        uint64_t ml = BITS_MOVEMASK8(PK_UNPACKLO8(lo, hi)), mh = BITS_MOVEMASK8(PK_UNPACKHI8(lo, hi));
        for (unsigned k = 0; k < WPS; k++)
            out[w + k] = in[w + k] & (pk_lane(ml, 2 * k) | pk_lane(mh, 2 * k) << 16 |
                                      pk_lane(ml, 2 * k + 1) << 32 | pk_lane(mh, 2 * k + 1) << 48);
    }
    return w;
}

/* 2 bits: BITS_BW bytes are BITS_BW / 16 words, lane l word l. */
static size_t pk_nib2(const uint8_t *q, size_t nw, bits_vb t16, const uint64_t *in, uint64_t *out)
{
    enum { WPS = BITS_BW / 16 };
    size_t w = 0;
    for (; w + WPS <= nw; w += WPS, q += BITS_BW) {
        if (pk_none(in + w, out + w, WPS)) continue;
        bits_vb x = bits_ldb(q);
        bits_vb m0 = BITS_PSHUFB(t16, x & 3), m1 = BITS_PSHUFB(t16, x >> 2 & 3);
        bits_vb m2 = BITS_PSHUFB(t16, x >> 4 & 3), m3 = BITS_PSHUFB(t16, x >> 6);
        bits_vb a = PK_UNPACKLO8(m0, m1), b = PK_UNPACKLO8(m2, m3); /* entries 4i, 4i+1 | 4i+2, 4i+3 */
        bits_vb c = PK_UNPACKHI8(m0, m1), d = PK_UNPACKHI8(m2, m3);
        uint64_t r0 = BITS_MOVEMASK8(PK_UNPACKLO16(a, b)), r1 = BITS_MOVEMASK8(PK_UNPACKHI16(a, b));
        uint64_t r2 = BITS_MOVEMASK8(PK_UNPACKLO16(c, d)), r3 = BITS_MOVEMASK8(PK_UNPACKHI16(c, d));
        for (unsigned k = 0; k < WPS; k++)
            out[w + k] = in[w + k] & (pk_lane(r0, k) | pk_lane(r1, k) << 16 | pk_lane(r2, k) << 32 |
                                      pk_lane(r3, k) << 48);
    }
    return w;
}

static void bits_pk(const void *pv, unsigned bits, size_t i0, size_t n, const uint8_t *set,
                    const uint64_t *in, uint64_t *out)
{
    const uint8_t *p = pv;
    if (bits == 8) {
        bits_lut8(p + i0, n, set, in, out);
        return;
    }
    size_t w = 0, nw = n / 64;
    if (bits == 1) {
        /* The column is the bitmap of entry 1; a set of both or neither
         * entry is every row or none. */
        uint64_t m1 = set[0] & 2 ? ~0ull : 0, m0 = set[0] & 1 ? ~0ull : 0;
        const uint8_t *q = p + i0 / 8;
        unsigned sh = (unsigned)(i0 % 8);
        for (; w < nw; w++, q += 8) {
            uint64_t x;
            memcpy(&x, q, 8);
            if (sh) x = x >> sh | (uint64_t)q[8] << (64 - sh);
            out[w] = in[w] & ((x & m1) | (~x & m0));
        }
    } else if (bits >= 2 && bits <= 7) {
        if ((bits == 2 || bits == 4) && i0 * bits % 8 == 0) {
            uint8_t t[16];
            for (unsigned e = 0; e < 16; e++) t[e] = set[e >> 3] >> (e & 7) & 1 ? 0xff : 0;
            const uint8_t *q = p + i0 * bits / 8;
            w = bits == 2 ? pk_nib2(q, nw, bits_rep16(t), in, out) : pk_nib4(q, nw, bits_rep16(t), in, out);
        }
        if (w < nw) w += pk_words_fn[bits](p, i0 + 64 * w, nw - w, set, in + w, out + w);
    }
    sdb__bits_pk_ref(p, bits, i0, n, w, set, in, out);
}
