/* Traces and observations as score context (DESIGN.md "Traces as score
 * context"; docs/compat.md "Traces").
 *
 * A score inherits what its trace knows (name, user, session, tags,
 * environment, release, version, metadata) and what its observation knows
 * (model, prompt name and version), whichever arrives first. The record of
 * each trace and observation is an engine document (SDB_DOC_TRACE,
 * SDB_DOC_OBSERVATION), and SDB_DOC_TRACE_SCORE indexes the ids of each
 * trace's scores. Inheritance happens at write time, never at query time:
 *   - a score that arrives after its trace gets the trace's attributes
 *     filled in before it is validated (sdb__tctx_apply);
 *   - a trace or observation that arrives (or changes) after its scores is
 *     applied to them by re-sending each one, with its own id, through the
 *     ordinary ingest path, which replaces the old row everywhere
 *     (sdb__tctx_finish). Analytics thus read plain score dimensions and
 *     the query pipeline needs no join.
 * The attributes become native dimensions: trace_name, user_id,
 * session_id, tags, environment, model, prompt_version; release, version,
 * prompt_name and the trace's scalar metadata become properties
 * ("release", "version", "prompt_name", "metadata.KEY"). Inputs, outputs,
 * costs and usage are not kept: they are not analytics.
 *
 * A request's context (sdb__tctx) gathers the records it touches and
 * writes them in one transaction before the scores commit, and the index
 * entries of its new scores after (sdb__tctx_index): a generated id is
 * final only once committed. A crash between the two leaves those scores
 * out of the index, so a later change of their trace misses them.
 * Callers serialise whole requests (compat.c's trace lock), so that a score
 * and its trace sent at once by two clients cannot miss each other.
 * Re-applying is bounded: at most SDB__TRACE_REAPPLY scores per request.
 */
#include "compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marks a record not yet in the store (removed before it is written). */
#define NEW_MARK "\x01new"

/* Whether merging changed r (compared with its copy `before`, which this
 * takes): only a new or changed record is written and re-applied, so an
 * SDK that repeats trace-create costs no re-sending. */
static int changed(json_t *before, const json_t *r)
{
    int c = !before || !json_equal(before, r) || json_object_get(r, NEW_MARK);
    json_decref(before);
    return c;
}

struct sdb__tctx {
    sdb_store *s;
    uint32_t project;
    json_t *traces;  /* trace id → record (merged) */
    json_t *obs;     /* trace id "\n" observation id → record */
    json_t *touched; /* trace id → true: records changed by this request */
    json_t *index;   /* [[trace id, score id], ...] new index entries */
    json_t *fresh;   /* score id → true: scores of this request */
    json_t *obs_new; /* observation keys to write: new or changed */
};

int sdb__tctx_new(sdb_store *s, uint32_t project, sdb__tctx **out)
{
    sdb__tctx *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return SDB_ENOMEM;
    c->s = s;
    c->project = project;
    c->traces = json_object();
    c->obs = json_object();
    c->touched = json_object();
    c->index = json_array();
    c->fresh = json_object();
    c->obs_new = json_object();
    if (!c->traces || !c->obs || !c->touched || !c->index || !c->fresh || !c->obs_new) {
        sdb__tctx_free(c);
        return SDB_ENOMEM;
    }
    *out = c;
    return SDB_OK;
}

void sdb__tctx_free(sdb__tctx *c)
{
    if (!c) return;
    json_decref(c->traces);
    json_decref(c->obs);
    json_decref(c->touched);
    json_decref(c->index);
    json_decref(c->fresh);
    json_decref(c->obs_new);
    free(c);
}

/* The record under key in cache (loading it as document kind/group/id
 * when absent): borrowed; NULL when the store has none and !create. */
static json_t *record(sdb__tctx *c, json_t *cache, const char *key, int kind, const char *group,
                      const char *id, int create)
{
    json_t *r = json_object_get(cache, key);
    if (r) return json_is_object(r) ? r : NULL;
    char *text = NULL;
    if (sdb_doc_get(c->s, c->project, kind, group, id, &text) == SDB_OK) {
        r = json_loads(text, 0, NULL);
        free(text);
    }
    if (!json_is_object(r)) {
        json_decref(r);
        r = create ? json_object() : json_null();
        if (create) json_object_set_new(r, NEW_MARK, json_true());
    }
    json_object_set_new(cache, key, r);
    return json_is_object(r) ? r : NULL;
}

