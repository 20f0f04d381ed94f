/* Tests for engine/kernels/: scalar.c against hand-computed answers, then
 * every SIMD table this CPU supports against scalar.c.
 *
 * The SIMD tables must agree with scalar exactly on counts (n, histogram
 * bins, selected hashes) and on min/max, and on sums within rounding.
 * Tolerance: a sum of m terms added in another order differs by at most
 * about 2 * m * DBL_EPSILON * sum(|term|) (Higham, "Accuracy and Stability
 * of Numerical Algorithms", 4.2); we allow 4 * (m + 8) * DBL_EPSILON times
 * the sum of absolute terms of that very accumulator, computed here
 * independently. min/max are compared with ==, so -0 and +0 are equal: the
 * sign of a zero minimum depends on which zero came first, and lanes see
 * rows in another order.
 *
 * Columns are copied into buffers of exactly the needed size at byte
 * offsets 0..7, so unaligned loads are exercised and an overrun is caught
 * under -fsanitize=address. A table the CPU lacks skips its tests.
 */
#include <criterion/criterion.h>

#include "kernels/kernels.h"
#include <scoredb.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- data ---------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

enum vals { V_UNIT, V_WIDE, V_EDGES, V_PASSFAIL };
enum times { T_SORTED, T_SHUFFLED };

static const double edge_values[] = {
    0.0, -0.0, 1e300, -1e300, 1e-300, -1e-300, -3.5, 0.5, 1.0, -1.0,
    DBL_MIN, -DBL_MIN, 5e-324, 0.1, 0.9, 0.25, 0.75, NAN, 2.0, -2.0,
};

static double gen_value(enum vals mode, uint64_t *s)
{
    switch (mode) {
    case V_UNIT: return rng_unit(s);
    case V_WIDE: return (rng_unit(s) - 0.5) * 2000.0;
    case V_EDGES: return edge_values[rng_next(s) % (sizeof edge_values / sizeof edge_values[0])];
    case V_PASSFAIL: return (double)(rng_next(s) & 1);
    }
    return 0;
}

/* Columns in row order, each in its own malloc of exactly n elements placed
 * `off` bytes into the block. */
typedef struct cols {
    size_t n;
    void *v, *ts, *keys, *hash;
    void *base[4];
    double *vd;   /* aligned copies, for the test's own reference sums */
    int64_t *td;
    uint32_t *kd;
} cols;

static void *place(const void *src, size_t len, unsigned off, void **base)
{
    *base = malloc(len + off);
    cr_assert_not_null(*base);
    char *p = (char *)*base + off;
    memcpy(p, src, len);
    return p;
}

static cols cols_make(size_t n, unsigned off, enum vals vm, enum times tm, uint32_t n_keys,
                      uint64_t seed)
{
    cols c;
    memset(&c, 0, sizeof c);
    c.n = n;
    size_t m = n ? n : 1;
    c.vd = malloc(m * 8);
    c.td = malloc(m * 8);
    c.kd = malloc(m * 4);
    uint64_t *hd = malloc(m * 8);
    cr_assert(c.vd && c.td && c.kd && hd);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        c.vd[i] = gen_value(vm, &s);
        c.td[i] = tm == T_SORTED ? 1000 + (int64_t)i * 3 + (int64_t)(rng_next(&s) % 3)
                                 : 1000 + (int64_t)(rng_next(&s) % 20000);
        c.kd[i] = n_keys ? (uint32_t)(rng_next(&s) % (n_keys + 1)) : 0; /* n_keys: out of range */
        hd[i] = (rng_next(&s) % 5 == 0) ? 0 : rng_next(&s);            /* some hashes absent */
    }
    c.v = place(c.vd, n * 8, off, &c.base[0]);
    c.ts = place(c.td, n * 8, off, &c.base[1]);
    c.keys = place(c.kd, n * 4, off, &c.base[2]);
    c.hash = place(hd, n * 8, off, &c.base[3]);
    free(hd);
    return c;
}

static void cols_free(cols *c)
{
    for (int j = 0; j < 4; j++) free(c->base[j]);
    free(c->vd);
    free(c->td);
    free(c->kd);
}

/* ---- filters ------------------------------------------------------------- */

/* F_ALL, F_NONE_VALUE and F_VALUE leave the time range at everything,
 * where the SIMD tables skip the ts column; F_AFTER bounds it on one side
 * only, so that the skip must not be taken. */
enum filt { F_ALL, F_NONE_TIME, F_NONE_VALUE, F_SOME, F_VALUE, F_AFTER, F_COUNT };

static sdb_filter filter(enum filt which, const cols *c)
{
    sdb_filter f = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0.5};
    switch (which) {
    case F_ALL: break;
    case F_NONE_TIME: f.t_lo = 1; f.t_hi = 0; break;
    case F_NONE_VALUE: f.v_lo = 1; f.v_hi = -1; break;
    case F_SOME:
        /* Bounds equal to data values, so inclusiveness matters. */
        f.t_lo = c->n > 2 ? c->td[c->n / 4] : 1000;
        f.t_hi = c->n > 2 ? c->td[c->n / 2] + 5000 : 5000;
        f.v_lo = 0.1;
        f.v_hi = 0.9;
        f.shift = 0.4;
        break;
    case F_VALUE:
        f.v_lo = 0.2;
        f.v_hi = nextafter(0.4, 0.0); /* [0.2, 0.4) */
        break;
    case F_AFTER:
        f.t_lo = c->n > 2 ? c->td[c->n / 3] : 1000;
        break;
    default: break;
    }
    return f;
}

static int passes(const sdb_filter *f, int64_t t, double x)
{
    return t >= f->t_lo && t <= f->t_hi && x >= f->v_lo && x <= f->v_hi;
}

/* ---- comparing partial aggregates --------------------------------------- */

/* Sums of absolute terms of one accumulator: the scale of its rounding. */
typedef struct absum {
    double m, sum, s1, s2;
} absum;

static void absum_add(absum *a, double x, double k)
{
    a->m += 1;
    a->sum += fabs(x);
    a->s1 += fabs(x - k);
    a->s2 += (x - k) * (x - k);
}

/* Criterion reports every assertion to its runner, passing or not; the
 * sweeps below make millions of comparisons, so they test in plain C and
 * hand Criterion only the failures (with the values). CHECK(cond, ...) is
 * cr_expect(cond, ...) that costs nothing when cond holds. */
#define CHECK(cond, ...)                       \
    do {                                       \
        if (!(cond)) cr_expect(cond, __VA_ARGS__); \
    } while (0)

static void expect_close(double got, double want, double scale, double m, const char *what,
                         const char *ctx, const char *label, unsigned idx)
{
    if (!isfinite(got) || !isfinite(want) || !isfinite(scale)) {
        /* Overflowed (1e300 squared): both must overflow alike. */
        CHECK(got == want || (isnan(got) && isnan(want)) || !isfinite(scale),
              "%s %s %u: %s = %.17g, scalar %.17g", ctx, label, idx, what, got, want);
        return;
    }
    double tol = 4.0 * (m + 8.0) * DBL_EPSILON * scale;
    CHECK(fabs(got - want) <= tol, "%s %s %u: %s = %.17g, scalar %.17g (tolerance %g)", ctx,
          label, idx, what, got, want, tol);
}

static void expect_agg(const sdb_agg *got, const sdb_agg *want, const absum *sc, const char *ctx,
                       const char *label, unsigned idx)
{
    CHECK(got->n == want->n, "%s %s %u: n = %llu, scalar %llu", ctx, label, idx,
          (unsigned long long)got->n, (unsigned long long)want->n);
    CHECK(got->min == want->min, "%s %s %u: min = %.17g, scalar %.17g", ctx, label, idx, got->min,
          want->min);
    CHECK(got->max == want->max, "%s %s %u: max = %.17g, scalar %.17g", ctx, label, idx, got->max,
          want->max);
    expect_close(got->sum, want->sum, sc->sum, sc->m, "sum", ctx, label, idx);
    expect_close(got->s1, want->s1, sc->s1, sc->m, "s1", ctx, label, idx);
    expect_close(got->s2, want->s2, sc->s2, sc->m, "s2", ctx, label, idx);
}

static int guard_intact(const void *p, size_t len)
{
    for (size_t j = 0; j < len; j++)
        if (((const unsigned char *)p)[j] != 0xa5) return 0;
    return 1;
}

/* A seed for accumulated-into outputs: odd slots hold one earlier row. */
static void seed_accs(sdb_agg *a, size_t n, absum *sc, double k)
{
    for (size_t j = 0; j < n; j++) {
        sdb__agg_empty(&a[j]);
        memset(&sc[j], 0, sizeof sc[j]);
        if (j & 1) {
            a[j].n = 1;
            a[j].sum = a[j].min = a[j].max = 0.5;
            a[j].s1 = 0.5 - k;
            a[j].s2 = (0.5 - k) * (0.5 - k);
            absum_add(&sc[j], 0.5, k);
        }
    }
}

/* ---- the checks, one per kernel ----------------------------------------- */

static const sdb_kernels *const S = &sdb__kernels_scalar;

static void check_agg(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    sdb_agg got, want;
    absum sc = {0, 0, 0, 0};
    memset(&got, 0x55, sizeof got); /* *out is overwritten, not accumulated */
    k->agg_f64(c->v, c->ts, c->n, f, &got);
    S->agg_f64(c->v, c->ts, c->n, f, &want);
    for (size_t i = 0; i < c->n; i++)
        if (passes(f, c->td[i], c->vd[i])) absum_add(&sc, c->vd[i], f->shift);
    expect_agg(&got, &want, &sc, ctx, "row set", 0);
}

static void check_hist(const sdb_kernels *k, const cols *c, const sdb_filter *f, double lo,
                       double hi, uint32_t bins, const char *ctx)
{
    double width = (hi - lo) / bins;
    size_t m = (size_t)bins + 2;
    uint64_t *got = malloc((m + 1) * 8), *want = malloc(m * 8);
    cr_assert(got && want);
    for (size_t b = 0; b < m; b++) got[b] = want[b] = b * 3; /* accumulated into */
    memset(&got[m], 0xa5, 8); /* a guard the kernel must not touch */
    k->hist_f64(c->v, c->ts, c->n, f, lo, hi, width, bins, got);
    S->hist_f64(c->v, c->ts, c->n, f, lo, hi, width, bins, want);
    for (size_t b = 0; b < m; b++)
        CHECK(got[b] == want[b], "%s: bins=%u counts[%zu] = %llu, scalar %llu", ctx, bins, b,
                     (unsigned long long)got[b], (unsigned long long)want[b]);
    CHECK(guard_intact(&got[m], 8), "%s: bins=%u wrote past counts[%zu]", ctx, bins, m - 1);
    free(got);
    free(want);
}

static void check_group(const sdb_kernels *k, const cols *c, const sdb_filter *f,
                        uint32_t n_keys, const char *ctx)
{
    size_t m = n_keys ? n_keys : 1;
    /* One guard slot past the end: an out-of-range key must not reach it. */
    sdb_agg *got = malloc((m + 1) * sizeof *got), *want = malloc(m * sizeof *want);
    absum *sc = malloc(m * sizeof *sc);
    cr_assert(got && want && sc);
    seed_accs(got, m, sc, f->shift);
    seed_accs(want, m, sc, f->shift);
    memset(&got[m], 0xa5, sizeof got[m]);
    k->group_u32(c->keys, c->v, c->ts, c->n, f, n_keys, got);
    S->group_u32(c->keys, c->v, c->ts, c->n, f, n_keys, want);
    for (size_t i = 0; i < c->n; i++)
        if (passes(f, c->td[i], c->vd[i]) && c->kd[i] < n_keys)
            absum_add(&sc[c->kd[i]], c->vd[i], f->shift);
    for (uint32_t j = 0; j < n_keys; j++) expect_agg(&got[j], &want[j], &sc[j], ctx, "key", j);
    CHECK(guard_intact(&got[m], sizeof got[m]), "%s: wrote past accs[%u]", ctx, n_keys - 1);
    free(got);
    free(want);
    free(sc);
}

