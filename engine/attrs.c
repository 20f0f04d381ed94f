/* Tags and properties as columns: the `attrs` database, one value per
 * chunk (same key as its segment), written by the fold.
 *
 * A query that filters by tag or property, or groups by a property, used
 * to fetch and decode every row record of the chunks it scanned from the
 * zstd row store (124 ms for a tag filter at 1M rows over HTTP, against a
 * few ms for a dimension filter). The fold reads every record it folds
 * anyway, so it writes, beside each chunk, what those queries need in the
 * chunk's row order:
 *   - the chunk's distinct tag sets (each a sorted list of tag ids, the
 *     project's `SDB_DICT_TAG` dictionary) and a narrow column of each
 *     row's set index: a tag filter is a membership test over set indexes,
 *     computed once per chunk, like a dimension filter over its ids;
 *   - per property key (`SDB_DICT_PKEY` ids) a narrow column of each row's
 *     value id (`SDB_DICT_PROP`, the ids ingest already assigns; 0 when the
 *     row lacks the key): a property filter is a bitmap over value ids, a
 *     property group-by reads the ids as a dimension's.
 * Tag sets rather than a bitmap per tag: a chunk of 8192 rows with 30 tags
 * would take 30 KiB of bitmaps, while LLM apps tag a trace with a few of a
 * small vocabulary, so the sets are few and the column one byte a row.
 *
 * Bounds (long tails): at most SDB__ATTR_MAX_SETS tag sets (and
 * SDB__ATTR_MAX_SET_IDS ids in all sets) per chunk, else the chunk keeps no
 * tags (flag SDB__ATTR_NO_TAGS); at most SDB__ATTR_MAX_KEYS property keys,
 * the most frequent in the chunk, else the rest are not kept (flag
 * SDB__ATTR_SOME_KEYS). A query whose needs a chunk does not keep reads
 * that chunk's row records, as before (exec.c's row_store), so answers
 * never depend on the bounds; only the time does. The worst case is
 * 2 + 16 x 4 bytes a row.
 *
 * Invariant: a chunk's attrs value describes the chunk's rows one for one,
 * in row order, dead rows included (like its segment until the purge);
 * every writer of a chunk keeps it so (fold.c: the append, the purge) and
 * engine/check.c verifies it against the row records.
 *
 * Value layout (little-endian, unaligned, all u32 unless said):
 *   magic "SATR" | u8 version (1) | u8 flags | u8 set_w | u8 n_keys
 *   | n rows | n_sets
 *   | set_end[n_sets]      end of set s in set_ids (set s starts at set_end[s-1])
 *   | set_ids[...]         sorted, distinct tag ids
 *   | keys[n_keys]: key id, width   (width 0: never written)
 *   | set column           set_w (0, 1 or 2) bytes a row; width 0: every row in set 0
 *   | key columns          each width (1, 2 or 4) bytes a row
 *   | (flag SDB__ATTR_PREAGG) per key: m (0xFFFFFFFF: not kept), then m x
 *                          (value id, 0, sdb__mom: 56 bytes), 64 bytes each
 * The pre-aggregates are a chunk's per-value moments for each kept key, as
 * segment.c keeps them per dimension value: a `properties.KEY` group-by over
 * a chunk the query covers wholly adds them instead of scanning its rows
 * (kept only for a chunk without categorical rows, and at most
 * SDB__PREAGG_MAX values a key, id 0 for the rows without the key).
 */
#include "query.h"

#include <math.h>

#define MAGIC 0x52544153u /* "SATR" */

/* Tests shrink the bounds to reach them with small chunks, and turn the
 * columns off to run the row-record path. */
uint32_t sdb__attrs_max_sets = SDB__ATTR_MAX_SETS;
uint32_t sdb__attrs_max_keys = SDB__ATTR_MAX_KEYS;
int sdb__attrs_off;
#define VERSION 1
#define HDR 16u
#define PRE_ENT 64u
/* The flags of a value that leaves some rows' tags or keys out. */
#define PARTIAL (SDB__ATTR_NO_TAGS | SDB__ATTR_SOME_KEYS)
_Static_assert(sizeof(sdb__mom) == 56, "a pre-aggregate entry is id, pad, sdb__mom: 64 bytes");

/* ------------------------------------------------------------ row attrs */

/* Words of a row: n_tags, n_kv, tags[n_tags] sorted distinct, then n_kv
 * pairs (key id, value id) sorted by key. */
void sdb__arow_of(const uint32_t *w, sdb__arow *out)
{
    out->n_tags = w[0];
    out->n_kv = w[1];
    out->tags = w + 2;
    out->kv = w + 2 + w[0];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}
static int cmp_pair(const void *a, const void *b) { return cmp_u32(a, b); }

int sdb__attrs_raw_add(const sdb__row *r, sdb__buf *out)
{
    uint32_t hdr[2] = {r->n_tags, r->n_props};
    if (sdb__buf_add(out, hdr, sizeof hdr)) return SDB_ENOMEM;
    for (int list = 0; list < 2; list++) {
        uint32_t n = list ? 2 * r->n_props : r->n_tags;
        const uint8_t *s = list ? r->props : r->tags, *e = s;
        for (uint32_t i = 0; i < n; i++) {
            uint16_t len;
            memcpy(&len, e, 2);
            e += 2 + len;
        }
        if (n && sdb__buf_add(out, s, (size_t)(e - s))) return SDB_ENOMEM;
    }
    return SDB_OK;
}

int sdb__attrs_raw_rec(const void *rec, size_t len, sdb__buf *out)
{
    /* Most scores carry neither tags nor properties, and a full decode
     * renders their packed ids as text: row.c answers from the record's
     * masks (any other record version is decoded). */
    if (!sdb__row_may_have_lists(rec, len)) {
        uint32_t none[2] = {0, 0};
        return sdb__buf_add(out, none, sizeof none) ? SDB_ENOMEM : SDB_OK;
    }
    sdb__row row;
    int rc = sdb__row_decode_noid(rec, len, &row);
    return rc ? rc : sdb__attrs_raw_add(&row, out);
}

/* A small cache of (project, dictionary, string) -> id, so that a fold of
 * a million rows tagged from a vocabulary of ten does not do two million
 * dictionary lookups. Strings are copied into the cache's arena; it
 * resets when either fills. */
#define CACHE_SLOTS 4096u
#define CACHE_BYTES (256u << 10)
typedef struct cent {
    uint64_t h;
    uint32_t off, len, id;
    uint32_t used;
} cent;
struct sdb__acache {
    cent slot[CACHE_SLOTS];
    uint32_t n;
    sdb__buf arena;
};

int sdb__acache_new(sdb__acache **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? SDB_OK : SDB_ENOMEM;
}

void sdb__acache_free(sdb__acache *c)
{
    if (!c) return;
    sdb__buf_free(&c->arena);
    free(c);
}

