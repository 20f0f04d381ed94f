/* The compatible endpoints: the paths and status codes Langfuse and
 * Helicone clients expect, over the reshaping of server/langfuse.c and
 * server/helicone.c, and the JSON helpers those two share.
 *
 * This file is glue only. Scores go through the same group-commit writer
 * as native ingest (sdb__srv_commit: acknowledged after the commit) and
 * analytics fold to the watermark first (sdb__srv_fold), so a Helicone
 * eval answer and a native /v1/query answer over the same scores agree
 * exactly. Errors keep each client's envelope: Langfuse reads "message"
 * (we send it and "error", both naming the field), Helicone reads
 * {"data": null, "error": "..."}. Requests refused before the body (401,
 * 404, 405, 413, 503) keep the native {"error": ...} of http.c.
 */
#include "compat.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_EVENTS 100000u /* Langfuse ingestion events per request */
#define VERSION "scoredb-compat-1"

enum {
    LF_HEALTH = 1,
    LF_INGEST,
    LF_SCORE_CREATE,
    LF_SCORES_LIST,
    LF_SCORE_GET,
    LF_SCORE_DELETE,
    LF_CONFIGS_LIST,
    LF_CONFIG_CREATE,
    LF_CONFIG_GET,
    LF_QUEUES,
    LF_SCORES_V1,
    LF_CONFIG_PATCH,
    LF_SCORES_V3,
    LF_TRACE_GET,
    NT_TRACES_POST,
    NT_TRACE_GET,
    Q_LIST,        /* queue routes: native when r->sub has Q_NATIVE */
    Q_CREATE,
    Q_GET,
    Q_UPDATE,
    Q_DELETE,
    I_LIST,
    I_CREATE,
    I_GET,
    I_UPDATE,
    I_DELETE,
    A_CREATE,
    A_DELETE,
    HC_SCORE,
    HC_EVAL_ONE,
    HC_NAMES,
    HC_EVALS,
    HC_DIST,
};

/* ----------------------------------------------------------- JSON helpers */

typedef struct cbuf {
    char *p;
    size_t len;
    int oom;
} cbuf;

static void cb_raw(cbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p) {
        b->oom = 1;
        return;
    }
    memcpy(p + b->len, s, n);
    b->len += n;
    p[b->len] = 0;
    b->p = p;
}

static void cb_str(cbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (!b->p) cb_raw(b, "", 0);
    if (b->oom || sdb_json_quote(s, n, &b->p, &b->len)) b->oom = 1;
}

static void emit(cbuf *b, const json_t *v)
{
    char tmp[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        cb_raw(b, "{", 1);
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first) cb_raw(b, ",", 1);
            first = 0;
            cb_str(b, k, strlen(k));
            cb_raw(b, ":", 1);
            emit(b, x);
        }
        cb_raw(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        cb_raw(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) cb_raw(b, ",", 1);
            emit(b, json_array_get(v, i));
        }
        cb_raw(b, "]", 1);
        break;
    case JSON_STRING: cb_str(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        cb_raw(b, tmp, strlen(tmp));
        break;
    case JSON_REAL:
        sdb_json_number(json_real_value(v), tmp);
        cb_raw(b, tmp, strlen(tmp));
        break;
    case JSON_TRUE: cb_raw(b, "true", 4); break;
    case JSON_FALSE: cb_raw(b, "false", 5); break;
    case JSON_NULL: cb_raw(b, "null", 4); break;
    }
}

int sdb__cj_finish(json_t *v, char **out)
{
    *out = NULL;
    if (!v) return SDB_ENOMEM;
    cbuf b = {NULL, 0, 0};
    emit(&b, v);
    json_decref(v);
    if (b.oom || !b.p) {
        free(b.p);
        return SDB_ENOMEM;
    }
    *out = b.p;
    return SDB_OK;
}

void sdb__cj_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sdb__cj_only(const json_t *o, const char *const *allowed, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, k)) a++;
        if (!*a) {
            sdb__cj_errf(err, errlen, "unknown field \"%.200s\"", k);
            return SDB_EINVAL;
        }
    }
    return SDB_OK;
}

json_t *sdb__cj_get(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && !json_is_null(v) ? v : NULL;
}

