/* The client id index: client score id -> row ref, for replacement by id
 * and GET/DELETE /v1/scores/{id}.
 *
 * Clients send random ids (every Langfuse SDK sends a UUIDv4 per score),
 * and a B-tree keyed by the id string dirties one page per random insert:
 * at 10M scores ingest fell to 53k scores/s and wrote ~2.5 KB a score. So
 * the index is a log-structured merge of sorted runs instead, written
 * sequentially (docs/storage.md draws the format):
 *
 * - An entry is 2 to 8 bytes: 32 bits of a 64-bit hash of (project, id)
 *   (the 32 below the shard's 4) less the top log2(k) that its bucket
 *   implies, and the row ref as an offset from the run's smallest, in the
 *   bytes the run's span needs (5 bytes in a run of 600k ids of a 10M
 *   store); the run's header names its one project. A run whose entries
 *   span projects or 2^32 refs keeps 12-byte entries (the 32 bits, ref
 *   with the project packed above it). The id string itself is not kept:
 *   the row record keeps it, and every hit is checked against the row (a
 *   hash collision, or an entry whose row was replaced or deleted, then
 *   simply does not match). So the stored hash need not be whole: 32 bits
 *   give a false candidate for 1 id in 2,000 at 30M scores (a row read),
 *   and 16-byte entries (format 4: the whole hash, a 64-bit ref) made the
 *   index 16.5 bytes a score. An entry never has to be removed for the
 *   answers to be exact; merges drop the ones whose row is gone.
 * - The hash space is cut into 16 shards by its top 4 bits. A write
 *   transaction collects the ids it adds in memory (sdb__idx) and at its
 *   end writes one sorted run per shard it touched (key "r" | shard |
 *   run number). Runs are size-tiered: when a shard holds F runs of one
 *   size class they are merged into one, in the same transaction. An entry
 *   is therefore rewritten about log_F(n / 256) times over its life, each
 *   time sequentially, and the largest merge at 30M scores moves ~2M
 *   entries (30 MB) of one shard, not the whole index.
 * - A run starts with a bucket directory (u32 offsets of ~8 entries each,
 *   by the hash bits below the shard's), so a probe reads one offset pair
 *   and one or two cache lines of entries: no binary search.
 *
 * A lookup probes every run of the id's shard (about a dozen at 10M
 * scores) and the transaction's own new entries; the rows it names are
 * read only on a hash match.
 */
#include "internal.h"

#define SHARD_BITS 4u
#define N_SHARDS (1u << SHARD_BITS)
#define FANOUT 4u         /* runs of one size class that are merged */
#define LEVEL_BASE 256u   /* entries of the smallest size class */
#define BUCKET_ENTRIES 8u /* average entries per directory bucket */
#define RUN_MAGIC 0x35444953u /* "SID5" */
#define RUN_KEY_LEN 10u      /* 'r', shard, be64 run number */
#define REF_BITS 44u
#define MAX_RUNS 256u        /* per shard; far above what the tiering leaves */

/* An entry in memory. Only the top 36 bits of h are kept in a run (the
 * shard's 4 by the run's key, 32 in the entry): entries sort and compare
 * by those (key_of), then by pr. */
typedef struct entry {
    uint64_t h;
    uint64_t pr; /* ref | project << REF_BITS */
} entry;

#define KEEP_SHIFT (64u - SHARD_BITS - 32u)
static inline uint64_t key_of(uint64_t h) { return h >> KEEP_SHIFT; }

/* Run value: header, u32 off[k + 1], entries of `width` bytes from offset
 * ent_off, then 4 bytes of 0 (so that any field is read by one 4-byte
 * load). k is a power of two, 2^kb, so an entry's bucket is the top kb of
 * its 32 hash bits and the entry keeps the other 32 - kb (the residue) in
 * hbw bytes. Narrow (one project): the residue, then ref - ref_base in
 * width - hbw bytes (1..4). Wide: 4 bytes of residue (hbw 4), u64 ref |
 * project << 44. */