static int cached_id(sdb__txn *t, sdb__acache *c, uint32_t project, int dict, const char *s,
                     size_t len, int create, uint32_t *out)
{
    uint64_t h = sdb__hash(s, len) ^ ((uint64_t)project << 8 | (uint64_t)dict) * 0x9e3779b97f4a7c15ull;
    uint32_t j = (uint32_t)(h >> 40) & (CACHE_SLOTS - 1);
    for (;;) {
        cent *e = &c->slot[j];
        if (!e->used) break;
        if (e->h == h && e->len == len && memcmp(c->arena.p + e->off, s, len) == 0) {
            *out = e->id;
            return SDB_OK;
        }
        j = (j + 1) & (CACHE_SLOTS - 1);
    }
    int rc = sdb__dict_id(t, project, dict, s, len, create, out);
    if (rc) return rc;
    if (2 * (c->n + 1) > CACHE_SLOTS || c->arena.len + len > CACHE_BYTES) {
        memset(c->slot, 0, sizeof c->slot);
        c->n = 0;
        c->arena.len = 0;
        j = (uint32_t)(h >> 40) & (CACHE_SLOTS - 1);
    }
    if (sdb__buf_add(&c->arena, s, len)) return SDB_OK; /* uncached, still right */
    c->slot[j] = (cent){h, (uint32_t)(c->arena.len - len), (uint32_t)len, *out, 1};
    c->n++;
    return SDB_OK;
}

int sdb__attrs_resolve(sdb__txn *t, sdb__acache *c, uint32_t project, const void *raw,
                       size_t *used, int create, sdb__buf *words)
{
    const uint8_t *p = raw;
    uint32_t hdr[2];
    memcpy(hdr, p, sizeof hdr);
    p += sizeof hdr;
    if (hdr[0] == 0 && hdr[1] == 0) { /* most scores: nothing to resolve or sort */
        *used = sizeof hdr;
        return sdb__buf_add(words, hdr, sizeof hdr) ? SDB_ENOMEM : SDB_OK;
    }
    size_t at = words->len;
    if (sdb__buf_reserve(words, (2 + hdr[0] + 2 * (size_t)hdr[1]) * 4)) return SDB_ENOMEM;
    uint32_t *w = (uint32_t *)(void *)(words->p + at);
    uint32_t nt = 0;
    int rc = SDB_OK;
    for (uint32_t i = 0; i < hdr[0] && rc == SDB_OK; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        rc = cached_id(t, c, project, SDB_DICT_TAG, (const char *)p + 2, len, create, &w[2 + nt]);
        nt++;
        p += 2 + len;
    }
    uint32_t *kv = w + 2 + nt;
    for (uint32_t i = 0; i < hdr[1] && rc == SDB_OK; i++) {
        uint16_t kl, vl;
        memcpy(&kl, p, 2);
        const char *k = (const char *)p + 2;
        p += 2 + kl;
        memcpy(&vl, p, 2);
        const char *v = (const char *)p + 2;
        p += 2 + vl;
        rc = cached_id(t, c, project, SDB_DICT_PKEY, k, kl, create, &kv[2 * i]);
        /* Property values got their ids at ingest (group-by keys). */
        if (rc == SDB_OK) rc = cached_id(t, c, project, SDB_DICT_PROP, v, vl, create, &kv[2 * i + 1]);
    }
    if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
    /* Sets: sorted and distinct (a row may repeat a tag). Keys are
     * distinct already (ingest refuses a repeated key). */
    qsort(w + 2, nt, 4, cmp_u32);
    uint32_t u = 0;
    for (uint32_t i = 0; i < nt; i++)
        if (u == 0 || w[2 + u - 1] != w[2 + i]) w[2 + u++] = w[2 + i];
    if (u != nt) memmove(w + 2 + u, kv, hdr[1] * 8);
    kv = w + 2 + u;
    qsort(kv, hdr[1], 8, cmp_pair);
    w[0] = u;
    w[1] = hdr[1];
    words->len = at + (2 + u + 2 * (size_t)hdr[1]) * 4;
    *used = (size_t)(p - (const uint8_t *)raw);
    return SDB_OK;
}

/* The attrs words of one stored row record (check, and the rows of a chunk
 * whose old value does not hold them). SDB_ENOTFOUND: the record is gone
 * (a dead row of the chunk, replaced or deleted). */
static int record_words(sdb__txn *t, sdb__acache *c, uint32_t project, uint64_t ref,
                        sdb__buf *scratch, sdb__buf *words)
{
    sdb__val rv;
    int rc = sdb__row_get(t, project, ref, &rv);
    if (rc) return rc;
    scratch->len = 0;
    if ((rc = sdb__attrs_raw_rec(rv.p, rv.len, scratch))) return rc;
    size_t used;
    return sdb__attrs_resolve(t, c, project, scratch->p, &used, 0, words);
}

/* --------------------------------------------------------------- values */

int sdb__attrs_open(const void *p, size_t len, sdb__attrs *a)
{
    const uint8_t *b = p;
    memset(a, 0, sizeof *a);
    if (len < HDR) return SDB_ECORRUPT;
    uint32_t magic;
    memcpy(&magic, b, 4);
    if (magic != MAGIC || b[4] != VERSION || (b[6] != 0 && b[6] != 1 && b[6] != 2) ||
        b[7] > SDB__ATTR_MAX_KEYS)
        return SDB_ECORRUPT;
    a->flags = b[5];
    a->set_w = b[6];
    a->n_keys = b[7];
    memcpy(&a->n, b + 8, 4);
    memcpy(&a->n_sets, b + 12, 4);
    if (a->n_sets > SDB__ATTR_MAX_SETS) return SDB_ECORRUPT;
    size_t off = HDR;
    a->set_end = b + off;
    off += 4ull * a->n_sets;
    if (off > len) return SDB_ECORRUPT;
    uint32_t n_ids = 0;
    for (uint32_t s = 0; s < a->n_sets; s++) {
        uint32_t e;
        memcpy(&e, a->set_end + 4ull * s, 4);
        if (e < n_ids || e > SDB__ATTR_MAX_SET_IDS) return SDB_ECORRUPT;
        n_ids = e;
    }
    a->set_ids = b + off;
    off += 4ull * n_ids;
    a->keys = b + off;
    off += 8ull * a->n_keys;
    if (off > len) return SDB_ECORRUPT;
    a->set_col = b + off;
    off += (size_t)a->set_w * a->n;
    for (uint32_t k = 0; k < a->n_keys; k++) {
        uint32_t w;
        memcpy(&w, a->keys + 8ull * k + 4, 4);
        if (w != 1 && w != 2 && w != 4) return SDB_ECORRUPT;
        if (off > len) return SDB_ECORRUPT;
        a->key_col[k] = b + off;
        a->key_w[k] = (uint8_t)w;
        off += (size_t)w * a->n;
    }
    for (uint32_t k = 0; k < a->n_keys && (a->flags & SDB__ATTR_PREAGG); k++) {
        uint32_t m;
        if (off > len || len - off < 4) return SDB_ECORRUPT;
        memcpy(&m, b + off, 4);
        off += 4;
        a->n_pre[k] = -1;
        if (m == UINT32_MAX) continue;
        if (m > SDB__PREAGG_MAX || (len - off) / PRE_ENT < m) return SDB_ECORRUPT;
        a->pre[k] = b + off;
        a->n_pre[k] = (int)m;
        off += (size_t)m * PRE_ENT;
    }
    if (off != len) return SDB_ECORRUPT;
    /* A set index past the table (a corrupt value) is checked where it is
     * read (sdb__attrs_set; the selection's bound test, id < nb): a scan of the column here
     * would cost every query a pass over every chunk it reads. */
    if (a->set_w && a->n_sets == 0) return SDB_ECORRUPT;
    return SDB_OK;
}

