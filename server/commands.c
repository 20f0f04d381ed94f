/* The table of commands that live outside main.c, and the store's
 * maintenance commands, check and backup (docs/reliability.md). */
#include "cli.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- serve (issue 4): server/serve.c */
#include "server.h"

/* At most this many problems are printed; all are counted. */
#define CHECK_PRINT_MAX 200

/* Open a store without write access (a live server's store too); prints
 * the failure. Returns 0 or 1. */
static int open_read_only(const char *cmd, const char *db, sdb_store **out)
{
    char err[512] = "";
    sdb_options o = {.read_only = 1};
    int rc = sdb_store_open(db, &o, out, err, sizeof err);
    if (rc) fprintf(stderr, "scoredb: %s: %s\n", cmd, err[0] ? err : sdb_strerror(rc));
    return rc ? 1 : 0;
}

static int print_problem(void *ctx, const char *msg)
{
    uint64_t *n = ctx;
    if ((*n)++ < CHECK_PRINT_MAX) printf("problem: %s\n", msg);
    return 0;
}

/* scoredb check --db DIR: exit 0 clean, 1 with the problems listed. Opens
 * the store read-only: a live server's store can be checked. */
static int cmd_check(const char *db, int argc, char **argv)
{
    (void)argv;
    if (argc) return sdb_cli_usage("check takes no arguments");
    sdb_store *s;
    if (open_read_only("check", db, &s)) return 1;
    uint64_t printed = 0, problems = 0;
    char *summary = NULL;
    int rc = sdb_store_check(s, print_problem, &printed, &problems, &summary);
    sdb_store_close(s);
    if (rc) {
        fprintf(stderr, "scoredb: check failed: %s\n", sdb_strerror(rc));
        return 1;
    }
    if (problems > CHECK_PRINT_MAX)
        printf("... and %llu more\n", (unsigned long long)(problems - CHECK_PRINT_MAX));
    printf("check: %s: %s; %llu problem%s\n", db, summary, (unsigned long long)problems,
           problems == 1 ? "" : "s");
    free(summary);
    return problems ? 1 : 0;
}

/* scoredb backup --db DIR --out DIR2. */
static int cmd_backup(const char *db, int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else
            return sdb_cli_usage("backup takes --out DIR2 only");
    }
    if (!out) return sdb_cli_usage("backup: --out DIR2 is required");
    sdb_store *s;
    char err[512] = "";
    if (open_read_only("backup", db, &s)) return 1;
    int rc = sdb_store_backup(s, out, err, sizeof err);
    uint64_t bytes = sdb_store_disk_bytes(s);
    sdb_store_close(s);
    if (rc) {
        fprintf(stderr, "scoredb: backup: %s\n", err[0] ? err : sdb_strerror(rc));
        return rc == SDB_EINVAL ? 2 : 1;
    }
    printf("backup: %s -> %s (store file %llu bytes on disk)\n", db, out,
           (unsigned long long)bytes);
    return 0;
}

const sdb_cli_cmd sdb_cli_cmds[] = {
    {"serve", sdb_cmd_serve},
    {"export", sdb_cmd_export}, /* server/export.c */
    {"check", cmd_check},
    {"backup", cmd_backup},
    {NULL, NULL},
};
