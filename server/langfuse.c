/* Langfuse's wire formats: what the Langfuse SDKs (langfuse 3.x,
 * @langfuse/client 5.x) send and expect, reshaped to and from scoredb's own
 * (API.md "HTTP API (compatible)", docs/compat.md).
 *
 * Nothing here validates a score by itself: a Langfuse score is renamed
 * into a native score object and handed to sdb_batch_add_json, so the
 * rules and the numbers are the native ones. What this file adds: field
 * renaming both ways (with error messages that name the caller's field,
 * not ours), Langfuse's per-event multi-status report, page/limit
 * pagination, and Langfuse score configs, kept as engine documents
 * (SDB_DOC_CONFIG, sdb_doc_put), so that a score naming a configId is
 * checked against its data type, range or categories.
 *
 * The workload is the API surface of existing SDKs: correctness and clear
 * errors matter more than speed here. Answers are written with the
 * engine's shortest-round-trip numbers (sdb__cj_finish), so 0.1 comes back
 * as 0.1.
 */
#include "compat.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MAX 512
#define MAX_STR 200u

static const char *const type_names[] = {"NUMERIC", "BOOLEAN", "CATEGORICAL"};
static const char *const source_names[] = {"API", "EVAL", "ANNOTATION"};
enum { T_NUMERIC, T_BOOLEAN, T_CATEGORICAL, N_TYPES = 3, N_SOURCES = 3 };

