/* sqlite_bench — the SQLite peer of scoredb's benchmark, against libsqlite3.
 *
 * Loads the generator's CSV into a fresh SQLite file with one prepared INSERT
 * in one transaction (values parsed with strtod and bound as doubles, so
 * SQLite sees the very doubles the other engines see), builds the index on
 * (name, ts) and runs ANALYZE (timed separately), then runs each query of
 * queries.json: one warm-up run, then the median of RUNS warm runs. The
 * last run's rows go into the output JSON for report.mjs to cross-check.
 *
 * Settings are the ones a user would pick for an analytics file: no journal
 * and no fsync during the bulk load, a 1 GiB page cache and memory-mapped
 * reads, so that warm runs do not pay for read() system calls.
 *
 * Usage: sqlite_bench --csv F --db F --queries F --runs N --out F
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_COLS 10

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die_db(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_bench: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "sqlite_bench: %s: %s\n", sql, msg ? msg : "?");
        exit(1);
    }
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

/* Load the CSV (header line, then unquoted comma-separated fields). */
static long long load_csv(sqlite3 *db, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO scores VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                           -1, &ins, NULL) != SQLITE_OK)
        die_db(db, "prepare insert");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long n = 0;
    exec(db, "BEGIN");
    if (getline(&line, &cap, f) < 0) {
        fprintf(stderr, "sqlite_bench: %s: empty file\n", path);
        exit(1);
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        char *field[N_COLS];
        int nf = 0;
        char *p = line;
        field[nf++] = p;
        /* The first N_COLS columns; the generator's later ones (tags and
         * properties, which the seven queries do not read) are cut off. */
        for (; *p; p++) {
            if (*p == ',') {
                *p = '\0';
                if (nf == N_COLS)
                    break;
                field[nf++] = p + 1;
            }
        }
        if (nf != N_COLS) {
            fprintf(stderr, "sqlite_bench: %s: line %lld has %d fields\n", path, n + 2, nf);
            exit(1);
        }
        for (int c = 0; c < N_COLS; c++) {
            int rc;
            if (field[c][0] == '\0')
                rc = sqlite3_bind_null(ins, c + 1);
            else if (c == 1)
                rc = sqlite3_bind_double(ins, c + 1, strtod(field[c], NULL));
            else if (c == 4)
                rc = sqlite3_bind_int64(ins, c + 1, strtoll(field[c], NULL, 10));
            else
                rc = sqlite3_bind_text(ins, c + 1, field[c], -1, SQLITE_STATIC);
            if (rc != SQLITE_OK)
                die_db(db, "bind");
        }
        if (sqlite3_step(ins) != SQLITE_DONE)
            die_db(db, "insert");
        sqlite3_reset(ins);
        n++;
    }
    exec(db, "COMMIT");
    sqlite3_finalize(ins);
    free(line);
    fclose(f);
    return n;
}

/* Run a prepared query to completion; with `rows` set, collect its rows as
 * JSON objects keyed by column name (a new reference appended to rows). */
static void run_query(sqlite3 *db, sqlite3_stmt *st, json_t *rows)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!rows)
            continue;
        json_t *row = json_object();
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            json_t *v;
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                v = json_integer(sqlite3_column_int64(st, c));
                break;
            case SQLITE_FLOAT:
                v = json_real(sqlite3_column_double(st, c));
                break;
            case SQLITE_TEXT:
                v = json_string((const char *)sqlite3_column_text(st, c));
                break;
            default:
                v = json_null();
            }
            json_object_set_new(row, sqlite3_column_name(st, c), v);
        }
        json_array_append_new(rows, row);
    }
    if (rc != SQLITE_DONE)
        die_db(db, "query");
    sqlite3_reset(st);
}