json_t *sdb__cj_num(double x)
{
    if (x == floor(x) && fabs(x) < 9e15) return json_integer((json_int_t)x);
    return json_real(x);
}

int sdb__cj_load(const char *text, size_t len, const char *what, json_t **out, char *err,
                 size_t errlen)
{
    json_error_t je;
    *out = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        sdb_json_load_error(text ? text : "", len, je.line, je.column, je.text, err, errlen);
        return SDB_EINVAL;
    }
    if (!json_is_object(*out) && !(what && what[0] == '[' && json_is_array(*out))) {
        sdb__cj_errf(err, errlen, "%s: expected a JSON object", what + (what[0] == '['));
        json_decref(*out);
        *out = NULL;
        return SDB_EINVAL;
    }
    return SDB_OK;
}

int sdb__cj_add_score(sdb_batch *b, const json_t *n, char *err, size_t errlen)
{
    char *text = json_dumps(n, JSON_COMPACT);
    if (!text) return SDB_ENOMEM;
    int rc = sdb_batch_add_json(b, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- routing */

/* url is prefix + ID (+ suffix when given); ID is copied to r->id. An ID
 * may contain '/' (sent as %2F) only where it is the path's last part
 * (slash_ok): score ids are the client's and may hold one. */
static int path_id_any(const char *url, const char *prefix, const char *suffix, sdb__req *r,
                       int slash_ok)
{
    size_t pl = strlen(prefix), sl = suffix ? strlen(suffix) : 0;
    if (strncmp(url, prefix, pl)) return 0;
    const char *id = url + pl;
    size_t n = strlen(id);
    if (n <= sl || (sl && strcmp(id + n - sl, suffix))) return 0;
    n -= sl;
    if (n >= sizeof r->id || (!slash_ok && memchr(id, '/', n))) return 0;
    memcpy(r->id, id, n);
    r->id[n] = 0;
    return 1;
}

static int path_id(const char *url, const char *prefix, const char *suffix, sdb__req *r)
{
    return path_id_any(url, prefix, suffix, r, 0);
}

static int pick(int route, int sub, sdb__req *r)
{
    r->sub = sub;
    return route;
}

/* The annotation-queue paths, under /api/public/annotation-queues
 * (Langfuse) and /v1/annotation-queues (native, Q_NATIVE): the queue id
 * goes to r->id, an item id to r->id + Q_ID2. */
#define Q_NATIVE 0x100
#define Q_ID2 128
static int queue_route(const char *method, const char *url, sdb__req *r, const char **allow)
{
    int native = 0;
    const char *p;
    if (!strncmp(url, "/api/public/annotation-queues", 29)) {
        p = url + 29;
    } else if (!strncmp(url, "/v1/annotation-queues", 21)) {
        p = url + 21;
        native = Q_NATIVE;
    } else {
        return -2;
    }
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    int patch = !strcmp(method, "PATCH");
    const int L = SDB_R_LANGFUSE;
    if (!*p) {
        *allow = "GET, HEAD, POST";
        return get ? pick(L, Q_LIST | native, r) : post ? pick(L, Q_CREATE | native, r) : -1;
    }
    if (*p++ != '/') return -2;
    /* segments: queue [/items [/item] | /assignments] */
    const char *seg[4];
    size_t len[4], n = 0;
    while (*p && n < 4) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        seg[n] = p;
        len[n++] = l;
        p += l + (e != NULL);
        if (e && !*p) return -2; /* a trailing slash */
    }
    if (*p || n == 0 || len[0] == 0 || len[0] >= Q_ID2) return -2;
    memcpy(r->id, seg[0], len[0]);
    r->id[len[0]] = 0;
    if (n == 1) {
        *allow = "GET, HEAD, PATCH, DELETE";
        return get ? pick(L, Q_GET | native, r) : patch ? pick(L, Q_UPDATE | native, r)
               : del ? pick(L, Q_DELETE | native, r) : -1;
    }
    if (n == 2 && len[1] == 11 && !strncmp(seg[1], "assignments", 11)) {
        *allow = "POST, DELETE";
        return post ? pick(L, A_CREATE | native, r) : del ? pick(L, A_DELETE | native, r) : -1;
    }
    if (len[1] != 5 || strncmp(seg[1], "items", 5)) return -2;
    if (n == 2) {
        *allow = "GET, HEAD, POST";
        return get ? pick(L, I_LIST | native, r) : post ? pick(L, I_CREATE | native, r) : -1;
    }
    if (n != 3 || len[2] == 0 || len[2] >= sizeof r->id - Q_ID2) return -2;
    memcpy(r->id + Q_ID2, seg[2], len[2]);
    r->id[Q_ID2 + len[2]] = 0;
    *allow = "GET, HEAD, PATCH, DELETE";
    return get ? pick(L, I_GET | native, r) : patch ? pick(L, I_UPDATE | native, r)
           : del ? pick(L, I_DELETE | native, r) : -1;
}

int sdb__compat_route(const char *method, const char *url, sdb__req *r, const char **allow)
{
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    const int L = SDB_R_LANGFUSE, H = SDB_R_HELICONE;
    if (!strcmp(url, "/api/public/health")) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_HEALTH, r) : -1;
    }
    if (!strcmp(url, "/api/public/ingestion")) {
        *allow = "POST";
        return post ? pick(L, LF_INGEST, r) : -1;
    }
    if (!strcmp(url, "/api/public/scores")) {
        *allow = "GET, HEAD, POST";
        return post ? pick(L, LF_SCORE_CREATE, r) : get ? pick(L, LF_SCORES_V1, r) : -1;
    }
    if (!strcmp(url, "/api/public/v2/scores")) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_SCORES_LIST, r) : -1;
    }
    if (path_id_any(url, "/api/public/scores/", NULL, r, 1)) {
        *allow = "GET, HEAD, DELETE";
        return get ? pick(L, LF_SCORE_GET, r) : del ? pick(L, LF_SCORE_DELETE, r) : -1;
    }
    if (path_id_any(url, "/api/public/v2/scores/", NULL, r, 1)) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_SCORE_GET, r) : -1;
    }
    if (!strcmp(url, "/api/public/score-configs")) {
        *allow = "GET, HEAD, POST";
        return post ? pick(L, LF_CONFIG_CREATE, r) : get ? pick(L, LF_CONFIGS_LIST, r) : -1;
    }
    if (path_id(url, "/api/public/score-configs/", NULL, r)) {
        *allow = "GET, HEAD, PATCH";
        return get ? pick(L, LF_CONFIG_GET, r)
               : !strcmp(method, "PATCH") ? pick(L, LF_CONFIG_PATCH, r) : -1;
    }
    if (!strcmp(url, "/api/public/v3/scores")) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_SCORES_V3, r) : -1;
    }
    if (path_id(url, "/api/public/traces/", NULL, r)) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_TRACE_GET, r) : -1;
    }
    if (!strcmp(url, "/v1/traces")) {
        *allow = "POST";
        return post ? pick(L, NT_TRACES_POST, r) : -1;
    }
    if (path_id(url, "/v1/traces/", NULL, r)) {
        *allow = "GET, HEAD";
        return get ? pick(L, NT_TRACE_GET, r) : -1;
    }
    int q = queue_route(method, url, r, allow);
    if (q != -2) return q;
    if (path_id(url, "/v1/request/", "/score", r)) {
        *allow = "POST";
        return post ? pick(H, HC_SCORE, r) : -1;
    }
    if (!strcmp(url, "/v1/evals/scores")) {
        *allow = "GET, HEAD";
        return get ? pick(H, HC_NAMES, r) : -1;
    }
    if (!strcmp(url, "/v1/evals/query")) {
        *allow = "POST";
        return post ? pick(H, HC_EVALS, r) : -1;
    }
    if (!strcmp(url, "/v1/evals/score-distributions/query")) {
        *allow = "POST";
        return post ? pick(H, HC_DIST, r) : -1;
    }
    if (path_id(url, "/v1/evals/", NULL, r)) {
        *allow = "POST";
        return post ? pick(H, HC_EVAL_ONE, r) : -1;
    }
    return -2;
}

