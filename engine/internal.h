/* Private declarations shared inside engine/. Nothing here is API. */
#ifndef SDB_INTERNAL_H
#define SDB_INTERNAL_H

#include "scoredb.h"
#include "kernels/kernels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SDB_DEBUG
#include <assert.h>
#define SDB_ASSERT(x) assert(x)
#else
#define SDB_ASSERT(x) ((void)0)
#endif

#define SDB_FORMAT_VERSION 7u /* 7: segments v5 (trace numbers, the tnum database);
                                 6: segments v4 (dimension and type/source
                                 columns bit-packed to their widths);
                                 5: id index runs of 2-8-byte entries (hash bits
                                 below the bucket's, ref offset), row blocks v2 (lengths and refs
                                 transposed, refs implied);
                                 4: encoded column segments, row records v3 (no
                                 trace hash), the attrs database (docs/storage.md);
                                 3: id index of hashed sorted runs, tombstones, row
                                 blocks compressed with zstd;
                                 2: no pending log, fold marks in meta, row records v2 */
#define SDB_MAX_STR 200u          /* names, ids, property keys (API.md) */
#define SDB_MAX_VALUE 4096u       /* dimension values, labels, tags, property values */
#define SDB_MAX_GROUP_BY 4u

/* ------------------------------------------------------------ data model */

enum { SDB_NUMERIC = 0, SDB_BOOLEAN = 1, SDB_CATEGORICAL = 2, SDB_N_TYPES = 3 };
enum { SDB_SRC_API = 0, SDB_SRC_EVAL = 1, SDB_SRC_ANNOTATION = 2, SDB_N_SOURCES = 3 };

/* Dictionary-encoded dimensions: column order in a segment. */
enum {
    SDB_DIM_ENVIRONMENT = 0,
    SDB_DIM_MODEL,
    SDB_DIM_PROMPT_VERSION,
    SDB_DIM_TRACE_NAME,
    SDB_DIM_USER_ID,
    SDB_DIM_AUTHOR,
    SDB_N_DIMS
};
/* Other dictionaries (not columns). */
enum {
    SDB_DICT_NAME = SDB_N_DIMS, /* score names */
    SDB_DICT_CATEGORY,          /* categorical labels */
    SDB_DICT_PROP,              /* property values (for properties.KEY group-by) */
    SDB_DICT_PROJECT,           /* project names (project field is always 0) */
    SDB_DICT_TAG,               /* tags (engine/attrs.c: ids given by the fold) */
    SDB_DICT_PKEY,              /* property keys (engine/attrs.c: ids given by the fold) */
    SDB_N_DICTS
};

extern const char *const sdb__dim_names[SDB_N_DIMS];
extern const char *const sdb__type_names[SDB_N_TYPES];
extern const char *const sdb__source_names[SDB_N_SOURCES];

typedef struct sdb__str {
    const char *p; /* not NUL-terminated necessarily; NULL when absent */
    uint32_t len;
} sdb__str;

/* A validated score as parsed from JSON. Strings point into the batch's
 * arena. */
typedef struct sdb__score {
    sdb__str name, id, trace_id, observation_id, session_id, dataset_run_id;
    sdb__str config_id, comment, metadata; /* metadata: compact JSON text */
    sdb__str dims[SDB_N_DIMS];
    sdb__str label; /* categorical value */
    sdb__str *tags;  /* n_tags */
    sdb__str *props; /* 2 * n_props: key, value, key, value... */
    uint32_t n_tags, n_props;
    double value; /* numeric; boolean 0/1; categorical: unused */
    int64_t ts;   /* epoch ms; valid when has_ts */
    /* sdb__hash of id (0 for a generated one), trace_id (0 when absent),
     * name and each dimension, set by sdb__batch_push: the thread that
     * parses hashes, not the one writer (ingest.c says why). */
    uint64_t id_h, trace_h, name_h, dim_h[SDB_N_DIMS];
    uint8_t type, source, has_ts, id_generated;
} sdb__score;

/* The fixed-width part of a stored score: what columns hold, and the head
 * of every row record. */
typedef struct sdb__fixed {
    int64_t ts;
    int64_t ingested;
    double value; /* categorical: label id */
    /* xxh3 of trace_id (0 when absent) as a record decodes it; in the
     * rows the fold hands to segments and that segments give back, the
     * trace's number instead (engine/tracenum.c; 0: no trace, < 2^32) */
    uint64_t trace;
    uint64_t ref;   /* row ref: ingest sequence number */
    uint32_t project;
    uint32_t name;
    uint32_t dims[SDB_N_DIMS]; /* 0 = absent */
    uint8_t type, source;
    uint8_t pad[6];
} sdb__fixed;
_Static_assert(sizeof(sdb__fixed) == 80, "row record fixed part layout");

/* ------------------------------------------------------------ utilities */

/* Growable byte buffer. */
typedef struct sdb__buf {
    char *p;
    size_t len, cap;
} sdb__buf;
int sdb__buf_reserve(sdb__buf *b, size_t extra);
int sdb__buf_add(sdb__buf *b, const void *p, size_t len);
void sdb__buf_free(sdb__buf *b);

/* Big-endian helpers for keys. */
static inline void sdb__be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void sdb__be64(uint8_t *p, uint64_t v)
{
    sdb__be32(p, (uint32_t)(v >> 32));
    sdb__be32(p + 4, (uint32_t)v);
}
static inline uint32_t sdb__rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t sdb__rd64(const uint8_t *p)
{
    return (uint64_t)sdb__rd32(p) << 32 | sdb__rd32(p + 4);
}
/* Signed time → order-preserving unsigned (sign bit flipped). */
static inline uint64_t sdb__ts_key(int64_t t) { return (uint64_t)t ^ (1ull << 63); }
static inline int64_t sdb__key_ts(uint64_t k) { return (int64_t)(k ^ (1ull << 63)); }

/* floor division for possibly negative times */
static inline int64_t sdb__floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

uint64_t sdb__hash(const void *p, size_t len); /* xxh3-64 */

/* Sort n records of `size` bytes (at most 32) that each start with a
 * uniformly distributed u64 hash into hash order, ties by cmp (which must
 * order by the hash first); tmp holds n records. Two passes for uniform
 * hashes, never quadratic (engine/util.c). */
void sdb__hash_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *),
                    void *tmp);

/* The times scoredb stores and queries: RFC 3339's years 0000..9999
 * (0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in epoch ms).
 * Keeping every time inside them keeps all time arithmetic (buckets,
 * intervals, offsets) far from int64 overflow. */
#define SDB__MIN_MS (-62167219200000ll)
#define SDB__MAX_MS (253402300799999ll)
/* SDB_OK when ms is inside them, else SDB_EINVAL with an error naming
 * `field` and the value. */
int sdb__time_check(const char *field, int64_t ms, char *err, size_t errlen);

/* printf into a caller's error buffer; tolerates err == NULL. */
void sdb__errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ----------------------------------------------------------- store (LMDB) */

