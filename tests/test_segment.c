/* Column segments (engine/segment.c): encodings chosen per segment, every
 * row read back exactly (row by row and decoded by every kernel table), and
 * corrupt headers rejected.
 *
 * The engine differential test (test_engine_diff.c) reaches segments
 * through ingest, the fold and queries; refs that span 2^32 within one
 * chunk, refs near 2^64, every value kind and hand-corrupted headers cannot come from
 * there, so they are built here with sdb__seg_plan/sdb__seg_build
 * directly.
 */
#include <criterion/criterion.h>

#include "internal.h"
#include "xorshift.h"

#define MAX_ROWS 3000

static sdb__fixed rows[MAX_ROWS];
static const sdb__fixed *ptrs[MAX_ROWS];

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { return xorshift64(&rng); }

/* n rows whose dimension d takes values in [0, max[d]] (max[d] itself in
 * row d % n, so it sets the width), refs from ref0 spaced by step. */
static void make_rows(uint32_t n, const uint32_t max[SDB_N_DIMS], uint64_t ref0, uint64_t step)
{
    cr_assert(n <= MAX_ROWS);
    for (uint32_t i = 0; i < n; i++) {
        sdb__fixed *r = &rows[i];
        memset(r, 0, sizeof *r);
        r->ts = 1767225600000ll + (int64_t)(rnd() % 86400000);
        r->type = (uint8_t)(rnd() % SDB_N_TYPES);
        r->source = (uint8_t)(rnd() % SDB_N_SOURCES);
        r->value = r->type == SDB_BOOLEAN ? (double)(rnd() & 1)
                   : r->type == SDB_CATEGORICAL ? (double)(1 + rnd() % 5)
                                                : (double)(int64_t)rnd() / 1e15;
        r->trace = rnd() % 4 ? 1 + rnd() % UINT32_MAX : 0; /* a trace number */
        r->ref = ref0 + step * i;
        for (int d = 0; d < SDB_N_DIMS; d++)
            r->dims[d] = max[d] == 0 ? 0 : (uint32_t)(rnd() % ((uint64_t)max[d] + 1));
        ptrs[i] = r;
    }
    for (int d = 0; d < SDB_N_DIMS && n; d++) rows[(uint32_t)d % n].dims[d] = max[d];
}

/* Build rows[0..n) with encodings f (or the planned ones when f is NULL),
 * open the segment and check every row, accessor, widened dimension and
 * decoded column (by every kernel table this CPU runs) against the input.
 * Returns the planned or given encodings. */