int sdb__compat_public(const sdb__req *r)
{
    return r->route == SDB_R_LANGFUSE && r->sub == LF_HEALTH;
}

/* ---------------------------------------------------------------- replies */

/* A JSON reply; takes json (NULL: out of memory). */
static void reply(sdb__reply *out, int status, char *json)
{
    out->status = status;
    out->body = json;
    out->len = json ? strlen(json) : 0;
    out->ctype = NULL;
}

/* {"<k1>": msg, "<k2>": msg} (k2 NULL: one field) or {"data": null,
 * "error": msg} when `helicone`. */
static void reply_error(sdb__reply *out, int status, const char *msg, int helicone)
{
    char *b = strdup(helicone ? "{\"data\":null,\"error\":" : "{\"message\":");
    size_t len = b ? strlen(b) : 0;
    int ok = b && sdb_json_quote(msg, strlen(msg), &b, &len) == SDB_OK;
    if (ok && !helicone) {
        char *p = realloc(b, len + 10);
        ok = p != NULL;
        if (p) {
            b = p;
            memcpy(b + len, ",\"error\":", 10);
            len += 9;
            ok = sdb_json_quote(msg, strlen(msg), &b, &len) == SDB_OK;
        }
    }
    char *p = ok ? realloc(b, len + 2) : NULL;
    if (!p) {
        free(b);
        sdb__reply_error(out, status, msg);
        return;
    }
    memcpy(p + len, "}", 2);
    reply(out, status, p);
}

