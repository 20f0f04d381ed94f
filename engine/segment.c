/* Column segments: the unit analytics read.
 *
 * A segment holds up to chunk_rows scores of one (project, name, time
 * bucket) as fixed-width column arrays behind a 128-byte header. The header
 * is both a zone map (time and value ranges, type counts) and a
 * pre-aggregate (count, sum, sum of squared deviations), so a query that
 * covers a whole segment with no row filter reads 128 bytes, not the
 * columns. The header keeps M2 = sum((v - mean)^2) rather than a raw sum of
 * squares: merged with Chan et al.'s formula it gives a standard deviation
 * that stays exact to ~1e-15 even when the mean is large against the
 * spread, where sum-of-squares loses every digit.
 *
 * Invariant: the header always describes exactly the rows of its columns;
 * every change rebuilds the whole chunk through sdb__seg_build().
 */
#include "internal.h"

#include <math.h>

void sdb__seg_key(uint8_t *k, uint32_t project, uint32_t name, int64_t bucket,
                  uint32_t chunk)
{
    sdb__be32(k, project);
    sdb__be32(k + 4, name);
    sdb__be64(k + 8, sdb__ts_key(bucket));
    sdb__be32(k + 16, chunk);
}

int sdb__seg_open(const void *p, size_t len, sdb__seg *g)
{
    if (len < sizeof(sdb__seg_hdr)) return SDB_ECORRUPT;
    memcpy(&g->h, p, sizeof g->h);
    if (g->h.magic != SDB__SEG_MAGIC || g->h.version != 1) return SDB_ECORRUPT;
    uint32_t n = g->h.n_rows;
    if (len != sdb__seg_bytes(n)) return SDB_ECORRUPT;
    if ((uint64_t)g->h.n_type[0] + g->h.n_type[1] + g->h.n_type[2] != n) return SDB_ECORRUPT;
    const uint8_t *c = (const uint8_t *)p + sizeof(sdb__seg_hdr);
    g->n = n;
    g->ts = c;
    g->value = c + 8ull * n;
    g->trace = c + 16ull * n;
    g->ref = c + 24ull * n;
    for (int d = 0; d < SDB_N_DIMS; d++) g->dims[d] = c + 32ull * n + 4ull * n * (unsigned)d;
    g->type = c + 56ull * n;
    g->source = c + 57ull * n;
    return SDB_OK;
}

void sdb__seg_row(const sdb__seg *g, uint32_t i, sdb__fixed *fx)
{
    memcpy(&fx->ts, g->ts + 8ull * i, 8);
    memcpy(&fx->value, g->value + 8ull * i, 8);
    memcpy(&fx->trace, g->trace + 8ull * i, 8);
    memcpy(&fx->ref, g->ref + 8ull * i, 8);
    for (int d = 0; d < SDB_N_DIMS; d++) memcpy(&fx->dims[d], g->dims[d] + 4ull * i, 4);
    fx->type = g->type[i];
    fx->source = g->source[i];
    fx->ingested = 0;
    memset(fx->pad, 0, sizeof fx->pad);
}

void sdb__seg_build(const sdb__fixed *const *rows, uint32_t n, void *dst)
{
    sdb__seg_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = SDB__SEG_MAGIC;
    h.version = 1;
    h.n_rows = n;
    h.ts_min = INT64_MAX;
    h.ts_max = INT64_MIN;
    h.v_min = INFINITY;
    h.v_max = -INFINITY;
    h.max_ingested = INT64_MIN;
    uint8_t *c = (uint8_t *)dst + sizeof h;
    uint64_t n_num = 0;
    for (uint32_t i = 0; i < n; i++) {
        const sdb__fixed *r = rows[i];
        memcpy(c + 8ull * i, &r->ts, 8);
        memcpy(c + 8ull * n + 8ull * i, &r->value, 8);
        memcpy(c + 16ull * n + 8ull * i, &r->trace, 8);
        memcpy(c + 24ull * n + 8ull * i, &r->ref, 8);
        for (int d = 0; d < SDB_N_DIMS; d++)
            memcpy(c + 32ull * n + 4ull * n * (unsigned)d + 4ull * i, &r->dims[d], 4);
        c[56ull * n + i] = r->type;
        c[57ull * n + i] = r->source;
        h.n_type[r->type < SDB_N_TYPES ? r->type : 0]++;
        if (r->ts < h.ts_min) h.ts_min = r->ts;
        if (r->ts > h.ts_max) h.ts_max = r->ts;
        if (r->ingested > h.max_ingested) h.max_ingested = r->ingested;
        if (r->type != SDB_CATEGORICAL) {
            n_num++;
            h.sum += r->value;
            if (r->value < h.v_min) h.v_min = r->value;
            if (r->value > h.v_max) h.v_max = r->value;
        }
    }
    /* Two-pass M2 about the mean of this chunk, both passes on deviations
     * from k, its first numeric value (sdb__mom says why). */
    if (n_num) {
        uint32_t first = 0;
        while (rows[first]->type == SDB_CATEGORICAL) first++;
        double k = rows[first]->value, s1 = 0, m2 = 0;
        for (uint32_t i = 0; i < n; i++)
            if (rows[i]->type != SDB_CATEGORICAL) s1 += rows[i]->value - k;
        double dm = s1 / (double)n_num;
        for (uint32_t i = 0; i < n; i++) {
            if (rows[i]->type == SDB_CATEGORICAL) continue;
            double d = (rows[i]->value - k) - dm;
            m2 += d * d;
        }
        h.k = k;
        h.dm = dm;
        h.m2 = m2;
    }
    memcpy(dst, &h, sizeof h);
}

