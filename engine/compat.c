/* Compatible request and answer shapes: what Langfuse and Helicone clients
 * send and expect, reshaped to and from scoredb's own (API.md "HTTP API
 * (compatible)").
 *
 * Nothing here validates a score by itself: a Langfuse or Helicone score is
 * renamed into a native score object and handed to sdb_batch_add_json, and
 * analytics go through the native query object and sdb_query_json, so the
 * rules and the numbers are the native ones (an average is sum / count over
 * every score, never an average of hourly averages; histogram bins are the
 * caller's). What this file adds: field renaming both ways (with error
 * messages that name the caller's field, not ours), Langfuse's per-event
 * multi-status report, page/limit pagination with totals over the native
 * cursor walk, Helicone's filter tree for the few columns scoredb has, and
 * Langfuse score configs, stored as JSON text in the `meta` database under
 * "lfcfg:" | project (big-endian) | config id, so that a score naming a
 * configId is checked against its data type, range or categories.
 *
 * The workload is the API surface of existing SDKs: correctness and clear
 * errors matter more than speed here. Answers are written with the engine's
 * shortest-round-trip number emitters, so 0.1 comes back as 0.1.
 */
#include "query.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>

#define ERR_MAX 512
#define CFG_PREFIX "lfcfg:"
#define CFG_PREFIX_LEN 6
#define LIST_PAGE 1000 /* native page size while walking a Langfuse list */

/* ---------------------------------------------------------------- output */

static void emit(sdb__buf *b, const json_t *v)
{
    char tmp[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        sdb__j_raw(b, "{");
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first) sdb__j_raw(b, ",");
            first = 0;
            sdb__j_str(b, k, strlen(k));
            sdb__j_raw(b, ":");
            emit(b, x);
        }
        sdb__j_raw(b, "}");
        break;
    }
    case JSON_ARRAY:
        sdb__j_raw(b, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) sdb__j_raw(b, ",");
            emit(b, json_array_get(v, i));
        }
        sdb__j_raw(b, "]");
        break;
    case JSON_STRING: sdb__j_str(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        sdb__j_raw(b, tmp);
        break;
    case JSON_REAL: sdb__j_num(b, json_real_value(v)); break;
    case JSON_TRUE: sdb__j_raw(b, "true"); break;
    case JSON_FALSE: sdb__j_raw(b, "false"); break;
    case JSON_NULL: sdb__j_raw(b, "null"); break;
    }
}

/* Render v as JSON text into *out (caller frees). Takes v. */
static int finish(json_t *v, char **out)
{
    *out = NULL;
    if (!v) return SDB_ENOMEM;
    sdb__buf b = {0};
    emit(&b, v);
    json_decref(v);
    if (sdb__buf_add(&b, "", 1)) {
        sdb__buf_free(&b);
        return SDB_ENOMEM;
    }
    *out = b.p;
    return SDB_OK;
}

/* A number as a JSON value: integral values as integers. */
static json_t *num(double x)
{
    if (x == floor(x) && fabs(x) < 9e15) return json_integer((json_int_t)x);
    return json_real(x);
}

/* v, or NULL when absent or null (borrowed). */
static json_t *get(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v) ? v : NULL;
}

static int load_obj(const char *text, size_t len, const char *what, json_t **out, char *err,
                    size_t errlen)
{
    json_error_t je;
    *out = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        sdb__json_load_error(text ? text : "", len, je.line, je.column, je.text, err, errlen);
        return SDB_EINVAL;
    }
    if (!json_is_object(*out)) {
        sdb__errf(err, errlen, "%s: expected a JSON object", what);
        json_decref(*out);
        *out = NULL;
        return SDB_EINVAL;
    }
    return SDB_OK;
}

static int parse_uint(const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out,
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

/* A page of `total` items: {"page","limit","totalItems","totalPages"}. */
static json_t *page_meta(uint64_t page, uint64_t limit, uint64_t total)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "page", (json_int_t)page, "limit", (json_int_t)limit,
                     "totalItems", (json_int_t)total, "totalPages",
                     (json_int_t)((total + limit - 1) / limit));
}

static int type_of(const char *s)
{
    for (int i = 0; i < SDB_N_TYPES; i++)
        if (!strcmp(s, sdb__type_names[i])) return i;
    return -1;
}

static int source_of(const char *s)
{
    for (int i = 0; i < SDB_N_SOURCES; i++)
        if (!strcmp(s, sdb__source_names[i])) return i;
    return -1;
}

/* ------------------------------------------------------ Langfuse: fields */

/* Langfuse's camelCase score fields and the native field each becomes. */
static const char *const lf_names[][2] = {
    {"id", "id"},
    {"name", "name"},
    {"value", "value"},
    {"traceId", "trace_id"},
    {"observationId", "observation_id"},
    {"sessionId", "session_id"},
    {"datasetRunId", "dataset_run_id"},
    {"comment", "comment"},
    {"dataType", "data_type"},
    {"configId", "config_id"},
    {"environment", "environment"},
    {"metadata", "metadata"},
    {"timestamp", "timestamp"},
    {"source", "source"},
    {"authorUserId", "author"},
};
#define N_LF_NAMES (sizeof lf_names / sizeof lf_names[0])

/* Sent by Langfuse SDKs and accepted, but not stored: scoredb has no
 * annotation queues (an honest gap; see README "Compatible APIs"). */
static const char *const lf_ignored[] = {"queueId"};

/* Rewrite the native field names in a native message (`field "trace_id":
 * needs ...`) into Langfuse's (`traceId`): the caller should read the
 * names it sent. Whole words only. */
