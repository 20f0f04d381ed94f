/* scoredb — a columnar time-series engine for evaluation scores.
 *
 * This is the one public header. Every function that can fail returns an
 * int: SDB_OK (0) or a negative SDB_E* code; results come back through
 * out-parameters. Handles are opaque. Strings passed in are borrowed for the
 * duration of the call unless a comment says otherwise.
 *
 * Threads: an sdb_store handle may be shared by any number of threads. Write
 * transactions are serialised inside the store; reads run concurrently.
 * An sdb_batch belongs to one thread at a time.
 */
#ifndef SCOREDB_H
#define SCOREDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* X-macro: code, value, message. Written once; makes the enum and
 * sdb_strerror(). */
#define SDB_ERRORS(X)                                                         \
    X(SDB_OK, 0, "success")                                                   \
    X(SDB_EINVAL, -1, "invalid argument")                                     \
    X(SDB_ENOMEM, -2, "out of memory")                                        \
    X(SDB_EIO, -3, "input/output error")                                      \
    X(SDB_ECORRUPT, -4, "store is corrupt")                                   \
    X(SDB_ENOTFOUND, -5, "not found")                                         \
    X(SDB_EFULL, -6, "store is full")                                         \
    X(SDB_EBUSY, -7, "store is busy")                                         \
    X(SDB_EVERSION, -8, "store format version is not supported")              \
    X(SDB_ELIMIT, -9, "a limit was exceeded")                                 \
    X(SDB_ENOSPC, -10, "no space left on device")

enum sdb_error {
#define SDB__ENUM(code, val, msg) code = val,
    SDB_ERRORS(SDB__ENUM)
#undef SDB__ENUM
};

/* A static English message for `code`; never NULL. */
const char *sdb_strerror(int code);

/* ------------------------------------------------------------- the store */

typedef struct sdb_store sdb_store;

/* Options the caller fills; zero means "the default" for every field. */
typedef struct sdb_options {
    uint64_t map_size;     /* initial LMDB map size in bytes; grows on demand (64 MiB) */
    int64_t bucket_ms;     /* time-bucket width of a segment key (86400000: one day);
                              fixed when the store is created */
    uint32_t chunk_rows;   /* rows per sealed column chunk (8192); fixed at creation */
    int read_only;         /* open without write access */
    int no_sync;           /* skip fsync on commit (benchmarks of the engine only;
                              an acknowledged score may be lost on power failure) */
    int deferred_sync;     /* a commit flushes its data but not the store's meta page
                              (LMDB MDB_NOMETASYNC): the store stays consistent, but a
                              crash may undo commits since the last sdb_store_sync().
                              For bulk loads that acknowledge once, at the end, after
                              calling sdb_store_sync() */
    int fallback_read_only; /* when the disk refuses the writes of a writable open
                              (no space, I/O error), open read-only instead: reads
                              work, writes return the refusal (SDB_ENOSPC or
                              SDB_EIO), sdb_store_health() says why and
                              sdb_store_probe() makes the store writable again */
    /* What one query may cost (docs/query-engine.md); 0 = the default.
     * A query whose plan exceeds a product or the answer size is refused
     * (SDB_EINVAL, err names the product and the limit) before any work;
     * one that runs past the memory cap stops with SDB_EINVAL, past the
     * time cap with SDB_EBUSY. */
    uint64_t query_max_cells;        /* groups x series points, x histogram bins,
                                        x category labels (4,000,000) */
    uint64_t query_max_answer_bytes; /* estimated answer size (64 MiB) */
    uint64_t query_max_mem_bytes;    /* accumulators while running (1 GiB) */
    int64_t query_max_ms;            /* wall time of one query (10000 ms) */
} sdb_options;

/* Open the store in directory `path`, creating it (and the directory) when
 * absent. On success *out is a new handle owned by the caller; release it
 * with sdb_store_close(). On failure *out is NULL and, when `err` is not
 * NULL, a message naming the cause is written to err (errlen bytes).
 * One handle per process; threads may share it.
 * Returns SDB_OK, SDB_EIO, SDB_ENOSPC (the disk is full: a new store
 * cannot be created), SDB_ECORRUPT, SDB_EVERSION or SDB_ENOMEM. */
int sdb_store_open(const char *path, const sdb_options *opts, sdb_store **out,
                   char *err, size_t errlen);

