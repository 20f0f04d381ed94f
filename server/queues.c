/* Annotation queues (API.md, docs/compat.md "Annotation queues"): lists of
 * traces, observations or sessions for people to review, with each item's
 * status (PENDING → COMPLETED, with who and when), assignments of
 * reviewers, and progress per queue.
 *
 * Native objects (snake_case), kept as engine documents:
 *   queue      SDB_DOC_QUEUE, group ""       {id, name, description,
 *              score_config_ids, created_at, updated_at}
 *   item       SDB_DOC_QUEUE_ITEM, group q   {id, queue_id, object_id,
 *              object_type, status, completed_at, completed_by, created_at,
 *              updated_at}
 *   by status  SDB_DOC_QUEUE_STATUS, group q "/" status, id = item id
 *   assignment SDB_DOC_ASSIGNMENT, group q   {user_id, queue_id, created_at}
 * Progress is three counters (items, pending, completed) that the engine
 * keeps per group, so a queue answers with its counts in one read, and a
 * list filtered by status pages through that status's index. An item and
 * its status entry change in one transaction (sdb_doc_put_many), and
 * writes run one at a time (queue_mu) so that a read-modify-write of an
 * item's status cannot interleave with another.
 * server/langfuse.c renames these fields to Langfuse's camelCase.
 */
#include "compat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BULK 1000 /* items per bulk create */

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;

static int doc_load(sdb_store *s, uint32_t p, int kind, const char *g, const char *id,
                    json_t **out)
{
    char *text;
    *out = NULL;
    int rc = sdb_doc_get(s, p, kind, g, id, &text);
    if (rc) return rc;
    *out = json_loads(text, 0, NULL);
    free(text);
    return json_is_object(*out) ? SDB_OK : SDB_ECORRUPT;
}

static int doc_store(sdb_store *s, uint32_t p, int kind, const char *g, const char *id,
                     const json_t *o, int mode)
{
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text) return SDB_ENOMEM;
    int rc = sdb_doc_put(s, p, kind, g, id, text, strlen(text), mode, NULL);
    free(text);
    return rc;
}

static void now_text(int64_t now, char *buf) { sdb_time_format(now, buf); }

/* SDB_OK when queue qid exists, SDB_ENOTFOUND when not. */
static int queue_exists(sdb_store *s, uint32_t p, const char *qid)
{
    char *qt = NULL;
    int rc = sdb_doc_get(s, p, SDB_DOC_QUEUE, "", qid, &qt);
    free(qt);
    return rc == SDB_EINVAL ? SDB_ENOTFOUND : rc;
}

static int is_id(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= 100 &&
           !memchr(json_string_value(v), 0, json_string_length(v)) &&
           !strchr(json_string_value(v), '/');
}

static int status_ok(const char *s) { return !strcmp(s, "PENDING") || !strcmp(s, "COMPLETED"); }

static void status_group(char *g, size_t n, const char *q, const char *status)
{
    snprintf(g, n, "%s/%s", q, status);
}

/* The queue with its progress counts (new ref in *out). */
static int queue_with_counts(sdb_store *s, uint32_t p, json_t *q, json_t **out)
{
    const char *id = json_string_value(json_object_get(q, "id"));
    char g[256];
    uint64_t items = 0, pending = 0, done = 0;
    int rc = sdb_doc_count(s, p, SDB_DOC_QUEUE_ITEM, id ? id : "", &items);
    status_group(g, sizeof g, id ? id : "", "PENDING");
    if (rc == SDB_OK) rc = sdb_doc_count(s, p, SDB_DOC_QUEUE_STATUS, g, &pending);
    status_group(g, sizeof g, id ? id : "", "COMPLETED");
    if (rc == SDB_OK) rc = sdb_doc_count(s, p, SDB_DOC_QUEUE_STATUS, g, &done);
    json_object_set_new(q, "items", json_integer((json_int_t)items));
    json_object_set_new(q, "pending", json_integer((json_int_t)pending));
    json_object_set_new(q, "completed", json_integer((json_int_t)done));
    *out = q;
    return rc;
}

