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
 *   build/bench_kernels [rows [text [table]]]  # rows defaults to 8388608
 *                     (8M); text: only the rows naming it; table: one table
 *
 * The columns mimic a segment read in place from the LMDB map: ts (i64,
 * sorted, 10 ms apart), v (f64 scores in [0, 1)), keys (u32 dictionary ids
 * < 16) and hash (u64), each starting 2 bytes past an 8-byte boundary, the
 * only alignment LMDB promises. Each kernel is run once to warm up, then 7
 * times, timed in thread CPU time; the median is reported as bytes of its input columns per second
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
/* Encoded columns (engine/internal.h): two-digit decimals in 7 bits, time
 * offsets in 27 bits (a day of milliseconds), f32 values. */
#define DEC_BITS 7
#define TS_BITS 27
#define CHUNK 8192 /* rows a segment decodes at once: store.c's chunk_rows */
static char *pk_dec, *pk_ts, *col_f32;
static double *dec_v;  /* CHUNK: decoded scratch, as exec.c's load_cols */
static int64_t *dec_t;
static sdb_filter f_all, f_value, f_time, f_time_value;
static int64_t t_first;
static volatile uint64_t sink; /* keeps results observable */

/* The thread's CPU time, not the wall clock: five engineers share two
 * cores, and a kernel preempted mid-run would be charged the other
 * process's time slice. (Memory bandwidth they take is still felt: each
 * cell is quoted against a memread measured just before it.) */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
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
    /* Packed columns, padded by 7 bytes (kernels.h). */
    size_t l_dec = (n_rows * DEC_BITS + 7) / 8 + 7, l_ts = (n_rows * TS_BITS + 7) / 8 + 7;
    pk_dec = column(l_dec);
    pk_ts = column(l_ts);
    col_f32 = column(n_rows * 4);
    memset(pk_dec, 0, l_dec);
    memset(pk_ts, 0, l_ts);
    for (size_t i = 0; i < n_rows; i++) {
        uint64_t x[2] = {rng_next(&s) % 101, (i * 10) % 86400000};
        char *col[2] = {pk_dec, pk_ts};
        unsigned bits[2] = {DEC_BITS, TS_BITS};
        for (int c = 0; c < 2; c++) {
            uint64_t bit = (uint64_t)i * bits[c], w;
            memcpy(&w, col[c] + (bit >> 3), 8);
            w |= x[c] << (bit & 7);
            memcpy(col[c] + (bit >> 3), &w, 8);
        }
        float fv = (float)((double)(rng_next(&s) >> 11) * 0x1.0p-53);
        memcpy(col_f32 + 4 * i, &fv, 4);
    }
    dec_v = malloc(CHUNK * sizeof *dec_v);
    dec_t = malloc(CHUNK * sizeof *dec_t);
    if (!dec_v || !dec_t) exit(1);
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

/* ---- encoded columns: decoders alone, and decode + kernel per chunk ------- */

/* Chunk c of a packed column of b bits starts at a whole byte (CHUNK is a
 * multiple of 8). */
static const char *chunk_of(const char *col, unsigned bits, size_t i) { return col + i / 8 * bits; }

static void run_unpack_dec(const sdb_kernels *k)
{
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        k->unpack_dec(chunk_of(pk_dec, DEC_BITS, i), DEC_BITS, m, 0, 100.0, dec_v);
    }
    sink = (uint64_t)dec_v[0];
}

static void run_unpack_ts(const sdb_kernels *k)
{
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        k->unpack_u64(chunk_of(pk_ts, TS_BITS, i), TS_BITS, m, (uint64_t)t_first, (uint64_t *)dec_t);
    }
    sink = (uint64_t)dec_t[0];
}

static void run_widen_f32(const sdb_kernels *k)
{
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        k->widen_f32(col_f32 + 4 * i, m, dec_v);
    }
    sink = (uint64_t)dec_v[0];
}

/* What exec.c does with a decimal segment wholly inside the query's time:
 * decode the values, then agg_f64 over them (the time column unread). */
static void run_dec_agg(const sdb_kernels *k)
{
    uint64_t n = 0;
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        sdb_agg a;
        k->unpack_dec(chunk_of(pk_dec, DEC_BITS, i), DEC_BITS, m, 0, 100.0, dec_v);
        k->agg_f64(dec_v, dec_v, m, &f_value, &a);
        n += a.n;
    }
    sink = n;
}

/* And with a time filter: times decoded too. */
static void run_dec_agg_time(const sdb_kernels *k)
{
    uint64_t n = 0;
    sdb_filter f = f_all;
    f.t_lo = t_first + 3600000;
    f.t_hi = t_first + 5 * 3600000;
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        sdb_agg a;
        k->unpack_dec(chunk_of(pk_dec, DEC_BITS, i), DEC_BITS, m, 0, 100.0, dec_v);
        k->unpack_u64(chunk_of(pk_ts, TS_BITS, i), TS_BITS, m, (uint64_t)t_first, (uint64_t *)dec_t);
        k->agg_f64(dec_v, dec_t, m, &f, &a);
        n += a.n;
    }
    sink = n;
}

/* The same two scans fused: agg_dec decodes, filters in the encoded
 * domain and aggregates each chunk without writing it decoded. */
static void agg_dec_chunks(const sdb_kernels *k, const sdb_filter *f, int with_ts)
{
    uint64_t n = 0;
    for (size_t i = 0; i < n_rows; i += CHUNK) {
        size_t m = n_rows - i < CHUNK ? n_rows - i : CHUNK;
        sdb_agg a;
        k->agg_dec(chunk_of(pk_dec, DEC_BITS, i), DEC_BITS, 0, 100.0,
                   with_ts ? chunk_of(pk_ts, TS_BITS, i) : NULL, TS_BITS, t_first, m, f, &a, NULL);
        n += a.n;
    }
    sink = n;
}