static sdb__seg_fmt round_trip(uint32_t n, const sdb__seg_fmt *given)
{
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(ptrs, n, &f);
    if (given) {
        f = *given;
        len = sdb__seg_len(n, &f);
    }
    uint8_t *buf = malloc(len);
    uint32_t *wide = malloc(sizeof *wide * (n + 1));
    int64_t *dts = malloc(sizeof *dts * (n + 1));
    double *dv = malloc(sizeof *dv * (n + 1));
    uint64_t *dtr = malloc(sizeof *dtr * (n + 1));
    cr_assert(buf && wide && dts && dv && dtr);
    cr_assert_eq(sdb__seg_build(ptrs, n, &f, buf), SDB_OK);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    cr_assert_eq(g.n, n);
    cr_assert_eq(g.h.ref_bits, f.ref_bits);
    cr_assert_eq(g.h.ref_base, f.ref_base);
    cr_assert_eq(g.h.ts_bits, f.ts_bits);
    cr_assert_eq(g.h.v_enc, f.v_enc);
    cr_assert_eq(g.h.tr_bits, f.tr_bits);
    cr_assert_eq(g.h.tr_base, f.tr_base);
    cr_assert(memcmp(g.h.dim_w, f.dim_w, sizeof f.dim_w) == 0);
    uint32_t n_type[SDB_N_TYPES] = {0};
    for (uint32_t i = 0; i < n; i++) {
        sdb__fixed got;
        memset(&got, 0, sizeof got);
        sdb__seg_row(&g, i, &got);
        cr_assert(memcmp(&got, &rows[i], sizeof got) == 0,
                  "row %u of %u: ref %llu want %llu, ts %lld want %lld, value %.17g want %.17g, "
                  "trace %llx want %llx, dims %u %u %u %u %u %u", i, n,
                  (unsigned long long)got.ref, (unsigned long long)rows[i].ref,
                  (long long)got.ts, (long long)rows[i].ts, got.value, rows[i].value,
                  (unsigned long long)got.trace, (unsigned long long)rows[i].trace, got.dims[0],
                  got.dims[1], got.dims[2], got.dims[3], got.dims[4], got.dims[5]);
        cr_assert_eq(sdb__seg_ref(&g, i), rows[i].ref);
        cr_assert_eq(sdb__seg_type(&g, i), rows[i].type);
        cr_assert_eq(sdb__seg_source(&g, i), rows[i].source);
        for (int d = 0; d < SDB_N_DIMS; d++) cr_assert_eq(sdb__seg_dim(&g, d, i), rows[i].dims[d]);
        n_type[rows[i].type]++;
    }
    for (int t = 0; t < SDB_N_TYPES; t++) cr_assert_eq(g.h.n_type[t], n_type[t]);
    for (int d = 0; d < SDB_N_DIMS; d++) {
        const uint8_t *k = sdb__seg_dim_u32(&g, d, wide);
        if (f.dim_w[d] == 32) cr_assert_eq(k, sdb__seg_dim_col(&g, d), "a 32-bit column is read in place");
        for (uint32_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, k + 4 * (size_t)i, 4);
            cr_assert_eq(x, rows[i].dims[d], "dim %d row %u widened", d, i);
        }
    }
    static const char *const tables[] = {"scalar", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        const sdb_kernels *kt = sdb__kernels_by_name(tables[k]);
        if (!kt) continue;
        memset(dts, 0xA5, sizeof *dts * (n + 1));
        memset(dv, 0xA5, sizeof *dv * (n + 1));
        memset(dtr, 0xA5, sizeof *dtr * (n + 1));
        const uint8_t *ts = sdb__seg_ts(&g, kt, dts), *v = sdb__seg_values(&g, kt, dv);
        const uint8_t *tr = sdb__seg_traces(&g, kt, dtr);
        if (f.ts_bits == SDB__PK_RAW) cr_assert_eq(ts, g.ts, "raw times are read in place");
        if (f.v_enc == SDB__V_F64) cr_assert_eq(v, g.value, "f64 values are read in place");
        /* Dimensions and type/source at byte widths, through the table. */
        for (int d = 0; d < SDB_N_DIMS; d++) {
            unsigned w = 9;
            memset(wide, 0xA5, sizeof *wide * (n + 1));
            const uint8_t *col = sdb__seg_dim_bytes(&g, kt, d, wide, &w);
            unsigned b = f.dim_w[d];
            cr_assert_eq(w, b == 0 ? 0u : b <= 8 ? 1u : b <= 16 ? 2u : 4u, "%s dim %d of %u bits", tables[k], d, b);
            if (b % 8 == 0) cr_assert_eq(col, sdb__seg_dim_col(&g, d), "%u bits are read in place", b);
            for (uint32_t i = 0; i < n && w; i++)
                cr_assert_eq(sdb__seg_ld(col, w, i), rows[i].dims[d], "%s dim %d row %u", tables[k], d, i);
            if (w && col != sdb__seg_dim_col(&g, d))
                cr_assert_eq(((uint8_t *)wide)[(size_t)w * n], 0xA5, "%s: nothing past n entries", tables[k]);
        }
        memset(wide, 0xA5, sizeof *wide * (n + 1));
        const uint8_t *tc = sdb__seg_tsrc(&g, kt, (uint8_t *)wide);
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(tc[i], rows[i].type | rows[i].source << 2, "%s: type/source of row %u", tables[k], i);
        for (uint32_t i = 0; i < n; i++) {
            int64_t t;
            double x;
            uint64_t h;
            memcpy(&t, ts + 8 * (size_t)i, 8);
            memcpy(&x, v + 8 * (size_t)i, 8);
            memcpy(&h, tr + 8 * (size_t)i, 8);
            cr_assert_eq(t, rows[i].ts, "%s: ts of row %u", tables[k], i);
            cr_assert(memcmp(&x, &rows[i].value, 8) == 0, "%s: value of row %u: %.17g want %.17g",
                      tables[k], i, x, rows[i].value);
            cr_assert_eq(h, rows[i].trace, "%s: trace of row %u", tables[k], i);
        }
    }
    free(dtr);
    free(dv);
    free(dts);
    free(wide);
    free(buf);
    return f;
}