void sdb__attrs_set(const sdb__attrs *a, uint32_t s, const uint8_t **ids, uint32_t *n)
{
    uint32_t lo = 0, hi = 0;
    if (s < a->n_sets) {
        if (s) memcpy(&lo, a->set_end + 4ull * (s - 1), 4);
        memcpy(&hi, a->set_end + 4ull * s, 4);
    }
    *ids = a->set_ids + 4ull * lo;
    *n = hi - lo;
}

int sdb__attrs_key(const sdb__attrs *a, uint32_t key)
{
    for (uint32_t k = 0; k < a->n_keys; k++) {
        uint32_t id;
        memcpy(&id, a->keys + 8ull * k, 4);
        if (id == key) return (int)k;
    }
    return -1;
}

/* The words of row i of a value (as sdb__attrs_resolve writes them). */
static int value_words(const sdb__attrs *a, uint32_t i, sdb__buf *words)
{
    const uint8_t *ids;
    uint32_t nt = 0;
    if (a->set_w) sdb__attrs_set(a, sdb__seg_ld(a->set_col, a->set_w, i), &ids, &nt);
    else if (a->n_sets) sdb__attrs_set(a, 0, &ids, &nt);
    uint32_t nkv = 0;
    for (uint32_t k = 0; k < a->n_keys; k++) nkv += sdb__seg_ld(a->key_col[k], a->key_w[k], i) != 0;
    size_t at = words->len;
    if (sdb__buf_reserve(words, (2 + nt + 2 * (size_t)nkv) * 4)) return SDB_ENOMEM;
    uint32_t *w = (uint32_t *)(void *)(words->p + at);
    w[0] = nt;
    w[1] = nkv;
    if (nt) memcpy(w + 2, ids, 4ull * nt);
    uint32_t *kv = w + 2 + nt, m = 0;
    for (uint32_t k = 0; k < a->n_keys; k++) {
        uint32_t v = sdb__seg_ld(a->key_col[k], a->key_w[k], i);
        if (!v) continue;
        memcpy(&kv[2 * m], a->keys + 8ull * k, 4);
        kv[2 * m++ + 1] = v;
    }
    qsort(kv, m, 8, cmp_pair);
    words->len = at + (2 + nt + 2 * (size_t)nkv) * 4;
    return SDB_OK;
}

static void put_w(uint8_t *col, unsigned w, uint32_t i, uint32_t v)
{
    switch (w) {
    case 1: col[i] = (uint8_t)v; break;
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(col + 2ull * i, &x, 2);
        break;
    }
    default: memcpy(col + 4ull * i, &v, 4); break;
    }
}

static unsigned width_of(uint32_t max) { return max < 256 ? 1 : max < 65536 ? 2 : 4; }

typedef struct kcount {
    uint32_t key, rows, max;
} kcount;

static int cmp_kcount(const void *a, const void *b)
{
    const kcount *x = a, *y = b;
    if (x->rows != y->rows) return x->rows > y->rows ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* The per-value moments of key `key` over the chunk's rows (values
 * vals[0..n), none categorical) into out, or m = 0xFFFFFFFF past
 * SDB__PREAGG_MAX values. */
static int build_pre(const sdb__arow *rows, uint32_t n, const double *vals, uint32_t key,
                     sdb__buf *out)
{
    uint32_t ids[SDB__PREAGG_MAX], m = 0;
    sdb__mom mom[SDB__PREAGG_MAX];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = 0;
        for (uint32_t q = 0; q < rows[i].n_kv; q++)
            if (rows[i].kv[2 * q] == key) {
                v = rows[i].kv[2 * q + 1];
                break;
            }
        uint32_t j = 0;
        while (j < m && ids[j] != v) j++;
        if (j == m) {
            if (m == SDB__PREAGG_MAX) {
                m = UINT32_MAX;
                break;
            }
            ids[m] = v;
            sdb__mom_init(&mom[m++]);
        }
        sdb__mom_add(&mom[j], vals[i]);
    }
    if (sdb__buf_add(out, &m, 4)) return SDB_ENOMEM;
    for (uint32_t j = 0; m != UINT32_MAX && j < m; j++) {
        uint32_t head[2] = {ids[j], 0};
        if (sdb__buf_add(out, head, 8) || sdb__buf_add(out, &mom[j], sizeof mom[j]))
            return SDB_ENOMEM;
    }
    return SDB_OK;
}

/* Build the value of rows[0..n) into out; g (NULL: none) is the chunk
 * itself, for the pre-aggregates. */