/* Pre-aggregates by dimension value: a dashboard's "average per model"
 * over whole chunks reads these few entries instead of the columns. Two
 * passes per value (sum first, then squared deviations from its mean) keep
 * M2 exact, as in the header. */
static int build_preagg(const sdb__fixed *const *rows, uint32_t n, sdb__buf *out)
{
    out->len = 0;
    for (uint32_t i = 0; i < n; i++)
        if (rows[i]->type == SDB_CATEGORICAL) return SDB_OK; /* none kept */
    sdb__preagg e[SDB__PREAGG_MAX];
    for (int d = 0; d < SDB_N_DIMS; d++) {
        uint16_t m = 0;
        bool over = false;
        for (uint32_t i = 0; i < n && !over; i++) {
            uint32_t id = rows[i]->dims[d];
            double v = rows[i]->value;
            uint16_t j = 0;
            while (j < m && e[j].id != id) j++;
            if (j == m) {
                if (m == SDB__PREAGG_MAX) {
                    over = true;
                    break;
                }
                e[m++] = (sdb__preagg){id, 0, 0, 0, INFINITY, -INFINITY, v, 0};
            }
            e[j].n++;
            e[j].sum += v;
            e[j].dm += v - e[j].k; /* the deviation sum first, divided below */
            if (v < e[j].min) e[j].min = v;
            if (v > e[j].max) e[j].max = v;
        }
        if (over) {
            uint16_t none = 0xFFFF;
            if (sdb__buf_add(out, &none, 2)) return SDB_ENOMEM;
            continue;
        }
        for (uint16_t j = 0; j < m; j++) e[j].dm /= (double)e[j].n;
        for (uint32_t i = 0; i < n; i++) {
            uint16_t j = 0;
            while (e[j].id != rows[i]->dims[d]) j++;
            double dv = (rows[i]->value - e[j].k) - e[j].dm;
            e[j].m2 += dv * dv;
        }
        if (sdb__buf_add(out, &m, 2) || sdb__buf_add(out, e, sizeof(sdb__preagg) * m))
            return SDB_ENOMEM;
    }
    return SDB_OK;
}

int sdb__preagg_find(const void *p, size_t len, int d, const uint8_t **out)
{
    const uint8_t *c = p, *end = c + len;
    for (int i = 0; i <= d; i++) {
        if (end - c < 2) return -1;
        uint16_t m;
        memcpy(&m, c, 2);
        c += 2;
        if (m == 0xFFFF) {
            if (i == d) return -1;
            continue;
        }
        if ((size_t)(end - c) < (size_t)m * sizeof(sdb__preagg)) return -1;
        if (i == d) {
            *out = c;
            return m;
        }
        c += (size_t)m * sizeof(sdb__preagg);
    }
    return -1;
}

/* Write rows[0..n) as chunk `chunk` of (project, name, bucket), with its
 * pre-aggregates. */
static int put_chunk(sdb__txn *t, uint32_t project, uint32_t name, int64_t bucket,
                     uint32_t chunk, const sdb__fixed *const *rows, uint32_t n)
{
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, project, name, bucket, chunk);
    int rc;
    if (n == 0) {
        rc = sdb__del(t, SDB__DB_PREAGG, k, sizeof k);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        return sdb__del(t, SDB__DB_SEGMENTS, k, sizeof k);
    }
    void *dst;
    if ((rc = sdb__reserve(t, SDB__DB_SEGMENTS, k, sizeof k, sdb__seg_bytes(n), &dst)))
        return rc;
    sdb__seg_build(rows, n, dst);
    sdb__buf pa = {0};
    rc = build_preagg(rows, n, &pa);
    if (rc == SDB_OK && pa.len)
        rc = sdb__put(t, SDB__DB_PREAGG, k, sizeof k, pa.p, pa.len, 0);
    else if (rc == SDB_OK && (rc = sdb__del(t, SDB__DB_PREAGG, k, sizeof k)) == SDB_ENOTFOUND)
        rc = SDB_OK;
    sdb__buf_free(&pa);
    return rc;
}

/* Copy every row of a segment out into fx[] (the map may move under a
 * write), fixing project and name from the key. */
static void seg_rows(const sdb__seg *g, uint32_t project, uint32_t name, sdb__fixed *fx)
{
    for (uint32_t i = 0; i < g->n; i++) {
        sdb__seg_row(g, i, &fx[i]);
        fx[i].project = project;
        fx[i].name = name;
    }
}

