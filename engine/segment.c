/* Column segments: the unit analytics read.
 *
 * A segment holds up to chunk_rows scores of one (project, name, time
 * bucket) as column arrays behind a 128-byte header. The header
 * is both a zone map (time and value ranges, type counts) and a
 * pre-aggregate (count, sum, sum of squared deviations), so a query that
 * covers a whole segment with no row filter reads 128 bytes, not the
 * columns. The header keeps M2 = sum((v - mean)^2) rather than a raw sum of
 * squares: merged with Chan et al.'s formula it gives a standard deviation
 * that stays exact to ~1e-15 even when the mean is large against the
 * spread, where sum-of-squares loses every digit.
 *
 * Each column is encoded per segment, the narrowest encoding that gives
 * every row back bit for bit (internal.h draws the layout, docs/storage.md
 * says why each): times as bit-packed offsets from the chunk's earliest,
 * values as decimals (i / 10^e, which is what a client's "0.85" parses
 * to; booleans, grades and label ids are e = 0) or f32 or f64, trace
 * numbers (engine/tracenum.c) and refs as bit-packed offsets from the
 * chunk's smallest, dimension ids at byte widths. The fold is where the
 * encoder's cost goes (a few divisions a value); readers decode whole columns through the kernel table
 * (sdb__seg_ts/values/traces), a pass over a chunk that stays in L1/L2,
 * and the SIMD kernels then scan f64/i64 arrays as before.
 *
 * Invariant: the header always describes exactly the rows of its columns;
 * every change rebuilds the whole chunk through sdb__seg_build().
 */
#include "internal.h"

#include <math.h>

void sdb__seg_key(uint8_t *k, uint32_t project, uint32_t name, int64_t bucket,
                  uint32_t chunk)
{
    sdb__be32(k, project);
    sdb__be32(k + 4, name);
    sdb__be64(k + 8, sdb__ts_key(bucket));
    sdb__be32(k + 16, chunk);
}

#define B8(x) (0x0101010101010101ull * (x)) /* byte x in each of 8 bytes */

