/* bench_get — GET of one score by its client id, in process.
 *
 * The row store keeps records in zstd blocks, so a GET costs a probe of
 * the id index's runs plus the decompression of one block; issue 9 holds
 * it under 100 us. This takes the ids of an NDJSON file that was ingested
 * into DIR (the "id" field of every line), draws K of them at random
 * (a fixed seed: the same ids on every build), times sdb_score_get_json
 * for each in turn (cold for its block, as a detail view is), and prints
 * one JSON line: count, median, p90, p99 and max in microseconds. Every
 * GET must succeed; one that does not is a failure (exit 1).
 *
 * Usage: bench_get --db DIR --ids FILE [-k 20000]
 */
#include "scoredb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *file = NULL;
    long k = 20000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) k = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_get --db DIR --ids FILE [-k 20000]\n");
            return 2;
        }
    }
    if (!db || !file || k <= 0) {
        fprintf(stderr, "usage: bench_get --db DIR --ids FILE [-k 20000]\n");
        return 2;
    }
    FILE *f = fopen(file, "r");
    if (!f) {
        perror(file);
        return 1;
    }
    /* Reservoir sample of k ids (xorshift, fixed seed). */
    char (*ids)[64] = calloc((size_t)k, sizeof *ids);
    double *us = malloc(sizeof *us * (size_t)k);
    if (!ids || !us) return 1;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    long seen = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"id\":\"");
        if (!p) continue;
        p += 6;
        const char *e = strchr(p, '"');
        if (!e || e - p >= 64) continue;
        long slot = seen < k ? seen : -1;
        if (slot < 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t r = x % (uint64_t)(seen + 1);
            if (r < (uint64_t)k) slot = (long)r;
        }
        if (slot >= 0) {
            memcpy(ids[slot], p, (size_t)(e - p));
            ids[slot][e - p] = 0;
        }
        seen++;
    }
    fclose(f);
    long n = seen < k ? seen : k;
    if (n == 0) {
        fprintf(stderr, "bench_get: no ids in %s\n", file);
        return 1;
    }
    char err[512] = "";
    sdb_options o = {.read_only = 1};
    sdb_store *s;
    if (sdb_store_open(db, &o, &s, err, sizeof err)) {
        fprintf(stderr, "bench_get: %s\n", err);
        return 1;
    }
    int bad = 0;
    for (long i = 0; i < n; i++) {
        char *out = NULL;
        double t0 = now_us();
        int rc = sdb_score_get_json(s, 0, ids[i], &out);
        us[i] = now_us() - t0;
        if (rc != SDB_OK || !strstr(out, ids[i])) {
            fprintf(stderr, "bench_get: GET %s: %s\n", ids[i], sdb_strerror(rc));
            bad = 1;
        }
        free(out);
    }
    sdb_store_close(s);
    qsort(us, (size_t)n, sizeof *us, cmp);
    printf("{\"gets\":%ld,\"of_ids\":%ld,\"median_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"max_us\":%.1f,\"ok\":%s}\n",
           n, seen, us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[n - 1], bad ? "false" : "true");
    free(ids);
    free(us);
    return bad;
}
