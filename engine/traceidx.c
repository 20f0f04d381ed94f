/* The refs index: key -> row refs, so that a list filtered by one trace
 * (GET /v1/scores?trace_id=, Langfuse's traceId), session, observation,
 * dataset run, config or annotation queue (the property queue_id:
 * Langfuse's queueId; sdb__tix_prop_indexed says why only it) reads
 * that key's rows and nothing else, however deep in the store they are.
 *
 * Before it, those filters were a per-row check on a walk bounded at 2M
 * rows per call (list.c), and a key whose scores lay further back was
 * silently missed, and a v2 total was only a lower bound. The index is
 * exact:
 *
 * - It is written at fold time (engine/fold.c calls sdb__tix_prepare_keyed
 *   and sdb__tix_write once per fold transaction), not at ingest, so that
 *   ingest pays nothing for it; the fold already holds every folded row's
 *   fixed part, which carries the trace hash and the ref (sorted on a
 *   thread of its own by prepare). The other keys the fold takes from
 *   each record as it reads it (sdb__tix_rec_keys; sdb__tix_prepare
 *   without them has sdb__tix_write read the records again); a record's
 *   masks say whether it has any, so a score with none costs one look at
 *   them. The
 *   rows past a project's fold mark (pending, which the fold drains) are
 *   walked at lookup, newest first and at most the list's scan cap of
 *   them (past it the answer is cut with a cursor): together the two
 *   cover every row.
 * - An entry is 16 bytes, (64-bit key hash, ref). The hash carries the
 *   kind: a trace's is the plain xxh3 the trace column holds, the others
 *   are salted by kind (sdb__tix_key), so one set of runs serves every
 *   kind and a trace-only store is what the trace index always wrote.
 *   Low-cardinality keys (configs, queues) are here too rather than in a
 *   column: a column costs 4 bytes every score and a pass over every
 *   chunk per lookup, an entry costs 16 bytes only on the scores that
 *   have the key and a binary search per run.
 * - A run stores its entries block-coded (version 2, RUN_MAGIC2): blocks
 *   of BLK entries, each one's first entry in a directory (binary-searched
 *   as the plain entries were), and in the block the hash deltas and the
 *   refs less the block's smallest, bit-packed to the block's widths.
 *   Sorted random 64-bit hashes differ by about 2^64 / n, so a delta takes
 *   log2(64 / n) + 3 bits and a ref log2(refs) bits: 10M UUIDv4 scores'
 *   entries took 16 bytes each in version 1 and take about 9 here. A
 *   lookup decodes only the blocks that can hold its key, newest first,
 *   until it has its `max`. Version 1 runs (16 plain bytes an entry) are
 *   still read, and are rewritten in version 2 when a merge takes them.
 * - A fold writes one sorted run per project: key 't' | project (be32) |
 *   run number (be64) in its own database, `traces`. Runs merge
 *   like a binary counter: the new run absorbs the newest stored run while
 *   that one is not larger than it (and the sum stays under MERGE_MAX), so
 *   an entry is rewritten about log2(n / slice) times, sequentially, and
 *   a lookup does one binary search in each of a few runs.
 * - Entries are never removed when a row is replaced or deleted: refs are
 *   never reused, so an entry names its row or a row that is gone, and the
 *   reader checks the row (and its field, for hash collisions).
 * - A store folded by a version without the index keeps "tixbase:" + the
 *   project (the fold mark when indexing began, + 1) in meta; refs at or
 *   below it are not indexed and callers say so (sdb__tix_refs). A store
 *   whose index held traces only keeps "rixbase:" the same way for the
 *   other kinds.
 */
#include "traceidx.h"

#define RUN_MAGIC 0x58495453u  /* "STIX": version 1, plain entries */
#define RUN_MAGIC2 0x32585453u /* "STX2": version 2, block-coded */
#define KEY_LEN 13u
#define HDR_LEN 16u
#define ENT_LEN 16u
#define MERGE_MAX (1u << 22) /* entries of the largest merged run: 64 MiB decoded */
#define BLK 256u       /* entries a block */
#define HDR2_LEN 24u   /* magic, BLK, n (u64), blocks (u32), 0 (u32) */
#define DIR_LEN 20u    /* a block's first hash and ref (u64 each), payload offset (u32) */
#define BLK_HEAD 10u   /* hash-delta width, ref width (u8 each), smallest ref (u64) */
#define PAD 8u         /* after the payload, so that a bit read may load 8 bytes */

