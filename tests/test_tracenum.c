/* Trace numbers (engine/tracenum.c) against a plain hash table: many
 * batches of hashes drawn from a pool (repeats inside a batch and across
 * batches, hashes of 0, new hashes in every batch), assigned in write
 * transactions with the merge cap lowered so that runs are written,
 * merged, and kept apart once past it; every number must be the one the
 * reference gives (first-seen order across the whole history), lookups
 * must agree, an aborted transaction must leave no trace, and the map
 * must survive a reopen.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scoredb.h"
#include "xorshift.h"

static char dir[64];
static sdb_store *s;
static char err[512];
static uint32_t saved_max;

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_tracenum_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {0};
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    saved_max = sdb__tnum_merge_max;
}

static void teardown(void)
{
    sdb__tnum_merge_max = saved_max;
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tracenum, .init = setup, .fini = teardown);

/* The reference: open addressing, hash -> number. */
#define REF_BITS 17
static uint64_t ref_h[1u << REF_BITS];
static uint32_t ref_num[1u << REF_BITS];
static uint32_t ref_next = 1;

static uint32_t *ref_slot(uint64_t h)
{
    uint32_t m = (1u << REF_BITS) - 1, j = (uint32_t)(h * 0x9E3779B97F4A7C15ull >> 40) & m;
    while (ref_num[j] && ref_h[j] != h) j = (j + 1) & m;
    ref_h[j] = h;
    return &ref_num[j];
}

static void ref_reset(void)
{
    memset(ref_num, 0, sizeof ref_num);
    ref_next = 1;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* A hash from a pool that grows: mostly recent ones (a client scores a
 * trace soon after it), some old, some new, some 0 (no trace), and a few
 * small values so that neighbouring hashes meet in the runs. */
static uint64_t pool[40000];
static size_t n_pool;

static uint64_t draw(void)
{
    uint64_t r = xorshift64(&rng) % 100;
    if (r < 5) return 0;
    if (r < 30 || n_pool == 0) {
        uint64_t h = r < 8 ? 1 + xorshift64(&rng) % 64 : xorshift64(&rng);
        if (h && n_pool < sizeof pool / sizeof *pool) pool[n_pool++] = h;
        return h;
    }
    if (r < 80) return pool[n_pool - 1 - xorshift64(&rng) % (n_pool < 200 ? n_pool : 200)];
    return pool[xorshift64(&rng) % n_pool];
}

static void assign(const uint64_t *h, size_t n, uint32_t *out, bool commit)
{
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 1, &t), SDB_OK);
    cr_assert_eq(sdb__tnum_assign(t, h, n, out), SDB_OK);
    if (commit) cr_assert_eq(sdb__txn_commit(t), SDB_OK);
    else sdb__txn_abort(t);
}

Test(tracenum, numbers_match_a_hash_table_across_batches_and_merges)
{
    ref_reset();
    n_pool = 0;
    sdb__tnum_merge_max = 1000; /* runs past it stay apart */
    enum { BATCHES = 120, MAX_BATCH = 1500 };
    uint64_t *h = malloc(MAX_BATCH * sizeof *h);
    uint32_t *got = malloc(MAX_BATCH * sizeof *got);
    uint64_t max_runs = 0, last_runs = 0;
    for (int b = 0; b < BATCHES; b++) {
        size_t n = b % 17 == 0 ? 0 : 1 + xorshift64(&rng) % MAX_BATCH;
        for (size_t i = 0; i < n; i++) h[i] = draw();
        bool abort_it = b % 11 == 5;
        assign(h, n, got, !abort_it);
        if (abort_it) {
            /* The same batch again, committed: the aborted numbers were
             * never given. */
            assign(h, n, got, true);
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t want = 0;
            if (h[i]) {
                uint32_t *sl = ref_slot(h[i]);
                if (!*sl) *sl = ref_next++;
                want = *sl;
            }
            cr_assert_eq(got[i], want, "batch %d row %zu hash %llx: %u, want %u", b, i,
                         (unsigned long long)h[i], got[i], want);
        }
        sdb__txn *t;
        uint64_t entries, runs, count;
        cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
        cr_assert_eq(sdb__tnum_stats(t, &entries, &runs), SDB_OK);
        cr_assert_eq(sdb__tnum_count(t, &count), SDB_OK);
        sdb__txn_abort(t);
        cr_assert_eq(entries, ref_next - 1, "one entry a distinct hash");
        cr_assert_eq(count, ref_next - 1);
        if (runs > max_runs) max_runs = runs;
        last_runs = runs;
    }
    cr_assert_gt(ref_next, 6000, "past the merge cap many times: %u", ref_next);
    /* No run past the cap, so at least entries / cap of them; the binary
     * counter keeps about log2 runs below the cap besides the full ones. */
    cr_assert_geq(last_runs, (ref_next - 1 + 999) / 1000, "%llu runs", (unsigned long long)last_runs);
    cr_assert_leq(max_runs, 2 * ((ref_next - 1) / 1000) + 8, "%llu runs", (unsigned long long)max_runs);

    /* Lookups of every pooled hash and of hashes never seen; after a
     * reopen, the same. */
    for (int pass = 0; pass < 2; pass++) {
        sdb__txn *t;
        cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
        for (size_t i = 0; i < n_pool; i++) {
            uint32_t num = 99;
            cr_assert_eq(sdb__tnum_lookup(t, pool[i], &num), SDB_OK);
            cr_assert_eq(num, *ref_slot(pool[i]));
        }
        for (int i = 0; i < 500; i++) {
            uint64_t x = xorshift64(&rng) | 1ull << 63; /* pool hashes may have the bit too */
            uint32_t *sl = ref_slot(x), num = 7;
            if (*sl) continue;
            int rc = sdb__tnum_lookup(t, x, &num);
            cr_assert_eq(rc, SDB_ENOTFOUND);
            cr_assert_eq(num, 0);
        }
        uint32_t zero = 5;
        cr_assert_eq(sdb__tnum_lookup(t, 0, &zero), SDB_OK);
        cr_assert_eq(zero, 0);
        sdb__txn_abort(t);
        if (pass == 0) {
            sdb_store_close(s);
            sdb_options o = {0};
            cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
        }
    }
    free(h);
    free(got);
}

Test(tracenum, first_seen_order_within_a_batch)
{
    /* Hashes sorted the other way from their rows: numbers follow rows. */
    uint64_t h[6] = {900, 0, 500, 900, 100, 500};
    uint32_t got[6];
    assign(h, 6, got, true);
    uint32_t want[6] = {1, 0, 2, 1, 3, 2};
    for (int i = 0; i < 6; i++) cr_assert_eq(got[i], want[i], "row %d: %u", i, got[i]);
    uint64_t h2[3] = {100, 7, 900};
    assign(h2, 3, got, true);
    cr_assert_eq(got[0], 3);
    cr_assert_eq(got[1], 4);
    cr_assert_eq(got[2], 1);
}