enum {
    SDB__DB_SEGMENTS = 0, /* project|name|bucket|chunk → segment */
    SDB__DB_ROWS,         /* project|last ref → block of row records (engine/row.c) */
    SDB__DB_IDS,          /* the id index: sorted runs of hashed ids (engine/ids.c) */
    SDB__DB_DICT,         /* project|dict|string → id */
    SDB__DB_DICTREV,      /* project|dict|id → string */
    SDB__DB_META,         /* string key → value */
    SDB__DB_PREAGG,       /* segment key → per-dimension-value pre-aggregates */
    SDB__DB_DEAD,         /* segment key → bitmap of its rows that are gone (engine/fold.c) */
    SDB__DB_GONE,         /* project|ref → deleted row records not yet purged (engine/row.c) */
    SDB__DB_ATTRS,        /* segment key → the chunk's tags and properties as columns (engine/attrs.c) */
    SDB__DB_TRACES,       /* the trace index: sorted runs of (trace hash, ref) (engine/traceidx.c) */
    SDB__DB_TNUM,         /* trace numbers: sorted runs of (trace hash, number) (engine/tracenum.c) */
    SDB__N_DBS
};

typedef struct sdb__txn sdb__txn;
typedef struct sdb__cur sdb__cur;

typedef struct sdb__val {
    const void *p; /* borrowed: valid until the txn ends or the next write */
    size_t len;
} sdb__val;

struct sdb_store {
    void *env;        /* MDB_env */
    unsigned dbi[SDB__N_DBS];
    char *path;
    int read_only;
    int64_t bucket_ms;
    uint32_t chunk_rows;
    uint64_t map_size;
    /* Query limits from sdb_options (0: engine/query.h's defaults). */
    uint64_t query_max_cells, query_max_answer_bytes, query_max_mem_bytes;
    int64_t query_max_ms;
    void *lock;       /* pthread_rwlock_t: resize excludes every txn */
    void *write_lock; /* pthread_mutex_t: one writer at a time, in process */
    int lock_fd;      /* shared flock on DIR/scoredb.lock (engine/store.c), or -1 */
    /* Disk-full handling (store.c, docs/reliability.md). */
    unsigned env_flags; /* the MDB_* flags the env was opened with */
    int fallback_ro;    /* opened read-only because the disk refused writes */
    int write_err;      /* last refused write (SDB_ENOSPC, SDB_EIO) or 0; atomic */
};

/* Tests: when non-zero, the free bytes the store's file system is taken
 * to have (the map never grows past the file plus these). */
extern uint64_t sdb__test_free_bytes;
/* File-backed resident bytes past which a writer drops the map's pages
 * from its page tables (engine/store.c, map_trim); tests lower it. */
extern uint64_t sdb__map_resident_max;

int sdb__txn_begin(sdb_store *s, int write, sdb__txn **out);
int sdb__txn_commit(sdb__txn *t); /* frees t, even on failure */
void sdb__txn_abort(sdb__txn *t); /* takes NULL */
sdb_store *sdb__txn_store(sdb__txn *t);
/* The txn's slot for the row store's state (engine/row.c). */
void **sdb__txn_rows(sdb__txn *t);

int sdb__get(sdb__txn *t, int db, const void *k, size_t klen, sdb__val *out);
int sdb__put(sdb__txn *t, int db, const void *k, size_t klen, const void *v,
             size_t vlen, int append);
/* Reserve vlen bytes for key k and return a pointer to fill before the next
 * write in this txn. */
int sdb__reserve(sdb__txn *t, int db, const void *k, size_t klen, size_t vlen,
                 void **out);
/* sdb__reserve, appended when k sorts after every key of db (MDB_APPEND:
 * the last page is not split in half, so keys written in order fill their
 * pages), else an ordinary reserve. */
int sdb__reserve_append(sdb__txn *t, int db, const void *k, size_t klen, size_t vlen,
                        void **out);
int sdb__del(sdb__txn *t, int db, const void *k, size_t klen);
uint64_t sdb__count(sdb__txn *t, int db);
int sdb__clear(sdb__txn *t, int db); /* delete every entry */

int sdb__cur_open(sdb__txn *t, int db, sdb__cur **out);
void sdb__cur_close(sdb__cur *c);
/* Position at the first key >= k (k NULL: the first key). */
int sdb__cur_seek(sdb__cur *c, const void *k, size_t klen, sdb__val *key, sdb__val *val);
int sdb__cur_next(sdb__cur *c, sdb__val *key, sdb__val *val);
int sdb__cur_prev(sdb__cur *c, sdb__val *key, sdb__val *val);
int sdb__cur_last(sdb__cur *c, sdb__val *key, sdb__val *val);
int sdb__cur_del(sdb__cur *c); /* delete the current entry */

/* Run fn in one write transaction and commit; when the map fills, abort,
 * grow the map and run fn again from the start. fn must therefore keep no
 * state outside the txn that a retry would see half-done. */
int sdb__write(sdb_store *s, int (*fn)(sdb__txn *t, void *ctx), void *ctx);

/* Grow the map now, with no transaction of this thread open, so that it
 * has at least `room` bytes past the pages in use: a large write that
 * would fill the map midway is then not run twice (sdb__write redoes a
 * transaction that hit MDB_MAP_FULL from the start). Bounded by what the
 * file system can hold; SDB_ENOSPC/SDB_EFULL when it cannot grow, which
 * a caller may ignore (sdb__write still grows on demand). */
int sdb__map_reserve(sdb_store *s, uint64_t room);
/* The resident cap of the map (engine/store.c), applied inside a write
 * transaction: for a writer that reads much of the map in one (the id
 * index's merges). */
void sdb__map_trim_in_txn(sdb__txn *t);
/* Transactions sdb__write has run again after the map filled, in this
 * process (tests read it: a fold that reserved its room redoes none). */
extern uint64_t sdb__write_redos;

/* meta helpers */
int sdb__meta_get_u64(sdb__txn *t, const char *key, uint64_t *out); /* ENOTFOUND */
int sdb__meta_put_u64(sdb__txn *t, const char *key, uint64_t v);

/* A per-project u64 in meta under key prefix + project (prefix at most 15
 * bytes); an absent one reads as 0. */
int sdb__meta_get_project(sdb__txn *t, const char *prefix, uint32_t project, uint64_t *out);
int sdb__meta_put_project(sdb__txn *t, const char *prefix, uint32_t project, uint64_t v);

/* Per-project count of acknowledged scores not yet folded. */
int sdb__pending_of(sdb__txn *t, uint32_t project, uint64_t *out);
int sdb__pending_add(sdb__txn *t, uint32_t project, int64_t delta);
/* The project's fold mark: every row of the project with a ref at or
 * below it is in a segment (or gone); rows above it are pending. */
int sdb__folded_of(sdb__txn *t, uint32_t project, uint64_t *out);
/* Rows per fold transaction (tests set it small). */
extern uint32_t sdb__fold_slice;

/* ----------------------------------------------------------- dictionaries */

/* id of string s in dictionary `dict` of `project`; created when `create`
 * (write txn). Ids start at 1; 0 means absent. */
int sdb__dict_id(sdb__txn *t, uint32_t project, int dict, const char *s, size_t len,
                 int create, uint32_t *out);
