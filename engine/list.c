/* Detail reads: list, get and delete one score, and the trace search by
 * score range.
 *
 * Unlike analytics these see every acknowledged score at once (DESIGN.md
 * "Aggregation delay"). Refs are ingest sequence numbers, so "newest
 * first" is descending ref order, and the pagination cursor is the ref to
 * continue below. A list reads through the cheapest source its filters
 * allow, each giving rows newest first: the refs index (engine/traceidx.c)
 * for a trace, session, dataset run, observations, configs or queues
 * (property queue_id), the id index for `id`, the column segments of the
 * folded rows for a filter a column holds (the zone maps drop chunks,
 * columns are checked in place, a k-way merge keeps ref order: "column
 * path" below), else the row store itself, walked backwards. The rows past
 * the fold mark (pending) are always walked in the row store. Every row
 * that is rendered, or that a row-only filter needs, is checked on its
 * record (filter_match, the query engine's row semantics); a filter value
 * that the dictionary has never seen matches nothing, decided before any
 * read. A call reads at most SCAN_MAX records and COL_MAX column entries,
 * so that a selective filter over a huge store cannot pin a thread: the
 * answer then carries a cursor to continue from. A total is counted in the
 * same read txn as the page ("totals" below): from segment headers and
 * columns for the filters columns hold, by the query engine for tags and
 * properties, by the walk for an index key's rows.
 */
#include "list.h"
#include "traceidx.h"

#include <errno.h>
#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Rows one list call reads at most; tests shrink it to reach past it. */
uint32_t sdb__list_scan_max = 2000000u;
/* Folded rows read in the row store before the column path takes over:
 * a common filter fills a small page within them (~0.1 ms) and never
 * pays for opening every chunk's header (about 1-2 ms at 10M scores). */
uint32_t sdb__list_probe_rows = 256u;
#define SCAN_MAX sdb__list_scan_max
#define LIST_MAX 1000u
#define OFFSET_MAX 1000000u /* matches an `offset` skips at most */
#define IDS_MAX 1000u       /* `id` values looked up through the id index */
#define LIST_DEFAULT 100u

/* ----------------------------------------------------------------- filter */

typedef struct rowfilter {
    const sdb__query *q;
    bool none; /* a filter value unknown to the dictionary: nothing matches */
    uint32_t *names;
    uint32_t n_names;
    uint32_t *dims[SDB_N_DIMS];
    uint32_t n_dims[SDB_N_DIMS];
    const char *trace_id, *session_id; /* NUL-terminated; NULL: no filter */
    const char *dataset_run_id;
    const sdb__strs *obs, *ids, *configs; /* any of; NULL or empty: no filter */
    bool has_trace;                        /* only scores on a trace */
    bool has_ne;
    double ne; /* value != ne (numeric and boolean scores) */
} rowfilter;

static void filter_free(rowfilter *f)
{
    free(f->names);
    for (int d = 0; d < SDB_N_DIMS; d++) free(f->dims[d]);
    memset(f, 0, sizeof *f);
}

/* Resolve the strings of a list filter to dictionary ids. */
static int resolve(sdb__txn *t, uint32_t project, int dict, const sdb__strs *s, uint32_t **out,
                   uint32_t *n_out, bool *none)
{
    *out = malloc((s->n + 1) * sizeof **out);
    if (!*out) return SDB_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t id;
        int rc = sdb__dict_id(t, project, dict, s->v[i].p, s->v[i].len, 0, &id);
        if (rc == SDB_ENOTFOUND) continue;
        if (rc) return rc;
        (*out)[n++] = id;
    }
    *n_out = n;
    if (n == 0) *none = true;
    return SDB_OK;
}

static int filter_init(sdb__txn *t, uint32_t project, const sdb__query *q, rowfilter *f)
{
    memset(f, 0, sizeof *f);
    f->q = q;
    int rc;
    if (q->has_names &&
        (rc = resolve(t, project, SDB_DICT_NAME, &q->names, &f->names, &f->n_names, &f->none)))
        return rc;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (q->has_dim[d] &&
            (rc = resolve(t, project, d, &q->dim[d], &f->dims[d], &f->n_dims[d], &f->none)))
            return rc;
    return SDB_OK;
}

static bool in_ids(const uint32_t *v, uint32_t n, uint32_t x)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == x) return true;
    return false;
}

static bool str_eq(sdb__str s, const char *z)
{
    return s.p && strlen(z) == s.len && memcmp(s.p, z, s.len) == 0;
}

static bool str_in(sdb__str s, const sdb__strs *set)
{
    if (!set || !set->n) return true;
    for (uint32_t i = 0; i < set->n; i++)
        if (s.p && s.len == set->v[i].len && memcmp(s.p, set->v[i].p, s.len) == 0) return true;
    return false;
}

/* The same row semantics as the query engine's row path (query.c). */
static bool filter_match(const rowfilter *f, const sdb__row *r)
{
    const sdb__query *q = f->q;
    const sdb__fixed *x = &r->fx;
    if (f->names && !in_ids(f->names, f->n_names, x->name)) return false;
    if (q->has_from && x->ts < q->from) return false;
    if (q->has_to && x->ts >= q->to) return false;
    if (q->type_mask && !(q->type_mask & (1u << x->type))) return false;
    if (q->source_mask && !(q->source_mask & (1u << x->source))) return false;
    if (q->has_value &&
        (x->type == SDB_CATEGORICAL || x->value < q->v_lo || x->value > q->v_hi))
        return false;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (f->dims[d] && !in_ids(f->dims[d], f->n_dims[d], x->dims[d])) return false;
    if (f->trace_id && !str_eq(r->trace_id, f->trace_id)) return false;
    if (f->session_id && !str_eq(r->session_id, f->session_id)) return false;
    if (f->dataset_run_id && !str_eq(r->dataset_run_id, f->dataset_run_id)) return false;
    if (f->has_trace && !r->trace_id.p) return false;
    if (!str_in(r->observation_id, f->obs) || !str_in(r->id, f->ids) ||
        !str_in(r->config_id, f->configs))
        return false;
    if (f->has_ne && (x->type == SDB_CATEGORICAL || x->value == f->ne)) return false;
    for (uint32_t i = 0; i < q->tags.n; i++)
        if (!sdb__row_has_tag(r, q->tags.v[i].p, q->tags.v[i].len)) return false;
    for (uint32_t i = 0; i < q->n_props; i++) {
        sdb__str v;
        if (!sdb__row_prop_get(r, q->props[i].key.p, q->props[i].key.len, &v)) return false;
        bool any = false;
        for (uint32_t j = 0; j < q->props[i].values.n && !any; j++)
            any = v.len == q->props[i].values.v[j].len &&
                  memcmp(v.p, q->props[i].values.v[j].p, v.len) == 0;
        if (!any) return false;
    }
    return true;
}

/* ----------------------------------------------------------------- render */

static void opt_field(sdb__buf *b, const char *key, sdb__str s)
{
    sdb__j_raw(b, ",\"");
    sdb__j_raw(b, key);
    sdb__j_raw(b, "\":");
    if (s.p)
        sdb__j_str(b, s.p, s.len);
    else
        sdb__j_raw(b, "null");
}

static int dict_field(sdb__buf *b, sdb__txn *t, uint32_t project, int dict, const char *key,
                      uint32_t id)
{
    sdb__str s = {NULL, 0};
    if (id) {
        sdb__val v;
        int rc = sdb__dict_str(t, project, dict, id, &v);
        if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
        s.p = v.p;
        s.len = (uint32_t)v.len;
    }
    opt_field(b, key, s);
    return SDB_OK;
}

void sdb__row_tags_json(sdb__buf *b, const sdb__row *r)
{
    sdb__str s;
    sdb__j_raw(b, "[");
    for (uint32_t i = 0; sdb__row_tag(r, i, &s); i++) {
        if (i) sdb__j_raw(b, ",");
        sdb__j_str(b, s.p, s.len);
    }
    sdb__j_raw(b, "]");
}

void sdb__row_props_json(sdb__buf *b, const sdb__row *r)
{
    sdb__str s, v;
    sdb__j_raw(b, "{");
    for (uint32_t i = 0; sdb__row_prop(r, i, &s, &v); i++) {
        if (i) sdb__j_raw(b, ",");
        sdb__j_str(b, s.p, s.len);
        sdb__j_raw(b, ":");
        sdb__j_str(b, v.p, v.len);
    }
    sdb__j_raw(b, "}");
}

/* One score as API.md's score object: the ingest shape with every field
 * present, plus `created_at` (the ingest time) when flags ask for it. The
 * list and get endpoints show created_at; the NDJSON export leaves it out
 * so that `scoredb ingest` reads the file back (it is not an ingest field). */