void sdb__compat_error(sdb__reply *out, int status, const char *msg)
{
    reply_error(out, status, msg, 0);
}

/* The reply of an engine call that failed with rc. */
static void reply_rc(sdb__reply *out, int rc, const char *err, const char *not_found,
                     int helicone)
{
    if (rc == SDB_EINVAL) {
        reply_error(out, 400, err && err[0] ? err : "invalid request", helicone);
    } else if (rc == SDB_ENOTFOUND) {
        reply_error(out, 404, not_found ? not_found : "not found", helicone);
    } else {
        char msg[600];
        snprintf(msg, sizeof msg, "%s%s%s", sdb_strerror(rc), err && err[0] ? ": " : "",
                 err ? err : "");
        reply_error(out, rc == SDB_EBUSY ? 503 : 500, msg, helicone);
    }
}

/* The reply of a store write that failed with rc: 507 naming the store's
 * disk when the disk refused it (docs/reliability.md). */
static void reply_write(sdb_server *s, sdb__reply *out, int rc, const char *err, const char *what,
                        int helicone)
{
    char msg[700];
    if (rc == SDB_ENOSPC || rc == SDB_EIO) {
        reply_error(out, sdb__srv_write_error(s, rc, what, msg, sizeof msg), msg, helicone);
        return;
    }
    reply_rc(out, rc, rc == SDB_EINVAL ? err : what, NULL, helicone);
}

/* ------------------------------------------------------------- endpoints */

static const char *body_of(const sdb__req *r) { return r->body ? r->body : ""; }

/* Langfuse writes run one at a time from parse to commit, so that a trace
 * and its scores sent at once by two clients cannot miss each other
 * (traces.c). The group commit is one writer anyway; what this costs is
 * parallel parsing of Langfuse bodies. */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;

/* Index committed scores by trace. The scores are stored and acknowledged
 * whatever happens here; a failure only means a later change of their
 * trace will not reach them, which the log says. */
static void index_after(sdb__tctx *tc, const sdb_batch *b, int commit_rc)
{
    int rc = commit_rc == SDB_OK ? sdb__tctx_index(tc, b) : SDB_OK;
    if (rc) fprintf(stderr, "scoredb serve: trace index not written: %s\n", sdb_strerror(rc));
}

static void lf_ingest(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 0);
        return;
    }
    char *ans = NULL, err[512] = "";
    size_t n_err;
    sdb__tctx *tc = NULL;
    pthread_mutex_lock(&trace_mu);
    int rc = sdb__tctx_new(s->store, r->project, &tc);
    if (rc == SDB_OK)
        rc = sdb__lf_ingest(s->store, r->project, tc, b, body_of(r), r->len, MAX_EVENTS,
                            r->scores_only, &ans, &n_err, err, sizeof err);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    index_after(tc, b, rc);
    pthread_mutex_unlock(&trace_mu);
    sdb__tctx_free(tc);
    if (rc) {
        free(ans);
        reply_write(s, out, rc, err, "the scores were not stored", 0);
    } else {
        /* Langfuse answers ingestion with 207 whatever the outcome. */
        reply(out, 207, ans);
    }
    sdb_batch_free(b);
}