static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void rename_in_message(char *err, size_t errlen)
{
    if (!err || !errlen) return;
    char out[ERR_MAX];
    size_t o = 0;
    for (const char *p = err; *p && o + 1 < sizeof out;) {
        size_t i = N_LF_NAMES;
        if (p == err || !word_char(p[-1]))
            for (i = 0; i < N_LF_NAMES; i++) {
                size_t l = strlen(lf_names[i][1]);
                if (!strncmp(p, lf_names[i][1], l) && !word_char(p[l])) break;
            }
        if (i < N_LF_NAMES) {
            size_t l = strlen(lf_names[i][0]);
            if (o + l >= sizeof out) break;
            memcpy(out + o, lf_names[i][0], l);
            o += l;
            p += strlen(lf_names[i][1]);
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    snprintf(err, errlen, "%s", out);
}

/* --------------------------------------------------- Langfuse: configs */

static size_t cfg_key(uint8_t *k, uint32_t project, const char *id, size_t idlen)
{
    memcpy(k, CFG_PREFIX, CFG_PREFIX_LEN);
    sdb__be32(k + CFG_PREFIX_LEN, project);
    memcpy(k + CFG_PREFIX_LEN + 4, id, idlen);
    return CFG_PREFIX_LEN + 4 + idlen;
}

/* The stored config `id` of `project` as a new json_t reference. */
static int cfg_load(sdb_store *s, uint32_t project, const char *id, json_t **out)
{
    *out = NULL;
    size_t idlen = strlen(id);
    if (idlen == 0 || idlen > SDB_MAX_STR) return SDB_ENOTFOUND;
    uint8_t k[CFG_PREFIX_LEN + 4 + SDB_MAX_STR];
    size_t kl = cfg_key(k, project, id, idlen);
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    sdb__val v;
    rc = sdb__get(t, SDB__DB_META, k, kl, &v);
    if (rc == SDB_OK) {
        *out = json_loadb(v.p, v.len, 0, NULL);
        if (!*out || !json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = SDB_ECORRUPT;
        }
    }
    sdb__txn_abort(t);
    return rc;
}

/* Check a native score object `n` (being built from a Langfuse body)
 * against score config `cfg`: name, archived, data type (taken from the
 * config when the score gives none), range, categories (a category's
 * numeric value is accepted and stored as its label). */
static int cfg_check(const json_t *cfg, json_t *n, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(cfg, "id"));
    const char *cname = json_string_value(json_object_get(cfg, "name"));
    const char *ctype = json_string_value(json_object_get(cfg, "dataType"));
    json_t *name = get(n, "name"), *value = get(n, "value"), *dt = get(n, "data_type");
    if (!id || !cname || !ctype) return SDB_ECORRUPT;
    if (json_is_true(json_object_get(cfg, "isArchived"))) {
        sdb__errf(err, errlen, "field \"configId\": score config \"%s\" is archived", id);
        return SDB_EINVAL;
    }
    if (name && json_is_string(name) && strcmp(json_string_value(name), cname)) {
        sdb__errf(err, errlen,
                  "field \"name\": \"%.200s\" differs from \"%.200s\", the name of score "
                  "config \"%s\"",
                  json_string_value(name), cname, id);
        return SDB_EINVAL;
    }
    if (dt && (!json_is_string(dt) || strcmp(json_string_value(dt), ctype))) {
        sdb__errf(err, errlen, "field \"dataType\": score config \"%s\" takes %s", id, ctype);
        return SDB_EINVAL;
    }
    json_object_set_new(n, "data_type", json_string(ctype));
    if (!value) return SDB_OK; /* the native parser says "required" */
    if (!strcmp(ctype, "NUMERIC")) {
        if (!json_is_number(value)) {
            sdb__errf(err, errlen, "field \"value\": score config \"%s\" takes a number", id);
            return SDB_EINVAL;
        }
        double x = json_number_value(value);
        json_t *lo = get(cfg, "minValue"), *hi = get(cfg, "maxValue");
        if ((lo && x < json_number_value(lo)) || (hi && x > json_number_value(hi))) {
            char a[40] = "-inf", b[40] = "+inf", xs[40];
            if (lo) snprintf(a, sizeof a, "%g", json_number_value(lo));
            if (hi) snprintf(b, sizeof b, "%g", json_number_value(hi));
            snprintf(xs, sizeof xs, "%g", x);
            sdb__errf(err, errlen,
                      "field \"value\": %s is outside [%s, %s], the range of score config "
                      "\"%s\"",
                      xs, a, b, id);
            return SDB_EINVAL;
        }
        return SDB_OK;
    }
    if (!strcmp(ctype, "BOOLEAN")) {
        if (json_is_boolean(value) ||
            (json_is_number(value) &&
             (json_number_value(value) == 0 || json_number_value(value) == 1)))
            return SDB_OK;
        sdb__errf(err, errlen,
                  "field \"value\": score config \"%s\" is BOOLEAN and takes 0, 1, true or false",
                  id);
        return SDB_EINVAL;
    }
    json_t *cats = json_object_get(cfg, "categories");
    size_t i;
    json_t *c;
    json_array_foreach(cats, i, c)
    {
        json_t *label = json_object_get(c, "label"), *cv = json_object_get(c, "value");
        if (json_is_string(value) && json_equal(value, label)) return SDB_OK;
        if (json_is_number(value) && json_is_number(cv) &&
            json_number_value(value) == json_number_value(cv)) {
            json_object_set(n, "value", label);
            return SDB_OK;
        }
    }
    sdb__errf(err, errlen,
              "field \"value\": not one of the categories of score config \"%s\" (a label, or "
              "its numeric value)",
              id);
    return SDB_EINVAL;
}

/* ------------------------------------------- Langfuse: score in and out */

/* A native score object (new reference in *out) from a Langfuse score
 * body; `event_ts` (may be NULL) is the ingestion event's timestamp, used
 * when the body has none. */
static int lf_to_native(sdb_store *s, uint32_t project, const json_t *lf, const json_t *event_ts,
                        json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(lf)) {
        sdb__errf(err, errlen, "body: expected a score object");
        return SDB_EINVAL;
    }
    json_t *n = json_object();
    if (!n) return SDB_ENOMEM;
    const char *k;
    json_t *v;
    int rc = SDB_OK;
    json_object_foreach((json_t *)lf, k, v)
    {
        size_t i;
        for (i = 0; i < N_LF_NAMES && strcmp(k, lf_names[i][0]); i++) {
        }
        if (i < N_LF_NAMES) {
            if (!strcmp(k, "metadata") && !json_is_null(v) && !json_is_object(v)) {
                sdb__errf(err, errlen, "field \"metadata\": scoredb stores metadata that is a "
                                       "JSON object");
                rc = SDB_EINVAL;
                break;
            }
            json_object_set(n, lf_names[i][1], v);
            continue;
        }
        for (i = 0; i < sizeof lf_ignored / sizeof lf_ignored[0] && strcmp(k, lf_ignored[i]);
             i++) {
        }
        if (i == sizeof lf_ignored / sizeof lf_ignored[0]) {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            break;
        }
    }
    if (rc == SDB_OK && !get(n, "trace_id") && !get(n, "session_id") &&
        !get(n, "dataset_run_id")) {
        sdb__errf(err, errlen, "a score needs at least one of traceId, sessionId or datasetRunId");
        rc = SDB_EINVAL;
    }
    if (rc == SDB_OK && !get(n, "timestamp") && event_ts)
        json_object_set(n, "timestamp", (json_t *)event_ts);
    json_t *cid = get(n, "config_id");
    if (rc == SDB_OK && cid) {
        json_t *cfg = NULL;
        if (!json_is_string(cid)) {
            sdb__errf(err, errlen, "field \"configId\": expected a string");
            rc = SDB_EINVAL;
        } else if ((rc = cfg_load(s, project, json_string_value(cid), &cfg)) == SDB_ENOTFOUND) {
            sdb__errf(err, errlen, "field \"configId\": no score config \"%.200s\"",
                      json_string_value(cid));
            rc = SDB_EINVAL;
        } else if (rc == SDB_OK) {
            rc = cfg_check(cfg, n, err, errlen);
        }
        json_decref(cfg);
    }
    if (rc) {
        json_decref(n);
        return rc;
    }
    *out = n;
    return SDB_OK;
}

