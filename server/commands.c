/* The table of commands that live outside main.c. */
#include "cli.h"

#include <stddef.h>

/* ---- serve (issue 4): server/serve.c */
#include "server.h"

const sdb_cli_cmd sdb_cli_cmds[] = {
    {"serve", sdb_cmd_serve},
    {"export", sdb_cmd_export}, /* server/export.c */
    {NULL, NULL},
};
