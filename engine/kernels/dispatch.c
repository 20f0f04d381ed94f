/* Kernel dispatch: which table of inner loops this process runs.
 *
 * The choice is made once, on first use, and never changes afterwards, so a
 * query never mixes tables and callers may cache the pointer. The best table
 * the CPU (and OS) supports wins: avx512, then avx2, then scalar. The
 * environment variable SDB_KERNELS=scalar|avx2|avx512 overrides the choice
 * for tests and benchmarks; asking for a table this CPU cannot run falls
 * back to the best one it can, rather than failing, so a script written on
 * one machine still runs on another.
 *
 * This file is compiled without ISA flags: it runs before we know what the
 * CPU supports. The CPU checks themselves live in avx2.c and avx512.c, each
 * behind its own sdb__kernels_<isa>() accessor.
 */
#include "kernels.h"

#include <scoredb.h>

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const sdb_kernels *chosen;

/* Every kernel of a table, by name and place: the per-kernel choice below
 * and sdb__kernels_choice() walk it. */
#define K(f) {#f, offsetof(sdb_kernels, f)}
static const struct {
    const char *name;
    size_t off;
} fields[] = {
    K(agg_f64),    K(hist_f64),   K(group_u32),  K(series_f64), K(select_u64),
    K(mask_f64),   K(slot_agg),   K(slot_agg_nm), K(bits_lut8), K(bits_agg),
    K(slot_hist),  K(bins_f64),   K(unpack_u64), K(unpack_dec), K(widen_f32),
    K(agg_dec),    K(unpack_ids),
    K(bits_pk),
    K(pct_count_f64),
    K(sel_f64),
    K(slot_scatter), K(slot_bins),
};
#undef K
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* The kernels whose AVX-512 variant is slower than AVX2's on this machine
 * (issue 8 point 5: the table is picked per kernel), so the default table
 * on a CPU with both is avx512 with these taken from avx2. Measured with
 * both tables in one process, interleaved, 7 rounds of 200 calls each,
 * median thread CPU time a row, on 65536-row columns in cache (AMD EPYC,
 * Zen 4: 512-bit ops are double-pumped 256-bit ones), in two runs:
 *   mask_f64   (1024-row batches, time + value)  avx512/avx2 1.15, 1.09
 *   slot_hist  (20 bins, every row, one group)   avx512/avx2 1.04, 1.07
 * Every other kernel was at parity (group_u32 1.01/0.99, slot_agg with 16
 * slots 1.14/0.90: noise) or faster on AVX-512 (agg_f64 with a time range
 * 0.47, hist_f64 0.75-0.95, select_u64 0.85-0.95). SDB_KERNELS=avx512
 * still gives the pure table (tests and benchmarks compare whole tables);
 * sdb__kernels_choice() names the table each kernel comes from, and
 * bench_kernels prints it. */
static const char *const prefer_avx2[] = {"mask_f64", "slot_hist"};

static sdb_kernels mixed;

static const sdb_kernels *best(void)
{
    const sdb_kernels *k512 = sdb__kernels_avx512(), *k2 = sdb__kernels_avx2();
    if (k512 != NULL && k2 != NULL) {
        mixed = *k512;
        for (size_t i = 0; i < sizeof prefer_avx2 / sizeof prefer_avx2[0]; i++)
            for (size_t j = 0; j < N_FIELDS; j++)
                if (strcmp(fields[j].name, prefer_avx2[i]) == 0)
                    memcpy((char *)&mixed + fields[j].off, (const char *)k2 + fields[j].off,
                           sizeof(void (*)(void)));
        return &mixed;
    }
    if (k512 != NULL) return k512;
    if (k2 != NULL) return k2;
    return &sdb__kernels_scalar;
}

const char *sdb__kernels_field(size_t i)
{
    return i < N_FIELDS ? fields[i].name : NULL;
}

const char *sdb__kernels_choice(const char *kernel)
{
    const sdb_kernels *k = sdb__kernels();
    const sdb_kernels *all[3] = {sdb__kernels_avx512(), sdb__kernels_avx2(), &sdb__kernels_scalar};
    for (size_t j = 0; j < N_FIELDS; j++) {
        if (strcmp(fields[j].name, kernel) != 0) continue;
        for (int t = 0; t < 3; t++)
            if (all[t] != NULL &&
                memcmp((const char *)k + fields[j].off, (const char *)all[t] + fields[j].off,
                       sizeof(void (*)(void))) == 0)
                return all[t]->name;
    }
    return NULL;
}

const sdb_kernels *sdb__kernels_by_name(const char *name)
{
    if (name == NULL) return NULL;
    if (strcmp(name, "scalar") == 0) return &sdb__kernels_scalar;
    if (strcmp(name, "avx2") == 0) return sdb__kernels_avx2();
    if (strcmp(name, "avx512") == 0) return sdb__kernels_avx512();
    return NULL;
}

static void choose(void)
{
    const char *want = getenv("SDB_KERNELS");
    const sdb_kernels *k = (want != NULL && *want != '\0') ? sdb__kernels_by_name(want) : NULL;
    chosen = k != NULL ? k : best();
}

const sdb_kernels *sdb__kernels(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *sdb_kernels_name(void)
{
    return sdb__kernels()->name;
}