/* The string of an id, borrowed until the txn ends. */
int sdb__dict_str(sdb__txn *t, uint32_t project, int dict, uint32_t id, sdb__val *out);
/* Highest id assigned so far in the dictionary (0 when empty). */
uint32_t sdb__dict_max(sdb__txn *t, uint32_t project, int dict);

/* ------------------------------------------------------------ row records */

/* Encode a score (with its resolved fixed part) into a row record. */
int sdb__row_encode(const sdb__fixed *fx, const sdb__score *sc, uint32_t label_id,
                    sdb__buf *out);
/* The same with ids[0..n_tags) the tags' ids (SDB_DICT_TAG) and
 * ids[n_tags + 2 i], ids[n_tags + 2 i + 1] property i's key id
 * (SDB_DICT_PKEY) and value id (SDB_DICT_PROP), 0 where the text is to be
 * kept: a record of version 4 (engine/row.c), which sdb__row_get and
 * sdb__rows_next give back as the version 3 record of the same score.
 * ids NULL, or a score without tags and properties: version 3. Ids must
 * be at most SDB__ROW_ID_CAP; ingest writes ids at most sdb__row_id_cap
 * (that by default; tests set it small) and keeps the text of any other. */
#define SDB__ROW_ID_CAP 65535u
extern uint32_t sdb__row_id_cap;
int sdb__row_encode_ids(const sdb__fixed *fx, const sdb__score *sc, const uint32_t *ids,
                        sdb__buf *out);
/* A decoded row record: views into the record bytes (borrowed). */
typedef struct sdb__row {
    sdb__fixed fx;
    sdb__str id, trace_id, observation_id, session_id, dataset_run_id;
    sdb__str config_id, comment, metadata;
    const uint8_t *tags;  /* n_tags × (u16 len, bytes) */
    const uint8_t *props; /* n_props × (u16 len, key, u16 len, value) */
    uint32_t n_tags, n_props;
    /* id and trace_id when the record keeps them packed (engine/row.c):
     * rendered here, so those two views live as long as this struct. */
    char text_[2][SDB_MAX_STR + 1];
} sdb__row;
int sdb__row_decode(const void *p, size_t len, sdb__row *out);
/* The same with the id left empty (skipped, not rendered): for readers
 * of the fixed part, trace and lists only (the fold). */
int sdb__row_decode_noid(const void *p, size_t len, sdb__row *out);
/* 0 when the record surely has neither tags nor properties (read from its
 * masks, without a decode), 1 when it may have either. */
int sdb__row_may_have_lists(const void *p, size_t len);

/* The row store: records in zstd-compressed blocks of consecutive refs
 * (engine/row.c draws the format). Readers and writers go through these,
 * never through the `rows` database directly. */
/* The record of (project, ref), borrowed until the next row call on this
 * txn or its end. SDB_OK, SDB_ENOTFOUND, SDB_ECORRUPT or SDB_ENOMEM. */
int sdb__row_get(sdb__txn *t, uint32_t project, uint64_t ref, sdb__val *out);
/* Add a record; refs only grow. Written by the commit at the latest.
 * sdb__row_put moves the bytes as they are; sdb__row_put_v4 takes a row
 * record of sdb__row_encode_ids, and readers get a version 4 one back as
 * version 3 (its block is marked, engine/row.c). */
int sdb__row_put(sdb__txn *t, uint32_t project, uint64_t ref, const void *rec, size_t len);
int sdb__row_put_v4(sdb__txn *t, uint32_t project, uint64_t ref, const void *rec, size_t len);
/* Delete a record: marked in `gone` (every read skips it), its block
 * rewritten later by sdb__rows_purge. SDB_ENOTFOUND when absent. */
int sdb__row_del(sdb__txn *t, uint32_t project, uint64_t ref);
/* Rewrite up to max_blocks blocks without their gone records; *out_left:
 * whether more remain. */
int sdb__rows_purge(sdb__txn *t, uint32_t max_blocks, int *out_left);
/* Write the txn's pending block (sdb__txn_commit calls it). */
int sdb__rows_flush(sdb__txn *t);
/* Free a txn's row state (store.c, when the txn ends). */
void sdb__rows_txn_end(void *state);
/* Iterate the records of a project: forward over refs >= bound, or
 * backward over refs < bound. sdb__rows_next gives ref and record
 * (borrowed until the next call) or SDB_ENOTFOUND at the end. */
typedef struct sdb__rowit sdb__rowit;
int sdb__rows_open(sdb__txn *t, uint32_t project, uint64_t bound, int backward, sdb__rowit **out);
int sdb__rows_next(sdb__rowit *it, uint64_t *out_ref, sdb__val *out);
void sdb__rows_close(sdb__rowit *it); /* takes NULL */
/* The block value of records recs (ends[i]: where record i ends) of refs
 * refs[0..n), ascending, into *out (the format above row.c's blocks);
 * what the row store writes, for tools that measure it. */
int sdb__rows_block_encode(const uint64_t *refs, const uint32_t *ends, const void *recs,
                           uint32_t n, int v4, sdb__buf *out);
/* Rows in a block value (stats). */
int sdb__rows_block_count(const void *p, size_t len, uint32_t *out_n);
/* Only the fixed part of a row record (what the fold needs). */
int sdb__row_fixed(const void *p, size_t len, sdb__fixed *out);
/* Iterate tags/props of a decoded row: returns 1 while there is one. */
int sdb__row_tag(const sdb__row *r, uint32_t i, sdb__str *out);
int sdb__row_prop(const sdb__row *r, uint32_t i, sdb__str *key, sdb__str *val);
/* true when the row has tag t / property k with value v. */
bool sdb__row_has_tag(const sdb__row *r, const char *t, size_t len);
bool sdb__row_prop_get(const sdb__row *r, const char *k, size_t klen, sdb__str *val);

/* ------------------------------------------------------------- segments */