Test(segment, plan_picks_each_dimension_width_and_rows_read_back)
{
    /* absent, < 256, 256, 65535, 65536, the largest id */
    static const uint32_t max[SDB_N_DIMS] = {0, 255, 256, 65535, 65536, UINT32_MAX};
    static const uint8_t want[SDB_N_DIMS] = {0, 8, 9, 16, 17, 32};
    /* Small (20 rows stay small even at full width), large, and row counts
     * around the widening blocks of 32 and the decoders' blocks of 256. */
    static const uint32_t sizes[] = {1, 6, 20, 200, 1000, 1025, 2999};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        make_rows(sizes[k], max, 1000, 3);
        sdb__seg_fmt f = round_trip(sizes[k], NULL);
        cr_assert(memcmp(f.dim_w, want, sizeof want) == 0, "n %u", sizes[k]);
        /* refs 1000 + 3 i: offsets up to 3 (n - 1) */
        uint64_t span = 3ull * (sizes[k] - 1);
        unsigned bits = span ? 64 - (unsigned)__builtin_clzll(span) : 0;
        cr_assert_eq(f.ref_bits, bits, "n %u", sizes[k]);
        cr_assert_eq(f.ref_base, 1000);
    }
}

/* The benchmark's and the clients' shapes: environment, model and prompt
 * version small ids, the other three dimensions absent, refs close
 * together, a day of times, traces of a few scores each, values of one
 * kind per chunk. */
static void typical_rows(uint32_t n, int kind)
{
    static const uint32_t max[SDB_N_DIMS] = {3, 10, 40, 0, 0, 0};
    make_rows(n, max, 123456789, 1);
    for (uint32_t i = 0; i < n; i++) {
        sdb__fixed *r = &rows[i];
        r->trace = 70000 + i / 4; /* 4 scores a trace, numbered as they come */
        r->source = (uint8_t)(i % 3);
        switch (kind) {
        case 0: r->type = SDB_NUMERIC; r->value = (double)(rnd() % 101) / 100; break; /* 0.85 */
        case 1: r->type = SDB_BOOLEAN; r->value = (double)(rnd() & 1); break;
        case 2: r->type = SDB_NUMERIC; r->value = (double)(1 + rnd() % 5); break;
        case 3: r->type = SDB_NUMERIC; r->value = (double)(float)((double)rnd() / 3e19); break;
        default: r->type = SDB_NUMERIC; r->value = (double)rnd() / 3e19; break; /* any f64 */
        }
    }
}

Test(segment, typical_chunks_take_what_their_values_need)
{
    /* kind: encoding, bits of a value */
    static const struct { uint8_t enc, bits, exp; } want[] = {
        {SDB__V_DEC, 7, 2}, {SDB__V_DEC, 1, 0}, {SDB__V_DEC, 3, 0},
        {SDB__V_F32, 0, 0}, {SDB__V_F64, 0, 0},
    };
    for (int kind = 0; kind < 5; kind++) {
        typical_rows(2000, kind);
        sdb__seg_fmt f;
        size_t len = sdb__seg_plan(ptrs, 2000, &f);
        cr_assert_eq(f.v_enc, want[kind].enc, "kind %d", kind);
        cr_assert_eq(f.v_bits, want[kind].bits, "kind %d", kind);
        cr_assert_eq(f.v_exp, want[kind].exp, "kind %d", kind);
        cr_assert_eq(f.ts_bits, 27, "a day of milliseconds takes 27 bits");
        cr_assert_eq(f.ref_bits, 11, "2000 consecutive refs");
        cr_assert_eq(f.tr_bits, 9, "500 traces");
        cr_assert_eq(f.tr_base, 70000);
        /* 27 + 11 + 9 bits, dimensions of ids up to 3, 10, 40 in 2, 4 and
         * 6 bits and a type/source code of 4: 7.875 bytes a row, plus the
         * values, the padding. */
        cr_assert(memcmp(f.dim_w, (uint8_t[]){2, 4, 6, 0, 0, 0}, 6) == 0, "kind %d", kind);
        cr_assert_eq(f.tsrc_bits, 4, "kind %d", kind);
        size_t v_len = want[kind].enc == SDB__V_F64 ? 8 * 2000
                     : want[kind].enc == SDB__V_F32 ? 4 * 2000
                                                    : (2000 * want[kind].bits + 7) / 8 + 7;
        size_t want_len = 128 + (2000 * 27 + 7) / 8 + 7 + v_len + (2000 * 9 + 7) / 8 + 7 +
                          (2000 * 11 + 7) / 8 + 7 + 2 * 2000 + 7;
        cr_assert_eq(len, want_len, "kind %d: %zu bytes", kind, len);
        round_trip(2000, NULL);
    }
}