typedef struct run_hdr {
    uint32_t magic, n, k, ent_off;
    uint16_t width, hbw;
    uint32_t project;
    uint64_t ref_base;
} run_hdr;
_Static_assert(sizeof(run_hdr) == 32, "id run header is 32 bytes");
#define W_WIDE 12u
#define RUN_PAD 4u

typedef struct run_view {
    const uint8_t *p;
    run_hdr h;
    uint64_t no; /* run number */
    unsigned shard;
    unsigned rb;   /* residue bits, 32 - kb */
    uint32_t mask; /* the residue's bits */
} run_view;

/* log2 of k, a power of two. */
static inline unsigned log2_k(uint32_t k)
{
    unsigned b = 0;
    while (k > 1) k >>= 1, b++;
    return b;
}

struct sdb__idx {
    entry *e;      /* entries added in this txn, in order */
    uint8_t *dead; /* dead[i]: entry i's row was replaced in this txn */
    size_t n, cap;
    uint32_t *slot; /* open addressing over e: index + 1 */
    size_t n_slot;
    /* Runs of each shard as this txn first saw them (committed pages:
     * they stay valid until the txn ends, and flush writes last). */
    run_view *runs[N_SHARDS];
    uint32_t n_runs[N_SHARDS];
    uint8_t loaded[N_SHARDS];
};

static inline unsigned shard_of(uint64_t h) { return (unsigned)(h >> (64 - SHARD_BITS)); }
static inline uint32_t bucket_bits(uint64_t h) { return (uint32_t)(h >> (64 - SHARD_BITS - 32)); }
static inline uint32_t bucket_of(uint64_t h, uint32_t k)
{
    return (uint32_t)(((uint64_t)bucket_bits(h) * k) >> 32); /* k = 2^kb: the top kb bits */
}
static inline uint64_t pr_ref(uint64_t pr) { return pr & ((1ull << REF_BITS) - 1); }
static inline uint32_t pr_project(uint64_t pr) { return (uint32_t)(pr >> REF_BITS); }

uint64_t sdb__idx_hash_of(uint32_t project, uint64_t id_hash)
{
    /* The project is mixed in (splitmix64's finaliser) so that one id in
     * two projects lands on two unrelated entries. */
    uint64_t z = (uint64_t)project * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return id_hash ^ z ^ (z >> 31);
}

uint64_t sdb__idx_hash(uint32_t project, const char *id, size_t len)
{
    return sdb__idx_hash_of(project, sdb__hash(id, len));
}

int sdb__idx_new(sdb__idx **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? SDB_OK : SDB_ENOMEM;
}

void sdb__idx_reset(sdb__idx *ix)
{
    if (!ix) return;
    ix->n = 0;
    if (ix->slot) memset(ix->slot, 0, ix->n_slot * sizeof *ix->slot);
    for (unsigned s = 0; s < N_SHARDS; s++) {
        free(ix->runs[s]);
        ix->runs[s] = NULL;
        ix->n_runs[s] = 0;
        ix->loaded[s] = 0;
    }
}

void sdb__idx_free(sdb__idx *ix)
{
    if (!ix) return;
    sdb__idx_reset(ix);
    free(ix->e);
    free(ix->dead);
    free(ix->slot);
    free(ix);
}

/* ------------------------------------------------------------------ runs */

static void run_key(uint8_t *k, unsigned shard, uint64_t no)
{
    k[0] = 'r';
    k[1] = (uint8_t)shard;
    sdb__be64(k + 2, no);
}