typedef sdb__tix_ent tent;

/* One stored run as its reader sees it, in either version. */
typedef struct run_view {
    uint64_t n;
    const uint8_t *ents;           /* version 1: n entries of ENT_LEN */
    const uint8_t *dir, *pay;      /* version 2: nb directory entries, payload */
    uint64_t pay_len;              /* the payload's bytes, PAD not counted */
    uint32_t nb;
} run_view;

typedef struct run_info {
    uint64_t no, n;
} run_info;

uint64_t sdb__tix_hash(const char *id, size_t len)
{
    uint64_t h = sdb__hash(id, len);
    return h ? h : 1; /* as ingest: 0 means "no trace" */
}

bool sdb__tix_prop_indexed(const char *k, size_t len)
{
    return len == 8 && memcmp(k, "queue_id", 8) == 0;
}

uint64_t sdb__tix_key(int kind, const char *a, size_t alen, const char *b, size_t blen)
{
    if (kind == SDB__TIX_TRACE) return sdb__tix_hash(a, alen);
    /* Salted by kind so that a session named like a trace is another key;
     * a property hashes its key and value apart and combines them (a
     * separator byte could occur in either). */
    uint64_t h = sdb__hash(a, alen) ^ (0x9E3779B97F4A7C15ull * (uint64_t)kind);
    if (kind == SDB__TIX_PROP) h = (h * 0xBF58476D1CE4E5B9ull) ^ sdb__hash(b, blen);
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h ? h : 1;
}

static void run_key(uint8_t *k, uint32_t project, uint64_t no)
{
    k[0] = 't';
    sdb__be32(k + 1, project);
    sdb__be64(k + 5, no);
}

static inline tent ent_at(const uint8_t *ents, uint64_t i)
{
    tent e;
    memcpy(&e, ents + i * ENT_LEN, sizeof e);
    return e;
}

static inline bool ent_less(tent a, uint64_t h, uint64_t ref)
{
    return a.h < h || (a.h == h && a.ref < ref);
}

/* ---------------------------------------------------------- run coding */

static unsigned width_of(uint64_t x)
{
    return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

typedef struct bitw {
    uint8_t *p;
    uint64_t acc;
    unsigned n;
} bitw;

static void bw_put32(bitw *w, uint64_t x, unsigned bits)
{
    w->acc |= x << w->n;
    w->n += bits;
    while (w->n >= 8) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n -= 8;
    }
}

static void bw_put(bitw *w, uint64_t x, unsigned bits)
{
    if (bits > 32) {
        bw_put32(w, x & 0xFFFFFFFFu, 32);
        x >>= 32;
        bits -= 32;
    }
    if (bits) bw_put32(w, x & ((1ull << bits) - 1), bits);
}

static void bw_flush(bitw *w)
{
    if (w->n) *w->p++ = (uint8_t)w->acc;
    w->acc = 0;
    w->n = 0;
}

/* bits (<= 64) at bit position pos of p; PAD bytes follow every payload. */
static inline uint64_t br_get(const uint8_t *p, uint64_t pos, unsigned bits)
{
    uint64_t lo, hi = 0;
    unsigned a = bits > 32 ? 32 : bits;
    memcpy(&lo, p + (pos >> 3), 8);
    lo = (lo >> (pos & 7)) & ((1ull << a) - 1);
    if (bits > 32) {
        pos += 32;
        memcpy(&hi, p + (pos >> 3), 8);
        hi = (hi >> (pos & 7)) & (bits == 64 ? 0xFFFFFFFFull : (1ull << (bits - 32)) - 1);
    }
    return lo | hi << 32;
}

static inline uint32_t blk_len(uint64_t n, uint32_t b, uint32_t nb)
{
    return b + 1 < nb ? BLK : (uint32_t)(n - (uint64_t)b * BLK);
}

/* The payload bytes of a block of m entries at widths wh, wr. */
static inline uint64_t blk_bytes(uint32_t m, unsigned wh, unsigned wr)
{
    return BLK_HEAD + (((uint64_t)(m - 1) * wh + (uint64_t)m * wr + 7) >> 3);
}

/* The largest encoding of n entries (version 2). */
static size_t enc_bound(uint64_t n)
{
    uint64_t nb = (n + BLK - 1) / BLK;
    return HDR2_LEN + nb * (DIR_LEN + BLK_HEAD) + n * ENT_LEN + PAD;
}