static int id_ok(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= 200 &&
           !memchr(json_string_value(v), 0, json_string_length(v)) &&
           !strchr(json_string_value(v), '\n');
}

/* Copy the fields of `from` named in keys into `to` (null deletes). */
static void merge(json_t *to, const json_t *from, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(from, *keys);
        if (!v) continue;
        if (json_is_null(v)) json_object_del(to, *keys);
        else json_object_set(to, *keys, v);
    }
}

static int str_or_null(const json_t *o, const char *const *keys, char *err, size_t errlen)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) > 4096 ||
             memchr(json_string_value(v), 0, json_string_length(v)))) {
            sdb__cj_errf(err, errlen, "field \"%s\": expected a string of at most 4096 bytes",
                         *keys);
            return SDB_EINVAL;
        }
    }
    return SDB_OK;
}

static const char *const trace_strs[] = {"name", "user_id", "session_id", "environment",
                                         "release", "version", NULL};
static const char *const obs_strs[] = {"model", "prompt_name", "prompt_version", NULL};

int sdb__tctx_trace(sdb__tctx *c, const json_t *t, char *err, size_t errlen)
{
    json_t *id = json_object_get(t, "id"), *tags = json_object_get(t, "tags");
    json_t *meta = json_object_get(t, "metadata");
    if (!id_ok(id)) {
        sdb__cj_errf(err, errlen, "field \"id\": a trace needs an id of 1 to 200 bytes");
        return SDB_EINVAL;
    }
    if (str_or_null(t, trace_strs, err, errlen)) return SDB_EINVAL;
    size_t i;
    json_t *x;
    if (tags && !json_is_null(tags)) {
        int ok = json_is_array(tags) && json_array_size(tags) <= 100;
        json_array_foreach(tags, i, x) ok = ok && json_is_string(x) && json_string_length(x) <= 4096;
        if (!ok) {
            sdb__cj_errf(err, errlen, "field \"tags\": expected at most 100 strings");
            return SDB_EINVAL;
        }
    }
    const char *tid = json_string_value(id);
    json_t *r = record(c, c->traces, tid, SDB_DOC_TRACE, "", tid, 1);
    if (!r) return SDB_ENOMEM;
    json_t *before = json_deep_copy(r);
    merge(r, t, trace_strs);
    if (json_is_array(tags)) {
        /* Tags of a trace accumulate across its events, sorted, unique. */
        json_t *have = json_object_get(r, "tags"), *set = json_object();
        json_array_foreach(have, i, x) json_object_set(set, json_string_value(x), json_true());
        json_array_foreach(tags, i, x) json_object_set(set, json_string_value(x), json_true());
        json_t *out = json_array();
        const char *k;
        json_object_foreach(set, k, x) json_array_append_new(out, json_string(k));
        json_decref(set);
        /* json objects keep insertion order: sort for a stable record. */
        size_t n = json_array_size(out);
        for (size_t a = 1; a < n; a++)
            for (size_t b2 = a; b2 > 0 && strcmp(json_string_value(json_array_get(out, b2 - 1)),
                                                 json_string_value(json_array_get(out, b2))) > 0;
                 b2--) {
                json_t *p = json_incref(json_array_get(out, b2 - 1));
                json_array_set(out, b2 - 1, json_array_get(out, b2));
                json_array_set_new(out, b2, p);
            }
        json_object_set_new(r, "tags", out);
    }
    if (json_is_object(meta)) {
        json_t *m = json_object_get(r, "metadata");
        if (!json_is_object(m)) json_object_set_new(r, "metadata", m = json_object());
        const char *k;
        json_object_foreach(meta, k, x)
        {
            /* Scalar metadata only: it becomes a property (a dimension). */
            if ((json_is_string(x) && json_string_length(x) <= 4096) || json_is_number(x) ||
                json_is_boolean(x))
                if (strlen(k) <= 180) json_object_set(m, k, x);
        }
    }
    if (changed(before, r)) json_object_set(c->touched, tid, json_true());
    return SDB_OK;
}