static void run_agg_dec(const sdb_kernels *k) { agg_dec_chunks(k, &f_value, 0); }

static void run_agg_dec_time(const sdb_kernels *k)
{
    sdb_filter f = f_all;
    f.t_lo = t_first + 3600000;
    f.t_hi = t_first + 5 * 3600000;
    agg_dec_chunks(k, &f, 1);
}

/* ---- the pipeline's batch kernels (exec.c batch_rows), 1024-row batches -- */

#define BATCH 1024 /* exec.c's BATCH */
static uint32_t *sel_half, *slot16; /* every other row of a batch; its slot < 16 */
static sdb_slot slots[N_KEYS];
static uint64_t bits_out[BATCH / 64];

static void slots_reset(void)
{
    for (int j = 0; j < N_KEYS; j++) {
        memset(&slots[j], 0, sizeof slots[j]);
        slots[j].min = INFINITY;
        slots[j].max = -INFINITY;
    }
}

static void run_mask(const sdb_kernels *k)
{
    uint64_t acc = 0;
    for (size_t i = 0; i + BATCH <= n_rows; i += BATCH) {
        k->mask_f64(col_v + 8 * i, col_ts + 8 * i, BATCH, &f_time_value, bits_out);
        acc += bits_out[3];
    }
    sink = acc;
}

static void run_slot_agg_one(const sdb_kernels *k)
{
    slots_reset();
    for (size_t i = 0; i + BATCH <= n_rows; i += BATCH)
        k->slot_agg(col_v + 8 * i, NULL, NULL, BATCH, slots);
    sink = slots[0].n;
}

static void run_slot_agg_16(const sdb_kernels *k)
{
    slots_reset();
    for (size_t i = 0; i + BATCH <= n_rows; i += BATCH)
        k->slot_agg(col_v + 8 * i, sel_half, slot16, BATCH / 2, slots);
    sink = slots[3].n;
}

static void run_slot_hist(const sdb_kernels *k)
{
    static uint64_t counts[BINS + 2];
    double lo = 0.0, hi = 1.0, w = 1.0 / BINS;
    for (size_t i = 0; i + BATCH <= n_rows; i += BATCH)
        k->slot_hist(col_v + 8 * i, NULL, NULL, BATCH, &lo, &hi, &w, 0, BINS, counts);
    sink = counts[1];
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
    /* The pipeline's kernels over 1024-row batches: GB/s of the column
     * bytes a batch covers (the selection and slot arrays are L1 scratch;
     * "half" selects every other row, so half the value bytes are read). */
    {"mask_f64, time + value, batches (ts+v)", 16, run_mask, 1},
    {"slot_agg, every row, one slot (v)", 8, run_slot_agg_one, 1},
    {"slot_agg, half the rows, 16 slots (v)", 8, run_slot_agg_16, 1},
    {"slot_hist, 20 bins, every row, one group (v)", 8, run_slot_hist, 1},
    /* Decoders: GB/s of the f64/i64/u64 they write (8 bytes a row), so a
     * cell compares with memread's rate of reading those bytes raw. */
    {"unpack_dec, 7-bit decimals -> f64 (out)", 8, run_unpack_dec, 1},
    {"unpack_u64, 27-bit time offsets -> i64 (out)", 8, run_unpack_ts, 1},
    {"widen_f32 -> f64 (out)", 8, run_widen_f32, 1},
    /* Scans of encoded columns, per 8192-row chunk: GB/s of the raw
     * columns they stand for (v 8 bytes a row; ts + v 16). */
    {"decimals: unpack_dec + agg_f64, value filter (v as f64)", 8, run_dec_agg, 1},
    {"decimals + times: unpack x2 + agg_f64, time range (ts+v)", 16, run_dec_agg_time, 1},
    {"decimals: agg_dec (fused), value filter (v as f64)", 8, run_agg_dec, 1},
    {"decimals + times: agg_dec (fused), time range (ts+v)", 16, run_agg_dec_time, 1},
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
    const char *only = argc > 2 ? argv[2] : NULL; /* rows whose name holds it */
    if (n_rows < 2) n_rows = 2;
    make_data();
    select_out = malloc(n_rows * 8);
    sel_half = malloc(BATCH / 2 * sizeof *sel_half);
    slot16 = malloc(BATCH / 2 * sizeof *slot16);
    if (select_out == NULL || sel_half == NULL || slot16 == NULL) return 1;
    for (uint32_t j = 0; j < BATCH / 2; j++) {
        sel_half[j] = 2 * j;
        slot16[j] = (j * 7 + j / 16) % N_KEYS;
    }

    const char *names[] = {"scalar", "avx2", "avx512"};
    const sdb_kernels *tables[3];
    int n_tables = 0;
    const char *table_only = argc > 3 ? argv[3] : NULL; /* one table by name */
    for (int t = 0; t < 3; t++)
        if ((table_only == NULL || strcmp(table_only, names[t]) == 0) &&
            (tables[n_tables] = sdb__kernels_by_name(names[t])) != NULL)
            n_tables++;

    /* The dispatched table's source of each kernel (dispatch.c). */
    printf("Dispatch (SDB_KERNELS unset: %s):", sdb__kernels()->name);
    for (size_t i = 0; sdb__kernels_field(i) != NULL; i++)
        printf(" %s=%s", sdb__kernels_field(i), sdb__kernels_choice(sdb__kernels_field(i)));
    printf("\n\n");

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
        if (only != NULL && strstr(jobs[j].name, only) == NULL) continue;
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