/* On-disk column segment, format 5. Little-endian, n rows:
 *
 *   +------------------------+  0
 *   | sdb__seg_hdr           |  128 bytes: zone map, pre-aggregate, encodings
 *   +------------------------+  128
 *   | ts     packed[ts_bits] |  ts - ts_min; ts_bits 64: raw i64
 *   | value  (v_enc)         |  f64[n], f32[n], or decimal: packed[v_bits]
 *   |                        |  i - v_base, value = i / 10^v_exp
 *   | trace  packed[tr_bits] |  trace number - tr_base (engine/tracenum.c)
 *   | ref    packed[ref_bits]|  row ref - ref_base; ref_bits 64: raw u64
 *   | dim 0  bits[dim_w[0]]  |  one column per dimension, in column order,
 *   | ...                    |  dim_w 0..32 bits a row (0: every row
 *   | dim 5  bits[dim_w[5]]  |  absent, no bytes), no padding between
 *   | tsrc   bits[tsrc_bits] |  type | source << 2, tsrc_bits 0..8,
 *   |                        |  then 7 bytes of padding (none when
 *   |                        |  these seven columns all take 0 bits)
 *   +------------------------+  sdb__seg_len()
 *
 * A packed column of b bits (0..32) holds entry i at bits [i b, i b + b)
 * of the byte string (little-endian), in sdb__pk_len(n, b) bytes: the
 * bits rounded up to bytes plus 7, so that an 8-byte load at the byte of
 * any entry stays inside the column. b = 0 takes no bytes (every entry 0);
 * the plan gives an empty segment 0 bits everywhere. The dimension and
 * type/source columns are packed the same way but share one padding, the
 * 7 bytes after the last of them: a load at any of their entries' bytes
 * stays inside the segment (the bits past the entry are masked off), and
 * seven columns of a ~200-row chunk would otherwise pay 49 bytes.
 *
 * Encodings are chosen per segment when it is built (sdb__seg_plan), each
 * the narrowest that gives every row back bit for bit: time offsets in the
 * bits of the chunk's span; values as decimals when every value v of the
 * chunk is (double)i / 10^e for one e <= SDB__SEG_MAX_EXP (division by an
 * exact power of ten is correctly rounded, so that is the double strtod
 * reads from the text "0.85"; booleans, integers and label ids are the
 * e = 0 case), else as f32 when every value is one, else f64; trace
 * numbers, refs and the decimal ints as offsets from the smallest (frame
 * of reference). Dimension ids and the
 * type/source codes take the bits of the chunk's largest (a 3-value
 * environment 2 bits, a type/source code 4); filters of up to 8 bits
 * test them packed (the bits_pk kernel), and readers that gather by row
 * index unpack a whole column to bytes first (sdb__seg_dim_bytes,
 * sdb__seg_tsrc: in place when the width is 8, 16 or 32 bits), so those
 * gathers stay one byte load.
 *
 * Header, byte offsets:
 *
 *     0 magic u32   4 version u16   6 tsrc_bits u8 7 flags u8  8 n_rows u32
 *    12 n_type u32[3]                24 ts_min i64   32 ts_max i64
 *    40 v_min f64   48 v_max f64    56 sum f64     64 m2 f64
 *    72 max_ingested i64            80 k f64       88 dm f64
 *    96 ref_base u64               104 dim_w u8[6] 110 ref_bits u8
 *   111 ts_bits u8  112 v_enc u8    113 v_bits u8  114 v_exp u8
 *   115 tr_bits u8  116 tr_base u32                120 v_base i64
 */
typedef struct sdb__seg_hdr {
    uint32_t magic;    /* 'SSEG' */
    uint16_t version;  /* SDB__SEG_VERSION */
    uint8_t tsrc_bits; /* bits a row of the type/source column: 0..8 */
    uint8_t flags;     /* SDB__SEG_PADDED or 0 */
    uint32_t n_rows;
    uint32_t n_type[SDB_N_TYPES]; /* rows per data type */
    int64_t ts_min, ts_max;       /* over every row */
    double v_min, v_max;          /* numeric and boolean rows; +inf/-inf if none */
    double sum;                   /* sum of numeric and boolean values */
    double m2;                    /* sum of squared deviations from the mean */
    int64_t max_ingested;
    double k, dm;                 /* the mean as k + dm (sdb__mom): k the first
                                     numeric value, dm the mean deviation from it */
    uint64_t ref_base;            /* a row's ref is ref_base + its ref column entry */
    uint8_t dim_w[SDB_N_DIMS];    /* bits per row of each dimension column: 0..32 */
    uint8_t ref_bits;             /* 0..32 packed, 64 raw */
    uint8_t ts_bits;              /* 0..32 packed offsets from ts_min, 64 raw */
    uint8_t v_enc;                /* SDB__V_F64, SDB__V_F32, SDB__V_DEC */
    uint8_t v_bits;               /* SDB__V_DEC: 0..32 */
    uint8_t v_exp;                /* SDB__V_DEC: 0..SDB__SEG_MAX_EXP */
    uint8_t tr_bits;              /* 0..32: bits of a trace number - tr_base */
    uint32_t tr_base;             /* the chunk's smallest trace number (0: a row has none) */
    int64_t v_base;               /* SDB__V_DEC: the integer of a row is v_base + entry */
} sdb__seg_hdr;
_Static_assert(sizeof(sdb__seg_hdr) == 128, "segment header is 128 bytes");
_Static_assert(offsetof(sdb__seg_hdr, tsrc_bits) == 6, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, n_type) == 12, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, ts_min) == 24, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, max_ingested) == 72, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, dm) == 88, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, ref_base) == 96, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, dim_w) == 104, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, ref_bits) == 110, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, ts_bits) == 111, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, tr_bits) == 115, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, tr_base) == 116, "segment header layout");
_Static_assert(offsetof(sdb__seg_hdr, v_base) == 120, "segment header layout");
_Static_assert(SDB_N_DIMS == 6, "the header holds six dimension widths");

#define SDB__SEG_MAGIC 0x47455353u /* "SSEG" */
#define SDB__SEG_VERSION 5u        /* 5: trace numbers, not hashes;
                                      4: bit-packed dimensions and type/source;
                                      3: encoded columns; 2: per-segment widths;
                                      1: 58-byte rows */
enum { SDB__V_F64 = 0, SDB__V_F32 = 1, SDB__V_DEC = 2 };
#define SDB__SEG_MAX_EXP 15u /* decimal exponents: 10^15 is exact, ints below 2^53 */
#define SDB__PK_RAW 64u      /* a ts or ref "width" that means raw 8 bytes */

/* The longest segment LMDB keeps inside a B-tree leaf page: a leaf node (an
 * 8-byte header, the 20-byte key, the value) goes to overflow pages when it
 * is over (page - 16) / 2 - 2 bytes, 2038 with 4 KiB pages (mdb.c,
 * me_nodemax). A segment up to this size shares its leaf with at most one
 * other instead of ~100 keys, so a header-only scan (group by name over
 * every segment) changes leaf page once per segment. At 32-byte rows the
 * benchmark's rarest names have 30-60 rows a day: 743 of its 4500
 * segments landed in leaves (612 leaf pages instead of 45, tree depth 3
 * instead of 2) and query g went from 0.30 to 0.36 ms. sdb__seg_plan
 * therefore kept such a segment out of the leaves (when it would not have
 * fitted there at full width, as the 58-byte rows of the fixed layout did
 * not): format 5 wrote it at full width (raw 8-byte columns, 57 bytes a
 * row: 1-2 overflow pages, 157k of the 1M bench rows), format 6 pads its
 * encoded columns with zeros to SDB__SEG_LEAF_MAX + 1 bytes (header flag
 * SDB__SEG_PADDED): one overflow page, the same leaf walk, and the rows
 * keep their narrow encodings. With larger pages the rule merely applies
 * to fewer segments. */
#define SDB__SEG_LEAF_MAX 2010u
#define SDB__SEG_PADDED 1u /* header flag: the value is SDB__SEG_LEAF_MAX + 1 bytes, zeros after the columns */

/* Column encodings of one segment, as the header records them. */
typedef struct sdb__seg_fmt {
    uint64_t ref_base;
    int64_t v_base;
    uint32_t tr_base;
    uint8_t dim_w[SDB_N_DIMS]; /* bits: 0..32 */
    uint8_t tsrc_bits;         /* 0..8 */
    uint8_t padded;            /* 1: padded to SDB__SEG_LEAF_MAX + 1 bytes (SDB__SEG_PADDED) */
    uint8_t ref_bits, ts_bits; /* 0..32 or SDB__PK_RAW */
    uint8_t tr_bits;           /* 0..32 */
    uint8_t v_enc, v_bits, v_exp;
} sdb__seg_fmt;

