/* Column segments (engine/segment.c): widths chosen per segment, every row
 * read back exactly, and corrupt headers rejected.
 *
 * The engine differential test (test_engine_diff.c) reaches segments
 * through ingest, the fold and queries; refs that span 2^32 within one
 * chunk, bases near 2^64 and hand-corrupted headers cannot come from
 * there, so they are built here with sdb__seg_plan/sdb__seg_build
 * directly.
 */
#include <criterion/criterion.h>

#include "internal.h"

#define MAX_ROWS 3000

static sdb__fixed rows[MAX_ROWS];
static const sdb__fixed *ptrs[MAX_ROWS];

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

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
        r->trace = rnd() % 4 ? rnd() : 0;
        r->ref = ref0 + step * i;
        for (int d = 0; d < SDB_N_DIMS; d++)
            r->dims[d] = max[d] == 0 ? 0 : (uint32_t)(rnd() % ((uint64_t)max[d] + 1));
        ptrs[i] = r;
    }
    for (int d = 0; d < SDB_N_DIMS && n; d++) rows[(uint32_t)d % n].dims[d] = max[d];
}

/* Build rows[0..n) with widths f (or the planned ones when f is NULL),
 * open the segment and check every row, accessor and widened column
 * against the input. Returns the planned or given widths. */
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
    cr_assert(buf && wide);
    sdb__seg_build(ptrs, n, &f, buf);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    cr_assert_eq(g.n, n);
    cr_assert_eq(g.h.ref_w, f.ref_w);
    cr_assert_eq(g.h.ref_base, f.ref_base);
    cr_assert(memcmp(g.h.dim_w, f.dim_w, sizeof f.dim_w) == 0);
    uint32_t n_type[SDB_N_TYPES] = {0};
    for (uint32_t i = 0; i < n; i++) {
        sdb__fixed got;
        memset(&got, 0, sizeof got);
        sdb__seg_row(&g, i, &got);
        cr_assert(memcmp(&got, &rows[i], sizeof got) == 0,
                  "row %u of %u: ref %llu want %llu, dims %u %u %u %u %u %u", i, n,
                  (unsigned long long)got.ref, (unsigned long long)rows[i].ref, got.dims[0],
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
        if (f.dim_w[d] == 4) cr_assert_eq(k, sdb__seg_dim_col(&g, d), "a 4-byte column is read in place");
        for (uint32_t i = 0; i < n; i++) {
            uint32_t x;
            memcpy(&x, k + 4 * (size_t)i, 4);
            cr_assert_eq(x, rows[i].dims[d], "dim %d row %u widened", d, i);
        }
    }
    free(wide);
    free(buf);
    return f;
}

Test(segment, plan_picks_each_dimension_width_and_rows_read_back)
{
    /* absent, < 256, 256, 65535, 65536, the largest id */
    static const uint32_t max[SDB_N_DIMS] = {0, 255, 256, 65535, 65536, UINT32_MAX};
    static const uint8_t want[SDB_N_DIMS] = {0, 1, 2, 2, 4, 4};
    /* Small (20 rows stay small even at full width), large, and row counts
     * around the widening blocks of 32. */
    static const uint32_t sizes[] = {1, 6, 20, 200, 1000, 1025, 2999};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        make_rows(sizes[k], max, 1000, 3);
        sdb__seg_fmt f = round_trip(sizes[k], NULL);
        cr_assert(memcmp(f.dim_w, want, sizeof want) == 0, "n %u", sizes[k]);
        cr_assert_eq(f.ref_w, 4);
        cr_assert_eq(f.ref_base, 1000);
    }
}

Test(segment, rows_are_32_bytes_on_typical_data)
{
    /* The benchmark's shape: environment, model and prompt version small
     * ids, the other three dimensions absent, refs close together. */
    static const uint32_t max[SDB_N_DIMS] = {3, 10, 40, 0, 0, 0};
    make_rows(2000, max, 123456789, 1);
    sdb__seg_fmt f;
    cr_assert_eq(sdb__seg_plan(ptrs, 2000, &f), 128 + 32 * 2000u);
    round_trip(2000, NULL);
}

Test(segment, refs_spanning_2_to_the_32_take_8_bytes)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 2, 3, 0, 0, 0};
    /* Spans of 2^32 - 1 (4 bytes) and 2^32 (8 bytes), from a small base. */
    make_rows(2, max, 7, UINT32_MAX);
    cr_assert_eq(round_trip(2, NULL).ref_w, 4);
    make_rows(2, max, 7, (uint64_t)UINT32_MAX + 1);
    cr_assert_eq(round_trip(2, NULL).ref_w, 8);
    /* Refs all over the u64 range, up to its largest value. */
    make_rows(300, max, 5, UINT64_MAX / 299);
    cr_assert_eq(round_trip(300, NULL).ref_w, 8);
    rows[0].ref = UINT64_MAX;
    rows[1].ref = 0;
    cr_assert_eq(round_trip(300, NULL).ref_base, 0);
}

