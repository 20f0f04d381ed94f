/* The query object (API.md) as a C struct, the stages that answer it, and
 * the answer it produces. json.c parses the one and renders the other;
 * plan.c picks and prunes the segments and checks the cost budget, exec.c
 * runs the per-segment pipeline, aggregate.c owns the group table and its
 * accumulators, answer.c turns them into an sdb__answer, and query.c
 * strings the stages together. */
#ifndef SDB_QUERY_H
#define SDB_QUERY_H

#include <pthread.h>
#include "internal.h"

#include <stdatomic.h>

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
    size_t limit;       /* compact (or drain) before n passes it; 0 until the first room */
    size_t slack;       /* 0: the default (2^22); tests set it small */
    /* Dense once a compaction finds the values to be trace numbers a
     * bitmap holds in no more bytes than the list (aggregate.c): bit x for
     * number x, v then a buffer drained into it. */
    uint64_t *bits;     /* owned; NULL while a list */
    size_t words;       /* of bits */
    size_t seen;        /* values drained so far (bounds the bitmap's growth) */
} sdb__traceset;

/* Room for k more hashes at s->v + s->n (borrowed until the next call);
 * NULL when out of memory. May compact first. */
uint64_t *sdb__traceset_room(sdb__traceset *s, size_t k);
/* Append one hash (nonzero). Returns SDB_OK or SDB_ENOMEM. */
int sdb__traceset_add(sdb__traceset *s, uint64_t h);
#define SDB__TRACESET_SLACK ((size_t)1 << 22) /* appends between compactions, at least */
/* The slack of a set whose own is 0; tests lower it so that queries
 * compact their sets mid-scan. */
extern size_t sdb__traceset_slack;
/* A list set is first compacted at this many appends, where it turns
 * into a bitmap when that is no larger (tests lower it). */
#define SDB__TRACESET_DENSE_AT ((size_t)1 << 16)
extern size_t sdb__traceset_dense_at;
/* OR the set b into a (a turns dense if it was not); b's list buffer is
 * not added (the caller appends it). SDB_OK or SDB_ENOMEM. */
int sdb__traceset_or(sdb__traceset *a, const sdb__traceset *b);
/* sdb__distinct_u64 cuts its input into partitions of about this many
 * hashes (up to 2^10 of them); tests lower it so that small sets run
 * through every partition. */
#define SDB__DISTINCT_PART_ROWS ((size_t)1024)
extern size_t sdb__distinct_part_rows;
/* sdb__traceset_add with its common case inline: room left and no
 * compaction due (the per-row loop of a grouped scan). */
static inline int sdb__traceset_push(sdb__traceset *s, uint64_t h)
{
    /* cap > 0: room was called, so limit is set (no global load a row) */
    if (s->n < s->cap && s->n < s->limit) {
        s->v[s->n++] = h;
        return SDB_OK;
    }
    return sdb__traceset_add(s, h);
}
/* The number of distinct nonzero hashes appended so far, exactly; leaves
 * s compacted. `parallel`: the count may use the pool's idle helpers
 * (sdb__distinct_u64_par; never from inside an sdb__par_for).
 * Returns SDB_OK or SDB_ENOMEM (*out is then 0). */
int sdb__traceset_count(sdb__traceset *s, uint64_t *out, bool parallel);
/* Free the array (s may be reused, zeroed). */
void sdb__traceset_free(sdb__traceset *s);

/* Count the distinct nonzero values of v[0..n) exactly and move them, in
 * no particular order, to v[0..*out_n). Allocates O(n) scratch for the
 * call. Returns SDB_OK or SDB_ENOMEM (v then holds part of its values:
 * the query fails). */
int sdb__distinct_u64(uint64_t *v, size_t n, size_t *out_n);
/* The same, with the partitions histogrammed, scattered and deduped on the
 * pool's idle helpers when `parallel` (sdb__par_for: not from inside one).
 * The count and the set moved to v are the same either way. */