/* 10^e for the decimal encoding: each literal is exact in a double. */
static const double p10[SDB__SEG_MAX_EXP + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* By a packed column's width byte b: the bytes sdb__pk_len adds past the
 * bits (7 for 1..32, 0 for 0 and SDB__PK_RAW), or 0x80 when b is no width.
 * One load from L1 checks a width and sizes its column: every query
 * opens every segment it keeps (query g: 4500), and the checks were 12%
 * of that query at 1M rows when each was a compare chain. */
#define PAD4(x) x, x, x, x
#define PAD16(x) PAD4(x), PAD4(x), PAD4(x), PAD4(x)
static const uint8_t pk_pad[256] = {
    0,          PAD16(7),   PAD16(7), /* 1..32 */
    PAD16(0x80), PAD4(0x80), PAD4(0x80), PAD4(0x80), 0x80, 0x80, 0x80, /* 33..63 */
    0,                                                                /* 64 */
    PAD16(0x80), PAD16(0x80), PAD16(0x80), PAD16(0x80), PAD16(0x80), PAD16(0x80),
    PAD16(0x80), PAD16(0x80), PAD16(0x80), PAD16(0x80), PAD16(0x80), /* 65..240 */
    PAD4(0x80), PAD4(0x80), PAD4(0x80), 0x80, 0x80, 0x80,             /* 241..255 */
};
_Static_assert(SDB__PK_RAW == 64, "pk_pad has the raw width at 64");
#undef PAD4
#undef PAD16

/* Every query opens every segment it keeps, most of them only for the
 * header (query g: 4500 of them in 0.3 ms), so the open stays a few dozen
 * instructions: the checks are OR-ed into one branch, the six width
 * bytes are checked as one word (SWAR; the format is little-endian, so
 * byte d of the word is dim_w[d]), and the dimension columns' pointers
 * are left to sdb__seg_dim_col(). Measured on one core, cache-hot: the
 * fixed layout's open took 5 ns; a loop over the widths that read them
 * back from the copied header and stored six pointers took 11; the SWAR
 * open of byte widths 6. */
/* The byte lengths of a segment's columns from its header (any header:
 * each is at most 8 n + 7 for a u32 n, since the widths are bytes). */
typedef struct seg_lens {
    size_t ts, v, tr, ref, dim;
} seg_lens;

static inline uint64_t lens_of(const sdb__seg_hdr *h, seg_lens *l)
{
    uint64_t n = h->n_rows;
    unsigned pt = pk_pad[h->ts_bits], pr = pk_pad[h->ref_bits], ptr = pk_pad[h->tr_bits];
    unsigned ve = h->v_enc & 3u, vb = ve == SDB__V_DEC ? h->v_bits : 64u >> ve;
    unsigned pv = ve == SDB__V_DEC ? pk_pad[vb] : 0;
    l->ts = (n * h->ts_bits + 7) / 8 + (pt & 7);
    l->v = (n * vb + 7) / 8 + (pv & 7);
    l->tr = (n * h->tr_bits + 7) / 8 + (ptr & 7);
    l->ref = (n * h->ref_bits + 7) / 8 + (pr & 7);
    l->dim = 0;
    for (int d = 0; d < SDB_N_DIMS; d++) l->dim += (n * h->dim_w[d] + 7) / 8;
    return (pt | pr | ptr | pv) >> 7; /* some width is no width */
}

static inline void set_cols(sdb__seg *g, const seg_lens *l)
{
    const uint8_t *c = g->start + sizeof(sdb__seg_hdr);
    g->ts = c;
    g->value = c + l->ts;
    g->trace = g->value + l->v;
    g->ref = g->trace + l->tr;
    g->dim0 = g->ref + l->ref;
    g->tsrc = g->dim0 + l->dim;
}

static inline uint64_t dim_word(const sdb__seg_hdr *h)
{
    uint64_t w; /* dim_w[0..5], ref_bits, ts_bits */
    memcpy(&w, h->dim_w, 8);
    return w & 0xFFFFFFFFFFFFull;
}

int sdb__seg_open(const void *p, size_t len, sdb__seg *g)
{
    if (len < sizeof(sdb__seg_hdr)) return SDB_ECORRUPT;
    memcpy(&g->h, p, sizeof g->h);
    const sdb__seg_hdr *h = &g->h;
    uint64_t dw = dim_word(h);
    uint32_t n = h->n_rows;
    unsigned ve = h->v_enc, vb = h->v_bits;
    /* A dimension width is 0..32 bits: no byte of 64 or more, and none
     * that adding 31 to its low six bits carries into bit 6 (33..63). */
    uint64_t bad = (dw & B8(0xC0)) | (((dw & B8(0x3F)) + B8(31)) & B8(0x40));
    bad |= (h->tsrc_bits > 8) | ((h->flags & ~SDB__SEG_PADDED) != 0);
    /* Decimal values take 0..32 bits (pk_pad, in lens_of) and an exponent
     * up to 15; the other encodings neither. */
    bad |= (ve > SDB__V_DEC) | (h->v_exp > SDB__SEG_MAX_EXP);
    bad |= (ve != SDB__V_DEC) & ((vb | h->v_exp) != 0);
    /* Trace numbers are u32: 0..32 bits, and no entry past 2^32 - 1
     * (the plan lowers a base that would let one). */
    bad |= (h->tr_bits > 32) | ((uint64_t)h->tr_base + ((1ull << (h->tr_bits & 63)) - 1) > UINT32_MAX);
    bad |= (h->magic != SDB__SEG_MAGIC) | (h->version != SDB__SEG_VERSION);
    bad |= (uint64_t)h->n_type[0] + h->n_type[1] + h->n_type[2] != n;
    seg_lens l;
    bad |= lens_of(h, &l);
    /* No overflow of a 64-bit size_t: a dozen terms of at most 8 n + 7. */
    size_t cols = sizeof(sdb__seg_hdr) + l.ts + l.v + l.tr + l.ref + l.dim +
                  ((size_t)n * h->tsrc_bits + 7) / 8 + ((dw | h->tsrc_bits) ? 7 : 0);
    /* A padded segment is exactly one byte past the leaf limit, its
     * columns within it; any other is exactly its columns. */
    bad |= h->flags & SDB__SEG_PADDED ? cols > SDB__SEG_LEAF_MAX || len != SDB__SEG_LEAF_MAX + 1
                                      : len != cols;
    if (bad) return SDB_ECORRUPT;
    g->start = p;
    g->len = len;
    g->n = n;
    set_cols(g, &l);
    return SDB_OK;
}

void sdb__seg_head(const void *p, size_t len, sdb__seg *g)
{
    memcpy(&g->h, p, sizeof g->h);
    g->start = p;
    g->len = len;
    g->n = g->h.n_rows;
}

void sdb__seg_cols(sdb__seg *g)
{
    seg_lens l;
    lens_of(&g->h, &l);
    set_cols(g, &l);
}

double sdb__seg_value_at(const sdb__seg *g, uint32_t i)
{
    switch (g->h.v_enc) {
    case SDB__V_F32: {
        float x;
        memcpy(&x, g->value + 4 * (size_t)i, 4);
        return x;
    }
    case SDB__V_DEC: {
        /* the kernels' formula (kernels.h, unpack_dec) */
        double x = (double)sdb__pk_get(g->value, g->h.v_bits, i);
        return (x + (double)g->h.v_base) / p10[g->h.v_exp];
    }
    default: {
        double x;
        memcpy(&x, g->value + 8 * (size_t)i, 8);
        return x;
    }
    }
}

void sdb__seg_row(const sdb__seg *g, uint32_t i, sdb__fixed *fx)
{
    fx->ts = sdb__seg_ts_at(g, i);
    fx->value = sdb__seg_value_at(g, i);
    fx->trace = sdb__seg_trace_at(g, i);
    fx->ref = sdb__seg_ref(g, i);
    for (int d = 0; d < SDB_N_DIMS; d++) fx->dims[d] = sdb__seg_dim(g, d, i);
    fx->type = sdb__seg_type(g, i);
    fx->source = sdb__seg_source(g, i);
    fx->ingested = 0;
    memset(fx->pad, 0, sizeof fx->pad);
}

const void *sdb__seg_ts(const sdb__seg *g, const sdb_kernels *k, int64_t *tmp)
{
    if (g->h.ts_bits == SDB__PK_RAW) return g->ts;
    k->unpack_u64(g->ts, g->h.ts_bits, g->n, (uint64_t)g->h.ts_min, (uint64_t *)tmp);
    return tmp;
}

const void *sdb__seg_values(const sdb__seg *g, const sdb_kernels *k, double *tmp)
{
    switch (g->h.v_enc) {
    case SDB__V_F32: k->widen_f32(g->value, g->n, tmp); return tmp;
    case SDB__V_DEC:
        k->unpack_dec(g->value, g->h.v_bits, g->n, g->h.v_base, p10[g->h.v_exp], tmp);
        return tmp;
    default: return g->value;
    }
}

const void *sdb__seg_traces(const sdb__seg *g, const sdb_kernels *k, uint64_t *tmp)
{
    k->unpack_u64(g->trace, g->h.tr_bits, g->n, g->h.tr_base, tmp);
    return tmp;
}

const uint8_t *sdb__seg_dim_bytes(const sdb__seg *g, const sdb_kernels *k, int d, void *tmp,
                                  unsigned *out_w)
{
    unsigned b = g->h.dim_w[d], w = b == 0 ? 0 : b <= 8 ? 1 : b <= 16 ? 2 : 4;
    const uint8_t *p = sdb__seg_dim_col(g, d);
    *out_w = w;
    if (b == 8 * w) return p; /* 0, 8, 16, 32 bits: already bytes */
    k->unpack_ids(p, b, g->n, w, tmp);
    return tmp;
}

const uint8_t *sdb__seg_tsrc(const sdb__seg *g, const sdb_kernels *k, uint8_t *tmp)
{
    if (g->h.tsrc_bits == 8) return g->tsrc;
    k->unpack_ids(g->tsrc, g->h.tsrc_bits, g->n, 1, tmp);
    return tmp;
}

const void *sdb__seg_dim_u32(const sdb__seg *g, int d, uint32_t *tmp)
{
    const uint8_t *p = sdb__seg_dim_col(g, d);
    unsigned b = g->h.dim_w[d];
    if (b == 32) return p;
    sdb__kernels()->unpack_ids(p, b, g->n, 4, tmp);
    return tmp;
}

/* ------------------------------------------------------------ encoding */

/* A row's type | source << 2. Ingest validates type and source (< 3);
 * two bits each keep them exactly, and what the column reads back is what
 * the header counts. */
static inline uint32_t tsrc_code(const sdb__fixed *r)
{
    SDB_ASSERT(r->type < 4 && r->source < 4);
    return (r->type & 3u) | (r->source & 3u) << 2;
}

/* Bits of the largest of x: 0 for 0, 64 past 32 (raw). */
static unsigned span_bits(uint64_t x)
{
    unsigned b = x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
    return b <= 32 ? b : SDB__PK_RAW;
}

static inline bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* The integer i with (double)i / 10^e == v bit for bit, if there is one
 * below 2^53 (where doubles hold every integer). */
static bool dec_of(double v, unsigned e, int64_t *out)
{
    double x = v * p10[e];
    if (!(fabs(x) < 9007199254740992.0)) return false; /* also NaN */
    int64_t i = llround(x);
    if (!same_bits((double)i / p10[e], v)) return false;
    *out = i;
    return true;
}

/* The decimal encoding of rows[0..n)'s values: the smallest e that gives
 * every value back and the range of their integers, or false (then the
 * chunk is f32 or f64). A value that needs e needs nothing smaller, and
 * the integers of e serve e + 1 times ten, so e only grows; the first
 * value that no e <= SDB__SEG_MAX_EXP gives back (any value with more
 * digits than a score text carries) ends the search, so an f64 chunk
 * pays a few divisions, not n. */
static bool plan_dec(const sdb__fixed *const *rows, uint32_t n, sdb__seg_fmt *f)
{
    unsigned e = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN, x;
    for (uint32_t i = 0; i < n; i++) {
        while (!dec_of(rows[i]->value, e, &x))
            if (++e > SDB__SEG_MAX_EXP) return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        /* every value again at the final e (the loop above may have
         * passed earlier ones at a smaller one) */
        if (!dec_of(rows[i]->value, e, &x)) return false;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    unsigned b = n ? span_bits((uint64_t)hi - (uint64_t)lo) : 0;
    if (b == SDB__PK_RAW) return false;
    /* The decoders add the entry and the base as doubles: exact below
     * 2^53, which dec_of keeps every integer; checked all the same, so
     * that what the chunk claims is what every reader computes. */
    for (uint32_t i = 0; i < n; i++) {
        dec_of(rows[i]->value, e, &x);
        double y = ((double)((uint64_t)x - (uint64_t)lo) + (double)lo) / p10[e];
        if (!same_bits(y, rows[i]->value)) return false;
    }
    f->v_enc = SDB__V_DEC;
    f->v_bits = (uint8_t)b;
    f->v_exp = (uint8_t)e;
    f->v_base = n ? lo : 0;
    return true;
}

static bool all_f32(const sdb__fixed *const *rows, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!same_bits((double)(float)rows[i]->value, rows[i]->value)) return false;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t sdb__seg_plan(const sdb__fixed *const *rows, uint32_t n, sdb__seg_fmt *f)
{
    uint32_t max[SDB_N_DIMS] = {0}, code = 0;
    uint64_t lo = UINT64_MAX, hi = 0, tr_lo = UINT64_MAX, tr_hi = 0;
    int64_t t_lo = INT64_MAX, t_hi = INT64_MIN;
    for (uint32_t i = 0; i < n; i++) {
        const sdb__fixed *r = rows[i];
        SDB_ASSERT(r->trace <= UINT32_MAX); /* a number, not a hash */
        if (r->trace < tr_lo) tr_lo = r->trace;
        if (r->trace > tr_hi) tr_hi = r->trace;
        for (int d = 0; d < SDB_N_DIMS; d++)
            if (r->dims[d] > max[d]) max[d] = r->dims[d];
        if (r->ref < lo) lo = r->ref;
        if (r->ref > hi) hi = r->ref;
        if (r->ts < t_lo) t_lo = r->ts;
        if (r->ts > t_hi) t_hi = r->ts;
        code |= tsrc_code(r);
    }
    memset(f, 0, sizeof *f);
    for (int d = 0; d < SDB_N_DIMS; d++) f->dim_w[d] = (uint8_t)span_bits(max[d]); /* ids are u32 */
    f->tsrc_bits = (uint8_t)span_bits(code);
    f->ref_base = n ? lo : 0;
    f->ref_bits = (uint8_t)(n ? span_bits(hi - lo) : 0);
    f->ts_bits = (uint8_t)(n ? span_bits((uint64_t)t_hi - (uint64_t)t_lo) : 0);
    /* Values: the narrowest exact encoding. */
    bool dec = plan_dec(rows, n, f);
    if (!dec || f->v_bits == 32) {
        /* f32 when it holds them and decimals would take as many bits
         * (a widening is cheaper to decode than a division) */
        bool f32 = all_f32(rows, n);
        if (f32 || !dec) {
            f->v_bits = f->v_exp = 0;
            f->v_base = 0;
            f->v_enc = f32 ? SDB__V_F32 : SDB__V_F64;
        }
    }
    /* Trace numbers: offsets from the chunk's smallest, or from a base
     * lowered so that no entry of the width reads past 2^32 - 1 (open
     * refuses that: every number a segment gives is a u32). */
    f->tr_bits = (uint8_t)(n ? span_bits(tr_hi - tr_lo) : 0);
    uint64_t mask = (1ull << f->tr_bits) - 1;
    f->tr_base = n ? (uint32_t)(tr_lo + mask > UINT32_MAX ? UINT32_MAX - mask : tr_lo) : 0;
    size_t len = sdb__seg_len(n, f);
    if (len <= SDB__SEG_LEAF_MAX) {
        /* Small enough for LMDB to keep in a B-tree leaf: unless it would
         * fit there at full width too, it is padded out of the leaf
         * (internal.h, SDB__SEG_LEAF_MAX, says why that pays). */
        sdb__seg_fmt full = {.ref_base = f->ref_base, .ref_bits = SDB__PK_RAW,
                             .ts_bits = SDB__PK_RAW, .tr_bits = 32,
                             .v_enc = SDB__V_F64, .tsrc_bits = 8};
        memset(full.dim_w, 32, sizeof full.dim_w);
        /* (full width as format 6 had it: 8-byte trace hashes, 4 bytes
         * a row more than 32-bit numbers; the same chunks stay out) */
        if (sdb__seg_len(n, &full) + 4 * (size_t)n > SDB__SEG_LEAF_MAX) {
            f->padded = 1;
            len = sdb__seg_len(n, f);
        }
    }
    return len;
}

/* Entry i of a packed column of b bits (or raw: 8 bytes). The column was
 * zeroed, so OR-ing the entry's bits in is enough. */
static inline void pk_put(uint8_t *p, unsigned b, size_t i, uint64_t x)
{
    if (b == SDB__PK_RAW) {
        memcpy(p + 8 * i, &x, 8);
        return;
    }
    if (b == 0) return;
    SDB_ASSERT(x >> b == 0);
    uint64_t bit = (uint64_t)i * b, word;
    memcpy(&word, p + (bit >> 3), 8);
    word |= x << (bit & 7);
    memcpy(p + (bit >> 3), &word, 8);
}

/* Bytes of a segment's columns and header, without padding. */
static size_t len_of_cols(uint32_t n, const sdb__seg_fmt *f)
{
    sdb__seg_fmt u = *f;
    u.padded = 0;
    return sdb__seg_len(n, &u);
}

int sdb__seg_build(const sdb__fixed *const *rows, uint32_t n, const sdb__seg_fmt *f, void *dst)
{
    sdb__seg_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = SDB__SEG_MAGIC;
    h.version = SDB__SEG_VERSION;
    h.tsrc_bits = f->tsrc_bits;
    h.flags = f->padded && len_of_cols(n, f) <= SDB__SEG_LEAF_MAX ? SDB__SEG_PADDED : 0;
    h.n_rows = n;
    h.ts_min = INT64_MAX;
    h.ts_max = INT64_MIN;
    h.v_min = INFINITY;
    h.v_max = -INFINITY;
    h.max_ingested = INT64_MIN;
    h.ref_base = f->ref_base;
    h.ref_bits = f->ref_bits;
    h.ts_bits = f->ts_bits;
    h.tr_bits = f->tr_bits;
    h.tr_base = f->tr_base;
    h.v_enc = f->v_enc;
    h.v_bits = f->v_bits;
    h.v_exp = f->v_exp;
    h.v_base = f->v_base;
    memcpy(h.dim_w, f->dim_w, sizeof h.dim_w);
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i]->ts < h.ts_min) h.ts_min = rows[i]->ts;
        if (rows[i]->ts > h.ts_max) h.ts_max = rows[i]->ts;
    }
    size_t len = sdb__seg_len(n, f);
    uint8_t *c = (uint8_t *)dst + sizeof h;
    memset(c, 0, len - sizeof h); /* packed columns OR their bits in */
    uint8_t *col_ts = c;
    uint8_t *col_v = col_ts + sdb__pk_len(n, f->ts_bits);
    uint8_t *col_tr = col_v + sdb__seg_vlen(n, f->v_enc, f->v_bits);
    uint8_t *col_ref = col_tr + sdb__pk_len(n, f->tr_bits);
    uint8_t *at = col_ref + sdb__pk_len(n, f->ref_bits), *col_dim[SDB_N_DIMS];
    for (int d = 0; d < SDB_N_DIMS; d++) {
        col_dim[d] = at;
        at += ((size_t)n * f->dim_w[d] + 7) / 8;
    }
    uint8_t *col_tsrc = at;
    uint64_t n_num = 0;
    for (uint32_t i = 0; i < n; i++) {
        const sdb__fixed *r = rows[i];
        pk_put(col_ts, f->ts_bits, i,
               f->ts_bits == SDB__PK_RAW ? (uint64_t)r->ts : (uint64_t)r->ts - (uint64_t)h.ts_min);
        switch (f->v_enc) {
        case SDB__V_F32: {
            float x = (float)r->value;
            memcpy(col_v + 4 * (size_t)i, &x, 4);
            break;
        }
        case SDB__V_DEC: {
            int64_t x = 0;
            bool ok = dec_of(r->value, f->v_exp, &x);
            (void)ok;
            SDB_ASSERT(ok);
            pk_put(col_v, f->v_bits, i, (uint64_t)x - (uint64_t)f->v_base);
            break;
        }
        default: memcpy(col_v + 8 * (size_t)i, &r->value, 8); break;
        }
        SDB_ASSERT(r->trace >= f->tr_base);
        pk_put(col_tr, f->tr_bits, i, r->trace - f->tr_base);
        SDB_ASSERT(r->ref >= f->ref_base &&
                   (f->ref_bits == SDB__PK_RAW || (r->ref - f->ref_base) >> f->ref_bits == 0));
        pk_put(col_ref, f->ref_bits, i, r->ref - f->ref_base);
        for (int d = 0; d < SDB_N_DIMS; d++) pk_put(col_dim[d], f->dim_w[d], i, r->dims[d]);
        uint32_t code = tsrc_code(r);
        uint8_t type = code & 3u;
        pk_put(col_tsrc, f->tsrc_bits, i, code);
        h.n_type[type < SDB_N_TYPES ? type : 0]++;
        if (r->ingested > h.max_ingested) h.max_ingested = r->ingested;
        if (type != SDB_CATEGORICAL) {
            n_num++;
            h.sum += r->value;
            if (r->value < h.v_min) h.v_min = r->value;
            if (r->value > h.v_max) h.v_max = r->value;
        }
    }
    /* Two-pass M2 about the mean of this chunk, both passes on deviations
     * from k, its first numeric value (sdb__mom says why). */
    if (n_num) {
        uint32_t first = 0;
        while (rows[first]->type == SDB_CATEGORICAL) first++;
        double k = rows[first]->value, s1 = 0, m2 = 0;
        for (uint32_t i = 0; i < n; i++)
            if (rows[i]->type != SDB_CATEGORICAL) s1 += rows[i]->value - k;
        double dm = s1 / (double)n_num;
        for (uint32_t i = 0; i < n; i++) {
            if (rows[i]->type == SDB_CATEGORICAL) continue;
            double d = (rows[i]->value - k) - dm;
            m2 += d * d;
        }
        h.k = k;
        h.dm = dm;
        h.m2 = m2;
    }
    memcpy(dst, &h, sizeof h);
    return SDB_OK;
}