static void lf_create(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 0);
        return;
    }
    char err[512] = "";
    sdb__tctx *tc = NULL;
    pthread_mutex_lock(&trace_mu);
    int rc = sdb__tctx_new(s->store, r->project, &tc);
    if (rc == SDB_OK)
        rc = sdb__lf_score_add(s->store, r->project, tc, b, body_of(r), r->len, err, sizeof err);
    if (rc == SDB_OK) rc = sdb__srv_commit(s, r->project, b);
    index_after(tc, b, rc);
    pthread_mutex_unlock(&trace_mu);
    sdb__tctx_free(tc);
    if (rc) {
        reply_write(s, out, rc, err, "the score was not stored", 0);
    } else {
        const char *id = sdb_batch_id(b, 0);
        char *j = strdup("{\"id\":");
        size_t len = j ? strlen(j) : 0;
        char *p = j && sdb_json_quote(id, strlen(id), &j, &len) == SDB_OK ? realloc(j, len + 2)
                                                                          : NULL;
        if (p) memcpy(p + len, "}", 2);
        else free(j);
        reply(out, 200, p);
    }
    sdb_batch_free(b);
}

static void lf_delete(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    int rc = sdb_score_delete(s->store, r->project, r->id);
    if (rc) {
        if (rc == SDB_ENOTFOUND)
            reply_rc(out, rc, NULL, "no score with this id", 0);
        else
            reply_write(s, out, rc, NULL, "the score was not deleted", 0);
        return;
    }
    atomic_fetch_add(&s->gen, 1);
    /* Langfuse answers a delete with 200 and a message. */
    reply(out, 200, strdup("{\"message\":\"Score deleted successfully\"}"));
}

/* -------------------------------------------------- annotation queues */

/* Keys of o renamed snake_case → camelCase (to_camel) or back, one level
 * deep and inside arrays of objects: the Langfuse names of the native
 * queue objects (score_config_ids ↔ scoreConfigIds). New ref. */
static json_t *rename_keys(const json_t *o, int to_camel)
{
    if (json_is_array(o)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(o, i, x) json_array_append_new(a, rename_keys(x, to_camel));
        return a;
    }
    if (!json_is_object(o)) return json_incref((json_t *)o);
    json_t *n = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        char buf[256];
        size_t j = 0;
        for (const char *p = k; *p && j + 2 < sizeof buf; p++) {
            if (to_camel && *p == '_' && p[1]) {
                p++;
                buf[j++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            } else if (!to_camel && *p >= 'A' && *p <= 'Z') {
                buf[j++] = '_';
                buf[j++] = (char)(*p + 32);
            } else {
                buf[j++] = *p;
            }
        }
        buf[j] = 0;
        json_object_set(n, buf, v);
    }
    return n;
}

