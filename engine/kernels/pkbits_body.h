/* Filters over bit-packed columns (store format 6), one body for every
 * SIMD table; a block of its own.
 *
 * Format 6 keeps dimension ids and type/source codes at the chunk's
 * widths (an environment 2 bits, a model 4). A filter over such a column
 * used to unpack the whole segment to bytes (unpack_ids) and then run
 * bits_lut8 over the bytes: a store and a reload of every row, also of
 * the rows the time filter had already dropped. bits_pk tests the packed
 * entries where they lie: 64 entries at a time are spread into a 64-byte
 * register by dec_body.h's three shifts (dec_ids8's, from any bit offset)
 * and looked up in the filter's 256-bit set by bits_lut8's two shuffles,
 * straight into the selection word; a 1-bit column is its own bitmap (the
 * word or its complement); an 8-bit one is a byte column (bits_lut8).
 * A word whose selection is already empty is not read.
 *
 * zstd's pattern: included by avx2.c and avx512.c after bits_body.h
 * (bits_vb, bits_set_word, BITS_BW) and dec_body.h (dec_v8q). Semantics
 * are scalar.c's (kernels.h): bits exactly.
 */
#ifndef BITS_BW
#error "include bits_body.h before pkbits_body.h"
#endif

/* Entry i of b (0..8) bits of a packed column. */
static inline uint32_t pk_entry(const uint8_t *p, unsigned b, size_t i)
{
    if (!b) return 0; /* an absent column: no bytes to read */
    uint64_t x, bit = (uint64_t)i * b;
    memcpy(&x, p + (bit >> 3), 8);
    return (uint32_t)(x >> (bit & 7) & ((1ull << b) - 1));
}

/* The 64 entries of B (2..7) bits from bit sh (< 8) of p, entry e in byte
 * e: 8 loads of the 8 groups of 8 entries (B bytes each, 8B <= 56 bits so
 * the shift by sh keeps a whole group), then dec_ids8's spreads. */
static inline __attribute__((always_inline)) void pk_spread(const uint8_t *p, unsigned b,
                                                            unsigned sh, dec_v8q *out)
{
    const uint64_t lo4 = (1ull << 4 * b) - 1, lo2 = (1ull << 2 * b) - 1, lo1 = (1ull << b) - 1;
    const uint64_t a2 = lo2 | lo2 << 32, a1 = lo1 | lo1 << 16 | lo1 << 32 | lo1 << 48;
    dec_v8q x;
    for (unsigned j = 0; j < 8; j++) memcpy(&x[j], p + j * b, 8);
    x >>= sh;
    dec_v8q t = (x & lo4) | ((x >> (4 * b)) & lo4) << 32;
    t = (t & a2) | ((t >> (2 * b)) & a2) << 16;
    *out = (t & a1) | ((t >> b) & a1) << 8;
}

/* The whole words (64 entries each, at most nw) of B bits; returns the
 * words done. The loads stay inside the column and its 7 bytes of padding:
 * the last group of a whole word ends at byte 8B + 7 of the word's start. */
static inline __attribute__((always_inline)) size_t pk_words(const uint8_t *p, unsigned b, size_t i0,
                                                             size_t nw, const uint8_t *set,
                                                             const uint64_t *in, uint64_t *out)
{
    const bits_vb t0 = bits_rep16(set), t1 = bits_rep16(set + 16);
    const unsigned sh = (unsigned)(i0 * b % 8);
    const uint8_t *q = p + i0 * b / 8;
    for (size_t w = 0; w < nw; w++, q += 8 * b) {
        if (!in[w]) {
            out[w] = 0;
            continue;
        }
        dec_v8q t;
        pk_spread(q, b, sh, &t);
        uint64_t word = 0;
        for (int j = 0; j < 64; j += BITS_BW) {
            bits_vb x;
            memcpy(&x, (const uint8_t *)&t + j, sizeof x);
            word |= bits_set_word(x, t0, t1) << j;
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
        w = pk_words_fn[bits](p, i0, nw, set, in, out);
    }
    for (size_t base = w * 64; base < n; w++, base += 64) {
        if (!in[w]) {
            out[w] = 0;
            continue;
        }
        size_t cnt = n - base < 64 ? n - base : 64;
        uint64_t word = 0;
        for (size_t j = 0; j < cnt; j++) {
            uint32_t e = pk_entry(p, bits, i0 + base + j);
            word |= (uint64_t)(set[e >> 3] >> (e & 7) & 1) << j;
        }
        out[w] = in[w] & word;
    }
}
