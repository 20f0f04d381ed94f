/* The table of commands that live outside main.c. */
#include "cli.h"

#include <stddef.h>

const sdb_cli_cmd sdb_cli_cmds[] = {
    {NULL, NULL},
};