Test(segment, every_value_kind_reads_back_bit_for_bit)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 0, 0, 0, 0, 0};
    /* Chunks of one troublesome value among ordinary decimals: each must
     * come back exactly, whatever encoding it forces. */
    static const double odd[] = {-0.0, 0.1, -2.5, 1e300, -1e-300, 5e-324, 1e15, 123456.789,
                                 9007199254740993.0, 4294967296.0, 0.30000000000000004,
                                 (double)INT64_MAX, 1.0 / 3};
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        make_rows(300, max, 1, 1);
        for (uint32_t i = 0; i < 300; i++) {
            rows[i].type = SDB_NUMERIC;
            rows[i].value = (double)(int)(rnd() % 2001 - 1000) / 1000;
        }
        rows[150].value = odd[k];
        round_trip(300, NULL);
    }
    /* Negative decimals spanning 2^32 - 1 and 2^32 units of their exponent. */
    make_rows(300, max, 1, 1);
    for (uint32_t i = 0; i < 300; i++) rows[i].type = SDB_NUMERIC, rows[i].value = -1.5;
    rows[7].value = -1.5 + 4294967295.0 / 10;
    sdb__seg_fmt f = round_trip(300, NULL);
    cr_assert_eq(f.v_enc, SDB__V_DEC);
    cr_assert_eq(f.v_bits, 32);
    rows[7].value = -1.5 + 4294967296.0 / 10;
    f = round_trip(300, NULL);
    cr_assert_neq(f.v_enc, SDB__V_DEC);
    /* One value in a chunk: no bits at all. */
    for (uint32_t i = 0; i < 300; i++) rows[i].value = 0.25;
    f = round_trip(300, NULL);
    cr_assert_eq(f.v_enc, SDB__V_DEC);
    cr_assert_eq(f.v_bits, 0);
}

Test(segment, time_spans_from_none_to_the_whole_range)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 0, 0, 0, 0, 0};
    make_rows(500, max, 1, 1);
    for (uint32_t i = 0; i < 500; i++) rows[i].ts = 1767225600123ll;
    cr_assert_eq(round_trip(500, NULL).ts_bits, 0);
    rows[9].ts += UINT32_MAX;
    cr_assert_eq(round_trip(500, NULL).ts_bits, 32);
    rows[9].ts += 1;
    cr_assert_eq(round_trip(500, NULL).ts_bits, SDB__PK_RAW);
    rows[3].ts = SDB__MIN_MS;
    rows[4].ts = SDB__MAX_MS;
    cr_assert_eq(round_trip(500, NULL).ts_bits, SDB__PK_RAW);
}

Test(segment, trace_numbers_take_the_bits_of_their_span)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 0, 0, 0, 0, 0};
    make_rows(1000, max, 1, 1);
    for (uint32_t i = 0; i < 1000; i++) rows[i].trace = 0;
    sdb__seg_fmt f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 0, "no trace anywhere: no bits");
    cr_assert_eq(f.tr_base, 0);
    for (uint32_t i = 0; i < 1000; i++) rows[i].trace = 123456;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 0, "one trace: no bits");
    cr_assert_eq(f.tr_base, 123456);
    for (uint32_t i = 0; i < 1000; i++) rows[i].trace = 3000000 + (i * 7919) % 1000;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 10, "a thousand recent traces");
    cr_assert_eq(f.tr_base, 3000000);
    rows[500].trace = 0;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 22, "a row without a trace: from 0");
    cr_assert_eq(f.tr_base, 0);
    rows[501].trace = UINT32_MAX;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 32, "the whole u32 range");
    rows[500].trace = 1;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 32);
    cr_assert_eq(f.tr_base, 0, "lowered: base 1 + 32 bits could read 2^32");
    /* Near the top of the range the base is lowered the same way. */
    for (uint32_t i = 0; i < 1000; i++) rows[i].trace = UINT32_MAX - i % 101;
    f = round_trip(1000, NULL);
    cr_assert_eq(f.tr_bits, 7);
    cr_assert_eq(f.tr_base, UINT32_MAX - 127);
}