/* Bytes of a packed column of n entries of b bits: the bits rounded up to
 * bytes, plus 7 when b is 1..32 (SDB__PK_RAW: 8 n; 0: none). Branch-free:
 * every segment open sums five of these. */
static inline size_t sdb__pk_len(uint32_t n, unsigned b)
{
    return ((size_t)n * b + 7) / 8 + ((b - 1u) < 32u ? 7u : 0u);
}
/* Entry i of a packed column of b bits (0..32). */
static inline uint64_t sdb__pk_get(const uint8_t *p, unsigned b, size_t i)
{
    if (b == 0) return 0;
    uint64_t bit = (uint64_t)i * b, x;
    memcpy(&x, p + (bit >> 3), 8);
    return x >> (bit & 7) & ((1ull << b) - 1);
}
static inline uint64_t sdb__ld_u64(const uint8_t *p, size_t i)
{
    uint64_t x;
    memcpy(&x, p + 8 * i, 8);
    return x;
}

/* Column views of a segment (pointers into the value, unaligned). The
 * dimension columns are found through sdb__seg_dim_col(): open computes no
 * pointer a header-only query would not use. Read rows through the
 * accessors below, whole columns through sdb__seg_ts/values/traces. */
typedef struct sdb__seg {
    sdb__seg_hdr h; /* copied out (aligned) */
    const uint8_t *start; /* the segment value: header, then columns */
    size_t len;
    const uint8_t *ts, *value, *trace, *ref, *tsrc;
    const uint8_t *dim0;  /* the first dimension column */
    uint32_t n;
} sdb__seg;

/* Bytes of the value column of n rows encoded as f says (v_enc <= 2). */
static inline size_t sdb__seg_vlen(uint32_t n, unsigned v_enc, unsigned v_bits)
{
    unsigned b = v_enc == SDB__V_DEC ? v_bits : 64u >> v_enc; /* f64 64, f32 32 */
    return ((size_t)n * b + 7) / 8 + (v_enc == SDB__V_DEC && (b - 1u) < 32u ? 7u : 0u);
}

/* Bytes of the dimension and type/source columns of n rows: packed
 * without padding between them, 7 bytes after the last unless every one
 * takes 0 bits. */
static inline size_t sdb__seg_dlen(uint32_t n, const uint8_t *dim_w, unsigned tsrc_bits)
{
    size_t len = ((size_t)n * tsrc_bits + 7) / 8;
    unsigned any = tsrc_bits;
    for (int d = 0; d < SDB_N_DIMS; d++) {
        len += ((size_t)n * dim_w[d] + 7) / 8;
        any |= dim_w[d];
    }
    return len + (any ? 7 : 0);
}

/* Bytes of a segment of n rows with encodings f (padded: at least
 * SDB__SEG_LEAF_MAX + 1). */
static inline size_t sdb__seg_len(uint32_t n, const sdb__seg_fmt *f)
{
    size_t len = sizeof(sdb__seg_hdr) + sdb__pk_len(n, f->ts_bits) +
                 sdb__seg_vlen(n, f->v_enc, f->v_bits) + sdb__pk_len(n, f->tr_bits) + sdb__pk_len(n, f->ref_bits) +
                 sdb__seg_dlen(n, f->dim_w, f->tsrc_bits);
    return f->padded && len <= SDB__SEG_LEAF_MAX ? SDB__SEG_LEAF_MAX + 1 : len;
}

/* The packed column of dimension d (dim_w[d] bits a row). A dimension of
 * width 0 has no bytes: the pointer marks where it would be. */
static inline const uint8_t *sdb__seg_dim_col(const sdb__seg *g, int d)
{
    size_t off = 0;
    for (int e = 0; e < d; e++) off += ((size_t)g->n * g->h.dim_w[e] + 7) / 8;
    return g->dim0 + off;
}
/* Entry i of a byte-width id column of width w (1, 2 or 4; 0 when w is 0). */
static inline uint32_t sdb__seg_ld(const uint8_t *col, unsigned w, uint32_t i)
{
    switch (w) {
    case 1: return col[i];
    case 2: {
        uint16_t x;
        memcpy(&x, col + 2 * (size_t)i, 2);
        return x;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, col + 4 * (size_t)i, 4);
        return x;
    }
    default: return 0;
    }
}
/* Dimension d of row i (0 = absent). */
static inline uint32_t sdb__seg_dim(const sdb__seg *g, int d, uint32_t i)
{
    return (uint32_t)sdb__pk_get(sdb__seg_dim_col(g, d), g->h.dim_w[d], i);
}
/* Data type and source of row i: two bits each, so always < 4 (a corrupt
 * segment may hold 3, which no reader indexes a table with). */
static inline uint8_t sdb__seg_type(const sdb__seg *g, uint32_t i)
{
    return (uint8_t)(sdb__pk_get(g->tsrc, g->h.tsrc_bits, i) & 3u);
}
static inline uint8_t sdb__seg_source(const sdb__seg *g, uint32_t i)
{
    return (uint8_t)(sdb__pk_get(g->tsrc, g->h.tsrc_bits, i) >> 2 & 3u);
}
/* Row ref of row i. */
static inline uint64_t sdb__seg_ref(const sdb__seg *g, uint32_t i)
{
    if (g->h.ref_bits == SDB__PK_RAW) return g->h.ref_base + sdb__ld_u64(g->ref, i);
    return g->h.ref_base + sdb__pk_get(g->ref, g->h.ref_bits, i);
}
/* Timestamp of row i. */
static inline int64_t sdb__seg_ts_at(const sdb__seg *g, uint32_t i)
{
    if (g->h.ts_bits == SDB__PK_RAW) return (int64_t)sdb__ld_u64(g->ts, i);
    return (int64_t)((uint64_t)g->h.ts_min + sdb__pk_get(g->ts, g->h.ts_bits, i));
}
/* Trace number of row i (0: no trace; engine/tracenum.c). */
static inline uint64_t sdb__seg_trace_at(const sdb__seg *g, uint32_t i)
{
    return g->h.tr_base + sdb__pk_get(g->trace, g->h.tr_bits, i);
}
/* Value of row i. */
double sdb__seg_value_at(const sdb__seg *g, uint32_t i);

/* Validate and map a segment value: SDB_ECORRUPT unless the header is one
 * this build writes (magic, version, widths and encodings, trace
 * numbers below 2^32, type counts that add up to n_rows) and len is exactly sdb__seg_len(). */
int sdb__seg_open(const void *p, size_t len, sdb__seg *out);
/* A segment that sdb__seg_open accepted earlier in the same read txn (or
 * a copy of one): its header and row count only, unchecked, for a reader
 * that opened it once to decide and again to scan (plan, then exec) and
 * that most often needs no column (a header-only query opens 4500);
 * sdb__seg_cols then sets the column views. */