static void queue_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r,
                           sdb__reply *out)
{
    int native = r->sub & Q_NATIVE, op = r->sub & ~Q_NATIVE;
    const char *q = r->id, *item = r->id + Q_ID2;
    char err[512] = "";
    json_t *body = NULL, *ans = NULL, *meta = NULL;
    int rc = SDB_OK;
    int64_t now = sdb__srv_now(s);
    if (op == Q_CREATE || op == Q_UPDATE || op == I_CREATE || op == I_UPDATE || op == A_CREATE ||
        op == A_DELETE) {
        json_t *raw;
        if (sdb__cj_load(body_of(r), r->len, op == I_CREATE && native ? "[body" : "body", &raw,
                         err, sizeof err)) {
            reply_rc(out, SDB_EINVAL, err, NULL, 0);
            return;
        }
        body = native ? raw : rename_keys(raw, 0);
        if (!native) json_decref(raw);
    }
    uint64_t page = 1, limit = 50, total = 0;
    const char *status = NULL;
    if (op == Q_LIST || op == I_LIST) {
        sdb_param *params = NULL;
        size_t n = sdb__http_args(c, &params);
        for (size_t i = 0; rc == SDB_OK && i < n; i++) {
            const char *k = params[i].key, *v = params[i].value ? params[i].value : "";
            char *end;
            unsigned long long x = strtoull(v, &end, 10);
            if (!strcmp(k, "page") || !strcmp(k, "limit")) {
                int lim = k[0] == 'l';
                if (!*v || *end || x < 1 || x > (lim ? 100u : 1000000u)) {
                    sdb__cj_errf(err, sizeof err, "parameter \"%s\": expected an integer from 1 to "
                                 "%u, got \"%.40s\"", k, lim ? 100u : 1000000u, v);
                    rc = SDB_EINVAL;
                }
                else
                    *(lim ? &limit : &page) = x;
            } else if (!strcmp(k, "status") && op == I_LIST) {
                if (strcmp(v, "PENDING") && strcmp(v, "COMPLETED")) {
                    sdb__cj_errf(err, sizeof err, "parameter \"status\": expected PENDING or "
                                 "COMPLETED, got \"%.40s\"", v);
                    rc = SDB_EINVAL;
                }
                status = v;
            } else {
                sdb__cj_errf(err, sizeof err, "unknown parameter \"%.100s\"", k);
                rc = SDB_EINVAL;
            }
        }
        if (rc == SDB_OK && op == Q_LIST)
            rc = sdb__queues_list(s->store, r->project, (page - 1) * limit, limit, &ans, &total);
        else if (rc == SDB_OK)
            rc = sdb__items_list(s->store, r->project, q, status, (page - 1) * limit, limit, &ans,
                                 &total);
        /* status is borrowed from params: used above, freed here */
        free(params);
        meta = json_pack("{s:I,s:I,s:I,s:I}", "page", (json_int_t)page, "limit",
                         (json_int_t)limit, "totalItems", (json_int_t)total, "totalPages",
                         (json_int_t)((total + limit - 1) / limit));
    }
    switch (op) {
    case Q_LIST:
    case I_LIST: break;
    case Q_CREATE: rc = sdb__queue_create(s->store, r->project, body, now, &ans, err, sizeof err); break;
    case Q_GET: rc = sdb__queue_get(s->store, r->project, q, &ans); break;
    case Q_UPDATE:
        rc = sdb__queue_update(s->store, r->project, q, body, now, &ans, err, sizeof err);
        break;
    case Q_DELETE:
        rc = sdb__queue_delete(s->store, r->project, q);
        if (rc == SDB_OK) ans = json_pack("{s:b,s:s}", "success", 1, "message", "Queue deleted");
        break;
    case I_CREATE:
        rc = sdb__items_create(s->store, r->project, q, body, now, &ans, err, sizeof err);
        break;
    case I_GET: rc = sdb__item_get(s->store, r->project, q, item, &ans); break;
    case I_UPDATE:
        rc = sdb__item_update(s->store, r->project, q, item, body, now, &ans, err, sizeof err);
        break;
    case I_DELETE:
        rc = sdb__item_delete(s->store, r->project, q, item);
        if (rc == SDB_OK)
            ans = json_pack("{s:b,s:s}", "success", 1, "message", "Item deleted successfully");
        break;
    case A_CREATE:
    case A_DELETE: {
        json_t *a = NULL;
        rc = sdb__assignment(s->store, r->project, q, body, op == A_DELETE, now, &a, err,
                             sizeof err);
        if (rc == SDB_OK && op == A_DELETE) {
            ans = json_pack("{s:b}", "success", 1);
            json_decref(a);
        } else if (rc == SDB_OK) {
            char pid[16];
            snprintf(pid, sizeof pid, "%u", r->project);
            json_object_set_new(a, "project_id", json_string(pid));
            json_object_del(a, "created_at");
            ans = a;
        }
        break;
    }
    default: rc = SDB_ENOTFOUND;
    }
    json_decref(body);
    if (rc) {
        json_decref(ans);
        json_decref(meta);
        if (rc == SDB_ENOSPC || rc == SDB_EIO)
            reply_write(s, out, rc, err, "the annotation queue was not changed", 0);
        else
            reply_rc(out, rc, err, op >= I_GET && op <= I_DELETE ? "no such queue item"
                                  : "no such annotation queue", 0);
        return;
    }
    if (!native) {
        json_t *cam = rename_keys(ans, 1);
        json_decref(ans);
        ans = cam;
    }
    if (meta) ans = json_pack("{s:o,s:o}", "data", ans, "meta", meta);
    char *text;
    rc = sdb__cj_finish(ans, &text);
    if (rc) reply_error(out, 500, "out of memory", 0);
    else reply(out, op == Q_CREATE && native ? 201 : 200, text);
}