/* Make every commit so far durable (fsync of data and meta). Needed only
 * with sdb_options.deferred_sync; otherwise every commit already is.
 * Any thread. Returns SDB_OK or SDB_EIO. */
int sdb_store_sync(sdb_store *s);

/* Close the store. Takes NULL. No other call on the handle may be running. */
void sdb_store_close(sdb_store *s);

/* Bytes the store occupies on disk (the LMDB data file). */
uint64_t sdb_store_disk_bytes(sdb_store *s);

/* Whether the store takes writes (docs/reliability.md). SDB_OK when the
 * last write committed (or none was tried); else the code of the last
 * write that the disk refused, SDB_ENOSPC or SDB_EIO, until a write
 * commits again. When `msg` is not NULL it gets a sentence naming the
 * store's directory and, for SDB_ENOSPC, the bytes its file system has
 * free ("" when healthy). Never blocks on a write; any thread. */
int sdb_store_health(sdb_store *s, char *msg, size_t msglen);

/* Try the disk again after a refused write: a store opened read-only by
 * fallback_read_only is reopened for writes, then one small durable write
 * transaction is committed. Returns SDB_OK when the store takes writes
 * again (sdb_store_health() then says so), else the refusal. Costs an
 * fsync; call it periodically, not per request. Any thread. */
int sdb_store_probe(sdb_store *s);

/* The store's directory, borrowed until sdb_store_close(). */
const char *sdb_store_path(const sdb_store *s);

/* Copy the store into directory `out_dir` (created when absent; must hold
 * no store) as a compacted LMDB file (free pages left out) from one read
 * transaction: a consistent snapshot of a store that other threads or
 * processes keep writing. Returns SDB_OK, SDB_EINVAL (out_dir holds a
 * store), SDB_ENOSPC or SDB_EIO; err says which path failed. */
int sdb_store_backup(sdb_store *s, const char *out_dir, char *err, size_t errlen);

/* Verify the store against itself (docs/reliability.md "check"): every
 * segment opens, its header (counts, ranges, sums, moments) and its
 * pre-aggregates equal a rescan of its rows; every segment row is the row
 * record of its ref, at or before its project's fold mark, in exactly one
 * segment; every folded row record is in a segment; pending counts match
 * the unfolded rows; every `ids` entry resolves to a row with that id.
 * Each problem found is passed to on_problem (a sentence naming the key);
 * a non-zero return from it stops the check. *out_problems counts them,
 * *out_summary (may be NULL) gets "N segments, M rows, K ids" (owned,
 * free()). Reads one snapshot. Returns SDB_OK (also when problems were
 * found), SDB_ENOMEM or SDB_EIO. */
int sdb_store_check(sdb_store *s, int (*on_problem)(void *ctx, const char *msg), void *ctx,
                    uint64_t *out_problems, char **out_summary);

/* Where the bytes are: a JSON object with the page size, the pages in use
 * (every database plus LMDB's free list), the data file's size, the pages
 * on LMDB's free list (free_pages, free_bytes: reusable, returned to the
 * file system only by sdb_store_compact), fill (the share of used pages
 * not free), the id index's entries and runs, and per database (segments,
 * rows, ids, dict, dictrev, meta, preagg, dead) its entries, its pages and
 * their bytes, the bytes of its keys and values and the fill of its leaf
 * and overflow pages by them. It reads every entry (about a second per 30M
 * scores). On success *out_json is owned by the caller (free()). Any
 * thread. Returns SDB_OK, SDB_EIO or SDB_ENOMEM. */
int sdb_store_stats_json(sdb_store *s, char **out_json);

/* Give a store's free pages back to the file system: a compacting copy
 * (LMDB's mdb_env_copy2 with MDB_CP_COMPACT) into a sibling directory,
 * synced, then swapped with `path` in one rename (renameat2
 * RENAME_EXCHANGE); the old files are then removed. The store must not be
 * open anywhere: every sdb_store_open holds a shared flock on
 * path/scoredb.lock, and compact takes it exclusively, so it fails with
 * SDB_EBUSY while another process (a server) has the store open, and
 * opens fail with SDB_EBUSY while it runs. *out_before and *out_after are
 * the data file's bytes on disk. Returns SDB_OK, SDB_ENOTFOUND (no store
 * at path), SDB_EBUSY, SDB_EIO, SDB_EVERSION or SDB_ENOMEM; err says why. */
int sdb_store_compact(const char *path, uint64_t *out_before, uint64_t *out_after, char *err,
                      size_t errlen);