void sdb__seg_head(const void *p, size_t len, sdb__seg *out);
void sdb__seg_cols(sdb__seg *g);
/* Row i of a segment as a fixed record (project/name filled by the caller). */
void sdb__seg_row(const sdb__seg *g, uint32_t i, sdb__fixed *out);
/* Dimension d of rows [0, n) as u32s: the column itself when it is 4 bytes
 * wide (borrowed, unaligned), else widened into tmp (room for g->n). */
const void *sdb__seg_dim_u32(const sdb__seg *g, int d, uint32_t *tmp);
/* The whole time, value or trace-number column as i64, f64 or u64 arrays
 * for the kernels: the column itself when it is stored raw (borrowed,
 * unaligned), else decoded into tmp (room for g->n) by the kernel table
 * k (traces: always decoded). */
const void *sdb__seg_ts(const sdb__seg *g, const sdb_kernels *k, int64_t *tmp);
const void *sdb__seg_values(const sdb__seg *g, const sdb_kernels *k, double *tmp);
const void *sdb__seg_traces(const sdb__seg *g, const sdb_kernels *k, uint64_t *tmp);
/* Dimension d's ids as a column of *out_w bytes a row (0: every row
 * absent, no bytes; else 1, 2 or 4, the fewest that hold dim_w[d] bits):
 * in place when the chunk packs them at exactly 8, 16 or 32 bits, else
 * unpacked through k into tmp (room for 4 n bytes). Valid while g is. */
const uint8_t *sdb__seg_dim_bytes(const sdb__seg *g, const sdb_kernels *k, int d, void *tmp,
                                  unsigned *out_w);
/* Every row's type | source << 2 as one byte: in place at 8 bits, else
 * unpacked into tmp (n bytes). */
const uint8_t *sdb__seg_tsrc(const sdb__seg *g, const sdb_kernels *k, uint8_t *tmp);
/* The narrowest encodings that give rows[0..n) back exactly, or full
 * widths when that keeps the segment out of an LMDB leaf
 * (SDB__SEG_LEAF_MAX); returns the segment's length. */
size_t sdb__seg_plan(const sdb__fixed *const *rows, uint32_t n, sdb__seg_fmt *out);
/* Write n rows (from an array of fixed) as a segment with encodings f into
 * dst, which has sdb__seg_len(n, f) bytes; computes the header. f must hold
 * every row exactly (sdb__seg_plan's, or wider: a raw column holds
 * anything; the trace numbers' base and bits must be the plan's). SDB_OK. */
int sdb__seg_build(const sdb__fixed *const *rows, uint32_t n, const sdb__seg_fmt *f, void *dst);

/* Segment key: project | name | bucket (biased) | chunk. 20 bytes. */
#define SDB__SEGKEY_LEN 20
void sdb__seg_key(uint8_t *k, uint32_t project, uint32_t name, int64_t bucket,
                  uint32_t chunk);

/* Per-dimension-value pre-aggregates of one chunk (`preagg` database,
 * same key as the segment). Layout: for each dimension in column order a
 * u16 entry count (0xFFFF: more than SDB__PREAGG_MAX distinct values, not
 * kept), then that many sdb__preagg entries. Only numeric and boolean rows
 * are counted; a mixed chunk keeps none, an all-categorical one its label
 * counts (below). */
#define SDB__PREAGG_MAX 64u
typedef struct sdb__preagg {
    uint32_t id, n;
    double sum, m2, min, max;
    double k, dm; /* the mean as k + dm (sdb__mom) */
} sdb__preagg;
_Static_assert(sizeof(sdb__preagg) == 56, "pre-aggregate entry is 56 bytes");

/* Find dimension d's entries in a preagg value: returns the count and sets
 * *out (unaligned bytes), or -1 when the dimension was not kept. */
int sdb__preagg_find(const void *p, size_t len, int d, const uint8_t **out);

/* An all-categorical chunk's preagg value is instead u16 SDB__PREAGG_LABELS,
 * u32 m, then m × (u32 label id, u32 count) by id. Returns m and sets *out
 * (unaligned pairs), or -1 when the value is not that. */
#define SDB__PREAGG_LABELS 0xFFFEu
int sdb__preagg_labels(const void *p, size_t len, const uint8_t **out);

/* ------------------------------------------------------------ fold/ingest */

/* Append rows of one (project, name, bucket), in order, to its chunks. */
int sdb__seg_append(sdb__txn *t, const sdb__fixed *const *rows, uint32_t n);
/* Remove a folded row (by ref) from its segment chunk, rewriting it. */
int sdb__seg_remove(sdb__txn *t, const sdb__fixed *fx);
/* Write rows[0..n) as the chunk with segment key `key` (its pre-aggregates
 * too); n == 0 deletes the chunk. */
int sdb__seg_put(sdb__txn *t, const uint8_t *key, const sdb__fixed *const *rows, uint32_t n);

/* Moments, merged with Chan et al.'s parallel formula. The mean is kept
 * as k + dm, k a value of the data (the first one seen) and dm the mean of
 * the deviations from it: at a mean of 1e9 and a spread of 0.1 a plain
 * mean carries an error of ~1e-7 (its ulp), which the merge term
 * d^2 * na * nb / n turns into a relative error of 1e-6 in the stddev;
 * deviations from a nearby k are exact (Sterbenz) and keep it at ~1e-15.
 * `sum` is the plain sum that avg divides (API.md: avg is sum/count). */
typedef struct sdb__mom {
    uint64_t n;
    double sum, k, dm, m2, min, max;
} sdb__mom;
void sdb__mom_init(sdb__mom *m);
void sdb__mom_merge(sdb__mom *m, const sdb__mom *o);
void sdb__mom_add(sdb__mom *m, double x);

/* ----------------------------------------------------------------- batch */

void *sdb__batch_alloc(sdb_batch *b, size_t len); /* lives until clear/free */
int sdb__batch_str(sdb_batch *b, const char *p, size_t len, sdb__str *out);
int sdb__batch_gen_id(sdb_batch *b, sdb__str *out);
int sdb__batch_push(sdb_batch *b, const sdb__score *sc);
/* Take row `ref` out of every aggregate, the pending count and the row store
 * (its id index entry may stay: it names a gone row, which no lookup
 * matches). */
int sdb__unlink_row(sdb__txn *t, uint32_t project, uint64_t ref);
/* The row ref of score id `id` in `project`: a generated id names its row
 * (checked against the id the row keeps), any other id is looked up in the
 * id index; ix (may be NULL) adds the entries of the running write txn.
 * Refs at or past next_ref do not exist yet (UINT64_MAX: unknown).
 * Returns SDB_OK, SDB_ENOTFOUND or an error of the store. */
typedef struct sdb__idx sdb__idx;
int sdb__id_lookup(sdb__txn *t, sdb__idx *ix, uint32_t project, const char *id, size_t len,
                   uint64_t next_ref, int in_runs, uint64_t *out_ref);

/* ------------------------------------------------------------- id index */

/* The id index (engine/ids.c): 2-8-byte entries (hash bits of project and
 * id below the bucket's, row ref offset) in size-tiered sorted runs, every hit
 * checked against the row.
 * A write txn collects its new entries in an sdb__idx and writes them as
 * runs at its end (sdb__idx_flush); readers pass NULL. */