/* Block-code the sorted entries e (m <= BLK) as block b of the run at
 * buf (its directory and payload cursor *pay_off). */
static void enc_block(uint8_t *buf, uint32_t b, uint32_t nb, const tent *e, uint32_t m,
                      size_t *pay_off)
{
    uint64_t dmax = 0, rmin = e[0].ref, rmax = e[0].ref;
    for (uint32_t i = 1; i < m; i++) {
        uint64_t d = e[i].h - e[i - 1].h;
        if (d > dmax) dmax = d;
        if (e[i].ref < rmin) rmin = e[i].ref;
        if (e[i].ref > rmax) rmax = e[i].ref;
    }
    unsigned wh = width_of(dmax), wr = width_of(rmax - rmin);
    uint8_t *d = buf + HDR2_LEN + (size_t)b * DIR_LEN, *p = buf + HDR2_LEN + (size_t)nb * DIR_LEN;
    uint32_t off = (uint32_t)*pay_off;
    memcpy(d, &e[0].h, 8);
    memcpy(d + 8, &e[0].ref, 8);
    memcpy(d + 16, &off, 4);
    p += off;
    p[0] = (uint8_t)wh;
    p[1] = (uint8_t)wr;
    memcpy(p + 2, &rmin, 8);
    bitw w = {p + BLK_HEAD, 0, 0};
    for (uint32_t i = 1; i < m; i++) bw_put(&w, e[i].h - e[i - 1].h, wh);
    for (uint32_t i = 0; i < m; i++) bw_put(&w, e[i].ref - rmin, wr);
    bw_flush(&w);
    *pay_off += blk_bytes(m, wh, wr);
}

/* Decode block b of run v into out (BLK entries of room), *out_m its
 * length. A block is checked as it is decoded (its widths possible and its
 * bits inside the payload), not all of a run's at every open: a lookup
 * decodes one or two of thousands. */
static int dec_block(const run_view *v, uint32_t b, tent *out, uint32_t *out_m)
{
    uint32_t m = blk_len(v->n, b, v->nb), off;
    const uint8_t *d = v->dir + (size_t)b * DIR_LEN;
    uint64_t h;
    memcpy(&h, d, 8);
    memcpy(&off, d + 16, 4);
    if (off > v->pay_len || v->pay_len - off < BLK_HEAD) return SDB_ECORRUPT;
    const uint8_t *p = v->pay + off;
    unsigned wh = p[0], wr = p[1];
    if (wh > 64 || wr > 64 || blk_bytes(m, wh, wr) > v->pay_len - off) return SDB_ECORRUPT;
    uint64_t rmin, pos = 0;
    memcpy(&rmin, p + 2, 8);
    p += BLK_HEAD;
    out[0].h = h;
    for (uint32_t i = 1; i < m; i++, pos += wh) out[i].h = h += br_get(p, pos, wh);
    for (uint32_t i = 0; i < m; i++, pos += wr) out[i].ref = rmin + br_get(p, pos, wr);
    *out_m = m;
    return SDB_OK;
}

/* Check a run value and view it (either version). */
static int run_open(const void *p, size_t len, run_view *out)
{
    memset(out, 0, sizeof *out);
    if (len < HDR_LEN) return SDB_ECORRUPT;
    uint32_t magic;
    uint64_t n;
    memcpy(&magic, p, 4);
    memcpy(&n, (const uint8_t *)p + 8, 8);
    if (magic == RUN_MAGIC) {
        if (n > (len - HDR_LEN) / ENT_LEN || HDR_LEN + n * ENT_LEN != len) return SDB_ECORRUPT;
        out->n = n;
        out->ents = (const uint8_t *)p + HDR_LEN;
        return SDB_OK;
    }
    uint32_t blk, nb;
    memcpy(&blk, (const uint8_t *)p + 4, 4);
    if (magic != RUN_MAGIC2 || len < HDR2_LEN + PAD || blk != BLK) return SDB_ECORRUPT;
    memcpy(&nb, (const uint8_t *)p + 16, 4);
    if (!n || nb != (n + BLK - 1) / BLK || (uint64_t)nb * DIR_LEN > len - HDR2_LEN - PAD)
        return SDB_ECORRUPT;
    const uint8_t *dir = (const uint8_t *)p + HDR2_LEN;
    out->pay_len = len - HDR2_LEN - (uint64_t)nb * DIR_LEN - PAD;
    out->pay = dir + (size_t)nb * DIR_LEN;
    out->n = n;
    out->nb = nb;
    out->dir = dir;
    return SDB_OK;
}