/* ------------------------------------------------------------- traces */

/* POST /v1/traces: a trace object or an array of them (native fields;
 * "observations": [...] inside a trace). The changed traces' stored
 * scores are re-sent with their new context. */
static void nt_traces_post(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    char err[512] = "";
    json_t *o = NULL;
    sdb__tctx *tc = NULL;
    sdb_batch *b = NULL;
    size_t again = 0, n = 0;
    int rc = sdb__cj_load(body_of(r), r->len, "[body", &o, err, sizeof err);
    pthread_mutex_lock(&trace_mu);
    if (rc == SDB_OK) rc = sdb__tctx_new(s->store, r->project, &tc);
    if (rc == SDB_OK) rc = sdb_batch_new(&b);
    n = json_is_array(o) ? json_array_size(o) : 1;
    if (rc == SDB_OK && n > 10000) {
        sdb__cj_errf(err, sizeof err, "body: more than 10000 traces in one request");
        rc = SDB_EINVAL;
    }
    for (size_t i = 0; rc == SDB_OK && i < n; i++) {
        json_t *t = json_is_array(o) ? json_array_get(o, i) : o, *obs, *x;
        char msg[400] = "";
        if (!json_is_object(t)) {
            sdb__cj_errf(msg, sizeof msg, "expected an object");
            rc = SDB_EINVAL;
        }
        static const char *const ok[] = {"id", "name", "user_id", "session_id", "tags",
                                          "environment", "release", "version", "metadata",
                                          "observations", NULL};
        if (rc == SDB_OK) rc = sdb__cj_only(t, ok, msg, sizeof msg);
        if (rc == SDB_OK) rc = sdb__tctx_trace(tc, t, msg, sizeof msg);
        obs = json_object_get(t, "observations");
        if (rc == SDB_OK && obs && !json_is_array(obs)) {
            sdb__cj_errf(msg, sizeof msg, "field \"observations\": expected an array");
            rc = SDB_EINVAL;
        }
        size_t j;
        json_array_foreach(rc ? NULL : obs, j, x)
        {
            json_t *ob = json_is_object(x) ? json_deep_copy(x) : NULL;
            if (!ob) {
                sdb__cj_errf(msg, sizeof msg, "observations[%zu]: expected an object", j);
                rc = SDB_EINVAL;
                break;
            }
            json_object_set(ob, "trace_id", json_object_get(t, "id"));
            rc = sdb__tctx_observation(tc, ob, msg, sizeof msg);
            json_decref(ob);
            if (rc) break;
        }
        if (rc == SDB_EINVAL) {
            if (json_is_array(o)) sdb__cj_errf(err, sizeof err, "traces[%zu]: %s", i, msg);
            else sdb__cj_errf(err, sizeof err, "%s", msg);
        }
    }
    if (rc == SDB_OK) rc = sdb__tctx_finish(tc, b, &again);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    pthread_mutex_unlock(&trace_mu);
    sdb__tctx_free(tc);
    sdb_batch_free(b);
    json_decref(o);
    if (rc) {
        reply_write(s, out, rc, err, "the traces were not stored", 0);
        return;
    }
    char text[96];
    snprintf(text, sizeof text, "{\"accepted\":%zu,\"scores_updated\":%zu}", n, again);
    reply(out, 200, strdup(text));
}

static void hc_score(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 1);
        return;
    }
    char err[512] = "";
    /* Helicone-Property-* headers become the scores' properties, the way
     * Helicone segments requests by them. */
    json_t *props = json_object();
    sdb_param *h = NULL;
    size_t nh = sdb__http_headers(c, &h);
    for (size_t i = 0; props && i < nh; i++)
        if (!strncasecmp(h[i].key, "Helicone-Property-", 18) && h[i].key[18] && h[i].value) {
            char k[220];
            snprintf(k, sizeof k, "%.200s", h[i].key + 18);
            for (char *p = k; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            json_object_set_new(props, k, json_string(h[i].value));
        }
    free(h);
    int rc = !props ? SDB_ENOMEM
             : r->sub == HC_EVAL_ONE
                 ? sdb__hc_eval_add(b, r->id, props, body_of(r), r->len, err, sizeof err)
                 : sdb__hc_scores_add(b, r->id, props, body_of(r), r->len, err, sizeof err);
    json_decref(props);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    if (rc)
        reply_write(s, out, rc, err, "the scores were not stored", 1);
    else
        reply(out, 200, strdup("{\"data\":null,\"error\":null}")); /* Helicone's docs: 200 */
    sdb_batch_free(b);
}

