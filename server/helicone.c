/* Helicone's wire formats: POST /v1/request/{id}/score and the evals
 * routes (API.md "HTTP API (compatible)", docs/compat.md), reshaped to and
 * from scoredb's own.
 *
 * A Helicone score becomes a native score object handed to
 * sdb_batch_add_json, and the evals answers are native queries
 * (sdb_query_json), so an average is sum / count over every score, never
 * an average of hourly averages, and histogram bins are the caller's.
 * What this file adds: Helicone's filter tree for the columns scoredb has,
 * and its {"data", "error"} envelope.
 */
#include "compat.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MAX 512
#define MAX_STR 200u

/* ---------------------------------------------------------- Helicone */

int sdb__hc_scores_add(sdb_batch *b, const char *request_id, const json_t *props,
                       const char *body, size_t len, char *err, size_t errlen)
{
    size_t rl = strlen(request_id);
    if (rl < 1 || rl > MAX_STR) {
        sdb__cj_errf(err, errlen, "path \"requestId\": must be 1 to %u bytes", MAX_STR);
        return SDB_EINVAL;
    }
    json_t *o;
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    json_t *scores = json_object_get(o, "scores");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "scores")) {
            sdb__cj_errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            goto done;
        }
    }
    if (!json_is_object(scores)) {
        sdb__cj_errf(err, errlen, "field \"scores\": expected an object of name: number or boolean");
        rc = SDB_EINVAL;
        goto done;
    }
    json_object_foreach(scores, k, v)
    {
        if (!json_is_number(v) && !json_is_boolean(v)) {
            sdb__cj_errf(err, errlen, "field \"scores.%.200s\": expected a number or a boolean", k);
            rc = SDB_EINVAL;
            break;
        }
        /* One score per (request, name), as Helicone keeps them: sending
         * the same name again replaces the value. */
        char id[MAX_STR + 1];
        size_t kl = strlen(k);
        if (rl + kl + 4 <= MAX_STR) {
            snprintf(id, sizeof id, "hc:%s:%s", request_id, k);
        } else {
            uint64_t h1 = sdb_hash64(request_id, rl), h2 = sdb_hash64(k, kl);
            snprintf(id, sizeof id, "hc:%016llx%016llx", (unsigned long long)h1,
                     (unsigned long long)h2);
        }
        json_t *n = json_pack("{s:s,s:s,s:O,s:s}", "id", id, "name", k, "value", v, "trace_id",
                              request_id);
        if (n && json_object_size(props)) json_object_set(n, "properties", (json_t *)props);
        char msg[ERR_MAX] = "";
        rc = n ? sdb__cj_add_score(b, n, msg, sizeof msg) : SDB_ENOMEM;
        json_decref(n);
        if (rc == SDB_EINVAL) {
            const char *m = msg;
            const char *q = strncmp(m, "field \"", 7) ? NULL : strchr(m + 7, '"');
            if (q) m = q + 1; /* drop the native field name */
            if (*m == ':') m++;
            sdb__cj_errf(err, errlen, "field \"scores.%.200s\":%s", k, m);
        }
        if (rc) break;
    }
done:
    if (rc) sdb_batch_clear(b);
    json_decref(o);
    return rc;
}

int sdb__hc_eval_add(sdb_batch *b, const char *request_id, const json_t *props,
                     const char *body, size_t len, char *err, size_t errlen)
{
    json_t *o;
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    static const char *const ok[] = {"score", "name", NULL};
    json_t *score = json_object_get(o, "score"), *name = json_object_get(o, "name");
    char *text = NULL;
    if ((rc = sdb__cj_only(o, ok, err, errlen))) goto done;
    if (!json_is_number(score)) {
        sdb__cj_errf(err, errlen, "field \"score\": required, a number");
        rc = SDB_EINVAL;
        goto done;
    }
    if (!json_is_string(name) || json_string_length(name) < 1) {
        sdb__cj_errf(err, errlen, "field \"name\": required, a non-empty string");
        rc = SDB_EINVAL;
        goto done;
    }
    /* The same score as {"scores": {name: score}} on the request route. */
    json_t *w = json_pack("{s:{s:O}}", "scores", json_string_value(name), score);
    text = w ? json_dumps(w, JSON_COMPACT) : NULL;
    json_decref(w);
    rc = text ? sdb__hc_scores_add(b, request_id, props, text, strlen(text), err, errlen)
              : SDB_ENOMEM;
done:
    free(text);
    json_decref(o);
    return rc;
}

/* {"data": data, "error": null}, Helicone's result envelope. Takes data. */
static int hc_result(json_t *data, char **out)
{
    return sdb__cj_finish(data ? json_pack("{s:o,s:n}", "data", data, "error") : NULL, out);
}

int sdb__hc_names(sdb_store *s, uint32_t project, char **out_json)
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
        sdb__cj_errf(err, errlen, "field \"%s\": scoredb supports {\"equals\": string} here%s",
                     path, json_object_get(ops, "not-equals")
                               ? " (\"not-equals\" has no native form: docs/compat.md)"
                               : "");
        return NULL;
    }
    return e;
}