/* Pre-aggregates by dimension value: a dashboard's "average per model"
 * over whole chunks reads these few entries instead of the columns. Two
 * passes per value (sum first, then squared deviations from its mean) keep
 * M2 exact, as in the header. */
static int build_labels(const sdb__fixed *const *rows, uint32_t n, sdb__buf *out);

static int build_preagg(const sdb__fixed *const *rows, uint32_t n, sdb__buf *out)
{
    out->len = 0;
    uint32_t n_cat = 0;
    for (uint32_t i = 0; i < n; i++) n_cat += rows[i]->type == SDB_CATEGORICAL;
    if (n_cat == n) return build_labels(rows, n, out);
    if (n_cat) return SDB_OK; /* a mixed chunk keeps none */
    sdb__preagg e[SDB__PREAGG_MAX];
    /* Entry of each small id (index + 1, 0: none yet): ids are dense from 1,
     * so a dimension's values are nearly always below SLOT_IDS; a larger id
     * is found by a scan of the at most 64 entries. */
    enum { SLOT_IDS = 1024 };
    uint8_t slot[SLOT_IDS];
    for (int d = 0; d < SDB_N_DIMS; d++) {
        uint16_t m = 0;
        bool over = false;
        memset(slot, 0, sizeof slot);
        for (uint32_t i = 0; i < n && !over; i++) {
            uint32_t id = rows[i]->dims[d];
            double v = rows[i]->value;
            uint16_t j;
            if (id < SLOT_IDS && slot[id]) {
                j = (uint16_t)(slot[id] - 1);
            } else {
                j = 0;
                while (j < m && e[j].id != id) j++;
            }
            if (j == m) {
                if (m == SDB__PREAGG_MAX) {
                    over = true;
                    break;
                }
                if (id < SLOT_IDS) slot[id] = (uint8_t)(m + 1);
                e[m++] = (sdb__preagg){id, 0, 0, 0, INFINITY, -INFINITY, v, 0};
            }
            e[j].n++;
            e[j].sum += v;
            e[j].dm += v - e[j].k; /* the deviation sum first, divided below */
            if (v < e[j].min) e[j].min = v;
            if (v > e[j].max) e[j].max = v;
        }
        if (over) {
            uint16_t none = 0xFFFF;
            if (sdb__buf_add(out, &none, 2)) return SDB_ENOMEM;
            continue;
        }
        for (uint16_t j = 0; j < m; j++) e[j].dm /= (double)e[j].n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t id = rows[i]->dims[d];
            uint16_t j = 0;
            if (id < SLOT_IDS)
                j = (uint16_t)(slot[id] - 1);
            else
                while (e[j].id != id) j++;
            double dv = (rows[i]->value - e[j].k) - e[j].dm;
            e[j].m2 += dv * dv;
        }
        if (sdb__buf_add(out, &m, 2) || sdb__buf_add(out, e, sizeof(sdb__preagg) * m))
            return SDB_ENOMEM;
    }
    return SDB_OK;
}

