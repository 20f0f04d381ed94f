/* Kernel throughput: GB/s of each kernel of each supported table, beside a
 * plain memory-read loop over the same bytes.
 *
 * Build and run from the repository root, after `make` has built the kernel
 * objects (they need no library beyond libm and pthreads):
 *
 *   cc -O2 -std=c11 -Wall -Wextra -Wpedantic -Werror -D_GNU_SOURCE -Iinclude -Iengine \
 *      bench/bench_kernels.c build/engine/kernels/scalar.o build/engine/kernels/avx2.o \
 *      build/engine/kernels/avx512.o build/engine/kernels/dispatch.o \
 *      -lm -lpthread -o build/bench_kernels
 *   build/bench_kernels [rows]          # rows defaults to 8388608 (8M)
 *
 * The columns mimic a segment read in place from the LMDB map: ts (i64,
 * sorted, 10 ms apart), v (f64 scores in [0, 1)), keys (u32 dictionary ids
 * < 16) and hash (u64), each starting 2 bytes past an 8-byte boundary, the
 * only alignment LMDB promises. Each kernel is run once to warm up, then 7
 * times; the median is reported as bytes of its input columns per second
 * (ts + v = 16 bytes a row for agg/hist/series, + 4 for group, + 8 for
 * select). With no time filter (the time range is everything, as the query
 * engine passes for a segment wholly inside the query's range) the SIMD
 * tables do not read ts, so those rows count v alone (8 bytes, 16 with the
 * hashes); scalar.c reads ts anyway and so shows half its real rate there.
 * "memread" sums the ts and v bytes as u64 with four independent
 * accumulators: the speed of reading those bytes and doing nothing with
 * them, compiled with this file's flags (SSE2 at -O2).
 *
 * Output is a markdown table, one column per table (scalar, avx2, avx512),
 * with the percentage of a memread measured just before that cell in
 * parentheses (the memread row shows the first such measurement).
 */
#include "kernels/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7
#define N_KEYS 16
#define BINS 20

static size_t n_rows;
static char *col_v, *col_ts, *col_keys, *col_hash; /* each 2 bytes past alignment */
static sdb_filter f_all, f_value, f_time, f_time_value;
static int64_t t_first;
static volatile uint64_t sink; /* keeps results observable */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *column(size_t bytes)
{
    char *base = malloc(bytes + 8);
    if (base == NULL) {
        fprintf(stderr, "bench_kernels: out of memory for %zu bytes\n", bytes);
        exit(1);
    }
    return base + 2;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_data(void)
{
    col_v = column(n_rows * 8);
    col_ts = column(n_rows * 8);
    col_keys = column(n_rows * 4);
    col_hash = column(n_rows * 8);
    uint64_t s = 42;
    t_first = 1767225600000; /* 2026-01-01 */
    for (size_t i = 0; i < n_rows; i++) {
        double x = (double)(rng_next(&s) >> 11) * 0x1.0p-53;
        int64_t t = t_first + (int64_t)i * 10;
        uint32_t k = (uint32_t)(rng_next(&s) % N_KEYS);
        uint64_t h = rng_next(&s) | 1;
        memcpy(col_v + i * 8, &x, 8);
        memcpy(col_ts + i * 8, &t, 8);
        memcpy(col_keys + i * 4, &k, 4);
        memcpy(col_hash + i * 8, &h, 8);
    }
    int64_t span = (int64_t)n_rows * 10;
    f_all = (sdb_filter){INT64_MIN, INT64_MAX, -INFINITY, INFINITY, 0.5};
    /* The middle half of the segment's time. */
    f_time = (sdb_filter){t_first + span / 4, t_first + span / 4 * 3, -INFINITY, INFINITY, 0.5};
    f_time_value = f_time;
    f_time_value.v_lo = 0.5;
    f_value = f_all;
    f_value.v_lo = 0.5;
}

/* ---- what is timed -------------------------------------------------------- */

typedef struct job {
    const char *name;
    double bytes_per_row;
    void (*run)(const sdb_kernels *k);
    int needs_table; /* 0: memread */
} job;

static void run_memread(const sdb_kernels *k)
{
    (void)k;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 2 <= n_rows; i += 2) {
        uint64_t x[4];
        memcpy(&x[0], col_ts + i * 8, 16);
        memcpy(&x[2], col_v + i * 8, 16);
        a0 += x[0];
        a1 += x[1];
        a2 += x[2];
        a3 += x[3];
    }
    sink = a0 + a1 + a2 + a3;
}

static void run_agg_all(const sdb_kernels *k)
{
    sdb_agg a;
    k->agg_f64(col_v, col_ts, n_rows, &f_all, &a);
    sink = a.n;
}

static void run_agg_time(const sdb_kernels *k)
{
    sdb_agg a;
    k->agg_f64(col_v, col_ts, n_rows, &f_time, &a);
    sink = a.n;
}