static int hc_filter(const json_t *f, json_t *where, const char *path, bool *none, char *err,
                     size_t errlen);

/* The one column a where object filters ("properties.KEY" for a
 * property) and its any-of list, or NULL when it filters none or several. */
static json_t *sole(json_t *w, char *col, size_t n)
{
    if (json_object_size(w) != 1) return NULL;
    const char *k = json_object_iter_key(json_object_iter(w));
    json_t *v = json_object_get(w, k);
    if (strcmp(k, "properties")) {
        snprintf(col, n, "%s", k);
        return v;
    }
    if (json_object_size(v) != 1) return NULL;
    const char *pk = json_object_iter_key(json_object_iter(v));
    snprintf(col, n, "properties.%s", pk);
    return json_object_get(v, pk);
}

/* An "or" branch. The native where is a conjunction of any-of lists, so
 * an "or" of two filters on one column is that column's any-of list, and
 * an "or" with "all" is "all"; an "or" across columns has no native form
 * and is refused (docs/compat.md, departures), never approximated. */
static int hc_or(const json_t *f, json_t *where, const char *path, bool *none, char *err,
                 size_t errlen)
{
    json_t *w[2] = {json_object(), json_object()};
    bool nn[2] = {false, false};
    char sub[256], col[2][300];
    int rc = SDB_OK;
    for (int i = 0; i < 2 && rc == SDB_OK; i++) {
        snprintf(sub, sizeof sub, "%.200s.%s", path, i ? "right" : "left");
        rc = hc_filter(json_object_get(f, i ? "right" : "left"), w[i], sub, &nn[i], err, errlen);
    }
    json_t *a = rc ? NULL : sole(w[0], col[0], sizeof col[0]);
    json_t *b = rc ? NULL : sole(w[1], col[1], sizeof col[1]);
    if (rc) {
        /* the branch's own message */
    } else if (nn[0] && nn[1]) {
        *none = true;
    } else if (!json_object_size(w[0]) || !json_object_size(w[1])) {
        /* "all" on one side: no filter */
    } else if (a && b && !strcmp(col[0], col[1])) {
        const char *pk = strncmp(col[0], "properties.", 11) ? NULL : col[0] + 11;
        json_t *into = pk ? json_object_get(where, "properties") : where;
        const char *key = pk ? pk : col[0];
        if (pk && !into) json_object_set_new(where, "properties", into = json_object());
        if (json_object_get(into, key)) {
            sdb__cj_errf(err, errlen, "field \"%s\": an \"or\" on %s combined with another "
                         "filter on %s is not supported (docs/compat.md)", path, col[0], col[0]);
            rc = SDB_EINVAL;
        } else {
            json_t *u = json_array();
            size_t i;
            json_t *x;
            if (!nn[0]) json_array_foreach(a, i, x) json_array_append(u, x);
            if (!nn[1]) json_array_foreach(b, i, x) json_array_append(u, x);
            json_object_set_new(into, key, u);
        }
    } else {
        sdb__cj_errf(err, errlen, "field \"%s.operator\": \"or\" is supported between filters "
                     "on one column (or with \"all\"); scoredb has no native form for an "
                     "\"or\" across columns (docs/compat.md)", path);
        rc = SDB_EINVAL;
    }
    json_decref(w[0]);
    json_decref(w[1]);
    return rc;
}

/* Helicone's filter tree (EvalFilterNode) into a native where object:
 * "all", {}, AND branches, and leaves on model, user_id, prompt_version and
 * properties with "equals". */