/* Check and copy the writable queue fields of body into q. */
static int queue_fields(sdb_store *s, uint32_t p, const json_t *body, json_t *q, int create,
                        char *err, size_t errlen)
{
    static const char *const ok[] = {"name", "description", "score_config_ids", NULL};
    if (sdb__cj_only(body, ok, err, errlen)) return SDB_EINVAL;
    json_t *name = json_object_get(body, "name"), *desc = json_object_get(body, "description");
    json_t *cfgs = json_object_get(body, "score_config_ids");
    if ((create || name) && (!json_is_string(name) || json_string_length(name) < 1 ||
                             json_string_length(name) > 200)) {
        sdb__cj_errf(err, errlen, "field \"name\": expected a string of 1 to 200 bytes");
        return SDB_EINVAL;
    }
    if (desc && !json_is_null(desc) && (!json_is_string(desc) || json_string_length(desc) > 4096)) {
        sdb__cj_errf(err, errlen, "field \"description\": expected a string or null");
        return SDB_EINVAL;
    }
    if (cfgs) {
        size_t i;
        json_t *c;
        if (!json_is_array(cfgs) || json_array_size(cfgs) > 100) {
            sdb__cj_errf(err, errlen, "field \"score_config_ids\": expected an array of score "
                                      "config ids");
            return SDB_EINVAL;
        }
        json_array_foreach(cfgs, i, c)
        {
            char *text = NULL;
            int rc = json_is_string(c) ? sdb_doc_get(s, p, SDB_DOC_CONFIG, "",
                                                     json_string_value(c), &text)
                                       : SDB_ENOTFOUND;
            free(text);
            if (rc == SDB_ENOTFOUND || rc == SDB_EINVAL) {
                sdb__cj_errf(err, errlen, "field \"score_config_ids[%zu]\": no score config %s%.200s%s",
                             i, json_is_string(c) ? "\"" : "",
                             json_is_string(c) ? json_string_value(c) : "(not a string)",
                             json_is_string(c) ? "\"" : "");
                return SDB_EINVAL;
            }
            if (rc) return rc;
        }
    } else if (create) {
        cfgs = NULL;
        json_object_set_new(q, "score_config_ids", json_array());
    }
    if (name) json_object_set(q, "name", name);
    if (desc) json_object_set(q, "description", desc);
    else if (create) json_object_set_new(q, "description", json_null());
    if (cfgs) json_object_set(q, "score_config_ids", cfgs);
    return SDB_OK;
}

int sdb__queue_create(sdb_store *s, uint32_t p, const json_t *body, int64_t now, json_t **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    char id[40], ts[40];
    now_text(now, ts);
    json_t *q = json_object();
    int rc = q ? sdb_id_generate(id) : SDB_ENOMEM;
    if (rc == SDB_OK) {
        json_object_set_new(q, "id", json_string(id));
        rc = queue_fields(s, p, body, q, 1, err, errlen);
    }
    json_object_set_new(q, "created_at", json_string(ts));
    json_object_set_new(q, "updated_at", json_string(ts));
    if (rc == SDB_OK) rc = doc_store(s, p, SDB_DOC_QUEUE, "", id, q, SDB_DOC_CREATE);
    if (rc == SDB_OK) return queue_with_counts(s, p, q, out);
    json_decref(q);
    return rc;
}

int sdb__queue_get(sdb_store *s, uint32_t p, const char *qid, json_t **out)
{
    json_t *q;
    int rc = doc_load(s, p, SDB_DOC_QUEUE, "", qid, &q);
    if (rc) return rc == SDB_EINVAL ? SDB_ENOTFOUND : rc;
    return queue_with_counts(s, p, q, out);
}

int sdb__queue_update(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int64_t now,
                      json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    pthread_mutex_lock(&queue_mu);
    json_t *q;
    int rc = doc_load(s, p, SDB_DOC_QUEUE, "", qid, &q);
    if (rc == SDB_EINVAL) rc = SDB_ENOTFOUND;
    if (rc == SDB_OK) rc = queue_fields(s, p, body, q, 0, err, errlen);
    if (rc == SDB_OK) {
        char ts[40];
        now_text(now, ts);
        json_object_set_new(q, "updated_at", json_string(ts));
        rc = doc_store(s, p, SDB_DOC_QUEUE, "", qid, q, SDB_DOC_REPLACE);
    }
    pthread_mutex_unlock(&queue_mu);
    if (rc == SDB_OK) return queue_with_counts(s, p, q, out);
    json_decref(q);
    return rc;
}

typedef struct id_list {
    json_t *ids;
} id_list;

static int collect(void *ctx, const char *id, const char *json, size_t len)
{
    (void)json;
    (void)len;
    return json_array_append_new(((id_list *)ctx)->ids, json_string(id)) ? 1 : 0;
}