/* Validate a native object into the batch, naming Langfuse's fields. */
static int add_obj(sdb_batch *b, const json_t *n, char *err, size_t errlen)
{
    char *text = json_dumps(n, JSON_COMPACT);
    if (!text) return SDB_ENOMEM;
    int rc = sdb_batch_add_json(b, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

static int add_native(sdb_batch *b, json_t *n, char *err, size_t errlen)
{
    int rc = add_obj(b, n, err, errlen);
    if (rc == SDB_EINVAL) rename_in_message(err, errlen);
    return rc;
}

int sdb_langfuse_score_add(sdb_store *s, uint32_t project, sdb_batch *b, const char *body,
                           size_t len, char *err, size_t errlen)
{
    json_t *o, *n = NULL;
    int rc = load_obj(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    rc = lf_to_native(s, project, o, NULL, &n, err, errlen);
    if (rc == SDB_OK) rc = add_native(b, n, err, errlen);
    json_decref(n);
    json_decref(o);
    return rc;
}

/* A Langfuse score (GetScoresResponseData) from a native one: new ref. */
static json_t *lf_from_native(const json_t *n)
{
    const char *type = json_string_value(json_object_get(n, "data_type"));
    json_t *value = json_object_get(n, "value");
    json_t *meta = get(n, "metadata");
    json_t *o = json_pack(
        "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:o,s:O?,s:n,s:O?,s:O?}", "id",
        json_object_get(n, "id"), "traceId", json_object_get(n, "trace_id"), "sessionId",
        json_object_get(n, "session_id"), "observationId", json_object_get(n, "observation_id"),
        "datasetRunId", json_object_get(n, "dataset_run_id"), "name", json_object_get(n, "name"),
        "source", json_object_get(n, "source"), "timestamp", json_object_get(n, "timestamp"),
        "createdAt", json_object_get(n, "created_at"), "updatedAt",
        json_object_get(n, "created_at"), "authorUserId", json_object_get(n, "author"), "comment",
        json_object_get(n, "comment"), "metadata", meta ? json_incref(meta) : json_object(),
        "configId", json_object_get(n, "config_id"), "queueId", "environment",
        json_object_get(n, "environment"), "dataType", json_object_get(n, "data_type"));
    if (!o) return NULL;
    if (type && !strcmp(type, "BOOLEAN")) {
        json_object_set_new(o, "value", json_integer(json_is_true(value)));
        json_object_set_new(o, "stringValue", json_string(json_is_true(value) ? "True" : "False"));
    } else if (type && !strcmp(type, "CATEGORICAL")) {
        json_object_set_new(o, "value", json_null());
        json_object_set(o, "stringValue", value);
    } else {
        json_object_set(o, "value", value);
    }
    json_object_set_new(o, "trace",
                        json_pack("{s:O?,s:O?,s:O?}", "userId", json_object_get(n, "user_id"),
                                  "tags", json_object_get(n, "tags"), "environment",
                                  json_object_get(n, "environment")));
    return o;
}

int sdb_langfuse_score_get_json(sdb_store *s, uint32_t project, const char *id, char **out_json)
{
    *out_json = NULL;
    char *text = NULL;
    int rc = sdb_score_get_json(s, project, id, &text);
    if (rc) return rc;
    json_t *n = json_loads(text, 0, NULL);
    free(text);
    if (!n) return SDB_ECORRUPT;
    json_t *o = lf_from_native(n);
    json_decref(n);
    return finish(o, out_json);
}

/* ------------------------------------------------ Langfuse: ingestion */

static int ingest_error(json_t *errors, json_t *id, int status, const char *msg,
                        const char *kind)
{
    return json_array_append_new(errors, json_pack("{s:O,s:i,s:s,s:s}", "id", id, "status",
                                                   status, "message", msg, "error", kind))
               ? SDB_ENOMEM
               : SDB_OK;
}

int sdb_langfuse_ingest(sdb_store *s, uint32_t project, sdb_batch *b, const char *body,
                        size_t len, size_t max_events, char **out_json, size_t *out_n_errors,
                        char *err, size_t errlen)
{
    *out_json = NULL;
    *out_n_errors = 0;
    json_t *o;
    /* An event whose strings break the string rules (a raw control byte,
     * \u0000: docs/input.md) is refused alone, like a row of a native
     * batch; jansson would refuse the whole text, so it reads a copy with
     * those bytes blanked. */
    sdb__jbads bads;
    char *blanked;
    int rc = sdb__json_strings_blank(body ? body : "", len, "batch", &blanked, &bads, err, errlen);
    if (rc) return rc;
    rc = load_obj(blanked ? blanked : body, len, "body", &o, err, errlen);
    free(blanked);
    if (rc) {
        sdb__jbads_free(&bads);
        return rc;
    }
    json_t *batch = json_object_get(o, "batch");
    json_t *ok = json_array(), *errors = json_array();
    if (!ok || !errors) {
        rc = SDB_ENOMEM;
        goto done;
    }
    if (!json_is_array(batch)) {
        sdb__errf(err, errlen, "field \"batch\": expected an array of ingestion events");
        rc = SDB_EINVAL;
        goto done;
    }
    if (json_array_size(batch) > max_events) {
        sdb__errf(err, errlen, "field \"batch\": more than %zu events in one request",
                  max_events);
        rc = SDB_EINVAL;
        goto done;
    }
    size_t i;
    json_t *ev;
    json_array_foreach(batch, i, ev)
    {
        char msg[ERR_MAX] = "";
        json_t *id = json_object_get(ev, "id"), *type = json_object_get(ev, "type");
        json_t *evbody = json_object_get(ev, "body"), *n = NULL;
        json_t *idv = json_is_string(id) ? id : json_null();
        const char *bad = sdb__jbads_msg(&bads, (long)i);
        if (bad) {
            snprintf(msg, sizeof msg, "batch[%zu]: %.480s", i, bad);
            rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
        } else if (!json_is_object(ev) || !json_is_string(id) || !json_is_string(type)) {
            snprintf(msg, sizeof msg,
                     "batch[%zu]: an event is an object with string \"id\" and \"type\"", i);
            rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
        } else if (strcmp(json_string_value(type), "score-create")) {
            snprintf(msg, sizeof msg,
                     "batch[%zu]: event type \"%.100s\" is not stored; scoredb keeps scores "
                     "(score-create) only",
                     i, json_string_value(type));
            rc = ingest_error(errors, idv, 400, msg, "UnsupportedEventType");
        } else {
            int r = lf_to_native(s, project, evbody, get(ev, "timestamp"), &n, msg, sizeof msg);
            if (r == SDB_OK) r = add_native(b, n, msg, sizeof msg);
            json_decref(n);
            if (r == SDB_OK) {
                rc = json_array_append_new(ok, json_pack("{s:O,s:i}", "id", id, "status", 201))
                         ? SDB_ENOMEM
                         : SDB_OK;
            } else if (r == SDB_EINVAL) {
                char full[ERR_MAX + 32];
                snprintf(full, sizeof full, "batch[%zu].body: %.480s", i, msg);
                rc = ingest_error(errors, idv, 400, full, "InvalidRequestError");
            } else {
                rc = r;
            }
        }
        if (rc) goto done;
    }
    *out_n_errors = json_array_size(errors);
    rc = finish(json_pack("{s:O,s:O}", "successes", ok, "errors", errors), out_json);
done:
    json_decref(ok);
    json_decref(errors);
    json_decref(o);
    sdb__jbads_free(&bads);
    return rc;
}

/* --------------------------------------------- Langfuse: list scores */

typedef struct lf_list {
    uint64_t page, limit;
    const char *observation_id, *dataset_run_id, *config_id, *queue_id, *score_ids;
    const char **tags;
    size_t n_tags;
    bool has_value;
    double value;
    const char *op; /* "=", "!=", "<", "<=", ">", ">=" */
} lf_list;

static bool opt_match(const json_t *n, const char *key, const char *want)
{
    if (!want) return true;
    const char *v = json_string_value(json_object_get(n, key));
    return v && !strcmp(v, want);
}

static bool lf_match(const lf_list *f, const json_t *n)
{
    if (!opt_match(n, "observation_id", f->observation_id) ||
        !opt_match(n, "dataset_run_id", f->dataset_run_id) ||
        !opt_match(n, "config_id", f->config_id))
        return false;
    if (f->queue_id) return false; /* no score carries an annotation queue here */
    if (f->score_ids) {
        const char *id = json_string_value(json_object_get(n, "id"));
        size_t il = id ? strlen(id) : 0;
        bool any = false;
        for (const char *p = f->score_ids; id && *p && !any;) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            any = l == il && !memcmp(p, id, l);
            p += l + (e != NULL);
        }
        if (!any) return false;
    }
    for (size_t i = 0; i < f->n_tags; i++) {
        json_t *tags = json_object_get(n, "tags"), *t;
        size_t j;
        bool has = false;
        json_array_foreach(tags, j, t) has = has || !strcmp(json_string_value(t), f->tags[i]);
        if (!has) return false;
    }
    if (f->has_value) {
        json_t *v = json_object_get(n, "value");
        double x;
        if (json_is_number(v))
            x = json_number_value(v);
        else if (json_is_boolean(v))
            x = json_is_true(v);
        else
            return false;
        const char *op = f->op;
        if (!strcmp(op, "=")) return x == f->value;
        if (!strcmp(op, "!=")) return x != f->value;
        if (!strcmp(op, "<")) return x < f->value;
        if (!strcmp(op, "<=")) return x <= f->value;
        if (!strcmp(op, ">")) return x > f->value;
        return x >= f->value;
    }
    return true;
}

/* Langfuse's parameters into native ones (`np`, n + 2 entries) and the
 * post-filters native listing has no parameter for. */
static int lf_params(const sdb_param *params, size_t n, sdb_param *np, size_t *n_np,
                     lf_list *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->page = 1;
    f->limit = 50;
    f->op = "=";
    f->tags = malloc((n + 1) * sizeof *f->tags);
    if (!f->tags) return SDB_ENOMEM;
    static const char *const direct[][2] = {
        {"name", "name"},           {"traceId", "trace_id"},     {"sessionId", "session_id"},
        {"source", "source"},       {"dataType", "data_type"},   {"environment", "environment"},
        {"userId", "user_id"},      {"fromTimestamp", "from"},   {"toTimestamp", "to"},
    };
    *n_np = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = params[i].key, *v = params[i].value ? params[i].value : "";
        size_t d;
        int rc = SDB_OK;
        for (d = 0; d < sizeof direct / sizeof direct[0] && strcmp(k, direct[d][0]); d++) {
        }
        if (d < sizeof direct / sizeof direct[0]) {
            int64_t ms;
            if ((!strcmp(k, "source") && source_of(v) < 0) ||
                (!strcmp(k, "dataType") && type_of(v) < 0) ||
                (!strncmp(k, "fromT", 5) && sdb_time_parse(v, strlen(v), &ms)) ||
                (!strncmp(k, "toT", 3) && sdb_time_parse(v, strlen(v), &ms))) {
                sdb__errf(err, errlen, "parameter \"%s\": unexpected value \"%.100s\" (%s)", k, v,
                          k[0] == 's'   ? "expected API, EVAL or ANNOTATION"
                          : k[0] == 'd' ? "expected NUMERIC, BOOLEAN or CATEGORICAL"
                                        : "expected an ISO 8601 time");
                return SDB_EINVAL;
            }
            np[(*n_np)++] = (sdb_param){direct[d][1], v};
        } else if (!strcmp(k, "page")) {
            rc = parse_uint(k, v, 1, UINT32_MAX, &f->page, err, errlen);
        } else if (!strcmp(k, "limit")) {
            rc = parse_uint(k, v, 1, 1000, &f->limit, err, errlen);
        } else if (!strcmp(k, "observationId")) {
            f->observation_id = v;
        } else if (!strcmp(k, "datasetRunId")) {
            f->dataset_run_id = v;
        } else if (!strcmp(k, "configId")) {
            f->config_id = v;
        } else if (!strcmp(k, "queueId")) {
            f->queue_id = v;
        } else if (!strcmp(k, "scoreIds")) {
            f->score_ids = v;
        } else if (!strcmp(k, "traceTags")) {
            f->tags[f->n_tags++] = v;
        } else if (!strcmp(k, "value")) {
            char *end;
            f->value = strtod(v, &end);
            if (!*v || *end || !isfinite(f->value)) {
                sdb__errf(err, errlen, "parameter \"value\": expected a number, got \"%.100s\"",
                          v);
                return SDB_EINVAL;
            }
            f->has_value = true;
        } else if (!strcmp(k, "operator")) {
            static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
            size_t o;
            for (o = 0; o < 6 && strcmp(v, ops[o]); o++) {
            }
            if (o == 6) {
                sdb__errf(err, errlen, "parameter \"operator\": expected one of =, !=, <, <=, "
                                       ">, >=, got \"%.20s\"", v);
                return SDB_EINVAL;
            }
            f->op = ops[o];
        } else if (!strcmp(k, "fields") || !strcmp(k, "filter")) {
            if (!strcmp(k, "filter") && *v) {
                sdb__errf(err, errlen, "parameter \"filter\": not supported; use the named "
                                       "parameters");
                return SDB_EINVAL;
            }
        } else {
            sdb__errf(err, errlen, "unknown parameter \"%.100s\"", k);
            return SDB_EINVAL;
        }
        if (rc) return rc;
    }
    return SDB_OK;
}

int sdb_langfuse_scores_list_json(sdb_store *s, uint32_t project, const sdb_param *params,
                                  size_t n, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    lf_list f;
    memset(&f, 0, sizeof f);
    size_t n_np = 0;
    sdb_param *np = malloc((n + 2) * sizeof *np);
    json_t *data = json_array();
    char *cursor = NULL;
    int rc = np && data ? lf_params(params, n, np, &n_np, &f, err, errlen) : SDB_ENOMEM;
    uint64_t total = 0, first = rc ? 0 : (f.page - 1) * f.limit;
    if (rc == SDB_OK) np[n_np] = (sdb_param){"limit", "1000"};
    /* Walk the native newest-first listing page by page; count every
     * match (Langfuse answers with totals) and keep the requested page. */
    while (rc == SDB_OK) {
        size_t m = n_np + 1;
        if (cursor) np[m++] = (sdb_param){"cursor", cursor};
        char *text = NULL;
        if ((rc = sdb_scores_list_json(s, project, np, m, &text, err, errlen))) break;
        json_t *page = json_loads(text, 0, NULL);
        free(text);
        if (!page) {
            rc = SDB_ENOMEM;
            break;
        }
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(page, "data"), i, x)
        {
            if (!lf_match(&f, x)) continue;
            if (total >= first && total < first + f.limit &&
                json_array_append_new(data, lf_from_native(x)))
                rc = SDB_ENOMEM;
            total++;
        }
        free(cursor);
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        cursor = next ? strdup(next) : NULL;
        if (next && !cursor) rc = SDB_ENOMEM;
        json_decref(page);
        if (!cursor) break;
    }
    if (rc == SDB_OK)
        rc = finish(json_pack("{s:O,s:o}", "data", data, "meta", page_meta(f.page, f.limit, total)),
                    out_json);
    free(cursor);
    free(np);
    free(f.tags);
    json_decref(data);
    return rc;
}