int sdb__tctx_observation(sdb__tctx *c, const json_t *o, char *err, size_t errlen)
{
    json_t *id = json_object_get(o, "id"), *tid = json_object_get(o, "trace_id");
    if (!id_ok(id) || !id_ok(tid)) {
        sdb__cj_errf(err, errlen, "field \"%s\": an observation needs an id and a traceId of 1 "
                                  "to 200 bytes", id_ok(id) ? "traceId" : "id");
        return SDB_EINVAL;
    }
    if (str_or_null(o, obs_strs, err, errlen)) return SDB_EINVAL;
    char key[420];
    snprintf(key, sizeof key, "%s\n%s", json_string_value(tid), json_string_value(id));
    json_t *r = record(c, c->obs, key, SDB_DOC_OBSERVATION, json_string_value(tid),
                       json_string_value(id), 1);
    if (!r) return SDB_ENOMEM;
    json_t *before = json_deep_copy(r);
    merge(r, o, obs_strs);
    int obs_changed = changed(before, r);
    /* A trace-level score takes the model and prompt of the trace's first
     * observation that names one. */
    if (json_object_get(o, "model") || json_object_get(o, "prompt_version")) {
        const char *t = json_string_value(tid);
        json_t *tr = record(c, c->traces, t, SDB_DOC_TRACE, "", t, 1);
        if (!tr) return SDB_ENOMEM;
        json_t *tb = json_deep_copy(tr);
        for (const char *const *k = obs_strs; *k; k++)
            if (!json_object_get(tr, *k) && json_is_string(json_object_get(r, *k)))
                json_object_set(tr, *k, json_object_get(r, *k));
        if (changed(tb, tr)) json_object_set(c->touched, t, json_true());
    }
    if (obs_changed) {
        /* The observation's scores live under its trace's index. */
        json_object_set(c->touched, json_string_value(tid), json_true());
        json_object_set(c->obs_new, key, json_true());
    }
    return SDB_OK;
}

/* Set score[k] from rec[rk] when the record has it; `fill` only when the
 * score has none (its own value wins). */
static void take(json_t *score, const char *k, const json_t *rec, const char *rk, int fill)
{
    json_t *v = json_object_get(rec, rk);
    if (!json_is_string(v)) return;
    json_t *have = json_object_get(score, k);
    if (fill && have && !json_is_null(have) &&
        !(json_is_string(have) && !strcmp(k, "environment") &&
          !strcmp(json_string_value(have), "default")))
        return;
    json_object_set(score, k, v);
}

static void take_prop(json_t *score, const char *k, json_t *v)
{
    char buf[40];
    json_t *props = json_object_get(score, "properties");
    if (!json_is_object(props)) json_object_set_new(score, "properties", props = json_object());
    if (json_is_string(v)) {
        json_object_set(props, k, v);
    } else if (json_is_number(v)) {
        sdb_json_number(json_number_value(v), buf);
        json_object_set_new(props, k, json_string(buf));
    } else if (json_is_boolean(v)) {
        json_object_set_new(props, k, json_string(json_is_true(v) ? "true" : "false"));
    }
}