int sdb__queue_delete(sdb_store *s, uint32_t p, const char *qid)
{
    pthread_mutex_lock(&queue_mu);
    int rc = queue_exists(s, p, qid);
    /* Items, their status entries and assignments go first, a page of
     * them per transaction; the queue last, so that a failure midway
     * leaves a queue that can be deleted again. */
    static const int kinds[] = {SDB_DOC_QUEUE_ITEM, SDB_DOC_ASSIGNMENT, SDB_DOC_QUEUE_STATUS,
                                SDB_DOC_QUEUE_STATUS};
    for (int k = 0; rc == SDB_OK && k < 4; k++) {
        char g[256];
        if (k < 2) snprintf(g, sizeof g, "%s", qid);
        else status_group(g, sizeof g, qid, k == 2 ? "PENDING" : "COMPLETED");
        for (;;) {
            id_list l = {json_array()};
            if (!l.ids) {
                rc = SDB_ENOMEM;
                break;
            }
            rc = sdb_doc_list(s, p, kinds[k], g, NULL, 0, 500, collect, &l, NULL);
            size_t n = json_array_size(l.ids), i;
            sdb_doc *d = calloc(n ? n : 1, sizeof *d);
            json_t *x;
            json_array_foreach(l.ids, i, x) d[i] = (sdb_doc){kinds[k], g, json_string_value(x),
                                                             NULL, 0, 1};
            if (rc == SDB_OK && n) rc = d ? sdb_doc_put_many(s, p, d, n) : SDB_ENOMEM;
            free(d);
            json_decref(l.ids);
            if (rc || n == 0) break;
        }
    }
    if (rc == SDB_OK) rc = sdb_doc_delete(s, p, SDB_DOC_QUEUE, "", qid);
    pthread_mutex_unlock(&queue_mu);
    return rc;
}

typedef struct page_ctx {
    json_t *data;
    sdb_store *s;
    uint32_t p;
    int kind;     /* documents of this kind by id (status lists) */
    const char *group;
    int rc;
} page_ctx;

static int page_add(void *ctx, const char *id, const char *json, size_t len)
{
    page_ctx *c = ctx;
    json_t *x = NULL;
    if (c->kind) {
        c->rc = doc_load(c->s, c->p, c->kind, c->group, id, &x);
        if (c->rc == SDB_ENOTFOUND) {
            c->rc = SDB_OK; /* deleted meanwhile */
            return 0;
        }
    } else {
        x = json_loadb(json, len, 0, NULL);
        if (!x) c->rc = SDB_ECORRUPT;
    }
    if (c->rc) {
        json_decref(x);
        return 1;
    }
    return json_array_append_new(c->data, x) ? (c->rc = SDB_ENOMEM, 1) : 0;
}

int sdb__queues_list(sdb_store *s, uint32_t p, uint64_t offset, uint64_t limit, json_t **out,
                     uint64_t *total)
{
    page_ctx c = {json_array(), s, p, 0, "", SDB_OK};
    *out = NULL;
    if (!c.data) return SDB_ENOMEM;
    int rc = sdb_doc_list(s, p, SDB_DOC_QUEUE, "", NULL, offset, limit, page_add, &c, total);
    if (rc == SDB_OK) rc = c.rc;
    size_t i;
    json_t *q, *tmp;
    json_array_foreach(rc ? NULL : c.data, i, q) if ((rc = queue_with_counts(s, p, q, &tmp))) break;
    if (rc) {
        json_decref(c.data);
        return rc;
    }
    *out = c.data;
    return SDB_OK;
}

/* One new item of queue qid from body {object_id, object_type, status}. */
static int item_new(const char *qid, const json_t *body, const char *ts, json_t **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    static const char *const ok[] = {"object_id", "object_type", "status", NULL};
    if (sdb__cj_only(body, ok, err, errlen)) return SDB_EINVAL;
    json_t *oid = json_object_get(body, "object_id"), *ot = json_object_get(body, "object_type");
    json_t *st = sdb__cj_get(body, "status");
    if (!json_is_string(oid) || json_string_length(oid) < 1 || json_string_length(oid) > 200) {
        sdb__cj_errf(err, errlen, "field \"object_id\": expected a string of 1 to 200 bytes");
        return SDB_EINVAL;
    }
    const char *t = json_string_value(ot);
    if (!t || (strcmp(t, "TRACE") && strcmp(t, "OBSERVATION") && strcmp(t, "SESSION"))) {
        sdb__cj_errf(err, errlen, "field \"object_type\": expected TRACE, OBSERVATION or SESSION");
        return SDB_EINVAL;
    }
    if (st && (!json_is_string(st) || !status_ok(json_string_value(st)))) {
        sdb__cj_errf(err, errlen, "field \"status\": expected PENDING or COMPLETED");
        return SDB_EINVAL;
    }
    char id[40];
    int rc = sdb_id_generate(id);
    if (rc) return rc;
    int done = st && !strcmp(json_string_value(st), "COMPLETED");
    *out = json_pack("{s:s,s:s,s:O,s:s,s:s,s:s,s:s}", "id", id, "queue_id", qid, "object_id", oid,
                     "object_type", t, "status", done ? "COMPLETED" : "PENDING", "created_at", ts,
                     "updated_at", ts);
    if (!*out) return SDB_ENOMEM;
    json_object_set_new(*out, "completed_at", done ? json_string(ts) : json_null());
    json_object_set_new(*out, "completed_by", json_null());
    return SDB_OK;
}