int sdb__distinct_u64_par(uint64_t *v, size_t n, size_t *out_n, bool parallel);

/* ------------------------------------------------------ group table */

/* Values of one group, kept for exact percentiles (and for a histogram
 * without bounds when percentiles are asked for anyway). */
typedef struct sdb__dvec {
    double *v; /* owned */
    size_t n, cap;
    struct sdb__dvec *more; /* owned: further values (a merged part's), or NULL */
} sdb__dvec;

/* One group-by column: its raw ids (dictionary ids, source/type + 1, the
 * name id) are mapped through a per-query table to dense local indexes in
 * order of first appearance, so that a group is a short tuple of small
 * numbers whatever the dictionary sizes. */
typedef struct sdb__keycol {
    int kind, dim;      /* sdb__gb's */
    uint32_t *map;      /* raw id -> local index + 1 (0: not seen), n_map entries */
    uint32_t n_map;
    uint32_t *raw;      /* local index -> raw id */
    uint32_t n_local, cap_local;
    unsigned bits, shift; /* the local index's field in a dense code */
} sdb__keycol;

/* The groups of one query and their accumulators. A group owns n_int
 * consecutive slots (one per series interval, one without a series):
 * slot = group * n_int + interval - i_lo. A group exists only once a row
 * or a header has reached it, except where a filter kernel opened it and
 * then selected nothing (answer.c skips groups whose count is 0).
 *
 * Everything here merges: slots are sdb_slot moments about a per-slot
 * shift (sdb__slot_mom turns one into an sdb__mom, which merges with
 * Chan's formula), histograms and label counts add, trace sets and value
 * lists concatenate. Compare, regressions and trends read these. */
typedef struct sdb__gtab {
    uint32_t n_keys;
    sdb__keycol key[SDB_MAX_GROUP_BY];
    unsigned total_bits;     /* sum of the key columns' bits */
    uint32_t *dense;         /* code -> group + 1, 2^total_bits entries, or NULL */
    uint32_t *hash;          /* else: open addressing on the local tuple, group + 1 */
    uint32_t hash_cap;
    uint32_t n, cap;         /* groups */
    uint32_t *local;         /* n x n_keys local indexes */
    uint32_t n_int;          /* slots per group (>= 1) */
    /* Two or more key columns whose raw id domains multiply to at most
     * SDB__GTAB_DIRECT_MAX codes: code = sum of raw id (0 past the
     * dictionary) x dstride[k] indexes direct (group + 1, 0: not yet
     * looked up), a cache in front of the maps above, which stay the
     * truth. NULL otherwise. */
    uint32_t *direct;
    uint32_t dstride[SDB_MAX_GROUP_BY];
    sdb_slot *slot;          /* n x n_int */
    uint32_t n_labels;       /* category dictionary size */
    uint64_t **cats;         /* per group: n_labels + 1 counts, or NULL */
    uint32_t bins;           /* histogram bins, 0: none */
    uint64_t *hist;          /* n x (bins + 2), or NULL until allocated */
    bool want_hist, want_traces, want_vals;
    sdb__traceset *traces;   /* per group, when want_traces */
    sdb__dvec *vals;         /* per group, when want_vals */
    size_t mem;              /* bytes held, for the memory cap */
} sdb__gtab;

/* An empty table for a query's group-by columns (dictionary sizes read
 * through t). Returns SDB_OK or SDB_ENOMEM. */
int sdb__gtab_init(sdb__gtab *g, sdb__txn *t, uint32_t project, const sdb__query *q,
                   uint32_t n_int, uint32_t n_labels, bool hist, bool traces, bool vals);
void sdb__gtab_free(sdb__gtab *g);
/* The groups of n rows whose raw key ids are raw[k][j] (raw[k] NULL: the
 * column's value is raw_const[k] for every row), written to out[j];
 * groups are created as needed. Returns SDB_OK or SDB_ENOMEM. */
