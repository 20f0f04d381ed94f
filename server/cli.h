/* Shared by the command-line tool's files: each command beyond ingest,
 * query and names registers in sdb_cli_cmds (server/commands.c). */
#ifndef SDB_CLI_H
#define SDB_CLI_H

#include "scoredb.h"

typedef struct sdb_cli_cmd {
    const char *name;
    /* argv holds the arguments after the command, --db already taken out. */
    int (*run)(const char *db, int argc, char **argv);
} sdb_cli_cmd;

extern const sdb_cli_cmd sdb_cli_cmds[]; /* ends with {NULL, NULL} */

/* Print a usage error (msg may be NULL) and the usage; returns 2. */
int sdb_cli_usage(const char *msg);
/* Open the store at db; prints the error and returns 1 on failure. */
int sdb_cli_open(const char *db, int must_exist, sdb_store **out);

/* scoredb export (server/export.c). */
int sdb_cmd_export(const char *db, int argc, char **argv);

#endif
