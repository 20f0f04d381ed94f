/* The compatible endpoints: the paths and status codes Langfuse and
 * Helicone clients expect, over engine/compat.c's reshaping.
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

static void lf_ingest(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        reply_error(out, 500, "out of memory", 0);
        return;
    }
    char *ans = NULL, err[512] = "";
    size_t n_err;
    int rc = sdb_langfuse_ingest(s->store, r->project, b, body_of(r), r->len, MAX_EVENTS, &ans,
                                 &n_err, err, sizeof err);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
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
    int rc = sdb_langfuse_score_add(s->store, r->project, b, body_of(r), r->len, err, sizeof err);
    if (rc == SDB_OK) rc = sdb__srv_commit(s, r->project, b);
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
    int rc = sdb_helicone_scores_add(b, r->id, body_of(r), r->len, err, sizeof err);
    if (rc == SDB_OK && sdb_batch_rows(b)) rc = sdb__srv_commit(s, r->project, b);
    if (rc)
        reply_write(s, out, rc, err, "the scores were not stored", 1);
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
        rc = sdb_langfuse_scores_list_json(s->store, r->project, params, n, &ans, err, sizeof err);
        break;
    case LF_SCORE_GET:
        rc = sdb_langfuse_score_get_json(s->store, r->project, r->id, &ans);
        not_found = "no score with this id";
        break;
    case LF_CONFIGS_LIST:
        n = sdb__http_args(c, &params);
        rc = sdb_langfuse_configs_list_json(s->store, r->project, params, n, &ans, err,
                                            sizeof err);
        break;
    case LF_CONFIG_CREATE:
        rc = sdb_langfuse_config_create_json(s->store, r->project, body_of(r), r->len,
                                             sdb__srv_now(s), &ans, err, sizeof err);
        break;
    case LF_CONFIG_GET:
        rc = sdb_langfuse_config_get_json(s->store, r->project, r->id, &ans);
        not_found = "no score config with this id";
        break;
    case LF_QUEUES:
        n = sdb__http_args(c, &params);
        rc = sdb_langfuse_queues_list_json(params, n, &ans, err, sizeof err);
        break;
    case HC_NAMES:
        if ((rc = sdb__srv_fold(s)) == SDB_OK) rc = sdb_helicone_names_json(s->store, r->project, &ans);
        break;
    case HC_EVALS:
    case HC_DIST:
        if ((rc = sdb__srv_fold(s)) == SDB_OK)
            rc = (r->sub == HC_EVALS ? sdb_helicone_evals_json : sdb_helicone_distributions_json)(
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