static int run_open(const void *p, size_t len, uint64_t no, unsigned shard, run_view *out)
{
    if (len < sizeof(run_hdr)) return SDB_ECORRUPT;
    memcpy(&out->h, p, sizeof out->h);
    const run_hdr *h = &out->h;
    if (h->magic != RUN_MAGIC || h->k == 0 || (h->k & (h->k - 1)) ||
        h->ent_off != ((sizeof(run_hdr) + 4ull * (h->k + 1) + 7) & ~7ull) ||
        len != h->ent_off + (uint64_t)h->width * h->n + RUN_PAD)
        return SDB_ECORRUPT;
    out->rb = 32 - log2_k(h->k);
    out->mask = out->rb == 32 ? UINT32_MAX : (1u << out->rb) - 1;
    unsigned need = (out->rb + 7) / 8;
    if (h->width == W_WIDE ? h->hbw != 4
                           : h->hbw != need || h->width < h->hbw + 1u || h->width > h->hbw + 4u ||
                                 h->project >> (64 - REF_BITS) || h->ref_base >> REF_BITS)
        return SDB_ECORRUPT;
    out->p = p;
    out->no = no;
    out->shard = shard;
    return SDB_OK;
}

static inline uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The residue of entry i (of bucket b: its top bits). */
static inline uint32_t run_res(const run_view *r, uint32_t i)
{
    return ld32(r->p + r->h.ent_off + (size_t)r->h.width * i) & r->mask;
}

/* The residue of hash h in run r. */
static inline uint32_t res_of(const run_view *r, uint64_t h) { return bucket_bits(h) & r->mask; }

/* Entry i of bucket b, its h the kept bits (the rest 0). */
static inline void run_entry(const run_view *r, uint32_t i, uint32_t b, entry *out)
{
    const uint8_t *q = r->p + r->h.ent_off + (size_t)r->h.width * i;
    uint32_t hb = ld32(q) & r->mask;
    if (r->rb < 32) hb |= b << r->rb;
    out->h = (uint64_t)r->shard << (64 - SHARD_BITS) | (uint64_t)hb << KEEP_SHIFT;
    if (r->h.width == W_WIDE) {
        memcpy(&out->pr, q + 4, 8);
    } else {
        unsigned ob = r->h.width - r->h.hbw;
        uint32_t d = ld32(q + r->h.hbw);
        if (ob < 4) d &= (1u << 8 * ob) - 1;
        out->pr = ((r->h.ref_base + d) & ((1ull << REF_BITS) - 1)) |
                  (uint64_t)r->h.project << REF_BITS;
    }
}

/* off[b] of run r. */
static inline uint32_t run_off(const run_view *r, uint32_t b)
{
    return ld32(r->p + sizeof(run_hdr) + 4ull * b);
}

/* The bucket of entry i, from bucket b on (entries read in order: b only
 * moves forward). */
static inline uint32_t bucket_at(const run_view *r, uint32_t i, uint32_t b)
{
    while (b + 1 < r->h.k && run_off(r, b + 1) <= i) b++;
    return b;
}

/* Runs of one shard, in run-number order, into *out (owned). */
static int load_shard(sdb__txn *t, unsigned shard, run_view **out, uint32_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_IDS, &c);
    if (rc) return rc;
    uint8_t k[RUN_KEY_LEN];
    run_key(k, shard, 0);
    run_view *v = NULL;
    uint32_t n = 0, cap = 0;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, sizeof k, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len != RUN_KEY_LEN || memcmp(key.p, k, 2) != 0) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            run_view *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = SDB_ENOMEM;
                break;
            }
            v = nv;
        }
        if ((rc = run_open(val.p, val.len, sdb__rd64((const uint8_t *)key.p + 2), shard, &v[n])))
            break;
        n++;
    }
    sdb__cur_close(c);
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) {
        free(v);
        return rc;
    }
    *out = v;
    *out_n = n;
    return SDB_OK;
}

/* True when row `ref` of `project` exists and keeps id (len bytes). */
static int row_has_id(sdb__txn *t, uint32_t project, uint64_t ref, const char *id, size_t len,
                      int *out)
{
    *out = 0;
    sdb__val v;
    int rc = sdb__row_get(t, project, ref, &v);
    if (rc == SDB_ENOTFOUND) return SDB_OK;
    if (rc) return rc;
    sdb__row row;
    if ((rc = sdb__row_decode(v.p, v.len, &row))) return rc;
    *out = row.id.len == len && memcmp(row.id.p, id, len) == 0;
    return SDB_OK;
}

