/* Small documents beside the scores: score configs, annotation queues,
 * their items and assignments, trace records and the trace → score index
 * (DESIGN.md "Traces as score context"; API.md "annotation queues").
 *
 * The engine keeps these as opaque JSON text under a key (kind, project,
 * group, id) in the `meta` database, and a counter per (kind, project,
 * group), so that a list page says its total without walking every entry:
 * totals cost one read whatever the size. The client layers above
 * (server/langfuse.c, server/helicone.c, the native routes) own the shapes;
 * this file owns the keys, the counters and paging. Keys:
 *
 *     "doc" | kind (1 byte) | project (be32) | group | 0x00 | id
 *     "dcn" | kind (1 byte) | project (be32) | group          → u64 count
 *
 * A group may not contain a NUL byte (every id and group is checked), so a
 * group's entries are one contiguous key range that a cursor pages through
 * in id order. The workload is an API surface (one document per request),
 * not bulk data; a trace record is a few hundred bytes.
 */
#include "internal.h"

#define DOC_KEY_MAX (4 + 4 + 2 * SDB_MAX_STR + 2)

static int doc_name_ok(const char *s, size_t len, size_t max)
{
    return len <= max && memchr(s, 0, len) == NULL;
}

/* The key of (kind, project, group, id); id NULL: the group's prefix. */
static size_t doc_key(uint8_t *k, const char *tag, int kind, uint32_t project,
                      const char *group, const char *id)
{
    size_t gl = strlen(group), n = 0;
    memcpy(k, tag, 3);
    k[3] = (uint8_t)kind;
    sdb__be32(k + 4, project);
    n = 8;
    memcpy(k + n, group, gl);
    n += gl;
    if (id) {
        k[n++] = 0;
        size_t il = strlen(id);
        memcpy(k + n, id, il);
        n += il;
    }
    return n;
}

static int check_names(const char *group, const char *id)
{
    if (!group || !doc_name_ok(group, strlen(group), SDB_MAX_STR)) return SDB_EINVAL;
    if (id && (!id[0] || !doc_name_ok(id, strlen(id), SDB_MAX_STR))) return SDB_EINVAL;
    return SDB_OK;
}

/* The count of (kind, project, group) in txn t: absent reads as 0. */
static int count_get(sdb__txn *t, int kind, uint32_t project, const char *group, uint64_t *out)
{
    uint8_t k[DOC_KEY_MAX];
    size_t kl = doc_key(k, "dcn", kind, project, group, NULL);
    sdb__val v;
    *out = 0;
    int rc = sdb__get(t, SDB__DB_META, k, kl, &v);
    if (rc == SDB_ENOTFOUND) return SDB_OK;
    if (rc) return rc;
    if (v.len != 8) return SDB_ECORRUPT;
    *out = sdb__rd64(v.p);
    return SDB_OK;
}

static int count_add(sdb__txn *t, int kind, uint32_t project, const char *group, int64_t d)
{
    uint8_t k[DOC_KEY_MAX];
    size_t kl = doc_key(k, "dcn", kind, project, group, NULL);
    uint64_t n;
    int rc = count_get(t, kind, project, group, &n);
    if (rc) return rc;
    n = (int64_t)n + d < 0 ? 0 : (uint64_t)((int64_t)n + d);
    uint8_t b[8];
    sdb__be64(b, n);
    return sdb__put(t, SDB__DB_META, k, kl, b, 8, 0);
}

typedef struct doc_op {
    int kind;
    uint32_t project;
    const char *group, *id;
    const char *json;
    size_t len;
    int mode;     /* SDB_DOC_UPSERT, SDB_DOC_CREATE, SDB_DOC_REPLACE; -1: delete */
    int created;  /* out */
} doc_op;

static int doc_write_fn(sdb__txn *t, void *ctx)
{
    doc_op *o = ctx;
    uint8_t k[DOC_KEY_MAX];
    size_t kl = doc_key(k, "doc", o->kind, o->project, o->group, o->id);
    sdb__val v;
    int rc = sdb__get(t, SDB__DB_META, k, kl, &v);
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) return rc;
    int exists = rc == SDB_OK;
    o->created = 0;
    if (o->mode < 0) {
        if (!exists) return SDB_ENOTFOUND;
        if ((rc = sdb__del(t, SDB__DB_META, k, kl))) return rc;
        return count_add(t, o->kind, o->project, o->group, -1);
    }
    if (exists && o->mode == SDB_DOC_CREATE) return SDB_ELIMIT;
    if (!exists && o->mode == SDB_DOC_REPLACE) return SDB_ENOTFOUND;
    if ((rc = sdb__put(t, SDB__DB_META, k, kl, o->json, o->len, 0))) return rc;
    if (exists) return SDB_OK;
    o->created = 1;
    return count_add(t, o->kind, o->project, o->group, 1);
}