/* A reader of a run's entries in order, a block at a time. */
typedef struct run_it {
    const run_view *v;
    uint64_t i;    /* next entry */
    uint32_t b;    /* the decoded block */
    tent blk[BLK];
} run_it;

static void it_init(run_it *it, const run_view *v)
{
    it->v = v;
    it->i = 0;
    it->b = UINT32_MAX;
}

/* The entry at it->i (it->i < n) into *out. */
static inline int it_peek(run_it *it, tent *out)
{
    const run_view *v = it->v;
    if (v->ents) {
        memcpy(out, v->ents + it->i * ENT_LEN, sizeof *out);
        return SDB_OK;
    }
    uint32_t b = (uint32_t)(it->i / BLK);
    if (b != it->b) {
        uint32_t m;
        int rc = dec_block(v, b, it->blk, &m);
        if (rc) return rc;
        it->b = b;
    }
    *out = it->blk[it->i % BLK];
    return SDB_OK;
}

/* The project's runs, oldest first (*out owned). With fn, each run's
 * entries are handed to fn while the cursor holds them. */
static int load_runs(sdb__txn *t, uint32_t project, run_info **out, size_t *out_n,
                     int (*fn)(const run_view *v, void *ctx), void *ctx)
{
    *out = NULL;
    *out_n = 0;
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_TRACES, &c);
    if (rc) return rc;
    uint8_t k[KEY_LEN];
    run_key(k, project, 0);
    run_info *v = NULL;
    size_t n = 0, cap = 0;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, sizeof k, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len != KEY_LEN || memcmp(key.p, k, 5) != 0) break;
        run_view rv;
        if ((rc = run_open(val.p, val.len, &rv))) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            run_info *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = SDB_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = (run_info){sdb__rd64((const uint8_t *)key.p + 5), rv.n};
        if (fn && (rc = fn(&rv, ctx))) break;
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

/* ------------------------------------------------------------------ write */

/* Store the sorted entries e (n) of one project as a run, absorbing the
 * newest stored runs while they are not larger (the binary counter). The
 * absorbed runs are read in place (a get is not an update: LMDB keeps
 * their pages valid until the first put or del) and merged with e straight
 * into the new run's blocks, so a merge holds no decoded copy of them. */
static int write_run(sdb__txn *t, uint32_t project, const tent *e, uint64_t n)
{
    run_info *runs;
    size_t n_runs;
    int rc = load_runs(t, project, &runs, &n_runs, NULL, NULL);
    if (rc) return rc;
    uint64_t no = n_runs ? runs[n_runs - 1].no + 1 : 1, total = n;
    size_t k = 0; /* runs absorbed: the newest k */
    while (k < n_runs && runs[n_runs - 1 - k].n <= total &&
           runs[n_runs - 1 - k].n + total <= MERGE_MAX)
        total += runs[n_runs - 1 - k++].n;
    run_view *views = calloc(k ? k : 1, sizeof *views);
    run_it *its = malloc((k ? k : 1) * sizeof *its);
    uint8_t *buf = NULL, key[KEY_LEN];
    tent *blk = malloc(BLK * sizeof *blk);
    if (!views || !its || !blk || !(buf = malloc(enc_bound(total)))) {
        rc = SDB_ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        sdb__val v;
        run_key(key, project, runs[n_runs - 1 - j].no);
        if ((rc = sdb__get(t, SDB__DB_TRACES, key, sizeof key, &v))) {
            if (rc == SDB_ENOTFOUND) rc = SDB_ECORRUPT;
            goto done;
        }
        if ((rc = run_open(v.p, v.len, &views[j]))) goto done;
        it_init(&its[j], &views[j]);
    }
    /* A k + 1-way merge (k is a few: the binary counter keeps about
     * log2 of the store's runs) into blocks of BLK. */
    uint32_t nb = (uint32_t)((total + BLK - 1) / BLK), b = 0, m = 0;
    size_t pay = 0;
    for (uint64_t i = 0, out = 0; out < total; out++) {
        tent best = {0, 0};
        int from = -1;
        if (i < n) best = e[i], from = (int)k;
        for (size_t j = 0; j < k; j++) {
            if (its[j].i == views[j].n) continue;
            tent x;
            if ((rc = it_peek(&its[j], &x))) goto done;
            if (from < 0 || ent_less(x, best.h, best.ref)) best = x, from = (int)j;
        }
        if (from == (int)k)
            i++;
        else
            its[from].i++;
        blk[m++] = best;
        if (m == BLK || out + 1 == total) {
            enc_block(buf, b++, nb, blk, m, &pay);
            m = 0;
        }
    }
    uint32_t magic = RUN_MAGIC2, bsz = BLK, zero = 0;
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &bsz, 4);
    memcpy(buf + 8, &total, 8);
    memcpy(buf + 16, &nb, 4);
    memcpy(buf + 20, &zero, 4);
    size_t len = HDR2_LEN + (size_t)nb * DIR_LEN + pay + PAD;
    memset(buf + len - PAD, 0, PAD);
    for (size_t j = 0; j < k; j++) {
        run_key(key, project, runs[n_runs - 1 - j].no);
        if ((rc = sdb__del(t, SDB__DB_TRACES, key, sizeof key))) goto done;
    }
    if (k) no = runs[n_runs - k].no;
    run_key(key, project, no);
    rc = sdb__put(t, SDB__DB_TRACES, key, sizeof key, buf, len, 0);