/* Probe one run for hash h; the candidates are checked against the rows. */
static int run_find(sdb__txn *t, const run_view *r, uint64_t h, uint32_t project,
                    const char *id, size_t len, uint64_t *out_ref)
{
    if (r->h.n == 0) return SDB_ENOTFOUND;
    uint32_t b = bucket_of(h, r->h.k), lo, hi;
    memcpy(&lo, r->p + sizeof(run_hdr) + 4ull * b, 4);
    memcpy(&hi, r->p + sizeof(run_hdr) + 4ull * (b + 1), 4);
    if (hi > r->h.n || lo > hi) return SDB_ECORRUPT;
    uint32_t hb = res_of(r, h);
    for (uint32_t i = lo; i < hi; i++) {
        uint32_t eh = run_res(r, i);
        if (eh < hb) continue;
        if (eh > hb) break;
        entry e;
        run_entry(r, i, b, &e);
        if (pr_project(e.pr) != project) continue;
        int ok;
        int rc = row_has_id(t, project, pr_ref(e.pr), id, len, &ok);
        if (rc) return rc;
        if (ok) {
            *out_ref = pr_ref(e.pr);
            return SDB_OK;
        }
    }
    return SDB_ENOTFOUND;
}

/* --------------------------------------------------------- local entries */