/* The two documents of an item (text[0] owned by the caller). */
static int item_docs(const char *qid, const json_t *item, char *g, size_t gn, sdb_doc *d,
                     char **text)
{
    *text = json_dumps(item, JSON_COMPACT);
    if (!*text) return SDB_ENOMEM;
    const char *id = json_string_value(json_object_get(item, "id"));
    status_group(g, gn, qid, json_string_value(json_object_get(item, "status")));
    d[0] = (sdb_doc){SDB_DOC_QUEUE_ITEM, qid, id, *text, strlen(*text), 0};
    d[1] = (sdb_doc){SDB_DOC_QUEUE_STATUS, g, id, NULL, 0, 0};
    return SDB_OK;
}

int sdb__items_create(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int64_t now,
                      json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int bulk = json_is_array(body) || json_is_array(json_object_get(body, "items"));
    const json_t *arr = json_is_array(body) ? body : json_object_get(body, "items");
    size_t n = bulk ? json_array_size(arr) : 1;
    if (bulk && (n == 0 || n > MAX_BULK)) {
        sdb__cj_errf(err, errlen, "field \"items\": expected 1 to %d items", MAX_BULK);
        return SDB_EINVAL;
    }
    char ts[40];
    int rc = queue_exists(s, p, qid);
    if (rc) return rc;
    now_text(now, ts);
    json_t *items = json_array();
    sdb_doc *d = calloc(2 * n, sizeof *d);
    char **texts = calloc(n, sizeof *texts), (*groups)[256] = calloc(n, sizeof *groups);
    if (!items || !d || !texts || !groups) rc = SDB_ENOMEM;
    for (size_t i = 0; rc == SDB_OK && i < n; i++) {
        json_t *it;
        char msg[400] = "";
        const json_t *b = bulk ? json_array_get(arr, i) : body;
        if (!json_is_object(b)) {
            sdb__cj_errf(msg, sizeof msg, "expected an object");
            rc = SDB_EINVAL;
        } else {
            rc = item_new(qid, b, ts, &it, msg, sizeof msg);
        }
        if (rc == SDB_EINVAL) {
            if (bulk) sdb__cj_errf(err, errlen, "items[%zu]: %s", i, msg);
            else sdb__cj_errf(err, errlen, "%s", msg);
        }
        if (rc) break;
        json_array_append_new(items, it);
        rc = item_docs(qid, it, groups[i], sizeof groups[i], d + 2 * i, &texts[i]);
    }
    if (rc == SDB_OK) rc = sdb_doc_put_many(s, p, d, 2 * n);
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(groups);
    free(d);
    if (rc) {
        json_decref(items);
        return rc;
    }
    if (bulk) {
        *out = items;
    } else {
        *out = json_incref(json_array_get(items, 0));
        json_decref(items);
    }
    return SDB_OK;
}

int sdb__item_get(sdb_store *s, uint32_t p, const char *qid, const char *iid, json_t **out)
{
    int rc = doc_load(s, p, SDB_DOC_QUEUE_ITEM, qid, iid, out);
    return rc == SDB_EINVAL ? SDB_ENOTFOUND : rc;
}