static void check_series(const sdb_kernels *k, const cols *c, const sdb_filter *f, int64_t t0,
                         int64_t width, uint32_t n_buckets, const char *ctx)
{
    sdb_agg *got = malloc((n_buckets + 1) * sizeof *got), *want = malloc(n_buckets * sizeof *want);
    absum *sc = malloc(n_buckets * sizeof *sc);
    cr_assert(got && want && sc);
    seed_accs(got, n_buckets, sc, f->shift);
    seed_accs(want, n_buckets, sc, f->shift);
    memset(&got[n_buckets], 0xa5, sizeof got[n_buckets]);
    k->series_f64(c->v, c->ts, c->n, f, t0, width, n_buckets, got);
    S->series_f64(c->v, c->ts, c->n, f, t0, width, n_buckets, want);
    for (size_t i = 0; i < c->n; i++) {
        if (!passes(f, c->td[i], c->vd[i])) continue;
        uint64_t b = (uint64_t)(c->td[i] - t0) / (uint64_t)width;
        if (b < n_buckets) absum_add(&sc[b], c->vd[i], f->shift);
    }
    char where[160];
    snprintf(where, sizeof where, "%s width %lld", ctx, (long long)width);
    for (uint32_t j = 0; j < n_buckets; j++) expect_agg(&got[j], &want[j], &sc[j], where, "bucket", j);
    CHECK(guard_intact(&got[n_buckets], sizeof got[n_buckets]), "%s: wrote past the last bucket",
          where);
    free(got);
    free(want);
    free(sc);
}

static void check_select(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    size_t m = c->n ? c->n : 1; /* room for n, exactly: ASan sees overruns */
    uint64_t *got = malloc(m * 8), *want = malloc(m * 8);
    cr_assert(got && want);
    size_t ng = k->select_u64(c->hash, c->v, c->ts, c->n, f, got);
    size_t nw = S->select_u64(c->hash, c->v, c->ts, c->n, f, want);
    CHECK(ng == nw, "%s: selected %zu, scalar %zu", ctx, ng, nw);
    for (size_t j = 0; j < ng && j < nw; j++)
        CHECK(got[j] == want[j], "%s: out[%zu] = %llx, scalar %llx", ctx, j,
                     (unsigned long long)got[j], (unsigned long long)want[j]);
    free(got);
    free(want);
}

/* ---- sweeps -------------------------------------------------------------- */

static const size_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099};
#define N_LENGTHS (sizeof lengths / sizeof lengths[0])

static const sdb_kernels *need(const char *name)
{
    const sdb_kernels *k = sdb__kernels_by_name(name);
    if (k == NULL) cr_skip_test("%s is not supported by this CPU", name);
    cr_assert_str_eq(k->name, name);
    return k;
}

typedef void (*check_fn)(const sdb_kernels *k, const cols *c, const sdb_filter *f,
                         const char *ctx);

/* Every length x every byte offset x every filter, on one kind of value. */
static void sweep_keys(const sdb_kernels *k, enum vals vm, enum times tm, check_fn fn,
                       uint64_t seed, uint32_t n_keys)
{
    for (size_t li = 0; li < N_LENGTHS; li++) {
        for (unsigned off = 0; off < 8; off++) {
            cols c = cols_make(lengths[li], off, vm, tm, n_keys, seed + li * 8 + off);
            for (int fi = 0; fi < F_COUNT; fi++) {
                sdb_filter f = filter((enum filt)fi, &c);
                char ctx[128];
                snprintf(ctx, sizeof ctx, "%s n=%zu off=%u vals=%d times=%d filter=%d", k->name,
                         c.n, off, vm, tm, fi);
                fn(k, &c, &f, ctx);
            }
            cols_free(&c);
        }
    }
}

static void sweep(const sdb_kernels *k, enum vals vm, enum times tm, check_fn fn, uint64_t seed)
{
    sweep_keys(k, vm, tm, fn, seed, 13);
}

static void hist_unit(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    check_hist(k, c, f, 0.0, 1.0, 10, ctx);
    check_hist(k, c, f, 0.2, 0.7, 3, ctx);
    check_hist(k, c, f, -1.0, 1.0, 1, ctx);
    check_hist(k, c, f, 0.0, 1.0, 30, ctx);   /* the most bins counted by byte compares */
    check_hist(k, c, f, 0.05, 0.95, 31, ctx); /* the fewest counted by sub-histograms */
    check_hist(k, c, f, 0.0, 1.0, 3000, ctx); /* beyond the on-stack sub-histograms */
}

static void hist_wide(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    check_hist(k, c, f, -1e300, 1e300, 16, ctx);
    check_hist(k, c, f, -2.0, 2.0, 8, ctx);
    check_hist(k, c, f, -500.0, 500.0, 1024, ctx);
    check_hist(k, c, f, -DBL_MAX, DBL_MAX, 4, ctx); /* width overflows to inf */
}

static void group13(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    check_group(k, c, f, 13, ctx); /* keys 0..13: key 13 is out of range, skipped */
    check_group(k, c, f, 1, ctx);
}

static void group150(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    /* Many keys (beyond the on-stack copies); keys 150..200 are skipped. */
    check_group(k, c, f, 150, ctx);
    check_group(k, c, f, 201, ctx);
}

static void series_all(const sdb_kernels *k, const cols *c, const sdb_filter *f0, const char *ctx)
{
    /* series requires t0 <= t_lo. */
    sdb_filter f = *f0;
    if (f.t_lo < 0) f.t_lo = 0;
    static const int64_t widths[] = {1, 3, 8, 64, 1000, 100000};
    for (size_t j = 0; j < sizeof widths / sizeof widths[0]; j++) {
        int64_t w = widths[j];
        uint32_t nb = (uint32_t)(25000 / w + 1);
        check_series(k, c, &f, 0, w, nb, ctx);
        /* Too few buckets: rows past the last one are dropped alike. */
        check_series(k, c, &f, 0, w, nb / 2 + 1, ctx);
    }
    check_series(k, c, &f, 0, 7, 1, ctx);
}

/* ---- scalar.c against hand-computed answers ----------------------------- */

/* Row i of a small hand-written table, at an odd offset. */
typedef struct small {
    void *v, *ts, *keys, *hash, *base[4];
} small;

static small small_make(const double *v, const int64_t *ts, const uint32_t *keys,
                        const uint64_t *hash, size_t n)
{
    small s;
    s.v = place(v, n * 8, 3, &s.base[0]);
    s.ts = place(ts, n * 8, 5, &s.base[1]);
    s.keys = place(keys, n * 4, 1, &s.base[2]);
    s.hash = place(hash, n * 8, 7, &s.base[3]);
    return s;
}

static void small_free(small *s)
{
    for (int j = 0; j < 4; j++) free(s->base[j]);
}

static const sdb_filter every = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 2.0};

Test(kernels, scalar_agg_computes_count_sums_and_extremes_by_hand)
{
    double v[] = {1, 2, 3, 4};
    int64_t ts[] = {10, 20, 30, 40};
    uint32_t keys[4] = {0};
    uint64_t hash[4] = {0};
    small s = small_make(v, ts, keys, hash, 4);
    sdb_agg a;
    S->agg_f64(s.v, s.ts, 4, &every, &a);
    cr_assert_eq(a.n, 4);
    cr_assert_eq(a.sum, 10.0);
    cr_assert_eq(a.s1, 2.0);  /* -1 + 0 + 1 + 2 */
    cr_assert_eq(a.s2, 6.0);  /* 1 + 0 + 1 + 4 */
    cr_assert_eq(a.min, 1.0);
    cr_assert_eq(a.max, 4.0);

    sdb_filter f = {20, 30, -INFINITY, INFINITY, 0.0}; /* inclusive time bounds */
    S->agg_f64(s.v, s.ts, 4, &f, &a);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.sum, 5.0);
    cr_assert_eq(a.s2, 13.0);
    cr_assert_eq(a.min, 2.0);
    cr_assert_eq(a.max, 3.0);

    f = (sdb_filter){INT64_MIN, INT64_MAX, 1.5, 4.0, 0.0}; /* inclusive value bounds */
    S->agg_f64(s.v, s.ts, 4, &f, &a);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(a.sum, 9.0);
    small_free(&s);
}

Test(kernels, scalar_agg_of_nothing_is_the_empty_aggregate)
{
    double v[] = {1, NAN};
    int64_t ts[] = {10, 20};
    uint32_t keys[2] = {0};
    uint64_t hash[2] = {0};
    small s = small_make(v, ts, keys, hash, 2);
    sdb_agg a;
    sdb_filter none = {11, 19, -INFINITY, INFINITY, 0.0};
    S->agg_f64(s.v, s.ts, 2, &none, &a);
    cr_assert_eq(a.n, 0);
    cr_assert_eq(a.sum, 0.0);
    cr_assert(isinf(a.min) && a.min > 0);
    cr_assert(isinf(a.max) && a.max < 0);
    /* NaN fails every value bound, even [-inf, inf]. */
    S->agg_f64(s.v, s.ts, 2, &every, &a);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(a.max, 1.0);
    S->agg_f64(s.v, s.ts, 0, &every, &a);
    cr_assert_eq(a.n, 0);
    small_free(&s);
}

Test(kernels, scalar_hist_puts_edges_in_the_documented_bins)
{
    double v[] = {-0.5, 0.0, 0.25, 0.5, 0.99, 1.0, 1.5, 0.3};
    int64_t ts[8] = {0};
    uint32_t keys[8] = {0};
    uint64_t hash[8] = {0};
    small s = small_make(v, ts, keys, hash, 8);
    uint64_t c[6] = {0, 0, 0, 0, 0, 100};
    S->hist_f64(s.v, s.ts, 8, &every, 0.0, 1.0, 0.25, 4, c);
    /* 0 -> 0; 0.25 and 0.3 -> 1; 0.5 -> 2; 0.99 and 1.0 (== hi) -> 3; under; over. */
    uint64_t want[6] = {1, 2, 1, 2, 1, 101};
    for (int b = 0; b < 6; b++) cr_assert_eq(c[b], want[b], "bin %d: %llu", b, (unsigned long long)c[b]);

    /* Width 0 (lo == hi == x): the last bin. */
    double five = 5.0;
    uint64_t z[3] = {0, 0, 0};
    S->hist_f64((const char *)&five, s.ts, 1, &every, 5.0, 5.0, 0.0, 1, z);
    cr_assert_eq(z[0], 1);
    cr_assert_eq(z[1] + z[2], 0);
    small_free(&s);
}

Test(kernels, scalar_group_accumulates_by_key_and_skips_unknown_keys)
{
    double v[] = {1, 2, 4, 8, 16};
    int64_t ts[] = {1, 2, 3, 4, 5};
    uint32_t keys[] = {0, 1, 0, 2, 1};
    uint64_t hash[5] = {0};
    small s = small_make(v, ts, keys, hash, 5);
    sdb_agg a[2];
    sdb__agg_empty(&a[0]);
    sdb__agg_empty(&a[1]);
    a[1].n = 1;
    a[1].sum = 100;
    S->group_u32(s.keys, s.v, s.ts, 5, &every, 2, a);
    cr_assert_eq(a[0].n, 2);
    cr_assert_eq(a[0].sum, 5.0);
    cr_assert_eq(a[0].s2, 5.0); /* (1-2)^2 + (4-2)^2 */
    cr_assert_eq(a[1].n, 3);    /* accumulated onto the earlier row */
    cr_assert_eq(a[1].sum, 118.0);
    cr_assert_eq(a[1].min, 2.0);
    cr_assert_eq(a[1].max, 16.0);
    small_free(&s);
}

Test(kernels, scalar_series_buckets_by_time_from_t0)
{
    double v[] = {1, 2, 3, 4, 5};
    int64_t ts[] = {100, 109, 110, 125, 130};
    uint32_t keys[5] = {0};
    uint64_t hash[5] = {0};
    small s = small_make(v, ts, keys, hash, 5);
    sdb_agg a[3];
    for (int j = 0; j < 3; j++) sdb__agg_empty(&a[j]);
    sdb_filter f = {100, INT64_MAX, -INFINITY, INFINITY, 0.0};
    S->series_f64(s.v, s.ts, 5, &f, 100, 10, 3, a);
    cr_assert_eq(a[0].n, 2);
    cr_assert_eq(a[0].sum, 3.0);
    cr_assert_eq(a[1].n, 1);
    cr_assert_eq(a[1].sum, 3.0);
    cr_assert_eq(a[2].n, 1); /* 130 is bucket 3: past the end, dropped */
    cr_assert_eq(a[2].sum, 4.0);
    small_free(&s);
}