static int local_grow(sdb__idx *ix)
{
    size_t cap = ix->cap ? 2 * ix->cap : 4096;
    entry *e = realloc(ix->e, cap * sizeof *e);
    if (!e) return SDB_ENOMEM;
    ix->e = e;
    uint8_t *d = realloc(ix->dead, cap);
    if (!d) return SDB_ENOMEM;
    ix->dead = d;
    ix->cap = cap;
    size_t ns = 2 * cap;
    uint32_t *slot = calloc(ns, sizeof *slot);
    if (!slot) return SDB_ENOMEM;
    for (size_t i = 0; i < ix->n; i++) {
        size_t j = ix->e[i].h & (ns - 1);
        while (slot[j]) j = (j + 1) & (ns - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(ix->slot);
    ix->slot = slot;
    ix->n_slot = ns;
    return SDB_OK;
}

int sdb__idx_add(sdb__idx *ix, uint32_t project, uint64_t h, uint64_t ref)
{
    if (ref >> REF_BITS || project >> (64 - REF_BITS)) return SDB_ELIMIT;
    if (ix->n == ix->cap || ix->n >= UINT32_MAX - 1) {
        int rc = local_grow(ix);
        if (rc) return rc;
    }
    size_t i = ix->n++;
    ix->e[i] = (entry){h, ref | (uint64_t)project << REF_BITS};
    ix->dead[i] = 0;
    size_t j = h & (ix->n_slot - 1);
    while (ix->slot[j]) j = (j + 1) & (ix->n_slot - 1);
    ix->slot[j] = (uint32_t)i + 1;
    return SDB_OK;
}

void sdb__idx_forget(sdb__idx *ix, uint64_t h, uint32_t project, uint64_t ref)
{
    if (!ix || !ix->n_slot) return;
    uint64_t pr = ref | (uint64_t)project << REF_BITS;
    for (size_t j = h & (ix->n_slot - 1); ix->slot[j]; j = (j + 1) & (ix->n_slot - 1)) {
        size_t i = ix->slot[j] - 1;
        if (ix->e[i].h == h && ix->e[i].pr == pr) ix->dead[i] = 1;
    }
}

int sdb__idx_find(sdb__txn *t, sdb__idx *ix, uint32_t project, const char *id, size_t len,
                  uint64_t h, int in_runs, uint64_t *out_ref)
{
    int rc;
    if (ix && ix->n_slot) {
        for (size_t j = h & (ix->n_slot - 1); ix->slot[j]; j = (j + 1) & (ix->n_slot - 1)) {
            size_t i = ix->slot[j] - 1;
            if (ix->e[i].h != h || ix->dead[i] || pr_project(ix->e[i].pr) != project) continue;
            int ok;
            if ((rc = row_has_id(t, project, pr_ref(ix->e[i].pr), id, len, &ok))) return rc;
            if (ok) {
                *out_ref = pr_ref(ix->e[i].pr);
                return SDB_OK;
            }
        }
    }
    if (!in_runs) return SDB_ENOTFOUND;
    unsigned s = shard_of(h);
    run_view *own = NULL, *runs;
    uint32_t n;
    if (ix) {
        if (!ix->loaded[s]) {
            if ((rc = load_shard(t, s, &ix->runs[s], &ix->n_runs[s]))) return rc;
            ix->loaded[s] = 1;
        }
        runs = ix->runs[s];
        n = ix->n_runs[s];
    } else {
        if ((rc = load_shard(t, s, &own, &n))) return rc;
        runs = own;
    }
    rc = SDB_ENOTFOUND;
    /* Newest first: a replaced id's live entry is in a newer run. */
    for (uint32_t r = n; r-- > 0 && rc == SDB_ENOTFOUND;)
        rc = run_find(t, &runs[r], h, project, id, len, out_ref);
    free(own);
    return rc;
}

/* Probing the runs costs a cache miss or two per run and id, and the
 * misses of one id wait on each other (offsets, then entries). A batch of
 * ids is therefore probed together, in hash order (runs are read front to
 * back) and as a software pipeline: the offsets of id j + 2D and the
 * entries of id j + D are prefetched while id j is compared, so ~2D misses
 * are in flight instead of one. */
#define PIPE 8

typedef struct probe {
    uint64_t h;
    uint32_t i;
    uint32_t lo, hi;
} probe;

static int cmp_probe(const void *a, const void *b)
{
    const probe *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

static void probe_run(const run_view *r, probe *p, size_t n, uint8_t *maybe)
{
    const uint8_t *off = r->p + sizeof(run_hdr), *ent = r->p + r->h.ent_off;
    uint32_t k = r->h.k, nr = r->h.n, w = r->h.width;
    if (nr == 0) return;
    for (size_t j = 0; j < n + 2 * PIPE; j++) {
        if (j < n) __builtin_prefetch(off + 4ull * bucket_of(p[j].h, k));
        if (j >= PIPE && j - PIPE < n) {
            probe *q = &p[j - PIPE];
            uint32_t b = bucket_of(q->h, k);
            memcpy(&q->lo, off + 4ull * b, 4);
            memcpy(&q->hi, off + 4ull * (b + 1), 4);
            if (q->hi > nr || q->lo > q->hi) q->lo = q->hi = 0; /* checked again by find */
            __builtin_prefetch(ent + (size_t)w * q->lo);
            __builtin_prefetch(ent + (size_t)w * q->lo + 64);
        }
        if (j >= 2 * PIPE && j - 2 * PIPE < n) {
            const probe *q = &p[j - 2 * PIPE];
            uint32_t hb = res_of(r, q->h);
            for (uint32_t e = q->lo; e < q->hi; e++) {
                uint32_t eh = ld32(ent + (size_t)w * e) & r->mask;
                if (eh >= hb) {
                    if (eh == hb) maybe[q->i] = 1;
                    break;
                }
            }
        }
    }
}

int sdb__idx_probe(sdb__txn *t, sdb__idx *ix, const uint64_t *h, size_t n, uint8_t *out_maybe)
{
    memset(out_maybe, 0, n);
    if (n == 0) return SDB_OK;
    probe *p = malloc(sizeof *p * n * 2);
    if (!p) return SDB_ENOMEM;
    for (size_t i = 0; i < n; i++) p[i] = (probe){h[i], (uint32_t)i, 0, 0};
    sdb__hash_sort(p, n, sizeof *p, cmp_probe, p + n);
    int rc = SDB_OK;
    for (size_t a = 0; a < n && rc == SDB_OK;) {
        unsigned s = shard_of(p[a].h);
        size_t b = a;
        while (b < n && shard_of(p[b].h) == s) b++;
        if (!ix->loaded[s]) {
            if ((rc = load_shard(t, s, &ix->runs[s], &ix->n_runs[s]))) break;
            ix->loaded[s] = 1;
        }
        for (uint32_t r = 0; r < ix->n_runs[s]; r++) probe_run(&ix->runs[s][r], p + a, b - a, out_maybe);
        a = b;
    }
    free(p);
    return rc;
}

/* ----------------------------------------------------------------- write */

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (key_of(x->h) != key_of(y->h)) return key_of(x->h) < key_of(y->h) ? -1 : 1;
    return x->pr < y->pr ? -1 : x->pr > y->pr;
}

/* Write sorted entries e[0..n) as run `no` of `shard`: narrow when they
 * share a project and their refs span less than 2^32, with as many bytes
 * of ref offset as the span needs (a batch's run: 2; the largest runs at
 * 10M scores: 3). */
static int put_run(sdb__txn *t, unsigned shard, uint64_t no, const entry *e, uint32_t n)
{
    uint32_t k = 1; /* the largest power of two up to n / BUCKET_ENTRIES */
    while (k <= n / BUCKET_ENTRIES / 2) k *= 2;
    unsigned rb = 32 - log2_k(k), hbw = (rb + 7) / 8;
    uint32_t mask = rb == 32 ? UINT32_MAX : (1u << rb) - 1;
    run_hdr h = {RUN_MAGIC, n, k, (uint32_t)((sizeof(run_hdr) + 4ull * (k + 1) + 7) & ~7ull),
                 (uint16_t)(hbw + 4), (uint16_t)hbw, n ? pr_project(e[0].pr) : 0, UINT64_MAX};
    uint64_t ref_max = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t ref = pr_ref(e[i].pr);
        if (pr_project(e[i].pr) != h.project) h.width = W_WIDE;
        if (ref < h.ref_base) h.ref_base = ref;
        if (ref > ref_max) ref_max = ref;
    }
    if (n == 0) h.ref_base = 0;
    if (n && ref_max - h.ref_base > UINT32_MAX) h.width = W_WIDE;
    if (h.width == W_WIDE) h.project = 0, h.ref_base = 0, h.hbw = 4;
    else
        for (uint64_t span = ref_max - h.ref_base;
             h.width > hbw + 1 && span >> 8 * (h.width - hbw - 1) == 0;)
            h.width--;
    size_t len = h.ent_off + (size_t)h.width * n + RUN_PAD;
    uint8_t key[RUN_KEY_LEN];
    run_key(key, shard, no);
    void *dst;
    int rc = sdb__reserve(t, SDB__DB_IDS, key, sizeof key, len, &dst);
    if (rc) return rc;
    uint8_t *p = dst;
    memcpy(p, &h, sizeof h);
    memset(p + sizeof h, 0, h.ent_off - sizeof h);
    /* off[b] = first entry of bucket b; entries are sorted, so buckets
     * are ascending runs of them. */
    uint32_t b = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t eb = bucket_of(e[i].h, k);
        while (b <= eb) {
            memcpy(p + sizeof h + 4ull * b, &i, 4);
            b++;
        }
    }
    while (b <= k) {
        memcpy(p + sizeof h + 4ull * b, &n, 4);
        b++;
    }
    uint8_t *q = p + h.ent_off;
    for (uint32_t i = 0; i < n; i++, q += h.width) {
        uint32_t res = bucket_bits(e[i].h) & mask; /* little-endian, hbw bytes */
        memcpy(q, &res, h.hbw);
        if (h.width == W_WIDE) {
            memcpy(q + 4, &e[i].pr, 8);
        } else {
            uint32_t d = (uint32_t)(pr_ref(e[i].pr) - h.ref_base);
            memcpy(q + h.hbw, &d, h.width - h.hbw);
        }
    }
    memset(q, 0, RUN_PAD);
    return SDB_OK;
}

