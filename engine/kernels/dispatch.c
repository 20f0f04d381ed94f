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
#include <stdlib.h>
#include <string.h>

static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const sdb_kernels *chosen;

static const sdb_kernels *best(void)
{
    const sdb_kernels *k;
    if ((k = sdb__kernels_avx512()) != NULL) return k;
    if ((k = sdb__kernels_avx2()) != NULL) return k;
    return &sdb__kernels_scalar;
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