int main(int argc, char **argv)
{
    const char *csv = NULL, *dbpath = NULL, *qpath = NULL, *outpath = NULL;
    int runs = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--csv") == 0)
            csv = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0)
            dbpath = argv[i + 1];
        else if (strcmp(argv[i], "--queries") == 0)
            qpath = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            outpath = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
    }
    if (!csv || !dbpath || !qpath || !outpath) {
        fprintf(stderr, "usage: sqlite_bench --csv F --db F --queries F --runs N --out F\n");
        return 2;
    }
    if (runs < 5)
        runs = 5;

    json_error_t jerr;
    json_t *spec = json_load_file(qpath, 0, &jerr);
    if (!spec) {
        fprintf(stderr, "sqlite_bench: %s:%d: %s\n", qpath, jerr.line, jerr.text);
        return 1;
    }

    if (unlink(dbpath) != 0 && errno != ENOENT) {
        perror(dbpath);
        return 1;
    }
    sqlite3 *db;
    if (sqlite3_open(dbpath, &db) != SQLITE_OK)
        die_db(db, dbpath);
    exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
             "PRAGMA cache_size = -1048576; PRAGMA mmap_size = 17179869184;"
             "PRAGMA temp_store = MEMORY;");
    exec(db, "CREATE TABLE scores (name TEXT NOT NULL, value REAL, label TEXT,"
             " data_type TEXT NOT NULL, ts INTEGER NOT NULL, source TEXT,"
             " environment TEXT, model TEXT, prompt_version TEXT, trace_id TEXT)");

    double t0 = now_ms();
    long long n_rows = load_csv(db, csv);
    double load_ms = now_ms() - t0;
    t0 = now_ms();
    exec(db, "CREATE INDEX scores_name_ts ON scores (name, ts); ANALYZE;");
    double index_ms = now_ms() - t0;
    struct stat sb;
    long long file_bytes = stat(dbpath, &sb) == 0 ? (long long)sb.st_size : -1;
    fprintf(stderr, "sqlite %s: loaded %lld rows in %.2f s + index %.2f s (%.0f rows/s), %.1f bytes/score\n",
            sqlite3_libversion(), n_rows, load_ms / 1e3, index_ms / 1e3,
            (double)n_rows / (load_ms + index_ms) * 1e3, (double)file_bytes / (double)n_rows);

    json_t *qs = json_object();
    double *times = malloc(sizeof(double) * (size_t)runs);
    size_t qi;
    json_t *q;
    json_array_foreach(json_object_get(spec, "queries"), qi, q)
    {
        const char *id = json_string_value(json_object_get(q, "id"));
        const char *sql = json_string_value(json_object_get(q, "sql_sqlite"));
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
            die_db(db, id);
        run_query(db, st, NULL); /* warm-up */
        json_t *rows = NULL;
        json_t *runs_ms = json_array();
        for (int r = 0; r < runs; r++) {
            json_decref(rows);
            rows = json_array();
            t0 = now_ms();
            run_query(db, st, rows);
            times[r] = now_ms() - t0;
            json_array_append_new(runs_ms, json_real(times[r]));
        }
        sqlite3_finalize(st);
        double med = median(times, runs);
        fprintf(stderr, "sqlite %s: %.2f ms\n", id, med);
        json_object_set_new(qs, id, json_pack("{s:f, s:o, s:o}", "ms", med, "runs_ms", runs_ms, "rows", rows));
    }
    free(times);
    sqlite3_close(db);

    json_t *res = json_pack("{s:s, s:s, s:I, s:f, s:f, s:I, s:i, s:o}", "engine", "sqlite", "version",
                            sqlite3_libversion(), "rows", (json_int_t)n_rows, "load_ms", load_ms,
                            "index_ms", index_ms, "file_bytes", (json_int_t)file_bytes, "runs", runs,
                            "queries", qs);
    if (json_dump_file(res, outpath, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "sqlite_bench: cannot write %s\n", outpath);
        return 1;
    }
    json_decref(res);
    json_decref(spec);
    return 0;
}