int sdb__gtab_groups(sdb__gtab *g, uint32_t *const *raw, const uint32_t *raw_const, size_t n,
                     uint32_t *out);
#define SDB__GTAB_DIRECT_MAX (1u << 16)
/* The raw code of one column's raw id r (g->direct set): what the column
 * adds to a row's code. */
static inline uint32_t sdb__gtab_code_part(const sdb__gtab *g, uint32_t k, uint32_t r)
{
    return (r < g->key[k].n_map ? r : 0) * g->dstride[k];
}
/* The groups of n rows by their raw codes (g->direct set), written to
 * out[j]; a code seen for the first time goes through the maps and
 * creates its group when new. Returns SDB_OK or SDB_ENOMEM. */
int sdb__gtab_groups_code(sdb__gtab *g, const uint32_t *code, size_t n, uint32_t *out);
/* Allocate the histogram counts of every group (zeroed). */
int sdb__gtab_hist_alloc(sdb__gtab *g);
/* Label counts of group gi, allocated on first use; NULL when out of memory. */
uint64_t *sdb__gtab_cats(sdb__gtab *g, uint32_t gi);
int sdb__dvec_push(sdb__gtab *g, sdb__dvec *d, double x);
/* The values of d and its chain. */
size_t sdb__dvec_count(const sdb__dvec *d);
/* Room for k more values at d->v + d->n (capacity doubles up to a chunk;
 * past that the full array joins d's chain; g->mem counts it).
 * Returns SDB_OK or SDB_ENOMEM. */
int sdb__dvec_reserve(sdb__gtab *g, sdb__dvec *d, size_t k);

void sdb__slot_init(sdb_slot *s);
/* Add a pre-aggregate (a header's or a chunk's per-value moments) of
 * `count` rows, m.n of them numeric, to a slot. */
void sdb__slot_add_mom(sdb_slot *s, uint64_t count, const sdb__mom *m);
/* Add a kernel's partial aggregate (all of its rows numeric) taken about
 * `shift`; an empty slot takes that shift as its own. */
void sdb__slot_add_agg(sdb_slot *s, const sdb_agg *a, double shift);
/* The slot's moments as an sdb__mom (mergeable). */
void sdb__slot_mom(const sdb_slot *s, sdb__mom *out);
/* Slot b into slot a (counts, sum, min, max exactly; the moments by
 * Chan's pairwise formula, b's re-expressed about a's shift). */
void sdb__slot_merge(sdb_slot *a, const sdb_slot *b);

/* Merging tables: the partial tables of one query's workers, and later
 * comparisons and agreement (API.md's analytics contract), combine
 * through these. A table shaped like `like` (its key columns, intervals,
 * bins, wanted accumulators), without groups. Returns SDB_OK or
 * SDB_ENOMEM; free it with sdb__gtab_free either way. */
int sdb__gtab_init_like(sdb__gtab *g, const sdb__gtab *like);
/* map[gi] = the group of dst with src group gi's key (created when dst
 * has none), for every group of src; map holds src->n entries. Returns
 * SDB_OK or SDB_ENOMEM. */
int sdb__gtab_map(sdb__gtab *dst, const sdb__gtab *src, uint32_t *map);
/* Every accumulator of src into dst's groups of the same keys (map as
 * sdb__gtab_map fills it, src->n entries): slots by sdb__slot_merge,
 * histograms and label counts added, trace hashes appended, value lists
 * moved into dst's chains (not copied: src's are left empty). Merging the
 * same tables in the same order gives the same bits. Returns SDB_OK or
 * SDB_ENOMEM (dst then holds part of src). */
int sdb__gtab_merge(sdb__gtab *dst, sdb__gtab *src, uint32_t *map);
/* The histogram counts alone (both allocated; map from sdb__gtab_map). */
void sdb__gtab_merge_hist(sdb__gtab *dst, const sdb__gtab *src, const uint32_t *map);

