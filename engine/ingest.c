/* Ingest: batches of validated scores into one durable write transaction.
 *
 * The acknowledgement is the commit. A batch writes, per score: the row
 * record (engine/row.c's blocks, by a row ref that grows with ingest time;
 * the fold later moves rows past the project's fold mark into column
 * segments) and, for an id the client chose, an entry of the id index
 * (engine/ids.c, written as sorted runs at the end of the txn). A score
 * whose id exists replaces the old one everywhere: the old row leaves the
 * pending count or gets a tombstone in its segment chunk (so no aggregate
 * keeps its value) and its record is marked gone, before the new one is
 * written, inside the same transaction.
 *
 * The transaction body reads only the batch and the store, so when the map
 * fills it can be rerun from the start after the map grows.
 */
#include "internal.h"

#include <sys/random.h>
#include <time.h>

#define ARENA_BLOCK (64u << 10)

typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

struct sdb_batch {
    sdb__score *rows;
    size_t n, cap;
    block *arena;
    uint64_t rng; /* for generated ids */
};

int sdb_batch_new(sdb_batch **out)
{
    sdb_batch *b = calloc(1, sizeof *b);
    if (!b) return SDB_ENOMEM;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)b;
    b->rng = seed;
    *out = b;
    return SDB_OK;
}

void sdb_batch_clear(sdb_batch *b)
{
    b->n = 0;
    /* Keep the first block for reuse; free the rest. */
    block *k = b->arena;
    if (!k) return;
    block *next = k->next;
    while (next) {
        block *x = next->next;
        free(next);
        next = x;
    }
    k->next = NULL;
    k->used = 0;
}

void sdb_batch_free(sdb_batch *b)
{
    if (!b) return;
    for (block *k = b->arena, *x; k; k = x) {
        x = k->next;
        free(k);
    }
    free(b->rows);
    free(b);
}

void *sdb__batch_alloc(sdb_batch *b, size_t len)
{
    len = (len + 7) & ~(size_t)7;
    if (!b->arena || b->arena->cap - b->arena->used < len) {
        size_t cap = len > ARENA_BLOCK ? len : ARENA_BLOCK;
        block *k = malloc(sizeof *k + cap);
        if (!k) return NULL;
        k->used = 0;
        k->cap = cap;
        /* A big one-off goes behind the current block so the current one
         * keeps serving small strings. */
        if (b->arena && len > ARENA_BLOCK) {
            k->next = b->arena->next;
            b->arena->next = k;
            k->used = len;
            return k->data;
        }
        k->next = b->arena;
        b->arena = k;
    }
    void *p = b->arena->data + b->arena->used;
    b->arena->used += len;
    return p;
}

int sdb__batch_str(sdb_batch *b, const char *p, size_t len, sdb__str *out)
{
    char *d = sdb__batch_alloc(b, len + 1);
    if (!d) return SDB_ENOMEM;
    memcpy(d, p, len);
    d[len] = 0;
    out->p = d;
    out->len = (uint32_t)len;
    return SDB_OK;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Generated ids are version 7 UUIDs (RFC 9562): 48 bits of Unix
 * milliseconds, the version, 12 random bits, the variant, and 62 bits that
 * RFC 9562 section 6.2 lets an implementation fill with a counter: here
 * the score's row ref. So a generated id needs no entry in the `ids`
 * index (an entry costs ~85 bytes and a B-tree insert per score, a fifth of
 * what ingest wrote): the id itself says where its row is, and the row
 * keeps the id string to prove it. The ids still sort by creation time.
 *
 * The ref is known only inside the ingest transaction, so parsing writes
 * the time and random part and ingest_txn the last 16 digits. */
#define GEN_ID_LEN 36u
#define REF_MASK ((1ull << 62) - 1)

static const char hexdig[] = "0123456789abcdef";

/* The last 16 hex digits (and their dash): variant and row ref. */
static void gen_id_write_ref(char *buf, uint64_t ref)
{
    uint64_t lo = (ref & REF_MASK) | (2ull << 62);
    int o = 19;
    for (int i = 0; i < 16; i++) {
        if (i == 4) buf[o++] = '-';
        buf[o++] = hexdig[(lo >> (60 - 4 * i)) & 15];
    }
}

static void gen_id_write(char *buf, uint64_t ms, uint64_t rand12, uint64_t ref)
{
    uint64_t hi = ms << 16 | 0x7000u | (rand12 & 0x0FFFu);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 8 || i == 12) buf[o++] = '-';
        buf[o++] = hexdig[(hi >> (60 - 4 * i)) & 15];
    }
    buf[o++] = '-';
    gen_id_write_ref(buf, ref);
}

