/* The fold: acknowledged scores from the pending log into column segments.
 *
 * Analytics read only segments, so the fold is what moves the watermark
 * (DESIGN.md "Aggregation delay"). The pending log is keyed by row ref and
 * its ingest times never decrease, so the scores visible at watermark W are
 * a prefix of the log. A fold takes that prefix in large slices (one write
 * transaction each), sorts each slice by (project, name, bucket) so that
 * every bucket's last chunk is rewritten at most once per slice, and
 * deletes what it folded. Large folds are the point of the delay: they
 * amortise the chunk rewrites that small ones would repeat.
 */
#include "internal.h"

#define SLICE_ROWS (1u << 21)

typedef struct fold_ctx {
    int64_t watermark;
    int64_t bucket_ms;
    int done; /* set by a slice that reached the end of the visible prefix */
    sdb__fixed *rows;
    const sdb__fixed **ptrs;
} fold_ctx;

static int cmp_rows(const void *a, const void *b, void *arg)
{
    int64_t bw = *(const int64_t *)arg;
    const sdb__fixed *x = *(const sdb__fixed *const *)a, *y = *(const sdb__fixed *const *)b;
    if (x->project != y->project) return x->project < y->project ? -1 : 1;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    int64_t bx = sdb__floor_div(x->ts, bw), by = sdb__floor_div(y->ts, bw);
    if (bx != by) return bx < by ? -1 : 1;
    return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static int fold_txn(sdb__txn *t, void *arg)
{
    fold_ctx *c = arg;
    c->done = 0;
    uint64_t old_wm = 0;
    int rc = sdb__meta_get_u64(t, "watermark", &old_wm);
    if (rc && rc != SDB_ENOTFOUND) return rc;
    int64_t wm = c->watermark;
    if (rc == SDB_OK && sdb__key_ts(old_wm) > wm) wm = sdb__key_ts(old_wm);

    /* Copy the visible prefix out: the map may move once we write. */
    sdb__cur *cur;
    if ((rc = sdb__cur_open(t, SDB__DB_PENDING, &cur))) return rc;
    uint32_t n = 0;
    sdb__val key, val;
    for (rc = sdb__cur_seek(cur, NULL, 0, &key, &val); rc == SDB_OK && n < SLICE_ROWS;
         rc = sdb__cur_next(cur, &key, &val)) {
        if (val.len != sizeof(sdb__fixed)) {
            rc = SDB_ECORRUPT;
            break;
        }
        memcpy(&c->rows[n], val.p, sizeof(sdb__fixed));
        if (c->rows[n].ingested > wm) break;
        n++;
    }
    int reached_end = rc == SDB_ENOTFOUND || (rc == SDB_OK && n < SLICE_ROWS);
    int all_pending = rc == SDB_ENOTFOUND;
    sdb__cur_close(cur);
    if (rc && rc != SDB_ENOTFOUND) return rc;

    for (uint32_t i = 0; i < n; i++) c->ptrs[i] = &c->rows[i];
    qsort_r(c->ptrs, n, sizeof *c->ptrs, cmp_rows, &c->bucket_ms);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i + 1;
        int64_t b = sdb__floor_div(c->ptrs[i]->ts, c->bucket_ms);
        while (j < n && c->ptrs[j]->project == c->ptrs[i]->project &&
               c->ptrs[j]->name == c->ptrs[i]->name &&
               sdb__floor_div(c->ptrs[j]->ts, c->bucket_ms) == b)
            j++;
        if ((rc = sdb__seg_append(t, c->ptrs + i, j - i))) return rc;
        i = j;
    }
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && c->ptrs[j]->project == c->ptrs[i]->project) j++;
        if ((rc = sdb__pending_add(t, c->ptrs[i]->project, -(int64_t)(j - i)))) return rc;
        i = j;
    }
    if (all_pending) {
        if ((rc = sdb__clear(t, SDB__DB_PENDING))) return rc;
    } else {
        for (uint32_t i = 0; i < n; i++) {
            uint8_t k[8];
            sdb__be64(k, c->rows[i].ref);
            if ((rc = sdb__del(t, SDB__DB_PENDING, k, sizeof k))) return rc;
        }
    }
    if (reached_end) {
        if ((rc = sdb__meta_put_u64(t, "watermark", sdb__ts_key(wm)))) return rc;
        c->done = 1;
    }
    return SDB_OK;
}

int sdb_store_fold(sdb_store *s, int64_t watermark_ms, uint64_t *out_pending)
{
    if (s->read_only) return sdb_store_watermark(s, NULL, out_pending);
    fold_ctx c = {.watermark = watermark_ms, .bucket_ms = s->bucket_ms};
    c.rows = malloc(sizeof *c.rows * SLICE_ROWS);
    c.ptrs = malloc(sizeof *c.ptrs * SLICE_ROWS);
    int rc = SDB_ENOMEM;
    if (c.rows && c.ptrs) {
        do {
            rc = sdb__write(s, fold_txn, &c);
        } while (rc == SDB_OK && !c.done);
    }
    free(c.rows);
    free(c.ptrs);
    if (rc == SDB_OK && out_pending) rc = sdb_store_watermark(s, NULL, out_pending);
    return rc;
}

int sdb_store_watermark(sdb_store *s, int64_t *out_watermark_ms, uint64_t *out_pending)
{
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    uint64_t wm = 0;
    rc = sdb__meta_get_u64(t, "watermark", &wm);
    if (out_watermark_ms) *out_watermark_ms = rc == SDB_OK ? sdb__key_ts(wm) : INT64_MIN;
    if (out_pending) *out_pending = sdb__count(t, SDB__DB_PENDING);
    sdb__txn_abort(t);
    return rc == SDB_ENOTFOUND ? SDB_OK : rc;
}