/* ----------------------------------------- Langfuse: score configs */

typedef struct cfg_put {
    uint8_t key[CFG_PREFIX_LEN + 4 + SDB_MAX_STR];
    size_t klen;
    const char *text;
} cfg_put;

static int cfg_put_fn(sdb__txn *t, void *ctx)
{
    cfg_put *c = ctx;
    return sdb__put(t, SDB__DB_META, c->key, c->klen, c->text, strlen(c->text), 0);
}

/* The checked config of a create request, as stored (new ref in *out). */
static int cfg_build(const json_t *o, uint32_t project, const char *id, int64_t now_ms,
                     json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "name") && strcmp(k, "dataType") && strcmp(k, "categories") &&
            strcmp(k, "minValue") && strcmp(k, "maxValue") && strcmp(k, "description")) {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            return SDB_EINVAL;
        }
    }
    json_t *name = get(o, "name"), *dt = get(o, "dataType"), *cats = get(o, "categories");
    json_t *lo = get(o, "minValue"), *hi = get(o, "maxValue"), *desc = get(o, "description");
    if (!json_is_string(name) || json_string_length(name) < 1 ||
        json_string_length(name) > SDB_MAX_STR) {
        sdb__errf(err, errlen, "field \"name\": expected a string of 1 to %u bytes", SDB_MAX_STR);
        return SDB_EINVAL;
    }
    int type = json_is_string(dt) ? type_of(json_string_value(dt)) : -1;
    if (type < 0) {
        sdb__errf(err, errlen, "field \"dataType\": expected NUMERIC, BOOLEAN or CATEGORICAL");
        return SDB_EINVAL;
    }
    if ((lo && !json_is_number(lo)) || (hi && !json_is_number(hi))) {
        sdb__errf(err, errlen, "field \"%s\": expected a number",
                  lo && !json_is_number(lo) ? "minValue" : "maxValue");
        return SDB_EINVAL;
    }
    if ((lo || hi) && type != SDB_NUMERIC) {
        sdb__errf(err, errlen, "field \"%s\": only a NUMERIC config has a range",
                  lo ? "minValue" : "maxValue");
        return SDB_EINVAL;
    }
    if (lo && hi && json_number_value(lo) > json_number_value(hi)) {
        sdb__errf(err, errlen, "field \"minValue\": greater than maxValue");
        return SDB_EINVAL;
    }
    if (desc && !json_is_string(desc)) {
        sdb__errf(err, errlen, "field \"description\": expected a string");
        return SDB_EINVAL;
    }
    json_t *cv = NULL;
    if (type == SDB_CATEGORICAL) {
        if (!json_is_array(cats) || json_array_size(cats) == 0 || json_array_size(cats) > 1000) {
            sdb__errf(err, errlen, "field \"categories\": a CATEGORICAL config needs 1 to 1000 "
                                   "categories [{\"label\", \"value\"}]");
            return SDB_EINVAL;
        }
        cv = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(cats, i, c)
        {
            json_t *l = json_object_get(c, "label"), *x = json_object_get(c, "value");
            bool dup = false;
            for (size_t j = 0; j < i && json_is_string(l); j++)
                dup = dup || json_equal(json_object_get(json_array_get(cats, j), "label"), l);
            if (!json_is_object(c) || json_object_size(c) != 2 || !json_is_string(l) ||
                json_string_length(l) < 1 || json_string_length(l) > SDB_MAX_STR ||
                !json_is_number(x) || dup) {
                sdb__errf(err, errlen,
                          "field \"categories[%zu]\": expected {\"label\": a unique string of 1 "
                          "to %u bytes, \"value\": a number}",
                          i, SDB_MAX_STR);
                json_decref(cv);
                return SDB_EINVAL;
            }
            json_array_append_new(cv, json_pack("{s:O,s:o}", "label", l, "value",
                                                num(json_number_value(x))));
        }
    } else if (cats) {
        sdb__errf(err, errlen, "field \"categories\": only a CATEGORICAL config takes categories%s",
                  type == SDB_BOOLEAN ? " (a BOOLEAN config's are True and False)" : "");
        return SDB_EINVAL;
    } else if (type == SDB_BOOLEAN) {
        cv = json_pack("[{s:s,s:i},{s:s,s:i}]", "label", "True", "value", 1, "label", "False",
                       "value", 0);
    }
    char ts[40], pid[16];
    sdb_time_format(now_ms, ts);
    snprintf(pid, sizeof pid, "%u", project);
    json_t *cfg = json_pack("{s:s,s:O,s:s,s:b,s:s,s:s,s:s}", "id", id, "name", name, "dataType",
                            sdb__type_names[type], "isArchived", 0, "createdAt", ts, "updatedAt",
                            ts, "projectId", pid);
    if (!cfg) {
        json_decref(cv);
        return SDB_ENOMEM;
    }
    if (lo) json_object_set_new(cfg, "minValue", num(json_number_value(lo)));
    if (hi) json_object_set_new(cfg, "maxValue", num(json_number_value(hi)));
    if (cv) json_object_set_new(cfg, "categories", cv);
    if (desc) json_object_set(cfg, "description", desc);
    *out = cfg;
    return SDB_OK;
}

