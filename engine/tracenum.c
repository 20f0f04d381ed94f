/* Trace numbers: every distinct trace hash of the store gets a dense
 * number (1, 2, 3, ... in the order the fold first sees them; 0 means "no
 * trace"), so that the trace column of a segment holds a number
 * bit-packed to the chunk's span instead of 8 bytes of xxh3, and a
 * group's distinct traces are a set of small integers (a bitmap once
 * large: aggregate.c) instead of 64-bit hashes to sort or hash.
 *
 * Identity is the hash's, as before: two trace ids with one 64-bit hash
 * were one trace for the distinct count and still are (one number).
 *
 * The map hash -> number is a set of sorted runs in the `tnum` database
 * (key 'n' | run number be64), each run a plain array of (u64 hash, u32
 * number) entries sorted by hash; a hash is in exactly one run. The fold
 * calls sdb__tnum_assign once per slice in its write transaction, so the
 * numbers are as durable as the segments that hold them (crash safe:
 * both commit or neither). An assignment:
 *
 *  - sorts the slice's (hash, row) pairs (sdb__hash_sort: two passes over
 *    uniform hashes), so each distinct hash is a contiguous group;
 *  - probes every run with the sorted distinct hashes, a galloping
 *    search from the previous hit (D log(R / D) compares for D hashes in
 *    a run of R; never a probe per row);
 *  - numbers the hashes no run holds in first-seen (row, i.e. ref) order,
 *    from meta "tnum_next": traces that real clients score within minutes
 *    of each other get near numbers, so a chunk's span stays narrow;
 *  - writes those as one new run and merges runs like a binary counter
 *    (the new run absorbs the newest while it is not larger, up to
 *    MERGE_MAX entries), so an entry is rewritten about log2(N / slice)
 *    times, sequentially, and a probe meets a few runs. The write cost of
 *    a slice does not grow with the store past that log: there is no
 *    B-tree insert per trace (issue 9's rule for the id index).
 *
 * Numbers are never reused or removed: replacing or deleting a score
 * leaves its trace's entry (another score may hold it; and a number that
 * no live row holds only costs its 12 bytes). The map costs 12 bytes a
 * distinct trace (bench/gen: 0.3 traces a score, 3.6 B/score), against
 * the 8 - ~2.75 bytes a score it saves in the segments.
 */
#include "internal.h"

#define RUN_MAGIC 0x314E5453u /* "STN1" */
#define HDR_LEN 8u            /* magic u32, n u32 */
#define ENT_LEN 12u           /* u64 hash, u32 number */
#define KEY_LEN 9u            /* 'n' | run number be64 */
#define MERGE_MAX (1u << 22)  /* entries of the largest merged run: 48 MiB */

uint32_t sdb__tnum_merge_max = MERGE_MAX;

typedef struct run_ref {
    uint64_t no;
    uint32_t n;
} run_ref;

static void run_key(uint8_t *k, uint64_t no)
{
    k[0] = 'n';
    sdb__be64(k + 1, no);
}

static inline uint64_t ent_h(const uint8_t *e, size_t i)
{
    uint64_t h;
    memcpy(&h, e + i * ENT_LEN, 8);
    return h;
}

static inline uint32_t ent_num(const uint8_t *e, size_t i)
{
    uint32_t x;
    memcpy(&x, e + i * ENT_LEN + 8, 4);
    return x;
}

static inline void ent_put(uint8_t *e, size_t i, uint64_t h, uint32_t num)
{
    memcpy(e + i * ENT_LEN, &h, 8);
    memcpy(e + i * ENT_LEN + 8, &num, 4);
}

/* The entries of a run value, checked: SDB_ECORRUPT unless its length is
 * exactly its header's count of entries. */
static int run_open(const void *p, size_t len, const uint8_t **out_e, uint32_t *out_n)
{
    uint32_t magic, n;
    if (len < HDR_LEN) return SDB_ECORRUPT;
    memcpy(&magic, p, 4);
    memcpy(&n, (const uint8_t *)p + 4, 4);
    if (magic != RUN_MAGIC || len != HDR_LEN + (size_t)n * ENT_LEN) return SDB_ECORRUPT;
    *out_e = (const uint8_t *)p + HDR_LEN;
    *out_n = n;
    return SDB_OK;
}

/* Every run, oldest first (*out owned). */
static int load_runs(sdb__txn *t, run_ref **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_TNUM, &c);
    if (rc) return rc;
    run_ref *v = NULL;
    size_t n = 0, cap = 0;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, NULL, 0, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        const uint8_t *e;
        uint32_t m;
        if (key.len != KEY_LEN || ((const uint8_t *)key.p)[0] != 'n') {
            rc = SDB_ECORRUPT;
            break;
        }
        if ((rc = run_open(val.p, val.len, &e, &m))) break;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            run_ref *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = SDB_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = (run_ref){sdb__rd64((const uint8_t *)key.p + 1), m};
    }
    sdb__cur_close(c);
    if (rc != SDB_ENOTFOUND) {
        free(v);
        return rc;
    }
    *out = v;
    *out_n = n;
    return SDB_OK;
}