done:
    free(buf);
    free(blk);
    free(its);
    free(views);
    free(runs);
    return rc;
}

/* Merge the sorted entry arrays a (na) and b (nb) into *out (owned). */
static int merge(const tent *a, uint64_t na, const tent *b, uint64_t nb, tent **out)
{
    tent *m = malloc((na + nb ? na + nb : 1) * sizeof *m);
    if (!m) return SDB_ENOMEM;
    uint64_t i = 0, j = 0, w = 0;
    while (i < na || j < nb)
        m[w++] = j == nb || (i < na && ent_less(a[i], b[j].h, b[j].ref)) ? a[i++] : b[j++];
    *out = m;
    return SDB_OK;
}

/* Entry order: by hash, then by ref (refs are unique, so this is total). */
static int cmp_tent(const void *a, const void *b)
{
    const tent *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->ref < y->ref ? -1 : x->ref > y->ref;
}

/* Record where indexing began (prefix "tixbase:" for traces, "rixbase:"
 * for the other kinds) for a project the index has not seen. */
static int ensure_base(sdb__txn *t, const char *prefix, uint32_t project)
{
    uint64_t base, folded;
    int rc = sdb__meta_get_project(t, prefix, project, &base);
    if (rc || base) return rc;
    if ((rc = sdb__folded_of(t, project, &folded))) return rc;
    return sdb__meta_put_project(t, prefix, project, folded + 1);
}

typedef sdb__tix_keys tvec;

static int tvec_push(tvec *v, uint64_t h, uint64_t ref)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        tent *nv = realloc(v->v, cap * sizeof *nv);
        if (!nv) return SDB_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = (tent){h, ref};
    return SDB_OK;
}

/* Whether a record may hold a key other than its trace, read from its
 * masks without a decode (engine/row.c's layout, version 3: byte 3 the
 * strings mask, bits 2-5 observation, session, dataset run, config; byte
 * 4 the lists mask, bit 1 properties). Another version is decoded. */
static bool rec_may_have_keys(const void *rec, size_t len)
{
    const uint8_t *p = rec;
    if (len < 5 || p[0] != 3) return true;
    return (p[3] & 0x3C) || (p[4] & 2);
}

/* The keys of row r other than its trace, as entries of ref. */
static int row_keys(const sdb__row *r, uint64_t ref, tvec *out)
{
    const sdb__str *s[] = {&r->session_id, &r->observation_id, &r->dataset_run_id,
                           &r->config_id};
    static const int kind[] = {SDB__TIX_SESSION, SDB__TIX_OBS, SDB__TIX_RUN, SDB__TIX_CONFIG};
    int rc = SDB_OK;
    for (int i = 0; rc == SDB_OK && i < 4; i++)
        if (s[i]->p) rc = tvec_push(out, sdb__tix_key(kind[i], s[i]->p, s[i]->len, NULL, 0), ref);
    sdb__str k, v;
    for (uint32_t i = 0; rc == SDB_OK && sdb__row_prop(r, i, &k, &v); i++)
        if (sdb__tix_prop_indexed(k.p, k.len))
            rc = tvec_push(out, sdb__tix_key(SDB__TIX_PROP, k.p, k.len, v.p, v.len), ref);
    return rc;
}

