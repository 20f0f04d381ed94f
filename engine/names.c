/* The score-name catalogue: every name with its type, count and time range.
 *
 * Answered from segment headers alone (a walk over the project's segment
 * keys, 128 bytes read per chunk), so it costs the number of chunks, not
 * the number of scores. Like every analytic it reflects the watermark.
 */
#include "query.h"

typedef struct name_info {
    uint32_t id;
    uint64_t n_type[SDB_N_TYPES];
    int64_t first, last;
    sdb__str name;
} name_info;

static int cmp_name(const void *x, const void *y)
{
    const name_info *a = x, *b = y;
    uint32_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    int c = memcmp(a->name.p, b->name.p, n);
    return c ? c : (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

int sdb_names_json(sdb_store *s, uint32_t project, char **out_json)
{
    *out_json = NULL;
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    name_info *v = NULL;
    size_t n = 0, cap = 0;
    sdb__cur *c = NULL;
    sdb__buf b = {0};
    sdb__live lv;
    if ((rc = sdb__live_open(t, &lv))) goto done;
    if ((rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c))) goto done;
    uint8_t k[4];
    sdb__be32(k, project);
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, 4, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len != SDB__SEGKEY_LEN || memcmp(key.p, k, 4) != 0) break;
        uint32_t id = sdb__rd32((const uint8_t *)key.p + 4);
        sdb__seg g;
        if ((rc = sdb__seg_open(val.p, val.len, &g))) goto done;
        if ((rc = sdb__live_seg(&lv, key.p, &g)) < 0) goto done; /* live rows only */
        rc = SDB_OK;
        if (g.n == 0) continue;
        if (n == 0 || v[n - 1].id != id) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                name_info *nv = realloc(v, cap * sizeof *nv);
                if (!nv) { rc = SDB_ENOMEM; goto done; }
                v = nv;
            }
            memset(&v[n], 0, sizeof v[n]);
            v[n].id = id;
            v[n].first = INT64_MAX;
            v[n].last = INT64_MIN;
            n++;
        }
        name_info *ni = &v[n - 1];
        for (int ty = 0; ty < SDB_N_TYPES; ty++) ni->n_type[ty] += g.h.n_type[ty];
        if (g.h.ts_min < ni->first) ni->first = g.h.ts_min;
        if (g.h.ts_max > ni->last) ni->last = g.h.ts_max;
    }
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
    rc = SDB_OK;
    for (size_t i = 0; i < n; i++) {
        sdb__val sv;
        if ((rc = sdb__dict_str(t, project, SDB_DICT_NAME, v[i].id, &sv))) goto done;
        v[i].name = (sdb__str){sv.p, (uint32_t)sv.len};
    }
    if (n > 1) qsort(v, n, sizeof *v, cmp_name); /* v is NULL when empty */
    sdb__j_raw(&b, "[");
    for (size_t i = 0; i < n; i++) {
        int ty = 0;
        for (int x = 1; x < SDB_N_TYPES; x++)
            if (v[i].n_type[x] > v[i].n_type[ty]) ty = x;
        sdb__j_raw(&b, i ? ",{\"name\":" : "{\"name\":");
        sdb__j_str(&b, v[i].name.p, v[i].name.len);
        sdb__j_raw(&b, ",\"data_type\":");
        sdb__j_str(&b, sdb__type_names[ty], strlen(sdb__type_names[ty]));
        sdb__j_raw(&b, ",\"count\":");
        sdb__j_u64(&b, v[i].n_type[0] + v[i].n_type[1] + v[i].n_type[2]);
        sdb__j_raw(&b, ",\"first\":");
        sdb__j_time(&b, v[i].first);
        sdb__j_raw(&b, ",\"last\":");
        sdb__j_time(&b, v[i].last);
        sdb__j_raw(&b, "}");
    }
    sdb__j_raw(&b, "]");
    if (sdb__buf_add(&b, "", 1)) {
        rc = SDB_ENOMEM;
        goto done;
    }
    *out_json = b.p;
    b.p = NULL;
done:
    sdb__cur_close(c);
    sdb__live_close(&lv);
    sdb__txn_abort(t);
    sdb__buf_free(&b);
    free(v);
    return rc;
}