int sdb_langfuse_config_create_json(sdb_store *s, uint32_t project, const char *body, size_t len,
                                    int64_t now_ms, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    json_t *o, *cfg = NULL;
    int rc = load_obj(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    sdb_batch *idb = NULL;
    sdb__str id;
    char *text = NULL;
    if ((rc = sdb_batch_new(&idb)) || (rc = sdb__batch_gen_id(idb, &id))) goto done;
    char idz[64];
    snprintf(idz, sizeof idz, "%.*s", (int)id.len, id.p);
    if ((rc = cfg_build(o, project, idz, now_ms, &cfg, err, errlen))) goto done;
    cfg_put put;
    put.klen = cfg_key(put.key, project, idz, strlen(idz));
    if (!(text = json_dumps(cfg, JSON_COMPACT))) {
        rc = SDB_ENOMEM;
        goto done;
    }
    put.text = text;
    if ((rc = sdb__write(s, cfg_put_fn, &put))) goto done;
    rc = finish(json_incref(cfg), out_json);
done:
    free(text);
    json_decref(cfg);
    sdb_batch_free(idb);
    json_decref(o);
    return rc;
}

int sdb_langfuse_config_get_json(sdb_store *s, uint32_t project, const char *id, char **out_json)
{
    *out_json = NULL;
    json_t *cfg;
    int rc = cfg_load(s, project, id, &cfg);
    if (rc) return rc;
    return finish(cfg, out_json);
}

/* Page and limit (Langfuse's defaults 1 and 50); any other parameter is
 * an error. */
static int page_params(const sdb_param *params, size_t n, uint64_t *page, uint64_t *limit,
                       char *err, size_t errlen)
{
    *page = 1;
    *limit = 50;
    for (size_t i = 0; i < n; i++) {
        const char *k = params[i].key, *v = params[i].value ? params[i].value : "";
        int rc;
        if (!strcmp(k, "page"))
            rc = parse_uint(k, v, 1, UINT32_MAX, page, err, errlen);
        else if (!strcmp(k, "limit"))
            rc = parse_uint(k, v, 1, 1000, limit, err, errlen);
        else {
            sdb__errf(err, errlen, "unknown parameter \"%.100s\"", k);
            rc = SDB_EINVAL;
        }
        if (rc) return rc;
    }
    return SDB_OK;
}

int sdb_langfuse_configs_list_json(sdb_store *s, uint32_t project, const sdb_param *params,
                                   size_t n, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    uint64_t page, limit, total = 0;
    int rc = page_params(params, n, &page, &limit, err, errlen);
    if (rc) return rc;
    uint64_t first = (page - 1) * limit;
    json_t *data = json_array();
    sdb__txn *t = NULL;
    sdb__cur *c = NULL;
    uint8_t k[CFG_PREFIX_LEN + 4];
    cfg_key(k, project, "", 0);
    if (!data) rc = SDB_ENOMEM;
    if (rc == SDB_OK) rc = sdb__txn_begin(s, 0, &t);
    if (rc == SDB_OK) rc = sdb__cur_open(t, SDB__DB_META, &c);
    sdb__val key, val;
    if (rc == SDB_OK) rc = sdb__cur_seek(c, k, sizeof k, &key, &val);
    for (; rc == SDB_OK; rc = sdb__cur_next(c, &key, &val)) {
        if (key.len < sizeof k || memcmp(key.p, k, sizeof k)) break;
        if (total >= first && total < first + limit) {
            json_t *cfg = json_loadb(val.p, val.len, 0, NULL);
            if (!cfg) {
                rc = SDB_ECORRUPT;
                break;
            }
            json_array_append_new(data, cfg);
        }
        total++;
    }
    if (rc == SDB_ENOTFOUND || rc == SDB_OK)
        rc = finish(json_pack("{s:O,s:o}", "data", data, "meta", page_meta(page, limit, total)),
                    out_json);
    sdb__cur_close(c);
    sdb__txn_abort(t);
    json_decref(data);
    return rc;
}

int sdb_langfuse_queues_list_json(const sdb_param *params, size_t n, char **out_json, char *err,
                                  size_t errlen)
{
    *out_json = NULL;
    uint64_t page, limit;
    int rc = page_params(params, n, &page, &limit, err, errlen);
    if (rc) return rc;
    return finish(json_pack("{s:[],s:o}", "data", "meta", page_meta(page, limit, 0)), out_json);
}

/* ---------------------------------------------------------- Helicone */

int sdb_helicone_scores_add(sdb_batch *b, const char *request_id, const char *body, size_t len,
                            char *err, size_t errlen)
{
    size_t rl = strlen(request_id);
    if (rl < 1 || rl > SDB_MAX_STR) {
        sdb__errf(err, errlen, "path \"requestId\": must be 1 to %u bytes", SDB_MAX_STR);
        return SDB_EINVAL;
    }
    json_t *o;
    int rc = load_obj(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    json_t *scores = json_object_get(o, "scores");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "scores")) {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            goto done;
        }
    }
    if (!json_is_object(scores)) {
        sdb__errf(err, errlen, "field \"scores\": expected an object of name: number or boolean");
        rc = SDB_EINVAL;
        goto done;
    }
    json_object_foreach(scores, k, v)
    {
        if (!json_is_number(v) && !json_is_boolean(v)) {
            sdb__errf(err, errlen, "field \"scores.%.200s\": expected a number or a boolean", k);
            rc = SDB_EINVAL;
            break;
        }
        /* One score per (request, name), as Helicone keeps them: sending
         * the same name again replaces the value. */
        char id[SDB_MAX_STR + 1];
        size_t kl = strlen(k);
        if (rl + kl + 4 <= SDB_MAX_STR) {
            snprintf(id, sizeof id, "hc:%s:%s", request_id, k);
        } else {
            uint64_t h1 = sdb__hash(request_id, rl), h2 = sdb__hash(k, kl);
            snprintf(id, sizeof id, "hc:%016llx%016llx", (unsigned long long)h1,
                     (unsigned long long)h2);
        }
        json_t *n = json_pack("{s:s,s:s,s:O,s:s}", "id", id, "name", k, "value", v, "trace_id",
                              request_id);
        char msg[ERR_MAX] = "";
        rc = n ? add_obj(b, n, msg, sizeof msg) : SDB_ENOMEM;
        json_decref(n);
        if (rc == SDB_EINVAL) {
            const char *m = msg;
            const char *q = strncmp(m, "field \"", 7) ? NULL : strchr(m + 7, '"');
            if (q) m = q + 1; /* drop the native field name */
            if (*m == ':') m++;
            sdb__errf(err, errlen, "field \"scores.%.200s\":%s", k, m);
        }
        if (rc) break;
    }