int sdb__row_render(sdb__buf *b, sdb__txn *t, uint32_t project, const sdb__row *r,
                    unsigned flags)
{
    const sdb__fixed *x = &r->fx;
    int rc;
    sdb__j_raw(b, "{\"id\":");
    sdb__j_str(b, r->id.p ? r->id.p : "", r->id.p ? r->id.len : 0);
    sdb__val nm;
    if ((rc = sdb__dict_str(t, project, SDB_DICT_NAME, x->name, &nm)))
        return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
    sdb__j_raw(b, ",\"name\":");
    sdb__j_str(b, nm.p, nm.len);
    sdb__j_raw(b, ",\"value\":");
    if (x->type == SDB_BOOLEAN) {
        sdb__j_raw(b, x->value != 0 ? "true" : "false");
    } else if (x->type == SDB_CATEGORICAL) {
        sdb__val lv;
        if ((rc = sdb__dict_str(t, project, SDB_DICT_CATEGORY, (uint32_t)x->value, &lv)))
            return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
        sdb__j_str(b, lv.p, lv.len);
    } else {
        sdb__j_num(b, x->value);
    }
    if (x->type >= SDB_N_TYPES || x->source >= SDB_N_SOURCES) return SDB_ECORRUPT;
    sdb__j_raw(b, ",\"data_type\":\"");
    sdb__j_raw(b, sdb__type_names[x->type]);
    sdb__j_raw(b, "\",\"source\":\"");
    sdb__j_raw(b, sdb__source_names[x->source]);
    sdb__j_raw(b, "\",\"timestamp\":");
    sdb__j_time(b, x->ts);
    if (flags & SDB__RENDER_CREATED_AT) {
        sdb__j_raw(b, ",\"created_at\":");
        sdb__j_time(b, x->ingested);
    }
    opt_field(b, "trace_id", r->trace_id);
    opt_field(b, "observation_id", r->observation_id);
    opt_field(b, "session_id", r->session_id);
    opt_field(b, "dataset_run_id", r->dataset_run_id);
    for (int d = 0; d < SDB_N_DIMS; d++)
        if ((rc = dict_field(b, t, project, d, sdb__dim_names[d], x->dims[d]))) return rc;
    opt_field(b, "config_id", r->config_id);
    opt_field(b, "comment", r->comment);
    sdb__j_raw(b, ",\"tags\":");
    sdb__row_tags_json(b, r);
    sdb__j_raw(b, ",\"properties\":");
    sdb__row_props_json(b, r);
    sdb__j_raw(b, ",\"metadata\":");
    /* Stored as compact JSON text written by jansson at ingest. */
    if (r->metadata.p)
        sdb__buf_add(b, r->metadata.p, r->metadata.len);
    else
        sdb__j_raw(b, "null");
    sdb__j_raw(b, "}");
    return SDB_OK;
}

static int render_row(sdb__buf *b, sdb__txn *t, uint32_t project, const sdb__row *r)
{
    return sdb__row_render(b, t, project, r, SDB__RENDER_CREATED_AT);
}

/* Finish a buffer as a NUL-terminated string handed to the caller. */
static int take(sdb__buf *b, char **out)
{
    if (sdb__buf_add(b, "", 1)) {
        sdb__buf_free(b);
        return SDB_ENOMEM;
    }
    *out = b->p;
    return SDB_OK;
}

/* ------------------------------------------------------------ list params */

static int dup_into(sdb__strs *s, const char *z)
{
    sdb__str *v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v) return SDB_ENOMEM;
    s->v = v;
    char *p = strdup(z);
    if (!p) return SDB_ENOMEM;
    v[s->n].p = p;
    v[s->n].len = (uint32_t)strlen(z);
    s->n++;
    return SDB_OK;
}

static int enum_idx(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* A time parameter: RFC 3339 or integer epoch milliseconds. */
static int param_time(const char *key, const char *v, int64_t *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (*v && !*end && errno == 0) {
        *out = ms;
        return SDB_OK;
    }
    if (sdb_time_parse(v, strlen(v), out) == SDB_OK) return SDB_OK;
    sdb__errf(err, errlen,
              "parameter \"%s\": expected an RFC 3339 time or integer epoch milliseconds, got "
              "\"%.100s\"",
              key, v);
    return SDB_EINVAL;
}

static int param_num(const char *key, const char *v, double *out, char *err, size_t errlen)
{
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !isfinite(d)) {
        sdb__errf(err, errlen, "parameter \"%s\": expected a finite number, got \"%.100s\"",
                  key, v);
        return SDB_EINVAL;
    }
    *out = d;
    return SDB_OK;
}

static int param_uint(const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out,
                      char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || x < lo || x > hi) {
        sdb__errf(err, errlen, "parameter \"%s\": expected an integer from %llu to %llu, got "
                  "\"%.100s\"", key, (unsigned long long)lo, (unsigned long long)hi, v);
        return SDB_EINVAL;
    }
    *out = x;
    return SDB_OK;
}

typedef struct list_req {
    sdb__query q;
    const char *trace_id, *session_id, *dataset_run_id;
    sdb__strs obs, ids, configs;
    bool has_trace, has_ne, total, pending;
    double ne;
    uint64_t limit, cursor; /* cursor 0: from the newest */
    uint64_t offset;        /* matches skipped before the page */
} list_req;

static void req_free(list_req *r)
{
    sdb__strs *l[3] = {&r->obs, &r->ids, &r->configs};
    for (int i = 0; i < 3; i++) {
        for (uint32_t j = 0; j < l[i]->n; j++) free((void *)l[i]->v[j].p);
        free(l[i]->v);
    }
    sdb__query_free(&r->q);
}

/* A `properties.KEY` parameter: one more accepted value of KEY. */
static int prop_into(sdb__query *q, const char *key, const char *v)
{
    uint32_t i;
    for (i = 0; i < q->n_props && strcmp(q->props[i].key.p, key); i++) {
    }
    if (i == q->n_props) {
        sdb__prop_filter *p = realloc(q->props, (q->n_props + 1) * sizeof *p);
        if (!p) return SDB_ENOMEM;
        q->props = p;
        memset(&p[i], 0, sizeof p[i]);
        char *k = strdup(key);
        if (!k) return SDB_ENOMEM;
        p[i].key.p = k;
        p[i].key.len = (uint32_t)strlen(k);
        q->n_props++;
    }
    return dup_into(&q->props[i].values, v);
}

static int parse_params(const sdb_param *params, size_t n, list_req *r, char *err,
                        size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->limit = LIST_DEFAULT;
    double lo = -INFINITY, hi = INFINITY;
    for (size_t i = 0; i < n; i++) {
        const char *k = params[i].key, *v = params[i].value ? params[i].value : "";
        int rc = SDB_OK, e, d;
        if (!strcmp(k, "name")) {
            r->q.has_names = true;
            rc = dup_into(&r->q.names, v);
        } else if (!strcmp(k, "trace_id")) {
            r->trace_id = v;
        } else if (!strcmp(k, "session_id")) {
            r->session_id = v;
        } else if (!strcmp(k, "source") || !strcmp(k, "data_type")) {
            bool src = k[0] == 's';
            e = src ? enum_idx(v, sdb__source_names, SDB_N_SOURCES)
                    : enum_idx(v, sdb__type_names, SDB_N_TYPES);
            if (e < 0) {
                sdb__errf(err, errlen, "parameter \"%s\": unknown value \"%.100s\" (expected %s)",
                          k, v, src ? "API, EVAL or ANNOTATION" : "NUMERIC, BOOLEAN or CATEGORICAL");
                return SDB_EINVAL;
            }
            if (src)
                r->q.source_mask |= (uint8_t)(1u << e);
            else
                r->q.type_mask |= (uint8_t)(1u << e);
        } else if (!strcmp(k, "from")) {
            r->q.has_from = true;
            rc = param_time(k, v, &r->q.from, err, errlen);
        } else if (!strcmp(k, "to")) {
            r->q.has_to = true;
            rc = param_time(k, v, &r->q.to, err, errlen);
        } else if (!strcmp(k, "value_gte")) {
            double x;
            rc = param_num(k, v, &x, err, errlen);
            if (!rc && x > lo) lo = x;
            r->q.has_value = true;
        } else if (!strcmp(k, "value_lte")) {
            double x;
            rc = param_num(k, v, &x, err, errlen);
            if (!rc && x < hi) hi = x;
            r->q.has_value = true;
        } else if (!strcmp(k, "value_gt") || !strcmp(k, "value_lt") || !strcmp(k, "value_eq")) {
            /* Strict bounds as the closed range's neighbours (doubles). */
            double x = 0;
            rc = param_num(k, v, &x, err, errlen);
            char op = k[6]; /* value_gt, value_lt, value_eq */
            double l = op == 'g' ? nextafter(x, INFINITY) : op == 'e' ? x : -INFINITY;
            double h = op == 'l' ? nextafter(x, -INFINITY) : op == 'e' ? x : INFINITY;
            if (!rc && l > lo) lo = l;
            if (!rc && h < hi) hi = h;
            r->q.has_value = true;
        } else if (!strcmp(k, "value_ne")) {
            rc = param_num(k, v, &r->ne, err, errlen);
            r->has_ne = true;
        } else if (!strcmp(k, "observation_id") || !strcmp(k, "id") || !strcmp(k, "config_id")) {
            rc = dup_into(k[0] == 'o' ? &r->obs : k[0] == 'i' ? &r->ids : &r->configs, v);
        } else if (!strcmp(k, "dataset_run_id")) {
            r->dataset_run_id = v;
        } else if (!strcmp(k, "tag")) {
            rc = dup_into(&r->q.tags, v);
        } else if (!strncmp(k, "properties.", 11) && k[11]) {
            rc = prop_into(&r->q, k + 11, v);
        } else if (!strcmp(k, "has_trace") || !strcmp(k, "total") || !strcmp(k, "pending")) {
            if (strcmp(v, "true") && strcmp(v, "false")) {
                sdb__errf(err, errlen, "parameter \"%s\": expected true or false, got \"%.100s\"",
                          k, v);
                return SDB_EINVAL;
            }
            *(k[0] == 'h' ? &r->has_trace : k[0] == 't' ? &r->total : &r->pending) = v[0] == 't';
        } else if (!strcmp(k, "offset")) {
            rc = param_uint(k, v, 0, OFFSET_MAX, &r->offset, err, errlen);
        } else if (!strcmp(k, "limit")) {
            rc = param_uint(k, v, 1, LIST_MAX, &r->limit, err, errlen);
        } else if (!strcmp(k, "cursor")) {
            rc = param_uint(k, v, 1, UINT64_MAX, &r->cursor, err, errlen);
        } else if ((d = enum_idx(k, sdb__dim_names, SDB_N_DIMS)) >= 0) {
            r->q.has_dim[d] = true;
            rc = dup_into(&r->q.dim[d], v);
        } else {
            sdb__errf(err, errlen, "unknown parameter \"%.100s\"", k);
            return SDB_EINVAL;
        }
        if (rc) return rc;
    }
    r->q.v_lo = lo;
    r->q.v_hi = hi;
    return SDB_OK;
}