Test(segment, refs_spanning_2_to_the_32_are_stored_raw)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 2, 3, 0, 0, 0};
    /* Spans of 2^32 - 1 (32 bits) and 2^32 (raw), from a small base. */
    make_rows(2, max, 7, UINT32_MAX);
    cr_assert_eq(round_trip(2, NULL).ref_bits, 32);
    make_rows(2, max, 7, (uint64_t)UINT32_MAX + 1);
    cr_assert_eq(round_trip(2, NULL).ref_bits, SDB__PK_RAW);
    /* Refs all over the u64 range, up to its largest value. */
    make_rows(300, max, 5, UINT64_MAX / 299);
    cr_assert_eq(round_trip(300, NULL).ref_bits, SDB__PK_RAW);
    rows[0].ref = UINT64_MAX;
    rows[1].ref = 0;
    cr_assert_eq(round_trip(300, NULL).ref_base, 0);
}

Test(segment, refs_near_2_to_the_64_pack_from_their_smallest)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 0, 0, 0, 0, 0};
    make_rows(5, max, UINT64_MAX - 4, 1);
    sdb__seg_fmt f = round_trip(5, NULL);
    cr_assert_eq(f.ref_bits, 3);
    cr_assert_eq(f.ref_base, UINT64_MAX - 4);
}

Test(segment, wider_columns_than_needed_read_the_same)
{
    static const uint32_t max[SDB_N_DIMS] = {0, 7, 300, 0, 70000, 1};
    make_rows(500, max, 1ull << 40, 11);
    sdb__seg_fmt wide = {.ref_base = 0, .ref_bits = SDB__PK_RAW, .ts_bits = SDB__PK_RAW,
                         .tr_bits = 32, .v_enc = SDB__V_F64,
                         .tsrc_bits = 8, .dim_w = {32, 32, 32, 32, 32, 32}};
    round_trip(500, &wide);
    sdb__seg_fmt mid = wide;
    mid.ref_base = 1ull << 40;
    mid.ref_bits = 32;
    mid.ts_bits = 32;
    mid.tsrc_bits = 5;
    memcpy(mid.dim_w, (uint8_t[]){8, 16, 12, 3, 31, 16}, 6);
    round_trip(500, &mid);
}

Test(segment, small_segments_are_padded_out_of_lmdb_leaves)
{
    static const uint32_t max[SDB_N_DIMS] = {2, 5, 9, 0, 0, 0};
    /* 40 rows: under 2010 bytes encoded, 2408 at full width (57-byte
     * rows): padded to one byte past the leaf limit, encodings kept. */
    make_rows(40, max, 50, 1);
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(ptrs, 40, &f);
    cr_assert_eq(len, SDB__SEG_LEAF_MAX + 1);
    cr_assert_eq(f.padded, 1);
    cr_assert_eq(f.ref_bits, 6);
    cr_assert_eq(f.ts_bits, 27);
    cr_assert(memcmp(f.dim_w, (uint8_t[]){2, 3, 4, 0, 0, 0}, 6) == 0);
    round_trip(40, NULL);
    {
        /* The padding is zeros, the header says so, and a padded segment
         * of any other length, or an unpadded one with its bytes, is
         * corrupt. */
        static uint8_t buf[4096];
        cr_assert_eq(sdb__seg_build(ptrs, 40, &f, buf), SDB_OK);
        sdb__seg g;
        cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
        cr_assert_eq(g.h.flags, SDB__SEG_PADDED);
        size_t cols = (size_t)(g.tsrc - buf) + (40 * g.h.tsrc_bits + 7) / 8 + 7;
        cr_assert_lt(cols, len);
        for (size_t i = cols; i < len; i++) cr_assert_eq(buf[i], 0, "pad byte %zu", i);
        cr_assert_eq(sdb__seg_open(buf, len - 1, &g), SDB_ECORRUPT);
        cr_assert_eq(sdb__seg_open(buf, len + 1, &g), SDB_ECORRUPT);
        cr_assert_eq(sdb__seg_open(buf, cols, &g), SDB_ECORRUPT, "padded columns without the padding");
        buf[7] = 0;
        cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_ECORRUPT, "padding not flagged");
        cr_assert_eq(sdb__seg_open(buf, cols, &g), SDB_OK, "the columns alone, unflagged");
        buf[7] = 2;
        cr_assert_eq(sdb__seg_open(buf, cols, &g), SDB_ECORRUPT, "an unknown flag");
    }
    /* 20 rows stay under it even at full width: encoded. */
    make_rows(20, max, 50, 1);
    cr_assert_lt(sdb__seg_plan(ptrs, 20, &f), 128 + 57 * 20u);
    cr_assert_eq(f.ref_bits, 5);
    /* 200 rows are past it already: encoded. */
    make_rows(200, max, 50, 1);
    cr_assert_lt(sdb__seg_plan(ptrs, 200, &f), 128 + 34 * 200u);
    cr_assert_eq(f.ts_bits, 27);
}