void sdb__compat_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r,
                          sdb__reply *out)
{
    char *ans = NULL, err[512] = "";
    sdb_param *params = NULL;
    size_t n = 0;
    int rc = SDB_OK, hc = r->route == SDB_R_HELICONE;
    const char *not_found = NULL;
    if (r->scores_only && r->sub != LF_INGEST) {
        /* Hosted Langfuse: a public key alone may send score events to
         * the ingestion route, nothing else. */
        reply_error(out, 401, "Access denied - need to use basic auth with secret key", 0);
        return;
    }
    if ((r->sub & ~Q_NATIVE) >= Q_LIST && (r->sub & ~Q_NATIVE) <= A_DELETE) {
        queue_dispatch(s, c, r, out);
        return;
    }
    switch (r->sub) {
    case LF_HEALTH:
        reply(out, 200, strdup("{\"status\":\"OK\",\"version\":\"" VERSION "\"}"));
        return;
    case LF_INGEST: lf_ingest(s, r, out); return;
    case LF_SCORE_CREATE: lf_create(s, r, out); return;
    case LF_SCORE_DELETE: lf_delete(s, r, out); return;
    case HC_SCORE:
    case HC_EVAL_ONE: hc_score(s, c, r, out); return;
    case NT_TRACES_POST: nt_traces_post(s, r, out); return;
    case NT_TRACE_GET:
    case LF_TRACE_GET:
        rc = sdb__trace_get(s->store, r->project, r->id, r->sub == LF_TRACE_GET, &ans);
        not_found = "no trace with this id";
        break;
    case LF_CONFIG_PATCH:
        rc = sdb__lf_config_update(s->store, r->project, r->id, body_of(r), r->len,
                                   sdb__srv_now(s), &ans, err, sizeof err);
        not_found = "no score config with this id";
        break;
    case LF_SCORES_V3:
        n = sdb__http_args(c, &params);
        rc = sdb__lf_scores_v3(s->store, r->project, params, n, &ans, err, sizeof err);
        break;
    case LF_SCORES_LIST:
    case LF_SCORES_V1:
        n = sdb__http_args(c, &params);
        rc = sdb__lf_scores_list(s->store, r->project, params, n, r->sub == LF_SCORES_V1, &ans, err,
                                 sizeof err);
        break;
    case LF_SCORE_GET:
        rc = sdb__lf_score_get(s->store, r->project, r->id, &ans);
        not_found = "no score with this id";
        break;
    case LF_CONFIGS_LIST:
        n = sdb__http_args(c, &params);
        rc = sdb__lf_configs_list(s->store, r->project, params, n, &ans, err,
                                            sizeof err);
        break;
    case LF_CONFIG_CREATE:
        rc = sdb__lf_config_create(s->store, r->project, body_of(r), r->len,
                                             sdb__srv_now(s), &ans, err, sizeof err);
        break;
    case LF_CONFIG_GET:
        rc = sdb__lf_config_get(s->store, r->project, r->id, &ans);
        not_found = "no score config with this id";
        break;
    case HC_NAMES:
        if ((rc = sdb__srv_fold(s)) == SDB_OK) rc = sdb__hc_names(s->store, r->project, &ans);
        break;
    case HC_EVALS:
    case HC_DIST:
        if ((rc = sdb__srv_fold(s)) == SDB_OK)
            rc = (r->sub == HC_EVALS ? sdb__hc_evals : sdb__hc_distributions)(
                s->store, r->project, body_of(r), r->len, &ans, err, sizeof err);
        break;
    default: reply_error(out, 404, "no such path", hc); return;
    }
    free(params);
    if (rc) {
        free(ans);
        reply_rc(out, rc, err, not_found, hc);
    } else {
        reply(out, 200, ans);
    }
}