/* ------------------------------------------------------------------- list */

/* One list call's walk: rows come newest first, from candidate refs (the
 * trace index, the id index) or the row store; each is checked, skipped
 * (offset), rendered into the page or, once the page is full and a total
 * is wanted, only counted. */
typedef struct list_run {
    const list_req *r;
    const rowfilter *f;
    sdb__txn *t;
    uint32_t project;
    sdb__buf *b;
    uint64_t skipped, emitted, extra, scanned, last_ref;
    uint64_t floor; /* refs at or below it are not listed (`pending`: the fold mark) */
    bool more, counting, capped, stop;
    bool count; /* count every match past the page (a total the walk gives) */
    /* Instead of rendering: each matching row handed to on_row (the trace
     * search); nonzero from it stops the walk with that code. */
    int (*on_row)(void *ctx, const sdb__row *row);
    void *ctx;
} list_run;

/* Does the next visit need the row (to render it)? Otherwise a row that
 * the columns already prove to match is visited as NULL. */
static bool wants_row(const list_run *w)
{
    if (w->on_row) return true;
    return !w->counting && w->emitted < w->r->limit && w->skipped >= w->r->offset;
}

static int visit(list_run *w, uint64_t ref, const sdb__row *row)
{
    if (row && w->scanned == SCAN_MAX) { /* bounded: a cursor to go on from */
        w->more = w->capped = w->stop = true;
        return SDB_OK;
    }
    if (!w->counting && w->emitted == w->r->limit) {
        w->more = true;
        if (!w->count) {
            w->stop = true;
            return SDB_OK;
        }
        w->counting = true; /* the cursor stays after the page's last row */
    }
    if (row) w->scanned++;
    if (!w->counting) w->last_ref = ref;
    if (row && !filter_match(w->f, row)) return SDB_OK;
    SDB_ASSERT(row || !wants_row(w));
    if (w->counting) {
        w->extra++;
    } else if (w->skipped < w->r->offset) {
        w->skipped++;
    } else if (w->on_row) {
        w->emitted++;
        return w->on_row(w->ctx, row);
    } else {
        if (w->emitted++) sdb__j_raw(w->b, ",");
        return render_row(w->b, w->t, w->project, row);
    }
    return SDB_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Candidate refs for the `id` filter, from the id index (exact). */
static int id_refs(sdb__txn *t, uint32_t project, const sdb__strs *ids, uint64_t bound,
                   uint64_t **out, size_t *out_n)
{
    *out_n = 0;
    *out = malloc((ids->n ? ids->n : 1) * sizeof **out);
    if (!*out) return SDB_ENOMEM;
    for (uint32_t i = 0; i < ids->n; i++) {
        uint64_t ref;
        if (ids->v[i].len == 0 || ids->v[i].len > SDB_MAX_STR) continue;
        int rc = sdb__id_lookup(t, NULL, project, ids->v[i].p, ids->v[i].len, UINT64_MAX, 1, &ref);
        if (rc == SDB_ENOTFOUND) continue;
        if (rc) return rc;
        if (ref < bound) (*out)[(*out_n)++] = ref;
    }
    qsort(*out, *out_n, sizeof **out, cmp_desc);
    size_t m = 0; /* an id given twice */
    for (size_t i = 0; i < *out_n; i++)
        if (!m || (*out)[m - 1] != (*out)[i]) (*out)[m++] = (*out)[i];
    *out_n = m;
    return SDB_OK;
}

/* The keys a list reads its candidates through: the first of its filters
 * that the refs index holds (engine/traceidx.c), every value asked for
 * (any of); *out_kind -1 when there is none. *out_h owned. */
static int index_keys(const rowfilter *f, int *out_kind, uint64_t **out_h, size_t *out_n)
{
    *out_kind = -1;
    *out_h = NULL;
    *out_n = 0;
    const sdb__query *q = f->q;
    const char *one = f->trace_id ? f->trace_id : f->session_id ? f->session_id : f->dataset_run_id;
    int kind = f->trace_id     ? SDB__TIX_TRACE
               : f->session_id ? SDB__TIX_SESSION
               : f->dataset_run_id ? SDB__TIX_RUN
                                   : -1;
    const sdb__strs *set = NULL;
    const sdb__str *pkey = NULL;
    if (kind < 0 && f->obs && f->obs->n) {
        kind = SDB__TIX_OBS;
        set = f->obs;
    } else if (kind < 0 && f->configs && f->configs->n) {
        kind = SDB__TIX_CONFIG;
        set = f->configs;
    } else if (kind < 0) {
        for (uint32_t i = 0; i < q->n_props && kind < 0; i++)
            if (sdb__tix_prop_indexed(q->props[i].key.p, q->props[i].key.len)) {
                kind = SDB__TIX_PROP;
                set = &q->props[i].values;
                pkey = &q->props[i].key;
            }
    }
    if (kind < 0) return SDB_OK;
    size_t n = set ? set->n : 1;
    uint64_t *h = malloc((n ? n : 1) * sizeof *h);
    if (!h) return SDB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!set)
            h[i] = sdb__tix_key(kind, one, strlen(one), NULL, 0);
        else if (pkey)
            h[i] = sdb__tix_key(kind, pkey->p, pkey->len, set->v[i].p, set->v[i].len);
        else
            h[i] = sdb__tix_key(kind, set->v[i].p, set->v[i].len, NULL, 0);
    }
    *out_kind = kind;
    *out_h = h;
    *out_n = n;
    return SDB_OK;
}

/* Visit the rows of refs (newest first); a ref whose row is gone is
 * skipped (replaced or deleted since the index entry was written). */
static int visit_refs(list_run *w, const uint64_t *refs, size_t n)
{
    int rc = SDB_OK;
    for (size_t i = 0; rc == SDB_OK && i < n && !w->stop && refs[i] > w->floor; i++) {
        sdb__val val;
        sdb__row row;
        rc = sdb__row_get(w->t, w->project, refs[i], &val);
        if (rc == SDB_ENOTFOUND) {
            rc = SDB_OK;
            continue;
        }
        if (rc == SDB_OK && (rc = sdb__row_decode(val.p, val.len, &row)) == SDB_OK)
            rc = visit(w, refs[i], &row);
    }
    return rc;
}

/* ------------------------------------------------------------ column path */

/* Folded rows through their column segments instead of the row store:
 * with a filter on columns (name, time, type, source, value, dimensions),
 * the segments whose key or zone map cannot match are never read, the
 * rest are checked column by column, and only rows that pass are read
 * from the row store (to render them, or to check what columns do not
 * hold). Segments hold their rows in ref order (the fold appends in ref
 * order), so a k-way merge over them, newest ref first, gives the rows in
 * the list's order; a segment joins the merge only once its newest ref
 * could be next. A selective filter thus costs the segments it touches,
 * not the rows between its matches. Bounded by COL_MAX column checks. */
#define COL_MAX (1u << 26)

typedef struct cseg {
    sdb__seg g;
    int64_t pos;      /* next row to check, scanning down */
    uint64_t top;     /* ref of the row at pos once it matched (in the heap) */
    bool dead;        /* holds rows deleted since: every candidate needs its row */
} cseg;

typedef struct colscan {
    const rowfilter *f;
    cseg *v;
    size_t n, cap, next;
    uint32_t *heap;
    size_t n_heap;
    uint64_t checked;
    bool capped;
} colscan;