Test(kernels, scalar_select_keeps_passing_nonzero_hashes_in_order)
{
    double v[] = {1, 2, 3, 4};
    int64_t ts[] = {1, 2, 3, 4};
    uint32_t keys[4] = {0};
    uint64_t hash[] = {5, 0, 7, 9};
    small s = small_make(v, ts, keys, hash, 4);
    uint64_t out[4] = {0};
    sdb_filter f = {INT64_MIN, 3, -INFINITY, INFINITY, 0.0};
    cr_assert_eq(S->select_u64(s.hash, s.v, s.ts, 4, &f, out), 2);
    cr_assert_eq(out[0], 5);
    cr_assert_eq(out[1], 7);
    small_free(&s);
}

/* ---- dispatch ------------------------------------------------------------ */

Test(kernels, dispatch_names_tables_and_rejects_unknown_names)
{
    cr_assert_eq(sdb__kernels_by_name("scalar"), &sdb__kernels_scalar);
    cr_assert_null(sdb__kernels_by_name("sse9"));
    cr_assert_null(sdb__kernels_by_name(NULL));
    const sdb_kernels *a2 = sdb__kernels_by_name("avx2");
    cr_assert(a2 == NULL || strcmp(a2->name, "avx2") == 0);
    cr_assert_eq(a2 != NULL, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    const sdb_kernels *a5 = sdb__kernels_by_name("avx512");
    cr_assert(a5 == NULL || strcmp(a5->name, "avx512") == 0);
    cr_assert_eq(a5 != NULL, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"));
}

/* Criterion runs each test in its own process, so the once-only choice is
 * made afresh here. */
Test(kernels, dispatch_honours_sdb_kernels_override)
{
    setenv("SDB_KERNELS", "scalar", 1);
    cr_assert_eq(sdb__kernels(), &sdb__kernels_scalar);
    cr_assert_str_eq(sdb_kernels_name(), "scalar");
}

/* The default table: the best one the CPU runs, and with both SIMD tables
 * avx512's kernels but for those dispatch.c takes from avx2 (measured
 * slower on AVX-512 here), each named by sdb__kernels_choice. */
static void expect_best_table(void)
{
    const sdb_kernels *k = sdb__kernels(), *a5 = sdb__kernels_by_name("avx512");
    const sdb_kernels *a2 = sdb__kernels_by_name("avx2");
    if (a5 != NULL && a2 != NULL) {
        cr_assert_str_eq(k->name, "avx512");
        cr_assert(k->agg_f64 == a5->agg_f64 && k->agg_dec == a5->agg_dec &&
                  k->unpack_dec == a5->unpack_dec);
        cr_assert(k->mask_f64 == a2->mask_f64 && k->slot_hist == a2->slot_hist);
        cr_assert_str_eq(sdb__kernels_choice("mask_f64"), "avx2");
        cr_assert_str_eq(sdb__kernels_choice("slot_hist"), "avx2");
        cr_assert_str_eq(sdb__kernels_choice("agg_dec"), "avx512");
        cr_assert_null(sdb__kernels_choice("no_such_kernel"));
        return;
    }
    const sdb_kernels *want = a5 ? a5 : a2 ? a2 : &sdb__kernels_scalar;
    cr_assert_eq(k, want);
    cr_assert_str_eq(sdb__kernels_choice("agg_f64"), want->name);
}

Test(kernels, dispatch_picks_the_best_table_without_override)
{
    unsetenv("SDB_KERNELS");
    expect_best_table();
    cr_assert_eq(sdb__kernels(), sdb__kernels(), "the choice is stable");
}

Test(kernels, dispatch_falls_back_on_unknown_override)
{
    setenv("SDB_KERNELS", "avx9000", 1);
    expect_best_table();
}

Test(kernels, dispatch_lists_every_kernel_of_the_table)
{
    /* sdb_kernels is its name and one pointer per kernel. */
    size_t n = 0;
    while (sdb__kernels_field(n) != NULL) {
        cr_assert_not_null(sdb__kernels_choice(sdb__kernels_field(n)), "%s",
                           sdb__kernels_field(n));
        n++;
    }
    cr_assert_eq(n, (sizeof(sdb_kernels) - sizeof(const char *)) / sizeof(void (*)(void)),
                 "dispatch.c lists %zu kernels", n);
}

Test(kernels, dispatch_override_gives_the_whole_table)
{
    setenv("SDB_KERNELS", "avx512", 1);
    const sdb_kernels *a5 = sdb__kernels_by_name("avx512");
    if (a5 == NULL) cr_skip_test("no AVX-512 on this CPU");
    cr_assert_eq(sdb__kernels(), a5);
    cr_assert_str_eq(sdb__kernels_choice("mask_f64"), "avx512");
}

/* ---- each SIMD table against scalar ------------------------------------- */

static void hist_edges(const sdb_kernels *k)
{
    /* Exactly at lo, hi, every bin edge, and one ulp either side of each. */
    double lo = -1.0, hi = 1.0;
    uint32_t bins = 8;
    double vals[64];
    size_t m = 0;
    for (uint32_t j = 0; j <= bins; j++) {
        double e = lo + j * ((hi - lo) / bins);
        vals[m++] = e;
        vals[m++] = nextafter(e, -INFINITY);
        vals[m++] = nextafter(e, INFINITY);
    }
    vals[m++] = -0.0;
    vals[m++] = 0.3;
    vals[m++] = -7.0;
    vals[m++] = 7.0;
    for (unsigned off = 0; off < 8; off++) {
        for (size_t n = 1; n <= m; n++) {
            cols c = cols_make(n, off, V_UNIT, T_SORTED, 1, 7);
            memcpy(c.v, vals, n * 8);
            memcpy(c.vd, vals, n * 8);
            sdb_filter f = filter(F_ALL, &c);
            char ctx[96];
            snprintf(ctx, sizeof ctx, "%s edges n=%zu off=%u", k->name, n, off);
            check_hist(k, &c, &f, lo, hi, bins, ctx);
            check_hist(k, &c, &f, 0.0, 1.0, 10, ctx); /* 0.1 is inexact: floor after division */
            check_hist(k, &c, &f, 0.0, 0.3, 3, ctx);
            check_hist(k, &c, &f, 0.5, 0.5, 1, ctx); /* width 0 */
            check_hist(k, &c, &f, 0.0, 0.0, 4, ctx);
            cols_free(&c);
        }
    }
    /* The same values cycled over 4099 rows: whole 64-row blocks, which
     * the AVX-512 table counts with byte compares when bins + 2 <= 32. */
    {
        size_t n = 4099;
        cols c = cols_make(n, 5, V_UNIT, T_SORTED, 1, 13);
        for (size_t i = 0; i < n; i++) c.vd[i] = vals[(i * 7) % m];
        memcpy(c.v, c.vd, n * 8);
        sdb_filter f = filter(F_ALL, &c);
        check_hist(k, &c, &f, lo, hi, bins, "edges cycled");
        check_hist(k, &c, &f, 0.0, 1.0, 10, "edges cycled");
        check_hist(k, &c, &f, 0.0, 0.3, 3, "edges cycled");
        check_hist(k, &c, &f, 0.5, 0.5, 1, "edges cycled");
        check_hist(k, &c, &f, 0.0, 0.0, 4, "edges cycled");
        f = filter(F_SOME, &c);
        check_hist(k, &c, &f, lo, hi, bins, "edges cycled, time and value filter");
        cols_free(&c);
    }
    /* A value filter whose bounds are bin edges, and rows left of lo kept. */
    cols c = cols_make(4099, 3, V_EDGES, T_SHUFFLED, 1, 11);
    sdb_filter f = {INT64_MIN, INT64_MAX, -1.0, 0.25, 0.0};
    check_hist(k, &c, &f, -0.5, 0.5, 4, "edges, value filter");
    cols_free(&c);
}

static void hist_known(const sdb_kernels *k)
{
    /* An absolute check, so scalar and SIMD cannot agree on a wrong answer:
     * 4099 rows of value (i % 10) / 10 + 0.05 in 10 bins over [0, 1]. */
    size_t n = 4099;
    cols c = cols_make(n, 5, V_UNIT, T_SORTED, 1, 3);
    for (size_t i = 0; i < n; i++) c.vd[i] = (double)(i % 10) / 10.0 + 0.05;
    memcpy(c.v, c.vd, n * 8);
    sdb_filter f = filter(F_ALL, &c);
    uint64_t counts[12] = {0};
    k->hist_f64(c.v, c.ts, n, &f, 0.0, 1.0, 0.1, 10, counts);
    for (int b = 0; b < 10; b++) cr_expect_eq(counts[b], b < 9 ? 410u : 409u, "bin %d", b);
    cr_expect_eq(counts[10] + counts[11], 0);
    cols_free(&c);
}

static void agg_known(const sdb_kernels *k)
{
    /* 0..n-1 at ts = i: closed forms for count, sum, min, max. */
    for (size_t li = 0; li < N_LENGTHS; li++) {
        size_t n = lengths[li];
        cols c = cols_make(n, (unsigned)li % 8, V_UNIT, T_SORTED, 1, 1);
        for (size_t i = 0; i < n; i++) c.vd[i] = (double)i;
        memcpy(c.v, c.vd, n * 8);
        sdb_filter f = filter(F_ALL, &c);
        f.shift = 0.0;
        sdb_agg a;
        k->agg_f64(c.v, c.ts, n, &f, &a);
        cr_expect_eq(a.n, n);
        cr_expect_eq(a.sum, (double)n * ((double)n - 1) / 2, "n=%zu sum %.17g", n, a.sum);
        cr_expect_eq(a.min, n ? 0.0 : INFINITY);
        cr_expect_eq(a.max, n ? (double)n - 1 : -INFINITY);
        cols_free(&c);
    }
}

static void series_known(const sdb_kernels *k)
{
    /* ts = 1000 + 3i + jitter, t0 = 1000, width 30: ten rows per bucket. */
    size_t n = 4099;
    cols c = cols_make(n, 6, V_UNIT, T_SORTED, 1, 9);
    for (size_t i = 0; i < n; i++) c.vd[i] = 1.0, c.td[i] = 1000 + 3 * (int64_t)i;
    memcpy(c.v, c.vd, n * 8);
    memcpy(c.ts, c.td, n * 8);
    sdb_filter f = {1000, INT64_MAX, -INFINITY, INFINITY, 0.0};
    uint32_t nb = 410;
    sdb_agg a[410];
    for (uint32_t j = 0; j < nb; j++) sdb__agg_empty(&a[j]);
    k->series_f64(c.v, c.ts, n, &f, 1000, 30, nb, a);
    for (uint32_t j = 0; j < nb; j++) {
        cr_expect_eq(a[j].n, j < 409 ? 10u : 9u, "bucket %u", j);
        cr_expect_eq(a[j].sum, (double)a[j].n, "bucket %u", j);
    }
    cols_free(&c);
}

static void sweep_agg(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SHUFFLED, check_agg, 100);
    sweep(k, V_WIDE, T_SORTED, check_agg, 200);
}

static void sweep_agg_edges(const sdb_kernels *k)
{
    sweep(k, V_EDGES, T_SHUFFLED, check_agg, 300);
    sweep(k, V_PASSFAIL, T_SORTED, check_agg, 400);
}

static void sweep_hist(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SHUFFLED, hist_unit, 500);
    sweep(k, V_PASSFAIL, T_SORTED, hist_unit, 550);
    sweep(k, V_WIDE, T_SORTED, hist_wide, 600);
    sweep(k, V_EDGES, T_SHUFFLED, hist_wide, 700);
}

static void sweep_group(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SHUFFLED, group13, 800);
    sweep(k, V_EDGES, T_SORTED, group13, 900);
    sweep_keys(k, V_UNIT, T_SHUFFLED, group150, 950, 200);
}

static void sweep_series(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SORTED, series_all, 1000);
    sweep(k, V_UNIT, T_SHUFFLED, series_all, 1100);
    sweep(k, V_EDGES, T_SORTED, series_all, 1200);
}

static void sweep_select(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SHUFFLED, check_select, 1300);
    sweep(k, V_EDGES, T_SORTED, check_select, 1400);
}

/* ---- the pipeline's batch kernels ---------------------------------------- */

/* mask_f64: bit i is exactly passes(f, ts[i], v[i]), and no bit past n. */
static void check_mask(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    size_t words = (c->n + 63) / 64 + 1;
    uint64_t *got = malloc(words * 8), *want = malloc(words * 8);
    cr_assert(got && want);
    memset(got, 0xA5, words * 8); /* the kernel must overwrite, not accumulate */
    memset(want, 0xA5, words * 8);
    k->mask_f64(c->v, c->ts, c->n, f, got);
    sdb__kernels_scalar.mask_f64(c->v, c->ts, c->n, f, want);
    for (size_t i = 0; i < c->n; i++) {
        int g = (int)(got[i / 64] >> (i % 64) & 1);
        CHECK(g == passes(f, c->td[i], c->vd[i]), "%s: mask bit %zu = %d", ctx, i, g);
    }
    for (size_t w = 0; w < (c->n + 63) / 64; w++)
        CHECK(got[w] == want[w], "%s: mask word %zu %llx, scalar %llx", ctx, w,
              (unsigned long long)got[w], (unsigned long long)want[w]);
    if (c->n % 64)
        CHECK(got[c->n / 64] >> (c->n % 64) == 0, "%s: bits past n are set", ctx);
    free(got);
    free(want);
}