/* The project id for `name` (e.g. "default"), created when `create` is set.
 * Project 0 is always "default". Returns SDB_OK or SDB_ENOTFOUND. */
int sdb_project_id(sdb_store *s, const char *name, int create, uint32_t *out_id);

/* ---------------------------------------------------------------- ingest */

typedef struct sdb_batch sdb_batch;

/* A new empty batch, owned by the caller (sdb_batch_free()). */
int sdb_batch_new(sdb_batch **out);
void sdb_batch_free(sdb_batch *b);
/* Forget every row so the batch can be reused. */
void sdb_batch_clear(sdb_batch *b);

/* Parse and validate one score object (API.md "Score object") given as
 * JSON text of `len` bytes. A valid score is appended to the batch and
 * SDB_OK returned; an invalid one leaves the batch unchanged, returns
 * SDB_EINVAL and writes a message naming the field and value into err. */
int sdb_batch_add_json(sdb_batch *b, const char *json, size_t len, char *err,
                       size_t errlen);

/* Rows currently in the batch. */
size_t sdb_batch_rows(const sdb_batch *b);

/* The score id of row i (the client's or a generated one), borrowed until
 * the batch is cleared or freed. */
const char *sdb_batch_id(const sdb_batch *b, size_t i);

/* Store every row of the batch in project `project` in one durable write
 * transaction: committed before this returns SDB_OK (the acknowledgement).
 * `now_ms` is the ingest time (scores without a timestamp get it). Rows
 * whose id already exists replace the old score everywhere.
 * A full map is grown and the batch retried; it is never dropped. The map
 * never grows past what the file system can hold (its free space plus
 * the file); past that the batch is refused with SDB_ENOSPC, as it is when
 * the disk refuses a write. Returns SDB_OK, SDB_EIO (the disk failed a
 * write), SDB_ENOSPC (no space left on the store's disk), SDB_ENOMEM or
 * SDB_EFULL (the map reached its hard cap). On failure nothing of the
 * batch is stored. */
int sdb_store_ingest(sdb_store *s, uint32_t project, sdb_batch *b, int64_t now_ms);

/* ----------------------------------------------------- aggregation delay */

/* Fold every acknowledged score ingested at or before `watermark_ms` into
 * the column segments analytics read, and record the watermark. Folding is
 * idempotent and monotonic: a lower watermark than the recorded one is a
 * no-op. *out_pending (may be NULL) gets the number of scores still
 * waiting. Returns SDB_OK, SDB_EIO, SDB_ENOSPC or SDB_ENOMEM; a failed fold
 * leaves the segments as the last one left them (analytics keep reading
 * them) and is retried whole by the next call. */
int sdb_store_fold(sdb_store *s, int64_t watermark_ms, uint64_t *out_pending);

/* The recorded watermark and pending count (a read; no folding). */
int sdb_store_watermark(sdb_store *s, int64_t *out_watermark_ms,
                        uint64_t *out_pending);

/* --------------------------------------------------------------- queries */

/* Run the query object of API.md (JSON text) over project `project` and
 * return the answer as JSON text in *out_json, owned by the caller (free()).
 * Analytics read what has been folded (see sdb_store_fold). On SDB_EINVAL
 * err names the field and value that were wrong, or the cost product and
 * the limit it exceeds (sdb_options.query_max_*); SDB_EBUSY: the query ran
 * past query_max_ms (err says so). */
int sdb_query_json(sdb_store *s, uint32_t project, const char *query,
                   size_t len, char **out_json, char *err, size_t errlen);

/* Score names with type, counts and time range, as API.md's
 * GET /v1/names: a JSON array in *out_json (caller frees). */
int sdb_names_json(sdb_store *s, uint32_t project, char **out_json);

/* ------------------------------------------------------------ time utils */

/* Parse an RFC 3339 time ("2026-01-31T07:05:32.780Z", offsets allowed)
 * into epoch milliseconds. Returns SDB_OK or SDB_EINVAL. */
int sdb_time_parse(const char *text, size_t len, int64_t *out_ms);

/* Format epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 32 bytes). */
void sdb_time_format(int64_t ms, char *buf);

/* Parse a duration "10m", "0", "1h30m", "500ms", "2d" into ms. */
int sdb_duration_parse(const char *text, int64_t *out_ms);