static unsigned level_of(uint32_t n)
{
    unsigned l = 0;
    for (uint64_t cap = LEVEL_BASE; n >= cap && l < 30; cap *= FANOUT) l++;
    return l;
}

/* Merge the runs sel[0..m) of a shard (copied out: their pages may be
 * freed by the deletes) into one, dropping entries whose row is gone when
 * they share their hash with another entry (a replaced id: the common way
 * stale entries arise; a checked drop keeps collisions exact). */
static int merge_runs(sdb__txn *t, unsigned shard, const run_view *sel, uint32_t m,
                      uint64_t no)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < m; i++) total += sel[i].h.n;
    if (total > UINT32_MAX) return SDB_ELIMIT;
    entry *out = malloc(sizeof *out * (total ? total : 1));
    uint32_t *at = calloc(2 * (size_t)m, sizeof *at), *bk = at + m; /* bk: at's bucket */
    int rc = SDB_OK;
    if (!out || !at) {
        rc = SDB_ENOMEM;
        goto done;
    }
    size_t n = 0;
    for (;;) { /* m-way merge: m is at most MAX_RUNS, usually FANOUT */
        int best = -1;
        entry be = {0, 0}, x;
        for (uint32_t i = 0; i < m; i++) {
            if (at[i] == sel[i].h.n) continue;
            bk[i] = bucket_at(&sel[i], at[i], bk[i]);
            run_entry(&sel[i], at[i], bk[i], &x);
            if (best < 0 || cmp_entry(&x, &be) < 0) {
                best = (int)i;
                be = x;
            }
        }
        if (best < 0) break;
        at[best]++;
        out[n++] = be;
    }
    /* Drop stale duplicates. */
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && key_of(out[j].h) == key_of(out[i].h)) j++;
        for (size_t q = i; q < j; q++) {
            if (j - i > 1) {
                sdb__val v;
                rc = sdb__row_get(t, pr_project(out[q].pr), pr_ref(out[q].pr), &v);
                if (rc == SDB_ENOTFOUND) {
                    rc = SDB_OK;
                    continue;
                }
                if (rc) goto done;
            }
            out[w++] = out[q];
        }
        i = j;
    }
    for (uint32_t i = 0; i < m && rc == SDB_OK; i++) {
        uint8_t key[RUN_KEY_LEN];
        run_key(key, shard, sel[i].no);
        rc = sdb__del(t, SDB__DB_IDS, key, sizeof key);
    }
    if (rc == SDB_OK) rc = put_run(t, shard, no, out, (uint32_t)w);