Test(segment, every_type_and_source_pair_shares_one_byte)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 1, 1, 1, 1, 1};
    make_rows(9, max, 1, 1);
    for (uint32_t i = 0; i < 9; i++) {
        rows[i].type = (uint8_t)(i % 3);
        rows[i].source = (uint8_t)(i / 3);
        if (rows[i].type == SDB_CATEGORICAL) rows[i].value = 1;
    }
    round_trip(9, NULL);
}

Test(segment, empty_segment_is_a_bare_header)
{
    sdb__seg_fmt f;
    cr_assert_eq(sdb__seg_plan(ptrs, 0, &f), sizeof(sdb__seg_hdr));
    round_trip(0, NULL);
}

/* A valid 300-row segment with dimensions of width 0, 1 and 2, decimal
 * values and 3-bit trace numbers. */
static size_t valid_segment(uint8_t *buf)
{
    static const uint32_t max[SDB_N_DIMS] = {0, 200, 1000, 0, 3, 0};
    make_rows(300, max, 99, 2);
    for (uint32_t i = 0; i < 300; i++) {
        rows[i].value = (double)(i % 10) / 10;
        rows[i].trace = i % 5;
    }
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(ptrs, 300, &f);
    cr_assert_eq(f.v_enc, SDB__V_DEC);
    cr_assert_eq(f.tr_bits, 3);
    cr_assert_eq(sdb__seg_build(ptrs, 300, &f, buf), SDB_OK);
    return len;
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *what)
{
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_ECORRUPT, "%s", what);
}

Test(segment, rejects_corrupt_headers_and_lengths)
{
    static uint8_t buf[1 << 14], bad[1 << 14];
    size_t len = valid_segment(buf);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);

    expect_corrupt(buf, len - 1, "one byte short");
    expect_corrupt(buf, len + 1, "one byte long");
    expect_corrupt(buf, 100, "shorter than a header");
    expect_corrupt(buf, 0, "empty");
    /* Change one header field of a copy (through an aligned header). */