static int build(const sdb__arow *rows, uint32_t n, const sdb__seg *g, sdb__buf *out)
{
    int rc = SDB_ENOMEM;
    uint8_t flags = 0;
    /* Tag sets: open addressing on the set's hash; set index per row. */
    uint32_t cap = 2 * SDB__ATTR_MAX_SETS, n_sets = 0, n_ids = 0;
    uint32_t *slot = calloc(cap, sizeof *slot); /* set + 1 */
    uint32_t *set_of = malloc(sizeof *set_of * (n ? n : 1));
    uint32_t *first = malloc(sizeof *first * SDB__ATTR_MAX_SETS); /* a row with the set */
    kcount *kc = NULL;
    uint32_t n_kc = 0, cap_kc = 0;
    uint32_t *kslot = NULL;
    if (!slot || !set_of || !first) goto done;
    for (uint32_t i = 0; i < n && !(flags & SDB__ATTR_NO_TAGS); i++) {
        uint64_t h = sdb__hash(rows[i].tags, 4ull * rows[i].n_tags);
        uint32_t j = (uint32_t)(h >> 32) & (cap - 1);
        for (;;) {
            uint32_t s = slot[j];
            if (!s) {
                if (n_sets >= sdb__attrs_max_sets || n_sets == SDB__ATTR_MAX_SETS ||
                    n_ids + rows[i].n_tags > SDB__ATTR_MAX_SET_IDS) {
                    flags |= SDB__ATTR_NO_TAGS;
                    break;
                }
                first[n_sets] = i;
                n_ids += rows[i].n_tags;
                slot[j] = ++n_sets;
                set_of[i] = n_sets - 1;
                break;
            }
            const sdb__arow *o = &rows[first[s - 1]];
            if (o->n_tags == rows[i].n_tags &&
                memcmp(o->tags, rows[i].tags, 4ull * o->n_tags) == 0) {
                set_of[i] = s - 1;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
    }
    if (flags & SDB__ATTR_NO_TAGS) n_sets = n_ids = 0;
    /* Property keys: rows and largest value id per key. */
    uint32_t kcap = 64;
    kslot = calloc(kcap, sizeof *kslot);
    if (!kslot) goto done;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t m = 0; m < rows[i].n_kv; m++) {
            uint32_t key = rows[i].kv[2 * m], v = rows[i].kv[2 * m + 1];
            if (2 * (n_kc + 1) > kcap) {
                uint32_t nc = kcap * 2, *ns = calloc(nc, sizeof *ns);
                if (!ns) goto done;
                for (uint32_t q = 0; q < n_kc; q++) {
                    uint32_t j = (kc[q].key * 0x9e3779b9u >> 7) & (nc - 1);
                    while (ns[j]) j = (j + 1) & (nc - 1);
                    ns[j] = q + 1;
                }
                free(kslot);
                kslot = ns;
                kcap = nc;
            }
            uint32_t j = (key * 0x9e3779b9u >> 7) & (kcap - 1);
            while (kslot[j] && kc[kslot[j] - 1].key != key) j = (j + 1) & (kcap - 1);
            if (!kslot[j]) {
                if (n_kc == cap_kc) {
                    uint32_t nc = cap_kc ? 2 * cap_kc : 16;
                    kcount *nk = realloc(kc, sizeof *nk * nc);
                    if (!nk) goto done;
                    kc = nk;
                    cap_kc = nc;
                }
                kc[n_kc] = (kcount){key, 0, 0};
                kslot[j] = ++n_kc;
            }
            kcount *e = &kc[kslot[j] - 1];
            e->rows++;
            if (v > e->max) e->max = v;
        }
    uint32_t n_keys = n_kc, max_keys = sdb__attrs_max_keys < SDB__ATTR_MAX_KEYS
                                            ? sdb__attrs_max_keys : SDB__ATTR_MAX_KEYS;
    if (n_kc > max_keys) {
        qsort(kc, n_kc, sizeof *kc, cmp_kcount);
        n_keys = max_keys;
        flags |= SDB__ATTR_SOME_KEYS;
    }
    bool pre = g && g->n == n && g->h.n_type[SDB_CATEGORICAL] == 0;
    if (pre) flags |= SDB__ATTR_PREAGG;
    unsigned set_w = n_sets > 1 ? (n_sets <= 256 ? 1 : 2) : 0;
    size_t len = HDR + 4ull * n_sets + 4ull * n_ids + 8ull * n_keys + (size_t)set_w * n;
    for (uint32_t k = 0; k < n_keys; k++) len += (size_t)width_of(kc[k].max) * n;
    out->len = 0;
    if (sdb__buf_reserve(out, len)) goto done;
    uint8_t *b = (uint8_t *)out->p;
    memset(b, 0, len);
    uint32_t magic = MAGIC;
    memcpy(b, &magic, 4);
    b[4] = VERSION;
    b[5] = flags;
    b[6] = (uint8_t)set_w;
    b[7] = (uint8_t)n_keys;
    memcpy(b + 8, &n, 4);
    memcpy(b + 12, &n_sets, 4);
    size_t off = HDR, ids_at = HDR + 4ull * n_sets;
    uint32_t e = 0;
    for (uint32_t s = 0; s < n_sets; s++) {
        const sdb__arow *o = &rows[first[s]];
        memcpy(b + ids_at + 4ull * e, o->tags, 4ull * o->n_tags);
        e += o->n_tags;
        memcpy(b + off + 4ull * s, &e, 4);
    }
    off = ids_at + 4ull * n_ids;
    uint8_t *keys = b + off;
    off += 8ull * n_keys;
    uint8_t *set_col = b + off;
    off += (size_t)set_w * n;
    if (set_w)
        for (uint32_t i = 0; i < n; i++) put_w(set_col, set_w, i, set_of[i]);
    for (uint32_t k = 0; k < n_keys; k++) {
        uint32_t w = width_of(kc[k].max);
        memcpy(keys + 8ull * k, &kc[k].key, 4);
        memcpy(keys + 8ull * k + 4, &w, 4);
        uint8_t *col = b + off;
        for (uint32_t i = 0; i < n; i++) {
            /* pairs are sorted by key: a binary search would win only past a
             * dozen keys a row */
            uint32_t v = 0;
            for (uint32_t m = 0; m < rows[i].n_kv; m++)
                if (rows[i].kv[2 * m] == kc[k].key) {
                    v = rows[i].kv[2 * m + 1];
                    break;
                }
            put_w(col, w, i, v);
        }
        off += (size_t)w * n;
    }
    out->len = len;
    rc = SDB_OK;
    if (pre && n_keys) {
        /* The values once (through the segment's accessor), for every key. */
        double *vals = malloc(sizeof *vals * n);
        rc = vals ? SDB_OK : SDB_ENOMEM;
        for (uint32_t i = 0; vals && i < n; i++) {
            sdb__fixed fx;
            sdb__seg_row(g, i, &fx);
            vals[i] = fx.value;
        }
        for (uint32_t k = 0; k < n_keys && rc == SDB_OK; k++)
            rc = build_pre(rows, n, vals, kc[k].key, out);
        free(vals);
    }
done:
    free(slot);
    free(set_of);
    free(first);
    free(kc);
    free(kslot);
    return rc;
}

int sdb__attrs_put(sdb__txn *t, const uint8_t *key, const sdb__arow *rows, uint32_t n,
                   const sdb__seg *g)
{
    if (n == 0) {
        int rc = sdb__del(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN);
        return rc == SDB_ENOTFOUND ? SDB_OK : rc;
    }
    sdb__buf v = {0};
    int rc = build(rows, n, g, &v);
    if (rc == SDB_OK) rc = sdb__put(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN, v.p, v.len, 0);
    sdb__buf_free(&v);
    return rc;
}

/* Rows of words (offsets into one buffer) as sdb__arows. */
static int arows_of(const sdb__buf *words, const size_t *off, uint32_t n, sdb__arow **out)
{
    *out = malloc(sizeof **out * (n ? n : 1));
    if (!*out) return SDB_ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        sdb__arow_of((const uint32_t *)(const void *)(words->p + off[i]), &(*out)[i]);
    return SDB_OK;
}

/* Rewrite the attrs of chunk `key` (segment g, just written) from its
 * rows: rows [0, n_old) were in the chunk before and keep their index in
 * the old value when it holds them, else come from their records; the
 * rest are fresh[...] in ref order (fresh_ref[j] their refs). */
static int rewrite_chunk(sdb__txn *t, sdb__acache *cache, const uint8_t *key,
                         const sdb__arow *fresh, const uint64_t *fresh_ref, uint32_t n_fresh,
                         uint32_t *at_fresh)
{
    sdb__val sv, av;
    sdb__seg g;
    int rc = sdb__get(t, SDB__DB_SEGMENTS, key, SDB__SEGKEY_LEN, &sv);
    if (rc == SDB_OK) rc = sdb__seg_open(sv.p, sv.len, &g);
    if (rc) return rc;
    uint32_t project = sdb__rd32(key);
    sdb__attrs old;
    int have_old = 0;
    rc = sdb__get(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN, &av);
    if (rc == SDB_OK) have_old = sdb__attrs_open(av.p, av.len, &old) == SDB_OK && !(old.flags & PARTIAL);
    else if (rc != SDB_ENOTFOUND) return rc;
    sdb__buf words = {0}, scratch = {0};
    size_t *off = calloc(g.n ? g.n : 1, sizeof *off);
    sdb__arow *rows = NULL;
    if (!off) return SDB_ENOMEM;
    rc = SDB_OK;
    uint64_t first_fresh = *at_fresh < n_fresh ? fresh_ref[*at_fresh] : UINT64_MAX;
    /* New rows are written after the old ones' words so that one buffer
     * (which may move) holds every row; fresh rows point elsewhere. */
    uint32_t n_old = 0;
    for (uint32_t i = 0; i < g.n && rc == SDB_OK; i++) {
        uint64_t ref = sdb__seg_ref(&g, i);
        if (ref >= first_fresh) break;
        off[i] = words.len;
        if (have_old && i < old.n) {
            rc = value_words(&old, i, &words);
        } else if ((rc = record_words(t, cache, project, ref, &scratch, &words)) == SDB_ENOTFOUND) {
            /* A dead row: no reader looks at it again, and the purge drops
             * it; it keeps its place with no tags and no properties. */
            uint32_t none[2] = {0, 0};
            rc = sdb__buf_add(&words, none, sizeof none) ? SDB_ENOMEM : SDB_OK;
        }
        n_old++;
    }
    if (rc == SDB_OK) rc = arows_of(&words, off, n_old, &rows);
    if (rc == SDB_OK && g.n > n_old) {
        sdb__arow *r = realloc(rows, sizeof *r * g.n);
        if (!r) rc = SDB_ENOMEM;
        else rows = r;
    }
    static const uint32_t none[2] = {0, 0};
    for (uint32_t i = n_old; i < g.n && rc == SDB_OK; i++) {
        uint64_t ref = sdb__seg_ref(&g, i);
        if (*at_fresh >= n_fresh || fresh_ref[*at_fresh] != ref) rc = SDB_ECORRUPT;
        else if (fresh) rows[i] = fresh[(*at_fresh)++];
        else sdb__arow_of(none, &rows[i]), ++*at_fresh;
    }
    if (rc == SDB_OK) rc = sdb__attrs_put(t, key, rows, g.n, &g);
    free(rows);
    free(off);
    sdb__buf_free(&words);
    sdb__buf_free(&scratch);
    return rc;
}

int sdb__attrs_append(sdb__txn *t, sdb__acache *cache, const sdb__fixed *const *fx,
                      const sdb__arow *rows, uint32_t n)
{
    if (n == 0) return SDB_OK;
    sdb_store *s = sdb__txn_store(t);
    int64_t bucket = sdb__floor_div(fx[0]->ts, s->bucket_ms) * s->bucket_ms;
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, fx[0]->project, fx[0]->name, bucket, UINT32_MAX);
    /* The chunks holding the new rows: from the last chunk of the bucket
     * back to the first whose first ref is below the first new ref (the
     * fold appends in ref order, so those are the chunks it just wrote). */
    uint64_t *refs = malloc(sizeof *refs * n);
    sdb__buf keys = {0};
    if (!refs) return SDB_ENOMEM;
    for (uint32_t i = 0; i < n; i++) refs[i] = fx[i]->ref;
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) {
        free(refs);
        return rc;
    }
    sdb__val key, val;
    rc = sdb__cur_seek(c, k, sizeof k, &key, &val);
    if (rc == SDB_OK) rc = sdb__cur_prev(c, &key, &val);
    else if (rc == SDB_ENOTFOUND) rc = sdb__cur_last(c, &key, &val);
    for (; rc == SDB_OK; rc = sdb__cur_prev(c, &key, &val)) {
        if (key.len != SDB__SEGKEY_LEN || memcmp(key.p, k, 16) != 0) break;
        sdb__seg g;
        if ((rc = sdb__seg_open(val.p, val.len, &g))) break;
        if (g.n && sdb__seg_ref(&g, g.n - 1) < refs[0]) break;
        if (sdb__buf_add(&keys, key.p, SDB__SEGKEY_LEN)) {
            rc = SDB_ENOMEM;
            break;
        }
        if (g.n && sdb__seg_ref(&g, 0) < refs[0]) break;
    }
    sdb__cur_close(c);
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    uint32_t at = 0;
    size_t n_keys = keys.len / SDB__SEGKEY_LEN;
    for (size_t i = n_keys; rc == SDB_OK && i-- > 0;)
        rc = rewrite_chunk(t, cache, (const uint8_t *)keys.p + i * SDB__SEGKEY_LEN, rows, refs, n,
                           &at);
    if (rc == SDB_OK && at != n) rc = SDB_ECORRUPT; /* some new row is in no chunk */
    free(refs);
    sdb__buf_free(&keys);
    return rc;
}