int sdb__idx_new(sdb__idx **out);
void sdb__idx_free(sdb__idx *ix);   /* takes NULL */
void sdb__idx_reset(sdb__idx *ix);  /* forget the entries of an aborted attempt */
uint64_t sdb__idx_hash(uint32_t project, const char *id, size_t len);
/* The same from sdb__hash(id, len), already at hand. */
uint64_t sdb__idx_hash_of(uint32_t project, uint64_t id_hash);
/* The live row of (project, id) with hash h: SDB_OK, SDB_ENOTFOUND or a
 * store error. Every candidate is checked against its row. The runs are
 * searched only when in_runs (0: sdb__idx_probe said no run has h). */
int sdb__idx_find(sdb__txn *t, sdb__idx *ix, uint32_t project, const char *id, size_t len,
                  uint64_t h, int in_runs, uint64_t *out_ref);
/* For each of n hashes, out_maybe[i] = 1 when some run (not the txn's own
 * entries) holds an entry with that hash's kept 36 bits (the shard's 4 and
 * the 32 below). Many ids at once, so
 * their cache misses overlap. */
int sdb__idx_probe(sdb__txn *t, sdb__idx *ix, const uint64_t *h, size_t n, uint8_t *out_maybe);
/* Add an entry; SDB_ELIMIT past 2^44 refs or 2^20 projects. */
int sdb__idx_add(sdb__idx *ix, uint32_t project, uint64_t h, uint64_t ref);
/* The entry (h, project, ref) added in this txn names a row now gone:
 * flush leaves it out. */
void sdb__idx_forget(sdb__idx *ix, uint64_t h, uint32_t project, uint64_t ref);
/* Write the txn's entries as one run per shard and merge size classes
 * that have filled; empties ix. */
int sdb__idx_flush(sdb__txn *t, sdb__idx *ix);
/* Check every run (sorted, of its shard, its directory consistent):
 * on_problem gets a message per bad run (non-zero: stop). */
int sdb__idx_check(sdb__txn *t, int (*on_problem)(void *ctx, const char *msg), void *ctx);
/* Entries and runs in the index (stats). */
int sdb__idx_stats(sdb__txn *t, uint64_t *out_entries, uint64_t *out_runs);

/* ---------------------------------------------------------- trace numbers */

/* Every distinct trace hash of the store has a number 1, 2, ... (0: no
 * trace), given by the fold in its write transaction (engine/tracenum.c);
 * the trace column of a segment holds numbers. */

/* The numbers of h[0..n) into out[0..n) (0 for a hash of 0), numbering
 * hashes the map does not hold yet in the order of their first row, and
 * writing them to the map (write txn). SDB_OK, SDB_ENOMEM, SDB_ECORRUPT
 * (a bad run), SDB_ELIMIT (past 2^32 - 1 traces) or an LMDB code. */
int sdb__tnum_assign(sdb__txn *t, const uint64_t *h, size_t n, uint32_t *out);
/* The number of hash h (0 for h = 0), or SDB_ENOTFOUND. */
int sdb__tnum_lookup(sdb__txn *t, uint64_t h, uint32_t *out);
/* How many numbers have been given (the largest). */
int sdb__tnum_count(sdb__txn *t, uint64_t *out);
/* Entries and runs of the map (stats, tests). */
int sdb__tnum_stats(sdb__txn *t, uint64_t *out_entries, uint64_t *out_runs);
/* Entries of the largest run a merge writes; tests lower it. */
extern uint32_t sdb__tnum_merge_max;

/* ------------------------------------------------------------ tombstones */

/* Replacing or deleting a folded score does not rewrite its chunk: the row
 * gets a bit in its chunk's entry in `dead` (key: the segment key; value:
 * a bitmap, bit i for row i, bits past its end live), in the same txn as
 * the replacement. The fold later rewrites such chunks without their dead
 * rows and drops the bitmap (sdb__dead_purge), a chunk rewrite per chunk
 * and fold rather than per score.
 *
 * Every reader of segments must see live rows only. It opens an
 * sdb__live per read txn and passes each segment through sdb__live_seg
 * after sdb__seg_open, in any key order:
 *
 *     sdb__live lv;
 *     sdb__live_open(t, &lv);
 *     ... sdb__seg_open(val.p, val.len, &g);
 *         if ((rc = sdb__live_seg(&lv, key, &g)) < 0) fail;
 *         rc == 1: g now views a copy of the chunk without its dead rows,
 *         with an exact header (count, sum, m2, min/max, zone map), valid
 *         until the next sdb__live_seg or sdb__live_close; the chunk's
 *         `preagg` entry then counts dead rows too: use it only when its
 *         counts add up to g.n. rc == 0: g is untouched.
 *     sdb__live_close(&lv);
 *
 * When no tombstone exists (the usual case) sdb__live_seg is a test of
 * one flag; else one cursor seek per tombstoned chunk passed. */
typedef struct sdb__live {
    sdb__txn *t;
    sdb__cur *cur;
    int any, valid, end;
    uint8_t seek[SDB__SEGKEY_LEN], next[SDB__SEGKEY_LEN];
    void *rows, *ptrs, *buf; /* scratch of the copied chunk */
    size_t cap_rows, cap_buf;
} sdb__live;
int sdb__live_open(sdb__txn *t, sdb__live *lv);
int sdb__live_seg(sdb__live *lv, const uint8_t *segkey, sdb__seg *g);
void sdb__live_close(sdb__live *lv);
/* Mark the folded row fx (project, name, ts, ref) dead. */
int sdb__dead_mark(sdb__txn *t, const sdb__fixed *fx);
/* Rewrite up to max_chunks tombstoned chunks without their dead rows;
 * *out_left: whether more remain. */
int sdb__dead_purge(sdb__txn *t, uint32_t max_chunks, int *out_left);

/* ----------------------------------------------------- tags, properties */

/* A chunk's tags and properties as columns (`attrs`, engine/attrs.c draws
 * the value), written by the fold beside every chunk it writes. */
#define SDB__ATTR_MAX_SETS 1024u     /* distinct tag sets a chunk keeps */
#define SDB__ATTR_MAX_SET_IDS 16384u /* tag ids in all of them */
#define SDB__ATTR_MAX_KEYS 16u       /* property keys a chunk keeps (the most frequent) */
enum {
    SDB__ATTR_NO_TAGS = 1,   /* over the set bounds: the chunk keeps no tags */
    SDB__ATTR_SOME_KEYS = 2, /* more keys than SDB__ATTR_MAX_KEYS: the rest are not kept */
    SDB__ATTR_PREAGG = 4,    /* per-value pre-aggregates of each kept key follow */
};
/* Tests: the bounds in force (at most the above), and non-zero
 * sdb__attrs_off makes every query read the row records instead. */
extern uint32_t sdb__attrs_max_sets, sdb__attrs_max_keys;
extern int sdb__attrs_off;
/* One row's attributes as ids: tags sorted and distinct, (key, value)
 * pairs sorted by key. Borrowed from a words buffer. */
