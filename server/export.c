/* scoredb export: every score of a project out as NDJSON, CSV or ClickHouse
 * (API.md "Command line"; the formats are described in engine/export.c).
 *
 *   scoredb export --db DIR --format clickhouse|csv|ndjson [--out PATH]
 *                  [--project NAME]
 *
 * Output goes to stdout, or with --out to PATH. For clickhouse, --out PATH
 * writes the CREATE TABLE to PATH.sql and the JSONEachRow rows to PATH;
 * without --out the DDL comes first on stdout, then the rows. Files are
 * written under a temporary name and renamed when complete, so a failed
 * export never leaves a file that looks whole. The store is opened read
 * only and read in one snapshot; memory stays flat whatever its size.
 *
 * Exit status: 0 success; 1 the store cannot be opened or read, the project
 * does not exist, or the output cannot be written; 2 usage.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char export_usage[] =
    "usage: scoredb export --db DIR --format clickhouse|csv|ndjson [--out PATH]\n"
    "                      [--project NAME]\n"
    "  ndjson      API score objects, one per line (scoredb ingest reads it back)\n"
    "  csv         RFC 4180 with a header line\n"
    "  clickhouse  JSONEachRow rows; the CREATE TABLE goes to PATH.sql with --out,\n"
    "              else first on stdout. Load with:\n"
    "                clickhouse-client --multiquery < PATH.sql\n"
    "                clickhouse-client --query \"INSERT INTO scores FORMAT JSONEachRow\" < PATH\n";

/* This file is linked into the test binary too, so it does not use
 * main.c's helpers. */
static int usage_error(const char *msg)
{
    fprintf(stderr, "scoredb export: %s\n%s", msg, export_usage);
    return 2;
}

static int to_file(void *ctx, const void *p, size_t len)
{
    return fwrite(p, 1, len, (FILE *)ctx) == len ? 0 : -1;
}

/* An output file written as PATH.partial and renamed into place. */
typedef struct outfile {
    const char *path; /* NULL: stdout */
    char *tmp;
    FILE *f;
} outfile;

static int out_open(outfile *o, const char *path)
{
    o->path = path;
    o->tmp = NULL;
    if (!path) {
        o->f = stdout;
        return 0;
    }
    size_t n = strlen(path) + sizeof ".partial";
    o->tmp = malloc(n);
    if (!o->tmp) {
        fprintf(stderr, "scoredb export: out of memory\n");
        return 1;
    }
    snprintf(o->tmp, n, "%s.partial", path);
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        fprintf(stderr, "scoredb export: cannot write %s: %s\n", o->tmp, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return 1;
    }
    return 0;
}

/* Finish the file: keep it (ok) or remove it. Returns 0 when it was kept
 * whole, 1 (after saying why) otherwise. */