/* The filters columns can decide (names are decided by the key range). */
static bool col_match(const rowfilter *f, const sdb__seg *g, uint32_t i)
{
    const sdb__query *q = f->q;
    if (q->has_from || q->has_to) {
        int64_t ts = sdb__seg_ts_at(g, i);
        if ((q->has_from && ts < q->from) || (q->has_to && ts >= q->to)) return false;
    }
    if (f->has_trace) {
        uint64_t h = sdb__seg_trace_at(g, i);
        if (!h) return false; /* 0: no trace (ingest moves a hash of 0 to 1) */
    }
    uint8_t type = sdb__seg_type(g, i);
    if (q->type_mask && !(q->type_mask & (1u << type))) return false;
    if (q->source_mask && !(q->source_mask & (1u << sdb__seg_source(g, i)))) return false;
    if (q->has_value || f->has_ne) {
        double v = sdb__seg_value_at(g, i);
        if (type == SDB_CATEGORICAL) return false;
        if (q->has_value && (v < q->v_lo || v > q->v_hi)) return false;
        if (f->has_ne && v == f->ne) return false;
    }
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (f->dims[d] && !in_ids(f->dims[d], f->n_dims[d], sdb__seg_dim(g, d, i))) return false;
    return true;
}

/* Whether the columns decide every filter (no row-only filter). */
static bool cols_decide(const rowfilter *f)
{
    const sdb__query *q = f->q;
    return !f->trace_id && !f->session_id && !f->dataset_run_id &&
           !(f->obs && f->obs->n) && !(f->ids && f->ids->n) && !(f->configs && f->configs->n) &&
           !q->tags.n && !q->n_props;
}

/* Whether the column path applies: some filter a column holds. */
static bool cols_help(const rowfilter *f)
{
    const sdb__query *q = f->q;
    bool dims = false;
    for (int d = 0; d < SDB_N_DIMS; d++) dims = dims || f->dims[d];
    return f->names || q->has_from || q->has_to || q->type_mask || q->source_mask ||
           q->has_value || f->has_ne || f->has_trace || dims;
}

static bool zone_may_match(const rowfilter *f, const sdb__seg_hdr *h)
{
    const sdb__query *q = f->q;
    if (h->n_rows == 0) return false;
    if (q->has_from && h->ts_max < q->from) return false;
    if (q->has_to && h->ts_min >= q->to) return false;
    if (q->type_mask) {
        uint64_t n = 0;
        for (int t = 0; t < SDB_N_TYPES; t++)
            if (q->type_mask & (1u << t)) n += h->n_type[t];
        if (n == 0) return false;
    }
    if (q->has_value && (h->v_max < q->v_lo || h->v_min > q->v_hi)) return false;
    return true;
}

/* Move segment c down to its next matching row; false when none is left. */
static bool cs_advance(colscan *cs, cseg *c)
{
    for (; c->pos >= 0; c->pos--) {
        if (cs->checked == COL_MAX) {
            cs->capped = true;
            return false;
        }
        cs->checked++;
        if (col_match(cs->f, &c->g, (uint32_t)c->pos)) {
            c->top = sdb__seg_ref(&c->g, (uint32_t)c->pos);
            return true;
        }
    }
    return false;
}

static void heap_push(colscan *cs, uint32_t x)
{
    size_t i = cs->n_heap++;
    cs->heap[i] = x;
    while (i && cs->v[cs->heap[(i - 1) / 2]].top < cs->v[cs->heap[i]].top) {
        uint32_t t = cs->heap[i];
        cs->heap[i] = cs->heap[(i - 1) / 2];
        cs->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void heap_fix_top(colscan *cs)
{
    size_t i = 0, n = cs->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cs->v[cs->heap[l]].top > cs->v[cs->heap[m]].top) m = l;
        if (r < n && cs->v[cs->heap[r]].top > cs->v[cs->heap[m]].top) m = r;
        if (m == i) return;
        uint32_t t = cs->heap[i];
        cs->heap[i] = cs->heap[m];
        cs->heap[m] = t;
        i = m;
    }
}

static int cmp_top_desc(const void *a, const void *b)
{
    uint64_t x = ((const cseg *)a)->top, y = ((const cseg *)b)->top;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Each segment of f's names (or every one of the project's) whose zone
 * map may match, opened, to fn(ctx, lv, key, g), in key order; g views the
 * segment in the map and lv is the txn's tombstone reader (engine/internal.h
 * "tombstones"). A nonzero return from fn stops the walk with it. */
typedef int (*chunk_fn)(void *ctx, sdb__live *lv, const uint8_t *key, sdb__seg *g);

static int each_chunk(sdb__txn *t, uint32_t project, const rowfilter *f, chunk_fn fn, void *ctx)
{
    sdb__cur *c = NULL;
    sdb__live lv;
    int rc = sdb__live_open(t, &lv);
    if (rc) return rc;
    if ((rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c))) goto done;
    uint32_t n_names = f->names ? f->n_names : 1;
    for (uint32_t j = 0; j < n_names && rc == SDB_OK; j++) {
        if (f->names && j && in_ids(f->names, j, f->names[j]))
            continue; /* a name given twice: its chunks once */
        uint8_t k[SDB__SEGKEY_LEN];
        size_t plen = f->names ? 8 : 4;
        sdb__seg_key(k, project, f->names ? f->names[j] : 0, INT64_MIN, 0);
        if (!f->names) memset(k + 4, 0, SDB__SEGKEY_LEN - 4);
        sdb__val key, val;
        for (rc = sdb__cur_seek(c, k, plen == 8 ? sizeof k : 4, &key, &val); rc == SDB_OK;
             rc = sdb__cur_next(c, &key, &val)) {
            if (key.len != SDB__SEGKEY_LEN || memcmp(key.p, k, plen) != 0) break;
            sdb__seg g;
            if ((rc = sdb__seg_open(val.p, val.len, &g))) goto done;
            if (zone_may_match(f, &g.h) && (rc = fn(ctx, &lv, key.p, &g))) goto done;
        }
        if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    }
done:
    sdb__cur_close(c);
    sdb__live_close(&lv);
    return rc;
}

typedef struct open_ctx {
    colscan *cs;
    uint64_t bound;
} open_ctx;

/* cs_open's step: segment g joins the scan, positioned at its last row
 * below the bound. */
static int open_chunk(void *ctx, sdb__live *lv, const uint8_t *key, sdb__seg *gp)
{
    open_ctx *o = ctx;
    colscan *cs = o->cs;
    sdb__seg g = *gp;
    if (sdb__seg_ref(&g, 0) >= o->bound) return SDB_OK;
    sdb__seg cp = g; /* sdb__live_seg would make g view its copy */
    int dead = sdb__live_seg(lv, key, &cp);
    if (dead < 0) return dead;
    /* The last row below bound (rows are in ref order). */
    int64_t lo = 0, hi = (int64_t)g.n - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        if (sdb__seg_ref(&g, (uint32_t)mid) < o->bound) lo = mid;
        else hi = mid - 1;
    }
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 256;
        cseg *v = realloc(cs->v, cap * sizeof *v);
        if (!v) return SDB_ENOMEM;
        cs->v = v;
        cs->cap = cap;
    }
    cs->v[cs->n++] = (cseg){g, lo, sdb__seg_ref(&g, (uint32_t)lo), dead == 1};
    return SDB_OK;
}

/* The segments of the filter's names (or all of the project's) that may
 * hold a match below bound, each positioned at its last row below bound,
 * by that row's ref, newest first (c->top holds it until it joins). */
static int cs_open(sdb__txn *t, uint32_t project, colscan *cs, uint64_t bound)
{
    open_ctx o = {cs, bound};
    int rc = each_chunk(t, project, cs->f, open_chunk, &o);
    if (rc) return rc;
    if (cs->n > 1) qsort(cs->v, cs->n, sizeof *cs->v, cmp_top_desc);
    cs->heap = malloc((cs->n ? cs->n : 1) * sizeof *cs->heap);
    return cs->heap ? SDB_OK : SDB_ENOMEM;
}

/* Count the matches of segment c at or below its position into w->extra
 * (a row of a chunk with dead rows counts only if its record is there). */
static int cs_count(colscan *cs, list_run *w, const cseg *c)
{
    const rowfilter *f = cs->f;
    const sdb__query *q = f->q;
    bool dims = false;
    for (int d = 0; d < SDB_N_DIMS; d++) dims = dims || f->dims[d];
    uint64_t rows = (uint64_t)(c->pos + 1);
    if (!c->dead && !dims && !q->has_from && !q->has_to && !q->type_mask && !q->source_mask &&
        !q->has_value && !f->has_ne && cs->checked + rows <= COL_MAX) {
        /* Nothing to check but the trace column (v1's trace-only rule), or
         * nothing at all: one tight pass, or the position itself. */
        uint64_t m = rows;
        /* A chunk's smallest trace number is its base, so a chunk with
         * a row without a trace (number 0) has base 0: without it every
         * row counts, and v1's total is one look per chunk. */
        const sdb__seg *g = &c->g;
        bool all = g->h.tr_base != 0;
        if (f->has_trace && !all) {
            m = 0;
            for (uint64_t i = 0; i < rows; i++) m += sdb__seg_trace_at(g, (uint32_t)i) != 0;
        }
        cs->checked += rows;
        w->extra += m;
        return SDB_OK;
    }
    for (int64_t i = c->pos; i >= 0; i--) {
        if (cs->checked == COL_MAX) {
            cs->capped = true;
            return SDB_OK;
        }
        cs->checked++;
        if (!col_match(cs->f, &c->g, (uint32_t)i)) continue;
        if (c->dead) {
            sdb__val val;
            int rc = sdb__row_get(w->t, w->project, sdb__seg_ref(&c->g, (uint32_t)i), &val);
            if (rc == SDB_ENOTFOUND) continue;
            if (rc) return rc;
        }
        w->extra++;
    }
    return SDB_OK;
}