int sdb__batch_gen_id(sdb_batch *b, sdb__str *out)
{
    char buf[GEN_ID_LEN + 1];
    gen_id_write(buf, (uint64_t)sdb_now_ms(), splitmix(&b->rng), splitmix(&b->rng) & REF_MASK);
    buf[GEN_ID_LEN] = 0;
    return sdb__batch_str(b, buf, GEN_ID_LEN, out);
}

/* The row ref a generated id carries, or 0 when `id` is not of that shape
 * (lower-case hex, version 7, RFC 9562 variant). */
static uint64_t gen_id_ref(const char *id, size_t len)
{
    if (len != GEN_ID_LEN || id[14] != '7') return 0;
    uint64_t lo = 0;
    for (size_t i = 0; i < GEN_ID_LEN; i++) {
        char c = id[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
            continue;
        }
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16u;
        if (d > 15) return 0;
        if (i >= 19) lo = lo << 4 | d;
    }
    if (lo >> 62 != 2) return 0;
    return lo & REF_MASK;
}

/* sdb__id_lookup with the id's index hash h (sdb__idx_hash) at hand. */
static int id_lookup_h(sdb__txn *t, sdb__idx *ix, uint32_t project, const char *id, size_t len,
                       uint64_t h, uint64_t next_ref, int in_runs, uint64_t *out_ref)
{
    /* A client's own UUIDv7 has the generated shape too, with 62 random
     * bits where the ref would be: far past any ref handed out, so no row
     * is read for it. */
    uint64_t ref = gen_id_ref(id, len);
    if (ref && ref < next_ref) {
        sdb__val v;
        sdb__row row;
        int rc = sdb__row_get(t, project, ref, &v);
        if (rc == SDB_OK && (rc = sdb__row_decode(v.p, v.len, &row)) == SDB_OK &&
            row.id.len == len && memcmp(row.id.p, id, len) == 0) {
            *out_ref = ref;
            return SDB_OK;
        }
        if (rc && rc != SDB_ENOTFOUND) return rc;
    }
    if (len == 0 || len > SDB_MAX_STR) return SDB_ENOTFOUND;
    return sdb__idx_find(t, ix, project, id, len, h, in_runs, out_ref);
}

int sdb__id_lookup(sdb__txn *t, sdb__idx *ix, uint32_t project, const char *id, size_t len,
                   uint64_t next_ref, int in_runs, uint64_t *out_ref)
{
    return id_lookup_h(t, ix, project, id, len, sdb__idx_hash(project, id, len), next_ref,
                       in_runs, out_ref);
}

static uint64_t hash_of(sdb__str s) { return s.p ? sdb__hash(s.p, s.len) : 0; }

