/* Detail reads over the row store: list, get and delete one score, and the
 * trace search by score range.
 *
 * Unlike analytics these read `rows`, which holds every acknowledged score
 * at once (DESIGN.md "Aggregation delay": detail and list reads see every
 * acknowledged score). `rows` is keyed project | ref (big-endian), and refs
 * are ingest sequence numbers, so "newest first" is a reverse cursor walk
 * from the end of the project's key range; the pagination cursor is the
 * ref to continue below. Filters are checked per row on the fixed part of
 * the record (dictionary ids resolved once per request), falling back to
 * the record's strings only for trace_id, session_id, tags and properties.
 * A filter value that the dictionary has never seen matches nothing, which
 * is decided before the walk. The walk is bounded by SCAN_MAX rows per
 * request so that a selective filter over a huge store cannot pin a
 * thread: the answer then carries a cursor to continue from.
 */
#include "list.h"
#include "traceidx.h"

#include <errno.h>
#include <math.h>

/* Rows one list call reads at most; tests shrink it to reach past it. */
uint32_t sdb__list_scan_max = 2000000u;
#define SCAN_MAX sdb__list_scan_max
#define LIST_MAX 1000u
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
    const char *trace_id, *session_id;
    uint64_t limit, cursor; /* cursor 0: from the newest */
} list_req;

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

int sdb_scores_list_json(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                         char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    list_req r;
    int rc = parse_params(params, n, &r, err, errlen);
    if (rc) {
        sdb__query_free(&r.q);
        return rc;
    }
    sdb__txn *t = NULL;
    sdb__rowit *it = NULL;
    sdb__buf b = {0};
    rowfilter f;
    memset(&f, 0, sizeof f);
    if ((rc = sdb__txn_begin(s, 0, &t))) goto done;
    if ((rc = filter_init(t, project, &r.q, &f))) goto done;
    f.trace_id = r.trace_id;
    f.session_id = r.session_id;
    sdb__j_raw(&b, "{\"data\":[");
    uint64_t emitted = 0, scanned = 0, last_ref = 0;
    bool more = false;
    uint64_t bound = r.cursor ? r.cursor : UINT64_MAX;
    if (!f.none && f.trace_id) {
        /* One trace: its rows through the trace index, newest first. */
        uint64_t *refs = NULL, base;
        size_t n_refs;
        rc = sdb__tix_refs(t, project, sdb__tix_hash(f.trace_id, strlen(f.trace_id)), bound,
                           SCAN_MAX, &refs, &n_refs, &base);
        for (size_t i = 0; rc == SDB_OK && i < n_refs && !more; i++) {
            sdb__val val;
            sdb__row row;
            if (emitted == r.limit) {
                more = true;
                break;
            }
            scanned++;
            rc = sdb__row_get(t, project, refs[i], &val);
            if (rc == SDB_ENOTFOUND) { /* replaced or deleted since */
                rc = SDB_OK;
                continue;
            }
            if (rc || (rc = sdb__row_decode(val.p, val.len, &row))) break;
            last_ref = refs[i];
            if (!filter_match(&f, &row)) continue;
            if (emitted++) sdb__j_raw(&b, ",");
            rc = render_row(&b, t, project, &row);
        }
        if (rc == SDB_OK && !more && n_refs == SCAN_MAX) { /* the answer was cut: go on below */
            more = true;
            last_ref = refs[n_refs - 1];
        }
        free(refs);
        if (rc) goto done;
        /* Rows folded before the index existed are walked, as before it. */
        if (!more && base && emitted == r.limit) more = true;
        if (more || !base) f.none = true; /* nothing left to walk */
        else if (base + 1 < bound) bound = base + 1;
    }
    if (!f.none) {
        /* Newest first: backwards from the cursor (exclusive) or the end. */
        if ((rc = sdb__rows_open(t, project, bound, 1, &it))) goto done;
        uint64_t ref;
        sdb__val val;
        while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK) {
            if (emitted == r.limit || scanned == SCAN_MAX) {
                more = true;
                break;
            }
            scanned++;
            last_ref = ref;
            sdb__row row;
            if ((rc = sdb__row_decode(val.p, val.len, &row))) goto done;
            if (!filter_match(&f, &row)) continue;
            if (emitted++) sdb__j_raw(&b, ",");
            if ((rc = render_row(&b, t, project, &row))) goto done;
        }
        if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
        rc = SDB_OK;
    }
    sdb__j_raw(&b, "],\"next_cursor\":");
    if (more) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "\"%llu\"", (unsigned long long)last_ref);
        sdb__j_raw(&b, tmp);
    } else {
        sdb__j_raw(&b, "null");
    }
    sdb__j_raw(&b, "}");
    rc = take(&b, out_json);
done:
    sdb__rows_close(it);
    sdb__txn_abort(t);
    filter_free(&f);
    sdb__query_free(&r.q);
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

int sdb__traces_search(sdb_store *s, uint32_t project, const sdb__query *q, uint32_t limit,
                       const char *after, char **out_json)
{
    *out_json = NULL;
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    sdb__rowit *it = NULL;
    sdb__buf b = {0};
    trace_map m = {0};
    rowfilter f;
    if ((rc = filter_init(t, project, q, &f))) goto done;
    if (!f.none) {
        if ((rc = sdb__rows_open(t, project, 0, 0, &it))) goto done;
        uint64_t ref;
        sdb__val val;
        while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK) {
            sdb__row row;
            if ((rc = sdb__row_decode(val.p, val.len, &row))) goto done;
            if (!row.trace_id.p || !filter_match(&f, &row)) continue;
            if ((rc = tmap_add(&m, row.trace_id.p, row.trace_id.len, row.fx.ts))) goto done;
        }
        if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
        rc = SDB_OK;
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
    sdb__rows_close(it);
    sdb__txn_abort(t);
    filter_free(&f);
    for (size_t j = 0; j < m.n; j++) free(m.v[j].id);
    free(m.v);
    free(m.slot);
    if (rc) sdb__buf_free(&b);
    return rc;
}
