/* Dictionaries: string <-> u32 id, per project and per dimension.
 *
 * Segments store dimension values, score names and categorical labels as
 * small integer ids so that filters compare integers and group-bys index
 * arrays directly. Ids start at 1 (0 is "absent") and are dense, so the
 * highest id bounds a direct-indexed accumulator. Both directions are
 * kept: `dict` (project|dict|string → id) for ingest and filters,
 * `dictrev` (project|dict|id → string) for answers. Ids are assigned in the
 * write transaction that first sees a string, so an aborted batch leaves
 * no id behind.
 *
 * LMDB keys are at most 511 bytes (mdb_env_get_maxkeysize), and a value
 * (a category label, a model string) may be up to SDB_MAX_VALUE bytes. A
 * string longer than INLINE is keyed by its first INLINE bytes, its xxh3
 * hash and a sequence byte; the id found is checked against the full
 * string in `dictrev`, and a (never yet seen) hash collision takes the
 * next sequence number. Inline keys are shorter than every long key, so
 * the two kinds never meet.
 */
#include "internal.h"

#define PREFIX 5
#define INLINE 448u
#define LONG_KEY (PREFIX + INLINE + 8 + 1)

static size_t fwd_key(uint8_t *k, uint32_t project, int dict, const char *s, size_t len)
{
    sdb__be32(k, project);
    k[4] = (uint8_t)dict;
    if (len <= INLINE) {
        memcpy(k + PREFIX, s, len);
        return PREFIX + len;
    }
    memcpy(k + PREFIX, s, INLINE);
    sdb__be64(k + PREFIX + INLINE, sdb__hash(s, len));
    k[LONG_KEY - 1] = 0; /* sequence */
    return LONG_KEY;
}

static void rev_key(uint8_t *k, uint32_t project, int dict, uint32_t id)
{
    sdb__be32(k, project);
    k[4] = (uint8_t)dict;
    sdb__be32(k + PREFIX, id);
}

uint32_t sdb__dict_max(sdb__txn *t, uint32_t project, int dict)
{
    uint8_t k[PREFIX + 4];
    /* Seek past the last possible id of this dictionary, then step back. */
    rev_key(k, project, dict, UINT32_MAX);
    sdb__cur *c;
    if (sdb__cur_open(t, SDB__DB_DICTREV, &c)) return 0;
    sdb__val key;
    int rc = sdb__cur_seek(c, k, sizeof k, &key, NULL);
    if (rc == SDB_OK) {
        const uint8_t *p = key.p;
        if (key.len == sizeof k && memcmp(p, k, sizeof k) == 0) {
            sdb__cur_close(c);
            return UINT32_MAX;
        }
        rc = sdb__cur_prev(c, &key, NULL);
    } else {
        rc = sdb__cur_last(c, &key, NULL);
    }
    uint32_t id = 0;
    if (rc == SDB_OK && key.len == sizeof k && memcmp(key.p, k, PREFIX) == 0)
        id = sdb__rd32((const uint8_t *)key.p + PREFIX);
    sdb__cur_close(c);
    return id;
}

int sdb__dict_id(sdb__txn *t, uint32_t project, int dict, const char *s, size_t len,
                 int create, uint32_t *out)
{
    uint8_t k[LONG_KEY];
    /* Callers cap stored strings; a longer one cannot be in the dictionary. */
    if (len > SDB_MAX_VALUE) return create ? SDB_EINVAL : SDB_ENOTFOUND;
    size_t klen = fwd_key(k, project, dict, s, len);
    sdb__val v;
    int rc;
    for (;;) {
        rc = sdb__get(t, SDB__DB_DICT, k, klen, &v);
        if (rc != SDB_OK) break;
        if (v.len != 4) return SDB_ECORRUPT;
        uint32_t id = sdb__rd32(v.p);
        if (klen != LONG_KEY) {
            *out = id;
            return SDB_OK;
        }
        sdb__val str;
        if ((rc = sdb__dict_str(t, project, dict, id, &str)))
            return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
        if (str.len == len && memcmp(str.p, s, len) == 0) {
            *out = id;
            return SDB_OK;
        }
        if (k[LONG_KEY - 1] == UINT8_MAX) return SDB_ELIMIT; /* 256 collisions */
        k[LONG_KEY - 1]++;
    }
    if (rc != SDB_ENOTFOUND || !create) return rc;
    uint32_t id = sdb__dict_max(t, project, dict) + 1;
    if (id == 0 || id == UINT32_MAX) return SDB_ELIMIT;
    uint8_t idb[4], rk[PREFIX + 4];
    sdb__be32(idb, id);
    rev_key(rk, project, dict, id);
    if ((rc = sdb__put(t, SDB__DB_DICT, k, klen, idb, 4, 0))) return rc;
    if ((rc = sdb__put(t, SDB__DB_DICTREV, rk, sizeof rk, s, len, 0))) return rc;
    *out = id;
    return SDB_OK;
}

int sdb__dict_str(sdb__txn *t, uint32_t project, int dict, uint32_t id, sdb__val *out)
{
    uint8_t rk[PREFIX + 4];
    rev_key(rk, project, dict, id);
    return sdb__get(t, SDB__DB_DICTREV, rk, sizeof rk, out);
}

int sdb_project_id(sdb_store *s, const char *name, int create, uint32_t *out_id)
{
    size_t len = strlen(name);
    if (len == 0 || len > SDB_MAX_STR) return SDB_EINVAL;
    if (strcmp(name, "default") == 0) {
        *out_id = 0;
        return SDB_OK;
    }
    sdb__txn *t;
    int rc = sdb__txn_begin(s, create && !s->read_only, &t);
    if (rc) return rc;
    uint32_t id;
    rc = sdb__dict_id(t, 0, SDB_DICT_PROJECT, name, len, create && !s->read_only, &id);
    if (rc == SDB_OK && create && !s->read_only) {
        rc = sdb__txn_commit(t);
        t = NULL;
    }
    sdb__txn_abort(t);
    /* The "default" project is dictionary id 1 and project 0; every other
     * project is its dictionary id. */
    if (rc == SDB_OK) *out_id = id;
    return rc;
}
