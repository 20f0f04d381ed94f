/* Fuzz target: a column segment value as read from the `segments`
 * database (engine/segment.c, sdb__seg_open and sdb__seg_row), and the
 * same bytes as a `preagg` value (sdb__preagg_find). The bytes come from
 * disk: anything malformed must be SDB_ECORRUPT (or -1 from
 * sdb__preagg_find), never a read outside the value.
 *
 * Invariants: an accepted segment's encodings are valid and its columns
 * lie inside the input, each as long as its encoding says; every row
 * reads from inside them, the u32 widening of each dimension reads the
 * same ids, and the decoded time, value and trace columns (scalar and the
 * chosen kernel table) the same values bit for bit; rebuilding the
 * segment from its rows at the plan's encodings gives a segment that
 * opens, with the same rows and row count; a pre-aggregate list lies
 * inside the value.
 */
#include "fuzz.h"
#include "internal.h"

static void check_preagg(const uint8_t *data, size_t size)
{
    for (int d = 0; d < SDB_N_DIMS; d++) {
        const uint8_t *p = NULL;
        int m = sdb__preagg_find(data, size, d, &p);
        FUZZ_CHECK(m >= -1 && m < 0xFFFF);
        if (m < 0) continue;
        FUZZ_CHECK(p >= data && p <= data + size);
        FUZZ_CHECK((size_t)(data + size - p) >= (size_t)m * sizeof(sdb__preagg));
        double sum = 0;
        for (int i = 0; i < m; i++) {
            sdb__preagg e;
            memcpy(&e, p + (size_t)i * sizeof e, sizeof e);
            sum += e.sum;
        }
        (void)sum;
    }
    const uint8_t *p = NULL;
    int m = sdb__preagg_labels(data, size, &p);
    FUZZ_CHECK(m >= -1);
    if (m >= 0) {
        FUZZ_CHECK(p == data + 6 && size == 6 + (size_t)m * 8);
        FUZZ_CHECK(sdb__preagg_find(data, size, 0, &p) == -1);
    }
}

static bool col_inside(const uint8_t *col, size_t len, const uint8_t *data, size_t size)
{
    return col >= data + sizeof(sdb__seg_hdr) && col <= data + size &&
           (size_t)(data + size - col) >= len;
}