static int hc_filter(const json_t *f, json_t *where, const char *path, bool *none, char *err,
                     size_t errlen)
{
    if (json_is_string(f) && !strcmp(json_string_value(f), "all")) return SDB_OK;
    if (!json_is_object(f)) {
        sdb__cj_errf(err, errlen, "field \"%s\": expected \"all\", a leaf or a branch", path);
        return SDB_EINVAL;
    }
    if (json_object_size(f) == 0) return SDB_OK;
    json_t *op = json_object_get(f, "operator");
    char sub[256];
    if (op) {
        if (json_is_string(op) && !strcmp(json_string_value(op), "or"))
            return hc_or(f, where, path, none, err, errlen);
        if (!json_is_string(op) || strcmp(json_string_value(op), "and")) {
            sdb__cj_errf(err, errlen, "field \"%s.operator\": expected \"and\" or \"or\"", path);
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
            sdb__cj_errf(err, errlen, "field \"%s.%.100s\": scoredb filters request_response_rmt "
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
                sdb__cj_errf(err, errlen, "field \"%s\": not a column scoredb filters on (model, "
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
    int rc = sdb__cj_load(body, len, "body", &o, err, errlen);
    if (rc) return rc;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "filter") && strcmp(k, "timeFilter") && strcmp(k, "offset") &&
            strcmp(k, "limit") && strcmp(k, "timeZoneDifference") &&
            (!dist || (strcmp(k, "bins") && strcmp(k, "min") && strcmp(k, "max")))) {
            sdb__cj_errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
            goto done;
        }
    }
    json_t *tf = json_object_get(o, "timeFilter"), *f = json_object_get(o, "filter");
    json_t *start = json_object_get(tf, "start"), *end = json_object_get(tf, "end");
    int64_t t0, t1;
    if (!json_is_object(tf)) {
        sdb__cj_errf(err, errlen, "field \"timeFilter\": required, {\"start\", \"end\"}");
        rc = SDB_EINVAL;
        goto done;
    }
    if (!json_is_string(start) ||
        sdb_time_parse(json_string_value(start), json_string_length(start), &t0) ||
        !json_is_string(end) ||
        sdb_time_parse(json_string_value(end), json_string_length(end), &t1)) {
        sdb__cj_errf(err, errlen, "field \"timeFilter.%s\": expected an ISO 8601 time",
                  !json_is_string(start) ||
                          sdb_time_parse(json_string_value(start), json_string_length(start), &t0)
                      ? "start"
                      : "end");
        rc = SDB_EINVAL;
        goto done;
    }
    if (t1 <= t0) {
        sdb__cj_errf(err, errlen, "field \"timeFilter.end\": must be after start");
        rc = SDB_EINVAL;
        goto done;
    }
    if (!f) {
        sdb__cj_errf(err, errlen, "field \"filter\": required (\"all\" for none)");
        rc = SDB_EINVAL;
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        json_t *x = json_object_get(o, i ? "limit" : "offset");
        if (!x) continue;
        double d = json_number_value(x);
        if (!json_is_number(x) || d < 0 || d != floor(d) || (i && d < 1)) {
            sdb__cj_errf(err, errlen, "field \"%s\": expected a whole number%s", i ? "limit" : "offset",
                      i ? " of at least 1" : "");
            rc = SDB_EINVAL;
            goto done;
        }
        *(i ? &p->limit : &p->offset) = (uint64_t)d;
    }
    json_t *tz = json_object_get(o, "timeZoneDifference");
    if (tz && !json_is_number(tz)) {
        sdb__cj_errf(err, errlen, "field \"timeZoneDifference\": expected a number");
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
        json_t *bins = json_object_get(o, "bins"), *lo = sdb__cj_get(o, "min"), *hi = sdb__cj_get(o, "max");
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

/* An evals answer: one entry per group (a new ref), NULL when the group
 * has nothing to show (categorical: no average; no histogram). */
static json_t *eval_entry(const json_t *g)
{
    json_t *avg = json_object_get(g, "avg");
    if (!avg) return NULL;
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
    return json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:o,s:o}", "name",
                     json_object_get(json_object_get(g, "key"), "name"), "averageScore", avg,
                     "minScore", json_object_get(g, "min"), "maxScore", json_object_get(g, "max"),
                     "count", json_object_get(g, "count"), "overTime", over, "averageOverTime",
                     avg_over);
}

static json_t *dist_entry(const json_t *g)
{
    json_t *h = json_object_get(g, "histogram");
    if (!h) return NULL;
    json_t *edges = json_object_get(h, "edges"), *counts = json_object_get(h, "counts");
    json_t *dist = json_array(), *c;
    size_t j;
    json_array_foreach(counts, j, c)
    {
        json_array_append_new(dist, json_pack("{s:O?,s:O?,s:O?}", "lower",
                                              json_array_get(edges, j), "upper",
                                              json_array_get(edges, j + 1), "value", c));
    }
    return json_pack("{s:O?,s:o}", "name", json_object_get(json_object_get(g, "key"), "name"),
                     "distribution", dist);
}

/* Parse, run, and page the groups (offset, limit) through entry(). */
static int hc_answer(sdb_store *s, uint32_t project, const char *body, size_t len, bool dist,
                     json_t *(*entry)(const json_t *g), char **out_json, char *err,
                     size_t errlen)
{
    *out_json = NULL;
    hc_params p;
    json_t *groups = NULL, *data = NULL;
    int rc = hc_parse(body, len, dist, &p, err, errlen);
    if (rc == SDB_OK) rc = hc_run(s, project, &p, &groups, err, errlen);
    if (rc == SDB_OK && !(data = json_array())) rc = SDB_ENOMEM;
    size_t i, seen = 0;
    json_t *g;
    json_array_foreach(rc ? NULL : groups, i, g)
    {
        if (json_array_size(data) >= p.limit) break;
        json_t *e = entry(g);
        if (!e) continue;
        if (seen++ < p.offset) {
            json_decref(e);
            continue;
        }
        if (json_array_append_new(data, e)) rc = SDB_ENOMEM;
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

int sdb__hc_evals(sdb_store *s, uint32_t project, const char *body, size_t len, char **out_json,
                  char *err, size_t errlen)
{
    return hc_answer(s, project, body, len, false, eval_entry, out_json, err, errlen);
}

int sdb__hc_distributions(sdb_store *s, uint32_t project, const char *body, size_t len,
                          char **out_json, char *err, size_t errlen)
{
    return hc_answer(s, project, body, len, true, dist_entry, out_json, err, errlen);
}