int sdb__batch_push(sdb_batch *b, const sdb__score *sc)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        sdb__score *r = realloc(b->rows, cap * sizeof *r);
        if (!r) return SDB_ENOMEM;
        b->rows = r;
        b->cap = cap;
    }
    /* The writer is one thread for the whole store, the parsers are many:
     * every string the write txn would hash is hashed here instead
     * (XXH3 was 8% of the writer's samples in a 1M UUIDv4 ingest, an id
     * hashed three times). A generated id is not final yet, and needs no
     * hash: it never reaches the id index. */
    sdb__score *r = &b->rows[b->n++];
    *r = *sc;
    r->id_h = r->id_generated ? 0 : hash_of(r->id);
    r->trace_h = hash_of(r->trace_id);
    r->name_h = hash_of(r->name);
    for (int d = 0; d < SDB_N_DIMS; d++) r->dim_h[d] = hash_of(r->dims[d]);
    return SDB_OK;
}

size_t sdb_batch_rows(const sdb_batch *b) { return b->n; }

const char *sdb_batch_id(const sdb_batch *b, size_t i)
{
    return i < b->n ? b->rows[i].id.p : NULL;
}

/* ---------------------------------------------------------------- commit */

/* Within one write transaction the same few names, models and prompt
 * versions repeat on every row: a small cache in front of the dictionary
 * saves most B-tree lookups. It lives for one attempt of the transaction
 * (ids created in an aborted attempt must not outlive it). */
#define DCACHE 4096u
typedef struct dcache_ent {
    uint64_t h;
    const char *p;
    uint32_t len, id;
    uint32_t project;
    uint8_t dict, used;
} dcache_ent;

typedef struct ingest_ctx {
    uint32_t project;
    sdb_batch *b;
    int64_t now;
    sdb__buf rec;
    dcache_ent *cache; /* DCACHE entries, or NULL */
    uint32_t cache_n;
    sdb__idx *ix; /* the client ids this txn adds (engine/ids.c) */
    uint8_t *maybe; /* per row: some id run may hold its id (sdb__idx_probe) */
    uint32_t lmax[2]; /* highest id of the tag, property key dictionaries; */
    uint8_t lmax_known[2]; /* read once per ingest_txn (list_ids) */
} ingest_ctx;

/* sh is sdb__hash of s (hash_of). */
static int dict_cached(sdb__txn *t, ingest_ctx *c, uint32_t project, int dict, sdb__str s,
                       uint64_t sh, uint32_t *out)
{
    if (!s.p) {
        *out = 0;
        return SDB_OK;
    }
    if (!c || !c->cache) return sdb__dict_id(t, project, dict, s.p, s.len, 1, out);
    uint64_t h = sh ^ ((uint64_t)dict << 56) ^ ((uint64_t)project << 32);
    uint32_t j = (uint32_t)h & (DCACHE - 1);
    while (c->cache[j].used) {
        dcache_ent *e = &c->cache[j];
        if (e->h == h && e->dict == dict && e->project == project && e->len == s.len &&
            memcmp(e->p, s.p, s.len) == 0) {
            *out = e->id;
            return SDB_OK;
        }
        j = (j + 1) & (DCACHE - 1);
    }
    int rc = sdb__dict_id(t, project, dict, s.p, s.len, 1, out);
    if (rc) return rc;
    if (c->cache_n * 2 >= DCACHE) { /* keep probes short: start over */
        memset(c->cache, 0, DCACHE * sizeof *c->cache);
        c->cache_n = 0;
        j = (uint32_t)h & (DCACHE - 1);
    }
    c->cache[j] = (dcache_ent){h, s.p, s.len, *out, project, (uint8_t)dict, 1};
    c->cache_n++;
    return SDB_OK;
}

/* The ids a version 4 record keeps for sc's tags and properties
 * (sdb__row_encode_ids: tags, then key and value of each property), made
 * here, in the row's own transaction: property values have theirs already
 * (SDB_DICT_PROP, for group-bys), tags and keys get theirs while their
 * dictionary holds fewer than sdb__row_id_cap (65535; the fold would give them
 * ids anyway). Past the cap, or for a value whose id is past it (a
 * property with a value per score, such as a request id, fills
 * SDB_DICT_PROP), the record keeps the text. 0: no ids (too many lists to
 * hold here), a version 3 record. */