/* The record keys of one project's folded rows, refs first..last, read
 * from their records, into out. */
static int record_keys(sdb__txn *t, uint32_t project, uint64_t first, uint64_t last, tvec *out)
{
    sdb__rowit *it;
    int rc = sdb__rows_open(t, project, first, 0, &it);
    if (rc) return rc;
    uint64_t ref;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK && ref <= last) {
        if (!rec_may_have_keys(val.p, val.len)) continue;
        sdb__row row;
        if ((rc = sdb__row_decode_noid(val.p, val.len, &row)) || (rc = row_keys(&row, ref, out))) break;
    }
    sdb__rows_close(it);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}

int sdb__tix_rec_keys(const void *rec, size_t len, const sdb__row *row, uint64_t ref,
                      sdb__tix_keys *k)
{
    if (row) return row_keys(row, ref, k);
    if (!rec_may_have_keys(rec, len)) return SDB_OK;
    sdb__row r;
    int rc = sdb__row_decode_noid(rec, len, &r);
    return rc ? rc : row_keys(&r, ref, k);
}

/* One project's span of the prepared entries, and its rows' refs. */
typedef struct tix_span {
    uint32_t project, start, n;
    uint64_t first, last;
} tix_span;

struct sdb__tix_prep {
    tent *e;
    tix_span *spans;
    size_t n_spans;
    int keyed; /* the spans hold the record keys too (sdb__tix_prepare_keyed) */
};

void sdb__tix_prep_free(sdb__tix_prep *p)
{
    if (!p) return;
    free(p->e);
    free(p->spans);
    free(p);
}

int sdb__tix_prepare(const sdb__fixed *rows, uint32_t n, sdb__tix_prep **out)
{
    return sdb__tix_prepare_keyed(rows, n, NULL, out);
}

int sdb__tix_prepare_keyed(const sdb__fixed *rows, uint32_t n, const sdb__tix_keys *k,
                           sdb__tix_prep **out)
{
    *out = NULL;
    size_t nk = k ? k->n : 0, kj = 0, all = n + nk;
    sdb__tix_prep *p = calloc(1, sizeof *p);
    tent *tmp = malloc((all ? all : 1) * sizeof *tmp);
    size_t cap = 0;
    int rc = p && tmp && (p->e = malloc((all ? all : 1) * sizeof *p->e)) ? SDB_OK : SDB_ENOMEM;
    if (p) p->keyed = k != NULL;
    uint64_t none = sdb__tix_key(SDB__TIX_NOTRACE, "", 0, NULL, 0);
    /* The fold takes each project's rows in one ref-ordered span. */
    for (uint32_t i = 0, w = 0; rc == SDB_OK && i < n;) {
        uint32_t project = rows[i].project, start = w;
        uint64_t first = rows[i].ref, last = first;
        for (; i < n && rows[i].project == project; i++) {
            p->e[w++] = (tent){rows[i].trace ? rows[i].trace : none, rows[i].ref}; /* 0: no trace */
            last = rows[i].ref;
            /* Refs are unique in the store, so a key is its row's. */
            while (kj < nk && k->v[kj].ref == rows[i].ref) p->e[w++] = k->v[kj++];
        }
        if (p->n_spans == cap) {
            cap = cap ? 2 * cap : 4;
            tix_span *ns = realloc(p->spans, cap * sizeof *ns);
            if (!ns) {
                rc = SDB_ENOMEM;
                break;
            }
            p->spans = ns;
        }
        p->spans[p->n_spans++] = (tix_span){project, start, w - start, first, last};
        /* A fold hands over up to a million rows per slice: qsort's
         * comparator calls cost more than the rest of the hook, and an
         * 8-pass LSD radix sort 3% of a 1M UUIDv4 ingest's CPU. */
        if (w > start) sdb__hash_sort(p->e + start, w - start, sizeof *p->e, cmp_tent, tmp);
    }
    free(tmp);
    if (rc == SDB_OK && kj != nk) rc = SDB_EINVAL; /* a key of no row, or out of order */
    if (rc) {
        sdb__tix_prep_free(p);
        return rc;
    }
    *out = p;
    return SDB_OK;
}