static int parse_uint(const char *key, const char *v, uint64_t lo, uint64_t hi, uint64_t *out,
                      char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || x < lo || x > hi) {
        sdb__cj_errf(err, errlen, "parameter \"%s\": expected an integer from %llu to %llu, got "
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
    for (int i = 0; i < N_TYPES; i++)
        if (!strcmp(s, type_names[i])) return i;
    return -1;
}

static int source_of(const char *s)
{
    for (int i = 0; i < N_SOURCES; i++)
        if (!strcmp(s, source_names[i])) return i;
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

/* Langfuse fields kept as native properties (API.md "properties"), so
 * that they are filterable like any custom dimension. */
#define PROP_QUEUE "queue_id"
#define PROP_LF_TYPE "langfuse_data_type"
/* Non-object metadata is stored as {META_WRAP: value}. */
#define META_WRAP "$value"

/* Rewrite the native field names in a native message (`field "trace_id":
 * needs ...`) into Langfuse's (`traceId`): the caller should read the
 * names it sent. Whole words only. */
static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void sdb__lf_rename(char *err, size_t errlen)
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

/* The stored config `id` of `project` as a new json_t reference. */
static int cfg_load(sdb_store *s, uint32_t project, const char *id, json_t **out)
{
    *out = NULL;
    char *text;
    int rc = sdb_doc_get(s, project, SDB_DOC_CONFIG, "", id, &text);
    if (rc) return rc;
    *out = json_loads(text, 0, NULL);
    free(text);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return SDB_ECORRUPT;
    }
    return SDB_OK;
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
    json_t *name = sdb__cj_get(n, "name"), *value = sdb__cj_get(n, "value"), *dt = sdb__cj_get(n, "data_type");
    if (!id || !cname || !ctype) return SDB_ECORRUPT;
    if (json_is_true(json_object_get(cfg, "isArchived"))) {
        sdb__cj_errf(err, errlen, "field \"configId\": score config \"%s\" is archived", id);
        return SDB_EINVAL;
    }
    if (name && json_is_string(name) && strcmp(json_string_value(name), cname)) {
        sdb__cj_errf(err, errlen,
                  "field \"name\": \"%.200s\" differs from \"%.200s\", the name of score "
                  "config \"%s\"",
                  json_string_value(name), cname, id);
        return SDB_EINVAL;
    }
    if (dt && (!json_is_string(dt) || strcmp(json_string_value(dt), ctype))) {
        sdb__cj_errf(err, errlen, "field \"dataType\": score config \"%s\" takes %s", id, ctype);
        return SDB_EINVAL;
    }
    json_object_set_new(n, "data_type", json_string(ctype));
    if (!name) json_object_set_new(n, "name", json_string(cname));
    if (!value) return SDB_OK; /* the native parser says "required" */
    if (!strcmp(ctype, "NUMERIC")) {
        if (!json_is_number(value)) {
            sdb__cj_errf(err, errlen, "field \"value\": score config \"%s\" takes a number", id);
            return SDB_EINVAL;
        }
        double x = json_number_value(value);
        json_t *lo = sdb__cj_get(cfg, "minValue"), *hi = sdb__cj_get(cfg, "maxValue");
        if ((lo && x < json_number_value(lo)) || (hi && x > json_number_value(hi))) {
            char a[40] = "-inf", b[40] = "+inf", xs[40];
            if (lo) snprintf(a, sizeof a, "%g", json_number_value(lo));
            if (hi) snprintf(b, sizeof b, "%g", json_number_value(hi));
            snprintf(xs, sizeof xs, "%g", x);
            sdb__cj_errf(err, errlen,
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
        sdb__cj_errf(err, errlen,
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
    sdb__cj_errf(err, errlen,
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
        sdb__cj_errf(err, errlen, "body: expected a score object");
        return SDB_EINVAL;
    }
    json_t *n = json_object();
    if (!n) return SDB_ENOMEM;
    const char *k;
    json_t *v;
    int rc = SDB_OK;
    json_t *props = json_object();
    json_object_foreach((json_t *)lf, k, v)
    {
        size_t i;
        for (i = 0; i < N_LF_NAMES && strcmp(k, lf_names[i][0]); i++) {
        }
        if (!strcmp(k, "metadata") && !json_is_null(v) && !json_is_object(v)) {
            /* Langfuse takes any JSON here; a native score's metadata is
             * an object, so other values are kept wrapped and unwrapped
             * on the way out. */
            json_object_set_new(n, "metadata", json_pack("{s:O}", META_WRAP, v));
        } else if (!strcmp(k, "dataType") && json_is_string(v) &&
                   (!strcmp(json_string_value(v), "TEXT") ||
                    !strcmp(json_string_value(v), "CORRECTION"))) {
            /* Free text: kept as a CATEGORICAL score marked with its
             * Langfuse type (docs/compat.md, departures). */
            json_object_set_new(n, "data_type", json_string("CATEGORICAL"));
            json_object_set(props, PROP_LF_TYPE, v);
        } else if (!strcmp(k, "queueId")) {
            if (!json_is_null(v) && !json_is_string(v)) {
                sdb__cj_errf(err, errlen, "field \"queueId\": expected a string");
                rc = SDB_EINVAL;
                break;
            }
            if (json_is_string(v)) json_object_set(props, PROP_QUEUE, v);
        } else if (i < N_LF_NAMES) {
            json_object_set(n, lf_names[i][1], v);
        } else {
            sdb__cj_errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            break;
        }
    }
    if (json_object_size(props)) json_object_set(n, "properties", props);
    json_decref(props);
    if (rc == SDB_OK && !sdb__cj_get(n, "trace_id") && !sdb__cj_get(n, "session_id") &&
        !sdb__cj_get(n, "dataset_run_id")) {
        sdb__cj_errf(err, errlen, "a score needs at least one of traceId, sessionId or datasetRunId");
        rc = SDB_EINVAL;
    }
    if (rc == SDB_OK && !sdb__cj_get(n, "timestamp") && event_ts)
        json_object_set(n, "timestamp", (json_t *)event_ts);
    json_t *cid = sdb__cj_get(n, "config_id");
    if (rc == SDB_OK && cid) {
        json_t *cfg = NULL;
        if (!json_is_string(cid)) {
            sdb__cj_errf(err, errlen, "field \"configId\": expected a string");
            rc = SDB_EINVAL;
        } else if ((rc = cfg_load(s, project, json_string_value(cid), &cfg)) == SDB_ENOTFOUND) {
            sdb__cj_errf(err, errlen, "field \"configId\": no score config \"%.200s\"",
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

static int add_native(sdb_batch *b, json_t *n, char *err, size_t errlen)
{
    int rc = sdb__cj_add_score(b, n, err, errlen);
    if (rc == SDB_EINVAL) sdb__lf_rename(err, errlen);
    return rc;
}

/* Validate native score n into b, with its trace's attributes; note its
 * id in the trace's index. */
static int add_scored(sdb__tctx *tc, sdb_batch *b, json_t *n, char *err, size_t errlen)
{
    int rc = sdb__tctx_apply(tc, n);
    if (rc == SDB_OK) rc = add_native(b, n, err, errlen);
    if (rc == SDB_OK)
        rc = sdb__tctx_note(tc, json_string_value(json_object_get(n, "trace_id")),
                            sdb_batch_id(b, sdb_batch_rows(b) - 1), sdb_batch_rows(b) - 1);
    return rc;
}

int sdb__lf_score_add(sdb_store *s, uint32_t project, sdb__tctx *tc, sdb_batch *b,
                      const char *body, size_t len, char *err, size_t errlen)
{
    json_t *o, *n = NULL;
    size_t again;
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    rc = lf_to_native(s, project, o, NULL, &n, err, errlen);
    if (rc == SDB_OK) rc = add_scored(tc, b, n, err, errlen);
    if (rc == SDB_OK) rc = sdb__tctx_finish(tc, b, &again);
    json_decref(n);
    json_decref(o);
    return rc;
}

/* The numeric value of label `label` in score config `cid` (0 when the
 * config or the label is unknown: Langfuse's value of an unmapped label). */
static double cat_value(sdb_store *s, uint32_t project, const char *cid, const json_t *label)
{
    json_t *cfg = NULL, *c;
    double x = 0;
    size_t i;
    if (!cid || cfg_load(s, project, cid, &cfg)) return 0;
    json_array_foreach(json_object_get(cfg, "categories"), i, c)
    {
        if (json_equal(json_object_get(c, "label"), label))
            x = json_number_value(json_object_get(c, "value"));
    }
    json_decref(cfg);
    return x;
}

/* A Langfuse score (GetScoresResponseData) from a native one: new ref. */
static json_t *lf_from_native(sdb_store *s, uint32_t project, const json_t *n)
{
    const char *type = json_string_value(json_object_get(n, "data_type"));
    json_t *value = json_object_get(n, "value");
    json_t *meta = sdb__cj_get(n, "metadata"), *props = json_object_get(n, "properties");
    json_t *lft = json_object_get(props, PROP_LF_TYPE);
    json_t *wrapped = json_object_size(meta) == 1 ? json_object_get(meta, META_WRAP) : NULL;
    char pid[16];
    snprintf(pid, sizeof pid, "%u", project);
    json_t *o = json_pack(
        "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:o,s:O?,s:O?,s:O?,s:O?,s:s}",
        "id", json_object_get(n, "id"), "traceId", json_object_get(n, "trace_id"), "sessionId",
        json_object_get(n, "session_id"), "observationId", json_object_get(n, "observation_id"),
        "datasetRunId", json_object_get(n, "dataset_run_id"), "name", json_object_get(n, "name"),
        "source", json_object_get(n, "source"), "timestamp", json_object_get(n, "timestamp"),
        "createdAt", json_object_get(n, "created_at"), "updatedAt",
        json_object_get(n, "created_at"), "authorUserId", json_object_get(n, "author"), "comment",
        json_object_get(n, "comment"), "metadata",
        wrapped ? json_incref(wrapped) : meta ? json_incref(meta) : json_object(), "configId",
        json_object_get(n, "config_id"), "queueId", json_object_get(props, PROP_QUEUE),
        "environment", json_object_get(n, "environment"), "dataType",
        lft ? lft : json_object_get(n, "data_type"), "projectId", pid);
    if (!o) return NULL;
    if (!json_object_get(o, "queueId")) json_object_set_new(o, "queueId", json_null());
    if (lft) {
        json_object_set_new(o, "value", json_integer(0));
        json_object_set(o, "stringValue", value);
    } else if (type && !strcmp(type, "BOOLEAN")) {
        json_object_set_new(o, "value", json_integer(json_is_true(value)));
        json_object_set_new(o, "stringValue", json_string(json_is_true(value) ? "True" : "False"));
    } else if (type && !strcmp(type, "CATEGORICAL")) {
        const char *cid = json_string_value(json_object_get(n, "config_id"));
        json_object_set_new(o, "value", sdb__cj_num(cat_value(s, project, cid, value)));
        json_object_set(o, "stringValue", value);
    } else {
        json_object_set(o, "value", value);
    }
    json_t *tags = json_object_get(n, "tags");
    json_object_set_new(o, "trace",
                        json_pack("{s:O?,s:o,s:O?,s:O?}", "userId", json_object_get(n, "user_id"),
                                  "tags", tags ? json_incref(tags) : json_array(), "environment",
                                  json_object_get(n, "environment"), "sessionId",
                                  json_object_get(n, "session_id")));
    return o;
}

int sdb__lf_score_get(sdb_store *s, uint32_t project, const char *id, char **out_json)
{
    *out_json = NULL;
    char *text = NULL;
    int rc = sdb_score_get_json(s, project, id, &text);
    if (rc) return rc;
    json_t *n = json_loads(text, 0, NULL);
    free(text);
    if (!n) return SDB_ECORRUPT;
    json_t *o = lf_from_native(s, project, n);
    json_decref(n);
    return sdb__cj_finish(o, out_json);
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

static int ingest_ok(json_t *ok, json_t *id)
{
    return json_array_append_new(ok, json_pack("{s:O,s:i}", "id", id, "status", 201)) ? SDB_ENOMEM
                                                                                     : SDB_OK;
}

/* Langfuse's event kinds. */
enum { EV_BAD, EV_SCORE, EV_TRACE, EV_OBS, EV_LOG };

static int event_kind(const char *t)
{
    static const char *const obs[] = {"span-create", "span-update", "generation-create",
                                      "generation-update", "event-create", "observation-create",
                                      "observation-update", "agent-create", "tool-create",
                                      "chain-create", "retriever-create", "evaluator-create",
                                      "embedding-create", "guardrail-create"};
    if (!strcmp(t, "score-create")) return EV_SCORE;
    if (!strcmp(t, "trace-create")) return EV_TRACE;
    if (!strcmp(t, "sdk-log")) return EV_LOG;
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        if (!strcmp(t, obs[i])) return EV_OBS;
    return EV_BAD;
}

/* A Langfuse trace or observation body as the native record traces.c
 * keeps (new ref): the analytics fields only; inputs, outputs, usage and
 * costs are dropped. */
static json_t *lf_record(const json_t *body, int kind)
{
    static const char *const tmap[][2] = {{"id", "id"},
                                          {"name", "name"},
                                          {"userId", "user_id"},
                                          {"sessionId", "session_id"},
                                          {"tags", "tags"},
                                          {"environment", "environment"},
                                          {"release", "release"},
                                          {"version", "version"},
                                          {"metadata", "metadata"}};
    static const char *const omap[][2] = {{"id", "id"},
                                          {"traceId", "trace_id"},
                                          {"model", "model"},
                                          {"promptName", "prompt_name"},
                                          {"promptVersion", "prompt_version"}};
    const char *const(*m)[2] = kind == EV_TRACE ? tmap : omap;
    size_t n = kind == EV_TRACE ? sizeof tmap / sizeof tmap[0] : sizeof omap / sizeof omap[0];
    json_t *r = json_object();
    for (size_t i = 0; r && i < n; i++) {
        json_t *v = json_object_get(body, m[i][0]);
        if (!v) continue;
        if (json_is_integer(v) && !strcmp(m[i][0], "promptVersion")) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
            json_object_set_new(r, m[i][1], json_string(buf));
        } else {
            json_object_set(r, m[i][1], v);
        }
    }
    return r;
}

int sdb__lf_ingest(sdb_store *s, uint32_t project, sdb__tctx *tc, sdb_batch *b,
                   const char *body, size_t len,
                   size_t max_events, int scores_only, char **out_json, size_t *out_n_errors,
                   char *err, size_t errlen)
{
    *out_json = NULL;
    *out_n_errors = 0;
    json_t *o;
    /* An event whose strings break the string rules (a raw control byte,
     * \u0000: docs/input.md) is refused alone, like a row of a native
     * batch; jansson would refuse the whole text, so it reads a copy with
     * those bytes blanked. */
    sdb_json_bads *bads = NULL;
    char *blanked = NULL;
    int rc = sdb_json_strings_blank(body ? body : "", len, "batch", &blanked, &bads, err, errlen);
    if (rc == SDB_OK) rc = sdb__cj_load(blanked ? blanked : body, len, "body", &o, err, errlen);
    free(blanked);
    if (rc) {
        sdb_json_bads_free(bads);
        return rc;
    }
    json_t *batch = json_object_get(o, "batch");
    json_t *ok = json_array(), *errors = json_array();
    if (!ok || !errors) {
        rc = SDB_ENOMEM;
        goto done;
    }
    if (!json_is_array(batch)) {
        sdb__cj_errf(err, errlen, "field \"batch\": expected an array of ingestion events");
        rc = SDB_EINVAL;
        goto done;
    }
    if (json_array_size(batch) > max_events) {
        sdb__cj_errf(err, errlen, "field \"batch\": more than %zu events in one request",
                     max_events);
        rc = SDB_EINVAL;
        goto done;
    }
    /* Traces and observations first, then scores, whatever the order in
     * the batch: a score sent with its trace inherits from it. */
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        json_t *ev;
        json_array_foreach(batch, i, ev)
        {
            char msg[ERR_MAX] = "", full[ERR_MAX + 32];
            json_t *id = json_object_get(ev, "id"), *type = json_object_get(ev, "type");
            json_t *evbody = json_object_get(ev, "body"), *n = NULL;
            json_t *idv = json_is_string(id) ? id : json_null();
            int kind = json_is_object(ev) && json_is_string(id) && json_is_string(type)
                           ? event_kind(json_string_value(type))
                           : -1;
            const char *bad = sdb_json_bads_msg(bads, (long)i);
            if ((pass == 0) != (kind == EV_TRACE || kind == EV_OBS)) continue;
            if (bad) {
                snprintf(msg, sizeof msg, "batch[%zu]: %.480s", i, bad);
                rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
            } else if (kind < 0) {
                snprintf(msg, sizeof msg,
                         "batch[%zu]: an event is an object with string \"id\" and \"type\"", i);
                rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
            } else if (kind == EV_BAD) {
                snprintf(msg, sizeof msg, "batch[%zu]: unknown event type \"%.100s\"", i,
                         json_string_value(type));
                rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
            } else if (kind == EV_LOG) {
                rc = ingest_ok(ok, id); /* accepted, not kept (as hosted) */
            } else if (scores_only && kind != EV_SCORE) {
                /* A public key alone may score, nothing else (hosted
                 * Langfuse's "scores" access level). */
                rc = ingest_error(errors, idv, 403, "Access Scope Denied", "AuthenticationError");
            } else if (!json_is_object(evbody)) {
                snprintf(msg, sizeof msg, "batch[%zu].body: expected an object", i);
                rc = ingest_error(errors, idv, 400, msg, "InvalidRequestError");
            } else {
                int r;
                if (kind == EV_SCORE) {
                    r = lf_to_native(s, project, evbody, sdb__cj_get(ev, "timestamp"), &n, msg,
                                     sizeof msg);
                    if (r == SDB_OK) r = add_scored(tc, b, n, msg, sizeof msg);
                } else {
                    n = lf_record(evbody, kind);
                    r = !n ? SDB_ENOMEM
                        : kind == EV_TRACE ? sdb__tctx_trace(tc, n, msg, sizeof msg)
                                           : sdb__tctx_observation(tc, n, msg, sizeof msg);
                    if (r == SDB_EINVAL) sdb__lf_rename(msg, sizeof msg);
                }
                json_decref(n);
                if (r == SDB_OK) {
                    rc = ingest_ok(ok, id);
                } else if (r == SDB_EINVAL) {
                    snprintf(full, sizeof full, "batch[%zu].body: %.480s", i, msg);
                    rc = ingest_error(errors, idv, 400, full, "InvalidRequestError");
                } else {
                    rc = r;
                }
            }
            if (rc) goto done;
        }
    }
    size_t again;
    if ((rc = sdb__tctx_finish(tc, b, &again))) goto done;
    *out_n_errors = json_array_size(errors);
    rc = sdb__cj_finish(json_pack("{s:O,s:O}", "successes", ok, "errors", errors), out_json);
done:
    json_decref(ok);
    json_decref(errors);
    json_decref(o);
    sdb_json_bads_free(bads);
    return rc;
}

/* --------------------------------------------- Langfuse: list scores */

#define LF_LIST_MAX 100  /* Langfuse refuses a larger limit with a 400 */

/* A Langfuse list request: every filter becomes a parameter of the
 * native listing (sdb_scores_list_json), which checks rows in the engine
 * and reads a trace's or the named ids' rows through their indexes; what
 * stays here is paging, the totals and the shape of the answer. */
typedef struct lf_list {
    uint64_t page, limit;
    const char *cursor;      /* v3: the native cursor */
    bool no_trace_fields, v3;
    json_t *hold;    /* keeps the strings the native parameters borrow */
    sdb_param *np;   /* the native parameters */
    size_t n_np, cap_np;
    char num[3][32]; /* value, valueMin, valueMax as given */
    bool has_value, has_vmin, has_vmax;
    const char *op; /* "=", "!=", "<", "<=", ">", ">=" */
} lf_list;

static void lf_list_free(lf_list *f)
{
    json_decref(f->hold);
    free(f->np);
}

/* One more native parameter (strings borrowed from f->hold or static). */
static int np_add(lf_list *f, const char *key, const char *value)
{
    if (f->n_np == f->cap_np) {
        size_t cap = f->cap_np ? 2 * f->cap_np : 16;
        sdb_param *v = realloc(f->np, cap * sizeof *v);
        if (!v) return SDB_ENOMEM;
        f->np = v;
        f->cap_np = cap;
    }
    f->np[f->n_np++] = (sdb_param){key, value};
    return SDB_OK;
}

/* A comma-separated list, items trimmed of spaces, into a new array. */
static json_t *split(const char *v)
{
    json_t *a = json_array();
    for (const char *p = v; a && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        const char *q = p;
        while (l && *q == ' ') q++, l--;
        while (l && q[l - 1] == ' ') l--;
        if (l) json_array_append_new(a, json_stringn(q, l));
        p += (e ? (size_t)(e - p) + 1 : strlen(p));
    }
    return a;
}

/* Each item of comma-separated v as native parameter `key` (kept in
 * f->hold); returns the array (borrowed from f->hold) or NULL. */
static json_t *np_split(lf_list *f, const char *key, const char *v)
{
    json_t *a = split(v), *x;
    size_t i;
    if (!a || json_array_append_new(f->hold, a)) return NULL;
    json_array_foreach(a, i, x) if (np_add(f, key, json_string_value(x))) return NULL;
    return a;
}

/* Langfuse's parameters (v1/v2 when !v3, else v3's) into native ones
 * (f->np). */
static int lf_params(const sdb_param *params, size_t n, bool v3, lf_list *f, char *err,
                     size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->page = 1;
    f->limit = 50;
    f->op = "=";
    f->v3 = v3;
    f->hold = json_array();
    if (!f->hold) return SDB_ENOMEM;
    /* name → the native parameter. */
    static const char *const direct[][2] = {
        {"name", "name"},         {"traceId", "trace_id"},   {"sessionId", "session_id"},
        {"source", "source"},     {"dataType", "data_type"}, {"environment", "environment"},
        {"userId", "user_id"},    {"fromTimestamp", "from"}, {"toTimestamp", "to"},
    };
    const char *fields = NULL;
    bool has_trace_filter = false;
    for (size_t i = 0; i < n; i++) {
        const char *k = params[i].key, *v = params[i].value ? params[i].value : "";
        size_t d;
        int rc = SDB_OK;
        for (d = 0; d < sizeof direct / sizeof direct[0] && strcmp(k, direct[d][0]); d++) {
        }
        if (d < sizeof direct / sizeof direct[0]) {
            json_t *vals = v3 && d != 7 && d != 8 ? split(v) : json_pack("[s]", v);
            size_t j;
            json_t *x;
            json_array_foreach(vals, j, x)
            {
                const char *one = json_string_value(x);
                char up[32];
                int64_t ms;
                if (d == 3 || d == 4) { /* v3 is case-insensitive here */
                    snprintf(up, sizeof up, "%s", one);
                    for (char *p = up; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                    one = json_string_value(x);
                    if (v3) {
                        json_array_set_new(vals, j, json_string(up));
                        one = json_string_value(json_array_get(vals, j));
                    }
                }
                if (d == 4 && (!strcmp(one, "TEXT") || !strcmp(one, "CORRECTION"))) {
                    sdb__cj_errf(err, errlen, "parameter \"dataType\": %s scores are stored as "
                                 "CATEGORICAL here (docs/compat.md)", one);
                    json_decref(vals);
                    return SDB_EINVAL;
                }
                if ((d == 3 && source_of(one) < 0) || (d == 4 && type_of(one) < 0) ||
                    (d >= 7 && sdb_time_parse(one, strlen(one), &ms))) {
                    sdb__cj_errf(err, errlen, "parameter \"%s\": unexpected value \"%.100s\" (%s)",
                                 k, one,
                                 d == 3 ? "expected API, EVAL or ANNOTATION"
                                 : d == 4 ? "expected NUMERIC, BOOLEAN or CATEGORICAL"
                                          : "expected an ISO 8601 time");
                    json_decref(vals);
                    return SDB_EINVAL;
                }
                if (np_add(f, direct[d][1], one)) {
                    json_decref(vals);
                    return SDB_ENOMEM;
                }
                if (d == 6) has_trace_filter = true;
            }
            /* The strings live in vals, kept until the request ends. */
            json_array_append_new(f->hold, vals);
        } else if (!strcmp(k, "page") && !v3) {
            rc = parse_uint(k, v, 1, UINT32_MAX, &f->page, err, errlen);
        } else if (!strcmp(k, "limit")) {
            rc = parse_uint(k, v, 1, LF_LIST_MAX, &f->limit, err, errlen);
        } else if (!strcmp(k, "cursor") && v3) {
            f->cursor = v;
        } else if (!strcmp(k, "observationId")) {
            if (!np_split(f, "observation_id", v)) return SDB_ENOMEM;
        } else if (!strcmp(k, v3 ? "experimentId" : "datasetRunId")) {
            if (np_add(f, "dataset_run_id", v)) return SDB_ENOMEM;
        } else if (!strcmp(k, "configId")) {
            if (!np_split(f, "config_id", v)) return SDB_ENOMEM;
        } else if (!strcmp(k, "queueId")) {
            if (!np_split(f, "properties." PROP_QUEUE, v)) return SDB_ENOMEM;
        } else if (!strcmp(k, "authorUserId") && v3) {
            if (!np_split(f, "author", v)) return SDB_ENOMEM;
        } else if (!strcmp(k, v3 ? "id" : "scoreIds")) {
            json_t *ids = np_split(f, "id", v);
            if (!ids) return SDB_ENOMEM;
            if (json_array_size(ids) > 1000) {
                sdb__cj_errf(err, errlen, "parameter \"%s\": at most 1000 ids, got %zu", k,
                             json_array_size(ids));
                return SDB_EINVAL;
            }
        } else if (!strcmp(k, "traceTags") && !v3) {
            json_t *t = json_string(v);
            if (!t || json_array_append_new(f->hold, t) || np_add(f, "tag", json_string_value(t)))
                return SDB_ENOMEM;
            has_trace_filter = true;
        } else if (!strcmp(k, "value") || !strcmp(k, "valueMin") || !strcmp(k, "valueMax")) {
            char *end;
            double x = strtod(v, &end);
            if (!*v || *end || !isfinite(x)) {
                sdb__cj_errf(err, errlen, "parameter \"%s\": expected a number, got \"%.100s\"", k,
                             v);
                return SDB_EINVAL;
            }
            int w = k[5] != 'M' ? 0 : k[6] == 'i' ? 1 : 2;
            snprintf(f->num[w], sizeof f->num[w], "%.17g", x);
            if (w == 0) f->has_value = true;
            if (w == 1) f->has_vmin = true;
            if (w == 2) f->has_vmax = true;
        } else if (!strcmp(k, "operator") && !v3) {
            static const char *const ops[] = {"=", "!=", "<", "<=", ">", ">="};
            size_t o;
            for (o = 0; o < 6 && strcmp(v, ops[o]); o++) {
            }
            if (o == 6) {
                sdb__cj_errf(err, errlen, "parameter \"operator\": expected one of =, !=, <, <=, "
                                          ">, >=, got \"%.20s\"", v);
                return SDB_EINVAL;
            }
            f->op = ops[o];
        } else if (!strcmp(k, "fields")) {
            fields = v;
        } else if (!strcmp(k, "filter") && !v3) {
            if (*v) {
                sdb__cj_errf(err, errlen, "parameter \"filter\": not supported; use the named "
                                          "parameters (docs/compat.md)");
                return SDB_EINVAL;
            }
        } else {
            sdb__cj_errf(err, errlen, "unknown parameter \"%.100s\"", k);
            return SDB_EINVAL;
        }
        if (rc) return rc;
    }
    if (fields && !v3) {
        json_t *fl = split(fields), *x;
        size_t i;
        bool trace = false;
        json_array_foreach(fl, i, x)
        {
            const char *fv = json_string_value(x);
            if (strcmp(fv, "score") && strcmp(fv, "trace")) {
                sdb__cj_errf(err, errlen, "parameter \"fields\": unknown group \"%.40s\" (score, "
                             "trace)", fv);
                json_decref(fl);
                return SDB_EINVAL;
            }
            trace = trace || !strcmp(fv, "trace");
        }
        json_decref(fl);
        f->no_trace_fields = !trace;
        if (!trace && has_trace_filter) {
            sdb__cj_errf(err, errlen, "parameter \"fields\": filtering on userId or traceTags "
                                      "needs the \"trace\" field group");
            return SDB_EINVAL;
        }
    }
    /* The value filters as native parameters. */
    static const char *const ops[][2] = {{"=", "value_eq"}, {"!=", "value_ne"},
                                         {"<", "value_lt"}, {"<=", "value_lte"},
                                         {">", "value_gt"}, {">=", "value_gte"}};
    for (size_t o = 0; o < 6 && f->has_value; o++)
        if (!strcmp(f->op, ops[o][0]) && np_add(f, ops[o][1], f->num[0])) return SDB_ENOMEM;
    if (f->has_vmin && np_add(f, "value_gte", f->num[1])) return SDB_ENOMEM;
    if (f->has_vmax && np_add(f, "value_lte", f->num[2])) return SDB_ENOMEM;
    return SDB_OK;
}

/* A row of the native listing in Langfuse's shape (v3's when f->v3):
 * a new reference, NULL without memory. */
static json_t *lf_row(sdb_store *s, uint32_t project, const lf_list *f, const json_t *x)
{
    json_t *o = lf_from_native(s, project, x);
    if (o && f->v3) {
        /* v3: a typed value, and the subject the score is on */
        const char *t = json_string_value(json_object_get(o, "dataType"));
        if (t && !strcmp(t, "BOOLEAN"))
            json_object_set_new(o, "value",
                                json_boolean(json_integer_value(json_object_get(o, "value"))));
        else if (t && strcmp(t, "NUMERIC"))
            json_object_set(o, "value", json_object_get(o, "stringValue"));
        json_object_del(o, "stringValue");
        json_object_del(o, "trace");
        json_t *tr = json_object_get(o, "traceId"), *se = json_object_get(o, "sessionId");
        json_t *sub = json_is_string(tr)
                          ? json_pack("{s:s,s:O,s:O?}", "type",
                                      json_is_string(json_object_get(o, "observationId"))
                                          ? "OBSERVATION" : "TRACE",
                                      "traceId", tr, "observationId",
                                      json_object_get(o, "observationId"))
                      : json_is_string(se)
                          ? json_pack("{s:s,s:O}", "type", "SESSION", "sessionId", se)
                          : json_pack("{s:s,s:O?}", "type", "EXPERIMENT", "experimentId",
                                      json_object_get(o, "datasetRunId"));
        json_object_set_new(o, "subject", sub);
    } else if (o && f->no_trace_fields) {
        json_object_del(o, "trace");
    }
    return o;
}

/* One native list call with f's filters: `take` rows after skipping
 * `skip` matches, from `cursor` (NULL: the newest), appended to data in
 * Langfuse's shape; *next the native cursor to go on from (owned, NULL at
 * the end). With out_total, the call also counts every match (the native
 * `total`, in the page's read transaction). */
static int lf_page(sdb_store *s, uint32_t project, lf_list *f, uint64_t skip, uint64_t take,
                   const char *cursor, json_t *data, char **next,
                   uint64_t *out_total, char *err, size_t errlen)
{
    char lim[24], off[24];
    size_t base = f->n_np;
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)take);
    snprintf(off, sizeof off, "%llu", (unsigned long long)skip);
    int rc = np_add(f, "limit", lim);
    if (!rc && skip) rc = np_add(f, "offset", off);
    if (!rc && cursor) rc = np_add(f, "cursor", cursor);
    if (!rc && out_total) rc = np_add(f, "total", "true");
    char *text = NULL;
    if (!rc) rc = sdb_scores_list_json(s, project, f->np, f->n_np, &text, err, errlen);
    f->n_np = base;
    if (rc) return rc;
    json_t *page = json_loads(text, 0, NULL), *x;
    free(text);
    if (!page) return SDB_ENOMEM;
    size_t i;
    json_array_foreach(json_object_get(page, "data"), i, x)
    {
        json_t *o = lf_row(s, project, f, x);
        if (!o || json_array_append_new(data, o)) rc = SDB_ENOMEM;
    }
    const char *nx = json_string_value(json_object_get(page, "next_cursor"));
    if (next) *next = nx ? strdup(nx) : NULL;
    if (next && nx && !*next) rc = SDB_ENOMEM;
    if (out_total) *out_total = (uint64_t)json_integer_value(json_object_get(page, "total"));
    json_decref(page);
    return rc;
}

static int lf_list_run(sdb_store *s, uint32_t project, const sdb_param *params, size_t n, int v,
                       char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    lf_list f;
    memset(&f, 0, sizeof f);
    json_t *data = json_array();
    char *next = NULL;
    int rc = data ? lf_params(params, n, v == 3, &f, err, errlen) : SDB_ENOMEM;
    if (rc == SDB_OK && v == 1) /* the v1 list shows trace scores only */
        rc = np_add(&f, "has_trace", "true");
    uint64_t total = 0;
    if (rc == SDB_OK && v == 3) {
        /* v3's cursor is base64url of the native one (a decimal ref). */
        char dec[32] = "";
        const char *c = f.cursor;
        if (c) {
            size_t cl = strlen(c), o = 0;
            uint32_t acc = 0;
            int bits = 0;
            for (size_t i = 0; i < cl && o + 1 < sizeof dec; i++) {
                const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                const char *pos = strchr(al, c[i]);
                if (!pos || !c[i]) {
                    o = 0;
                    break;
                }
                acc = acc << 6 | (uint32_t)(pos - al);
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    dec[o++] = (char)(acc >> bits & 0xff);
                }
            }
            dec[o] = 0;
            bool digits = o > 0;
            for (size_t i = 0; i < o; i++) digits = digits && dec[i] >= '0' && dec[i] <= '9';
            if (!digits) {
                sdb__cj_errf(err, errlen, "parameter \"cursor\": not a cursor of this list");
                rc = SDB_EINVAL;
            }
        }
        if (rc == SDB_OK)
            rc = lf_page(s, project, &f, 0, f.limit, c ? dec : NULL, data, &next, NULL,
                         err, errlen);
        json_t *meta = json_pack("{s:I}", "limit", (json_int_t)f.limit);
        if (rc == SDB_OK && next) {
            char enc[64];
            const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            size_t o = 0, nl = strlen(next);
            for (size_t i = 0; i < nl; i += 3) {
                uint32_t x = (uint32_t)(unsigned char)next[i] << 16;
                if (i + 1 < nl) x |= (uint32_t)(unsigned char)next[i + 1] << 8;
                if (i + 2 < nl) x |= (unsigned char)next[i + 2];
                enc[o++] = al[x >> 18 & 63];
                enc[o++] = al[x >> 12 & 63];
                if (i + 1 < nl) enc[o++] = al[x >> 6 & 63];
                if (i + 2 < nl) enc[o++] = al[x & 63];
            }
            enc[o] = 0;
            json_object_set_new(meta, "cursor", json_string(enc));
        }
        if (rc == SDB_OK)
            rc = sdb__cj_finish(json_pack("{s:O,s:o}", "data", data, "meta", meta), out_json);
        else
            json_decref(meta);
    } else if (rc == SDB_OK) {
        /* v1/v2: page/limit as an offset into the native order; the total
         * is the native listing's, read in the page's own transaction (the
         * query engine's count for a query's filters, else through the
         * index or the columns: engine/list.c). */
        uint64_t skip = (f.page - 1) * f.limit;
        rc = lf_page(s, project, &f, skip, f.limit, NULL, data, NULL, &total, err,
                     errlen);
        if (rc == SDB_OK)
            rc = sdb__cj_finish(json_pack("{s:O,s:o}", "data", data, "meta",
                                          page_meta(f.page, f.limit, total)),
                                out_json);
    }
    free(next);
    lf_list_free(&f);
    json_decref(data);
    return rc;
}

int sdb__lf_scores_list(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                        int v1, char **out_json, char *err, size_t errlen)
{
    return lf_list_run(s, project, params, n, v1 ? 1 : 2, out_json, err, errlen);
}

int sdb__lf_scores_v3(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                      char **out_json, char *err, size_t errlen)
{
    return lf_list_run(s, project, params, n, 3, out_json, err, errlen);
}

/* ----------------------------------------- Langfuse: score configs */

/* The checked config of a create request, as stored (new ref in *out). */
static int cfg_build(const json_t *o, uint32_t project, const char *id, int64_t now_ms,
                     json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    static const char *const ok[] = {"name", "dataType", "categories", "minValue", "maxValue",
                                      "description", NULL};
    if (sdb__cj_only(o, ok, err, errlen)) return SDB_EINVAL;
    json_t *name = sdb__cj_get(o, "name"), *dt = sdb__cj_get(o, "dataType"), *cats = sdb__cj_get(o, "categories");
    json_t *lo = sdb__cj_get(o, "minValue"), *hi = sdb__cj_get(o, "maxValue"), *desc = sdb__cj_get(o, "description");
    if (!json_is_string(name) || json_string_length(name) < 1 ||
        json_string_length(name) > MAX_STR) {
        sdb__cj_errf(err, errlen, "field \"name\": expected a string of 1 to %u bytes", MAX_STR);
        return SDB_EINVAL;
    }
    int type = json_is_string(dt) ? type_of(json_string_value(dt)) : -1;
    if (type < 0) {
        sdb__cj_errf(err, errlen, "field \"dataType\": expected NUMERIC, BOOLEAN or CATEGORICAL");
        return SDB_EINVAL;
    }
    if ((lo && !json_is_number(lo)) || (hi && !json_is_number(hi))) {
        sdb__cj_errf(err, errlen, "field \"%s\": expected a number",
                  lo && !json_is_number(lo) ? "minValue" : "maxValue");
        return SDB_EINVAL;
    }
    if ((lo || hi) && type != T_NUMERIC) {
        sdb__cj_errf(err, errlen, "field \"%s\": only a NUMERIC config has a range",
                  lo ? "minValue" : "maxValue");
        return SDB_EINVAL;
    }
    if (lo && hi && json_number_value(lo) > json_number_value(hi)) {
        sdb__cj_errf(err, errlen, "field \"minValue\": greater than maxValue");
        return SDB_EINVAL;
    }
    if (desc && !json_is_string(desc)) {
        sdb__cj_errf(err, errlen, "field \"description\": expected a string");
        return SDB_EINVAL;
    }
    json_t *cv = NULL;
    if (type == T_CATEGORICAL) {
        if (!json_is_array(cats) || json_array_size(cats) == 0 || json_array_size(cats) > 1000) {
            sdb__cj_errf(err, errlen, "field \"categories\": a CATEGORICAL config needs 1 to 1000 "
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
                json_string_length(l) < 1 || json_string_length(l) > MAX_STR ||
                !json_is_number(x) || dup) {
                sdb__cj_errf(err, errlen,
                          "field \"categories[%zu]\": expected {\"label\": a unique string of 1 "
                          "to %u bytes, \"value\": a number}",
                          i, MAX_STR);
                json_decref(cv);
                return SDB_EINVAL;
            }
            json_array_append_new(cv, json_pack("{s:O,s:o}", "label", l, "value",
                                                sdb__cj_num(json_number_value(x))));
        }
    } else if (cats) {
        sdb__cj_errf(err, errlen, "field \"categories\": only a CATEGORICAL config takes categories%s",
                  type == T_BOOLEAN ? " (a BOOLEAN config's are True and False)" : "");
        return SDB_EINVAL;
    } else if (type == T_BOOLEAN) {
        cv = json_pack("[{s:s,s:i},{s:s,s:i}]", "label", "True", "value", 1, "label", "False",
                       "value", 0);
    }
    char ts[40], pid[16];
    sdb_time_format(now_ms, ts);
    snprintf(pid, sizeof pid, "%u", project);
    json_t *cfg = json_pack("{s:s,s:O,s:s,s:b,s:s,s:s,s:s}", "id", id, "name", name, "dataType",
                            type_names[type], "isArchived", 0, "createdAt", ts, "updatedAt",
                            ts, "projectId", pid);
    if (!cfg) {
        json_decref(cv);
        return SDB_ENOMEM;
    }
    if (lo) json_object_set_new(cfg, "minValue", sdb__cj_num(json_number_value(lo)));
    if (hi) json_object_set_new(cfg, "maxValue", sdb__cj_num(json_number_value(hi)));
    if (cv) json_object_set_new(cfg, "categories", cv);
    if (desc) json_object_set(cfg, "description", desc);
    *out = cfg;
    return SDB_OK;
}

int sdb__lf_config_create(sdb_store *s, uint32_t project, const char *body, size_t len,
                                    int64_t now_ms, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    json_t *o, *cfg = NULL;
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    char *text = NULL, idz[64];
    if ((rc = sdb_id_generate(idz))) goto done;
    if ((rc = cfg_build(o, project, idz, now_ms, &cfg, err, errlen))) goto done;
    if (!(text = json_dumps(cfg, JSON_COMPACT))) {
        rc = SDB_ENOMEM;
        goto done;
    }
    rc = sdb_doc_put(s, project, SDB_DOC_CONFIG, "", idz, text, strlen(text), SDB_DOC_CREATE,
                     NULL);
    if (rc) goto done;
    rc = sdb__cj_finish(json_incref(cfg), out_json);
done:
    free(text);
    json_decref(cfg);
    json_decref(o);
    return rc;
}

int sdb__lf_config_get(sdb_store *s, uint32_t project, const char *id, char **out_json)
{
    *out_json = NULL;
    json_t *cfg;
    int rc = cfg_load(s, project, id, &cfg);
    if (rc) return rc;
    return sdb__cj_finish(cfg, out_json);
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
            sdb__cj_errf(err, errlen, "unknown parameter \"%.100s\"", k);
            rc = SDB_EINVAL;
        }
        if (rc) return rc;
    }
    return SDB_OK;
}

int sdb__lf_config_update(sdb_store *s, uint32_t project, const char *id, const char *body,
                          size_t len, int64_t now_ms, char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    json_t *o, *old = NULL, *req = NULL, *cfg = NULL;
    char *text = NULL;
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    if ((rc = cfg_load(s, project, id, &old))) goto done;
    json_t *arch = json_object_get(o, "isArchived");
    if (arch && !json_is_boolean(arch)) {
        sdb__cj_errf(err, errlen, "field \"isArchived\": expected a boolean");
        rc = SDB_EINVAL;
        goto done;
    }
    /* The stored config overlaid with the change, checked as a create. */
    req = json_pack("{s:O}", "dataType", json_object_get(old, "dataType"));
    static const char *const keys[] = {"name", "categories", "minValue", "maxValue",
                                       "description"};
    const char *type = json_string_value(json_object_get(old, "dataType"));
    for (size_t i = 0; req && i < 5; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (!v) v = json_object_get(old, keys[i]);
        if (i == 1 && type && !strcmp(type, "BOOLEAN")) {
            if (json_object_get(o, keys[i])) {
                sdb__cj_errf(err, errlen, "field \"categories\": a BOOLEAN config's are True "
                                          "and False");
                rc = SDB_EINVAL;
                goto done;
            }
            continue;
        }
        if (v) json_object_set(req, keys[i], v);
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "isArchived") && !json_object_get(req, k) && strcmp(k, "categories")) {
            sdb__cj_errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            goto done;
        }
    }
    if (!req) {
        rc = SDB_ENOMEM;
        goto done;
    }
    if ((rc = cfg_build(req, project, id, now_ms, &cfg, err, errlen))) goto done;
    json_object_set(cfg, "createdAt", json_object_get(old, "createdAt"));
    json_object_set(cfg, "isArchived", arch ? arch : json_object_get(old, "isArchived"));
    if (!(text = json_dumps(cfg, JSON_COMPACT))) {
        rc = SDB_ENOMEM;
        goto done;
    }
    rc = sdb_doc_put(s, project, SDB_DOC_CONFIG, "", id, text, strlen(text), SDB_DOC_REPLACE,
                     NULL);
    if (rc == SDB_OK) rc = sdb__cj_finish(json_incref(cfg), out_json);
done:
    free(text);
    json_decref(cfg);
    json_decref(req);
    json_decref(old);
    json_decref(o);
    return rc;
}

/* sdb_doc_list callback: each document parsed into the array ctx. */
static int doc_into_array(void *ctx, const char *id, const char *json, size_t len)
{
    (void)id;
    json_t *x = json_loadb(json, len, 0, NULL);
    if (!x) return 1;
    return json_array_append_new(ctx, x) ? 1 : 0;
}

int sdb__lf_configs_list(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                         char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    uint64_t page, limit, total = 0;
    int rc = page_params(params, n, &page, &limit, err, errlen);
    if (rc) return rc;
    json_t *data = json_array();
    if (!data) return SDB_ENOMEM;
    rc = sdb_doc_list(s, project, SDB_DOC_CONFIG, "", NULL, (page - 1) * limit, limit,
                      doc_into_array, data, &total);
    if (rc == SDB_OK)
        rc = sdb__cj_finish(json_pack("{s:O,s:o}", "data", data, "meta", page_meta(page, limit, total)),
                            out_json);
    json_decref(data);
    return rc;
}



/* ---------------------------------------------- Langfuse: trace reads */

int sdb__lf_trace(sdb_store *s, uint32_t project, json_t *t, char **out_json)
{
    static const char *const names[][2] = {{"id", "id"},          {"name", "name"},
                                           {"user_id", "userId"}, {"session_id", "sessionId"},
                                           {"tags", "tags"},      {"environment", "environment"},
                                           {"release", "release"}, {"version", "version"},
                                           {"metadata", "metadata"}};
    json_t *o = json_object(), *scores = json_array(), *obs = json_array(), *x;
    char pid[16];
    snprintf(pid, sizeof pid, "%u", project);
    for (size_t i = 0; o && i < sizeof names / sizeof names[0]; i++) {
        json_t *v = json_object_get(t, names[i][0]);
        json_object_set(o, names[i][1], v ? v : (i == 4 ? NULL : json_null()));
    }
    if (!json_object_get(o, "tags")) json_object_set_new(o, "tags", json_array());
    json_object_set_new(o, "projectId", json_string(pid));
    json_object_set_new(o, "input", json_null());  /* not kept (docs/compat.md) */
    json_object_set_new(o, "output", json_null());
    size_t i;
    json_array_foreach(json_object_get(t, "score_ids"), i, x)
    {
        char *text = NULL;
        if (sdb_score_get_json(s, project, json_string_value(x), &text)) continue;
        json_t *n = json_loads(text, 0, NULL);
        free(text);
        if (n) json_array_append_new(scores, lf_from_native(s, project, n));
        json_decref(n);
    }
    json_array_foreach(json_object_get(t, "observations"), i, x)
    {
        json_array_append_new(obs, json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?}", "id",
                                             json_object_get(x, "id"), "traceId",
                                             json_object_get(x, "trace_id"), "model",
                                             json_object_get(x, "model"), "promptName",
                                             json_object_get(x, "prompt_name"), "promptVersion",
                                             json_object_get(x, "prompt_version")));
    }
    json_object_set_new(o, "scores", scores);
    json_object_set_new(o, "observations", obs);
    json_decref(t);
    return sdb__cj_finish(o, out_json);
}