#define MUTATE(field, v, what)                   \
    do {                                         \
        sdb__seg_hdr h;                          \
        memcpy(bad, buf, len);                   \
        memcpy(&h, bad, sizeof h);               \
        h.field = v;                             \
        memcpy(bad, &h, sizeof h);               \
        expect_corrupt(bad, len, what);          \
    } while (0)
    MUTATE(magic, 0x12345678u, "magic");
    MUTATE(version, 2, "the per-segment widths of format 3");
    MUTATE(version, 3, "the byte-wide dimensions of segment version 3");
    MUTATE(version, 4, "the trace hashes of segment version 4");
    MUTATE(version, 6, "a later version");
    MUTATE(n_rows, 301, "row count");
    MUTATE(n_rows, UINT32_MAX, "huge row count");
    MUTATE(n_type[0], g.h.n_type[0] + 1, "type counts");
    static const uint8_t bad_bits[] = {33, 40, 63, 65, 128, 255};
    for (size_t k = 0; k < sizeof bad_bits; k++) {
        MUTATE(ref_bits, bad_bits[k], "ref bits");
        MUTATE(ts_bits, bad_bits[k], "ts bits");
        MUTATE(tr_bits, bad_bits[k], "trace bits");
        MUTATE(v_bits, bad_bits[k], "value bits");
    }
    MUTATE(v_enc, 3, "value encoding");
    MUTATE(v_exp, SDB__SEG_MAX_EXP + 1, "decimal exponent");
    MUTATE(tr_bits, SDB__PK_RAW, "raw trace hashes (segment version 4)");
    static const uint8_t bad_w[] = {33, 40, 63, 64, 65, 96, 128, 255};
    for (size_t k = 0; k < sizeof bad_w; k++)
        for (int d = 0; d < SDB_N_DIMS; d++) MUTATE(dim_w[d], bad_w[k], "dimension width");
    MUTATE(tsrc_bits, 9, "type/source bits");
    MUTATE(tsrc_bits, 255, "type/source bits");
    MUTATE(flags, SDB__SEG_PADDED, "padding claimed on a segment of its columns alone");
    MUTATE(flags, 2, "an unknown flag");
    /* Valid encodings the body is not sized for. */
    MUTATE(dim_w[0], 8, "a width 0 column claimed as 8 bits");
    MUTATE(dim_w[2], 32, "a narrower column claimed as 32 bits");
    MUTATE(dim_w[1], 0, "a column claimed as absent");
    MUTATE(tsrc_bits, 8, "a 4-bit type/source column claimed as 8");
    MUTATE(ref_bits, SDB__PK_RAW, "packed refs claimed as raw");
    MUTATE(ts_bits, (uint8_t)(g.h.ts_bits + 8), "a wider time column");
    MUTATE(v_enc, SDB__V_F64, "decimals claimed as f64");
    MUTATE(tr_bits, 4, "a wider trace column");
    MUTATE(tr_base, UINT32_MAX - 6, "trace numbers past 2^32 - 1");
#undef MUTATE
    /* Decimal fields on a value column that is not decimal. */
    {
        sdb__seg_hdr h;
        memcpy(bad, buf, len);
        memcpy(&h, bad, sizeof h);
        h.v_enc = SDB__V_F32;
        h.v_bits = 0;
        h.v_exp = 1;
        memcpy(bad, &h, sizeof h);
        expect_corrupt(bad, len - sdb__seg_vlen(300, SDB__V_DEC, g.h.v_bits) + 4 * 300,
                       "an exponent on f32 values");
    }
}

Test(segment, corrupt_trace_numbers_read_as_numbers_of_their_width)
{
    static uint8_t buf[1 << 14];
    size_t len = valid_segment(buf);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    cr_assert_eq(g.h.tr_bits, 3);
    cr_assert_eq(g.h.tr_base, 0);
    /* Every bit set: base + 7, a number no row was given, read by every
     * table alike (a count is wrong, nothing is read out of bounds). */
    memset(buf + (g.trace - buf), 0xFF, sdb__pk_len(300, 3) - 7);
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    uint64_t out[300];
    static const char *const tables[] = {"scalar", "avx2", "avx512"};
    for (int k = 0; k < 3; k++) {
        const sdb_kernels *kt = sdb__kernels_by_name(tables[k]);
        if (!kt) continue;
        const uint8_t *tr = sdb__seg_traces(&g, kt, out);
        for (uint32_t i = 0; i < 300; i++) {
            uint64_t h;
            memcpy(&h, tr + 8 * (size_t)i, 8);
            cr_assert_eq(h, 7, "%s row %u", tables[k], i);
        }
    }
    cr_assert_eq(sdb__seg_trace_at(&g, 0), 7);
}

Test(segment, stray_type_bits_read_as_two_bit_fields)
{
    static uint8_t buf[1 << 14];
    size_t len = valid_segment(buf);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    uint8_t *tsrc = buf + (g.tsrc - buf);
    tsrc[0] |= (1u << g.h.tsrc_bits) - 1; /* type 3, source 3 */
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    cr_assert_eq(sdb__seg_type(&g, 0), 3);
    cr_assert_eq(sdb__seg_source(&g, 0), 3);
}