/* A selection of the rows f passes (every third dropped besides) with a
 * slot per row from the key column: slot_agg and slot_hist against scalar,
 * with several slots and with slot == NULL (one slot), with idx == NULL
 * (every row) too. */
static void check_slots(const sdb_kernels *k, const cols *c, const sdb_filter *f, const char *ctx)
{
    enum { NS = 14 };
    size_t m = c->n ? c->n : 1;
    uint32_t *idx = malloc(m * 4), *slot = malloc(m * 4);
    cr_assert(idx && slot);
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (passes(f, c->td[i], c->vd[i]) && i % 3 != 2) {
            idx[n] = (uint32_t)i;
            slot[n++] = c->kd[i] % NS;
        }
    for (int shape = 0; shape < 3; shape++) {
        const uint32_t *ix = shape == 2 ? NULL : idx, *sl = shape == 1 ? NULL : slot;
        size_t cnt = shape == 2 ? c->n : n;
        const uint32_t *sl2 = shape == 2 ? NULL : sl;
        sdb_slot got[NS], want[NS];
        absum sc[NS];
        for (int j = 0; j < NS; j++) {
            memset(&got[j], 0, sizeof got[j]);
            got[j].min = INFINITY;
            got[j].max = -INFINITY;
            want[j] = got[j];
            memset(&sc[j], 0, sizeof sc[j]);
        }
        /* slot 3 starts with a shift of its own: it must be kept */
        got[3].n = want[3].n = 1;
        got[3].k = want[3].k = 0.25;
        k->slot_agg(c->v, ix, sl2, cnt, got);
        sdb__kernels_scalar.slot_agg(c->v, ix, sl2, cnt, want);
        for (size_t j = 0; j < cnt; j++) {
            uint32_t s = sl2 ? sl2[j] : 0;
            absum_add(&sc[s], c->vd[ix ? ix[j] : j], want[s].k);
        }
        for (int j = 0; j < NS; j++) {
            char what[160];
            snprintf(what, sizeof what, "%s shape %d slot %d", ctx, shape, j);
            CHECK(got[j].n == want[j].n && got[j].count == want[j].count,
                  "%s: n %llu count %llu, scalar %llu %llu", what, (unsigned long long)got[j].n,
                  (unsigned long long)got[j].count, (unsigned long long)want[j].n,
                  (unsigned long long)want[j].count);
            CHECK(got[j].k == want[j].k || (isnan(got[j].k) && isnan(want[j].k)),
                  "%s: shift %.17g, scalar %.17g", what, got[j].k, want[j].k);
            CHECK(got[j].min == want[j].min || (isnan(got[j].min) && isnan(want[j].min)),
                  "%s: min", what);
            CHECK(got[j].max == want[j].max || (isnan(got[j].max) && isnan(want[j].max)),
                  "%s: max", what);
            expect_close(got[j].sum, want[j].sum, sc[j].sum, sc[j].m, "sum", what, "", 0);
            expect_close(got[j].s1, want[j].s1, sc[j].s1, sc[j].m, "s1", what, "", 0);
            expect_close(got[j].s2, want[j].s2, sc[j].s2, sc[j].m, "s2", what, "", 0);
        }
        /* Histograms: per-group bounds, and one set of bounds for all. */
        for (int per = 0; per < 2; per++) {
            const uint32_t bins = 7;
            double lo[NS], hi[NS], w[NS];
            for (int j = 0; j < NS; j++) {
                lo[j] = per ? -0.5 + 0.1 * j : 0.1;
                hi[j] = per ? (j == 5 ? lo[j] : 0.6 + 0.05 * j) : 0.8;
                w[j] = (hi[j] - lo[j]) / bins;
            }
            uint64_t hg[NS * (bins + 2)], hw[NS * (bins + 2)];
            memset(hg, 0, sizeof hg);
            memset(hw, 0, sizeof hw);
            k->slot_hist(c->v, ix, sl2, cnt, lo, hi, w, per, bins, hg);
            sdb__kernels_scalar.slot_hist(c->v, ix, sl2, cnt, lo, hi, w, per, bins, hw);
            for (size_t b = 0; b < NS * (bins + 2); b++)
                CHECK(hg[b] == hw[b], "%s shape %d per %d: bin %zu = %llu, scalar %llu", ctx,
                      shape, per, b, (unsigned long long)hg[b], (unsigned long long)hw[b]);
        }
    }
    free(idx);
    free(slot);
}

Test(kernels, scalar_slot_agg_sets_the_shift_to_the_first_value_and_counts_by_hand)
{
    double v[5] = {2.0, 4.0, 4.0, 10.0, 1.0};
    uint32_t idx[4] = {1, 2, 3, 4}, slot[4] = {0, 0, 1, 0};
    sdb_slot a[2];
    for (int j = 0; j < 2; j++) {
        memset(&a[j], 0, sizeof a[j]);
        a[j].min = INFINITY;
        a[j].max = -INFINITY;
    }
    sdb__kernels_scalar.slot_agg(v, idx, slot, 4, a);
    cr_assert_eq(a[0].n, 3);
    cr_assert_eq(a[0].count, 3);
    cr_assert_eq(a[0].k, 4.0);
    cr_assert_eq(a[0].sum, 9.0);
    cr_assert_eq(a[0].s1, -3.0); /* 0 + 0 - 3 */
    cr_assert_eq(a[0].s2, 9.0);
    cr_assert_eq(a[0].min, 1.0);
    cr_assert_eq(a[0].max, 4.0);
    cr_assert_eq(a[1].n, 1);
    cr_assert_eq(a[1].k, 10.0);
    cr_assert_eq(a[1].s2, 0.0);
    uint64_t bits[1];
    sdb_filter f = {0, 100, 2.0, 4.0, 0};
    int64_t ts[5] = {1, 2, 3, 4, 200};
    sdb__kernels_scalar.mask_f64(v, ts, 5, &f, bits);
    cr_assert_eq(bits[0], 0x7u, "rows 0, 1, 2 pass; 3 by value, 4 by time fail");
}

static void sweep_pipe(const sdb_kernels *k)
{
    sweep(k, V_UNIT, T_SHUFFLED, check_mask, 1500);
    sweep(k, V_EDGES, T_SORTED, check_mask, 1600);
    sweep(k, V_UNIT, T_SORTED, check_slots, 1700);
    sweep(k, V_WIDE, T_SHUFFLED, check_slots, 1800);
    sweep(k, V_PASSFAIL, T_SORTED, check_slots, 1900);
}

/* ---- decoders of encoded columns ---------------------------------------- */

/* A packed column (kernels.h) of n random entries of `bits` bits, placed
 * `off` bytes into its own malloc of exactly its length (the 7 bytes of
 * padding included, so a load past them is an overrun under ASan); the
 * entries themselves into want. */
static void *pack_make(size_t n, unsigned bits, unsigned off, uint64_t seed, uint32_t *want,
                       void **base)
{
    size_t len = bits && n ? (n * bits + 7) / 8 + 7 : 0;
    uint8_t *tmp = calloc(len + 1, 1);
    cr_assert_not_null(tmp);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = bits ? rng_next(&s) & ((1ull << bits) - 1) : 0;
        if (i % 5 == 0 && bits) x = (1ull << bits) - 1; /* every bit of an entry set */
        want[i] = (uint32_t)x;
        for (unsigned b = 0; b < bits; b++)
            if (x >> b & 1) tmp[(i * bits + b) / 8] |= (uint8_t)(1u << ((i * bits + b) % 8));
    }
    void *p = place(tmp, len, off, base);
    free(tmp);
    return p;
}

/* Every table's decoders against the entries packed, at every width,
 * length and byte offset: bit for bit (every decoder is exact). */
static void decoders_match(const sdb_kernels *k)
{
    static const size_t ns[] = {0, 1, 7, 8, 9, 255, 256, 257, 1000, 4099};
    uint32_t *want = malloc(4099 * sizeof *want);
    uint64_t *got = malloc(4099 * sizeof *got), *ref = malloc(4099 * sizeof *ref);
    double *gd = malloc(4099 * sizeof *gd), *rd = malloc(4099 * sizeof *rd);
    cr_assert(want && got && ref && gd && rd);
    uint64_t s = 77;
    for (unsigned bits = 0; bits <= 32; bits++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (unsigned off = 0; off < 8; off += 3) {
                size_t n = ns[a];
                void *base;
                const void *p = pack_make(n, bits, off, 1000 * bits + n + off, want, &base);
                char ctx[64];
                snprintf(ctx, sizeof ctx, "%s bits %u n %zu off %u", k->name, bits, n, off);
                /* u64 from a base that wraps */
                uint64_t b64 = UINT64_MAX - 5;
                k->unpack_u64(p, bits, n, b64, got);
                S->unpack_u64(p, bits, n, b64, ref);
                for (size_t i = 0; i < n; i++) {
                    cr_assert_eq(ref[i], b64 + want[i], "%s: scalar u64 row %zu", ctx, i);
                    cr_assert_eq(got[i], ref[i], "%s: u64 row %zu", ctx, i);
                }
                /* decimals: integers, then hundredths from a negative base */
                static const double scales[] = {1.0, 100.0, 1e15};
                for (int sc = 0; sc < 3; sc++) {
                    int64_t vb = sc == 1 ? -50 : sc == 2 ? -(1ll << 40) : 3;
                    k->unpack_dec(p, bits, n, vb, scales[sc], gd);
                    S->unpack_dec(p, bits, n, vb, scales[sc], rd);
                    for (size_t i = 0; i < n; i++) {
                        double w = (double)(vb + (int64_t)want[i]) / scales[sc];
                        cr_assert(memcmp(&rd[i], &w, 8) == 0, "%s: scalar dec row %zu", ctx, i);
                        cr_assert(memcmp(&gd[i], &rd[i], 8) == 0,
                                  "%s scale %g: dec row %zu: %.17g vs %.17g", ctx, scales[sc], i,
                                  gd[i], rd[i]);
                    }
                }
                free(base);
            }
    /* f32 widening, edge values included */
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        float *fv = malloc((n ? n : 1) * sizeof *fv);
        cr_assert_not_null(fv);
        for (size_t i = 0; i < n; i++) fv[i] = (float)gen_value(V_EDGES, &s);
        void *base;
        const void *p = place(fv, n * 4, (unsigned)(n % 8), &base);
        k->widen_f32(p, n, gd);
        S->widen_f32(p, n, rd);
        for (size_t i = 0; i < n; i++) {
            double w = fv[i];
            cr_assert(memcmp(&rd[i], &w, 8) == 0, "scalar f32 row %zu", i);
            cr_assert(memcmp(&gd[i], &rd[i], 8) == 0, "%s: f32 row %zu", k->name, i);
        }
        free(base);
        free(fv);
    }
    free(want);
    free(got);
    free(ref);
    free(gd);
    free(rd);
}

Test(kernels, scalar_decoders_read_packed_entries_by_the_formula) { decoders_match(S); }

/* ---- agg_dec: the fused scan of encoded columns ------------------------- */

/* agg_dec of table k against scalar's agg_f64 over the columns decoded by
 * scalar's unpack_dec and unpack_u64: the definition agg_dec states. */
static void agg_dec_check(const sdb_kernels *k, const void *pv, unsigned vb, int64_t base,
                          double scale, const void *pt, unsigned tb, int64_t t0, size_t n,
                          const double *xd, const int64_t *td, const sdb_filter *f,
                          const char *ctx)
{
    sdb_agg got, want;
    absum sc = {0, 0, 0, 0};
    sdb_filter fa = *f;
    if (!pt) fa.t_lo = INT64_MIN, fa.t_hi = INT64_MAX;
    /* A NaN shift: K is the first passing value (none: stays NaN). */
    double kwant = f->shift, kgot = 0;
    for (size_t i = 0; isnan(kwant) && i < n; i++)
        if (passes(&fa, td[i], xd[i])) kwant = xd[i];
    fa.shift = kwant;
    memset(&got, 0x55, sizeof got);
    k->agg_dec(pv, vb, base, scale, pt, tb, t0, n, f, &got, &kgot);
    S->agg_f64(xd, td, n, &fa, &want);
    CHECK(memcmp(&kgot, &kwant, 8) == 0, "%s: K %.17g, want %.17g", ctx, kgot, kwant);
    for (size_t i = 0; i < n; i++)
        if (passes(&fa, td[i], xd[i])) absum_add(&sc, xd[i], kwant);
    expect_agg(&got, &want, &sc, ctx, "agg_dec", 0);
}