int sdb__tix_write(sdb__txn *t, const sdb__tix_prep *p)
{
    int rc = SDB_OK;
    tvec x = {0};
    tent *tmp = NULL;
    tent *merged = NULL;
    for (size_t k = 0; rc == SDB_OK && k < p->n_spans; k++) {
        const tix_span *sp = &p->spans[k];
        if ((rc = ensure_base(t, "tixbase:", sp->project)) ||
            (rc = ensure_base(t, "rixbase:", sp->project)))
            break;
        if (!sp->n) continue;
        /* The keys only the records hold, sorted, merged with the
         * prepared ones into the span's run (keyed: sorted in already). */
        x.n = 0;
        if (!p->keyed && (rc = record_keys(t, sp->project, sp->first, sp->last, &x))) break;
        if (!x.n) {
            rc = write_run(t, sp->project, p->e + sp->start, sp->n);
            continue;
        }
        tent *nt = realloc(tmp, x.n * sizeof *nt);
        if (!nt) {
            rc = SDB_ENOMEM;
            break;
        }
        tmp = nt;
        sdb__hash_sort(x.v, x.n, sizeof *x.v, cmp_tent, tmp);
        if ((rc = merge(p->e + sp->start, sp->n, x.v, x.n, &merged))) break;
        rc = write_run(t, sp->project, merged, sp->n + x.n);
        free(merged);
        merged = NULL;
    }
    free(tmp);
    free(x.v);
    return rc;
}

/* ------------------------------------------------------------------- read */

typedef struct find_ctx {
    const uint64_t *hs; /* sorted */
    size_t n_h;
    uint64_t below, max;
    uint64_t *refs;
    size_t n, cap;
} find_ctx;

static int add_ref(find_ctx *f, uint64_t ref)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        uint64_t *v = realloc(f->refs, cap * sizeof *v);
        if (!v) return SDB_ENOMEM;
        f->refs = v;
        f->cap = cap;
    }
    f->refs[f->n++] = ref;
    return SDB_OK;
}

/* First index in ents (n) whose entry is at or past (h, ref). */
static uint64_t lower_bound(const uint8_t *ents, uint64_t n, uint64_t h, uint64_t ref)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ent_less(ent_at(ents, mid), h, ref))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first block of run v (version 2) whose first entry is at or past
 * (h, ref): every entry before (h, ref) is in the blocks before it. */