int sdb__attrs_purge(sdb__txn *t, const uint8_t *key, const uint8_t *dead, size_t dead_len)
{
    sdb__val av;
    int rc = sdb__get(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN, &av);
    if (rc == SDB_ENOTFOUND) return SDB_OK; /* no value: queries read the records */
    if (rc) return rc;
    sdb__attrs a;
    if (sdb__attrs_open(av.p, av.len, &a) != SDB_OK || (a.flags & PARTIAL)) {
        /* Not all of the rows' attributes are in it: rebuild from records. */
        return sdb__attrs_rebuild(t, key);
    }
    sdb__buf words = {0};
    size_t *off = calloc(a.n ? a.n : 1, sizeof *off);
    sdb__arow *rows = NULL;
    uint32_t m = 0;
    rc = off ? SDB_OK : SDB_ENOMEM;
    for (uint32_t i = 0; i < a.n && rc == SDB_OK; i++) {
        if ((size_t)i / 8 < dead_len && (dead[i / 8] >> (i % 8) & 1u)) continue;
        off[m++] = words.len;
        rc = value_words(&a, i, &words);
    }
    if (rc == SDB_OK) rc = arows_of(&words, off, m, &rows);
    /* The chunk as the purge wrote it (gone when no row is left). */
    sdb__val sv;
    sdb__seg g;
    int have_g = rc == SDB_OK && m && sdb__get(t, SDB__DB_SEGMENTS, key, SDB__SEGKEY_LEN, &sv) == SDB_OK &&
                 sdb__seg_open(sv.p, sv.len, &g) == SDB_OK;
    if (rc == SDB_OK) rc = sdb__attrs_put(t, key, rows, m, have_g ? &g : NULL);
    free(rows);
    free(off);
    sdb__buf_free(&words);
    return rc;
}