/* Exact order statistics by selection (no full sort): out[i] is the
 * pct[i]-th percentile of v[0..n) with linear interpolation between the
 * closest ranks (SQL quantile_cont). Reorders v. n > 0. */
void sdb__percentiles(double *v, size_t n, const double *pct, uint32_t n_pct, double *out);
/* sdb__percentiles over every list of d's chain (a group's values after a
 * parallel run's merge, or one list past a chunk), reading them in place. Reorders the
 * values. Returns SDB_OK or SDB_ENOMEM. */
int sdb__percentiles_dvec(sdb__dvec *d, const double *pct, uint32_t n_pct, double *out);
/* The same by quickselect alone (the reference the bucketed one is tested
 * against, and its fallback). */
void sdb__percentiles_select(double *v, size_t n, const double *pct, uint32_t n_pct, double *out);

/* ------------------------------------------------------------------ plan */

/* What one query may cost (sdb_options: query_max_*; 0 there: these
 * defaults). docs/query-engine.md explains each. */
#define SDB__QMAX_CELLS_DEFAULT 4000000ull      /* groups x points, x bins, x labels */
#define SDB__QMAX_ANSWER_DEFAULT (64ull << 20)  /* estimated answer bytes */
#define SDB__QMAX_MEM_DEFAULT (1024ull << 20)   /* accumulator bytes while running */
#define SDB__QMAX_MS_DEFAULT 10000              /* wall time */

typedef struct sdb__limits {
    uint64_t max_cells, max_answer, max_mem;
    int64_t max_ms;
} sdb__limits;

/* A segment the plan kept: its value and key, borrowed from the map until
 * the read transaction ends (exec opens it again: 32 bytes a segment here
 * rather than a copy of its header, which a 4500-segment scan felt). */
typedef struct sdb__pseg {
    const void *val;
    size_t len;
    const uint8_t *key;
    uint32_t name;
    int64_t ts_min, ts_max;
} sdb__pseg;

/* Tags and properties of a query as ids (engine/attrs.c). */
typedef struct sdb__aplan {
    uint32_t *tags, n_tags;           /* sorted tag ids, every one required */
    uint32_t *prop_key, n_props;      /* per where.properties entry: key id */
    uint64_t **prop_bits;             /* its allowed value ids */
    uint32_t *prop_nbits;
    uint8_t (*prop_set)[32];          /* the same for a 1-byte column, ids below 256 */
    uint32_t gb_key[SDB_MAX_GROUP_BY]; /* properties.KEY group-bys: key id (0 unknown) */
} sdb__aplan;

typedef struct sdb__plan {
    sdb__txn *t;
    uint32_t project;
    const sdb__query *q;
    const sdb_kernels *kern;
    int64_t t_lo, t_hi;           /* closed */
    double v_lo, v_hi;            /* closed */
    uint8_t pass_num[16], pass_cat[16]; /* by type/source byte: a numeric / categorical row passes */
    bool tsrc_filter;             /* source or data_type filter, or a value filter */
    uint64_t *dim_bits[SDB_N_DIMS]; /* membership of each dimension filter over its ids */
    uint32_t dim_nbits[SDB_N_DIMS];
    bool dim_filter, need_row, row_filter; /* need_row: tags or properties */
    sdb__aplan *attrs;            /* owned, when need_row */
    pthread_mutex_t *row_mu;      /* a threaded run's parts take turns in the row store under it */
    bool want_traces, want_vals, fixed_hist, free_hist; /* free: bounds from the data */
    bool counts_only;             /* no stat, bound or later use needs sums, min or max */
    bool no_moments;              /* no stddev asked: slots skip s1, s2 and k (slot_agg_nm) */
    double h_lo, h_hi, h_width;
    int64_t i_width, i_origin;    /* 0: no series */
    int64_t i_lo, i_hi;           /* interval indexes the slots cover */
    uint32_t n_int;
    uint32_t n_labels;
    sdb__pseg *segs;              /* owned */
    sdb__buf owned;               /* void *: copies of chunks with dead rows */
    size_t n_segs, cap_segs;
    uint64_t rows;                /* rows of the kept segments */
    bool any_cat;                 /* some kept segment has categorical rows */
    bool empty;                   /* nothing can match */
    sdb__limits lim;
    int64_t started;              /* monotonic ms */
    char *err;
    size_t errlen;
} sdb__plan;