static uint32_t dir_lower(const run_view *v, uint64_t h, uint64_t ref)
{
    uint32_t lo = 0, hi = v->nb;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        tent d;
        memcpy(&d, v->dir + (size_t)mid * DIR_LEN, sizeof d);
        if (ent_less(d, h, ref))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Key h's entries below f->below in run v, the newest f->max of them,
 * newest first. */
static int find_key(find_ctx *f, const run_view *v, uint64_t h)
{
    int rc = SDB_OK;
    if (v->ents) {
        uint64_t lo = lower_bound(v->ents, v->n, h, 0), hi = lower_bound(v->ents, v->n, h, f->below);
        if (hi - lo > f->max) lo = hi - f->max;
        for (uint64_t i = hi; rc == SDB_OK && i > lo; i--) rc = add_ref(f, ent_at(v->ents, i - 1).ref);
        return rc;
    }
    tent blk[BLK];
    size_t got = 0;
    for (uint32_t b = dir_lower(v, h, f->below); b > 0 && got < f->max;) {
        uint32_t m;
        if ((rc = dec_block(v, --b, blk, &m))) return rc;
        for (uint32_t i = m; i > 0 && got < f->max; i--) {
            tent x = blk[i - 1];
            if (x.h < h) return SDB_OK;
            if (x.h > h || x.ref >= f->below) continue;
            if ((rc = add_ref(f, x.ref))) return rc;
            got++;
        }
        if (blk[0].h < h) break;
    }
    return SDB_OK;
}

/* One run's entries for each of f->hs below f->below, the newest f->max
 * of each. */
static int find_in_run(const run_view *v, void *ctx)
{
    find_ctx *f = ctx;
    int rc = SDB_OK;
    for (size_t k = 0; rc == SDB_OK && k < f->n_h; k++) rc = find_key(f, v, f->hs[k]);
    return rc;
}

static int cmp_ref_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool in_sorted(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

/* Whether pending record val (ref) has a key of kind among f's. */
static int rec_has_key(int kind, const find_ctx *f, uint64_t ref, const sdb__val *val,
                       tvec *scratch, bool *out)
{
    *out = false;
    int rc;
    if (kind == SDB__TIX_TRACE || kind == SDB__TIX_NOTRACE) {
        sdb__fixed fx;
        if ((rc = sdb__row_fixed(val->p, val->len, &fx))) return rc;
        *out = kind == SDB__TIX_TRACE ? in_sorted(f->hs, f->n_h, fx.trace) : fx.trace == 0;
        return SDB_OK;
    }
    if (!rec_may_have_keys(val->p, val->len)) return SDB_OK;
    sdb__row row;
    scratch->n = 0;
    if ((rc = sdb__row_decode(val->p, val->len, &row)) || (rc = row_keys(&row, ref, scratch)))
        return rc;
    for (size_t i = 0; i < scratch->n && !*out; i++)
        *out = in_sorted(f->hs, f->n_h, scratch->v[i].h);
    return SDB_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sdb__tix_base(sdb__txn *t, uint32_t project, int kind, uint64_t *out_base)
{
    uint64_t base, folded;
    int rc = sdb__meta_get_project(t, kind == SDB__TIX_TRACE ? "tixbase:" : "rixbase:", project,
                                   &base);
    if (rc || (rc = sdb__folded_of(t, project, &folded))) return rc;
    /* No base yet: nothing folded has been indexed. */
    *out_base = base ? base - 1 : folded;
    return SDB_OK;
}

int sdb__tix_refs(sdb__txn *t, uint32_t project, int kind, const uint64_t *hs, size_t n_h,
                  uint64_t below, size_t max, uint64_t **out_refs, size_t *out_n,
                  uint64_t *out_base, uint64_t *out_cut)
{
    *out_refs = NULL;
    *out_n = 0;
    *out_base = 0;
    *out_cut = 0;
    find_ctx f = {NULL, 0, below, max, NULL, 0, 0};
    uint64_t folded, *sorted = malloc((n_h ? n_h : 1) * sizeof *sorted);
    run_info *runs = NULL;
    size_t n_runs;
    sdb__rowit *it = NULL;
    tvec scratch = {0};
    int rc;
    if (!sorted) {
        rc = SDB_ENOMEM;
        goto done;
    }
    /* Distinct and sorted: the pending walk's set, and each key's
     * entries taken once. */
    memcpy(sorted, hs, n_h * sizeof *hs);
    qsort(sorted, n_h, sizeof *sorted, cmp_u64);
    for (size_t i = 0; i < n_h; i++)
        if (!f.n_h || sorted[f.n_h - 1] != sorted[i]) sorted[f.n_h++] = sorted[i];
    f.hs = sorted;
    if ((rc = sdb__tix_base(t, project, kind, out_base))) goto done;
    if ((rc = sdb__folded_of(t, project, &folded))) goto done;
    /* The rows the fold has not reached, newest first, at most max of
     * them: past that the answer is cut there (the caller's cursor). */
    if ((rc = sdb__rows_open(t, project, below, 1, &it))) goto done;
    uint64_t ref, walked = 0;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK && ref > folded) {
        if (walked++ == max) {
            *out_cut = ref + 1;
            break;
        }
        bool has;
        if ((rc = rec_has_key(kind, &f, ref, &val, &scratch, &has))) goto done;
        if (has && (rc = add_ref(&f, ref))) goto done;
    }
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
    rc = SDB_OK;
    if (!*out_cut && (rc = load_runs(t, project, &runs, &n_runs, find_in_run, &f))) goto done;
    if (f.n > 1) qsort(f.refs, f.n, sizeof *f.refs, cmp_ref_desc);
    size_t m = 0;
    for (size_t i = 0; i < f.n; i++)
        if (!m || f.refs[m - 1] != f.refs[i]) f.refs[m++] = f.refs[i];
    f.n = m;
    *out_n = f.n < max ? f.n : max;
    *out_refs = f.n ? f.refs : NULL;
    if (!f.n) free(f.refs);
    f.refs = NULL;
done:
    sdb__rows_close(it);
    free(sorted);
    free(scratch.v);
    free(runs);
    free(f.refs);
    return rc;
}

static int count_run(const run_view *v, void *ctx)
{
    *(uint64_t *)ctx += v->n;
    return SDB_OK;
}

int sdb__tix_stats(sdb__txn *t, uint32_t project, uint64_t *out_entries, uint64_t *out_runs)
{
    *out_entries = 0;
    run_info *runs;
    size_t n_runs;
    int rc = load_runs(t, project, &runs, &n_runs, count_run, out_entries);
    free(runs);
    *out_runs = rc ? 0 : n_runs;
    return rc;
}