Test(segment, refs_near_2_to_the_64_keep_4_bytes_with_a_lowered_base)
{
    static const uint32_t max[SDB_N_DIMS] = {1, 0, 0, 0, 0, 0};
    make_rows(5, max, UINT64_MAX - 4, 1);
    sdb__seg_fmt f = round_trip(5, NULL);
    cr_assert_eq(f.ref_w, 4);
    cr_assert_eq(f.ref_base, UINT64_MAX - UINT32_MAX);
}

Test(segment, wider_columns_than_needed_read_the_same)
{
    static const uint32_t max[SDB_N_DIMS] = {0, 7, 300, 0, 70000, 1};
    make_rows(500, max, 1ull << 40, 11);
    sdb__seg_fmt wide = {.ref_base = 0, .ref_w = 8, .dim_w = {4, 4, 4, 4, 4, 4}};
    round_trip(500, &wide);
    sdb__seg_fmt mid = {.ref_base = 1ull << 40, .ref_w = 4, .dim_w = {1, 2, 2, 1, 4, 2}};
    round_trip(500, &mid);
}

Test(segment, small_segments_are_widened_out_of_lmdb_leaves)
{
    static const uint32_t max[SDB_N_DIMS] = {2, 5, 9, 0, 0, 0};
    /* 40 rows: 1408 bytes narrow (32-byte rows), 2408 at full width
     * (57-byte rows): widened. */
    make_rows(40, max, 50, 1);
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(ptrs, 40, &f);
    cr_assert_gt(len, SDB__SEG_LEAF_MAX);
    cr_assert_eq(f.ref_w, 8);
    for (int d = 0; d < SDB_N_DIMS; d++) cr_assert_eq(f.dim_w[d], 4);
    round_trip(40, NULL);
    /* 20 rows stay under it even at full width: narrow. */
    make_rows(20, max, 50, 1);
    cr_assert_eq(sdb__seg_plan(ptrs, 20, &f), 128 + 32 * 20u);
    cr_assert_eq(f.ref_w, 4);
    /* 100 rows are past it already: narrow. */
    make_rows(100, max, 50, 1);
    cr_assert_eq(sdb__seg_plan(ptrs, 100, &f), 128 + 32 * 100u);
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

/* A valid 10-row segment with dimensions of width 0, 1 and 2. */
static size_t valid_segment(uint8_t *buf)
{
    static const uint32_t max[SDB_N_DIMS] = {0, 200, 1000, 0, 3, 0};
    make_rows(10, max, 99, 2);
    sdb__seg_fmt f;
    size_t len = sdb__seg_plan(ptrs, 10, &f);
    sdb__seg_build(ptrs, 10, &f, buf);
    return len;
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *what)
{
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_ECORRUPT, "%s", what);
}

Test(segment, rejects_corrupt_headers_and_lengths)
{
    uint8_t buf[1024], bad[1024];
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
    MUTATE(version, 1, "the fixed-width layout");
    MUTATE(version, 3, "a later version");
    MUTATE(n_rows, 11, "row count");
    MUTATE(n_rows, UINT32_MAX, "huge row count");
    MUTATE(n_type[0], g.h.n_type[0] + 1, "type counts");
    MUTATE(ref_w, 0, "ref width 0");
    MUTATE(ref_w, 2, "ref width 2");
    MUTATE(ref_w, 16, "ref width 16");
    MUTATE(ref_base, UINT64_MAX - UINT32_MAX + 1, "4-byte offsets past 2^64");
    static const uint8_t bad_w[] = {3, 5, 6, 7, 8, 16, 128, 255};
    for (size_t k = 0; k < sizeof bad_w; k++)
        for (int d = 0; d < SDB_N_DIMS; d++) MUTATE(dim_w[d], bad_w[k], "dimension width");
    /* Valid widths the body is not sized for. */
    MUTATE(dim_w[0], 1, "a width 0 column claimed as 1");
    MUTATE(dim_w[2], 4, "a 2-byte column claimed as 4");
    MUTATE(dim_w[1], 0, "a 1-byte column claimed as 0");
    MUTATE(ref_w, 8, "4-byte refs claimed as 8");
#undef MUTATE

    /* Reserved bytes are not read. */
    memcpy(bad, buf, len);
    memset(bad + offsetof(sdb__seg_hdr, reserved), 0xA5, 17);
    cr_assert_eq(sdb__seg_open(bad, len, &g), SDB_OK);
}

Test(segment, stray_type_bits_read_as_two_bit_fields)
{
    uint8_t buf[1024];
    size_t len = valid_segment(buf);
    sdb__seg g;
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    uint8_t *tsrc = buf + (g.tsrc - buf);
    tsrc[0] = 0xFF; /* type 3, source 3, high bits set */
    cr_assert_eq(sdb__seg_open(buf, len, &g), SDB_OK);
    cr_assert_eq(sdb__seg_type(&g, 0), 3);
    cr_assert_eq(sdb__seg_source(&g, 0), 3);
}