#define LIST_IDS 64u
uint32_t sdb__row_id_cap = SDB__ROW_ID_CAP;
static int list_ids(sdb__txn *t, ingest_ctx *c, const sdb__score *sc, const uint32_t *vals,
                    uint32_t *ids)
{
    if (sc->n_tags + 2ull * sc->n_props > LIST_IDS) return 0;
    for (uint32_t i = 0; i < sc->n_tags + sc->n_props; i++) {
        int k = i < sc->n_tags ? 0 : 1, dict = k ? SDB_DICT_PKEY : SDB_DICT_TAG;
        sdb__str s = k ? sc->props[2 * (i - sc->n_tags)] : sc->tags[i];
        uint32_t *id = k ? &ids[sc->n_tags + 2 * (i - sc->n_tags)] : &ids[i];
        if (!c->lmax_known[k]) {
            c->lmax[k] = sdb__dict_max(t, c->project, dict);
            c->lmax_known[k] = 1;
        }
        int rc;
        if (!s.p) {
            *id = 0;
            continue;
        }
        if (c->lmax[k] < sdb__row_id_cap) {
            if ((rc = dict_cached(t, c, c->project, dict, s, hash_of(s), id))) return rc;
            if (*id > c->lmax[k]) c->lmax[k] = *id;
        } else if ((rc = sdb__dict_id(t, c->project, dict, s.p, s.len, 0, id))) {
            if (rc != SDB_ENOTFOUND) return rc;
            *id = 0;
        }
        if (*id > sdb__row_id_cap) *id = 0;
    }
    for (uint32_t p = 0; p < sc->n_props; p++)
        ids[sc->n_tags + 2 * p + 1] = vals[p] <= sdb__row_id_cap ? vals[p] : 0;
    return 1;
}

/* Take the score with row ref `ref` out of every aggregate and the row
 * store. A score not yet folded only leaves the pending count; *pending
 * (when not NULL) collects the change to the project's pending count, or
 * the count is updated at once. */
static int unlink_row(sdb__txn *t, uint32_t project, uint64_t ref, int64_t *pending)
{
    sdb__val v;
    int rc = sdb__row_get(t, project, ref, &v);
    if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
    sdb__row row;
    if ((rc = sdb__row_decode(v.p, v.len, &row))) return rc;
    sdb__fixed fx = row.fx;
    uint64_t folded;
    if ((rc = sdb__folded_of(t, project, &folded))) return rc;
    if (ref > folded) { /* not folded yet: only the pending count knows it */
        if (pending)
            --*pending;
        else
            rc = sdb__pending_add(t, project, -1);
    } else {
        rc = sdb__dead_mark(t, &fx);
    }
    if (rc) return rc;
    return sdb__row_del(t, project, ref);
}

int sdb__unlink_row(sdb__txn *t, uint32_t project, uint64_t ref)
{
    return unlink_row(t, project, ref, NULL);
}

/* Probe the id runs for every client id of the batch at once
 * (sdb__idx_probe says why); c->maybe stays NULL without memory for it,
 * and every id then searches the runs itself. */
static int probe_batch(sdb__txn *t, ingest_ctx *c)
{
    free(c->maybe);
    c->maybe = NULL;
    size_t n = c->b->n, m = 0;
    uint64_t *h = malloc(sizeof *h * (n ? n : 1));
    uint32_t *at = malloc(sizeof *at * (n ? n : 1));
    uint8_t *maybe = malloc(n ? n : 1), *hit = malloc(n ? n : 1);
    int rc = SDB_OK;
    if (h && at && maybe && hit) {
        for (size_t i = 0; i < n; i++) {
            const sdb__score *sc = &c->b->rows[i];
            maybe[i] = 1; /* generated ids never reach the index */
            if (sc->id_generated || sc->id.len == 0 || sc->id.len > SDB_MAX_STR) continue;
            h[m] = sdb__idx_hash_of(c->project, sc->id_h);
            at[m++] = (uint32_t)i;
        }
        if ((rc = sdb__idx_probe(t, c->ix, h, m, hit)) == SDB_OK) {
            for (size_t j = 0; j < m; j++) maybe[at[j]] = hit[j];
            c->maybe = maybe;
            maybe = NULL;
        }
    }
    free(h);
    free(at);
    free(maybe);
    free(hit);
    return rc == SDB_ENOMEM ? SDB_OK : rc;
}