done:
    if (rc) sdb_batch_clear(b);
    json_decref(o);
    return rc;
}

/* {"data": data, "error": null}, Helicone's result envelope. Takes data. */
static int hc_result(json_t *data, char **out)
{
    return finish(data ? json_pack("{s:o,s:n}", "data", data, "error") : NULL, out);
}

int sdb_helicone_names_json(sdb_store *s, uint32_t project, char **out_json)
{
    *out_json = NULL;
    char *text;
    int rc = sdb_names_json(s, project, &text);
    if (rc) return rc;
    json_t *names = json_loads(text, 0, NULL), *data = json_array(), *x;
    free(text);
    size_t i;
    json_array_foreach(names, i, x)
    {
        const char *t = json_string_value(json_object_get(x, "data_type"));
        if (t && strcmp(t, "CATEGORICAL")) json_array_append(data, json_object_get(x, "name"));
    }
    json_decref(names);
    return hc_result(data, out_json);
}

/* Add `value` to where[key] (an "any of" list). Two different values for
 * one column under AND match nothing: *none is set. */
static void where_add(json_t *where, const char *key, json_t *value, bool *none)
{
    json_t *l = json_object_get(where, key);
    if (l) {
        if (!json_equal(json_array_get(l, 0), value)) *none = true;
        return;
    }
    json_object_set_new(where, key, json_pack("[O]", value));
}