static inline bool sdb__plan_dim_has(const sdb__plan *p, int d, uint32_t id)
{
    return id < p->dim_nbits[d] && (p->dim_bits[d][id / 64] >> (id % 64) & 1);
}

/* Plan q over project's segments in t: resolve strings to ids, keep the
 * segments whose key and zone map can match, and check the cost budget.
 * Returns SDB_OK, SDB_EINVAL / SDB_ELIMIT (err says which product is over
 * which limit), or an error of the store. */
int sdb__plan_make(sdb__plan *p, sdb__txn *t, uint32_t project, const sdb__query *q,
                   const sdb__limits *lim, char *err, size_t errlen);
void sdb__plan_free(sdb__plan *p);
/* Checked between batches: SDB_EBUSY past the time cap, SDB_ELIMIT past
 * the memory cap (err says which). */
int sdb__plan_check(const sdb__plan *p, const sdb__gtab *g);
int64_t sdb__mono_ms(void);

/* Resolve the query's tags, property keys and values to ids (p->empty when
 * one no folded row has); called by sdb__plan_make. */
int sdb__attrs_plan(sdb__plan *p);
void sdb__attrs_plan_free(sdb__plan *p);

/* A filter over a narrow id column, as the selection reads it: a
 * dimension filter over its dictionary ids, a property filter over its
 * value ids, a tag filter over the chunk's tag set indexes. Row i passes
 * when its id is set in mem (ids past nb fail); a 1-byte column also has
 * the same answer as a 256-bit set (bit b % 8 of set[b / 8]), which the
 * bits_lut8 kernel reads, and so has a segment's packed column of up to 8
 * bits (w 0: the bits_pk kernel reads it packed, no byte copy). */
typedef struct sdb__fcol {
    const uint8_t *col;           /* w bytes a row, indexed by the plan's rows */
    unsigned w;                   /* 1, 2 or 4; 0: col is packed at nb bits a row */
    const uint64_t *mem;          /* w > 0 */
    uint32_t nb;                  /* w == 0: the packed width, 0..8 (engine/segment.c) */
    const uint8_t *set;           /* w == 1 or w == 0: 32 bytes */
} sdb__fcol;

/* One segment's tag and property columns for the pipeline, indexed by the
 * plan's rows (a chunk with dead rows gets compacted copies). */
typedef struct sdb__aseg {
    sdb__fcol *fc;                /* the tag filter (if any), then each property filter */
    uint32_t n_fc;
    sdb__fcol fc_in[4];           /* fc when they fit (no allocation per chunk), else owned */
    uint64_t *set_pass;           /* owned: tag sets that hold every tag asked for */
    uint8_t set_set[32];          /* the same for a 1-byte set column, a 256-bit set */
    uint8_t *own;                 /* owned: compacted columns of a chunk with dead rows */
    const uint8_t *gcol[SDB_MAX_GROUP_BY]; /* per property group-by (NULL: all absent) */
    uint8_t gw[SDB_MAX_GROUP_BY];
} sdb__aseg;
/* Open segment `key` (n_rows as the plan sees it): 1 the columns serve,
 * 0 they do not (read the row records), 2 no row of it can pass, or an
 * error. Close it whatever the result. */