static int out_close(outfile *o, int ok)
{
    if (!o->f) return ok ? 0 : 1;
    const char *name = o->path ? o->path : "standard output";
    int werr = fflush(o->f) != 0 || ferror(o->f);
    int e = errno;
    if (o->path && fclose(o->f) != 0 && !werr) {
        werr = 1;
        e = errno;
    }
    o->f = NULL;
    if (ok && werr) fprintf(stderr, "scoredb export: cannot write %s: %s\n", name, strerror(e));
    ok = ok && !werr;
    if (o->path) {
        if (ok && rename(o->tmp, o->path) != 0) {
            fprintf(stderr, "scoredb export: cannot rename %s to %s: %s\n", o->tmp, o->path,
                    strerror(errno));
            ok = 0;
        }
        if (!ok) unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    return ok ? 0 : 1;
}

/* "--key VALUE" or "--key=VALUE" at argv[*i]; advances *i past VALUE. */
static int opt_value(int argc, char **argv, int *i, const char *key, const char **out)
{
    size_t kl = strlen(key);
    if (strncmp(argv[*i], key, kl) != 0) return 0;
    if (argv[*i][kl] == '=') {
        *out = argv[*i] + kl + 1;
        return 1;
    }
    if (argv[*i][kl] != 0) return 0;
    *out = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

int sdb_cmd_export(const char *db, int argc, char **argv)
{
    const char *format = NULL, *path = NULL, *project = NULL;
    char msg[300];
    for (int i = 0; i < argc; i++) {
        const char *v = NULL, **slot = NULL;
        if (opt_value(argc, argv, &i, "--format", &v))
            slot = &format;
        else if (opt_value(argc, argv, &i, "--out", &v))
            slot = &path;
        else if (opt_value(argc, argv, &i, "--project", &v))
            slot = &project;
        if (!slot) {
            snprintf(msg, sizeof msg, "unexpected argument %.200s", argv[i]);
            return usage_error(msg);
        }
        if (!v || !*v) {
            snprintf(msg, sizeof msg, "%.200s needs a value", argv[i]);
            return usage_error(msg);
        }
        *slot = v;
    }
    int fmt;
    if (!format) return usage_error("--format is required");
    if (sdb_export_format_parse(format, &fmt) != SDB_OK) {
        snprintf(msg, sizeof msg, "--format: expected clickhouse, csv or ndjson, got \"%.200s\"",
                 format);
        return usage_error(msg);
    }

    /* Read only: an export never creates a store, and may run beside a
     * server that is writing to it. */
    char p[4200], err[512] = "";
    struct stat st;
    snprintf(p, sizeof p, "%s/data.mdb", db);
    if (stat(p, &st) != 0) {
        fprintf(stderr, "scoredb export: no store at %s\n", db);
        return 1;
    }
    sdb_options opts;
    memset(&opts, 0, sizeof opts);
    opts.read_only = 1;
    sdb_store *s = NULL;
    int rc = sdb_store_open(db, &opts, &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "scoredb export: %s\n", err[0] ? err : sdb_strerror(rc));
        return 1;
    }
    uint32_t pid = 0;
    if (project && (rc = sdb_project_id(s, project, 0, &pid)) != SDB_OK) {
        sdb_store_close(s);
        if (rc == SDB_EINVAL) return usage_error("--project: expected a name of 1 to 200 bytes");
        if (rc == SDB_ENOTFOUND)
            fprintf(stderr, "scoredb export: no project \"%.200s\" in %s\n", project, db);
        else
            fprintf(stderr, "scoredb export: project \"%.200s\": %s\n", project,
                    sdb_strerror(rc));
        return 1;
    }

    int status = 0;
    outfile data = {0};
    if (fmt == SDB_EXPORT_CLICKHOUSE) {
        /* The DDL first: to PATH.sql, or ahead of the rows on stdout. */
        char *ddl = NULL, *sql_path = NULL;
        outfile sql = {0};
        if (sdb_export_ddl(&ddl) != SDB_OK ||
            (path && !(sql_path = malloc(strlen(path) + 5)))) {
            fprintf(stderr, "scoredb export: out of memory\n");
            status = 1;
        } else {
            if (path) sprintf(sql_path, "%s.sql", path);
            status = out_open(&sql, sql_path);
            if (!status) {
                int ok = fputs(ddl, sql.f) >= 0 && (path || fputs("\n", sql.f) >= 0);
                status = out_close(&sql, ok);
            }
        }
        free(ddl);
        free(sql_path);
    }
    uint64_t n = 0;
    if (!status && !(status = out_open(&data, path))) {
        rc = sdb_store_export(s, pid, fmt, to_file, data.f, &n);
        if (rc == SDB_EIO && ferror(data.f)) {
            fprintf(stderr, "scoredb export: cannot write %s: %s\n",
                    path ? path : "standard output", strerror(errno));
            out_close(&data, 0);
            status = 1;
        } else if (rc) {
            fprintf(stderr, "scoredb export: reading the store failed after %llu scores: %s\n",
                    (unsigned long long)n, sdb_strerror(rc));
            out_close(&data, 0);
            status = 1;
        } else {
            status = out_close(&data, 1);
        }
    }
    if (!status && path && fmt == SDB_EXPORT_CLICKHOUSE)
        fprintf(stderr, "scoredb export: %llu scores to %s, table in %s.sql\n",
                (unsigned long long)n, path, path);
    else if (!status && path)
        fprintf(stderr, "scoredb export: %llu scores to %s\n", (unsigned long long)n, path);
    sdb_store_close(s);
    return status;
}