/* The "equals" string of a Helicone text operator object. */
static json_t *equals_of(const json_t *ops, const char *path, char *err, size_t errlen)
{
    json_t *e = json_object_get(ops, "equals");
    if (!json_is_object(ops) || json_object_size(ops) != 1 || !json_is_string(e)) {
        sdb__errf(err, errlen, "field \"%s\": scoredb supports {\"equals\": string} here", path);
        return NULL;
    }
    return e;
}

/* Helicone's filter tree (EvalFilterNode) into a native where object:
 * "all", {}, AND branches, and leaves on model, user_id, prompt_version and
 * properties with "equals". */
static int hc_filter(const json_t *f, json_t *where, const char *path, bool *none, char *err,
                     size_t errlen)
{
    if (json_is_string(f) && !strcmp(json_string_value(f), "all")) return SDB_OK;
    if (!json_is_object(f)) {
        sdb__errf(err, errlen, "field \"%s\": expected \"all\", a leaf or a branch", path);
        return SDB_EINVAL;
    }
    if (json_object_size(f) == 0) return SDB_OK;
    json_t *op = json_object_get(f, "operator");
    char sub[256];
    if (op) {
        if (!json_is_string(op) || strcmp(json_string_value(op), "and")) {
            sdb__errf(err, errlen, "field \"%s.operator\": scoredb supports \"and\" only", path);
            return SDB_EINVAL;
        }
        snprintf(sub, sizeof sub, "%.200s.left", path);
        int rc = hc_filter(json_object_get(f, "left"), where, sub, none, err, errlen);
        snprintf(sub, sizeof sub, "%.200s.right", path);
        return rc ? rc : hc_filter(json_object_get(f, "right"), where, sub, none, err, errlen);
    }
    const char *table, *col;
    json_t *cols, *ops;
    json_object_foreach((json_t *)f, table, cols)
    {
        if (strcmp(table, "request_response_rmt") || !json_is_object(cols)) {
            sdb__errf(err, errlen, "field \"%s.%.100s\": scoredb filters request_response_rmt "
                                   "columns only", path, table);
            return SDB_EINVAL;
        }
        json_object_foreach(cols, col, ops)
        {
            snprintf(sub, sizeof sub, "%.150s.%s.%.60s", path, table, col);
            if (!strcmp(col, "model") || !strcmp(col, "user_id") ||
                !strcmp(col, "prompt_version")) {
                json_t *e = equals_of(ops, sub, err, errlen);
                if (!e) return SDB_EINVAL;
                where_add(where, col, e, none);
            } else if (!strcmp(col, "properties") && json_is_object(ops)) {
                const char *pk;
                json_t *pops;
                json_t *props = json_object_get(where, "properties");
                if (!props) json_object_set_new(where, "properties", props = json_object());
                json_object_foreach(ops, pk, pops)
                {
                    char psub[320];
                    snprintf(psub, sizeof psub, "%.250s.%.60s", sub, pk);
                    json_t *e = equals_of(pops, psub, err, errlen);
                    if (!e) return SDB_EINVAL;
                    where_add(props, pk, e, none);
                }
            } else {
                sdb__errf(err, errlen, "field \"%s\": not a column scoredb filters on (model, "
                                       "user_id, prompt_version, properties)", sub);
                return SDB_EINVAL;
            }
        }
    }
    return SDB_OK;
}

typedef struct hc_params {
    json_t *query;  /* native query object */
    uint64_t offset, limit;
    bool none;      /* the filter can match nothing */
} hc_params;

/* EvalQueryParams into a native query grouped by name. `dist` allows the
 * distribution extensions (bins, min, max). */
static int hc_parse(const char *body, size_t len, bool dist, hc_params *p, char *err,
                    size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->limit = UINT64_MAX;
    json_t *o;
    int rc = load_obj(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "filter") && strcmp(k, "timeFilter") && strcmp(k, "offset") &&
            strcmp(k, "limit") && strcmp(k, "timeZoneDifference") &&
            (!dist || (strcmp(k, "bins") && strcmp(k, "min") && strcmp(k, "max")))) {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            goto done;
        }
    }
    json_t *tf = json_object_get(o, "timeFilter"), *f = json_object_get(o, "filter");
    json_t *start = json_object_get(tf, "start"), *end = json_object_get(tf, "end");
    int64_t t0, t1;
    if (!json_is_object(tf)) {
        sdb__errf(err, errlen, "field \"timeFilter\": required, {\"start\", \"end\"}");
        rc = SDB_EINVAL;
        goto done;
    }
    if (!json_is_string(start) ||
        sdb_time_parse(json_string_value(start), json_string_length(start), &t0) ||
        !json_is_string(end) ||
        sdb_time_parse(json_string_value(end), json_string_length(end), &t1)) {
        sdb__errf(err, errlen, "field \"timeFilter.%s\": expected an ISO 8601 time",
                  !json_is_string(start) ||
                          sdb_time_parse(json_string_value(start), json_string_length(start), &t0)
                      ? "start"
                      : "end");
        rc = SDB_EINVAL;
        goto done;
    }
    if (t1 <= t0) {
        sdb__errf(err, errlen, "field \"timeFilter.end\": must be after start");
        rc = SDB_EINVAL;
        goto done;
    }
    if (!f) {
        sdb__errf(err, errlen, "field \"filter\": required (\"all\" for none)");
        rc = SDB_EINVAL;
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        json_t *x = json_object_get(o, i ? "limit" : "offset");
        if (!x) continue;
        double d = json_number_value(x);
        if (!json_is_number(x) || d < 0 || d != floor(d) || (i && d < 1)) {
            sdb__errf(err, errlen, "field \"%s\": expected a whole number%s", i ? "limit" : "offset",
                      i ? " of at least 1" : "");
            rc = SDB_EINVAL;
            goto done;
        }
        *(i ? &p->limit : &p->offset) = (uint64_t)d;
    }
    json_t *tz = json_object_get(o, "timeZoneDifference");
    if (tz && !json_is_number(tz)) {
        sdb__errf(err, errlen, "field \"timeZoneDifference\": expected a number");
        rc = SDB_EINVAL;
        goto done;
    }
    json_t *where = json_object();
    p->query = json_pack("{s:O,s:O,s:o,s:[s]}", "from", start, "to", end, "where", where,
                         "group_by", "name");
    if (!p->query) {
        rc = SDB_ENOMEM;
        goto done;
    }
    if ((rc = hc_filter(f, where, "filter", &p->none, err, errlen))) goto done;
    if (dist) {
        json_t *bins = json_object_get(o, "bins"), *lo = get(o, "min"), *hi = get(o, "max");
        json_t *h = json_object();
        json_object_set_new(h, "bins", bins ? json_incref(bins) : json_integer(10));
        if (lo) json_object_set(h, "min", lo);
        if (hi) json_object_set(h, "max", hi);
        json_object_set_new(p->query, "histogram", h);
        json_object_set_new(p->query, "stats", json_pack("[s]", "count"));
    } else {
        /* Hourly like Helicone's own, coarser past 1000 points. */
        int64_t span = t1 - t0;
        const char *iv = span <= 1000ll * 3600000 ? "1h" : span <= 1000ll * 86400000 ? "1d" : "1w";
        json_object_set_new(p->query, "interval", json_string(iv));
        json_object_set_new(p->query, "stats", json_pack("[s,s,s,s]", "count", "avg", "min", "max"));
    }