/* Write `s` (len bytes) as a quoted, escaped JSON string into *out, a
 * growing malloc'd buffer of *out_len bytes used (appends; NUL-terminated).
 * Returns SDB_OK or SDB_ENOMEM. */
int sdb_json_quote(const char *s, size_t len, char **out, size_t *out_len);

/* Wall-clock now in epoch ms. */
int64_t sdb_now_ms(void);

/* The name of the kernel table in use: "scalar", "avx2" or "avx512". */
const char *sdb_kernels_name(void);

/* The engine sets glibc malloc's mmap and trim thresholds once, on its
 * first query, so that a query's freed scratch is reused by the next one
 * instead of being returned and faulted in afresh (docs/query-engine.md,
 * "Memory between queries"). A host that sets its own policy (the server,
 * the ingest command) calls this before its first query, and the engine
 * leaves the thresholds alone. */
void sdb_malloc_policy_is_hosts(void);


/* ------------------------------------------- query server support (issue 4)
 * Functions the HTTP server (server/serve.c) needs beyond the CLI's. */

/* Store several batches, each in its own project (projects[i] for b[i]),
 * in ONE durable write transaction: the server's group commit. Same
 * contract as sdb_store_ingest otherwise; NULL or empty batches are
 * skipped. Returns SDB_OK, SDB_EIO, SDB_ENOMEM or SDB_EFULL; on failure no
 * batch was stored. */
int sdb_store_ingest_many(sdb_store *s, const uint32_t *projects, sdb_batch *const *b,
                          size_t n, int64_t now_ms);

/* Parse an HTTP ingest body of `len` bytes into batch b: a JSON array of
 * score objects or {"scores": [...]} (is_ndjson 0), or one score object
 * per line (is_ndjson 1; blank lines skipped). Valid scores are appended
 * to b; each invalid one adds {"index": i, ("line": L,) "error": "..."} to
 * *out_errors, a JSON array's elements without brackets ("" when none),
 * owned by the caller (free()). *out_items counts the items seen.
 * Returns SDB_OK; SDB_EINVAL when the body is not one of the shapes;
 * SDB_ELIMIT past max_items scores (err says so); SDB_ENOMEM. On failure
 * *out_errors is NULL and b may hold some of the rows (clear it). */
int sdb_batch_add_body(sdb_batch *b, const char *body, size_t len, int is_ndjson,
                       size_t max_items, size_t *out_items, size_t *out_n_errors,
                       char **out_errors, char *err, size_t errlen);

/* One URL query parameter, both strings borrowed. */
typedef struct sdb_param {
    const char *key;
    const char *value; /* NULL is read as "" */
} sdb_param;

/* GET /v1/scores: scores of `project`, newest ingested first, filtered by
 * the parameters of API.md (name, trace_id, session_id, source, data_type,
 * from, to, value_gte, value_lte, dimension names; name and dimensions may
 * repeat: any of) and those docs/compat.md adds for the compatible lists
 * (value_gt, value_lt, value_eq, value_ne, observation_id, id, config_id,
 * dataset_run_id, tag, properties.KEY, has_trace), `limit` (1-1000,
 * default 100), `cursor`
 * (a next_cursor) or `offset` (matches skipped), `total=true` (adds
 * "total" and "total_exact") and `pending=true` (only scores not yet
 * folded). Reads every acknowledged score (no aggregation delay); walks
 * are bounded (docs/compat.md), and a bounded page carries next_cursor.
 * *out_json {"data":[score...],"next_cursor":"..."|null} is owned by the
 * caller (free()). Returns SDB_OK, SDB_EINVAL (err names the parameter),
 * SDB_ECORRUPT, SDB_EIO or SDB_ENOMEM. Any thread. */
int sdb_scores_list_json(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                         char **out_json, char *err, size_t errlen);

/* One score by client id (NUL-terminated) as a JSON object in *out_json
 * (caller frees). Returns SDB_OK, SDB_ENOTFOUND, SDB_ECORRUPT or SDB_EIO. */
int sdb_score_get_json(sdb_store *s, uint32_t project, const char *id, char **out_json);

/* Delete one score by client id, from the row store and every aggregate,
 * in one durable write transaction. Returns SDB_OK, SDB_ENOTFOUND, SDB_EIO
 * or SDB_ENOMEM. */
int sdb_score_delete(sdb_store *s, uint32_t project, const char *id);