/* An all-categorical chunk keeps its label counts instead: a dashboard's
 * "pass / fail / partial" over whole chunks then reads a few pairs, not
 * the value column (counting labels row by row was most of the time of
 * the benchmark's query g). */
static int build_labels(const sdb__fixed *const *rows, uint32_t n, sdb__buf *out)
{
    /* Sort the label ids (in the high half) with their counts packed in. */
    uint64_t *ids = malloc(sizeof *ids * (n ? n : 1));
    if (!ids) return SDB_ENOMEM;
    for (uint32_t i = 0; i < n; i++) ids[i] = (uint64_t)(uint32_t)rows[i]->value << 32;
    qsort(ids, n, sizeof *ids, cmp_u64);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m && ids[m - 1] >> 32 == ids[i] >> 32)
            ids[m - 1]++;
        else
            ids[m++] = ids[i] | 1;
    }
    uint16_t marker = SDB__PREAGG_LABELS;
    int rc = sdb__buf_add(out, &marker, 2) || sdb__buf_add(out, &m, 4) ? SDB_ENOMEM : SDB_OK;
    for (uint32_t i = 0; i < m && rc == SDB_OK; i++) {
        uint32_t pair[2] = {(uint32_t)(ids[i] >> 32), (uint32_t)ids[i]};
        rc = sdb__buf_add(out, pair, 8) ? SDB_ENOMEM : SDB_OK;
    }
    free(ids);
    return rc;
}