int sdb__attrs_rebuild(sdb__txn *t, const uint8_t *key)
{
    sdb__acache *cache;
    int rc = sdb__acache_new(&cache);
    if (rc) return rc;
    /* No old value to keep (rewrite_chunk reads an old value only when it
     * is complete): delete it first so that every row comes from its record. */
    if ((rc = sdb__del(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN)) == SDB_ENOTFOUND) rc = SDB_OK;
    uint32_t at = 0;
    if (rc == SDB_OK) {
        sdb__val sv;
        rc = sdb__get(t, SDB__DB_SEGMENTS, key, SDB__SEGKEY_LEN, &sv);
        if (rc == SDB_ENOTFOUND) rc = SDB_OK; /* the chunk is gone: so is its value */
        else if (rc == SDB_OK) rc = rewrite_chunk(t, cache, key, NULL, NULL, 0, &at);
    }
    sdb__acache_free(cache);
    return rc;
}

/* ---------------------------------------------------------------- check */

int sdb__attrs_check_chunk(sdb__txn *t, const uint8_t *key, const sdb__seg *g,
                           const uint8_t *dead, size_t dead_len,
                           void (*problem)(void *ctx, uint32_t row, const char *msg), void *ctx)
{
    sdb__val av;
    int rc = sdb__get(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN, &av);
    if (rc == SDB_ENOTFOUND) {
        problem(ctx, UINT32_MAX, "has no attrs value (tags and properties)");
        return SDB_OK;
    }
    if (rc) return rc;
    sdb__attrs a;
    if (sdb__attrs_open(av.p, av.len, &a) != SDB_OK) {
        problem(ctx, UINT32_MAX, "its attrs value does not open");
        return SDB_OK;
    }
    if (a.n != g->n) {
        char m[120];
        snprintf(m, sizeof m, "its attrs value has %u rows, the segment %u", a.n, g->n);
        problem(ctx, UINT32_MAX, m);
        return SDB_OK;
    }
    /* The pre-aggregates describe every row of the chunk, dead or not (as
     * its header does until the purge): recounted from the columns. */
    for (uint32_t k = 0; k < a.n_keys && (a.flags & SDB__ATTR_PREAGG); k++) {
        if (a.n_pre[k] < 0) continue;
        uint64_t rows = 0;
        for (int j = 0; j < a.n_pre[k]; j++) {
            uint32_t id;
            sdb__mom m, want;
            memcpy(&id, a.pre[k] + (size_t)j * PRE_ENT, 4);
            memcpy(&m, a.pre[k] + (size_t)j * PRE_ENT + 8, sizeof m);
            sdb__mom_init(&want);
            for (uint32_t i = 0; i < g->n; i++)
                if (sdb__seg_ld(a.key_col[k], a.key_w[k], i) == id) {
                    sdb__fixed fx;
                    sdb__seg_row(g, i, &fx);
                    sdb__mom_add(&want, fx.value);
                }
            rows += m.n;
            double tol = 1e-9 * (fabs(want.sum) > 1 ? fabs(want.sum) : 1);
            if (m.n != want.n || fabs(m.sum - want.sum) > tol || m.min != want.min ||
                m.max != want.max) {
                char msg[200];
                snprintf(msg, sizeof msg,
                         "property pre-aggregate of key %u value %u: %llu rows sum %.17g, the "
                         "rows have %llu sum %.17g", k, id, (unsigned long long)m.n, m.sum,
                         (unsigned long long)want.n, want.sum);
                problem(ctx, UINT32_MAX, msg);
            }
        }
        if (rows != g->n) {
            char msg[120];
            snprintf(msg, sizeof msg, "property pre-aggregates of key %u count %llu of %u rows", k,
                     (unsigned long long)rows, g->n);
            problem(ctx, UINT32_MAX, msg);
        }
    }
    sdb__acache *cache;
    if ((rc = sdb__acache_new(&cache))) return rc;
    sdb__buf have = {0}, want = {0}, scratch = {0};
    uint32_t project = sdb__rd32(key);
    for (uint32_t i = 0; i < g->n && rc == SDB_OK; i++) {
        if ((size_t)i / 8 < dead_len && (dead[i / 8] >> (i % 8) & 1u)) continue;
        have.len = want.len = 0;
        rc = record_words(t, cache, project, sdb__seg_ref(g, i), &scratch, &want);
        if (rc == SDB_ENOTFOUND) { /* the row checks report a missing record */
            rc = SDB_OK;
            continue;
        }
        if (rc == SDB_ECORRUPT) {
            problem(ctx, i, "its row record does not decode, or a tag or property of it has "
                            "no dictionary id");
            rc = SDB_OK;
            continue;
        }
        if (rc || (rc = value_words(&a, i, &have))) break;
        sdb__arow h, w;
        sdb__arow_of((const uint32_t *)(const void *)have.p, &h);
        sdb__arow_of((const uint32_t *)(const void *)want.p, &w);
        bool tags_ok = (a.flags & SDB__ATTR_NO_TAGS) ||
                       (h.n_tags == w.n_tags && memcmp(h.tags, w.tags, 4ull * h.n_tags) == 0);
        /* Each kept key's value must be the record's; with every key kept,
         * the record has no other. */
        bool kv_ok = true;
        for (uint32_t m = 0; m < w.n_kv; m++) {
            int k = sdb__attrs_key(&a, w.kv[2 * m]);
            if (k < 0) kv_ok = kv_ok && (a.flags & SDB__ATTR_SOME_KEYS);
            else kv_ok = kv_ok && sdb__seg_ld(a.key_col[k], a.key_w[k], i) == w.kv[2 * m + 1];
        }
        uint32_t kept = 0;
        for (uint32_t m = 0; m < w.n_kv; m++) kept += sdb__attrs_key(&a, w.kv[2 * m]) >= 0;
        kv_ok = kv_ok && h.n_kv == kept;
        if (!tags_ok) problem(ctx, i, "its tags differ from the row record's");
        if (!kv_ok) problem(ctx, i, "its properties differ from the row record's");
    }
    sdb__acache_free(cache);
    sdb__buf_free(&have);
    sdb__buf_free(&want);
    sdb__buf_free(&scratch);
    return rc;
}

/* ---------------------------------------------------------------- query */