/* POST /v1/traces/search: the body {"name"|"names","from","to","where",
 * "limit","cursor"} (query-object semantics for the filters) selects
 * scores among every acknowledged one; the answer lists the distinct
 * trace ids of those scores in byte order, with count, first and last
 * timestamps: {"data":[{"trace_id","count","first","last"}],
 * "next_cursor":"..."|null}, owned by the caller (free()).
 * Returns SDB_OK, SDB_EINVAL (err names the field) or an I/O error. */
int sdb_traces_search_json(sdb_store *s, uint32_t project, const char *body, size_t len,
                           char **out_json, char *err, size_t errlen);

/* ---------------------------------------------------------------- export
 * Every score of a project in a form other tools load (DESIGN.md "Beyond
 * one machine"; API.md `scoredb export`). */

/* Export formats. */
enum {
    SDB_EXPORT_NDJSON = 0,     /* API.md score objects, one per line; ingesting the
                                  file into an empty store rebuilds the same store */
    SDB_EXPORT_CSV = 1,        /* RFC 4180: a header line, then one row per score */
    SDB_EXPORT_CLICKHOUSE = 2  /* JSONEachRow rows for the table of sdb_export_ddl() */
};

/* The format named `name` ("ndjson", "csv" or "clickhouse") into
 * *out_format. Returns SDB_OK, or SDB_EINVAL for any other name (NULL
 * included). Any thread. */
int sdb_export_format_parse(const char *name, int *out_format);

/* Where exported bytes go: called with `len` bytes at `p` (borrowed for the
 * call) as they are produced, in order. Return 0 to go on; anything else
 * stops the export, which then returns SDB_EIO. */
typedef int (*sdb_export_sink)(void *ctx, const void *p, size_t len);

/* The ClickHouse CREATE TABLE statement (with `--` comments that say how to
 * load the rows) matching SDB_EXPORT_CLICKHOUSE rows, as NUL-terminated
 * text in *out_sql, owned by the caller (free()). Returns SDB_OK or
 * SDB_ENOMEM. Any thread. */
int sdb_export_ddl(char **out_sql);

/* Write every acknowledged score of `project` (no aggregation delay: the
 * row store, not the folded segments) in `format` to `sink`, oldest
 * ingested first, from one read transaction: a consistent snapshot, and
 * concurrent ingest neither waits for it nor shows up in it. Memory stays
 * flat whatever the store size: rows go to the sink in chunks of about
 * 64 KiB as they are rendered. *out_rows (may be NULL) gets the number of
 * scores written, also on failure. Returns SDB_OK; SDB_EINVAL for a bad
 * format or NULL store or sink; SDB_EIO when the sink refused bytes or the
 * store could not be read; SDB_ECORRUPT; SDB_ENOMEM. On failure the sink
 * may already have received part of the output. Any thread. */
int sdb_store_export(sdb_store *s, uint32_t project, int format, sdb_export_sink sink,
                     void *ctx, uint64_t *out_rows);


/* ------------------------------------------------------------ documents
 * Small JSON documents kept beside the scores (engine/queues.c): score
 * configs, annotation queues and their items, trace records. The engine
 * stores the text as given and keeps a count per (kind, project, group), so
 * a page of a list knows its total without a walk. The shapes belong to the
 * callers (the client layers in server/). Any thread. */

enum {
    SDB_DOC_CONFIG = 1,     /* score configs; group "" */
    SDB_DOC_QUEUE = 2,      /* annotation queues; group "" */
    SDB_DOC_QUEUE_ITEM = 3, /* queue items; group = queue id */
    SDB_DOC_QUEUE_STATUS = 4, /* item ids by status; group = queue id "/" status */
    SDB_DOC_ASSIGNMENT = 5, /* queue assignments; group = queue id */
    SDB_DOC_TRACE = 6,      /* trace records; group "" */
    SDB_DOC_OBSERVATION = 7,/* observation records; group = trace id */
    SDB_DOC_TRACE_SCORE = 8 /* score ids by trace; group = trace id */
};

/* sdb_doc_put modes. */
enum { SDB_DOC_UPSERT = 0, SDB_DOC_CREATE = 1, SDB_DOC_REPLACE = 2 };

