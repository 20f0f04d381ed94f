/* Row-store reads shared by list.c (list, get, delete, trace search) and
 * http_json.c (request bodies parsed with jansson). Private to engine/. */
#ifndef SDB_LIST_H
#define SDB_LIST_H

#include "query.h"

/* Rows one list call walks at most (2M; tests set it small). */
extern uint32_t sdb__list_scan_max;
/* Folded rows read in the row store before the column path (256). */
extern uint32_t sdb__list_probe_rows;

/* Render one row record as API.md's score object (JSON text appended to
 * b), resolving dictionary ids in txn t; the row's strings are borrowed
 * from t. With SDB__RENDER_CREATED_AT the object also carries
 * `created_at`, the ingest time (list and get show it; it is not an
 * ingest field, so the NDJSON export leaves it out to stay re-ingestible).
 * Buffer growth failures are sticky in b (see sdb__j_raw). Returns SDB_OK,
 * or SDB_ECORRUPT when a dictionary id or enum is unknown. */
enum { SDB__RENDER_CREATED_AT = 1u << 0 };
int sdb__row_render(sdb__buf *b, sdb__txn *t, uint32_t project, const sdb__row *r,
                    unsigned flags);
/* The renderer's pieces: tags as a JSON array, properties as a JSON
 * object (export.c writes them into CSV cells and ClickHouse rows). */
void sdb__row_tags_json(sdb__buf *b, const sdb__row *r);
void sdb__row_props_json(sdb__buf *b, const sdb__row *r);

/* Trace search: the trace ids of scores matching the
 * filters of q (names, time range, where), ordered by trace id, `limit`
 * per page, starting after trace id `after` (NULL: the first page).
 * *out_json: {"data":[{"trace_id","count","first","last"}],"next_cursor"}
 * (caller frees). The matches are read as a list reads them (engine/list.c),
 * within its bounds: a search that would read more is SDB_EINVAL with err
 * saying so (an answer in trace id order needs every match). */
int sdb__traces_search(sdb_store *s, uint32_t project, const sdb__query *q, uint32_t limit,
                       const char *after, char **out_json, char *err, size_t errlen);

#endif