int sdb__attrs_plan(sdb__plan *p)
{
    const sdb__query *q = p->q;
    if (!p->need_row) return SDB_OK;
    sdb__aplan *a = calloc(1, sizeof *a);
    if (!a) return SDB_ENOMEM;
    p->attrs = a;
    a->tags = malloc(sizeof *a->tags * (q->tags.n + 1));
    a->prop_key = calloc(q->n_props + 1, sizeof *a->prop_key);
    a->prop_bits = calloc(q->n_props + 1, sizeof *a->prop_bits);
    a->prop_nbits = calloc(q->n_props + 1, sizeof *a->prop_nbits);
    a->prop_set = calloc(q->n_props + 1, sizeof *a->prop_set);
    if (!a->tags || !a->prop_key || !a->prop_bits || !a->prop_nbits || !a->prop_set)
        return SDB_ENOMEM;
    a->n_props = q->n_props;
    /* The fold gives every tag and key of a folded row an id: one that has
     * none is on no folded row, and no row can pass. */
    for (uint32_t i = 0; i < q->tags.n; i++) {
        uint32_t id;
        int rc = sdb__dict_id(p->t, p->project, SDB_DICT_TAG, q->tags.v[i].p, q->tags.v[i].len, 0,
                              &id);
        if (rc == SDB_ENOTFOUND) p->empty = true;
        else if (rc) return rc;
        else a->tags[a->n_tags++] = id;
    }
    qsort(a->tags, a->n_tags, sizeof *a->tags, cmp_u32);
    uint32_t nb = sdb__dict_max(p->t, p->project, SDB_DICT_PROP) + 1;
    for (uint32_t k = 0; k < q->n_props; k++) {
        int rc = sdb__dict_id(p->t, p->project, SDB_DICT_PKEY, q->props[k].key.p,
                              q->props[k].key.len, 0, &a->prop_key[k]);
        if (rc == SDB_ENOTFOUND) p->empty = true;
        else if (rc) return rc;
        if (!(a->prop_bits[k] = calloc((nb + 63) / 64, sizeof(uint64_t)))) return SDB_ENOMEM;
        a->prop_nbits[k] = nb;
        uint32_t m = 0;
        for (uint32_t v = 0; v < q->props[k].values.n; v++) {
            uint32_t id;
            if (sdb__dict_id(p->t, p->project, SDB_DICT_PROP, q->props[k].values.v[v].p,
                             q->props[k].values.v[v].len, 0, &id) == SDB_OK &&
                id < nb) {
                a->prop_bits[k][id / 64] |= 1ull << (id % 64);
                if (id < 256) a->prop_set[k][id / 8] |= (uint8_t)(1u << id % 8);
                m++;
            }
        }
        if (m == 0) p->empty = true;
    }
    for (uint32_t k = 0; k < q->n_group; k++) {
        if (q->group[k].kind != SDB_GB_PROP) continue;
        int rc = sdb__dict_id(p->t, p->project, SDB_DICT_PKEY, q->group[k].key.p,
                              q->group[k].key.len, 0, &a->gb_key[k]);
        if (rc && rc != SDB_ENOTFOUND) return rc;
    }
    return SDB_OK;
}

void sdb__attrs_plan_free(sdb__plan *p)
{
    sdb__aplan *a = p->attrs;
    if (!a) return;
    for (uint32_t k = 0; a->prop_bits && k < a->n_props; k++) free(a->prop_bits[k]);
    free(a->prop_bits);
    free(a->prop_nbits);
    free(a->prop_set);
    free(a->prop_key);
    free(a->tags);
    free(a);
    p->attrs = NULL;
}

/* The value of chunk `key`, opened (borrowed until the txn's next write):
 * SDB_OK, SDB_ENOTFOUND (none), SDB_ECORRUPT or a store error. */
static int value_of(sdb__txn *t, const uint8_t *key, sdb__attrs *a)
{
    sdb__val av;
    int rc = sdb__get(t, SDB__DB_ATTRS, key, SDB__SEGKEY_LEN, &av);
    return rc ? rc : sdb__attrs_open(av.p, av.len, a);
}

/* Does tag set `ids` (sorted) hold every tag of the query (sorted)? */
static bool set_has_all(const uint8_t *ids, uint32_t n, const uint32_t *want, uint32_t n_want)
{
    uint32_t i = 0;
    for (uint32_t j = 0; j < n_want; j++) {
        uint32_t x = 0;
        while (i < n) {
            memcpy(&x, ids + 4ull * i, 4);
            if (x >= want[j]) break;
            i++;
        }
        if (i == n || x != want[j]) return false;
    }
    return true;
}

/* The rows of a chunk with dead rows as the plan's copy has them (its live
 * rows, in order): map[i] is plan row i's row in the chunk. SDB_OK, or
 * SDB_ENOTFOUND when the live rows are not n_rows (the columns do not
 * serve), or an error. */
static int live_map(const sdb__plan *p, const uint8_t *key, uint32_t n_chunk, uint32_t n_rows,
                    uint32_t *map)
{
    sdb__val bm = {NULL, 0};
    int rc = sdb__get(p->t, SDB__DB_DEAD, key, SDB__SEGKEY_LEN, &bm);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    const uint8_t *d = bm.p;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n_chunk; i++) {
        if ((size_t)i / 8 < bm.len && (d[i / 8] >> (i % 8) & 1u)) continue;
        if (m < n_rows) map[m] = i;
        m++;
    }
    return m == n_rows ? SDB_OK : SDB_ENOTFOUND;
}

/* Column col (width w) of the chunk, as the plan's rows see it: itself, or
 * its live rows copied to *at (map set). */
static const uint8_t *plan_col(const uint8_t *col, unsigned w, const uint32_t *map, uint32_t n,
                               uint8_t **at)
{
    if (!map) return col;
    uint8_t *out = *at;
    for (uint32_t i = 0; i < n; i++) memcpy(out + (size_t)w * i, col + (size_t)w * map[i], w);
    *at += (size_t)w * n;
    return out;
}

