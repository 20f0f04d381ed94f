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
    HC_SCORE,
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
        sdb__cj_errf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
        return SDB_EINVAL;
    }
    if (!json_is_object(*out)) {
        sdb__cj_errf(err, errlen, "%s: expected a JSON object", what);
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

/* url is prefix + ID (+ suffix when given); ID is copied to r->id. */
static int path_id(const char *url, const char *prefix, const char *suffix, sdb__req *r)
{
    size_t pl = strlen(prefix), sl = suffix ? strlen(suffix) : 0;
    if (strncmp(url, prefix, pl)) return 0;
    const char *id = url + pl;
    size_t n = strlen(id);
    if (n <= sl || (sl && strcmp(id + n - sl, suffix))) return 0;
    n -= sl;
    if (n >= sizeof r->id || memchr(id, '/', n)) return 0;
    memcpy(r->id, id, n);
    r->id[n] = 0;
    return 1;
}

static int pick(int route, int sub, sdb__req *r)
{
    r->sub = sub;
    return route;
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
        return post ? pick(L, LF_SCORE_CREATE, r) : get ? pick(L, LF_SCORES_LIST, r) : -1;
    }
    if (!strcmp(url, "/api/public/v2/scores")) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_SCORES_LIST, r) : -1;
    }
    if (path_id(url, "/api/public/scores/", NULL, r)) {
        *allow = "GET, HEAD, DELETE";
        return get ? pick(L, LF_SCORE_GET, r) : del ? pick(L, LF_SCORE_DELETE, r) : -1;
    }
    if (path_id(url, "/api/public/v2/scores/", NULL, r)) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_SCORE_GET, r) : -1;
    }
    if (!strcmp(url, "/api/public/score-configs")) {
        *allow = "GET, HEAD, POST";
        return post ? pick(L, LF_CONFIG_CREATE, r) : get ? pick(L, LF_CONFIGS_LIST, r) : -1;
    }
    if (path_id(url, "/api/public/score-configs/", NULL, r)) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_CONFIG_GET, r) : -1;
    }
    if (!strcmp(url, "/api/public/annotation-queues")) {
        *allow = "GET, HEAD";
        return get ? pick(L, LF_QUEUES, r) : -1;
    }
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

/* ------------------------------------------------------------- endpoints */

static const char *body_of(const sdb__req *r) { return r->body ? r->body : ""; }

/* Langfuse writes run one at a time from parse to commit, so that a trace
 * and its scores sent at once by two clients cannot miss each other
 * (traces.c). The group commit is one writer anyway; what this costs is
 * parallel parsing of Langfuse bodies. */
static pthread_mutex_t trace_mu = PTHREAD_MUTEX_INITIALIZER;

static void lf_ingest(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 0);
        return;
    }
    char *ans = NULL, err[512] = "";
    size_t n_err;
    pthread_mutex_lock(&trace_mu);
    int rc = sdb__lf_ingest(s->store, r->project, b, body_of(r), r->len, MAX_EVENTS,
                            r->scores_only, &ans, &n_err, err, sizeof err);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    pthread_mutex_unlock(&trace_mu);
    if (rc) {
        free(ans);
        reply_rc(out, rc, rc == SDB_EINVAL ? err : "the scores were not stored", NULL, 0);
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
    pthread_mutex_lock(&trace_mu);
    int rc = sdb__lf_score_add(s->store, r->project, b, body_of(r), r->len, err, sizeof err);
    if (rc == SDB_OK) rc = sdb__srv_commit(s, r->project, b);
    pthread_mutex_unlock(&trace_mu);
    if (rc) {
        reply_rc(out, rc, rc == SDB_EINVAL ? err : "the score was not stored", NULL, 0);
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
        reply_rc(out, rc, NULL, "no score with this id", 0);
        return;
    }
    atomic_fetch_add(&s->gen, 1);
    reply(out, 204, calloc(1, 1)); /* no content */
}

static void hc_score(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 1);
        return;
    }
    char err[512] = "";
    int rc = sdb__hc_scores_add(b, r->id, body_of(r), r->len, err, sizeof err);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    if (rc)
        reply_rc(out, rc, rc == SDB_EINVAL ? err : "the scores were not stored", NULL, 1);
    else
        reply(out, 201, strdup("{\"data\":null,\"error\":null}"));
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
    switch (r->sub) {
    case LF_HEALTH:
        reply(out, 200, strdup("{\"status\":\"OK\",\"version\":\"" VERSION "\"}"));
        return;
    case LF_INGEST: lf_ingest(s, r, out); return;
    case LF_SCORE_CREATE: lf_create(s, r, out); return;
    case LF_SCORE_DELETE: lf_delete(s, r, out); return;
    case HC_SCORE: hc_score(s, r, out); return;
    case LF_SCORES_LIST:
        n = sdb__http_args(c, &params);
        rc = sdb__lf_scores_list(s->store, r->project, params, n, &ans, err, sizeof err);
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
    case LF_QUEUES:
        n = sdb__http_args(c, &params);
        rc = sdb__lf_queues_list(s->store, r->project, params, n, &ans, err, sizeof err);
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