/* The folded rows below bound that the columns pass, newest first, into
 * the walk w. */
static int visit_columns(list_run *w, uint64_t bound)
{
    colscan cs = {.f = w->f};
    int rc = cs_open(w->t, w->project, &cs, bound);
    bool decide = cols_decide(w->f);
    while (rc == SDB_OK && !w->stop) {
        if (w->counting && decide) {
            /* Only a count is left, and the columns decide it: the order
             * no longer matters, so each chunk's rest is counted in one
             * pass instead of row by row through the merge. */
            for (size_t k = 0; rc == SDB_OK && k < cs.n_heap && !cs.capped; k++)
                rc = cs_count(&cs, w, &cs.v[cs.heap[k]]);
            for (; rc == SDB_OK && cs.next < cs.n && !cs.capped; cs.next++)
                rc = cs_count(&cs, w, &cs.v[cs.next]);
            cs.n_heap = 0;
            if (cs.capped) w->capped = true;
            break;
        }
        /* Segments whose newest row could come before the heap's top. */
        while (cs.next < cs.n &&
               (!cs.n_heap || cs.v[cs.next].top > cs.v[cs.heap[0]].top)) {
            cseg *c = &cs.v[cs.next];
            if (cs_advance(&cs, c)) heap_push(&cs, (uint32_t)cs.next);
            cs.next++;
            if (cs.capped) break;
        }
        if (cs.capped || !cs.n_heap) break;
        cseg *c = &cs.v[cs.heap[0]];
        uint64_t ref = c->top;
        if (decide && !c->dead && !wants_row(w)) {
            rc = visit(w, ref, NULL);
        } else {
            sdb__val val;
            sdb__row row;
            rc = sdb__row_get(w->t, w->project, ref, &val);
            if (rc == SDB_ENOTFOUND) rc = SDB_OK; /* deleted since */
            else if (rc == SDB_OK && (rc = sdb__row_decode(val.p, val.len, &row)) == SDB_OK)
                rc = visit(w, ref, &row);
        }
        if (rc || w->stop) break;
        c->pos--;
        if (cs_advance(&cs, c))
            heap_fix_top(&cs);
        else if (cs.capped)
            break;
        else {
            cs.heap[0] = cs.heap[--cs.n_heap];
            if (cs.n_heap) heap_fix_top(&cs);
        }
    }
    if (rc == SDB_OK && cs.capped && !w->stop) {
        /* Every match above the heap's top (or the next segment's newest
         * row) has been visited: go on from there. */
        uint64_t at = cs.n_heap ? cs.v[cs.heap[0]].top : cs.next < cs.n ? cs.v[cs.next].top : 0;
        w->more = w->capped = true;
        if (!w->counting && at) w->last_ref = at + 1;
    }
    free(cs.v);
    free(cs.heap);
    return rc;
}

/* One list call's reads, in order: the candidates of an index (the named
 * ids, else one trace's rows), or the rows past the fold mark in the row
 * store and then the folded ones through their segments when a column
 * filter helps, else the row store alone; each row into visit(). */
static int run_list(list_run *w)
{
    const list_req *r = w->r;
    const rowfilter *f = w->f;
    sdb__rowit *it = NULL;
    uint64_t *refs = NULL, *hs = NULL;
    size_t n_h = 0;
    int rc = SDB_OK, kind = -1;
    uint64_t bound = r->cursor ? r->cursor : UINT64_MAX;
    if (r->pending && (rc = sdb__folded_of(w->t, w->project, &w->floor))) goto done;
    bool walk = !f->none;
    if (walk && !r->ids.n && (rc = index_keys(f, &kind, &hs, &n_h))) goto done;
    if (walk && (r->ids.n || kind >= 0)) {
        /* Candidates from an index: the named ids, else the rows of the
         * trace, session, dataset run, observations, configs or property
         * values asked for. */
        size_t n_refs;
        uint64_t base = 0, cut = 0;
        if (r->ids.n)
            rc = id_refs(w->t, w->project, &r->ids, bound, &refs, &n_refs);
        else
            rc = sdb__tix_refs(w->t, w->project, kind, hs, n_h, bound, SCAN_MAX, &refs, &n_refs,
                               &base, &cut);
        if (rc == SDB_OK) rc = visit_refs(w, refs, n_refs);
        if (rc) goto done;
        if (!w->stop && !r->ids.n && (cut || n_refs == SCAN_MAX)) {
            /* The answer was cut (a long pending walk, or a huge key):
             * go on below where it stopped. */
            w->more = w->capped = true;
            if (!w->counting) w->last_ref = cut ? cut : refs[n_refs - 1];
            w->stop = true;
        }
        /* Rows folded before the index held this kind are walked, as
         * before it (engine/traceidx.c). */
        walk = !w->stop && base;
        if (walk && base + 1 < bound) bound = base + 1;
    }
    /* With a column filter, the row store is walked over the rows past
     * the fold mark (pending) and the newest folded ones (a probe), and
     * the older folded ones come through their segments. */
    uint64_t folded = 0, col_bound = 0;
    bool cols = walk && cols_help(f) && !r->pending;
    if (cols && (rc = sdb__folded_of(w->t, w->project, &folded))) goto done;
    /* No filter at all: a row that is only skipped (offset) is not decoded. */
    bool trivial = !cols_help(f) && cols_decide(f);
    if (walk) {
        /* Newest first: backwards from the cursor (exclusive) or the end. */
        if ((rc = sdb__rows_open(w->t, w->project, bound, 1, &it))) goto done;
        uint64_t ref, probe = 0;
        sdb__val val;
        while (!w->stop && (rc = sdb__rows_next(it, &ref, &val)) == SDB_OK && ref > w->floor) {
            if (cols && ref <= folded && probe++ == sdb__list_probe_rows) {
                col_bound = ref + 1; /* the columns go on from here */
                break;
            }
            if (trivial && !wants_row(w)) { /* only skipped or counted: no decode */
                if ((rc = visit(w, ref, NULL))) goto done;
                continue;
            }
            sdb__row row;
            if ((rc = sdb__row_decode(val.p, val.len, &row)) || (rc = visit(w, ref, &row)))
                goto done;
        }
        if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
        rc = SDB_OK;
    }
    if (col_bound && !w->stop && (rc = visit_columns(w, col_bound))) goto done;
done:
    free(hs);
    free(refs);
    sdb__rows_close(it);
    return rc;
}

/* ----------------------------------------------------------------- totals */

/* Whether the list's matches are counted as a query's: every filter is a
 * query's (names, time, type, source, value, dimensions, tags,
 * properties), `!=` on the value, or has_trace (the matches less those
 * without a trace, which the refs index lists). */
static bool query_counts(const rowfilter *f)
{
    return !f->trace_id && !f->session_id && !f->dataset_run_id && !(f->obs && f->obs->n) &&
           !(f->ids && f->ids->n) && !(f->configs && f->configs->n);
}

/* The folded rows matching q, counted by the query engine in the list's
 * txn t (segment headers and pre-aggregates where chunks are covered, the
 * pipeline's column scan elsewhere). */
static int query_count(sdb_store *s, sdb__txn *t, uint32_t project, const sdb__query *src,
                       uint64_t *out, char *err, size_t errlen)
{
    *out = 0;
    sdb__query q = *src; /* borrows src's strings: never freed here */
    q.stats = SDB_STAT_COUNT;
    q.n_group = 0;
    q.interval_ms = 0;
    q.has_hist = false;
    q.pct = NULL;
    q.n_pct = 0;
    sdb__answer a;
    memset(&a, 0, sizeof a);
    /* A query in flight, as sdb_query_json counts them (exec.c sizes its
     * helpers by them). */
    atomic_fetch_add(&sdb__queries_running, 1u);
    int rc = sdb__query_in(s, t, project, &q, &a, err, errlen);
    atomic_fetch_sub(&sdb__queries_running, 1u);
    for (uint32_t i = 0; rc == SDB_OK && i < a.n_groups; i++) *out += a.groups[i].count;
    sdb__answer_free(&a);
    return rc;
}