static void agg_dec_match(const sdb_kernels *k)
{
    static const size_t ns[] = {0, 1, 7, 8, 9, 15, 16, 17, 255, 256, 257, 1000, 4099};
    static const unsigned vbits[] = {0, 1, 3, 7, 8, 9, 13, 20, 25, 27, 31, 32};
    static const unsigned tbits[] = {0, 5, 27, 32};
    static const double scales[] = {1.0, 100.0, 1e15, 1e3};
    static const int64_t bases[] = {3, -50, -(1ll << 40), 0};
    uint32_t *ve = malloc(4099 * sizeof *ve), *te = malloc(4099 * sizeof *te);
    double *xd = malloc(4099 * sizeof *xd);
    int64_t *td = malloc(4099 * sizeof *td);
    cr_assert(ve && te && xd && td);
    uint64_t s = 4242;
    for (size_t a = 0; a < sizeof vbits / sizeof vbits[0]; a++)
        for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
            size_t n = ns[c];
            unsigned vb = vbits[a], tb = tbits[(a + c) % 4], off = (unsigned)((a + c) % 8);
            void *vbase, *tbase;
            const void *pv = pack_make(n, vb, off, 31 * vb + n, ve, &vbase);
            const void *pt = pack_make(n, tb, (off + 5) % 8, 17 * tb + n + 1, te, &tbase);
            int64_t t0 = 1767225600000 + (int64_t)(rng_next(&s) % 1000);
            for (int q = 0; q < 4; q++) {
                S->unpack_dec(pv, vb, n, bases[q], scales[q], xd);
                S->unpack_u64(pt, tb, n, (uint64_t)t0, (uint64_t *)td);
                char ctx[96];
                snprintf(ctx, sizeof ctx, "%s v %u t %u n %zu off %u scale %g", k->name, vb, tb, n,
                         off, scales[q]);
                /* Everything; then value bounds at decoded values of rows,
                 * one ulp either side; time ranges at rows' offsets; a NaN
                 * bound; an empty range. */
                sdb_filter f = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, n ? xd[n / 2] : 0};
                agg_dec_check(k, pv, vb, bases[q], scales[q], NULL, tb, t0, n, xd, td, &f, ctx);
                agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
                for (int r = 0; r < 12 && n; r++) {
                    double x1 = xd[rng_next(&s) % n], x2 = xd[rng_next(&s) % n];
                    f.v_lo = x1 < x2 ? x1 : x2;
                    f.v_hi = x1 < x2 ? x2 : x1;
                    if (r % 3 == 1) f.v_lo = nextafter(f.v_lo, INFINITY);
                    if (r % 3 == 2) f.v_hi = nextafter(f.v_hi, -INFINITY);
                    if (r % 4 == 3) f.v_lo = nextafter(f.v_lo, -INFINITY);
                    if (r % 2) {
                        int64_t t1 = td[rng_next(&s) % n], t2 = td[rng_next(&s) % n];
                        f.t_lo = (t1 < t2 ? t1 : t2) + (r % 5 == 1);
                        f.t_hi = (t1 < t2 ? t2 : t1) - (r % 5 == 3);
                    } else {
                        f.t_lo = r % 4 ? t0 - 5 : INT64_MIN;
                        f.t_hi = INT64_MAX;
                    }
                    agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
                    agg_dec_check(k, pv, vb, bases[q], scales[q], NULL, tb, t0, n, xd, td, &f, ctx);
                    double k0 = f.shift;
                    f.shift = NAN;
                    agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
                    f.shift = k0;
                }
                f = (sdb_filter){INT64_MIN, INT64_MAX, NAN, INFINITY, 0};
                agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
                f = (sdb_filter){INT64_MIN, INT64_MAX, 2.0, 1.0, 0};
                agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
                f = (sdb_filter){t0 + 10, t0 + 5, -INFINITY, INFINITY, 0};
                agg_dec_check(k, pv, vb, bases[q], scales[q], pt, tb, t0, n, xd, td, &f, ctx);
            }
            free(vbase);
            free(tbase);
        }
    free(ve);
    free(te);
    free(xd);
    free(td);
}

Test(kernels, scalar_agg_dec_equals_decode_then_agg_exactly)
{
    /* The reference's own definition, bit for bit: the same rows in the
     * same order. */
    uint32_t ve[1000], te[1000];
    double xd[1000];
    int64_t td[1000];
    void *vbase, *tbase;
    const void *pv = pack_make(1000, 7, 1, 5, ve, &vbase);
    const void *pt = pack_make(1000, 20, 3, 6, te, &tbase);
    S->unpack_dec(pv, 7, 1000, -20, 100.0, xd);
    S->unpack_u64(pt, 20, 1000, 1000, (uint64_t *)td);
    sdb_filter f = {1000 + 100000, 1000 + 900000, 0.05, 0.8, 0.3};
    sdb_agg got, want;
    S->agg_dec(pv, 7, -20, 100.0, pt, 20, 1000, 1000, &f, &got, NULL);
    S->agg_f64(xd, td, 1000, &f, &want);
    cr_assert(want.n > 100 && want.n < 900, "the filter keeps some rows: %llu",
              (unsigned long long)want.n);
    cr_assert(memcmp(&got, &want, sizeof got) == 0, "n %llu vs %llu, sum %.17g vs %.17g",
              (unsigned long long)got.n, (unsigned long long)want.n, got.sum, want.sum);
    free(vbase);
    free(tbase);
}

Test(kernels, dec_bounds_are_exact_at_the_bound_and_one_ulp_either_side)
{
    /* Entries 0..127 of hundredths from -50: values -0.50 .. 0.77. */
    uint32_t lo, hi;
    for (uint32_t e = 0; e < 128; e++) {
        double x = ((double)e - 50.0) / 100.0;
        sdb_filter f = {INT64_MIN, INT64_MAX, x, x, 0};
        cr_assert(sdb__dec_bounds(&f, 7, -50, 100.0, &lo, &hi), "entry %u", e);
        cr_assert(lo == e && hi == e, "[%.17g, %.17g]: entries %u..%u, want %u", x, x, lo, hi, e);
        f.v_lo = nextafter(x, INFINITY);
        f.v_hi = INFINITY;
        int any = sdb__dec_bounds(&f, 7, -50, 100.0, &lo, &hi);
        cr_assert(e == 127 ? !any : any && lo == e + 1, "above %.17g: from %u", x, lo);
        f.v_lo = -INFINITY;
        f.v_hi = nextafter(x, -INFINITY);
        any = sdb__dec_bounds(&f, 7, -50, 100.0, &lo, &hi);
        cr_assert(e == 0 ? !any : any && lo == 0 && hi == e - 1, "below %.17g: to %u", x, hi);
    }
    sdb_filter f = {INT64_MIN, INT64_MAX, NAN, 1.0, 0};
    cr_assert(!sdb__dec_bounds(&f, 7, -50, 100.0, &lo, &hi), "a NaN bound keeps nothing");
    f = (sdb_filter){INT64_MIN, INT64_MAX, 0.78, 5.0, 0};
    cr_assert(!sdb__dec_bounds(&f, 7, -50, 100.0, &lo, &hi), "a range above the column's");
    uint32_t olo, ohi;
    f = (sdb_filter){1005, 1010, 0, 0, 0};
    cr_assert(sdb__off_bounds(&f, 4, 1000, &olo, &ohi) && olo == 5 && ohi == 10, "%u..%u", olo,
              ohi);
    f.t_hi = 2000;
    cr_assert(sdb__off_bounds(&f, 4, 1000, &olo, &ohi) && olo == 5 && ohi == 15, "%u..%u", olo,
              ohi);
    f.t_lo = 1016;
    cr_assert(!sdb__off_bounds(&f, 4, 1000, &olo, &ohi), "past the widest offset");
    f = (sdb_filter){INT64_MIN, 999, 0, 0, 0};
    cr_assert(!sdb__off_bounds(&f, 4, 1000, &olo, &ohi), "before the base");
}

/* unpack_dec divides by 10^e through a reciprocal and two fused
 * multiply-adds (dec_body.h dec_div): the same double as the division for
 * every scale, over every entry of 20 bits from -2^19 and from bases near
 * 2^53. */
static void dec_division_exact(const sdb_kernels *k)
{
    enum { N = 1 << 20 };
    uint32_t *e = malloc(N * sizeof *e);
    uint8_t *p = calloc((size_t)N * 20 / 8 + 8, 1);
    double *got = malloc(N * sizeof *got);
    cr_assert(e && p && got);
    for (uint32_t i = 0; i < N; i++) {
        uint64_t bit = (uint64_t)i * 20, w;
        memcpy(&w, p + bit / 8, 8);
        w |= (uint64_t)i << (bit % 8);
        memcpy(p + bit / 8, &w, 8);
    }
    static const int64_t bases[] = {-(1 << 19), (1ll << 53) - N, -(1ll << 53) + 1, 123456789};
    for (int eexp = 0; eexp <= 15; eexp++) {
        double scale = 1.0;
        for (int j = 0; j < eexp; j++) scale *= 10.0;
        for (int b = 0; b < 4; b++) {
            k->unpack_dec(p, 20, N, bases[b], scale, got);
            for (uint32_t i = 0; i < N; i++) {
                double w = ((double)i + (double)bases[b]) / scale;
                CHECK(memcmp(&got[i], &w, 8) == 0, "%s 1e%d base %lld entry %u: %.17g vs %.17g",
                      k->name, eexp, (long long)bases[b], i, got[i], w);
            }
        }
    }
    free(e);
    free(p);
    free(got);
}