int sdb__aseg_open(sdb__aseg *s, const sdb__plan *p, const uint8_t *key, uint32_t n_rows);
void sdb__aseg_close(sdb__aseg *s);
/* A chunk the query covers wholly but for tags and properties, with no
 * tag filter and at most one property filter, whose only varying group-by
 * key is property key k (or none: k < 0; the others raw_const, one
 * interval iv): add its per-value pre-aggregates of that key (or of the
 * filter's key), those of the values the filter lets through, to gt.
 * 1 when it keeps none that serve (scan it). */
int sdb__aseg_preagg(const sdb__plan *p, sdb__gtab *gt, const uint8_t *key, uint32_t n_rows,
                     int k, const uint32_t *raw_const, uint32_t iv);

/* ------------------------------------------------------------- execute */

/* Run the plan into g (pass 0: everything but a histogram whose bounds
 * come from the data; then, when one is asked for without percentiles,
 * pass 1 with the bounds of each group). */
int sdb__exec_run(const sdb__plan *p, sdb__gtab *g);
/* Intra-query parallelism (exec.c): a plan whose kept segments hold at
 * least sdb__par_min_rows rows is split between the caller and the idle
 * helpers of the process's pool (sysconf's online CPUs - 1 threads, made
 * on first use; SDB_QUERY_THREADS=N in the environment caps a query at N
 * threads, 1: none; SDB_QUERY_PAR_MIN_ROWS=N sets the cut-off). Tests
 * lower the cut-off to force the threaded path on small data. */
#define SDB__PAR_MIN_ROWS 262144
extern uint64_t sdb__par_min_rows;
/* Queries inside sdb_query_json now (query.c counts them): a query takes
 * helpers only for CPUs that the others do not hold. */
extern atomic_uint sdb__queries_running;
/* No helpers while the 1-minute load average is above this (0: no limit;
 * default CPUs + 1; SDB_QUERY_THREADS set: 0). */
extern double sdb__par_max_load;
/* Tests: when non-zero, every plan past the cut-off is cut into this many
 * parts whatever the pool holds (the caller runs those no helper takes). */
extern uint32_t sdb__par_parts;
/* A histogram without bounds: pass 0 keeps up to this many selected rows
 * (value and group) per part for pass 1 (exec.c hcache_add); tests lower it
 * so that later segments walk again. */
#define SDB__HCACHE_MAX_ROWS ((size_t)1 << 21)
extern size_t sdb__hcache_max_rows;
/* fn(arg, i) for every i in [0, n), each once, on the caller's thread and
 * (when `parallel`) the pool's idle helpers; returns when all are done.
 * Which thread runs which i is not fixed: fn writes only i's results. */
void sdb__par_for(uint32_t n, void (*fn)(void *arg, uint32_t i), void *arg, bool parallel);
/* Whether an sdb__par_for asked to run in parallel now would find a CPU
 * for a helper (no other query holds it, the load gate is open); work
 * that costs more when laid out for several threads asks first. */
bool sdb__par_may_help(void);

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
/* The text sdb__j_num writes, into tmp (n >= 48); 0 for a non-finite v. */
int sdb__j_num_text(double v, char *tmp, size_t n);
void sdb__j_u64(sdb__buf *b, uint64_t v);
void sdb__j_time(sdb__buf *b, int64_t ms);               /* quoted RFC 3339 */

/* Render the answer as JSON text (caller frees). */
int sdb__answer_render(const sdb__query *q, const sdb__answer *a, char **out);

/* Answer q in read txn t (plan, pipeline, answer; query.c): the list's
 * totals run a count inside their own txn this way. a's groups are owned
 * (sdb__answer_free), also on failure. SDB_OK, SDB_EINVAL (err says why,
 * a limit included) or a store error. */
int sdb__query_in(sdb_store *s, sdb__txn *t, uint32_t project, const sdb__query *q,
                  sdb__answer *a, char *err, size_t errlen);

/* Build the answer from a run's groups (answer.c). */
int sdb__answer_build(const sdb__plan *p, sdb__gtab *g, sdb__answer *a);
void sdb__answer_free(sdb__answer *a);

#endif