typedef struct sdb__arow {
    const uint32_t *tags, *kv;
    uint32_t n_tags, n_kv;
} sdb__arow;
/* A value, opened (views into it, borrowed like any LMDB value). */
typedef struct sdb__attrs {
    uint32_t n, n_sets, n_keys;
    uint8_t flags, set_w;
    const uint8_t *set_end, *set_ids, *keys, *set_col;
    const uint8_t *key_col[SDB__ATTR_MAX_KEYS];
    uint8_t key_w[SDB__ATTR_MAX_KEYS];
    const uint8_t *pre[SDB__ATTR_MAX_KEYS]; /* n_pre[k] entries of 64 bytes */
    int n_pre[SDB__ATTR_MAX_KEYS];          /* -1: not kept */
} sdb__attrs;
/* SDB_OK or SDB_ECORRUPT (every offset and set index checked). */
int sdb__attrs_open(const void *p, size_t len, sdb__attrs *out);
/* Tag set s: *n sorted u32 ids at *ids (unaligned). */
void sdb__attrs_set(const sdb__attrs *a, uint32_t s, const uint8_t **ids, uint32_t *n);
/* The index of property key `key` among the kept ones, or -1. */
int sdb__attrs_key(const sdb__attrs *a, uint32_t key);

/* Strings to ids, cached per fold transaction (an aborted txn's ids are
 * gone, so a cache never outlives its txn). */
typedef struct sdb__acache sdb__acache;
int sdb__acache_new(sdb__acache **out);
void sdb__acache_free(sdb__acache *c); /* takes NULL */
/* Append a decoded record's tags and properties, as their bytes, to out. */
int sdb__attrs_raw_add(const sdb__row *r, sdb__buf *out);
/* The same from a record's bytes, decoding it only when it has some. */
int sdb__attrs_raw_rec(const void *rec, size_t len, sdb__buf *out);
/* Resolve what sdb__attrs_raw_add wrote at raw into the words of an
 * sdb__arow appended to `words` (u32: n_tags, n_kv, tags, pairs); *used:
 * the raw bytes read. create: give new strings ids (the fold). */
int sdb__attrs_resolve(sdb__txn *t, sdb__acache *c, uint32_t project, const void *raw,
                       size_t *used, int create, sdb__buf *words);
/* An sdb__arow view of words written by sdb__attrs_resolve. */
void sdb__arow_of(const uint32_t *words, sdb__arow *out);
/* Write the value of chunk `key` for rows[0..n) (n == 0: delete it); g,
 * the chunk as written (NULL: keep no pre-aggregates), gives the values. */
int sdb__attrs_put(sdb__txn *t, const uint8_t *key, const sdb__arow *rows, uint32_t n,
                   const sdb__seg *g);
/* After sdb__seg_append(t, fx, n): the attrs of every chunk that append
 * wrote, the new rows' from rows[0..n) (same order as fx; NULL: none of
 * them has a tag or a property). */
int sdb__attrs_append(sdb__txn *t, sdb__acache *cache, const sdb__fixed *const *fx,
                      const sdb__arow *rows, uint32_t n);
/* After a purge rewrote chunk `key` without the rows set in `dead`: the
 * same for its attrs value. */
int sdb__attrs_purge(sdb__txn *t, const uint8_t *key, const uint8_t *dead, size_t dead_len);
/* Rebuild chunk key's value from its rows' records. */
int sdb__attrs_rebuild(sdb__txn *t, const uint8_t *key);
/* check.c: the value of chunk key (segment g, dead bitmap) against each
 * live row's record; problem(ctx, row or UINT32_MAX, message). */
int sdb__attrs_check_chunk(sdb__txn *t, const uint8_t *key, const sdb__seg *g,
                           const uint8_t *dead, size_t dead_len,
                           void (*problem)(void *ctx, uint32_t row, const char *msg), void *ctx);

/* Parse a body holding many scores (a JSON array, or {"scores": [...]})
 * and append each valid one to the batch; each invalid one is reported to
 * on_error with its index (a non-zero return from on_error stops).
 * *out_items counts the elements seen. Returns SDB_OK, SDB_EINVAL (the body
 * itself is malformed; err says why), SDB_ELIMIT (over max_items) or
 * SDB_ENOMEM. */
int sdb__batch_add_array(sdb_batch *b, const char *body, size_t len, size_t max_items,
                         int (*on_error)(void *ctx, size_t index, const char *msg), void *ctx,
                         size_t *out_items, char *err, size_t errlen);
/* The string rules of every JSON text scoredb reads (docs/input.md): a
 * string holds no raw control byte (0x00-0x1f, RFC 8259 section 7) and
 * no escape \u0000, and no byte below 0x20 other than tab, CR and LF
 * stands outside a string. Messages name the field (its path inside the
 * element, or inside the text) and the line and column.
 *
 * sdb__json_strings_scan() walks `text`. With items_under NULL the first
 * string that breaks the rules refuses the text: SDB_EINVAL, err says
 * why. Otherwise the elements of the root array (items_under "") or of
 * the array under that key of the root object ("scores", "batch") are
 * refused one by one: *bads gets one message per refused element, in
 * element order, and only a byte outside every element refuses the text.
 * With `blank` (a copy of text, len bytes), every bad byte is made
 * harmless there (a raw control byte a space, \u0000 \u0020), so that a
 * parser that refuses the whole text can read the other elements.
 * Returns SDB_OK, SDB_EINVAL or SDB_ENOMEM; *bads is the caller's to
 * free (sdb__jbads_free) whatever the result. */
typedef struct sdb__jbads {
    long *item;
    char **msg;
    size_t n, cap;
} sdb__jbads;
int sdb__json_strings_scan(const char *text, size_t len, const char *items_under, char *blank,
                           sdb__jbads *bads, char *err, size_t errlen);
/* The message of element `item`, or NULL when it breaks no rule (borrowed
 * until sdb__jbads_free). */
const char *sdb__jbads_msg(const sdb__jbads *l, long item);
void sdb__jbads_free(sdb__jbads *l);
/* First-refusal form: SDB_OK, or SDB_EINVAL with err. */
int sdb__json_strings_check(const char *text, size_t len, char *err, size_t errlen);
/* For a parser that refuses a whole text (jansson): when elements break
 * the rules, *out_text is a new copy with them blanked (caller frees) and
 * *bads names them; else *out_text is NULL (parse `text` itself) and
 * *bads empty. SDB_EINVAL (err) when a byte outside every element breaks
 * them; then *bads is empty. */
int sdb__json_strings_blank(const char *text, size_t len, const char *items_under,
                            char **out_text, sdb__jbads *bads, char *err, size_t errlen);
/* The message for a JSON text jansson refused (line, column, why from its
 * json_error_t): the string scan's when that names the field, else
 * jansson's position and reason. */
void sdb__json_load_error(const char *text, size_t len, int line, int column,
                          const char *why, char *err, size_t errlen);
/* Parse one score object; strings are copied into the batch's arena. */
int sdb__score_parse(sdb_batch *b, const char *json, size_t len, sdb__score *out,
                     char *err, size_t errlen);

#endif