#define TABLE_TESTS(isa)                                                                 \
    Test(kernels, isa##_agg_matches_scalar_on_random_data) { sweep_agg(need(#isa)); }   \
    Test(kernels, isa##_agg_matches_scalar_on_zeros_huge_tiny_negative_and_nan)         \
    {                                                                                    \
        sweep_agg_edges(need(#isa));                                                     \
    }                                                                                    \
    Test(kernels, isa##_agg_counts_and_sums_integers_exactly) { agg_known(need(#isa)); } \
    Test(kernels, isa##_hist_matches_scalar_bin_for_bin) { sweep_hist(need(#isa)); }    \
    Test(kernels, isa##_hist_matches_scalar_at_lo_hi_and_bin_edges)                      \
    {                                                                                    \
        hist_edges(need(#isa));                                                          \
    }                                                                                    \
    Test(kernels, isa##_hist_counts_a_known_distribution) { hist_known(need(#isa)); }   \
    Test(kernels, isa##_group_matches_scalar_for_every_key) { sweep_group(need(#isa)); } \
    Test(kernels, isa##_series_matches_scalar_on_sorted_and_shuffled_times)             \
    {                                                                                    \
        sweep_series(need(#isa));                                                        \
    }                                                                                    \
    Test(kernels, isa##_series_fills_known_buckets) { series_known(need(#isa)); }       \
    Test(kernels, isa##_select_matches_scalar_row_for_row) { sweep_select(need(#isa)); } \
    Test(kernels, isa##_pipeline_mask_and_slot_kernels_match_scalar) { sweep_pipe(need(#isa)); } \
    Test(kernels, isa##_decoders_match_scalar_bit_for_bit) { decoders_match(need(#isa)); } \
    Test(kernels, isa##_decimal_division_equals_the_true_division_at_every_scale)        \
    {                                                                                    \
        dec_division_exact(need(#isa));                                                  \
    }                                                                                    \
    Test(kernels, isa##_agg_dec_matches_decode_then_agg) { agg_dec_match(need(#isa)); }

TABLE_TESTS(avx2)
TABLE_TESTS(avx512)

/* ---- kernels over selection bitmaps (bits_body.h) ------------------------
 * Against scalar.c on random bytes, sets and bitmaps (empty, full, sparse
 * and random words), every length of `lengths`, byte offsets 0..7 of the
 * column and of the values (unaligned starts); bits_agg with and without
 * moments, into an empty slot and into one that already holds values. */
static void bits_kernels_match(const sdb_kernels *k)
{
    uint64_t s = 0x5eed0b175ull;
    enum { MAXN = 4099 + 8 };
    uint8_t *col = malloc(MAXN);
    char *vals = malloc((MAXN + 1) * sizeof(double)); /* doubles at byte offset off */
    uint64_t in[(MAXN + 63) / 64], got[(MAXN + 63) / 64], want[(MAXN + 63) / 64];
    cr_assert(col && vals);
    for (size_t a = 0; a < N_LENGTHS; a++)
        for (unsigned off = 0; off < 8; off += 3)
            for (int shape = 0; shape < 4; shape++) {
                size_t n = lengths[a], nw = (n + 63) / 64;
                for (size_t i = 0; i < n + off; i++) {
                    col[i] = (uint8_t)(shape == 3 ? rng_next(&s) % 5 : rng_next(&s));
                    double x = (rng_unit(&s) - 0.5) * 1000.0;
                    memcpy(vals + off + 8 * i, &x, 8);
                }
                uint8_t set[32];
                for (int b = 0; b < 32; b++) set[b] = (uint8_t)rng_next(&s);
                if (shape == 3) memset(set, 0, sizeof set), set[0] = 0x05; /* bytes 0 and 2 */
                for (size_t w = 0; w < nw; w++) {
                    uint64_t r = rng_next(&s);
                    in[w] = shape == 0 ? 0 : shape == 1 ? ~0ull : shape == 2 ? r & rng_next(&s) & rng_next(&s) : r;
                    if (w == nw - 1 && n % 64) in[w] &= (1ull << (n % 64)) - 1;
                }
                k->bits_lut8(col + off, n, set, in, got);
                S->bits_lut8(col + off, n, set, in, want);
                for (size_t w = 0; w < nw; w++)
                    CHECK(got[w] == want[w], "%s bits_lut8 n %zu off %u shape %d word %zu: %016llx, scalar %016llx",
                          k->name, n, off, shape, w, (unsigned long long)got[w], (unsigned long long)want[w]);
                for (int moments = 0; moments < 2; moments++)
                    for (int filled = 0; filled < 2; filled++) {
                        sdb_slot g, e;
                        memset(&g, 0, sizeof g);
                        g.min = INFINITY;
                        g.max = -INFINITY;
                        if (filled) {
                            g.n = g.count = 3;
                            g.sum = 1.5;
                            g.k = 0.5;
                            g.min = -600;
                            g.max = 0.5;
                        }
                        e = g;
                        k->bits_agg(vals + off, in, n, moments, &g);
                        S->bits_agg(vals + off, in, n, moments, &e);
                        double scale = 1000.0 * (double)(n + 3);
                        CHECK(g.n == e.n && g.count == e.count && g.min == e.min && g.max == e.max &&
                                  g.k == e.k,
                              "%s bits_agg n %zu off %u shape %d moments %d filled %d: n %llu/%llu min %g/%g "
                              "max %g/%g k %g/%g",
                              k->name, n, off, shape, moments, filled, (unsigned long long)g.n,
                              (unsigned long long)e.n, g.min, e.min, g.max, e.max, g.k, e.k);
                        CHECK(fabs(g.sum - e.sum) <= 1e-12 * scale && fabs(g.s1 - e.s1) <= 1e-12 * scale &&
                                  fabs(g.s2 - e.s2) <= 1e-12 * scale * 1000.0,
                              "%s bits_agg n %zu shape %d: sum %.17g/%.17g s1 %.17g/%.17g s2 %.17g/%.17g",
                              k->name, n, shape, g.sum, e.sum, g.s1, e.s1, g.s2, e.s2);
                    }
            }
    /* bins_f64: values on and around every edge, below lo, above hi,
     * and a zero width (lo == hi), at every length and offset. */
    uint16_t *bg = malloc(MAXN * sizeof *bg), *bw = malloc(MAXN * sizeof *bw);
    cr_assert(bg && bw);
    const double los[3] = {0, 0.2, 0.5}, his[3] = {1, 0.8, 0.5};
    const uint32_t nbins[3] = {20, 7, 3};
    for (int r = 0; r < 3; r++)
        for (size_t a = 0; a < N_LENGTHS; a++)
            for (unsigned off = 0; off < 8; off += 5) {
                size_t n = lengths[a];
                double lo = los[r], hi = his[r], width = (hi - lo) / nbins[r];
                for (size_t i = 0; i < n; i++) {
                    uint64_t pick = rng_next(&s) % 4;
                    double x = pick == 0 ? lo + (double)(rng_next(&s) % (nbins[r] + 1)) * width
                             : pick == 1 ? nextafter(lo + (double)(rng_next(&s) % (nbins[r] + 1)) * width,
                                                     (rng_next(&s) & 1) ? INFINITY : -INFINITY)
                             : pick == 2 ? (double)(rng_next(&s) % 101) / 100.0
                                         : (rng_unit(&s) - 0.25) * 2.0;
                    memcpy(vals + off + 8 * i, &x, 8);
                }
                k->bins_f64(vals + off, n, lo, hi, width, nbins[r], bg);
                S->bins_f64(vals + off, n, lo, hi, width, nbins[r], bw);
                for (size_t i = 0; i < n; i++) {
                    double x;
                    memcpy(&x, vals + off + 8 * i, 8);
                    CHECK(bg[i] == bw[i], "%s bins_f64 [%g, %g] / %u row %zu (%.17g): bin %u, scalar %u",
                          k->name, lo, hi, nbins[r], i, x, bg[i], bw[i]);
                }
            }
    free(bg);
    free(bw);
    free(col);
    free(vals);
}

Test(kernels, scalar_bins_follow_hist_f64)
{
    /* The reference against the histogram kernel's own counts. */
    double v[9] = {-0.1, 0, 0.05, 0.1, 0.2999999, 0.3, 0.95, 1, 1.5};
    uint16_t b[9];
    S->bins_f64(v, 9, 0, 1, 0.1, 10, b);
    for (int i = 0; i < 9; i++) {
        uint64_t counts[12] = {0};
        sdb_filter all = {INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0};
        int64_t t[1] = {0};
        S->hist_f64(&v[i], t, 1, &all, 0, 1, 0.1, 10, counts);
        cr_expect_eq(counts[b[i]], 1u, "value %g: bin %u", v[i], b[i]);
    }
    cr_expect(b[0] == 10 && b[1] == 0 && b[7] == 9 && b[8] == 11, "%u %u %u %u", b[0], b[1], b[7], b[8]);
}

Test(kernels, scalar_bits_kernels_by_hand)
{
    uint8_t col[70], set[32] = {0};
    for (int i = 0; i < 70; i++) col[i] = (uint8_t)(i % 4 == 0 ? 200 : i % 7);
    set[200 / 8] |= 1u << (200 % 8); /* byte 200 */
    set[0] |= 1u << 3;               /* byte 3 */
    uint64_t in[2] = {~0ull, 0x3full}, out[2];
    S->bits_lut8(col, 70, set, in, out);
    for (int i = 0; i < 70; i++) {
        int want = (i % 4 == 0 || i % 7 == 3) && (i < 64 || i - 64 < 6);
        cr_expect_eq((int)(out[i / 64] >> (i % 64) & 1), want, "row %d", i);
    }
    double v[5] = {4, -1, 2.5, 8, 0.5};
    uint64_t b = 0x1b; /* rows 0, 1, 3, 4 */
    sdb_slot a;
    memset(&a, 0, sizeof a);
    a.min = INFINITY;
    a.max = -INFINITY;
    S->bits_agg(v, &b, 5, 1, &a);
    cr_expect(a.n == 4 && a.count == 4 && a.sum == 11.5 && a.min == -1 && a.max == 8 && a.k == 4,
              "n %llu sum %g min %g max %g k %g", (unsigned long long)a.n, a.sum, a.min, a.max, a.k);
    cr_expect(a.s1 == (0 - 5 + 4 - 3.5) && a.s2 == (0 + 25 + 16 + 12.25), "s1 %g s2 %g", a.s1, a.s2);
}

Test(kernels, avx2_bits_kernels_match_scalar) { bits_kernels_match(need("avx2")); }
Test(kernels, avx512_bits_kernels_match_scalar) { bits_kernels_match(need("avx512")); }

/* ---- narrow ids (store format 6): unpack_ids, a block of its own ----
 * Every table's unpack_ids against the entries packed, at every width
 * 0..32, each output width that holds it, odd lengths and unaligned
 * packed and output starts; nothing is written past n entries. */
static void ids_match(const sdb_kernels *k)
{
    static const size_t ns[] = {0, 1, 7, 8, 9, 31, 33, 255, 256, 257, 1000, 4099};
    uint32_t *want = malloc(4099 * sizeof *want);
    uint8_t *got = malloc(4 * 4099 + 16), *ref = malloc(4 * 4099 + 16);
    cr_assert(want && got && ref);
    for (unsigned bits = 0; bits <= 32; bits++)
        for (unsigned w = 1; w <= 4; w *= 2) {
            if (bits > 8 * w) continue;
            for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
                for (unsigned off = 0; off < 8; off += 3) {
                    size_t n = ns[a];
                    void *base;
                    const void *p = pack_make(n, bits, off, 7000 * bits + 10 * n + off + w, want, &base);
                    unsigned oo = (off + w) % 4; /* an unaligned output */
                    memset(got, 0xA5, 4 * 4099 + 16);
                    memset(ref, 0x5A, 4 * 4099 + 16);
                    k->unpack_ids(p, bits, n, w, got + oo);
                    S->unpack_ids(p, bits, n, w, ref + oo);
                    for (size_t i = 0; i < n; i++) {
                        uint32_t g = 0, r = 0;
                        memcpy(&g, got + oo + w * i, w);
                        memcpy(&r, ref + oo + w * i, w);
                        cr_assert_eq(r, want[i], "scalar bits %u w %u n %zu off %u row %zu", bits, w, n,
                                     off, i);
                        cr_assert_eq(g, r, "%s bits %u w %u n %zu off %u row %zu", k->name, bits, w, n,
                                     off, i);
                    }
                    cr_assert_eq(got[oo + w * n], 0xA5, "%s bits %u w %u n %zu: wrote past the end",
                                 k->name, bits, w, n);
                    if (oo) cr_assert_eq(got[oo - 1], 0xA5, "%s: wrote before the start", k->name);
                    free(base);
                }
        }
    free(want);
    free(got);
    free(ref);
}

Test(kernels, scalar_unpack_ids_reads_packed_entries_into_bytes) { ids_match(S); }
Test(kernels, avx2_unpack_ids_matches_scalar_at_every_width) { ids_match(need("avx2")); }
Test(kernels, avx512_unpack_ids_matches_scalar_at_every_width) { ids_match(need("avx512")); }

/* ---- packed filters (store format 6): bits_pk, a block of its own ----
 * Every table's bits_pk against a plain reference (the entries packed,
 * looked up in the set one by one) at every width 0..8, odd lengths,
 * starts at every bit offset and unaligned column addresses, sets empty,
 * full and random, selections with empty words; the last call filters in
 * place (out == in). */
static void bits_pk_match(const sdb_kernels *k)
{
    static const size_t ns[] = {0, 1, 7, 63, 64, 65, 130, 1000, 1024};
    static const size_t i0s[] = {0, 1, 3, 5, 7, 8, 13, 64, 99};
    enum { TOTAL = 1024 + 99 };
    uint32_t *want = malloc(TOTAL * sizeof *want);
    cr_assert_not_null(want);
    uint64_t s = 4242, in[17], got[17], ref[17];
    for (unsigned bits = 0; bits <= 8; bits++)
        for (unsigned off = 0; off < 8; off += 3) {
            void *base;
            const uint8_t *p = pack_make(TOTAL, bits, off, 900 + 10 * bits + off, want, &base);
            for (unsigned sk = 0; sk < 4; sk++) {
                uint8_t set[32];
                for (int b = 0; b < 32; b++)
                    set[b] = sk == 0 ? 0 : sk == 1 ? 0xff : (uint8_t)rng_next(&s);
                if (sk == 3) set[0] = (uint8_t)(set[0] & ~1u); /* entry 0 out, entry 1 by chance */
                for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
                    for (size_t b = 0; b < sizeof i0s / sizeof i0s[0]; b++) {
                        size_t n = ns[a], i0 = i0s[b], nw = (n + 63) / 64;
                        for (size_t w = 0; w < nw; w++) {
                            in[w] = w % 3 == 1 ? 0 : w % 3 == 2 ? rng_next(&s) : ~0ull;
                            if (w == nw - 1 && n % 64) in[w] &= (1ull << n % 64) - 1;
                        }
                        memset(got, 0xA5, sizeof got);
                        memset(ref, 0x5A, sizeof ref);
                        k->bits_pk(p, bits, i0, n, set, in, got);
                        S->bits_pk(p, bits, i0, n, set, in, ref);
                        for (size_t i = 0; i < n; i++) {
                            uint32_t e = want[i0 + i];
                            int exp = (int)(in[i / 64] >> i % 64 & 1) && (set[e / 8] >> e % 8 & 1);
                            cr_assert_eq((int)(ref[i / 64] >> i % 64 & 1), exp,
                                         "scalar bits %u off %u set %u n %zu i0 %zu row %zu", bits, off,
                                         sk, n, i0, i);
                            cr_assert_eq((int)(got[i / 64] >> i % 64 & 1), exp,
                                         "%s bits %u off %u set %u n %zu i0 %zu row %zu", k->name, bits,
                                         off, sk, n, i0, i);
                        }
                        for (size_t w = 0; w < nw; w++)
                            cr_assert_eq(got[w] & ~in[w], 0, "%s bits %u: a bit outside in", k->name, bits);
                        cr_assert_eq(got[nw], 0xA5A5A5A5A5A5A5A5ull, "%s bits %u n %zu: wrote past nw",
                                     k->name, bits, n);
                        if (a == sizeof ns / sizeof ns[0] - 1 && b == 1) {
                            memcpy(got, in, sizeof in);
                            k->bits_pk(p, bits, i0, n, set, got, got);
                            cr_assert(memcmp(got, ref, nw * 8) == 0, "%s bits %u in place", k->name, bits);
                        }
                    }
            }
            free(base);
        }
    free(want);
}

Test(kernels, scalar_bits_pk_tests_packed_entries_against_the_set) { bits_pk_match(S); }
Test(kernels, avx2_bits_pk_matches_scalar_at_every_width) { bits_pk_match(need("avx2")); }
Test(kernels, avx512_bits_pk_matches_scalar_at_every_width) { bits_pk_match(need("avx512")); }
/* ---- exact percentiles: pct_count_f64 ------------------------------------ */

Test(kernels, scalar_pct_count_counts_and_keeps_by_hand)
{
    /* Intervals [0, 0] (zeros of both signs), [0.5, 0.75], [2, 2] (a
     * pile, counted but not kept: keep 0x3) and an unused one; cap 2 so
     * [0.5, 0.75]'s third value is counted but not stored. */
    double v[11] = {-1, -0.0, 0, 0.25, 0.5, 0.6, 0.75, 0.8, 2, 2, 3};
    double lo[4] = {0, 0.5, 2, INFINITY}, hi[4] = {0, 0.75, 2, -INFINITY};
    uint64_t below[4] = {0}, upto[4] = {0}, got[4] = {0};
    double out[8] = {0};
    S->pct_count_f64(v, 11, lo, hi, 0x3, 2, below, upto, got, out);
    uint64_t wb[4] = {1, 4, 8, 11}, wu[4] = {3, 7, 10, 0}, wg[4] = {2, 3, 0, 0};
    for (int j = 0; j < 4; j++)
        cr_expect(below[j] == wb[j] && upto[j] == wu[j] && got[j] == wg[j],
                  "interval %d: below %llu upto %llu got %llu", j, (unsigned long long)below[j],
                  (unsigned long long)upto[j], (unsigned long long)got[j]);
    cr_expect(out[0] == 0 && signbit(out[0]) && out[1] == 0 && !signbit(out[1]), "zeros kept in order");
    cr_expect(out[2] == 0.5 && out[3] == 0.6, "kept %g %g", out[2], out[3]);
    cr_expect(out[4] == 0 && out[5] == 0, "pile not kept: %g %g", out[4], out[5]);
}

/* Every SIMD table against scalar: random values (ties, zeros of both
 * signs, a pile), random disjoint intervals, some not kept, every length
 * of the sweep, unaligned starts, a cap that overflows; counts and kept
 * values (and their order) exactly, accumulating onto nonzero counters. */
static void pct_count_matches(const sdb_kernels *k)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    size_t nmax = lengths[N_LENGTHS - 1];
    unsigned char *col = malloc(8 * nmax + 8);
    for (int r = 0; r < 24; r++)
        for (size_t li = 0; li < N_LENGTHS; li++)
            for (size_t off = 0; off < 8; off += 3) {
                size_t n = lengths[li];
                for (size_t i = 0; i < n; i++) {
                    uint64_t u = rng_next(&s);
                    double x = u % 8 == 0 ? 1.0 : u % 8 == 1 ? (u & 8 ? 0.0 : -0.0)
                                                               : floor(rng_unit(&s) * (r % 3 ? 1e6 : 16)) / 8;
                    memcpy(col + off + 8 * i, &x, 8);
                }
                /* Up to four disjoint intervals from sorted random cuts. */
                double cut[8];
                for (int j = 0; j < 8; j++) cut[j] = floor(rng_unit(&s) * (r % 3 ? 1e6 : 16)) / 8 - 0.5;
                for (int a = 1; a < 8; a++)
                    for (int b = a; b > 0 && cut[b] < cut[b - 1]; b--) {
                        double t = cut[b];
                        cut[b] = cut[b - 1];
                        cut[b - 1] = t;
                    }
                double lo[4], hi[4];
                int used = r % 5;
                for (int j = 0; j < 4; j++) {
                    lo[j] = j < used ? cut[2 * j] : INFINITY;
                    hi[j] = j < used ? (r % 4 == 0 ? cut[2 * j] : cut[2 * j + 1]) : -INFINITY;
                    if (j > 0 && j < used && lo[j] <= hi[j - 1]) lo[j] = hi[j] = INFINITY;
                }
                if (r % 6 == 1) lo[0] = hi[0] = 1.0; /* the pile */
                if (r % 6 == 1 && used > 1 && lo[1] <= 1.0) lo[1] = hi[1] = INFINITY;
                size_t cap = r % 2 ? n + 1 : n / 7 + 1;
                uint64_t b1[4] = {5, 6, 7, 8}, u1[4] = {1, 2, 3, 4}, g1[4] = {0, 1, 0, 2};
                uint64_t b2[4] = {5, 6, 7, 8}, u2[4] = {1, 2, 3, 4}, g2[4] = {0, 1, 0, 2};
                double *o1 = calloc(4 * cap, sizeof *o1), *o2 = calloc(4 * cap, sizeof *o2);
                unsigned keep = r % 7 ? 0xf : (unsigned)(rng_next(&s) & 0xf);
                k->pct_count_f64(col + off, n, lo, hi, keep, cap, b1, u1, g1, o1);
                S->pct_count_f64(col + off, n, lo, hi, keep, cap, b2, u2, g2, o2);
                for (int j = 0; j < 4; j++) {
                    CHECK(b1[j] == b2[j] && u1[j] == u2[j] && g1[j] == g2[j],
                          "%s pct_count n %zu off %zu interval %d [%g, %g]: %llu %llu %llu, scalar %llu %llu %llu",
                          k->name, n, off, j, lo[j], hi[j], (unsigned long long)b1[j],
                          (unsigned long long)u1[j], (unsigned long long)g1[j], (unsigned long long)b2[j],
                          (unsigned long long)u2[j], (unsigned long long)g2[j]);
                }
                CHECK(memcmp(o1, o2, 4 * cap * sizeof *o1) == 0, "%s pct_count n %zu off %zu: kept values differ",
                      k->name, n, off);
                free(o1);
                free(o2);
            }
    free(col);
}

Test(kernels, avx2_pct_count_matches_scalar) { pct_count_matches(need("avx2")); }
Test(kernels, avx512_pct_count_matches_scalar) { pct_count_matches(need("avx512")); }

/* ---- values of the selected rows: sel_f64 -------------------------------- */

Test(kernels, scalar_sel_f64_packs_the_selected_values_in_row_order)
{
    double v[70];
    for (int i = 0; i < 70; i++) v[i] = i + 0.5;
    v[3] = -0.0;
    uint64_t bits[2] = {(1ull << 1) | (1ull << 3) | (1ull << 63), (1ull << 5)};
    double out[70];
    size_t k = S->sel_f64(v, bits, 70, out);
    cr_assert_eq(k, 4, "selected %zu", k);
    cr_expect(out[0] == 1.5 && out[1] == 0 && signbit(out[1]) && out[2] == 63.5 && out[3] == 69.5,
              "packed %g %g %g %g", out[0], out[1], out[2], out[3]);
    uint64_t none[2] = {0, 0};
    cr_expect_eq(S->sel_f64(v, none, 70, out), 0);
    cr_expect_eq(S->sel_f64(v, bits, 0, out), 0);
}

/* Every SIMD table against scalar: every length of the sweep, unaligned
 * starts, selections of every density (none, sparse, half, dense, all,
 * whole empty words), values with both zeros; the count and the packed
 * values bit for bit, and nothing written at or past out[n]. */
static void sel_f64_matches(const sdb_kernels *k)
{
    uint64_t s = 0x51ed270b27e1d4b3ull;
    size_t nmax = lengths[N_LENGTHS - 1];
    unsigned char *col = malloc(8 * nmax + 8);
    uint64_t *bits = malloc(((nmax + 63) / 64 + 1) * sizeof *bits);
    double *o1 = malloc((nmax + 8) * sizeof *o1), *o2 = malloc((nmax + 8) * sizeof *o2);
    for (int r = 0; r < 12; r++)
        for (size_t li = 0; li < N_LENGTHS; li++)
            for (size_t off = 0; off < 8; off += 3) {
                size_t n = lengths[li], nw = (n + 63) / 64;
                for (size_t i = 0; i < n; i++) {
                    uint64_t u = rng_next(&s);
                    double x = u % 5 == 0 ? (u & 8 ? 0.0 : -0.0) : rng_unit(&s) * 2 - 1;
                    memcpy(col + off + 8 * i, &x, 8);
                }
                unsigned dens = r % 6; /* 0 none, 1 1/16, 2 1/2, 3 15/16, 4 all, 5 mixed words */
                for (size_t w = 0; w < nw; w++) {
                    uint64_t a = rng_next(&s), b = rng_next(&s), c = rng_next(&s), d = rng_next(&s);
                    uint64_t word = dens == 0   ? 0
                                    : dens == 1 ? a & b & c & d
                                    : dens == 2 ? a
                                    : dens == 3 ? a | b | c | d
                                    : dens == 4 ? ~0ull
                                                : (w % 3 == 0 ? 0 : w % 3 == 1 ? ~0ull : a & b);
                    bits[w] = word;
                }
                if (n % 64) bits[nw - 1] &= (1ull << (n % 64)) - 1;
                for (size_t i = 0; i < nmax + 8; i++) o1[i] = o2[i] = 7.25;
                size_t k1 = k->sel_f64(col + off, bits, n, o1);
                size_t k2 = S->sel_f64(col + off, bits, n, o2);
                size_t want = 0;
                for (size_t w = 0; w < nw; w++) want += (size_t)__builtin_popcountll(bits[w]);
                CHECK(k1 == k2 && k2 == want, "%s sel_f64 n %zu off %zu density %u: %zu, scalar %zu, bits %zu",
                      k->name, n, off, dens, k1, k2, want);
                CHECK(memcmp(o1, o2, k2 * sizeof *o1) == 0, "%s sel_f64 n %zu off %zu: values differ", k->name,
                      n, off);
                for (size_t i = n; i < nmax + 8; i++)
                    CHECK(o1[i] == 7.25 && o2[i] == 7.25, "%s sel_f64 n %zu wrote out[%zu]", k->name, n, i);
            }
    free(o1);
    free(o2);
    free(bits);
    free(col);
}

Test(kernels, avx2_sel_f64_matches_scalar) { sel_f64_matches(need("avx2")); }
Test(kernels, avx512_sel_f64_matches_scalar) { sel_f64_matches(need("avx512")); }

/* ---- dense local slots: slot_scatter, a block of its own -----------------
 * scalar.c's slot_scatter against the contract written out here (the j-th
 * selected row into copy j % SDB_SCAT_COPIES of its local slot, seen and
 * the local histogram), then every SIMD table against scalar.c exactly
 * (the same rows reach the same copies in the same order, so every field
 * is the same bits): random values at byte offsets 0..7, empty, full,
 * sparse and random bitmaps, every length of `lengths`, 1 to 4096 local
 * slots (one slot, a few, model x prompt_version's ~117, DENSE_MAX), each
 * mode with and without a histogram, and the count-and-histogram call
 * (no copies). */
static void scat_run(const sdb_kernels *k, const char *vals, size_t n, const uint64_t *in,
                     const void *loc, unsigned lw, const uint16_t *bin, uint32_t nslot, int mode, int with_acc,
                     int with_hist, sdb_slot *acc, uint32_t *hist, uint8_t *seen)
{
    const uint32_t stride = 7;
    for (size_t i = 0; i < (size_t)nslot * SDB_SCAT_COPIES; i++) {
        memset(&acc[i], 0, sizeof acc[i]);
        acc[i].min = INFINITY;
        acc[i].max = -INFINITY;
        if (i % 3 == 1) { /* a copy that already holds rows */
            acc[i].n = 2;
            acc[i].sum = 1.0;
            acc[i].k = 0.25;
            acc[i].min = -2;
            acc[i].max = 3;
        }
    }
    memset(hist, 0, (size_t)nslot * stride * sizeof *hist);
    memset(seen, 0, nslot);
    k->slot_scatter(vals, in, n, loc, lw, mode, with_acc ? acc : NULL, bin, stride, with_hist ? hist : NULL,
                    seen);
}

static void slot_scatter_match(const sdb_kernels *k)
{
    uint64_t s = 0x5ca77e4ull;
    enum { MAXN = 4099 + 8, MAXS = 4096, STRIDE = 7 };
    char *vals = malloc((MAXN + 1) * sizeof(double));
    uint16_t *loc = malloc(MAXN * sizeof *loc), *bin = malloc(MAXN * sizeof *bin);
    uint8_t *loc8 = malloc(MAXN);
    sdb_slot *ga = malloc((size_t)MAXS * SDB_SCAT_COPIES * sizeof *ga);
    sdb_slot *wa = malloc((size_t)MAXS * SDB_SCAT_COPIES * sizeof *wa);
    uint32_t *gh = malloc((size_t)MAXS * STRIDE * sizeof *gh), *wh = malloc((size_t)MAXS * STRIDE * sizeof *wh);
    uint8_t *gs = malloc(MAXS), *ws = malloc(MAXS);
    uint64_t in[(MAXN + 63) / 64];
    cr_assert(vals && loc && loc8 && bin && ga && wa && gh && wh && gs && ws);
    const uint32_t nslots[] = {1, 3, 117, MAXS};
    for (size_t a = 0; a < N_LENGTHS; a++)
        for (unsigned off = 0; off < 8; off += 3)
            for (int shape = 0; shape < 4; shape++)
                for (size_t ns = 0; ns < sizeof nslots / sizeof nslots[0]; ns++) {
                    size_t n = lengths[a], nw = (n + 63) / 64;
                    uint32_t nslot = nslots[ns];
                    for (size_t i = 0; i < n; i++) {
                        double x = (rng_unit(&s) - 0.5) * 1000.0;
                        memcpy(vals + off + 8 * i, &x, 8);
                        /* skewed: half the rows in slot 0, as a popular model makes */
                        loc[i] = (uint16_t)(rng_next(&s) & 1 ? 0 : rng_next(&s) % nslot);
                        loc8[i] = (uint8_t)loc[i];
                        bin[i] = (uint16_t)(rng_next(&s) % STRIDE);
                    }
                    for (size_t w = 0; w < nw; w++) {
                        uint64_t r = rng_next(&s);
                        in[w] = shape == 0 ? 0 : shape == 1 ? ~0ull : shape == 2 ? r & rng_next(&s) & rng_next(&s) : r;
                        if (w == nw - 1 && n % 64) in[w] &= (1ull << (n % 64)) - 1;
                    }
                    for (int mode = 0; mode < 3; mode++)
                        for (int variant = 0; variant < 6; variant++) {
                            /* variant % 3 0: copies, 1: copies and histogram, 2: histogram
                             * alone; >= 3: local slots of one byte (a key's own column) */
                            int with_acc = variant % 3 < 2, with_hist = variant % 3 > 0;
                            unsigned lw = variant >= 3 ? 1 : 2;
                            const void *lp = lw == 1 ? (const void *)loc8 : (const void *)loc;
                            if ((variant % 3 == 2 && mode) || (lw == 1 && nslot > 256)) continue;
                            scat_run(k, vals + off, n, in, lp, lw, bin, nslot, mode, with_acc, with_hist, ga, gh, gs);
                            if (k == S) {
                                /* the contract, row by row */
                                scat_run(S, vals + off, 0, in, lp, lw, bin, nslot, mode, with_acc, with_hist, wa, wh, ws);
                                size_t j = 0;
                                for (size_t i = 0; i < n; i++) {
                                    if (!(in[i / 64] >> (i % 64) & 1)) continue;
                                    double x;
                                    memcpy(&x, vals + off + 8 * i, 8);
                                    ws[loc[i]] = 1;
                                    if (with_acc) {
                                        sdb_slot *c = &wa[(size_t)loc[i] * SDB_SCAT_COPIES + j % SDB_SCAT_COPIES];
                                        c->n++;
                                        if (mode) {
                                            c->sum += x;
                                            c->min = x < c->min ? x : c->min;
                                            c->max = x > c->max ? x : c->max;
                                        }
                                        if (mode == 2) {
                                            if (c->n == 1) c->k = x;
                                            c->s1 += x - c->k;
                                            c->s2 += (x - c->k) * (x - c->k);
                                        }
                                    }
                                    if (with_hist) wh[(size_t)loc[i] * STRIDE + bin[i]]++;
                                    j++;
                                }
                            } else {
                                scat_run(S, vals + off, n, in, lp, lw, bin, nslot, mode, with_acc, with_hist, wa, wh, ws);
                            }
                            CHECK(!memcmp(gs, ws, nslot), "%s slot_scatter n %zu shape %d slots %u mode %d variant %d: seen differs",
                                  k->name, n, shape, nslot, mode, variant);
                            CHECK(!memcmp(gh, wh, (size_t)nslot * STRIDE * sizeof *gh),
                                  "%s slot_scatter n %zu shape %d slots %u mode %d variant %d: histogram differs",
                                  k->name, n, shape, nslot, mode, variant);
                            for (size_t i = 0; i < (size_t)nslot * SDB_SCAT_COPIES; i++) {
                                const sdb_slot *g = &ga[i], *e = &wa[i];
                                CHECK(g->n == e->n && g->count == e->count && g->min == e->min &&
                                          g->max == e->max && g->k == e->k && g->sum == e->sum &&
                                          g->s1 == e->s1 && g->s2 == e->s2,
                                      "%s slot_scatter n %zu off %u shape %d slots %u mode %d variant %d copy %zu: "
                                      "n %llu/%llu sum %.17g/%.17g min %g/%g max %g/%g k %g/%g s2 %.17g/%.17g",
                                      k->name, n, off, shape, nslot, mode, variant, i, (unsigned long long)g->n,
                                      (unsigned long long)e->n, g->sum, e->sum, g->min, e->min, g->max, e->max,
                                      g->k, e->k, g->s2, e->s2);
                            }
                        }
                }
    free(vals);
    free(loc);
    free(loc8);
    free(bin);
    free(ga);
    free(wa);
    free(gh);
    free(wh);
    free(gs);
    free(ws);
}

Test(kernels, scalar_slot_scatter_puts_each_row_in_its_copy) { slot_scatter_match(S); }
Test(kernels, avx2_slot_scatter_matches_scalar) { slot_scatter_match(need("avx2")); }
Test(kernels, avx512_slot_scatter_matches_scalar) { slot_scatter_match(need("avx512")); }

/* slot_bins against the formula written out here (hist_f64's, each row
 * with its local slot's bounds), then every SIMD table against scalar.c
 * exactly: values on and beside every bin edge, below and above the
 * bounds, a zero width (lo == hi), 1 to 117 local slots of different
 * bounds, random and full bitmaps, every length, offsets 0..7. */
static void slot_bins_match(const sdb_kernels *k)
{
    uint64_t s = 0xb1275ull;
    enum { MAXN = 4099 + 8, MAXS = 117, BINS = 20, STRIDE = BINS + 2 };
    char *vals = malloc((MAXN + 1) * sizeof(double));
    uint16_t *loc = malloc(MAXN * sizeof *loc);
    uint8_t *loc8 = malloc(MAXN);
    uint32_t *got = malloc((size_t)MAXS * STRIDE * sizeof *got), *want = malloc((size_t)MAXS * STRIDE * sizeof *want);
    double lo[MAXS], hi[MAXS], width[MAXS];
    uint64_t in[(MAXN + 63) / 64];
    cr_assert(vals && loc && loc8 && got && want);
    for (uint32_t j = 0; j < MAXS; j++) {
        lo[j] = j % 5 == 4 ? 0.5 : (double)(j % 7) / 10.0;
        hi[j] = j % 5 == 4 ? 0.5 : lo[j] + 0.3 + (double)(j % 3) / 4.0;
        width[j] = (hi[j] - lo[j]) / BINS;
    }
    const uint32_t nslots[] = {1, 5, MAXS};
    for (size_t a = 0; a < N_LENGTHS; a++)
        for (unsigned off = 0; off < 8; off += 3)
            for (int shape = 1; shape < 4; shape++)
                for (size_t ns = 0; ns < sizeof nslots / sizeof nslots[0]; ns++) {
                    size_t n = lengths[a], nw = (n + 63) / 64;
                    for (size_t i = 0; i < n; i++) {
                        uint16_t sl = (uint16_t)(rng_next(&s) % nslots[ns]);
                        uint64_t pick = rng_next(&s) % 4;
                        double x = pick == 0 ? lo[sl] + (double)(rng_next(&s) % (BINS + 1)) * width[sl]
                                 : pick == 1 ? nextafter(lo[sl] + (double)(rng_next(&s) % (BINS + 1)) * width[sl],
                                                         (rng_next(&s) & 1) ? INFINITY : -INFINITY)
                                 : pick == 2 ? (double)(rng_next(&s) % 101) / 100.0
                                             : (rng_unit(&s) - 0.25) * 2.0;
                        loc[i] = sl;
                        loc8[i] = (uint8_t)sl;
                        memcpy(vals + off + 8 * i, &x, 8);
                    }
                    for (size_t w = 0; w < nw; w++) {
                        uint64_t r = rng_next(&s);
                        in[w] = shape == 1 ? ~0ull : shape == 2 ? r & rng_next(&s) : r;
                        if (w == nw - 1 && n % 64) in[w] &= (1ull << (n % 64)) - 1;
                    }
                    for (unsigned lw = 1; lw <= 2; lw++) {
                    const void *lp = lw == 1 ? (const void *)loc8 : (const void *)loc;
                    memset(got, 0, (size_t)MAXS * STRIDE * sizeof *got);
                    memset(want, 0, (size_t)MAXS * STRIDE * sizeof *want);
                    k->slot_bins(vals + off, in, n, lp, lw, lo, hi, width, BINS, STRIDE, got);
                    if (k == S) {
                        for (size_t i = 0; i < n; i++) {
                            if (!(in[i / 64] >> (i % 64) & 1)) continue;
                            double x;
                            memcpy(&x, vals + off + 8 * i, 8);
                            uint32_t sl = loc[i], b;
                            if (x < lo[sl]) b = BINS;
                            else if (x > hi[sl]) b = BINS + 1;
                            else {
                                double q = floor((x - lo[sl]) / width[sl]);
                                b = (q >= 0 && q < BINS) ? (uint32_t)q : BINS - 1;
                            }
                            want[(size_t)sl * STRIDE + b]++;
                        }
                    } else {
                        S->slot_bins(vals + off, in, n, lp, lw, lo, hi, width, BINS, STRIDE, want);
                    }
                    for (size_t i = 0; i < (size_t)MAXS * STRIDE; i++)
                        CHECK(got[i] == want[i], "%s slot_bins n %zu off %u shape %d slots %u width %u: slot %zu bin %zu: %u, want %u",
                              k->name, n, off, shape, nslots[ns], lw, i / STRIDE, i % STRIDE, got[i], want[i]);
                    }
                }
    free(vals);
    free(loc);
    free(loc8);
    free(got);
    free(want);
}

Test(kernels, scalar_slot_bins_bins_each_row_by_its_slots_bounds) { slot_bins_match(S); }
Test(kernels, avx2_slot_bins_matches_scalar) { slot_bins_match(need("avx2")); }
Test(kernels, avx512_slot_bins_matches_scalar) { slot_bins_match(need("avx512")); }