static bool valid_bits(unsigned b) { return b <= 32 || b == SDB__PK_RAW; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_preagg(data, size);

    sdb__seg g;
    int rc = sdb__seg_open(data, size, &g);
    FUZZ_CHECK(rc == SDB_OK || rc == SDB_ECORRUPT);
    if (rc) return 0;
    const sdb__seg_hdr *h = &g.h;
    sdb__seg_fmt f = {.ref_base = h->ref_base, .v_base = h->v_base, .tr_base = h->tr_base,
                      .ref_bits = h->ref_bits, .ts_bits = h->ts_bits, .tr_bits = h->tr_bits,
                      .v_enc = h->v_enc, .v_bits = h->v_bits, .v_exp = h->v_exp};
    memcpy(f.dim_w, h->dim_w, sizeof f.dim_w);
    FUZZ_CHECK(size == sdb__seg_len(g.n, &f));
    FUZZ_CHECK(valid_bits(f.ref_bits) && valid_bits(f.ts_bits) && f.tr_bits <= 32);
    FUZZ_CHECK(f.v_enc <= SDB__V_DEC && f.v_bits <= 32 && f.v_exp <= SDB__SEG_MAX_EXP);
    FUZZ_CHECK(col_inside(g.ts, sdb__pk_len(g.n, f.ts_bits), data, size));
    FUZZ_CHECK(col_inside(g.value, sdb__seg_vlen(g.n, f.v_enc, f.v_bits), data, size));
    FUZZ_CHECK(col_inside(g.trace, sdb__pk_len(g.n, f.tr_bits), data, size));
    FUZZ_CHECK(col_inside(g.ref, sdb__pk_len(g.n, f.ref_bits), data, size));
    for (int d = 0; d < SDB_N_DIMS; d++) {
        uint8_t w = f.dim_w[d];
        FUZZ_CHECK(w == 0 || w == 1 || w == 2 || w == 4);
        FUZZ_CHECK(col_inside(sdb__seg_dim_col(&g, d), (size_t)w * g.n, data, size));
    }
    FUZZ_CHECK(col_inside(g.tsrc, g.n, data, size));

    sdb__fixed *rows = calloc(g.n ? g.n : 1, sizeof *rows);
    const sdb__fixed **ptrs = calloc(g.n ? g.n : 1, sizeof *ptrs);
    FUZZ_CHECK(rows && ptrs);
    for (uint32_t i = 0; i < g.n; i++) {
        sdb__seg_row(&g, i, &rows[i]);
        ptrs[i] = &rows[i];
        FUZZ_CHECK(rows[i].type < 4 && rows[i].source < 4);
    }

    /* The widened dimension columns read what the rows read. */
    uint32_t *wide = malloc(sizeof *wide * (g.n ? g.n : 1));
    FUZZ_CHECK(wide != NULL);
    for (int d = 0; d < SDB_N_DIMS; d++) {
        const uint8_t *k = sdb__seg_dim_u32(&g, d, wide);
        for (uint32_t i = 0; i < g.n; i++) {
            uint32_t x;
            memcpy(&x, k + 4 * (size_t)i, 4);
            FUZZ_CHECK(x == rows[i].dims[d]);
        }
    }
    free(wide);

    /* The decoded columns, by the scalar table and the chosen one, read
     * what the rows read, bit for bit. */
    uint64_t *dec = malloc(sizeof *dec * (g.n ? g.n : 1));
    FUZZ_CHECK(dec != NULL);
    const sdb_kernels *tables[2] = {&sdb__kernels_scalar, sdb__kernels()};
    for (int k = 0; k < 2; k++) {
        const uint8_t *ts = sdb__seg_ts(&g, tables[k], (int64_t *)dec);
        for (uint32_t i = 0; i < g.n; i++) {
            int64_t t;
            memcpy(&t, ts + 8 * (size_t)i, 8);
            FUZZ_CHECK(t == rows[i].ts);
        }
        const uint8_t *v = sdb__seg_values(&g, tables[k], (double *)dec);
        for (uint32_t i = 0; i < g.n; i++) FUZZ_CHECK(memcmp(v + 8 * (size_t)i, &rows[i].value, 8) == 0);
        const uint8_t *tr = sdb__seg_traces(&g, tables[k], dec);
        for (uint32_t i = 0; i < g.n; i++) FUZZ_CHECK(memcmp(tr + 8 * (size_t)i, &rows[i].trace, 8) == 0);
    }
    free(dec);

    /* Rebuild and reopen: the rows must survive unchanged. (The rebuilt
     * segment may be longer than the input: the leaf rule widens small
     * ones, and a decimal column whose integers pass 2^53 reads back as
     * doubles that only f64 holds.) */
    sdb__seg_fmt pf;
    size_t len = sdb__seg_plan(ptrs, g.n, &pf);
    uint8_t *copy = malloc(len);
    FUZZ_CHECK(copy != NULL);
    FUZZ_CHECK(sdb__seg_build(ptrs, g.n, &pf, copy) == SDB_OK);
    sdb__seg g2;
    FUZZ_CHECK(sdb__seg_open(copy, len, &g2) == SDB_OK);
    FUZZ_CHECK(g2.n == g.n);
    for (uint32_t i = 0; i < g.n; i++) {
        sdb__fixed fx;
        memset(&fx, 0, sizeof fx);
        sdb__seg_row(&g2, i, &fx);
        FUZZ_CHECK(memcmp(&fx, &rows[i], sizeof fx) == 0);
    }
    free(copy);
    free(ptrs);
    free(rows);
    return 0;
}