int sdb__tctx_apply(sdb__tctx *c, json_t *score)
{
    json_t *tid = json_object_get(score, "trace_id");
    if (!id_ok(tid)) return SDB_OK;
    const char *t = json_string_value(tid);
    json_t *tr = record(c, c->traces, t, SDB_DOC_TRACE, "", t, 0);
    json_t *ob = NULL, *oid = json_object_get(score, "observation_id");
    if (id_ok(oid)) {
        char key[420];
        snprintf(key, sizeof key, "%s\n%s", t, json_string_value(oid));
        ob = record(c, c->obs, key, SDB_DOC_OBSERVATION, t, json_string_value(oid), 0);
    }
    if (tr) {
        /* What only a trace says (Langfuse scores carry no name, user or
         * tags of their own) follows the trace; the rest fills gaps. */
        take(score, "trace_name", tr, "name", 0);
        take(score, "user_id", tr, "user_id", 0);
        take(score, "session_id", tr, "session_id", 1);
        take(score, "environment", tr, "environment", 1);
        json_t *tags = json_object_get(tr, "tags");
        if (json_array_size(tags)) json_object_set(score, "tags", tags);
        if (json_is_string(json_object_get(tr, "release")))
            take_prop(score, "release", json_object_get(tr, "release"));
        if (json_is_string(json_object_get(tr, "version")))
            take_prop(score, "version", json_object_get(tr, "version"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(tr, "metadata"), k, v)
        {
            char pk[200];
            snprintf(pk, sizeof pk, "metadata.%s", k);
            take_prop(score, pk, v);
        }
    }
    const json_t *src = ob && (json_object_get(ob, "model") || json_object_get(ob, "prompt_version"))
                            ? ob
                            : tr;
    if (src) {
        take(score, "model", src, "model", 0);
        take(score, "prompt_version", src, "prompt_version", 0);
        if (json_is_string(json_object_get(src, "prompt_name")))
            take_prop(score, "prompt_name", json_object_get(src, "prompt_name"));
    }
    return SDB_OK;
}

int sdb__tctx_note(sdb__tctx *c, const char *trace_id, const char *score_id, size_t row)
{
    json_object_set(c->fresh, score_id, json_true());
    if (!trace_id) return SDB_OK;
    return json_array_append_new(c->index, json_pack("[s,I]", trace_id, (json_int_t)row))
               ? SDB_ENOMEM
               : SDB_OK;
}

int sdb__tctx_index(sdb__tctx *c, const sdb_batch *b)
{
    size_t n = json_array_size(c->index), i;
    if (n == 0) return SDB_OK;
    sdb_doc *d = calloc(n, sizeof *d);
    if (!d) return SDB_ENOMEM;
    json_t *v;
    size_t m = 0;
    json_array_foreach(c->index, i, v)
    {
        size_t row = (size_t)json_integer_value(json_array_get(v, 1));
        if (row >= sdb_batch_rows(b)) continue;
        /* After the commit: a generated id is final only then. */
        d[m++] = (sdb_doc){SDB_DOC_TRACE_SCORE, json_string_value(json_array_get(v, 0)),
                           sdb_batch_id(b, row), "", 0, 0};
    }
    int rc = sdb_doc_put_many(c->s, c->project, d, m);
    free(d);
    return rc;
}

typedef struct ids_ctx {
    json_t *ids;
} ids_ctx;

static int collect_id(void *ctx, const char *id, const char *json, size_t len)
{
    (void)json;
    (void)len;
    return json_array_append_new(((ids_ctx *)ctx)->ids, json_string(id)) ? 1 : 0;
}

int sdb__tctx_finish(sdb__tctx *c, sdb_batch *b, size_t *out_reapplied)
{
    *out_reapplied = 0;
    size_t n = json_object_size(c->touched) + json_object_size(c->obs_new);
    sdb_doc *docs = calloc(n ? n : 1, sizeof *docs);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    int rc = docs && texts ? SDB_OK : SDB_ENOMEM;
    size_t m = 0;
    const char *k;
    json_t *v;
    json_object_foreach(rc ? NULL : c->touched, k, v)
    {
        json_t *r = json_object_get(c->traces, k);
        if (!json_is_object(r)) continue;
        json_object_del(r, NEW_MARK);
        if (!(texts[m] = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS))) rc = SDB_ENOMEM;
        docs[m] = (sdb_doc){SDB_DOC_TRACE, "", k, texts[m], texts[m] ? strlen(texts[m]) : 0, 0};
        m++;
    }
    json_object_foreach(rc ? NULL : c->obs, k, v)
    {
        if (!json_is_object(v) || !json_object_get(c->obs_new, k)) continue;
        json_object_del(v, NEW_MARK);
        const char *nl = strchr(k, '\n');
        char *g = texts[m] = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (!g || !nl) {
            rc = g ? SDB_ECORRUPT : SDB_ENOMEM;
            break;
        }
        /* The group is the key's trace part: copy it after the text. */
        size_t tl = (size_t)(nl - k), gl = strlen(g);
        char *p = realloc(g, gl + tl + 2);
        if (!p) {
            rc = SDB_ENOMEM;
            break;
        }
        texts[m] = p;
        memcpy(p + gl + 1, k, tl);
        p[gl + 1 + tl] = 0;
        docs[m] = (sdb_doc){SDB_DOC_OBSERVATION, p + gl + 1, nl + 1, p, gl, 0};
        m++;
    }
    size_t i;
    if (rc == SDB_OK) rc = sdb_doc_put_many(c->s, c->project, docs, m);
    for (size_t j = 0; j < m; j++) free(texts[j]);
    free(texts);
    free(docs);
    /* Traces and observations that changed go to their stored scores. */
    json_object_foreach(rc ? NULL : c->touched, k, v)
    {
        ids_ctx ic = {json_array()};
        if (!ic.ids) return SDB_ENOMEM;
        rc = sdb_doc_list(c->s, c->project, SDB_DOC_TRACE_SCORE, k, NULL, 0,
                          SDB__TRACE_REAPPLY - *out_reapplied, collect_id, &ic, NULL);
        json_t *sid;
        json_array_foreach(rc ? NULL : ic.ids, i, sid)
        {
            const char *id = json_string_value(sid);
            char *text = NULL;
            if (json_object_get(c->fresh, id)) continue;
            if (sdb_score_get_json(c->s, c->project, id, &text)) continue; /* deleted */
            json_t *sc = json_loads(text, 0, NULL);
            free(text);
            if (!sc) continue;
            json_object_del(sc, "created_at");
            char msg[256];
            sdb__tctx_apply(c, sc);
            if (sdb__cj_add_score(b, sc, msg, sizeof msg) == SDB_OK) (*out_reapplied)++;
            json_decref(sc);
        }
        json_decref(ic.ids);
        if (rc || *out_reapplied >= SDB__TRACE_REAPPLY) break;
    }
    return rc;
}