done:
    free(out);
    free(at);
    return rc;
}

/* Merge size classes of a shard that hold FANOUT runs or more, until none
 * does. */
static int tier_shard(sdb__txn *t, unsigned shard)
{
    for (int round = 0; round < 64; round++) {
        run_view *v;
        uint32_t n;
        int rc = load_shard(t, shard, &v, &n);
        if (rc) return rc;
        uint32_t count[32] = {0};
        for (uint32_t i = 0; i < n; i++) count[level_of(v[i].h.n)]++;
        int lv = -1;
        for (int l = 0; l < 32 && lv < 0; l++)
            if (count[l] >= FANOUT) lv = l;
        if (lv < 0 && n > MAX_RUNS) lv = (int)level_of(v[0].h.n);
        if (lv < 0) {
            free(v);
            return SDB_OK;
        }
        run_view *sel = malloc(sizeof *sel * n);
        if (!sel) {
            free(v);
            return SDB_ENOMEM;
        }
        uint32_t m = 0;
        for (uint32_t i = 0; i < n; i++)
            if (level_of(v[i].h.n) == (unsigned)lv || n > MAX_RUNS) sel[m++] = v[i];
        /* The merged run takes the newest input's number: run numbers stay
         * unique, and it sorts among the runs it replaces. */
        rc = merge_runs(t, shard, sel, m, sel[m - 1].no);
        free(sel);
        free(v);
        if (rc) return rc;
        /* A merge reads far more of the map than its runs (four runs of
         * 320k entries grew the resident map by 100-170 MiB each, in all
         * 16 shards of one commit at 20.5M UUIDv4 scores: 920 MiB held
         * until the commit's trim, the peak of a 29M ingest): the
         * resident cap is applied here too, not only between commits. */
        sdb__map_trim_in_txn(t);
    }
    return SDB_OK;
}

