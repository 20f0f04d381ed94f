/* bench_query — scoredb's side of the query benchmark.
 *
 * In-process mode links libscoredb.a and times sdb_query_json() on an open
 * store: the fold of whatever the ingest left pending is timed once, then
 * every query of queries.json gets one warm-up run and RUNS timed warm runs
 * (median reported). The kernel table is the one the library picks, or the
 * one SDB_KERNELS names; the table actually in use is reported, so that a
 * forced table the CPU lacks is not mistaken for it.
 *
 * CLI mode times the whole `scoredb query --db DIR JSON` command (process
 * start, store open, query, JSON out) from spawn to exit, the way a script
 * or a cron job would call it.
 *
 * Both modes write the last answer of each query into the output JSON for
 * report.mjs to cross-check against the peers.
 *
 * Usage: bench_query --db DIR --queries F --runs N --out F [--cli SCOREDB]
 *        bench_query --which        (prints the kernel table picked)
 * SDB_BENCH_CPU=1 times in-process queries by the thread's CPU time (for
 * comparing two builds on a loaded machine; see now_ms).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scoredb.h"

extern char **environ;

static double now_ms(void)
{
    /* SDB_BENCH_CPU=1: the thread's CPU time instead of the wall clock, so
     * that two builds compared on a loaded machine are not timed by the
     * scheduler (in-process mode only; not comparable with DuckDB's
     * wall times, which use two threads). */
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("SDB_BENCH_CPU") && atoi(getenv("SDB_BENCH_CPU")) > 0;
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, int n)
{
    qsort(xs, (size_t)n, sizeof *xs, cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

/* The answer text as JSON (new reference); unparsable text is kept as a
 * string so that the report shows it. */
static json_t *answer_json(const char *text)
{
    json_error_t jerr;
    json_t *a = json_loads(text, 0, &jerr);
    return a ? a : json_string(text);
}

/* Read a whole small file into a new NUL-terminated buffer (caller frees). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* One run of the command line; returns wall ms, or -1 when it failed. */
static double run_cli(const char *scoredb, const char *db, const char *query,
                      const char *outfile)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {(char *)scoredb, "query", "--db", (char *)db, (char *)query, NULL};
    pid_t pid;
    double t0 = now_ms();
    int rc = posix_spawn(&pid, scoredb, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    double ms = now_ms() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *qpath = NULL, *outpath = NULL, *cli = NULL;
    int runs = 7;
    if (argc == 2 && strcmp(argv[1], "--which") == 0) {
        printf("%s\n", sdb_kernels_name());
        return 0;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--db") == 0)
            db = argv[i + 1];
        else if (strcmp(argv[i], "--queries") == 0)
            qpath = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            outpath = argv[i + 1];
        else if (strcmp(argv[i], "--cli") == 0)
            cli = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
    }
    if (!db || !qpath || !outpath) {
        fprintf(stderr, "usage: bench_query --db DIR --queries F --runs N --out F [--cli SCOREDB]\n");
        return 2;
    }
    if (runs < 5)
        runs = 5;

    json_error_t jerr;
    json_t *spec = json_load_file(qpath, 0, &jerr);
    if (!spec) {
        fprintf(stderr, "bench_query: %s:%d: %s\n", qpath, jerr.line, jerr.text);
        return 1;
    }

    sdb_store *s = NULL;
    json_t *res = json_object();
    char err[512] = "";
    int rc;
    if (!cli) {
        rc = sdb_store_open(db, NULL, &s, err, sizeof err);
        if (rc != SDB_OK) {
            fprintf(stderr, "bench_query: open %s: %s (%s)\n", db, sdb_strerror(rc), err);
            return 1;
        }
        uint64_t pending = 0;
        double t0 = now_ms();
        rc = sdb_store_fold(s, sdb_now_ms(), &pending);
        double fold_ms = now_ms() - t0;
        if (rc != SDB_OK) {
            fprintf(stderr, "bench_query: fold: %s\n", sdb_strerror(rc));
            return 1;
        }
        json_object_set_new(res, "engine", json_string("scoredb"));
        json_object_set_new(res, "kernels", json_string(sdb_kernels_name()));
        json_object_set_new(res, "fold_ms", json_real(fold_ms));
        json_object_set_new(res, "pending_after_fold", json_integer((json_int_t)pending));
        json_object_set_new(res, "disk_bytes", json_integer((json_int_t)sdb_store_disk_bytes(s)));
        fprintf(stderr, "scoredb [%s]: fold %.1f ms, %llu pending\n", sdb_kernels_name(), fold_ms,
                (unsigned long long)pending);
    } else {
        json_object_set_new(res, "engine", json_string("scoredb-cli"));
    }
    json_object_set_new(res, "runs", json_integer(runs));

    char tmpout[4096];
    snprintf(tmpout, sizeof tmpout, "%s.answer.tmp", outpath);
    json_t *qs = json_object();
    double *times = malloc(sizeof(double) * (size_t)runs);
    size_t qi;
    json_t *q;
    int failures = 0;
    json_array_foreach(json_object_get(spec, "queries"), qi, q)
    {
        const char *id = json_string_value(json_object_get(q, "id"));
        const char *text = json_string_value(json_object_get(q, "scoredb"));
        json_t *runs_ms = json_array();
        json_t *entry = json_object();
        char *answer = NULL;
        int ok = 1;
        for (int r = -1; r < runs && ok; r++) { /* r = -1: the warm-up */
            double ms;
            if (cli) {
                ms = run_cli(cli, db, text, tmpout);
                if (ms < 0) {
                    ok = 0;
                    free(answer);
                    answer = slurp(tmpout);
                    snprintf(err, sizeof err, "scoredb query failed: %s", answer ? answer : "");
                }
            } else {
                free(answer);
                answer = NULL;
                double t0 = now_ms();
                rc = sdb_query_json(s, 0, text, strlen(text), &answer, err, sizeof err);
                ms = now_ms() - t0;
                if (rc != SDB_OK) {
                    ok = 0;
                    char e2[600];
                    snprintf(e2, sizeof e2, "%s: %s", sdb_strerror(rc), err);
                    memcpy(err, e2, sizeof err - 1);
                    err[sizeof err - 1] = '\0';
                }
            }
            if (ok && r >= 0) {
                times[r] = ms;
                json_array_append_new(runs_ms, json_real(ms));
            }
        }
        if (ok) {
            if (cli) {
                free(answer);
                answer = slurp(tmpout);
            }
            double med = median(times, runs);
            json_object_set_new(entry, "ms", json_real(med));
            json_object_set_new(entry, "runs_ms", runs_ms);
            json_object_set_new(entry, "answer", answer_json(answer ? answer : ""));
            fprintf(stderr, "%s %s: %.3f ms\n", cli ? "scoredb-cli" : "scoredb", id, med);
        } else {
            failures++;
            json_decref(runs_ms);
            json_object_set_new(entry, "error", json_string(err));
            fprintf(stderr, "%s %s: FAILED: %s\n", cli ? "scoredb-cli" : "scoredb", id, err);
        }
        free(answer);
        json_object_set_new(qs, id, entry);
    }
    free(times);
    unlink(tmpout);
    sdb_store_close(s);
    json_object_set_new(res, "queries", qs);
    if (json_dump_file(res, outpath, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "bench_query: cannot write %s\n", outpath);
        return 1;
    }
    json_decref(res);
    json_decref(spec);
    return failures ? 3 : 0;
}