done:
    if (rc) {
        json_decref(p->query);
        p->query = NULL;
    }
    json_decref(o);
    return rc;
}

/* Run the native query of p; *out_groups a new reference to the groups. */
static int hc_run(sdb_store *s, uint32_t project, hc_params *p, json_t **out_groups, char *err,
                  size_t errlen)
{
    *out_groups = NULL;
    if (p->none) {
        *out_groups = json_array();
        return *out_groups ? SDB_OK : SDB_ENOMEM;
    }
    char *q = json_dumps(p->query, JSON_COMPACT), *ans = NULL;
    if (!q) return SDB_ENOMEM;
    int rc = sdb_query_json(s, project, q, strlen(q), &ans, err, errlen);
    free(q);
    if (rc == SDB_EINVAL) {
        /* The native names (histogram.bins) are the caller's too. */
        char tmp[ERR_MAX];
        const char *h = strstr(err, "histogram.");
        if (h) {
            snprintf(tmp, sizeof tmp, "%.*s%s", (int)(h - err), err, h + 10);
            snprintf(err, errlen, "%s", tmp);
        }
    }
    if (rc) return rc;
    json_t *a = json_loads(ans, 0, NULL);
    free(ans);
    if (!a) return SDB_ENOMEM;
    *out_groups = json_incref(json_object_get(a, "groups"));
    json_decref(a);
    return *out_groups ? SDB_OK : SDB_ECORRUPT;
}

static json_t *zero_if_null(json_t *v) { return v && !json_is_null(v) ? json_incref(v) : json_integer(0); }

int sdb_helicone_evals_json(sdb_store *s, uint32_t project, const char *body, size_t len,
                            char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    hc_params p;
    json_t *groups = NULL, *data = NULL;
    int rc = hc_parse(body, len, false, &p, err, errlen);
    if (rc == SDB_OK) rc = hc_run(s, project, &p, &groups, err, errlen);
    if (rc == SDB_OK && !(data = json_array())) rc = SDB_ENOMEM;
    size_t i, seen = 0;
    json_t *g;
    json_array_foreach(rc ? NULL : groups, i, g)
    {
        json_t *avg = json_object_get(g, "avg");
        if (!avg) continue; /* categorical: no average to chart */
        if (seen++ < p.offset || json_array_size(data) >= p.limit) continue;
        json_t *over = json_array(), *avg_over = json_array(), *pt;
        size_t j;
        json_array_foreach(json_object_get(g, "series"), j, pt)
        {
            json_t *t = json_object_get(pt, "t");
            json_array_append_new(over, json_pack("{s:O?,s:O?}", "date", t, "count",
                                                  json_object_get(pt, "count")));
            json_array_append_new(avg_over, json_pack("{s:O?,s:o}", "date", t, "value",
                                                      zero_if_null(json_object_get(pt, "avg"))));
        }
        json_t *e = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:o,s:o}", "name",
                              json_object_get(json_object_get(g, "key"), "name"), "averageScore",
                              avg, "minScore", json_object_get(g, "min"), "maxScore",
                              json_object_get(g, "max"), "count", json_object_get(g, "count"),
                              "overTime", over, "averageOverTime", avg_over);
        if (!e || json_array_append_new(data, e)) rc = SDB_ENOMEM;
    }
    if (rc == SDB_OK) {
        rc = hc_result(data, out_json);
        data = NULL;
    }
    json_decref(data);
    json_decref(groups);
    json_decref(p.query);
    return rc;
}

int sdb_helicone_distributions_json(sdb_store *s, uint32_t project, const char *body, size_t len,
                                    char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    hc_params p;
    json_t *groups = NULL, *data = NULL;
    int rc = hc_parse(body, len, true, &p, err, errlen);
    if (rc == SDB_OK) rc = hc_run(s, project, &p, &groups, err, errlen);
    if (rc == SDB_OK && !(data = json_array())) rc = SDB_ENOMEM;
    size_t i, seen = 0;
    json_t *g;
    json_array_foreach(rc ? NULL : groups, i, g)
    {
        json_t *h = json_object_get(g, "histogram");
        if (!h) continue;
        if (seen++ < p.offset || json_array_size(data) >= p.limit) continue;
        json_t *edges = json_object_get(h, "edges"), *counts = json_object_get(h, "counts");
        json_t *dist = json_array(), *c;
        size_t j;
        json_array_foreach(counts, j, c)
        {
            json_array_append_new(dist, json_pack("{s:O?,s:O?,s:O?}", "lower",
                                                  json_array_get(edges, j), "upper",
                                                  json_array_get(edges, j + 1), "value", c));
        }
        json_t *e = json_pack("{s:O?,s:o}", "name",
                              json_object_get(json_object_get(g, "key"), "name"), "distribution",
                              dist);
        if (!e || json_array_append_new(data, e)) rc = SDB_ENOMEM;
    }
    if (rc == SDB_OK) {
        rc = hc_result(data, out_json);
        data = NULL;
    }
    json_decref(data);
    json_decref(groups);
    json_decref(p.query);
    return rc;
}