int sdb__preagg_labels(const void *p, size_t len, const uint8_t **out)
{
    const uint8_t *c = p;
    uint16_t marker;
    uint32_t m;
    if (len < 6) return -1;
    memcpy(&marker, c, 2);
    memcpy(&m, c + 2, 4);
    if (marker != SDB__PREAGG_LABELS || (len - 6) / 8 < m || len != 6 + (size_t)m * 8) return -1;
    *out = c + 6;
    return (int)m;
}

int sdb__preagg_find(const void *p, size_t len, int d, const uint8_t **out)
{
    const uint8_t *c = p, *end = c + len;
    if (len >= 2 && c[0] == (uint8_t)SDB__PREAGG_LABELS && c[1] == SDB__PREAGG_LABELS >> 8)
        return -1; /* label counts, no dimensions */
    for (int i = 0; i <= d; i++) {
        if (end - c < 2) return -1;
        uint16_t m;
        memcpy(&m, c, 2);
        c += 2;
        if (m == 0xFFFF) {
            if (i == d) return -1;
            continue;
        }
        if ((size_t)(end - c) < (size_t)m * sizeof(sdb__preagg)) return -1;
        if (i == d) {
            *out = c;
            return m;
        }
        c += (size_t)m * sizeof(sdb__preagg);
    }
    return -1;
}