/* The folded rows matching f's column filters (names, time, type,
 * source, value, value_ne, dimensions), counted from the segments: a chunk
 * that its zone map excludes costs nothing, one that its header decides
 * (time range covering it, no source or dimension filter, the value range
 * covering its values) its per-type counts, and the rest a selection as
 * bit words, then popcounts: time and value through the kernel table's
 * mask_f64 (the query pipeline's own), the type/source byte and a one-byte
 * dimension compared 16 rows a step (SSE2, the x86-64 baseline: no ISA
 * flag; elsewhere row by row). The query engine's count did the same work
 * with its aggregation pipeline (moments and label counts kept for a
 * count: 21 ms for environment + source at 10M scores). */
typedef struct ccount {
    sdb__txn *t;
    const rowfilter *f;
    const sdb_kernels *k;
    uint8_t codes[16];    /* a row passes when (its type/source byte & code_mask) is one of these */
    int n_codes;
    uint8_t code_mask;
    bool tsrc_all;        /* every code that occurs passes: no per-row check */
    sdb_filter tv;        /* time and value range for mask_f64 */
    uint64_t *bits, *tmp; /* selection words */
    int64_t *ts;          /* decoded columns */
    double *v;
    uint8_t *ids;         /* a dimension's or the type/source column at byte widths (4 cap bytes) */
    uint32_t cap;
    uint64_t total;
} ccount;

/* bits &= whether each byte of col[0..n) (masked with `mask`) is one of
 * vals[0..nv). */
static void bytes_in(const uint8_t *col, uint32_t n, uint8_t mask, const uint8_t *vals, int nv,
                     uint64_t *bits)
{
    uint32_t i = 0;
    if (nv == 0) { /* nothing passes */
        memset(bits, 0, ((size_t)n + 63) / 64 * sizeof *bits);
        return;
    }
#ifdef __SSE2__
    const __m128i mk = _mm_set1_epi8((char)mask);
    __m128i vv[16]; /* broadcast once, not per step */
    for (int j = 0; j < nv && j < 16; j++) vv[j] = _mm_set1_epi8((char)vals[j]);
    for (; nv <= 16 && i + 64 <= n; i += 64) {
        uint64_t word = 0;
        for (int q = 0; q < 4; q++) {
            __m128i x = _mm_loadu_si128((const void *)(col + i + 16 * q)), r;
            if (mask != 0xFF) x = _mm_and_si128(x, mk);
            r = _mm_cmpeq_epi8(x, vv[0]);
            for (int j = 1; j < nv; j++) r = _mm_or_si128(r, _mm_cmpeq_epi8(x, vv[j]));
            word |= (uint64_t)(uint32_t)_mm_movemask_epi8(r) << (16 * q);
        }
        bits[i / 64] &= word;
    }
#endif
    for (; i < n; i += 64) {
        uint64_t word = 0;
        uint32_t cnt = n - i < 64 ? n - i : 64;
        for (uint32_t q = 0; q < cnt; q++) {
            uint8_t x = col[i + q] & mask;
            bool in = false;
            for (int j = 0; j < nv; j++) in |= x == vals[j];
            word |= (uint64_t)in << q;
        }
        bits[i / 64] &= word;
    }
}

/* Set bits of x: SWAR, as the baseline x86-64 has no popcnt instruction
 * (__builtin_popcountll is a libgcc call there: 5% of a count). */