int sdb__idx_flush(sdb__txn *t, sdb__idx *ix)
{
    if (!ix || ix->n == 0) return SDB_OK;
    /* The live entries, sorted: they are in shard order after it. */
    size_t w = 0;
    for (size_t i = 0; i < ix->n; i++)
        if (!ix->dead[i]) ix->e[w++] = ix->e[i];
    entry *tmp = malloc(sizeof *tmp * (w ? w : 1));
    if (tmp) sdb__hash_sort(ix->e, w, sizeof *ix->e, cmp_entry, tmp);
    else qsort(ix->e, w, sizeof *ix->e, cmp_entry);
    free(tmp);
    int rc = SDB_OK;
    for (size_t i = 0; i < w && rc == SDB_OK;) {
        unsigned s = shard_of(ix->e[i].h);
        size_t j = i;
        while (j < w && shard_of(ix->e[j].h) == s) j++;
        /* The new run's number: one past the shard's last. */
        uint64_t no = 1;
        if (!ix->loaded[s]) {
            if ((rc = load_shard(t, s, &ix->runs[s], &ix->n_runs[s]))) break;
            ix->loaded[s] = 1;
        }
        if (ix->n_runs[s]) no = ix->runs[s][ix->n_runs[s] - 1].no + 1;
        if ((rc = put_run(t, s, no, ix->e + i, (uint32_t)(j - i)))) break;
        rc = tier_shard(t, s);
        i = j;
    }
    /* The txn's view of the runs is gone with the writes. */
    sdb__idx_reset(ix);
    return rc;
}

int sdb__idx_stats(sdb__txn *t, uint64_t *out_entries, uint64_t *out_runs)
{
    *out_entries = *out_runs = 0;
    for (unsigned s = 0; s < N_SHARDS; s++) {
        run_view *v;
        uint32_t n;
        int rc = load_shard(t, s, &v, &n);
        if (rc) return rc;
        for (uint32_t i = 0; i < n; i++) *out_entries += v[i].h.n;
        *out_runs += n;
        free(v);
    }
    return SDB_OK;
}

int sdb__idx_check(sdb__txn *t, int (*on_problem)(void *ctx, const char *msg), void *ctx)
{
    char msg[200];
    for (unsigned s = 0; s < N_SHARDS; s++) {
        run_view *v;
        uint32_t n;
        int rc = load_shard(t, s, &v, &n);
        if (rc == SDB_ECORRUPT) {
            snprintf(msg, sizeof msg, "shard %u: a run does not open", s);
            if (on_problem(ctx, msg)) return SDB_OK;
            continue;
        }
        if (rc) return rc;
        for (uint32_t r = 0; r < n; r++) {
            const char *bad = NULL;
            entry prev = {0, 0}, e;
            /* The directory first: an entry's bucket (its top hash bits)
             * is where the directory puts it. */
            for (uint32_t b = 0, last = 0; b <= v[r].h.k && !bad; b++) {
                uint32_t lo = run_off(&v[r], b);
                if (lo > v[r].h.n) bad = "a bucket offset past the end";
                else if (lo < last) bad = "bucket offsets out of order";
                else if ((b == 0 && lo != 0) || (b == v[r].h.k && lo != v[r].h.n))
                    bad = "a directory that does not span the run";
                last = lo;
            }
            for (uint32_t i = 0, b = 0; i < v[r].h.n && !bad; i++) {
                b = bucket_at(&v[r], i, b);
                run_entry(&v[r], i, b, &e);
                if (i && cmp_entry(&prev, &e) >= 0) bad = "entries out of order";
                prev = e;
            }
            if (bad) {
                snprintf(msg, sizeof msg, "shard %u run %llu: %s", s, (unsigned long long)v[r].no,
                         bad);
                if (on_problem(ctx, msg)) {
                    free(v);
                    return SDB_OK;
                }
            }
        }
        free(v);
    }
    return SDB_OK;
}