static int ingest_txn(sdb__txn *t, void *arg)
{
    ingest_ctx *c = arg;
    uint64_t next_ref = 1, last = 0;
    int rc = sdb__meta_get_u64(t, "next_ref", &next_ref);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    rc = sdb__meta_get_u64(t, "last_ingest", &last);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    /* Ingest times never go backwards, so row refs are in ingest-time
     * order and a fold can stop at the first entry past its watermark. */
    int64_t now = c->now > (int64_t)last ? c->now : (int64_t)last;
    int64_t pending = (int64_t)c->b->n;
    if ((rc = probe_batch(t, c))) return rc;
    c->lmax_known[0] = c->lmax_known[1] = 0;

    for (size_t i = 0; i < c->b->n; i++) {
        const sdb__score *sc = &c->b->rows[i];
        sdb__fixed fx;
        memset(&fx, 0, sizeof fx);
        fx.project = c->project;
        fx.ts = sc->has_ts ? sc->ts : now;
        fx.ingested = now;
        fx.type = sc->type;
        fx.source = sc->source;
        fx.ref = next_ref++;
        fx.trace = sc->trace_h;
        if (fx.trace == 0 && sc->trace_id.p) fx.trace = 1;
        if ((rc = dict_cached(t, c, c->project, SDB_DICT_NAME, sc->name, sc->name_h, &fx.name)))
            return rc;
        for (int d = 0; d < SDB_N_DIMS; d++)
            if ((rc = dict_cached(t, c, c->project, d, sc->dims[d], sc->dim_h[d], &fx.dims[d])))
                return rc;
        uint32_t label = 0;
        if (sc->type == SDB_CATEGORICAL) {
            if ((rc = dict_cached(t, c, c->project, SDB_DICT_CATEGORY, sc->label,
                                  hash_of(sc->label), &label)))
                return rc;
            fx.value = (double)label;
        } else {
            fx.value = sc->value;
        }
        uint32_t vals[LIST_IDS], ids[LIST_IDS];
        for (uint32_t p = 0; p < sc->n_props; p++) {
            uint32_t pid;
            if ((rc = dict_cached(t, c, c->project, SDB_DICT_PROP, sc->props[2 * p + 1],
                                  hash_of(sc->props[2 * p + 1]), &pid)))
                return rc;
            if (p < LIST_IDS) vals[p] = pid;
        }
        int with_ids = sc->n_tags || sc->n_props ? list_ids(t, c, sc, vals, ids) : 0;
        if (with_ids < 0) return with_ids;

        if (sc->id_generated) {
            /* New by construction; the id names its row (no index entry).
             * The placeholder is the batch's own arena memory. */
            SDB_ASSERT(sc->id.len == GEN_ID_LEN);
            gen_id_write_ref((char *)(uintptr_t)sc->id.p, fx.ref);
        } else {
            /* Replacement by id: the old score leaves every aggregate in
             * this txn, so no reader ever counts both. */
            uint64_t old_ref, h = sdb__idx_hash_of(c->project, sc->id_h);
            rc = id_lookup_h(t, c->ix, c->project, sc->id.p, sc->id.len, h, fx.ref,
                             c->maybe ? c->maybe[i] : 1, &old_ref);
            if (rc == SDB_OK) {
                if ((rc = unlink_row(t, c->project, old_ref, &pending))) return rc;
                sdb__idx_forget(c->ix, h, c->project, old_ref);
            } else if (rc != SDB_ENOTFOUND) {
                return rc;
            }
            if ((rc = sdb__idx_add(c->ix, c->project, h, fx.ref))) return rc;
        }
        if ((rc = sdb__row_encode_ids(&fx, sc, with_ids ? ids : NULL, &c->rec))) return rc;
        if ((rc = sdb__row_put_v4(t, c->project, fx.ref, c->rec.p, c->rec.len))) return rc;
    }
    if ((rc = sdb__pending_add(t, c->project, pending))) return rc;
    if ((rc = sdb__meta_put_u64(t, "next_ref", next_ref))) return rc;
    return sdb__meta_put_u64(t, "last_ingest", (uint64_t)now);
}