static inline uint64_t popcount64(uint64_t x)
{
    x -= x >> 1 & 0x5555555555555555ull;
    x = (x & 0x3333333333333333ull) + (x >> 2 & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return x * 0x0101010101010101ull >> 56;
}

/* The rows of chunk g (live rows only) that pass. */
static int chunk_count(ccount *cc, const uint8_t *key, const sdb__seg *g, uint64_t *out)
{
    const rowfilter *f = cc->f;
    const sdb__query *q = f->q;
    const sdb__seg_hdr *h = &g->h;
    uint32_t n = g->n, nw = (n + 63) / 64;
    bool value = q->has_value || f->has_ne;
    bool need_ts = (q->has_from && h->ts_min < q->from) || (q->has_to && h->ts_max >= q->to);
    bool need_v = value && !(h->v_min >= q->v_lo && h->v_max <= q->v_hi);
    bool need_ne = f->has_ne && f->ne >= h->v_min && f->ne <= h->v_max;
    int n_dims = 0, dim = -1;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (f->dims[d]) n_dims++, dim = d;
    bool dims = n_dims > 0;
    /* The type/source byte is checked only where it can fail: a source
     * filter, or a type of rows this chunk holds that does not pass. */
    bool types_pass = true;
    for (int t = 0; t < SDB_N_TYPES; t++)
        if (h->n_type[t] && ((q->type_mask && !(q->type_mask & (1u << t))) ||
                             (value && t == SDB_CATEGORICAL)))
            types_pass = false;
    *out = 0;
    if (n_dims == 1 && !need_ts && !need_v && !need_ne && !q->source_mask && types_pass) {
        /* One dimension, nothing else to check on the rows: the chunk's
         * per-value pre-aggregates count it, when it keeps them and they
         * add up to its live rows (a chunk with dead rows counts them
         * too; a chunk with categorical rows keeps none): exec.c's rule. */
        sdb__val pv;
        int rc = sdb__get(cc->t, SDB__DB_PREAGG, key, SDB__SEGKEY_LEN, &pv);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        const uint8_t *pp;
        int m = rc ? -1 : sdb__preagg_find(pv.p, pv.len, dim, &pp);
        uint64_t all = 0, hit = 0;
        for (int i = 0; i < m; i++) {
            sdb__preagg pa;
            memcpy(&pa, pp + (size_t)i * sizeof pa, sizeof pa);
            all += pa.n;
            if (in_ids(f->dims[dim], f->n_dims[dim], pa.id)) hit += pa.n;
        }
        if (m >= 0 && all == n) {
            *out = hit;
            return SDB_OK;
        }
    }
    if (!need_ts && !dims && !q->source_mask && (need_v || need_ne) &&
        h->n_type[SDB_BOOLEAN] == h->n_rows && (!q->type_mask || q->type_mask & 2u)) {
        /* All boolean: the values are 0 and 1, so the header's sum is the
         * number of ones (exact: an integer far below 2^53). */
        uint64_t ones = (uint64_t)h->sum, zeros = h->n_rows - ones;
        bool one = 1.0 >= q->v_lo && 1.0 <= q->v_hi && !(f->has_ne && f->ne == 1.0);
        bool zero = 0.0 >= q->v_lo && 0.0 <= q->v_hi && !(f->has_ne && f->ne == 0.0);
        *out = (one ? ones : 0) + (zero ? zeros : 0);
        return SDB_OK;
    }
    if (!need_ts && !need_v && !need_ne && !dims && !q->source_mask) {
        /* The header decides: its per-type counts. */
        for (int t = 0; t < SDB_N_TYPES; t++)
            if ((!q->type_mask || q->type_mask & (1u << t)) && !(value && t == SDB_CATEGORICAL))
                *out += h->n_type[t];
        return SDB_OK;
    }
    if (n > cc->cap) {
        size_t w = ((size_t)n + 63) / 64;
        uint64_t *bits = realloc(cc->bits, w * sizeof *bits);
        if (bits) cc->bits = bits;
        uint64_t *tmp = bits ? realloc(cc->tmp, w * sizeof *tmp) : NULL;
        if (tmp) cc->tmp = tmp;
        int64_t *ts = tmp ? realloc(cc->ts, (size_t)n * sizeof *ts) : NULL;
        if (ts) cc->ts = ts;
        double *v = ts ? realloc(cc->v, (size_t)n * sizeof *v) : NULL;
        if (v) cc->v = v;
        uint8_t *ids = v ? realloc(cc->ids, (size_t)n * 4) : NULL;
        if (ids) cc->ids = ids;
        if (!bits || !tmp || !ts || !v || !ids) return SDB_ENOMEM;
        cc->cap = n;
    }
    uint64_t *bits = cc->bits;
    const double *v = NULL;
    if (need_ts || need_v || need_ne) {
        v = sdb__seg_values(g, cc->k, cc->v);
        /* Without a time bound to check, the values stand in for the
         * times (as exec.c does): any 8 bytes are inside the full range. */
        sdb_filter tv = cc->tv;
        const void *ts = v;
        if (need_ts)
            ts = sdb__seg_ts(g, cc->k, cc->ts);
        else
            tv.t_lo = INT64_MIN, tv.t_hi = INT64_MAX;
        cc->k->mask_f64(v, ts, n, &tv, bits);
    } else {
        for (uint32_t w = 0; w < nw; w++) bits[w] = ~0ull;
        if (n % 64) bits[nw - 1] = (1ull << (n % 64)) - 1;
    }
    if (need_ne) {
        /* The rows equal to ne, by mask_f64 over [ne, ne], come out. */
        sdb_filter eq = {INT64_MIN, INT64_MAX, f->ne, f->ne, 0};
        cc->k->mask_f64(v, v, n, &eq, cc->tmp);
        for (uint32_t w = 0; w < nw; w++) bits[w] &= ~cc->tmp[w];
    }
    if (!cc->tsrc_all && (q->source_mask || !types_pass))
        bytes_in(sdb__seg_tsrc(g, cc->k, cc->ids), n, cc->code_mask, cc->codes, cc->n_codes, bits);
    for (int d = 0; d < SDB_N_DIMS; d++) {
        if (!f->dims[d]) continue;
        if (!h->dim_w[d]) return SDB_OK; /* every row absent: none is one of the ids */
        unsigned w;
        const uint8_t *col = sdb__seg_dim_bytes(g, cc->k, d, cc->ids, &w);
        uint8_t ids[8];
        int ni = 0;
        for (uint32_t j = 0; j < f->n_dims[d] && ni <= 8; j++)
            if (f->dims[d][j] < 256 && ni < 8) ids[ni++] = (uint8_t)f->dims[d][j];
            else ni = 9;
        if (w == 1 && ni <= 8) {
            bytes_in(col, n, 0xFF, ids, ni, bits);
            continue;
        }
        for (uint32_t i = 0; i < n; i += 64) {
            uint64_t word = 0;
            uint32_t cnt = n - i < 64 ? n - i : 64;
            for (uint32_t j = 0; j < cnt; j++)
                word |= (uint64_t)in_ids(f->dims[d], f->n_dims[d], sdb__seg_ld(col, w, i + j)) << j;
            bits[i / 64] &= word;
        }
    }
    for (uint32_t w = 0; w < nw; w++) *out += popcount64(bits[w]);
    return SDB_OK;
}

/* col_total's step: the live rows of chunk g that pass, into cc->total. */
static int count_chunk(void *ctx, sdb__live *lv, const uint8_t *key, sdb__seg *g)
{
    ccount *cc = ctx;
    int dead = sdb__live_seg(lv, key, g); /* 1: g views the live rows */
    if (dead < 0) return dead;
    uint64_t m;
    int rc = chunk_count(cc, key, g, &m);
    cc->total += m;
    return rc;
}

/* The folded matches of f's column filters (no tags or properties). */
static int col_total(sdb__txn *t, uint32_t project, const rowfilter *f, uint64_t *out)
{
    *out = 0;
    const sdb__query *q = f->q;
    ccount cc = {.t = t, .f = f, .k = sdb__kernels()};
    bool value = q->has_value || f->has_ne;
    cc.tsrc_all = true;
    bool pass[16];
    for (int c = 0; c < 16; c++) {
        int type = c & 3, src = c >> 2 & 3;
        pass[c] = (!q->type_mask || q->type_mask & (1u << type)) &&
                  (!q->source_mask || q->source_mask & (1u << src)) &&
                  !(value && type == SDB_CATEGORICAL);
        /* Codes with type 3 or source 3 never occur. */
        if (!pass[c] && type < SDB_N_TYPES && src < SDB_N_SOURCES) cc.tsrc_all = false;
    }
    /* The fewest compares that decide the codes which occur: the type bits
     * alone (a type filter), the source bits alone (a source filter), or
     * the whole code. */
    static const uint8_t masks[] = {0x03, 0x0C, 0x0F};
    for (int mi = 0; mi < 3; mi++) {
        uint8_t m = masks[mi], vals[16];
        int nv = 0;
        bool ok = true;
        for (int c = 0; c < 16; c++) {
            if (!pass[c]) continue;
            bool seen = false;
            for (int j = 0; j < nv; j++) seen |= vals[j] == (c & m);
            if (!seen) vals[nv++] = (uint8_t)(c & m);
        }
        for (int c = 0; c < 16 && ok; c++) {
            if ((c & 3) >= SDB_N_TYPES || (c >> 2 & 3) >= SDB_N_SOURCES) continue;
            bool in = false;
            for (int j = 0; j < nv; j++) in |= vals[j] == (c & m);
            ok = in == pass[c];
        }
        if (ok) {
            memcpy(cc.codes, vals, (size_t)nv);
            cc.n_codes = nv;
            cc.code_mask = m;
            break;
        }
    }
    /* mask_f64's ranges are closed: `to` is exclusive. */
    cc.tv.t_lo = q->has_from ? q->from : INT64_MIN;
    cc.tv.t_hi = q->has_to ? (q->to == INT64_MIN ? INT64_MIN : q->to - 1) : INT64_MAX;
    cc.tv.v_lo = value ? q->v_lo : -INFINITY;
    cc.tv.v_hi = value ? q->v_hi : INFINITY;
    int rc = each_chunk(t, project, f, count_chunk, &cc);
    *out = cc.total;
    free(cc.bits);
    free(cc.tmp);
    free(cc.ts);
    free(cc.v);
    free(cc.ids);
    return rc;
}

/* Every match of f, in the list's txn: the folded ones through the query
 * engine (for `!=`: the numeric and boolean matches less those equal to
 * the value), the pending ones by a walk of the rows past the fold mark
 * (newest first, at most the scan cap: *out_capped past it). One txn, so
 * that a fold between the two reads cannot count a row twice or never. */
static int list_total(sdb_store *s, sdb__txn *t, uint32_t project, const rowfilter *f,
                      uint64_t *out, bool *out_capped, char *err, size_t errlen)
{
    *out = 0;
    *out_capped = false;
    if (f->none) return SDB_OK;
    sdb__query q = *f->q;
    uint64_t n = 0, eq = 0, folded, ref, walked = 0;
    int rc;
    if (f->has_ne && !q.has_value) {
        q.has_value = true; /* != matches numeric and boolean scores only */
        q.v_lo = -INFINITY;
        q.v_hi = INFINITY;
    }
    if (!q.tags.n && !q.n_props) {
        if ((rc = col_total(t, project, f, &n))) return rc;
    } else {
        /* Tags and properties live in the attrs columns the query engine
         * reads (engine/attrs.c). */
        if ((rc = query_count(s, t, project, &q, &n, err, errlen))) return rc;
        if (f->has_ne && f->ne >= q.v_lo && f->ne <= q.v_hi) {
            q.v_lo = q.v_hi = f->ne;
            if ((rc = query_count(s, t, project, &q, &eq, err, errlen))) return rc;
        }
        n -= eq;
    }
    if ((rc = sdb__folded_of(t, project, &folded))) return rc;
    if (f->has_trace) {
        /* v1's rule: less the folded matches without a trace, read
         * through the index's one key for them (few, or none: a score
         * without a trace is on a session or a dataset run). */
        rowfilter g = *f;
        g.has_trace = false;
        uint64_t h = sdb__tix_key(SDB__TIX_NOTRACE, "", 0, NULL, 0), *refs, base, cut, sub = 0;
        size_t nr;
        if ((rc = sdb__tix_refs(t, project, SDB__TIX_NOTRACE, &h, 1, UINT64_MAX, SCAN_MAX, &refs,
                                &nr, &base, &cut)))
            return rc;
        if (cut || nr == SCAN_MAX) *out_capped = true;
        for (size_t i = 0; i < nr && rc == SDB_OK; i++) {
            if (refs[i] > folded) continue; /* pending: the walk below */
            sdb__val val;
            sdb__row row;
            rc = sdb__row_get(t, project, refs[i], &val);
            if (rc == SDB_ENOTFOUND) {
                rc = SDB_OK; /* replaced or deleted since */
                continue;
            }
            if (rc == SDB_OK && (rc = sdb__row_decode(val.p, val.len, &row)) == SDB_OK)
                sub += filter_match(&g, &row);
        }
        free(refs);
        if (rc) return rc;
        n -= sub;
    }
    sdb__rowit *it;
    if ((rc = sdb__rows_open(t, project, UINT64_MAX, 1, &it))) return rc;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK && ref > folded) {
        if (walked++ == SCAN_MAX) {
            *out_capped = true;
            break;
        }
        sdb__row row;
        if ((rc = sdb__row_decode(val.p, val.len, &row))) break;
        n += filter_match(f, &row);
    }
    sdb__rows_close(it);
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) return rc;
    *out = n;
    return SDB_OK;
}