int sdb__aseg_open(sdb__aseg *s, const sdb__plan *p, const uint8_t *key, uint32_t n_rows)
{
    const sdb__query *q = p->q;
    const sdb__aplan *ap = p->attrs;
    memset(s, 0, sizeof *s);
    if (sdb__attrs_off) return 0;
    sdb__attrs a;
    int rc = value_of(p->t, key, &a);
    if (rc == SDB_ENOTFOUND) return 0;
    if (rc) return rc;
    if (q->tags.n && (a.flags & SDB__ATTR_NO_TAGS)) return 0;
    /* A key the chunk does not keep: absent from every row when it keeps
     * every key, unknown (read the records) when it keeps only some. */
    for (uint32_t k = 0; k < q->n_props; k++)
        if (sdb__attrs_key(&a, ap->prop_key[k]) < 0) return (a.flags & SDB__ATTR_SOME_KEYS) ? 0 : 2;
    int at_g[SDB_MAX_GROUP_BY];
    for (uint32_t k = 0; k < q->n_group; k++) {
        at_g[k] = -1;
        if (q->group[k].kind != SDB_GB_PROP) continue;
        at_g[k] = ap->gb_key[k] ? sdb__attrs_key(&a, ap->gb_key[k]) : -1;
        if (at_g[k] < 0 && (a.flags & SDB__ATTR_SOME_KEYS)) return 0;
    }
    /* The tag filter: the sets that hold every tag asked for. A chunk
     * with one set for every row (set_w 0) passes whole or not at all. */
    bool tag_col = false;
    if (q->tags.n) {
        uint32_t n_sets = a.n_sets ? a.n_sets : 1;
        if (!(s->set_pass = calloc((n_sets + 63) / 64, sizeof(uint64_t)))) return SDB_ENOMEM;
        bool any = false;
        for (uint32_t i = 0; i < a.n_sets; i++) {
            const uint8_t *ids;
            uint32_t n;
            sdb__attrs_set(&a, i, &ids, &n);
            if (set_has_all(ids, n, ap->tags, ap->n_tags)) {
                s->set_pass[i / 64] |= 1ull << (i % 64);
                any = true;
            }
        }
        if (!any) return 2;
        tag_col = a.set_w != 0;
    }
    /* The plan's copy of a chunk without its dead rows: the columns it
     * reads are copied to its rows once, so that the selection reads them
     * as it reads a dimension's. */
    uint32_t *map = NULL;
    size_t own = 0;
    if (a.n != n_rows) {
        if (!(map = malloc(sizeof *map * (n_rows ? n_rows : 1)))) return SDB_ENOMEM;
        if ((rc = live_map(p, key, a.n, n_rows, map))) {
            free(map);
            return rc == SDB_ENOTFOUND ? 0 : rc;
        }
        own = (size_t)(tag_col ? a.set_w : 0) * n_rows;
        for (uint32_t k = 0; k < q->n_props; k++) own += (size_t)a.key_w[sdb__attrs_key(&a, ap->prop_key[k])] * n_rows;
        for (uint32_t k = 0; k < q->n_group; k++)
            if (at_g[k] >= 0) own += (size_t)a.key_w[at_g[k]] * n_rows;
        if (!(s->own = malloc(own ? own : 1))) {
            free(map);
            return SDB_ENOMEM;
        }
    }
    uint32_t n_fc = (tag_col ? 1u : 0u) + q->n_props;
    s->fc = n_fc <= sizeof s->fc_in / sizeof *s->fc_in ? s->fc_in : malloc(sizeof *s->fc * n_fc);
    if (!s->fc) {
        free(map);
        return SDB_ENOMEM;
    }
    uint8_t *at = s->own;
    if (tag_col) {
        /* (set indexes past the sets: a corrupt value, and no row passes) */
        for (uint32_t i = 0; i < 256 && i < a.n_sets; i++)
            if (s->set_pass[i / 64] >> (i % 64) & 1) s->set_set[i / 8] |= (uint8_t)(1u << i % 8);
        s->fc[s->n_fc++] = (sdb__fcol){plan_col(a.set_col, a.set_w, map, n_rows, &at), a.set_w,
                                       s->set_pass, a.n_sets, s->set_set};
    }
    for (uint32_t k = 0; k < q->n_props; k++) {
        int ak = sdb__attrs_key(&a, ap->prop_key[k]);
        s->fc[s->n_fc++] = (sdb__fcol){plan_col(a.key_col[ak], a.key_w[ak], map, n_rows, &at),
                                       a.key_w[ak], ap->prop_bits[k], ap->prop_nbits[k],
                                       ap->prop_set[k]};
    }
    for (uint32_t k = 0; k < q->n_group; k++) {
        if (q->group[k].kind != SDB_GB_PROP) continue;
        s->gcol[k] = at_g[k] < 0 ? NULL : plan_col(a.key_col[at_g[k]], a.key_w[at_g[k]], map, n_rows, &at);
        s->gw[k] = at_g[k] < 0 ? 0 : a.key_w[at_g[k]];
    }
    free(map);
    return 1;
}

void sdb__aseg_close(sdb__aseg *s)
{
    if (s->fc != s->fc_in) free(s->fc);
    free(s->set_pass);
    free(s->own);
    s->fc = NULL;
    s->set_pass = NULL;
    s->own = NULL;
    s->n_fc = 0;
}

int sdb__aseg_preagg(const sdb__plan *p, sdb__gtab *gt, const uint8_t *key, uint32_t n_rows,
                     int k, const uint32_t *raw_const, uint32_t iv)
{
    const sdb__aplan *ap = p->attrs;
    if (sdb__attrs_off || !ap || p->q->tags.n || p->q->n_props > 1) return 1;
    /* The key whose moments serve: the group-by's, which must then be the
     * filter's too when there is one. */
    uint32_t pk = k >= 0 ? ap->gb_key[k] : p->q->n_props ? ap->prop_key[0] : 0;
    if (!pk || (k >= 0 && p->q->n_props && ap->prop_key[0] != pk)) return 1;
    sdb__attrs a;
    int rc = value_of(p->t, key, &a);
    if (rc == SDB_ENOTFOUND) return 1;
    if (rc) return rc;
    /* A chunk with dead rows (the plan's copy has fewer rows) is scanned:
     * its moments count them. */
    int at = sdb__attrs_key(&a, pk);
    if (a.n != n_rows || at < 0 || a.n_pre[at] < 0) return 1;
    uint32_t m = (uint32_t)a.n_pre[at], ids[SDB__PREAGG_MAX], ent[SDB__PREAGG_MAX], grp[SDB__PREAGG_MAX];
    uint64_t total = 0;
    uint32_t kept = 0;
    for (uint32_t j = 0; j < m; j++) {
        sdb__mom mm;
        uint32_t id;
        memcpy(&id, a.pre[at] + (size_t)j * PRE_ENT, 4);
        memcpy(&mm, a.pre[at] + (size_t)j * PRE_ENT + 8, sizeof mm);
        total += mm.n;
        if (p->q->n_props &&
            !(id < ap->prop_nbits[0] && (ap->prop_bits[0][id / 64] >> (id % 64) & 1)))
            continue;
        ids[kept] = id;
        ent[kept++] = j;
    }
    if (total != n_rows) return 1;
    if (kept == 0) return SDB_OK; /* no row passes: no group, as a scan leaves none */
    uint32_t *raw[SDB_MAX_GROUP_BY] = {NULL};
    if (k >= 0) raw[k] = ids;
    if ((rc = sdb__gtab_groups(gt, raw, raw_const, kept, grp))) return rc;
    for (uint32_t j = 0; j < kept; j++) {
        sdb__mom mm;
        memcpy(&mm, a.pre[at] + (size_t)ent[j] * PRE_ENT + 8, sizeof mm);
        sdb__slot_add_mom(&gt->slot[(size_t)grp[j] * gt->n_int + iv], mm.n, &mm);
    }
    return SDB_OK;
}
