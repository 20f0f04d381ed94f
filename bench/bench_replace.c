/* bench_replace — replacement and delete by id in a full day.
 *
 * Ingests N scores of one name into one day (client ids r0..rN-1, in
 * batches of 20,000, then folded: they sit in ~N/8192 chunks), then
 * re-sends R of the stored ids in one batch (an SDK retrying) and times
 * that ingest, then deletes R others one by one and times each. Prints one
 * JSON line. The replaced and deleted scores must leave every aggregate:
 * the final count and sum are checked against the arithmetic.
 *
 * Usage: bench_replace --db DIR [-n 200000] [-r 5000] [-d deletes, default r]
 */
#include "scoredb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define DAY0 1767225600000ll

static void add(sdb_batch *b, long i, int value)
{
    char json[256], err[256];
    int n = snprintf(json, sizeof json,
                     "{\"id\":\"r%ld\",\"name\":\"day\",\"value\":%d,\"trace_id\":\"t%ld\","
                     "\"model\":\"m%ld\",\"timestamp\":%lld}",
                     i, value, i % 9973, i % 8, DAY0 + i * 400);
    if (sdb_batch_add_json(b, json, (size_t)n, err, sizeof err)) {
        fprintf(stderr, "bench_replace: %s\n", err);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *db = NULL;
    long n = 200000, r = 5000, d = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!strcmp(argv[i], "-n")) n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) r = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) d = atol(argv[i + 1]);
    }
    if (!db || n < 2 * r || r < 1 || n * 400 > 86400000) {
        fprintf(stderr, "usage: bench_replace --db DIR [-n 200000] [-r 5000] (n >= 2r, one day)\n");
        return 2;
    }
    sdb_store *s;
    char err[512];
    sdb_options o = {0};
    if (sdb_store_open(db, &o, &s, err, sizeof err)) {
        fprintf(stderr, "bench_replace: %s\n", err);
        return 1;
    }
    sdb_batch *b;
    sdb_batch_new(&b);
    for (long i = 0; i < n; i++) {
        add(b, i, 1);
        if (sdb_batch_rows(b) == 20000 || i == n - 1) {
            if (sdb_store_ingest(s, 0, b, sdb_now_ms())) return 1;
            sdb_batch_clear(b);
        }
    }
    if (sdb_store_fold(s, sdb_now_ms(), NULL)) return 1;
    /* Re-send r stored ids (every (n/r)-th) with value 3, in one batch. */
    for (long k = 0; k < r; k++) add(b, k * (n / r), 3);
    double t0 = now_ms();
    if (sdb_store_ingest(s, 0, b, sdb_now_ms())) return 1;
    double replace_ms = now_ms() - t0;
    sdb_batch_clear(b);
    /* Delete d others, one write each. */
    if (d < 0 || d > r) d = r;
    double *del = malloc(sizeof *del * (size_t)(d ? d : 1));
    del[0] = 0;
    for (long k = 0; k < d; k++) {
        char id[32];
        snprintf(id, sizeof id, "r%ld", k * (n / r) + 1);
        double t1 = now_ms();
        if (sdb_score_delete(s, 0, id)) return 1;
        del[k] = now_ms() - t1;
    }
    double del_total = 0;
    for (long k = 0; k < d; k++) del_total += del[k];
    qsort(del, (size_t)d, sizeof *del, cmp);
    double t2 = now_ms();
    if (sdb_store_fold(s, sdb_now_ms(), NULL)) return 1;
    double fold_ms = now_ms() - t2;
    char *out = NULL;
    const char *q = "{\"name\":\"day\",\"stats\":[\"count\",\"sum\"]}";
    if (sdb_query_json(s, 0, q, strlen(q), &out, err, sizeof err)) return 1;
    long want_n = n - d;
    double want_sum = (double)(n - r - d) + 3.0 * (double)r;
    const char *c = strstr(out, "\"count\":"), *m = strstr(out, "\"sum\":");
    int ok = c && m && atol(c + 8) == want_n && strtod(m + 6, NULL) == want_sum;
    printf("{\"stored\":%ld,\"replaced\":%ld,\"replace_ms\":%.2f,\"deleted\":%ld,"
           "\"delete_ms_total\":%.2f,\"delete_ms_median\":%.4f,\"delete_ms_max\":%.3f,"
           "\"fold_after_ms\":%.2f,\"exact\":%s}\n",
           n, r, replace_ms, d, del_total, del[d / 2], del[d ? d - 1 : 0], fold_ms,
           ok ? "true" : "false");
    if (!ok) fprintf(stderr, "bench_replace: wrong aggregate: %s\n", out);
    free(out);
    free(del);
    sdb_batch_free(b);
    sdb_store_close(s);
    return ok ? 0 : 1;
}