typedef struct obs_ctx {
    json_t *arr;
} obs_ctx;

static int collect_obs(void *ctx, const char *id, const char *json, size_t len)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return 0;
    }
    json_object_set_new(o, "id", json_string(id));
    return json_array_append_new(((obs_ctx *)ctx)->arr, o) ? 1 : 0;
}

int sdb__trace_get(sdb_store *s, uint32_t project, const char *id, int langfuse, char **out_json)
{
    *out_json = NULL;
    char *text;
    int rc = sdb_doc_get(s, project, SDB_DOC_TRACE, "", id, &text);
    if (rc == SDB_EINVAL) rc = SDB_ENOTFOUND;
    if (rc) return rc;
    json_t *t = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(t)) {
        json_decref(t);
        return SDB_ECORRUPT;
    }
    json_object_set_new(t, "id", json_string(id));
    obs_ctx oc = {json_array()};
    ids_ctx ic = {json_array()};
    uint64_t n_scores = 0;
    rc = oc.arr && ic.ids ? SDB_OK : SDB_ENOMEM;
    if (rc == SDB_OK)
        rc = sdb_doc_list(s, project, SDB_DOC_OBSERVATION, id, NULL, 0, 1000, collect_obs, &oc,
                          NULL);
    size_t i;
    json_t *x;
    if (rc == SDB_OK) {
        /* Its scores, however they were written, through the engine's
         * trace index (the trace-score documents know only the
         * Langfuse-routed ones): newest first, up to 1000, and the count. */
        sdb_param p[3] = {{"trace_id", id}, {"limit", "1000"}, {"total", "true"}};
        char *text = NULL, err[256];
        rc = sdb_scores_list_json(s, project, p, 3, &text, err, sizeof err);
        json_t *page = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        if (rc == SDB_OK && !page) rc = SDB_ENOMEM;
        json_array_foreach(json_object_get(page, "data"), i, x)
        {
            if (json_array_append(ic.ids, json_object_get(x, "id"))) rc = SDB_ENOMEM;
        }
        n_scores = (uint64_t)json_integer_value(json_object_get(page, "total"));
        json_decref(page);
    }
    json_array_foreach(oc.arr, i, x) json_object_set(x, "trace_id", json_object_get(t, "id"));
    json_object_set_new(t, "observations", oc.arr);
    json_object_set_new(t, "score_ids", ic.ids);
    json_object_set_new(t, "scores_total", json_integer((json_int_t)n_scores));
    if (rc) {
        json_decref(t);
        return rc;
    }
    if (langfuse) return sdb__lf_trace(s, project, t, out_json);
    return sdb__cj_finish(t, out_json);
}