static void run_agg_time_value(const sdb_kernels *k)
{
    sdb_agg a;
    k->agg_f64(col_v, col_ts, n_rows, &f_time_value, &a);
    sink = a.n;
}

static void run_hist(const sdb_kernels *k)
{
    uint64_t counts[BINS + 2] = {0};
    k->hist_f64(col_v, col_ts, n_rows, &f_time, 0.0, 1.0, 1.0 / BINS, BINS, counts);
    sink = counts[0];
}

static void run_hist_all(const sdb_kernels *k)
{
    uint64_t counts[BINS + 2] = {0};
    k->hist_f64(col_v, col_ts, n_rows, &f_all, 0.0, 1.0, 1.0 / BINS, BINS, counts);
    sink = counts[0];
}

static void run_group(const sdb_kernels *k)
{
    sdb_agg accs[N_KEYS];
    for (int j = 0; j < N_KEYS; j++) sdb__agg_empty(&accs[j]);
    k->group_u32(col_keys, col_v, col_ts, n_rows, &f_time, N_KEYS, accs);
    sink = accs[0].n;
}

static void run_series(const sdb_kernels *k)
{
    /* One-minute buckets over the whole segment: 6000 rows each. */
    enum { MAX_BUCKETS = 1 << 16 };
    static sdb_agg accs[MAX_BUCKETS];
    int64_t width = 60000;
    uint64_t nb = (uint64_t)((int64_t)n_rows * 10 / width + 1);
    if (nb > MAX_BUCKETS) nb = MAX_BUCKETS;
    for (uint64_t j = 0; j < nb; j++) sdb__agg_empty(&accs[j]);
    sdb_filter f = f_time;
    k->series_f64(col_v, col_ts, n_rows, &f, t_first, width, (uint32_t)nb, accs);
    sink = accs[nb / 2].n;
}

static uint64_t *select_out;

static void run_select(const sdb_kernels *k)
{
    sink = k->select_u64(col_hash, col_v, col_ts, n_rows, &f_time_value, select_out);
}

static void run_select_value(const sdb_kernels *k)
{
    sink = k->select_u64(col_hash, col_v, col_ts, n_rows, &f_value, select_out);
}

static const job jobs[] = {
    {"memread (ts+v)", 16, run_memread, 0},
    {"agg_f64, no filter (v only)", 8, run_agg_all, 1},
    {"agg_f64, time range (50%)", 16, run_agg_time, 1},
    {"agg_f64, time + value (25%)", 16, run_agg_time_value, 1},
    {"hist_f64, 20 bins, time range", 16, run_hist, 1},
    {"hist_f64, 20 bins, no time filter (v only)", 8, run_hist_all, 1},
    {"group_u32, 16 keys, time range", 20, run_group, 1},
    {"series_f64, 1-min buckets, time range", 16, run_series, 1},
    {"select_u64, time + value", 24, run_select, 1},
    {"select_u64, value only (v + hash)", 16, run_select_value, 1},
};
#define N_JOBS (sizeof jobs / sizeof jobs[0])

static double measure(const job *j, const sdb_kernels *k)
{
    double t[RUNS];
    j->run(k); /* warm: page faults, caches, branch predictors */
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        j->run(k);
        t[r] = now_s() - t0;
    }
    qsort(t, RUNS, sizeof t[0], cmp_double);
    return j->bytes_per_row * (double)n_rows / t[RUNS / 2] / 1e9;
}

int main(int argc, char **argv)
{
    n_rows = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)8 << 20;
    if (n_rows < 2) n_rows = 2;
    make_data();
    select_out = malloc(n_rows * 8);
    if (select_out == NULL) return 1;

    const char *names[] = {"scalar", "avx2", "avx512"};
    const sdb_kernels *tables[3];
    int n_tables = 0;
    for (int t = 0; t < 3; t++)
        if ((tables[n_tables] = sdb__kernels_by_name(names[t])) != NULL) n_tables++;

    double mem = measure(&jobs[0], NULL);
    printf("Kernel throughput, %zu rows, GB/s of input columns (%% of memread), median of %d\n\n",
           n_rows, RUNS);
    printf("| kernel |");
    for (int t = 0; t < n_tables; t++) printf(" %s |", tables[t]->name);
    printf("\n|---|");
    for (int t = 0; t < n_tables; t++) printf("---:|");
    printf("\n| %s |", jobs[0].name);
    for (int t = 0; t < n_tables; t++) printf(" %.1f |", mem);
    printf("\n");
    for (size_t j = 1; j < N_JOBS; j++) {
        printf("| %s |", jobs[j].name);
        for (int t = 0; t < n_tables; t++) {
            /* memread again beside each cell: on a shared machine the
             * bandwidth available drifts between cells. */
            double ref = measure(&jobs[0], NULL);
            double g = measure(&jobs[j], tables[t]);
            double pct = 100.0 * g / ref;
            printf(" %.1f (%.0f%%) |", g, pct);
            fflush(stdout);
        }
        printf("\n");
    }
    return 0;
}