/* Write rows[0..n) as chunk `chunk` of (project, name, bucket), with its
 * pre-aggregates. */
static int put_chunk(sdb__txn *t, uint32_t project, uint32_t name, int64_t bucket,
                     uint32_t chunk, const sdb__fixed *const *rows, uint32_t n)
{
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, project, name, bucket, chunk);
    int rc;
    if (n == 0) {
        rc = sdb__del(t, SDB__DB_PREAGG, k, sizeof k);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        return sdb__del(t, SDB__DB_SEGMENTS, k, sizeof k);
    }
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(rows, n, &f);
    void *dst;
    if ((rc = sdb__reserve_append(t, SDB__DB_SEGMENTS, k, sizeof k, len, &dst))) return rc;
    if ((rc = sdb__seg_build(rows, n, &f, dst))) return rc;
    sdb__buf pa = {0};
    rc = build_preagg(rows, n, &pa);
    if (rc == SDB_OK && pa.len)
        rc = sdb__put(t, SDB__DB_PREAGG, k, sizeof k, pa.p, pa.len, 1);
    else if (rc == SDB_OK && (rc = sdb__del(t, SDB__DB_PREAGG, k, sizeof k)) == SDB_ENOTFOUND)
        rc = SDB_OK;
    sdb__buf_free(&pa);
    return rc;
}