int sdb__item_update(sdb_store *s, uint32_t p, const char *qid, const char *iid,
                     const json_t *body, int64_t now, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    static const char *const ok[] = {"status", "completed_by", NULL};
    if (sdb__cj_only(body, ok, err, errlen)) return SDB_EINVAL;
    json_t *st = sdb__cj_get(body, "status"), *by = sdb__cj_get(body, "completed_by");
    if (st && (!json_is_string(st) || !status_ok(json_string_value(st)))) {
        sdb__cj_errf(err, errlen, "field \"status\": expected PENDING or COMPLETED");
        return SDB_EINVAL;
    }
    if (by && (!json_is_string(by) || json_string_length(by) > 200)) {
        sdb__cj_errf(err, errlen, "field \"completed_by\": expected a string of at most 200 bytes");
        return SDB_EINVAL;
    }
    pthread_mutex_lock(&queue_mu);
    json_t *it;
    int rc = sdb__item_get(s, p, qid, iid, &it);
    if (rc == SDB_OK) {
        char ts[40], og[256], g[256], *text = NULL;
        now_text(now, ts);
        const char *old = json_string_value(json_object_get(it, "status"));
        status_group(og, sizeof og, qid, old ? old : "PENDING");
        if (st) {
            int done = !strcmp(json_string_value(st), "COMPLETED");
            if (!old || strcmp(old, json_string_value(st))) {
                json_object_set_new(it, "completed_at", done ? json_string(ts) : json_null());
                if (!done) json_object_set_new(it, "completed_by", json_null());
            }
            json_object_set(it, "status", st);
        }
        if (by) json_object_set(it, "completed_by", by);
        json_object_set_new(it, "updated_at", json_string(ts));
        sdb_doc d[3];
        rc = item_docs(qid, it, g, sizeof g, d, &text);
        d[2] = (sdb_doc){SDB_DOC_QUEUE_STATUS, og, iid, NULL, 0, 1};
        /* Delete the old status entry first when it changes. */
        sdb_doc seq[3] = {d[2], d[0], d[1]};
        if (rc == SDB_OK) rc = sdb_doc_put_many(s, p, strcmp(og, g) ? seq : d, strcmp(og, g) ? 3 : 2);
        free(text);
    }
    pthread_mutex_unlock(&queue_mu);
    if (rc) {
        json_decref(it);
        return rc;
    }
    *out = it;
    return SDB_OK;
}

int sdb__item_delete(sdb_store *s, uint32_t p, const char *qid, const char *iid)
{
    pthread_mutex_lock(&queue_mu);
    json_t *it;
    int rc = sdb__item_get(s, p, qid, iid, &it);
    if (rc == SDB_OK) {
        char g[256];
        status_group(g, sizeof g, qid, json_string_value(json_object_get(it, "status")));
        sdb_doc d[2] = {{SDB_DOC_QUEUE_ITEM, qid, iid, NULL, 0, 1},
                        {SDB_DOC_QUEUE_STATUS, g, iid, NULL, 0, 1}};
        rc = sdb_doc_put_many(s, p, d, 2);
        json_decref(it);
    }
    pthread_mutex_unlock(&queue_mu);
    return rc;
}

int sdb__items_list(sdb_store *s, uint32_t p, const char *qid, const char *status,
                    uint64_t offset, uint64_t limit, json_t **out, uint64_t *total)
{
    *out = NULL;
    char g[256];
    int rc = queue_exists(s, p, qid);
    if (rc) return rc;
    page_ctx c = {json_array(), s, p, 0, qid, SDB_OK};
    if (!c.data) return SDB_ENOMEM;
    if (status) {
        status_group(g, sizeof g, qid, status);
        c.kind = SDB_DOC_QUEUE_ITEM;
        rc = sdb_doc_list(s, p, SDB_DOC_QUEUE_STATUS, g, NULL, offset, limit, page_add, &c, total);
    } else {
        rc = sdb_doc_list(s, p, SDB_DOC_QUEUE_ITEM, qid, NULL, offset, limit, page_add, &c, total);
    }
    if (rc == SDB_OK) rc = c.rc;
    if (rc) {
        json_decref(c.data);
        return rc;
    }
    *out = c.data;
    return SDB_OK;
}

int sdb__assignment(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int del,
                    int64_t now, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    json_t *user = json_object_get(body, "user_id");
    if (!is_id(user) || json_object_size(body) != 1) {
        sdb__cj_errf(err, errlen, "field \"user_id\": expected {\"user_id\": a string of 1 to "
                                  "100 bytes}");
        return SDB_EINVAL;
    }
    char ts[40];
    int rc = queue_exists(s, p, qid);
    if (rc) return rc;
    now_text(now, ts);
    json_t *a = json_pack("{s:O,s:s,s:s}", "user_id", user, "queue_id", qid, "created_at", ts);
    if (!a) return SDB_ENOMEM;
    if (del) {
        rc = sdb_doc_delete(s, p, SDB_DOC_ASSIGNMENT, qid, json_string_value(user));
        if (rc == SDB_ENOTFOUND) rc = SDB_OK; /* deleting twice is fine */
    } else {
        rc = doc_store(s, p, SDB_DOC_ASSIGNMENT, qid, json_string_value(user), a, SDB_DOC_UPSERT);
    }
    if (rc) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return SDB_OK;
}