int sdb_scores_list_json(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                         char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    list_req r;
    int rc = parse_params(params, n, &r, err, errlen);
    if (rc == SDB_OK && r.ids.n > IDS_MAX) {
        sdb__errf(err, errlen, "parameter \"id\": at most %u ids, got %u", IDS_MAX, r.ids.n);
        rc = SDB_EINVAL;
    }
    if (rc) {
        req_free(&r);
        return rc;
    }
    sdb__txn *t = NULL;
    sdb__buf b = {0};
    rowfilter f;
    memset(&f, 0, sizeof f);
    if ((rc = sdb__txn_begin(s, 0, &t))) goto done;
    if ((rc = filter_init(t, project, &r.q, &f))) goto done;
    f.trace_id = r.trace_id;
    f.session_id = r.session_id;
    f.dataset_run_id = r.dataset_run_id;
    f.obs = &r.obs;
    f.ids = &r.ids;
    f.configs = &r.configs;
    f.has_trace = r.has_trace;
    f.has_ne = r.has_ne;
    f.ne = r.ne;
    sdb__j_raw(&b, "{\"data\":[");
    /* A total the query engine can count is counted by it; else the walk
     * counts every match past the page. */
    bool qtotal = r.total && !r.pending && query_counts(&f);
    if (qtotal && f.has_trace) {
        /* With a queue filter its index's rows are fewer to read than the
         * rows without a trace; a store whose index lacks the no-trace
         * key: the walk. */
        uint64_t base;
        if ((rc = sdb__tix_base(t, project, SDB__TIX_NOTRACE, &base))) goto done;
        bool queue = false;
        for (uint32_t i = 0; i < r.q.n_props; i++)
            queue = queue || sdb__tix_prop_indexed(r.q.props[i].key.p, r.q.props[i].key.len);
        qtotal = base == 0 && !queue;
    }
    list_run w = {.r = &r, .f = &f, .t = t, .project = project, .b = &b,
                  .count = r.total && !qtotal};
    if ((rc = run_list(&w))) goto done;
    uint64_t total = 0;
    bool total_capped = false;
    if (qtotal && (rc = list_total(s, t, project, &f, &total, &total_capped, err, errlen)))
        goto done;
    sdb__j_raw(&b, "],\"next_cursor\":");
    if (w.more && (w.emitted || w.last_ref)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\"%llu\"", (unsigned long long)w.last_ref);
        sdb__j_raw(&b, tmp);
    } else {
        sdb__j_raw(&b, "null");
    }
    if (r.total) {
        if (!qtotal) {
            total = w.skipped + w.emitted + w.extra;
            total_capped = w.capped;
        }
        sdb__j_raw(&b, ",\"total\":");
        sdb__j_u64(&b, total);
        sdb__j_raw(&b, total_capped ? ",\"total_exact\":false" : ",\"total_exact\":true");
    }
    sdb__j_raw(&b, "}");
    rc = take(&b, out_json);
done:
    sdb__txn_abort(t);
    filter_free(&f);
    req_free(&r);
    if (rc) sdb__buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ get, delete */

static int id_key(uint32_t project, const char *id, uint8_t *k, size_t *klen)
{
    size_t n = strlen(id);
    if (n == 0 || n > SDB_MAX_STR) return SDB_ENOTFOUND;
    sdb__be32(k, project);
    memcpy(k + 4, id, n);
    *klen = 4 + n;
    return SDB_OK;
}

int sdb_score_get_json(sdb_store *s, uint32_t project, const char *id, char **out_json)
{
    *out_json = NULL;
    uint8_t k[4 + SDB_MAX_STR];
    size_t klen;
    int rc = id_key(project, id, k, &klen);
    if (rc) return rc;
    sdb__txn *t;
    if ((rc = sdb__txn_begin(s, 0, &t))) return rc;
    sdb__buf b = {0};
    sdb__val v;
    sdb__row row;
    uint64_t ref;
    if ((rc = sdb__id_lookup(t, NULL, project, id, klen - 4, UINT64_MAX, 1, &ref))) goto done;
    if ((rc = sdb__row_get(t, project, ref, &v))) {
        if (rc == SDB_ENOTFOUND) rc = SDB_ECORRUPT;
        goto done;
    }
    if ((rc = sdb__row_decode(v.p, v.len, &row))) goto done;
    if ((rc = render_row(&b, t, project, &row))) goto done;
    rc = take(&b, out_json);
done:
    sdb__txn_abort(t);
    if (rc) sdb__buf_free(&b);
    return rc;
}

typedef struct del_ctx {
    uint32_t project;
    const uint8_t *k;
    size_t klen;
} del_ctx;

static int delete_txn(sdb__txn *t, void *arg)
{
    del_ctx *d = arg;
    uint64_t ref;
    int rc = sdb__id_lookup(t, NULL, d->project, (const char *)d->k + 4, d->klen - 4, UINT64_MAX, 1,
                            &ref);
    if (rc) return rc;
    /* The id index entry stays: it names a row that is gone, which no
     * lookup matches (engine/ids.c), and a merge drops it. */
    return sdb__unlink_row(t, d->project, ref);
}

int sdb_score_delete(sdb_store *s, uint32_t project, const char *id)
{
    uint8_t k[4 + SDB_MAX_STR];
    size_t klen;
    int rc = id_key(project, id, k, &klen);
    if (rc) return rc;
    del_ctx d = {project, k, klen};
    return sdb__write(s, delete_txn, &d);
}

/* ----------------------------------------------------------- trace search */

typedef struct trace_hit {
    char *id; /* owned, NUL-terminated */
    uint64_t count;
    int64_t first, last;
} trace_hit;

typedef struct trace_map {
    trace_hit *v;
    uint32_t *slot; /* open addressing: index + 1 */
    size_t n, cap_v, cap_slot;
} trace_map;

static int tmap_add(trace_map *m, const char *p, size_t len, int64_t ts)
{
    if ((m->n + 1) * 2 > m->cap_slot) {
        size_t cap = m->cap_slot ? m->cap_slot * 2 : 256;
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return SDB_ENOMEM;
        for (size_t i = 0; i < m->n; i++) {
            size_t j = sdb__hash(m->v[i].id, strlen(m->v[i].id)) & (cap - 1);
            while (slot[j]) j = (j + 1) & (cap - 1);
            slot[j] = (uint32_t)i + 1;
        }
        free(m->slot);
        m->slot = slot;
        m->cap_slot = cap;
    }
    size_t j = sdb__hash(p, len) & (m->cap_slot - 1);
    while (m->slot[j]) {
        trace_hit *h = &m->v[m->slot[j] - 1];
        if (strlen(h->id) == len && memcmp(h->id, p, len) == 0) {
            h->count++;
            if (ts < h->first) h->first = ts;
            if (ts > h->last) h->last = ts;
            return SDB_OK;
        }
        j = (j + 1) & (m->cap_slot - 1);
    }
    if (m->n == m->cap_v) {
        size_t cap = m->cap_v ? m->cap_v * 2 : 256;
        trace_hit *v = realloc(m->v, cap * sizeof *v);
        if (!v) return SDB_ENOMEM;
        m->v = v;
        m->cap_v = cap;
    }
    char *id = malloc(len + 1);
    if (!id) return SDB_ENOMEM;
    memcpy(id, p, len);
    id[len] = 0;
    m->v[m->n] = (trace_hit){id, 1, ts, ts};
    m->slot[j] = (uint32_t)++m->n;
    return SDB_OK;
}

static int cmp_hit(const void *a, const void *b)
{
    return strcmp(((const trace_hit *)a)->id, ((const trace_hit *)b)->id);
}

/* The trace search's row callback: one more score of its trace. */
static int hit_row(void *ctx, const sdb__row *row)
{
    if (!row->trace_id.p) return SDB_OK;
    return tmap_add(ctx, row->trace_id.p, row->trace_id.len, row->fx.ts);
}

int sdb__traces_search(sdb_store *s, uint32_t project, const sdb__query *q, uint32_t limit,
                       const char *after, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    sdb__buf b = {0};
    trace_map m = {0};
    rowfilter f;
    list_req r;
    memset(&r, 0, sizeof r);
    r.limit = UINT64_MAX;
    if ((rc = filter_init(t, project, q, &f))) goto done;
    /* The matching scores through the list's reads (the column segments
     * for a name, time or value filter), aggregated by trace. An answer in
     * trace id order needs every match, so past the list's bounds the
     * search is refused rather than cut. */
    list_run w = {.r = &r, .f = &f, .t = t, .project = project, .on_row = hit_row, .ctx = &m};
    if (!f.none && (rc = run_list(&w))) goto done;
    if (w.capped) {
        sdb__errf(err, errlen, "the search would read more than %u scores (or %u column "
                  "entries); narrow it with \"name\", \"from\"/\"to\" or \"where\"",
                  SCAN_MAX, COL_MAX);
        rc = SDB_EINVAL;
        goto done;
    }
    if (m.n > 1) qsort(m.v, m.n, sizeof *m.v, cmp_hit); /* m.v is NULL when empty */
    size_t i = 0;
    if (after)
        while (i < m.n && strcmp(m.v[i].id, after) <= 0) i++;
    sdb__j_raw(&b, "{\"data\":[");
    size_t end = i + limit < m.n ? i + limit : m.n;
    for (size_t j = i; j < end; j++) {
        if (j > i) sdb__j_raw(&b, ",");
        sdb__j_raw(&b, "{\"trace_id\":");
        sdb__j_str(&b, m.v[j].id, strlen(m.v[j].id));
        sdb__j_raw(&b, ",\"count\":");
        sdb__j_u64(&b, m.v[j].count);
        sdb__j_raw(&b, ",\"first\":");
        sdb__j_time(&b, m.v[j].first);
        sdb__j_raw(&b, ",\"last\":");
        sdb__j_time(&b, m.v[j].last);
        sdb__j_raw(&b, "}");
    }
    sdb__j_raw(&b, "],\"next_cursor\":");
    if (end < m.n && end > i)
        sdb__j_str(&b, m.v[end - 1].id, strlen(m.v[end - 1].id));
    else
        sdb__j_raw(&b, "null");
    sdb__j_raw(&b, "}");
    rc = take(&b, out_json);
done:
    sdb__txn_abort(t);
    filter_free(&f);
    for (size_t j = 0; j < m.n; j++) free(m.v[j].id);
    free(m.v);
    free(m.slot);
    if (rc) sdb__buf_free(&b);
    return rc;
}
