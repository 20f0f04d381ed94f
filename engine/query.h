/* The query object (API.md) as a C struct, and the answer it produces.
 * json.c parses the one and renders the other; query.c plans and runs. */
#ifndef SDB_QUERY_H
#define SDB_QUERY_H

#include "internal.h"

enum {
    SDB_STAT_COUNT = 1u << 0,
    SDB_STAT_AVG = 1u << 1,
    SDB_STAT_MIN = 1u << 2,
    SDB_STAT_MAX = 1u << 3,
    SDB_STAT_SUM = 1u << 4,
    SDB_STAT_STDDEV = 1u << 5,
    SDB_STAT_TRACES = 1u << 6,
};

/* Group-by field kinds. */
enum { SDB_GB_DIM, SDB_GB_NAME, SDB_GB_PROP, SDB_GB_SOURCE, SDB_GB_TYPE };

typedef struct sdb__strs {
    sdb__str *v; /* strings owned by the query (malloc'd, NUL-terminated) */
    uint32_t n;
} sdb__strs;

typedef struct sdb__prop_filter {
    sdb__str key;
    sdb__strs values;
} sdb__prop_filter;

typedef struct sdb__gb {
    int kind;
    int dim;      /* SDB_GB_DIM: the dimension */
    sdb__str key; /* SDB_GB_PROP: the property key */
    char label[220]; /* the key name in the answer: "model", "properties.x" */
} sdb__gb;

typedef struct sdb__query {
    bool has_names;
    sdb__strs names;
    bool has_from, has_to;
    int64_t from, to; /* [from, to) */
    bool has_value;
    double v_lo, v_hi; /* closed */
    uint8_t source_mask, type_mask; /* bit per enum value; 0 = no filter */
    bool has_dim[SDB_N_DIMS];
    sdb__strs dim[SDB_N_DIMS];
    sdb__strs tags;
    sdb__prop_filter *props;
    uint32_t n_props;
    sdb__gb group[SDB_MAX_GROUP_BY];
    uint32_t n_group;
    int64_t interval_ms; /* 0: no series */
    int64_t interval_origin; /* weeks start on Monday */
    uint32_t stats;
    bool has_hist, hist_has_min, hist_has_max;
    uint32_t bins;
    double hist_min, hist_max;
    double *pct;
    uint32_t n_pct;
} sdb__query;

int sdb__query_parse(const char *json, size_t len, sdb__query *q, char *err, size_t errlen);
void sdb__query_free(sdb__query *q);

/* ------------------------------------------------------ distinct traces */

/* The trace hashes of one group, for an exact distinct count. Zero it to
 * start; hashes are appended (room, then n += how many were written) and
 * the array is compacted to its distinct members whenever it reaches
 * `limit` (2 x distinct + slack), so memory is O(distinct + slack). */
typedef struct sdb__traceset {
    uint64_t *v;        /* owned */
    size_t n, cap;
    size_t limit;       /* compact before n passes it; 0 until the first compaction */
    size_t slack;       /* 0: the default (2^20); tests set it small */
} sdb__traceset;

/* Room for k more hashes at s->v + s->n (borrowed until the next call);
 * NULL when out of memory. May compact first. */
uint64_t *sdb__traceset_room(sdb__traceset *s, size_t k);
/* Append one hash (nonzero). Returns SDB_OK or SDB_ENOMEM. */
int sdb__traceset_add(sdb__traceset *s, uint64_t h);
/* The number of distinct nonzero hashes appended so far, exactly; leaves
 * s compacted. Returns SDB_OK or SDB_ENOMEM (*out is then 0). */
int sdb__traceset_count(sdb__traceset *s, uint64_t *out);
/* Free the array (s may be reused, zeroed). */
void sdb__traceset_free(sdb__traceset *s);

/* Count the distinct nonzero values of v[0..n) exactly and move them, in
 * no particular order, to v[0..*out_n). Allocates O(n) scratch for the
 * call. Returns SDB_OK or SDB_ENOMEM (v is then unchanged). */
int sdb__distinct_u64(uint64_t *v, size_t n, size_t *out_n);

/* ----------------------------------------------------------------- answer */

typedef struct sdb__cat {
    sdb__str label;
    uint64_t count;
} sdb__cat;

typedef struct sdb__point {
    int64_t t;
    uint64_t count;  /* all rows */
    sdb__mom mom;    /* numeric and boolean rows */
} sdb__point;

typedef struct sdb__out_group {
    sdb__str key[SDB_MAX_GROUP_BY]; /* p NULL: null */
    uint64_t count;
    uint64_t n_cat;    /* categorical rows */
    sdb__mom mom;      /* numeric and boolean rows */
    uint64_t traces;
    /* histogram: bins + 1 edges, bins counts */
    double *edges;
    uint64_t *hist, under, over;
    double *pct;       /* n_pct values */
    sdb__cat *cats;
    uint32_t n_cats;
    sdb__point *series;
    uint32_t n_series;
} sdb__out_group;

typedef struct sdb__answer {
    int64_t as_of;
    uint64_t pending;
    sdb__out_group *groups;
    uint32_t n_groups;
} sdb__answer;

/* JSON text emitters over a growing buffer (output only; input is parsed
 * by jansson). Errors are sticky: check sdb__buf state at the end. */
void sdb__j_raw(sdb__buf *b, const char *s);
void sdb__j_str(sdb__buf *b, const char *p, size_t len); /* quoted, escaped */
void sdb__j_num(sdb__buf *b, double v);                  /* shortest round-trip */
void sdb__j_u64(sdb__buf *b, uint64_t v);
void sdb__j_time(sdb__buf *b, int64_t ms);               /* quoted RFC 3339 */

/* Render the answer as JSON text (caller frees). */
int sdb__answer_render(const sdb__query *q, const sdb__answer *a, char **out);

#endif