/* Copy every row of a segment out into fx[] (the map may move under a
 * write), fixing project and name from the key. */
static void seg_rows(const sdb__seg *g, uint32_t project, uint32_t name, sdb__fixed *fx)
{
    for (uint32_t i = 0; i < g->n; i++) {
        sdb__seg_row(g, i, &fx[i]);
        fx[i].project = project;
        fx[i].name = name;
    }
}

int sdb__seg_remove(sdb__txn *t, const sdb__fixed *fx)
{
    int64_t bw = sdb__txn_store(t)->bucket_ms;
    int64_t bucket = sdb__floor_div(fx->ts, bw) * bw;
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, fx->project, fx->name, bucket, 0);
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) return rc;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, sizeof k, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len != sizeof k || memcmp(key.p, k, 16) != 0) break;
        sdb__seg g;
        if ((rc = sdb__seg_open(val.p, val.len, &g))) break;
        uint32_t at = UINT32_MAX;
        for (uint32_t i = 0; i < g.n; i++) {
            if (sdb__seg_ref(&g, i) == fx->ref) {
                at = i;
                break;
            }
        }
        if (at == UINT32_MAX) continue;
        uint32_t chunk = sdb__rd32((const uint8_t *)key.p + 16);
        sdb__fixed *rows = malloc(sizeof *rows * g.n);
        const sdb__fixed **ptrs = malloc(sizeof *ptrs * g.n);
        if (!rows || !ptrs) {
            free(rows);
            free(ptrs);
            rc = SDB_ENOMEM;
            break;
        }
        seg_rows(&g, fx->project, fx->name, rows);
        uint32_t m = 0;
        for (uint32_t i = 0; i < g.n; i++)
            if (i != at) ptrs[m++] = &rows[i];
        sdb__cur_close(c);
        c = NULL;
        rc = put_chunk(t, fx->project, fx->name, bucket, chunk, ptrs, m);
        free(rows);
        free(ptrs);
        return rc;
    }
    sdb__cur_close(c);
    /* A row whose record exists but is in no segment means the store is
     * inconsistent. */
    return rc == SDB_OK || rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
}