int sdb__seg_remove(sdb__txn *t, const sdb__fixed *fx)
{
    int64_t bw = sdb__txn_store(t)->bucket_ms;
    int64_t bucket = sdb__floor_div(fx->ts, bw) * bw;
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, fx->project, fx->name, bucket, 0);
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) return rc;
    sdb__val key, val;
    for (rc = sdb__cur_seek(c, k, sizeof k, &key, &val); rc == SDB_OK;
         rc = sdb__cur_next(c, &key, &val)) {
        if (key.len != sizeof k || memcmp(key.p, k, 16) != 0) break;
        sdb__seg g;
        if ((rc = sdb__seg_open(val.p, val.len, &g))) break;
        uint32_t at = UINT32_MAX;
        for (uint32_t i = 0; i < g.n; i++) {
            uint64_t r;
            memcpy(&r, g.ref + 8ull * i, 8);
            if (r == fx->ref) {
                at = i;
                break;
            }
        }
        if (at == UINT32_MAX) continue;
        uint32_t chunk = sdb__rd32((const uint8_t *)key.p + 16);
        sdb__fixed *rows = malloc(sizeof *rows * g.n);
        const sdb__fixed **ptrs = malloc(sizeof *ptrs * g.n);
        if (!rows || !ptrs) {
            free(rows);
            free(ptrs);
            rc = SDB_ENOMEM;
            break;
        }
        seg_rows(&g, fx->project, fx->name, rows);
        uint32_t m = 0;
        for (uint32_t i = 0; i < g.n; i++)
            if (i != at) ptrs[m++] = &rows[i];
        sdb__cur_close(c);
        c = NULL;
        rc = put_chunk(t, fx->project, fx->name, bucket, chunk, ptrs, m);
        free(rows);
        free(ptrs);
        return rc;
    }
    sdb__cur_close(c);
    /* A row whose record exists but is in no segment means the store is
     * inconsistent. */
    return rc == SDB_OK || rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
}

/* Find the last chunk of (project, name, bucket): its number and rows. */
static int last_chunk(sdb__txn *t, uint32_t project, uint32_t name, int64_t bucket,
                      uint32_t *out_chunk, sdb__seg *out_seg)
{
    uint8_t k[SDB__SEGKEY_LEN];
    sdb__seg_key(k, project, name, bucket, UINT32_MAX);
    sdb__cur *c;
    int rc = sdb__cur_open(t, SDB__DB_SEGMENTS, &c);
    if (rc) return rc;
    sdb__val key, val;
    rc = sdb__cur_seek(c, k, sizeof k, &key, &val);
    if (rc == SDB_OK && !(key.len == sizeof k && memcmp(key.p, k, sizeof k) == 0))
        rc = sdb__cur_prev(c, &key, &val);
    else if (rc == SDB_ENOTFOUND)
        rc = sdb__cur_last(c, &key, &val);
    if (rc == SDB_OK) {
        if (key.len == sizeof k && memcmp(key.p, k, 16) == 0) {
            *out_chunk = sdb__rd32((const uint8_t *)key.p + 16);
            rc = sdb__seg_open(val.p, val.len, out_seg);
        } else {
            rc = SDB_ENOTFOUND;
        }
    }
    sdb__cur_close(c);
    return rc;
}

/* Append rows (all of one project, name and bucket) to the bucket's
 * chunks: the last chunk is rewritten once if it has room, the rest go to
 * new chunks. Never rewrites more than one existing chunk. */
int sdb__seg_append(sdb__txn *t, const sdb__fixed *const *rows, uint32_t n)
{
    sdb_store *s = sdb__txn_store(t);
    uint32_t cap = s->chunk_rows;
    uint32_t project = rows[0]->project, name = rows[0]->name;
    int64_t bucket = sdb__floor_div(rows[0]->ts, s->bucket_ms) * s->bucket_ms;
    uint32_t chunk = 0;
    sdb__seg g;
    int rc = last_chunk(t, project, name, bucket, &chunk, &g);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    uint32_t done = 0, next = rc == SDB_OK ? chunk + 1 : 0;
    if (rc == SDB_OK && g.n < cap) {
        uint32_t take = cap - g.n < n ? cap - g.n : n;
        uint32_t total = g.n + take;
        sdb__fixed *old = malloc(sizeof *old * (g.n ? g.n : 1));
        const sdb__fixed **ptrs = malloc(sizeof *ptrs * total);
        if (!old || !ptrs) {
            free(old);
            free(ptrs);
            return SDB_ENOMEM;
        }
        seg_rows(&g, project, name, old);
        for (uint32_t i = 0; i < g.n; i++) ptrs[i] = &old[i];
        for (uint32_t i = 0; i < take; i++) ptrs[g.n + i] = rows[i];
        rc = put_chunk(t, project, name, bucket, chunk, ptrs, total);
        free(old);
        free(ptrs);
        if (rc) return rc;
        done = take;
    }
    while (done < n) {
        uint32_t take = n - done < cap ? n - done : cap;
        if ((rc = put_chunk(t, project, name, bucket, next++, rows + done, take))) return rc;
        done += take;
    }
    return SDB_OK;
}
