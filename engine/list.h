/* Row-store reads shared by list.c (list, get, delete, trace search) and
 * http_json.c (request bodies parsed with jansson). Private to engine/. */
#ifndef SDB_LIST_H
#define SDB_LIST_H

#include "query.h"

/* Trace search over the row store: the trace ids of scores matching the
 * filters of q (names, time range, where), ordered by trace id, `limit`
 * per page, starting after trace id `after` (NULL: the first page).
 * *out_json: {"data":[{"trace_id","count","first","last"}],"next_cursor"}
 * (caller frees). */
int sdb__traces_search(sdb_store *s, uint32_t project, const sdb__query *q, uint32_t limit,
                       const char *after, char **out_json);

#endif