/* Store `json` (len bytes, kept as given) as document `id` of `group` in
 * one durable write transaction. `group` (may be "") and `id` (non-empty)
 * are NUL-terminated, at most 200 bytes. SDB_DOC_CREATE refuses an
 * existing id (SDB_ELIMIT), SDB_DOC_REPLACE an absent one (SDB_ENOTFOUND).
 * *out_created (may be NULL) is 1 when the id was new. Returns SDB_OK,
 * SDB_EINVAL (a name too long or empty), SDB_ELIMIT, SDB_ENOTFOUND,
 * SDB_EIO, SDB_ENOMEM or SDB_EFULL. */
int sdb_doc_put(sdb_store *s, uint32_t project, int kind, const char *group, const char *id,
                const char *json, size_t len, int mode, int *out_created);

/* One document of sdb_doc_put_many; strings borrowed for the call. */
typedef struct sdb_doc {
    int kind;
    const char *group, *id;
    const char *json; /* NULL: "" */
    size_t len;
    int del;          /* 1: delete the document (absent is not an error) */
} sdb_doc;

/* Upsert (or delete, d.del) n documents in ONE durable write transaction
 * (all or none). Returns as sdb_doc_put. */
int sdb_doc_put_many(sdb_store *s, uint32_t project, const sdb_doc *docs, size_t n);

/* The document as NUL-terminated text in *out_json (caller frees).
 * Returns SDB_OK, SDB_ENOTFOUND, SDB_EIO or SDB_ENOMEM. */
int sdb_doc_get(sdb_store *s, uint32_t project, int kind, const char *group, const char *id,
                char **out_json);

/* Delete one document. Returns SDB_OK, SDB_ENOTFOUND, SDB_EINVAL or an I/O
 * error. */
int sdb_doc_delete(sdb_store *s, uint32_t project, int kind, const char *group, const char *id);

/* How many documents `group` holds (a counter: one read). */
int sdb_doc_count(sdb_store *s, uint32_t project, int kind, const char *group, uint64_t *out);

/* Called per listed document: its id and text (both borrowed for the
 * call; the text is not NUL-terminated). Return non-zero to stop. */
typedef int (*sdb_doc_fn)(void *ctx, const char *id, const char *json, size_t len);

/* The documents of `group` in id byte order, from one read transaction:
 * those after id `after` (NULL: from the first), skipping `offset` of them,
 * at most `limit`. *out_total (may be NULL) gets the group's count.
 * Returns SDB_OK, SDB_EINVAL, SDB_ECORRUPT or an I/O error. */
int sdb_doc_list(sdb_store *s, uint32_t project, int kind, const char *group, const char *after,
                 uint64_t offset, uint64_t limit, sdb_doc_fn fn, void *ctx, uint64_t *out_total);

/* A new random UUIDv7 text (36 characters and a NUL into out, >= 37
 * bytes): ids of configs, queues and items. Returns SDB_OK or SDB_ENOMEM. */
int sdb_id_generate(char *out);

/* `v` as the shortest JSON number text that reads back as v (out >= 32
 * bytes; NUL-terminated). v must be finite. */
void sdb_json_number(double v, char *out);

/* The string rules of every JSON text scoredb reads (docs/input.md), for
 * client layers that parse with jansson (which refuses a whole text over
 * one bad string). sdb_json_strings_blank: the elements of the array under
 * key `items_under` of the root object ("" for a root array) that break
 * the rules are named in *out_bads (sdb_json_bads_msg(b, i): the message
 * of element i, or NULL) and, when there are any, *out_text is a copy of
 * text with them blanked for jansson (caller frees), else NULL. SDB_EINVAL
 * (err) when a byte outside every element breaks them. *out_bads is the
 * caller's to free (sdb_json_bads_free) whatever the result.
 * sdb_json_strings_check: the first refusal of a whole text (SDB_EINVAL,
 * err) or SDB_OK. sdb_json_load_error: the message for a text jansson
 * refused at (line, column, why). Any thread. */
typedef struct sdb_json_bads sdb_json_bads;
int sdb_json_strings_blank(const char *text, size_t len, const char *items_under,
                           char **out_text, sdb_json_bads **out_bads, char *err, size_t errlen);
const char *sdb_json_bads_msg(const sdb_json_bads *b, long item);
void sdb_json_bads_free(sdb_json_bads *b);
int sdb_json_strings_check(const char *text, size_t len, char *err, size_t errlen);
void sdb_json_load_error(const char *text, size_t len, int line, int column, const char *why,
                         char *err, size_t errlen);

/* xxh3-64 of len bytes (the hash the engine gives trace ids). */
uint64_t sdb_hash64(const void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* SCOREDB_H */