static void cache_reset(dcache_ent *cache, uint32_t *n)
{
    if (cache) memset(cache, 0, DCACHE * sizeof *cache);
    *n = 0;
}

static int ingest_one_txn(sdb__txn *t, void *arg)
{
    ingest_ctx *c = arg;
    cache_reset(c->cache, &c->cache_n); /* a retry starts with no cached ids */
    sdb__idx_reset(c->ix);
    int rc = ingest_txn(t, c);
    return rc ? rc : sdb__idx_flush(t, c->ix);
}

int sdb_store_ingest(sdb_store *s, uint32_t project, sdb_batch *b, int64_t now_ms)
{
    if (b->n == 0) return SDB_OK;
    ingest_ctx c = {.project = project, .b = b, .now = now_ms};
    c.cache = malloc(DCACHE * sizeof *c.cache); /* without it: uncached lookups */
    int rc = sdb__idx_new(&c.ix);
    if (rc == SDB_OK) rc = sdb__write(s, ingest_one_txn, &c);
    sdb__idx_free(c.ix);
    free(c.maybe);
    sdb__buf_free(&c.rec);
    free(c.cache);
    return rc;
}

/* ------------------------------------------------- group commit (server) */

/* Several batches, possibly of different projects, in one transaction: the
 * query server's writer merges the ingest requests that arrived while the
 * previous commit was running, so that N concurrent requests cost one
 * fsync instead of N. ingest_txn reads and writes next_ref and last_ingest
 * through the txn, so running it once per batch inside one txn gives the
 * same rows as N separate commits. */
typedef struct many_ctx {
    const uint32_t *projects;
    sdb_batch *const *b;
    size_t n;
    int64_t now;
    sdb__buf rec;
    dcache_ent *cache;
    uint32_t cache_n;
    sdb__idx *ix;
} many_ctx;

static int ingest_many_txn(sdb__txn *t, void *arg)
{
    many_ctx *m = arg;
    cache_reset(m->cache, &m->cache_n); /* a retry starts with no cached ids */
    sdb__idx_reset(m->ix);
    for (size_t i = 0; i < m->n; i++) {
        if (!m->b[i] || m->b[i]->n == 0) continue;
        ingest_ctx c = {.project = m->projects[i], .b = m->b[i], .now = m->now, .rec = m->rec,
                        .cache = m->cache, .cache_n = m->cache_n, .ix = m->ix};
        int rc = ingest_txn(t, &c);
        free(c.maybe);
        m->rec = c.rec; /* keep the grown buffer */
        m->cache_n = c.cache_n;
        if (rc) return rc;
    }
    return sdb__idx_flush(t, m->ix);
}

int sdb_store_ingest_many(sdb_store *s, const uint32_t *projects, sdb_batch *const *b,
                          size_t n, int64_t now_ms)
{
    many_ctx m = {.projects = projects, .b = b, .n = n, .now = now_ms};
    m.cache = malloc(DCACHE * sizeof *m.cache);
    int rc = sdb__idx_new(&m.ix);
    if (rc == SDB_OK) rc = sdb__write(s, ingest_many_txn, &m);
    sdb__idx_free(m.ix);
    sdb__buf_free(&m.rec);
    free(m.cache);
    return rc;
}