int sdb_doc_put(sdb_store *s, uint32_t project, int kind, const char *group, const char *id,
                const char *json, size_t len, int mode, int *out_created)
{
    if (out_created) *out_created = 0;
    if (check_names(group, id) || !id || !json) return SDB_EINVAL;
    doc_op o = {kind, project, group, id, json, len, mode, 0};
    int rc = sdb__write(s, doc_write_fn, &o);
    if (rc == SDB_OK && out_created) *out_created = o.created;
    return rc;
}

typedef struct many_op {
    uint32_t project;
    const sdb_doc *d;
    size_t n;
} many_op;

static int doc_many_fn(sdb__txn *t, void *ctx)
{
    many_op *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        const sdb_doc *d = &m->d[i];
        doc_op o = {d->kind, m->project, d->group, d->id, d->json ? d->json : "", d->len,
                    d->del ? -1 : SDB_DOC_UPSERT, 0};
        int rc = doc_write_fn(t, &o);
        if (rc == SDB_ENOTFOUND && d->del) rc = SDB_OK; /* already gone */
        if (rc) return rc;
    }
    return SDB_OK;
}

int sdb_doc_put_many(sdb_store *s, uint32_t project, const sdb_doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (check_names(docs[i].group, docs[i].id) || !docs[i].id) return SDB_EINVAL;
    if (n == 0) return SDB_OK;
    many_op m = {project, docs, n};
    return sdb__write(s, doc_many_fn, &m);
}

int sdb_doc_delete(sdb_store *s, uint32_t project, int kind, const char *group, const char *id)
{
    if (check_names(group, id) || !id) return SDB_EINVAL;
    doc_op o = {kind, project, group, id, NULL, 0, -1, 0};
    return sdb__write(s, doc_write_fn, &o);
}

int sdb_doc_get(sdb_store *s, uint32_t project, int kind, const char *group, const char *id,
                char **out_json)
{
    *out_json = NULL;
    if (check_names(group, id) || !id) return SDB_ENOTFOUND;
    uint8_t k[DOC_KEY_MAX];
    size_t kl = doc_key(k, "doc", kind, project, group, id);
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    sdb__val v;
    rc = sdb__get(t, SDB__DB_META, k, kl, &v);
    if (rc == SDB_OK) {
        char *p = malloc(v.len + 1);
        if (!p) {
            rc = SDB_ENOMEM;
        } else {
            memcpy(p, v.p, v.len);
            p[v.len] = 0;
            *out_json = p;
        }
    }
    sdb__txn_abort(t);
    return rc;
}

int sdb_doc_count(sdb_store *s, uint32_t project, int kind, const char *group, uint64_t *out)
{
    *out = 0;
    if (check_names(group, NULL)) return SDB_EINVAL;
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    rc = count_get(t, kind, project, group, out);
    sdb__txn_abort(t);
    return rc;
}

int sdb_doc_list(sdb_store *s, uint32_t project, int kind, const char *group, const char *after,
                 uint64_t offset, uint64_t limit, sdb_doc_fn fn, void *ctx, uint64_t *out_total)
{
    if (out_total) *out_total = 0;
    if (check_names(group, NULL) || (after && check_names(group, after))) return SDB_EINVAL;
    uint8_t k[DOC_KEY_MAX], pre[DOC_KEY_MAX];
    size_t pl = doc_key(pre, "doc", kind, project, group, "");
    size_t kl = after ? doc_key(k, "doc", kind, project, group, after) : pl;
    if (!after) memcpy(k, pre, pl);
    sdb__txn *t;
    sdb__cur *c = NULL;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    if (out_total && (rc = count_get(t, kind, project, group, out_total))) goto done;
    if ((rc = sdb__cur_open(t, SDB__DB_META, &c))) goto done;
    sdb__val key, val;
    uint64_t seen = 0, given = 0;
    char id[SDB_MAX_STR + 1];
    for (rc = sdb__cur_seek(c, k, kl, &key, &val); rc == SDB_OK && given < limit;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len < pl || memcmp(key.p, pre, pl)) break;
        size_t il = key.len - pl;
        if (after && il == strlen(after) && !memcmp((const uint8_t *)key.p + pl, after, il))
            continue; /* the cursor names the last entry given */
        if (seen++ < offset) continue;
        if (il > SDB_MAX_STR) {
            rc = SDB_ECORRUPT;
            break;
        }
        memcpy(id, (const uint8_t *)key.p + pl, il);
        id[il] = 0;
        given++;
        if (fn(ctx, id, val.p, val.len)) break;
    }
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
done:
    sdb__cur_close(c);
    sdb__txn_abort(t);
    return rc;
}

int sdb_id_generate(char *out)
{
    sdb_batch *b;
    sdb__str id;
    int rc = sdb_batch_new(&b);
    if (rc) return rc;
    rc = sdb__batch_gen_id(b, &id);
    if (rc == SDB_OK) {
        memcpy(out, id.p, id.len);
        out[id.len] = 0;
    }
    sdb_batch_free(b);
    return rc;
}