/* Find the last chunk of (project, name, bucket): its number and rows. */
static int last_chunk(sdb__txn *t, uint32_t project, uint32_t name, int64_t bucket,
                      uint32_t *out_chunk, sdb__seg *out_seg)
{
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, project, name, bucket, UINT32_MAX);
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) return rc;
    sdb__val key, val;
    rc = sdb__cur_seek(c, k, sizeof k, &key, &val);
    if (rc == SDB_OK && !(key.len == sizeof k && memcmp(key.p, k, sizeof k) == 0))
        rc = sdb__cur_prev(c, &key, &val);
    else if (rc == SDB_ENOTFOUND)
        rc = sdb__cur_last(c, &key, &val);
    if (rc == SDB_OK) {
        if (key.len == sizeof k && memcmp(key.p, k, 16) == 0) {
            *out_chunk = sdb__rd32((const uint8_t *)key.p + 16);
            rc = sdb__seg_open(val.p, val.len, out_seg);
        } else {
            rc = SDB_ENOTFOUND;
        }
    }
    sdb__cur_close(c);
    return rc;
}

/* Append rows (all of one project, name and bucket) to the bucket's
 * chunks: the last chunk is rewritten once if it has room, the rest go to
 * new chunks. Never rewrites more than one existing chunk. */
int sdb__seg_append(sdb__txn *t, const sdb__fixed *const *rows, uint32_t n)
{
    sdb_store *s = sdb__txn_store(t);
    uint32_t cap = s->chunk_rows;
    uint32_t project = rows[0]->project, name = rows[0]->name;
    int64_t bucket = sdb__floor_div(rows[0]->ts, s->bucket_ms) * s->bucket_ms;
    uint32_t chunk = 0;
    sdb__seg g;
    int rc = last_chunk(t, project, name, bucket, &chunk, &g);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    uint32_t done = 0, next = rc == SDB_OK ? chunk + 1 : 0;
    if (rc == SDB_OK && g.n < cap) {
        uint32_t take = cap - g.n < n ? cap - g.n : n;
        uint32_t total = g.n + take;
        sdb__fixed *old = malloc(sizeof *old * (g.n ? g.n : 1));
        const sdb__fixed **ptrs = malloc(sizeof *ptrs * total);
        if (!old || !ptrs) {
            free(old);
            free(ptrs);
            return SDB_ENOMEM;
        }
        seg_rows(&g, project, name, old);
        for (uint32_t i = 0; i < g.n; i++) ptrs[i] = &old[i];
        for (uint32_t i = 0; i < take; i++) ptrs[g.n + i] = rows[i];
        rc = put_chunk(t, project, name, bucket, chunk, ptrs, total);
        free(old);
        free(ptrs);
        if (rc) return rc;
        done = take;
    }
    while (done < n) {
        uint32_t take = n - done < cap ? n - done : cap;
        if ((rc = put_chunk(t, project, name, bucket, next++, rows + done, take))) return rc;
        done += take;
    }
    return SDB_OK;
}

int sdb__seg_put(sdb__txn *t, const uint8_t *key, const sdb__fixed *const *rows, uint32_t n)
{
    return put_chunk(t, sdb__rd32(key), sdb__rd32(key + 4), sdb__key_ts(sdb__rd64(key + 8)),
                     sdb__rd32(key + 16), rows, n);
}