/* The first index in e[lo, n) whose hash is >= h, searching from lo by
 * doubling steps, then halving (galloping): the probes of a sorted batch
 * walk a run left to right, each from the previous one's place. */
static size_t gallop(const uint8_t *e, size_t lo, size_t n, uint64_t h)
{
    if (lo >= n || ent_h(e, lo) >= h) return lo;
    size_t step = 1, prev = lo; /* e[prev] < h */
    while (lo + step < n && ent_h(e, lo + step) < h) {
        prev = lo + step;
        step *= 2;
    }
    size_t hi = lo + step < n ? lo + step : n; /* e[hi] >= h, or hi = n */
    lo = prev + 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ent_h(e, mid) < h) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A distinct hash of the batch: its first row, its number (0: not found). */
typedef struct dh {
    uint64_t h;
    uint32_t first, num;
} dh;

/* (hash, row) pairs for the sort. */
typedef struct hrow {
    uint64_t h;
    uint64_t row;
} hrow;

static int cmp_hrow(const void *a, const void *b)
{
    const hrow *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int cmp_first(const void *a, const void *b)
{
    const dh *x = *(const dh *const *)a, *y = *(const dh *const *)b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Write the sorted new entries of d (those flagged new: num >= first_new)
 * as a run, absorbing the newest runs while they are not larger. */
static int write_run(sdb__txn *t, const dh *d, size_t n_d, uint32_t first_new, uint32_t n_new)
{
    run_ref *runs;
    size_t n_runs;
    int rc = load_runs(t, &runs, &n_runs);
    if (rc) return rc;
    uint64_t no = n_runs ? runs[n_runs - 1].no + 1 : 1, total = n_new;
    size_t k = 0; /* the newest k runs are absorbed */
    while (k < n_runs && runs[n_runs - 1 - k].n <= total &&
           runs[n_runs - 1 - k].n + total <= sdb__tnum_merge_max)
        total += runs[n_runs - 1 - k++].n;
    const uint8_t **ents = calloc(k ? k : 1, sizeof *ents);
    uint32_t *ns = calloc(k ? k : 1, sizeof *ns), *at = calloc(k ? k : 1, sizeof *at);
    uint8_t *buf = malloc(HDR_LEN + total * ENT_LEN), key[KEY_LEN];
    if (!ents || !ns || !at || !buf) {
        rc = SDB_ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < k; j++) {
        sdb__val v;
        run_key(key, runs[n_runs - 1 - j].no);
        if ((rc = sdb__get(t, SDB__DB_TNUM, key, sizeof key, &v))) {
            if (rc == SDB_ENOTFOUND) rc = SDB_ECORRUPT;
            goto done;
        }
        if ((rc = run_open(v.p, v.len, &ents[j], &ns[j]))) goto done;
    }
    /* A k + 1-way merge of disjoint sorted runs (k is a few: the binary
     * counter keeps about log2 of the map's runs). Gets' pages stay valid
     * until the first put or del of this transaction. */
    uint8_t *out = buf + HDR_LEN;
    size_t i = 0;
    for (uint64_t w = 0; w < total; w++) {
        while (i < n_d && d[i].num < first_new) i++; /* found in a run: not new */
        int from = -1;
        uint64_t best = 0;
        uint32_t num = 0;
        if (i < n_d) best = d[i].h, num = d[i].num, from = (int)k;
        for (size_t j = 0; j < k; j++) {
            if (at[j] == ns[j]) continue;
            uint64_t h = ent_h(ents[j], at[j]);
            if (from < 0 || h < best) best = h, num = ent_num(ents[j], at[j]), from = (int)j;
        }
        if (from < 0) {
            rc = SDB_ECORRUPT; /* the runs' counts lied */
            goto done;
        }
        if (from == (int)k) i++;
        else at[from]++;
        ent_put(out, w, best, num);
    }
    uint32_t magic = RUN_MAGIC, n32 = (uint32_t)total;
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &n32, 4);
    for (size_t j = 0; j < k; j++) {
        run_key(key, runs[n_runs - 1 - j].no);
        if ((rc = sdb__del(t, SDB__DB_TNUM, key, sizeof key))) goto done;
    }
    if (k) no = runs[n_runs - k].no; /* the oldest absorbed: order stays by age */
    run_key(key, no);
    rc = sdb__put(t, SDB__DB_TNUM, key, sizeof key, buf, HDR_LEN + total * ENT_LEN, 0);
done:
    free(buf);
    free(at);
    free(ns);
    free(ents);
    free(runs);
    return rc;
}

int sdb__tnum_assign(sdb__txn *t, const uint64_t *h, size_t n, uint32_t *out)
{
    if (n > UINT32_MAX) return SDB_ELIMIT;
    int rc = SDB_OK;
    size_t m = 0, n_d = 0;
    for (size_t i = 0; i < n; i++) m += h[i] != 0;
    hrow *p = malloc((m ? m : 1) * sizeof *p), *tmp = malloc((m ? m : 1) * sizeof *tmp);
    dh *d = malloc((m ? m : 1) * sizeof *d);
    dh **fresh = NULL;
    run_ref *runs = NULL;
    size_t n_runs = 0, n_fresh = 0;
    if (!p || !tmp || !d) {
        rc = SDB_ENOMEM;
        goto done;
    }
    for (size_t i = 0, w = 0; i < n; i++) {
        out[i] = 0;
        if (h[i]) p[w++] = (hrow){h[i], i};
    }
    sdb__hash_sort(p, m, sizeof *p, cmp_hrow, tmp);
    /* Each group of equal hashes: its first row (the sort breaks ties by
     * row, so the group's first). */
    for (size_t i = 0; i < m; i++)
        if (i == 0 || p[i].h != p[i - 1].h) d[n_d++] = (dh){p[i].h, (uint32_t)p[i].row, 0};
    if ((rc = load_runs(t, &runs, &n_runs))) goto done;
    for (size_t r = 0; r < n_runs; r++) {
        uint8_t key[KEY_LEN];
        sdb__val v;
        const uint8_t *e;
        uint32_t re;
        run_key(key, runs[r].no);
        if ((rc = sdb__get(t, SDB__DB_TNUM, key, sizeof key, &v))) {
            if (rc == SDB_ENOTFOUND) rc = SDB_ECORRUPT;
            goto done;
        }
        if ((rc = run_open(v.p, v.len, &e, &re))) goto done;
        size_t j = 0;
        for (size_t i = 0; i < n_d && j < re; i++) {
            if (d[i].num) continue;
            j = gallop(e, j, re, d[i].h);
            if (j < re && ent_h(e, j) == d[i].h) d[i].num = ent_num(e, j);
        }
    }
    for (size_t i = 0; i < n_d; i++)
        if (!d[i].num) n_fresh++;
    if (n_fresh) {
        uint64_t next = 1;
        rc = sdb__meta_get_u64(t, "tnum_next", &next);
        if (rc == SDB_ENOTFOUND) next = 1, rc = SDB_OK;
        if (rc) goto done;
        if (next == 0 || next + n_fresh > (uint64_t)UINT32_MAX + 1) {
            rc = SDB_ELIMIT; /* 2^32 - 1 distinct traces */
            goto done;
        }
        if (!(fresh = malloc(n_fresh * sizeof *fresh))) {
            rc = SDB_ENOMEM;
            goto done;
        }
        for (size_t i = 0, w = 0; i < n_d; i++)
            if (!d[i].num) fresh[w++] = &d[i];
        /* First-seen order: rows are in ref order. */
        qsort(fresh, n_fresh, sizeof *fresh, cmp_first);
        uint32_t first_new = (uint32_t)next;
        for (size_t i = 0; i < n_fresh; i++) fresh[i]->num = (uint32_t)next++;
        if ((rc = sdb__meta_put_u64(t, "tnum_next", next))) goto done;
        if ((rc = write_run(t, d, n_d, first_new, (uint32_t)n_fresh))) goto done;
    }
    for (size_t i = 0, g = 0; i < m; i++) {
        if (i && p[i].h != p[i - 1].h) g++;
        out[p[i].row] = d[g].num;
    }
done:
    free(runs);
    free(fresh);
    free(d);
    free(tmp);
    free(p);
    return rc;
}

int sdb__tnum_lookup(sdb__txn *t, uint64_t h, uint32_t *out)
{
    *out = 0;
    if (!h) return SDB_OK;
    run_ref *runs;
    size_t n_runs;
    int rc = load_runs(t, &runs, &n_runs);
    if (rc) return rc;
    for (size_t r = 0; r < n_runs && !*out; r++) {
        uint8_t key[KEY_LEN];
        sdb__val v;
        const uint8_t *e;
        uint32_t re;
        run_key(key, runs[r].no);
        if ((rc = sdb__get(t, SDB__DB_TNUM, key, sizeof key, &v)) ||
            (rc = run_open(v.p, v.len, &e, &re)))
            break;
        size_t j = gallop(e, 0, re, h);
        if (j < re && ent_h(e, j) == h) *out = ent_num(e, j);
    }
    free(runs);
    if (rc == SDB_OK && !*out) rc = SDB_ENOTFOUND;
    return rc;
}

int sdb__tnum_count(sdb__txn *t, uint64_t *out)
{
    uint64_t next = 1;
    int rc = sdb__meta_get_u64(t, "tnum_next", &next);
    if (rc == SDB_ENOTFOUND) next = 1, rc = SDB_OK;
    *out = rc == SDB_OK && next ? next - 1 : 0;
    return rc;
}

int sdb__tnum_stats(sdb__txn *t, uint64_t *out_entries, uint64_t *out_runs)
{
    run_ref *runs;
    size_t n_runs;
    int rc = load_runs(t, &runs, &n_runs);
    *out_entries = *out_runs = 0;
    if (rc) return rc;
    for (size_t r = 0; r < n_runs; r++) *out_entries += runs[r].n;
    *out_runs = n_runs;
    free(runs);
    return SDB_OK;
}
