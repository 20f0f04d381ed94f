/* Store, ingest and fold (engine/store.c, ingest.c, fold.c, segment.c):
 * durability across reopen, replacement in every place a score can be,
 * map growth, the watermark and pending counts, project isolation; a disk
 * without room (docs/reliability.md), scoredb check and backup. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "scoredb.h"
#include "internal.h" /* sdb__test_free_bytes; raw writes that plant damage for check; the id
                        * index, row blocks and tombstones driven directly */

#define T0 1767225600000ll /* 2026-01-01 */

static char dir[64];
static sdb_store *s;
static char err[512];

static void open_store(uint64_t map_size)
{
    sdb_options o = {0};
    o.map_size = map_size;
    o.chunk_rows = 16;
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
}

/* Close the store, empty its directory and open it again with map_size. */
static void reopen_empty(uint64_t map_size)
{
    sdb_store_close(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    open_store(map_size);
}

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_store_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    open_store(0);
}

static void teardown(void)
{
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void put(uint32_t project, int64_t now, const char *json)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
    cr_assert_eq(sdb_store_ingest(s, project, b, now), SDB_OK);
    sdb_batch_free(b);
}

/* Run a query and return the value of `"field":` in the first group as a
 * double, or -1 when there is no group. */
static double q1(uint32_t project, const char *query, const char *field)
{
    char *out = NULL;
    cr_assert_eq(sdb_query_json(s, project, query, strlen(query), &out, err, sizeof err), SDB_OK,
                 "%s", err);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *p = strstr(out, "\"groups\":[{");
    double v = -1;
    if (p && (p = strstr(p, key))) v = strtod(p + strlen(key), NULL);
    free(out);
    return v;
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, scores_survive_close_and_reopen)
{
    put(0, T0, "{\"name\":\"a\",\"value\":0.25,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(0, T0, "{\"name\":\"a\",\"value\":0.75,\"trace_id\":\"t\",\"timestamp\":1767225601000}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    sdb_store_close(s);
    open_store(0);
    cr_assert_eq(q1(0, "{\"name\":\"a\"}", "count"), 2);
    cr_assert_eq(q1(0, "{\"name\":\"a\"}", "avg"), 0.5);
}

Test(store, analytics_see_only_what_the_watermark_folded)
{
    put(0, T0, "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\"}");
    put(0, T0 + 60000, "{\"name\":\"a\",\"value\":3,\"trace_id\":\"t\"}");
    uint64_t pending = 0;
    cr_assert_eq(sdb_store_fold(s, T0 + 30000, &pending), SDB_OK);
    cr_assert_eq(pending, 1);
    cr_assert_eq(q1(0, "{}", "count"), 1);
    char *out = NULL;
    cr_assert_eq(sdb_query_json(s, 0, "{}", 2, &out, err, sizeof err), SDB_OK);
    cr_assert_not_null(strstr(out, "\"as_of\":\"2026-01-01T00:00:30.000Z\",\"pending\":1"), "%s", out);
    free(out);
    /* A lower watermark never moves it back. */
    cr_assert_eq(sdb_store_fold(s, T0, &pending), SDB_OK);
    int64_t wm;
    cr_assert_eq(sdb_store_watermark(s, &wm, &pending), SDB_OK);
    cr_assert_eq(wm, T0 + 30000);
    cr_assert_eq(sdb_store_fold(s, T0 + 60000, &pending), SDB_OK);
    cr_assert_eq(pending, 0);
    cr_assert_eq(q1(0, "{}", "avg"), 2);
}

Test(store, replacing_a_score_removes_it_from_pending_and_from_segments)
{
    put(0, T0, "{\"id\":\"x\",\"name\":\"a\",\"value\":10,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(0, T0, "{\"id\":\"x\",\"name\":\"a\",\"value\":20,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    uint64_t pending;
    cr_assert_eq(sdb_store_fold(s, T0, &pending), SDB_OK);
    cr_assert_eq(pending, 0);
    cr_assert_eq(q1(0, "{}", "count"), 1);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 20);
    /* Now replace the folded one, moving it to another name and day. */
    put(0, T0 + 1, "{\"id\":\"x\",\"name\":\"b\",\"value\":5,\"trace_id\":\"t\",\"timestamp\":1767312000000}");
    cr_assert_eq(sdb_store_fold(s, T0 + 1, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"name\":\"a\"}", "count"), -1);
    cr_assert_eq(q1(0, "{\"name\":\"b\",\"stats\":[\"sum\"]}", "sum"), 5);
    cr_assert_eq(q1(0, "{}", "count"), 1);
}

/* A generated id carries its row's ref instead of an `ids` entry: it must
 * still find, replace and delete exactly its own score, and an id that only
 * looks like it (same ref bits, other text) must be a new score. */
Test(store, generated_ids_find_replace_and_delete_their_own_score)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int i = 0; i < 3; i++) {
        char j[160];
        snprintf(j, sizeof j, "{\"name\":\"g\",\"value\":%d,\"trace_id\":\"t%d\",\"timestamp\":%lld}",
                 i + 1, i, T0 + i);
        cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    char ids[3][64];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", sdb_batch_id(b, (size_t)i));
        cr_assert_eq(strlen(ids[i]), 36);
        cr_assert_eq(ids[i][14], '7', "%s is a version 7 UUID", ids[i]);
    }
    sdb_batch_free(b);
    cr_assert_str_neq(ids[0], ids[1]);
    cr_assert_str_neq(ids[1], ids[2]);

    /* Close and reopen: nothing about an id lives only in memory. */
    sdb_store_close(s);
    open_store(0);
    for (int i = 0; i < 3; i++) {
        char *out = NULL;
        cr_assert_eq(sdb_score_get_json(s, 0, ids[i], &out), SDB_OK, "%s", ids[i]);
        char want[256];
        snprintf(want, sizeof want, "\"id\":\"%s\"", ids[i]);
        cr_assert_not_null(strstr(out, want), "%s", out);
        snprintf(want, sizeof want, "\"value\":%d", i + 1);
        cr_assert_not_null(strstr(out, want), "%s", out);
        free(out);
    }
    char *out = NULL;
    cr_assert_eq(sdb_score_get_json(s, 1, ids[0], &out), SDB_ENOTFOUND, "another project");

    /* Sending a generated id back replaces that score. */
    char j[200];
    snprintf(j, sizeof j, "{\"id\":\"%s\",\"name\":\"g\",\"value\":40,\"trace_id\":\"t1\"}", ids[1]);
    put(0, T0 + 10, j);
    cr_assert_eq(sdb_store_fold(s, T0 + 10, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 3);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 1 + 40 + 3);
    cr_assert_eq(sdb_score_get_json(s, 0, ids[1], &out), SDB_OK);
    cr_assert_not_null(strstr(out, "\"value\":40"), "%s", out);
    free(out);

    /* Same ref bits, other millisecond digits: a new score, ids[0] intact. */
    char forged[64];
    snprintf(forged, sizeof forged, "%s", ids[0]);
    forged[0] = forged[0] == 'f' ? 'e' : 'f';
    snprintf(j, sizeof j, "{\"id\":\"%s\",\"name\":\"g\",\"value\":100,\"trace_id\":\"t9\"}", forged);
    put(0, T0 + 20, j);
    cr_assert_eq(sdb_store_fold(s, T0 + 20, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 4);
    cr_assert_eq(sdb_score_get_json(s, 0, ids[0], &out), SDB_OK);
    cr_assert_not_null(strstr(out, "\"value\":1"), "%s", out);
    free(out);
    cr_assert_eq(sdb_score_get_json(s, 0, forged, &out), SDB_OK);
    cr_assert_not_null(strstr(out, "\"value\":100"), "%s", out);
    free(out);

    /* Delete: a generated id (no index entry) and a replaced one (indexed). */
    cr_assert_eq(sdb_score_delete(s, 0, ids[2]), SDB_OK);
    cr_assert_eq(sdb_score_get_json(s, 0, ids[2], &out), SDB_ENOTFOUND);
    cr_assert_eq(sdb_score_delete(s, 0, ids[2]), SDB_ENOTFOUND);
    cr_assert_eq(sdb_score_delete(s, 0, ids[1]), SDB_OK);
    cr_assert_eq(sdb_score_get_json(s, 0, ids[1], &out), SDB_ENOTFOUND);
    cr_assert_eq(sdb_store_fold(s, T0 + 30, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 2);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 101);
}

/* engine/fold.c: rows per fold transaction. */
extern uint32_t sdb__fold_slice;

/* The fold walks each project's rows after its fold mark; slices of 7 rows
 * cut through batches and projects, replacements hit both folded and
 * pending rows, and each project's counts stay its own. */
Test(store, folds_in_small_slices_across_interleaved_projects)
{
    sdb__fold_slice = 7;
    /* 5 batches alternating projects, ingested at T0 .. T0+4; batch k
     * holds values 100k + 0..9, so a batch sums to 1000k + 45. */
    for (int k = 0; k < 5; k++) {
        sdb_batch *b;
        cr_assert_eq(sdb_batch_new(&b), SDB_OK);
        for (int i = 0; i < 10; i++) {
            char j[200];
            snprintf(j, sizeof j,
                     "{\"id\":\"k%d-%d\",\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"t\","
                     "\"timestamp\":%lld}",
                     k, i, i % 3, 100 * k + i, T0 + 3600000ll * (i % 4) + 86400000ll * (k % 2));
            cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK, "%s", err);
        }
        cr_assert_eq(sdb_store_ingest(s, (uint32_t)(k % 2), b, T0 + k), SDB_OK);
        sdb_batch_free(b);
    }
    uint64_t pending;
    cr_assert_eq(sdb_store_fold(s, T0 + 2, &pending), SDB_OK);
    cr_assert_eq(pending, 20, "batches 3 and 4 are after the watermark");
    /* Project 0 sees batches 0 and 2, project 1 batch 1. */
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 20);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 45 + 2045);
    cr_assert_eq(q1(1, "{\"stats\":[\"count\",\"sum\"]}", "count"), 10);
    cr_assert_eq(q1(1, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 1045);

    /* Replace a folded row of project 0 (k0-5: 5 -> 7) and a pending one of
     * project 1 (k3-2: 302 -> 1), each from its own project. */
    put(0, T0 + 5, "{\"id\":\"k0-5\",\"name\":\"n2\",\"value\":7,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(1, T0 + 5, "{\"id\":\"k3-2\",\"name\":\"n2\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    cr_assert_eq(sdb_store_fold(s, T0 + 4, &pending), SDB_OK);
    cr_assert_eq(pending, 2, "the two replacements came after the watermark");
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 29);
    cr_assert_eq(q1(1, "{\"stats\":[\"count\",\"sum\"]}", "count"), 19);
    cr_assert_eq(sdb_store_fold(s, T0 + 5, &pending), SDB_OK);
    cr_assert_eq(pending, 0);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 30);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 45 + 2045 + 4045 + 2);
    cr_assert_eq(q1(1, "{\"stats\":[\"count\",\"sum\"]}", "count"), 20);
    cr_assert_eq(q1(1, "{\"stats\":[\"count\",\"sum\"]}", "sum"), 1045 + 3045 - 301);
    /* Every row is where its name and day say. */
    cr_assert_eq(q1(1, "{\"name\":\"n2\",\"from\":1767225600000,\"to\":1767225600001,"
                       "\"stats\":[\"count\",\"sum\"]}", "sum"), 1);
}

/* Labels and dimension values longer than an LMDB key (511 bytes) are
 * dictionary-keyed by prefix and hash: two that share their first 448
 * bytes stay apart, and answers carry them whole. */
Test(store, long_labels_and_dimension_values_are_kept_whole_and_apart)
{
    static char a[4200], b[4200], j[9000];
    memset(a, 'x', 4096);
    a[4096] = 0;
    memcpy(b, a, sizeof a);
    b[4095] = 'y'; /* differs in the last byte only */
    snprintf(j, sizeof j, "{\"name\":\"c\",\"value\":\"%.600s\",\"trace_id\":\"t\",\"model\":\"%s\"}", a, a);
    put(0, T0, j);
    snprintf(j, sizeof j, "{\"name\":\"c\",\"value\":\"%.599sy\",\"trace_id\":\"t\",\"model\":\"%s\"}", a, b);
    put(0, T0, j);
    put(0, T0, j);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    char *out = NULL;
    const char *q = "{\"name\":\"c\",\"group_by\":[\"model\"]}";
    cr_assert_eq(sdb_query_json(s, 0, q, strlen(q), &out, err, sizeof err), SDB_OK, "%s", err);
    /* Two groups, sorted: the all-'x' model first with one score, then
     * the one ending in 'y' with two; each group's label is its own. */
    char want[9000];
    snprintf(want, sizeof want, "{\"key\":{\"model\":\"%s\"},\"count\":1,\"categories\":{\"%.600s\":1}}", a, a);
    cr_assert_not_null(strstr(out, want), "first group");
    snprintf(want, sizeof want, "{\"key\":{\"model\":\"%s\"},\"count\":2,\"categories\":{\"%.599sy\":2}}", b, a);
    cr_assert_not_null(strstr(out, want), "second group");
    free(out);
    /* A filter on the long value finds exactly its rows. */
    snprintf(j, sizeof j, "{\"name\":\"c\",\"where\":{\"model\":[\"%s\"]}}", b);
    cr_assert_eq(q1(0, j, "count"), 2);
    /* Over SDB_MAX_VALUE (4096 bytes): rejected, naming the field. */
    static char big[5000];
    memset(big, 'z', 4097);
    big[4097] = 0;
    snprintf(j, sizeof j, "{\"name\":\"c\",\"value\":1,\"trace_id\":\"t\",\"model\":\"%s\"}", big);
    sdb_batch *bt;
    cr_assert_eq(sdb_batch_new(&bt), SDB_OK);
    cr_assert_eq(sdb_batch_add_json(bt, j, strlen(j), err, sizeof err), SDB_EINVAL);
    cr_assert_str_eq(err, "field \"model\": longer than 4096 bytes (4097)");
    sdb_batch_free(bt);
}

/* Times are kept inside RFC 3339's years 0000..9999, so no time arithmetic
 * can overflow; the edges themselves are fine. */
Test(store, timestamps_outside_years_0000_to_9999_are_rejected_by_name)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    const char *bad = "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":253402300800000}";
    cr_assert_eq(sdb_batch_add_json(b, bad, strlen(bad), err, sizeof err), SDB_EINVAL);
    cr_assert_str_eq(err, "field \"timestamp\": must be from 0000-01-01T00:00:00.000Z to "
                          "9999-12-31T23:59:59.999Z (-62167219200000 to 253402300799999 ms), "
                          "got 253402300800000");
    const char *edge = "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":253402300799999}";
    cr_assert_eq(sdb_batch_add_json(b, edge, strlen(edge), err, sizeof err), SDB_OK, "%s", err);
    sdb_batch_free(b);
    char *out = NULL;
    const char *q = "{\"from\":-9223372036854775808}";
    cr_assert_eq(sdb_query_json(s, 0, q, strlen(q), &out, err, sizeof err), SDB_EINVAL);
    cr_assert_not_null(strstr(err, "field \"from\": must be from 0000-01-01"), "%s", err);
}

/* Row records keep lower-case UUIDs and even-length lower-case hex (the
 * usual id and trace id) as bytes; every other string stays as given. Each
 * one must come back exactly. */
Test(store, packed_and_plain_ids_and_trace_ids_come_back_exactly)
{
    static const char *const ids[] = {
        "0191e2c4-6f1a-7b3c-9d4e-5f60718293a4",  /* packed as a UUID */
        "0191E2C4-6F1A-7B3C-9D4E-5F60718293A4",  /* upper case: as given */
        "abcdef0123456789", "abc", "x-1", "0191e2c4-6f1a-7b3c-9d4e-5f60718293a",
    };
    static const char *const traces[] = {
        "4bf92f3577b34da6a3ce929d0e0e4736", "00", "0", "4BF92F35", "t-1",
        "0191e2c4-6f1a-7b3c-9d4e-5f60718293a4",
    };
    char j[600], want[300];
    static char long_hex[201];
    memset(long_hex, 'e', 200);
    for (size_t i = 0; i < 6; i++) {
        snprintf(j, sizeof j, "{\"id\":\"%s\",\"name\":\"p\",\"value\":1,\"trace_id\":\"%s\"}",
                 ids[i], traces[i]);
        put(0, T0, j);
    }
    snprintf(j, sizeof j, "{\"id\":\"%s\",\"name\":\"p\",\"value\":1,\"trace_id\":\"%s\"}",
             long_hex, long_hex);
    put(0, T0, j);
    for (size_t i = 0; i < 7; i++) {
        const char *id = i < 6 ? ids[i] : long_hex, *tr = i < 6 ? traces[i] : long_hex;
        char *out = NULL;
        cr_assert_eq(sdb_score_get_json(s, 0, id, &out), SDB_OK, "%s", id);
        snprintf(want, sizeof want, "\"id\":\"%s\"", id);
        cr_assert_not_null(strstr(out, want), "%s in %s", want, out);
        snprintf(want, sizeof want, "\"trace_id\":\"%s\"", tr);
        cr_assert_not_null(strstr(out, want), "%s in %s", want, out);
        free(out);
    }
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"traces\"]}", "traces"), 7);
}

/* One fold slice holding more (name, day) groups than the fold's first
 * group table (512): the table doubles and every row keeps its group. */
Test(store, a_fold_of_many_groups_keeps_every_row_in_its_own)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    char j[200];
    for (int i = 0; i < 3000; i++) {
        snprintf(j, sizeof j,
                 "{\"name\":\"g%d\",\"value\":%d,\"trace_id\":\"t\",\"timestamp\":%lld}",
                 i % 300, i % 7, T0 + 86400000ll * (i % 5));
        cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK); /* 300 names x 5 days */
    double sum = 0;
    for (int i = 0; i < 3000; i++) sum += i % 7;
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "count"), 3000);
    cr_assert_eq(q1(0, "{\"stats\":[\"count\",\"sum\"]}", "sum"), sum);
    /* g7 has rows i = 7, 307, ..., 2707: days (i % 5) and values (i % 7). */
    double s7 = 0, d2 = 0;
    for (int i = 7; i < 3000; i += 300) {
        s7 += i % 7;
        d2 += i % 5 == 2;
    }
    cr_assert_eq(q1(0, "{\"name\":\"g7\",\"stats\":[\"count\",\"sum\"]}", "sum"), s7);
    cr_assert_eq(q1(0, "{\"name\":\"g7\",\"from\":1767398400000,\"to\":1767484800000}", "count"), d2);
}

Test(store, a_full_map_grows_and_the_batch_is_kept)
{
    reopen_empty(256 << 10); /* 256 KiB: a few hundred rows fill it */
    sdb_batch *b;
    sdb_batch_new(&b);
    char j[256];
    for (int i = 0; i < 20000; i++) {
        snprintf(j, sizeof j,
                 "{\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"trace-%d\",\"timestamp\":%lld}",
                 i % 7, i % 100, i, T0 + i * 1000ll);
        cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{}", "count"), 20000);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 200 * 4950.0);
}

Test(store, a_fold_grows_the_map_first_and_runs_each_slice_once)
{
    /* A fold slice that fills the map is aborted and run again from the
     * start; the fold reserves the room its slice may take beforehand, so
     * not one of its transactions is redone. */
    reopen_empty(256 << 10);
    sdb_batch *b;
    sdb_batch_new(&b);
    char j[320];
    for (int i = 0; i < 20000; i++) {
        snprintf(j, sizeof j,
                 "{\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"trace-%d\",\"timestamp\":%lld,"
                 "\"tags\":[\"t%d\"],\"properties\":{\"k\":\"v%d\"}}",
                 i % 7, i % 100, i, T0 + i * 1000ll, i % 5, i % 3);
        cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    uint64_t before = sdb__write_redos;
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(sdb__write_redos, before, "the fold redid %llu transactions",
                 (unsigned long long)(sdb__write_redos - before));
    cr_assert_eq(q1(0, "{}", "count"), 20000);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 200 * 4950.0);
}

Test(store, projects_never_see_each_other)
{
    uint32_t p;
    cr_assert_eq(sdb_project_id(s, "acme", 1, &p), SDB_OK);
    cr_assert_neq(p, 0);
    uint32_t again;
    cr_assert_eq(sdb_project_id(s, "acme", 0, &again), SDB_OK);
    cr_assert_eq(again, p);
    cr_assert_eq(sdb_project_id(s, "nobody", 0, &again), SDB_ENOTFOUND);
    put(0, T0, "{\"id\":\"same\",\"name\":\"a\",\"value\":1,\"trace_id\":\"t\"}");
    put(p, T0, "{\"id\":\"same\",\"name\":\"a\",\"value\":9,\"trace_id\":\"t\"}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{}", "avg"), 1);
    cr_assert_eq(q1(p, "{}", "avg"), 9);
    cr_assert_eq(q1(0, "{}", "count"), 1);
}

Test(store, names_lists_each_name_with_its_type_and_range)
{
    put(0, T0, "{\"name\":\"b\",\"value\":\"x\",\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(0, T0, "{\"name\":\"a\",\"value\":true,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(0, T0, "{\"name\":\"a\",\"value\":false,\"trace_id\":\"t\",\"timestamp\":1767398400000}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    char *out = NULL;
    cr_assert_eq(sdb_names_json(s, 0, &out), SDB_OK);
    cr_assert_str_eq(out,
                     "[{\"name\":\"a\",\"data_type\":\"BOOLEAN\",\"count\":2,"
                     "\"first\":\"2026-01-01T00:00:00.000Z\",\"last\":\"2026-01-03T00:00:00.000Z\"},"
                     "{\"name\":\"b\",\"data_type\":\"CATEGORICAL\",\"count\":1,"
                     "\"first\":\"2026-01-01T00:00:00.000Z\",\"last\":\"2026-01-01T00:00:00.000Z\"}]");
    free(out);
}

Test(store, stddev_stays_exact_when_the_mean_dwarfs_the_spread)
{
    /* Sum-of-squares would lose every digit here: values 1e9 + {1,2,3}. */
    put(0, T0, "{\"name\":\"a\",\"value\":1000000001,\"trace_id\":\"t\"}");
    put(0, T0, "{\"name\":\"a\",\"value\":1000000002,\"trace_id\":\"t\"}");
    put(0, T0, "{\"name\":\"a\",\"value\":1000000003,\"trace_id\":\"t\"}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_float_eq(q1(0, "{\"stats\":[\"stddev\"]}", "stddev"), 1.0, 1e-12);
    cr_assert_float_eq(q1(0, "{\"stats\":[\"stddev\"],\"where\":{\"value\":{\"gte\":0}}}", "stddev"),
                       1.0, 1e-12);
}

/* The same at a spread below the ulp of the mean's digits, split across
 * two days (two chunks merged) and through every path: header, kernel
 * (value filter), row loop (source filter), pre-aggregates (group_by).
 * The reference is the sample stddev of the three doubles computed
 * exactly (Python's statistics.stdev on the same doubles). */
Test(store, stddev_of_chunks_merged_stays_exact_on_every_path)
{
    put(0, T0, "{\"name\":\"x\",\"value\":1000000000.9,\"trace_id\":\"t\",\"timestamp\":0}");
    put(0, T0, "{\"name\":\"x\",\"value\":1000000000.7,\"trace_id\":\"t\",\"timestamp\":1}");
    put(0, T0, "{\"name\":\"x\",\"value\":1000000000.7,\"trace_id\":\"t\",\"timestamp\":86400000}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    const double want = 0.11547001254261591;
    const char *qs[] = {
        "{\"stats\":[\"stddev\"]}",
        "{\"stats\":[\"stddev\"],\"where\":{\"value\":{\"gt\":0}}}",
        "{\"stats\":[\"stddev\"],\"where\":{\"source\":[\"API\"]}}",
        "{\"stats\":[\"stddev\"],\"group_by\":[\"environment\"]}",
        "{\"stats\":[\"stddev\"],\"interval\":\"1d\"}",
    };
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        double got = q1(0, qs[i], "stddev");
        cr_assert(fabs(got - want) <= 1e-12 * want, "%s: %.17g, want %.17g", qs[i], got, want);
    }
}

/* ------------------------------------------------------- disk full, check */

static sdb_batch *rows_batch(int n, const char *name, int with_ids)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    char j[256];
    for (int i = 0; i < n; i++) {
        snprintf(j, sizeof j,
                 "{%s%s%d%s\"name\":\"%s\",\"value\":%d,\"trace_id\":\"trace-%d\","
                 "\"model\":\"m%d\",\"timestamp\":%lld}",
                 with_ids ? "\"id\":\"" : "", with_ids ? name : "", with_ids ? i : 0,
                 with_ids ? "\"," : "", name, i % 100, i, i % 3, T0 + i * 1000ll);
        if (!with_ids) memmove(j + 1, strchr(j, '"'), strlen(strchr(j, '"')) + 1);
        cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK, "%s: %s", j,
                     err);
    }
    return b;
}

Test(store, the_map_never_grows_past_the_free_disk_and_a_refused_batch_leaves_nothing)
{
    reopen_empty(256 << 10);
    sdb_batch *b = rows_batch(100, "a", 0);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    char msg[600];
    cr_assert_eq(sdb_store_health(s, msg, sizeof msg), SDB_OK);
    cr_assert_str_eq(msg, "");

    /* The disk has 64 KiB left: 60,000 rows need more (20,000 of these
     * regular rows fit in 64 KiB since row blocks keep record lengths
     * and consecutive refs transposed). Before, the map doubled
     * regardless (and on a real full disk ENOSPC was taken for a full map
     * and doubled it until mmap failed). */
    sdb__test_free_bytes = 64 << 10;
    b = rows_batch(60000, "big", 0);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_ENOSPC);
    cr_assert_str_eq(sdb_strerror(SDB_ENOSPC), "no space left on device");
    cr_assert_eq(sdb_store_health(s, msg, sizeof msg), SDB_ENOSPC);
    cr_assert(strstr(msg, "no space left on device") && strstr(msg, dir), "%s", msg);
    cr_assert_eq(q1(0, "{}", "count"), 100, "reads go on from what is stored");
    cr_assert_eq(sdb_store_fold(s, T0 + 1, NULL), SDB_OK, "a fold with nothing to fold");

    /* Space returns: the same batch goes in whole. */
    sdb__test_free_bytes = 0;
    cr_assert_eq(sdb_store_probe(s), SDB_OK);
    cr_assert_eq(sdb_store_health(s, NULL, 0), SDB_OK);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{}", "count"), 60100);
}

static int collect(void *ctx, const char *msg)
{
    sdb__buf *b = ctx;
    cr_assert_eq(sdb__buf_add(b, msg, strlen(msg)), SDB_OK);
    cr_assert_eq(sdb__buf_add(b, "\n", 2), SDB_OK); /* with the NUL, overwritten next */
    b->len--;
    return 0;
}

/* Raw damage, as a bug or a torn write might leave it. */
static int damage_sum(sdb__txn *t, void *ctx)
{
    (void)ctx;
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_SEGMENTS, &c), SDB_OK);
    sdb__val k, v;
    cr_assert_eq(sdb__cur_seek(c, NULL, 0, &k, &v), SDB_OK);
    uint8_t key[SDB__SEGKEY_LEN];
    memcpy(key, k.p, sizeof key);
    uint8_t *copy = malloc(v.len);
    memcpy(copy, v.p, v.len);
    size_t len = v.len;
    sdb__cur_close(c);
    double sum;
    memcpy(&sum, copy + offsetof(sdb__seg_hdr, sum), 8);
    sum += 1;
    memcpy(copy + offsetof(sdb__seg_hdr, sum), &sum, 8);
    int rc = sdb__put(t, SDB__DB_SEGMENTS, key, sizeof key, copy, len, 0);
    free(copy);
    return rc;
}

static int drop_row_of_id(sdb__txn *t, void *ctx)
{
    uint64_t ref;
    int rc = sdb__id_lookup(t, NULL, 0, ctx, strlen(ctx), UINT64_MAX, 1, &ref);
    cr_assert_eq(rc, SDB_OK);
    return sdb__row_del(t, 0, ref); /* the record only: its segment row stays live */
}

/* The id index entry of id ctx damaged (the low bit of its hash residue
 * flipped, as a torn write might): docs/storage.md draws the run (header:
 * u32 magic, n, k, ent_off, u16 width, hbw; an entry of bucket b starts
 * with the 32 hash bits below the shard's 4 less the top log2(k), which
 * are b, in hbw bytes). */
static int damage_id_entry(sdb__txn *t, void *ctx)
{
    uint64_t h = sdb__idx_hash(0, ctx, strlen(ctx));
    uint32_t hb = (uint32_t)(h >> 28);
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_IDS, &c), SDB_OK);
    sdb__val k, v;
    int rc;
    for (rc = sdb__cur_seek(c, NULL, 0, &k, &v); rc == SDB_OK; rc = sdb__cur_next(c, &k, &v)) {
        uint32_t hdr[4];
        uint16_t width, hbw;
        memcpy(hdr, v.p, 16);
        memcpy(&width, (const uint8_t *)v.p + 16, 2);
        memcpy(&hbw, (const uint8_t *)v.p + 18, 2);
        if (k.len != 10 || ((const uint8_t *)k.p)[1] != h >> 60) continue;
        unsigned kb = 0;
        while ((1u << kb) < hdr[2]) kb++;
        uint32_t mask = kb ? (1u << (32 - kb)) - 1 : UINT32_MAX, b = kb ? hb >> (32 - kb) : 0;
        uint32_t lo, hi;
        memcpy(&lo, (const uint8_t *)v.p + 32 + 4ull * b, 4);
        memcpy(&hi, (const uint8_t *)v.p + 32 + 4ull * (b + 1), 4);
        for (uint32_t i = lo; i < hi; i++) {
            uint32_t eh = 0;
            memcpy(&eh, (const uint8_t *)v.p + hdr[3] + (size_t)width * i, hbw);
            if ((eh & mask) != (hb & mask)) continue;
            uint8_t key[16], *copy = malloc(v.len);
            size_t klen = k.len, len = v.len;
            memcpy(key, k.p, klen);
            memcpy(copy, v.p, len);
            eh ^= 1;
            memcpy(copy + hdr[3] + (size_t)width * i, &eh, hbw);
            sdb__cur_close(c);
            rc = sdb__put(t, SDB__DB_IDS, key, klen, copy, len, 0);
            free(copy);
            return rc;
        }
    }
    sdb__cur_close(c);
    cr_assert_fail("no index entry for %s", (const char *)ctx);
    return SDB_ENOTFOUND;
}

Test(store, check_is_clean_on_a_good_store_and_names_each_planted_problem)
{
    sdb_batch *b = rows_batch(300, "c", 1);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    put(0, T0 + 5, "{\"id\":\"late\",\"name\":\"c\",\"value\":1,\"trace_id\":\"t\"}");
    put(0, T0, "{\"id\":\"c7\",\"name\":\"c\",\"value\":99,\"trace_id\":\"t\"}");
    uint64_t n = 99;
    char *summary = NULL;
    sdb__buf msgs = {0};
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &n, &summary), SDB_OK);
    cr_assert_eq(n, 0, "%s", msgs.p ? msgs.p : "");
    /* chunk_rows 16: 300 rows of one day in 19 chunks; c7 replaced: its old
     * row left its chunk, its new one and "late" wait to be folded */
    cr_assert_str_eq(summary, "19 segments, 301 rows (299 folded), 301 ids");
    free(summary);

    cr_assert_eq(sdb__write(s, damage_sum, NULL), SDB_OK);
    cr_assert_eq(sdb__write(s, drop_row_of_id, "c200"), SDB_OK);
    cr_assert_eq(sdb__write(s, damage_id_entry, "c201"), SDB_OK);
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &n, NULL), SDB_OK);
    cr_assert_geq(n, 3, "%s", msgs.p);
    cr_assert(strstr(msgs.p, "header sum="), "%s", msgs.p);
    cr_assert(strstr(msgs.p, "id \"c201\" (project 0) of row ref"), "%s", msgs.p);
    cr_assert(strstr(msgs.p, "is not in the id index"), "%s", msgs.p);
    cr_assert(strstr(msgs.p, "is not a folded row record"), "%s", msgs.p);
    sdb__buf_free(&msgs);
}

Test(store, backup_is_a_compacted_copy_that_answers_the_same)
{
    sdb_batch *b = rows_batch(2000, "k", 1);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    char id[32];
    for (int i = 0; i < 2000; i += 10) { /* free pages for the copy to leave out */
        snprintf(id, sizeof id, "k%d", i);
        cr_assert_eq(sdb_score_delete(s, 0, id), SDB_OK);
    }
    char out[80];
    snprintf(out, sizeof out, "%s/copy", dir);
    cr_assert_eq(sdb_store_backup(s, out, err, sizeof err), SDB_OK, "%s", err);
    double count = q1(0, "{}", "count"), sum = q1(0, "{\"stats\":[\"sum\"]}", "sum");
    uint64_t bytes = sdb_store_disk_bytes(s);
    sdb_store_close(s);
    sdb_options o = {0};
    cr_assert_eq(sdb_store_open(out, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    cr_assert_eq(q1(0, "{}", "count"), count);
    cr_assert_eq(count, 1800);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), sum);
    cr_assert_lt(sdb_store_disk_bytes(s), bytes, "compacted: %llu < %llu",
                 (unsigned long long)sdb_store_disk_bytes(s), (unsigned long long)bytes);
    uint64_t n = 1;
    sdb__buf msgs = {0};
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 0, "%s", msgs.p);
    cr_assert_eq(sdb_store_backup(s, out, err, sizeof err), SDB_EINVAL);
    cr_assert(strstr(err, "already holds a store"), "%s", err);
}

/* ------------------------------------------------- id index, tombstones */

static uint64_t rng_x = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t n)
{
    rng_x ^= rng_x << 13;
    rng_x ^= rng_x >> 7;
    rng_x ^= rng_x << 17;
    return rng_x % n;
}

/* The JSON "entries" of database `db` in sdb_store_stats_json. */
static long db_entries(const char *db)
{
    char *js = NULL;
    cr_assert_eq(sdb_store_stats_json(s, &js), SDB_OK);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":{\"entries\":", db);
    const char *p = strstr(js, key);
    cr_assert_not_null(p, "%s in %s", db, js);
    long v = strtol(p + strlen(key), NULL, 10);
    free(js);
    return v;
}

static void id_plain(int id, char *out, size_t cap) { snprintf(out, cap, "u-%d", id); }
static void id_hashed(int id, char *out, size_t cap)
{
    snprintf(out, cap, "%08x-%d", (unsigned)(id * 2654435761u), id);
}

/* Add a score of value v to b under the id fmt names, and note it in the
 * reference. */
static void add_id_score(sdb_batch *b, void (*fmt)(int, char *, size_t), int id, int v,
                         long long ts, double *ref, int *live)
{
    char id_s[64], json[320];
    fmt(id, id_s, sizeof id_s);
    snprintf(json, sizeof json,
             "{\"id\":\"%s\",\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"t\",\"timestamp\":%lld}",
             id_s, id % 3, v, ts);
    cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
    ref[id] = v;
    live[id] = 1;
}

/* GET every id of the pool (named by fmt): a live one must hold its
 * reference value, any other must be gone. Returns the live ids counted;
 * *sum gets their values' sum. */
static int check_ids(int pool, const double *ref, const int *live,
                     void (*fmt)(int, char *, size_t), double *sum)
{
    char id_s[64];
    int count = 0;
    *sum = 0;
    for (int id = 0; id < pool; id++) {
        fmt(id, id_s, sizeof id_s);
        char *out = NULL;
        int rc = sdb_score_get_json(s, 0, id_s, &out);
        if (!live[id]) {
            cr_assert_eq(rc, SDB_ENOTFOUND, "%s", id_s);
            continue;
        }
        cr_assert_eq(rc, SDB_OK, "%s", id_s);
        const char *p = strstr(out, "\"value\":");
        cr_assert_not_null(p);
        cr_assert_eq(strtod(p + 8, NULL), ref[id], "%s: %s", id_s, out);
        free(out);
        *sum += ref[id];
        count++;
    }
    return count;
}

/* Randomized against a plain reference: ids drawn from a small pool, so
 * that batches re-send ids of their own, of earlier batches (in runs of
 * every size class, merged or not) and of deleted scores, with folds in
 * between (replacements of folded scores become tombstones, then purges).
 * Every id must name exactly its last value, and the aggregates must count
 * each live id once. */
Test(store, random_ids_replace_and_delete_exactly_across_runs_merges_and_folds)
{
    enum { POOL = 1500, BATCHES = 260 };
    static double ref[POOL];
    static int live[POOL];
    memset(live, 0, sizeof live);
    char json[320];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int k = 0; k < BATCHES; k++) {
        int n = 1 + (int)rnd(40);
        sdb_batch_clear(b);
        for (int i = 0; i < n; i++) {
            int id = (int)rnd(POOL);
            add_id_score(b, id_plain, id, (int)rnd(1000), T0 + (id % 5) * 86400000ll + id, ref,
                         live);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
        if (rnd(4) == 0) cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
        if (rnd(6) == 0) { /* delete a few, live or not */
            for (int d = 0; d < 3; d++) {
                int id = (int)rnd(POOL);
                snprintf(json, sizeof json, "u-%d", id);
                int rc = sdb_score_delete(s, 0, json);
                cr_assert_eq(rc, live[id] ? SDB_OK : SDB_ENOTFOUND, "delete %s: %d", json, rc);
                live[id] = 0;
            }
        }
    }
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(db_entries("dead"), 0, "the fold purged every tombstone");
    double sum = 0;
    int count = check_ids(POOL, ref, live, id_plain, &sum);
    cr_assert_eq(q1(0, "{}", "count"), count);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), sum);
}

/* Batches large enough for the id index's bucket sort (64 ids and more),
 * with ids re-sent inside a batch (one of them hundreds of times: a bucket
 * the sort hands to qsort) and across batches, against a plain reference:
 * each id names its last value, the count is the number of distinct ids,
 * and the check finds every run in order. */
Test(store, large_batches_of_random_ids_with_repeats_replace_exactly)
{
    enum { POOL = 6000, BATCHES = 12 };
    static double ref[POOL];
    static int live[POOL];
    memset(live, 0, sizeof live);
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int k = 0; k < BATCHES; k++) {
        int n = 64 + (int)rnd(3000);
        sdb_batch_clear(b);
        for (int i = 0; i < n; i++) {
            int id = rnd(5) == 0 ? 7 : (int)rnd(POOL); /* id 7: ~n/5 copies per batch */
            add_id_score(b, id_hashed, id, (int)rnd(1000), T0 + id, ref, live);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
        if (k % 4 == 3) cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    }
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    double sum;
    int count = check_ids(POOL, ref, live, id_hashed, &sum);
    cr_assert_gt(count, 4000);
    cr_assert_eq(q1(0, "{}", "count"), count);
    uint64_t problems = 1;
    sdb__buf msgs = {0};
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &problems, NULL), SDB_OK);
    cr_assert_eq(problems, 0, "%s", msgs.p);
    sdb__buf_free(&msgs);
}

/* Resident KiB of this process's mapping of the store's data file
 * (/proc/self/smaps). */
static long map_rss_kib(void)
{
    char want[128], line[512];
    snprintf(want, sizeof want, "%s/data.mdb", dir);
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    long kib = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        /* Every mapping's header line decides, anonymous ones too: the
         * Rss lines of anonymous mappings after the map's (many under
         * ASan) were counted as the map's. */
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = strstr(line, want) != NULL && strstr(line, " r") != NULL;
        long v;
        if (in && sscanf(line, "Rss: %ld kB", &v) == 1) kib = kib < 0 ? v : kib + v;
    }
    fclose(f);
    return kib;
}

/* A writer keeps the map's resident pages under sdb__map_resident_max:
 * ingest and the fold read the store back (id runs, row blocks), and
 * those pages stayed in the process's resident set (1.06 GiB at 10M
 * scores). Here the store grows to ~28 MiB under a 2 MiB cap (a comment
 * on every score: encoded segments alone left it at 23.6 MB): after the
 * last write the map holds under 4 MiB (80 KiB here; 12.3 MiB without the
 * cap), and the scores read back whole. */
Test(store, a_writer_keeps_the_maps_resident_pages_bounded)
{
    uint64_t old = sdb__map_resident_max;
    sdb__map_resident_max = 2u << 20;
    /* Each score carries a comment of 40 bytes in hex that no codec
     * shrinks, so that the store passes 24 MiB (format 5's row blocks
     * and id entries left it at 24.6 MB with 24 bytes, 25.1 with 32). */
    char json[384];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int k = 0; k < 40; k++) {
        sdb_batch_clear(b);
        for (int i = 0; i < 5000; i++) {
            int id = k * 5000 + i;
            snprintf(json, sizeof json,
                     "{\"id\":\"%08x-%04x-4%03x-8%03x-%012x\",\"name\":\"n%d\",\"value\":%d,"
                     "\"trace_id\":\"%016llx%016llx\",\"timestamp\":%lld,"
                     "\"comment\":\"%016llx%016llx%016llx%016llx%016llx\"}",
                     (unsigned)(id * 2654435761u), id & 0xffff, id & 0xfff, (id >> 3) & 0xfff, id,
                     id % 7, id % 100, (unsigned long long)id * 0x9e3779b97f4a7c15ull,
                     (unsigned long long)id * 0xc2b2ae3d27d4eb4full, (long long)(T0 + id * 1000ll),
                     (unsigned long long)id * 0xff51afd7ed558ccdull,
                     (unsigned long long)id * 0xd6e8feb86659fd93ull,
                     (unsigned long long)id * 0xa0761d6478bd642full,
                     (unsigned long long)id * 0xe7037ed1a0b428dbull,
                     (unsigned long long)id * 0x8ebc6af09c88c6e3ull);
            cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s",
                         err);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    }
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    long rss = map_rss_kib();
    sdb__map_resident_max = old;
    uint64_t bytes = sdb_store_disk_bytes(s);
    cr_assert_gt(bytes, 24u << 20, "the store is %llu bytes", (unsigned long long)bytes);
    cr_assert(rss >= 0 && rss < 4 * 1024, "map resident %ld KiB of a %llu-byte store", rss,
              (unsigned long long)bytes);
    cr_assert_eq(q1(0, "{}", "count"), 200000);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 40 * 5000 / 100 * 4950.0);
}

/* The resident cap applied inside a write transaction
 * (sdb__map_trim_in_txn, which the id index's merges call: a 29M ingest's
 * map pages rose to 920 MiB within one transaction, past the cap applied
 * between commits): it drops the pages the transaction has read, and what
 * it reads afterwards is the same bytes. */
typedef struct walk_ctx {
    uint64_t sum[2];
    long rss[2];
    uint64_t n;
} walk_ctx;

static uint64_t walk_rows(sdb__txn *t, uint64_t *n)
{
    sdb__rowit *it;
    cr_assert_eq(sdb__rows_open(t, 0, 1, 0, &it), SDB_OK);
    uint64_t ref, h = 0;
    sdb__val v;
    *n = 0;
    while (sdb__rows_next(it, &ref, &v) == SDB_OK) {
        h = h * 31 + sdb__hash(v.p, v.len) + ref;
        ++*n;
    }
    sdb__rows_close(it);
    return h;
}

static int walk_trim_walk(sdb__txn *t, void *arg)
{
    walk_ctx *c = arg;
    uint64_t n1, n2;
    c->sum[0] = walk_rows(t, &n1);
    c->rss[0] = map_rss_kib();
    uint64_t old = sdb__map_resident_max;
    sdb__map_resident_max = 1u << 20;
    sdb__map_trim_in_txn(t);
    sdb__map_resident_max = old;
    c->rss[1] = map_rss_kib();
    c->sum[1] = walk_rows(t, &n2);
    cr_assert_eq(n1, n2);
    c->n = n1;
    return SDB_OK;
}

Test(store, a_trim_inside_a_write_transaction_drops_the_map_pages_it_read_and_keeps_the_bytes)
{
    char json[384];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int k = 0; k < 12; k++) {
        sdb_batch_clear(b);
        for (int i = 0; i < 5000; i++) {
            unsigned long long id = (unsigned long long)(k * 5000 + i) + 1;
            snprintf(json, sizeof json,
                     "{\"id\":\"x%llx\",\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"t%llu\","
                     "\"comment\":\"%016llx%016llx%016llx%016llx\"}",
                     id * 0x9e3779b97f4a7c15ull, (int)(id % 5), (int)(id % 100), id % 997,
                     id * 0xff51afd7ed558ccdull, id * 0xd6e8feb86659fd93ull,
                     id * 0xa0761d6478bd642full, id * 0xe7037ed1a0b428dbull);
            cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s",
                         err);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    }
    sdb_batch_free(b);
    walk_ctx c = {{0, 0}, {0, 0}, 0};
    cr_assert_eq(sdb__write(s, walk_trim_walk, &c), SDB_OK);
    cr_assert_eq(c.n, 60000);
    cr_assert_eq(c.sum[0], c.sum[1]);
    cr_assert_gt(c.rss[0], 2 * 1024, "the walk kept %ld KiB of the map", c.rss[0]);
    cr_assert_lt(c.rss[1], 512, "%ld KiB of the map after the trim, %ld before", c.rss[1], c.rss[0]);
}

/* The "fill" of database db in sdb_store_stats_json. */
static double db_fill(const char *db)
{
    char *js = NULL, key[64];
    cr_assert_eq(sdb_store_stats_json(s, &js), SDB_OK);
    snprintf(key, sizeof key, "\"%s\":{", db);
    const char *p = strstr(js, key);
    cr_assert_not_null(p, "%s in %s", db, js);
    p = strstr(p, "\"fill\":");
    cr_assert_not_null(p, "%s", js);
    double fill = strtod(p + 7, NULL);
    free(js);
    return fill;
}

/* Row blocks are sized to whole LMDB pages: blocks closed at a fixed 16
 * KiB of records filled 87% of their overflow pages (1M UUIDv4 scores).
 * Random ids and trace ids, as clients send them: the rows' pages are over
 * 93% full, and every score reads back. */
Test(store, row_blocks_fill_their_pages)
{
    char json[320];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int k = 0; k < 2; k++) {
        sdb_batch_clear(b);
        for (int i = 0; i < 30000; i++) {
            uint64_t h = (uint64_t)(k * 30000 + i + 1) * 0x9e3779b97f4a7c15ull;
            uint64_t g = h * 0xc2b2ae3d27d4eb4full;
            snprintf(json, sizeof json,
                     "{\"id\":\"%08x-%04x-4%03x-8%03x-%012llx\",\"name\":\"n%d\",\"value\":%d,"
                     "\"trace_id\":\"%016llx%016llx\",\"timestamp\":%lld,\"model\":\"m%d\"}",
                     (unsigned)(h >> 32), (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xfff,
                     (unsigned)(g >> 52), (unsigned long long)(g & 0xffffffffffffull), i % 5,
                     i % 100, (unsigned long long)h, (unsigned long long)g,
                     (long long)(T0 + (long long)(g % 86400000ull)), i % 8);
            cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s",
                         err);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    }
    sdb_batch_free(b);
    double fill = db_fill("rows");
    cr_assert_gt(fill, 0.93, "rows fill %.4f", fill);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{}", "count"), 60000);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 600 * 4950.0);
}

/* The fold's attrs pass skips the decode of records without tags or
 * properties by asking row.c (the one place that knows the layout): a
 * record of this build without lists says so, one with tags or properties
 * or of another version says it may have them. */
/* A fold writes its chunks in key order; the segments and pre-aggregates
 * it adds past the last key are appended (MDB_APPEND), which leaves full
 * pages behind instead of pages split in half (0.47 of the pre-aggregates'
 * pages were used at 1M scores). Later folds insert between keys and split
 * pages as before; answers are the same either way. */
Test(store, a_fold_in_key_order_fills_the_pages_it_appends)
{
    char json[256];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int i = 0; i < 40000; i++) {
        snprintf(json, sizeof json,
                 "{\"name\":\"n%d\",\"value\":%d,\"trace_id\":\"t%d\",\"timestamp\":%lld,"
                 "\"model\":\"m%d\",\"environment\":\"e%d\"}",
                 i % 7, i % 10, i, (long long)(T0 + (i % 30) * 86400000ll + i), i % 5, i % 3);
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s",
                     err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    double pf = db_fill("preagg");
    cr_assert_gt(pf, 0.85, "preagg fill %.4f", pf);
    cr_assert_eq(q1(0, "{}", "count"), 40000);
    double want = 0;
    for (int i = 3; i < 40000; i += 7) want += i % 10;
    cr_assert_eq(q1(0, "{\"name\":\"n3\",\"stats\":[\"sum\"]}", "sum"), want);
}

Test(store, a_record_says_from_its_masks_whether_it_may_have_tags_or_properties)
{
    sdb__fixed fx;
    memset(&fx, 0, sizeof fx);
    fx.ts = T0;
    fx.ref = 7;
    sdb__score sc;
    memset(&sc, 0, sizeof sc);
    sc.id = (sdb__str){"0f8fad5b-d9cb-469f-a165-70867728950e", 36};
    sc.trace_id = (sdb__str){"t1", 2};
    sdb__buf rec = {0};
    cr_assert_eq(sdb__row_encode(&fx, &sc, 0, &rec), SDB_OK);
    cr_assert_eq(sdb__row_may_have_lists(rec.p, rec.len), 0);
    rec.p[0] ^= 0x40; /* another version: decoded, not guessed */
    cr_assert_eq(sdb__row_may_have_lists(rec.p, rec.len), 1);
    sdb__str tag = {"a", 1}, kv[2] = {{"k", 1}, {"v", 1}};
    sc.tags = &tag;
    sc.n_tags = 1;
    cr_assert_eq(sdb__row_encode(&fx, &sc, 0, &rec), SDB_OK);
    cr_assert_eq(sdb__row_may_have_lists(rec.p, rec.len), 1);
    sc.n_tags = 0;
    sc.props = kv;
    sc.n_props = 1;
    cr_assert_eq(sdb__row_encode(&fx, &sc, 0, &rec), SDB_OK);
    cr_assert_eq(sdb__row_may_have_lists(rec.p, rec.len), 1);
    sdb__buf_free(&rec);
}

/* The fold's decode (sdb__row_decode_noid) skips the id instead of
 * rendering it: for every way an id and a trace id are stored (UUID, hex,
 * raw, absent) it must give the full decode's fixed part, trace hash,
 * strings and lists, and refuse a record cut short inside the id. */
Test(store, the_folds_decode_without_the_id_matches_the_full_decode)
{
    const char *ids[] = {"0f8fad5b-d9cb-469f-a165-70867728950e", "0e9afa3b2478c734", "p-17", NULL};
    const char *traces[] = {"0e9afa3b2478c734bc460d1a9e55d779", "t1",
                            "1b4e28ba-2fa1-11d2-883f-0000000000aa", NULL};
    sdb__str tags[2] = {{"x", 1}, {"yy", 2}}, kv[4] = {{"k", 1}, {"v", 1}, {"k2", 2}, {"w", 1}};
    sdb__buf rec = {0};
    sdb__row full, part;
    int n = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 2; l++) {
                sdb__fixed fx;
                memset(&fx, 0, sizeof fx);
                fx.ts = T0 + i;
                fx.ref = 100u + (unsigned)n;
                fx.project = 3;
                fx.name = 9;
                fx.value = 0.25 * j;
                sdb__score sc;
                memset(&sc, 0, sizeof sc);
                if (ids[i]) sc.id = (sdb__str){ids[i], strlen(ids[i])};
                if (traces[j]) sc.trace_id = (sdb__str){traces[j], strlen(traces[j])};
                else sc.session_id = (sdb__str){"s9", 2};
                sc.comment = (sdb__str){"c", 1};
                sc.tags = tags;
                sc.n_tags = l ? 2 : 0;
                sc.props = kv;
                sc.n_props = l ? 2 : 0;
                cr_assert_eq(sdb__row_encode(&fx, &sc, 0, &rec), SDB_OK);
                cr_assert_eq(sdb__row_decode(rec.p, rec.len, &full), SDB_OK);
                cr_assert_eq(sdb__row_decode_noid(rec.p, rec.len, &part), SDB_OK);
                cr_assert_eq(part.id.len, 0);
                cr_assert_eq(memcmp(&part.fx, &full.fx, sizeof full.fx), 0, "id %d trace %d", i, j);
                if (traces[j]) cr_assert_neq(part.fx.trace, 0);
                cr_assert_eq(part.trace_id.len, full.trace_id.len);
                if (full.trace_id.len)
                    cr_assert_eq(memcmp(part.trace_id.p, full.trace_id.p, full.trace_id.len), 0);
                cr_assert_eq(part.session_id.len, full.session_id.len);
                cr_assert_eq(part.comment.len, 1);
                cr_assert_eq(part.n_tags, full.n_tags);
                cr_assert_eq(part.n_props, full.n_props);
                sdb__str k, v;
                if (l) {
                    cr_assert(sdb__row_prop(&part, 1, &k, &v));
                    cr_assert(k.len == 2 && memcmp(k.p, "k2", 2) == 0 && v.len == 1 && v.p[0] == 'w');
                    cr_assert(sdb__row_has_tag(&part, "yy", 2));
                }
                /* Cut inside the id: both refuse it. */
                if (ids[i]) {
                    size_t cut = 5 + 40 + 3;
                    cr_assert_eq(sdb__row_decode_noid(rec.p, cut, &part), SDB_ECORRUPT);
                    cr_assert_eq(sdb__row_decode(rec.p, cut, &full), SDB_ECORRUPT);
                }
                n++;
            }
    cr_assert_eq(n, 32);
    sdb__buf_free(&rec);
}

/* Replacing folded scores marks them dead in their chunk at once (no
 * rewrite): every path of a query that reads chunks (header, kernels,
 * per-dimension pre-aggregates, label counts, the row loop) and the names
 * list must leave them out before the fold purges them, and after. */
Test(store, replaced_folded_scores_leave_every_query_path_before_and_after_the_purge)
{
    char json[320];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int i = 0; i < 100; i++) {
        snprintf(json, sizeof json,
                 "{\"id\":\"r%d\",\"name\":\"a\",\"value\":%d,\"trace_id\":\"t%d\",\"model\":\"m%d\","
                 "\"timestamp\":%lld}",
                 i, i, i % 7, i % 3, (long long)(T0 + i * 1000));
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
        snprintf(json, sizeof json,
                 "{\"id\":\"c%d\",\"name\":\"c\",\"value\":\"%s\",\"trace_id\":\"t\","
                 "\"timestamp\":%lld}",
                 i, i % 2 ? "yes" : "no", (long long)(T0 + i * 1000));
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    /* Re-send 30 of each, a day later (so they also change bucket). */
    sdb_batch_clear(b);
    for (int i = 0; i < 30; i++) {
        snprintf(json, sizeof json,
                 "{\"id\":\"r%d\",\"name\":\"a\",\"value\":1000,\"trace_id\":\"t\","
                 "\"timestamp\":%lld}",
                 i * 3, (long long)(T0 + 86400000ll));
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
        snprintf(json, sizeof json,
                 "{\"id\":\"c%d\",\"name\":\"c\",\"value\":\"yes\",\"trace_id\":\"t\","
                 "\"timestamp\":%lld}",
                 i * 2, (long long)(T0 + 86400000ll));
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0 + 1), SDB_OK);
    sdb_batch_free(b);
    cr_assert_gt(db_entries("dead"), 0, "tombstones, not rewrites");
    double sum0 = 0;
    for (int i = 0; i < 100; i++)
        if (i % 3 || i / 3 >= 30) sum0 += i;
    for (int pass = 0; pass < 2; pass++) {
        /* Before the fold: the 30 replaced ones are gone, the new ones not
         * visible yet (pending); after: both days. */
        const char *day1 = "{\"name\":\"a\",\"to\":\"2026-01-01T23:59:59.999Z\",\"stats\":[\"sum\"]}";
        cr_assert_eq(q1(0, day1, "count"), 70, "pass %d", pass);
        cr_assert_eq(q1(0, day1, "sum"), sum0, "pass %d", pass);
        cr_assert_eq(q1(0, "{\"name\":\"a\",\"to\":\"2026-01-01T23:59:59.999Z\",\"stats\":[\"max\"]}", "max"), 99);
        /* Per-model pre-aggregates (a whole chunk grouped by a dimension). */
        char *out = NULL;
        const char *bym = "{\"name\":\"a\",\"to\":\"2026-01-01T23:59:59.999Z\",\"group_by\":[\"model\"]}";
        cr_assert_eq(sdb_query_json(s, 0, bym, strlen(bym), &out, err, sizeof err), SDB_OK);
        long total = 0;
        for (const char *p = out; (p = strstr(p, "\"count\":")); p++) total += strtol(p + 8, NULL, 10);
        cr_assert_eq(total, 70, "%s", out);
        free(out);
        /* Label counts: 100 - 30 replaced "no"s on day one. */
        const char *cats = "{\"name\":\"c\",\"to\":\"2026-01-01T23:59:59.999Z\"}";
        cr_assert_eq(q1(0, cats, "count"), 70, "pass %d", pass);
        /* A row filter (the trace hash path). */
        cr_assert_eq(q1(0, "{\"name\":\"a\",\"where\":{\"value\":{\"gte\":0,\"lte\":99}}}", "count"), 70);
        cr_assert_eq(sdb_store_fold(s, T0 + 1, NULL), SDB_OK);
        cr_assert_eq(db_entries("dead"), 0);
        cr_assert_eq(q1(0, "{\"name\":\"a\"}", "count"), 100);
        cr_assert_eq(q1(0, "{\"name\":\"a\",\"stats\":[\"sum\"]}", "sum"), sum0 + 30 * 1000);
    }
    char *names = NULL;
    cr_assert_eq(sdb_names_json(s, 0, &names), SDB_OK);
    cr_assert_not_null(strstr(names, "\"count\":100"), "%s", names);
    free(names);
}

/* An index entry whose hash matches but whose row keeps another id (a
 * 64-bit collision, or a row that was replaced) must not match: every hit
 * is checked against the row. Forged here: "x"'s hash pointing at "y"'s
 * row. */
typedef struct forge_ctx {
    uint64_t ref;
} forge_ctx;

static int forge_txn(sdb__txn *t, void *arg)
{
    forge_ctx *f = arg;
    sdb__idx *ix;
    int rc = sdb__idx_new(&ix);
    if (rc) return rc;
    rc = sdb__idx_add(ix, 0, sdb__idx_hash(0, "x", 1), f->ref);
    if (rc == SDB_OK) rc = sdb__idx_flush(t, ix);
    sdb__idx_free(ix);
    return rc;
}

static int find_txn(sdb__txn *t, void *arg)
{
    forge_ctx *f = arg;
    return sdb__idx_find(t, NULL, 0, "y", 1, sdb__idx_hash(0, "y", 1), 1, &f->ref);
}

Test(store, an_index_hit_is_checked_against_the_row_it_names)
{
    put(0, T0, "{\"id\":\"y\",\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    forge_ctx f = {0};
    cr_assert_eq(sdb__write(s, find_txn, &f), SDB_OK);
    cr_assert_gt(f.ref, 0);
    cr_assert_eq(sdb__write(s, forge_txn, &f), SDB_OK);
    char *out = NULL;
    cr_assert_eq(sdb_score_get_json(s, 0, "x", &out), SDB_ENOTFOUND);
    cr_assert_eq(sdb_score_get_json(s, 0, "y", &out), SDB_OK);
    free(out);
    /* Sending "x" is a new score; "y" keeps its own. */
    put(0, T0, "{\"id\":\"x\",\"name\":\"a\",\"value\":2,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 3);
}

/* Value of score id in project (-1: not found). */
static double get_value(uint32_t project, const char *id)
{
    char *out = NULL;
    int rc = sdb_score_get_json(s, project, id, &out);
    if (rc == SDB_ENOTFOUND) return -1;
    cr_assert_eq(rc, SDB_OK, "%s", id);
    const char *p = strstr(out, "\"value\":");
    cr_assert_not_null(p, "%s", out);
    double v = strtod(p + 8, NULL);
    free(out);
    return v;
}

/* Two ids whose hashes agree in the 36 bits a run keeps (the shard's 4
 * and the 32 below) and differ below: found by the birthday bound among
 * ~2^18 ids "k<i>". */
static void kept_bits_twins(char *a, char *b, size_t cap)
{
    enum { SLOTS = 1 << 22 };
    uint32_t *slot = calloc(SLOTS, sizeof *slot);
    uint64_t *keys = calloc(SLOTS, sizeof *keys);
    cr_assert(slot && keys);
    char id[32];
    for (uint32_t i = 0; i < SLOTS / 2; i++) {
        snprintf(id, sizeof id, "k%u", i);
        uint64_t h = sdb__idx_hash(0, id, strlen(id)), key = h >> 28;
        size_t j = (size_t)(key * 0x9e3779b97f4a7c15ull >> 42);
        for (; slot[j]; j = (j + 1) & (SLOTS - 1)) {
            if (keys[j] != key) continue;
            snprintf(a, cap, "k%u", slot[j] - 1);
            snprintf(b, cap, "k%u", i);
            cr_assert_neq(sdb__idx_hash(0, a, strlen(a)), h, "a whole 64-bit collision");
            free(slot);
            free(keys);
            return;
        }
        slot[j] = i + 1;
        keys[j] = key;
    }
    cr_assert_fail("no pair among %d ids", SLOTS / 2);
}

/* A run keeps 36 bits of an id's hash, so two ids can share an entry's
 * key: each still names its own score, through replacement, merges of
 * the runs that hold them and a delete. */
Test(store, ids_that_share_the_kept_hash_bits_keep_their_own_scores)
{
    char a[32], b[32], json[256];
    kept_bits_twins(a, b, sizeof a);
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":%lld}", a, T0);
    put(0, T0, json);
    cr_assert_eq(get_value(0, b), -1, "%s must not find %s's score", b, a);
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"n\",\"value\":2,\"trace_id\":\"t\",\"timestamp\":%lld}", b, T0);
    put(0, T0, json);
    cr_assert_eq(get_value(0, a), 1);
    cr_assert_eq(get_value(0, b), 2);
    /* Enough batches of other ids that the twins' runs are merged. */
    for (int k = 0; k < 24; k++) {
        sdb_batch *bt = rows_batch(100, "m", 0);
        cr_assert_eq(sdb_store_ingest(s, 0, bt, T0), SDB_OK);
        sdb_batch_free(bt);
    }
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"n\",\"value\":3,\"trace_id\":\"t\",\"timestamp\":%lld}", a, T0);
    put(0, T0, json);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(get_value(0, a), 3);
    cr_assert_eq(get_value(0, b), 2);
    cr_assert_eq(q1(0, "{\"name\":\"n\",\"stats\":[\"sum\"]}", "sum"), 5);
    cr_assert_eq(sdb_score_delete(s, 0, b), SDB_OK);
    cr_assert_eq(get_value(0, a), 3);
    cr_assert_eq(get_value(0, b), -1);
    cr_assert_eq(sdb_score_delete(s, 0, b), SDB_ENOTFOUND);
}

/* Widths of the id runs in the store: *narrow and *wide get the runs of
 * 2- to 8-byte and of 12-byte entries (docs/storage.md: width is the u16
 * at byte 16 of the header). */
static int run_widths(sdb__txn *t, void *arg)
{
    long *nw = arg;
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_IDS, &c), SDB_OK);
    sdb__val k, v;
    int rc;
    for (rc = sdb__cur_seek(c, NULL, 0, &k, &v); rc == SDB_OK; rc = sdb__cur_next(c, &k, &v)) {
        uint16_t w;
        cr_assert_geq(v.len, 32);
        memcpy(&w, (const uint8_t *)v.p + 16, 2);
        cr_assert((w >= 2 && w <= 8) || w == 12, "width %u", w);
        nw[w == 12]++;
    }
    sdb__cur_close(c);
    return SDB_OK;
}

/* Runs of one project keep 2- to 8-byte entries; merges of runs of two
 * projects keep 12 (the project in each entry). The same ids sent to
 * both projects, batches alternating, each name their own project's
 * score, against a plain reference. */
Test(store, ids_of_two_projects_merged_into_one_run_stay_apart)
{
    enum { POOL = 800, BATCHES = 40 };
    static double ref[2][POOL];
    memset(ref, 0, sizeof ref);
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    char json[256];
    for (int k = 0; k < BATCHES; k++) {
        uint32_t project = (uint32_t)(k & 1);
        sdb_batch_clear(b);
        for (int i = 0; i < 60; i++) {
            int id = (int)rnd(POOL), v = 1 + (int)rnd(1000);
            snprintf(json, sizeof json,
                     "{\"id\":\"u-%d\",\"name\":\"n\",\"value\":%d,\"trace_id\":\"t\",\"timestamp\":%lld}", id, v,
                     T0 + id);
            cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK);
            ref[project][id] = v;
        }
        cr_assert_eq(sdb_store_ingest(s, project, b, T0), SDB_OK);
    }
    sdb_batch_free(b);
    long nw[2] = {0, 0};
    cr_assert_eq(sdb__write(s, run_widths, nw), SDB_OK);
    cr_assert_gt(nw[0], 0, "one project's runs are narrow");
    cr_assert_gt(nw[1], 0, "merged runs of two projects are wide");
    char id[32];
    for (uint32_t p = 0; p < 2; p++)
        for (int i = 0; i < POOL; i++) {
            snprintf(id, sizeof id, "u-%d", i);
            cr_assert_eq(get_value(p, id), ref[p][i] ? ref[p][i] : -1, "project %u %s", p, id);
        }
    uint64_t problems = 1;
    sdb__buf msgs = {0};
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &problems, NULL), SDB_OK);
    cr_assert_eq(problems, 0, "%s", msgs.p);
    sdb__buf_free(&msgs);
}

static int old_version_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    /* the version before this build's (3: segments of raw 8-byte time,
     * value and trace columns, row records v2) */
    return sdb__meta_put_u64(t, "format_version", SDB_FORMAT_VERSION - 1);
}

Test(store, a_store_of_an_older_format_is_refused_with_both_versions_named)
{
    cr_assert_eq(sdb__write(s, old_version_txn, NULL), SDB_OK);
    sdb_store_close(s);
    s = NULL;
    sdb_options o = {0};
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_EVERSION);
    cr_assert_null(s);
    char want[64];
    snprintf(want, sizeof want, "is format version %u,", SDB_FORMAT_VERSION - 1);
    cr_assert_not_null(strstr(err, want), "%s", err);
    snprintf(want, sizeof want, "reads format version %u", SDB_FORMAT_VERSION);
    cr_assert_not_null(strstr(err, want), "%s", err);
}

/* compact gives the pages of replaced scores back, keeps every score, and
 * refuses while the store is open elsewhere (here: this process's own
 * handle, a separate open file description of the lock). */
Test(store, compact_gives_free_pages_back_and_refuses_an_open_store)
{
    char json[320];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int round = 0; round < 3; round++) {
        sdb_batch_clear(b);
        for (int i = 0; i < 3000; i++) {
            snprintf(json, sizeof json,
                     "{\"id\":\"k%d\",\"name\":\"a\",\"value\":%d,\"trace_id\":\"t\","
                     "\"comment\":\"%0100d\",\"timestamp\":%lld}",
                     i, round, i, (long long)(T0 + i));
            cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK);
        }
        cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
        cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    }
    sdb_batch_free(b);
    char *js = NULL;
    cr_assert_eq(sdb_store_stats_json(s, &js), SDB_OK);
    const char *fp = strstr(js, "\"free_pages\":");
    cr_assert_not_null(fp, "%s", js);
    cr_assert_gt(strtol(fp + 13, NULL, 10), 10, "%s", js);
    free(js);
    uint64_t before, after;
    cr_assert_eq(sdb_store_compact(dir, &before, &after, err, sizeof err), SDB_EBUSY);
    cr_assert_not_null(strstr(err, "open in another process"), "%s", err);
    sdb_store_close(s);
    s = NULL;
    cr_assert_eq(sdb_store_compact(dir, &before, &after, err, sizeof err), SDB_OK, "%s", err);
    cr_assert_lt(after, before, "%llu -> %llu", (unsigned long long)before,
                 (unsigned long long)after);
    open_store(0);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "count"), 3000);
    cr_assert_eq(q1(0, "{\"stats\":[\"sum\"]}", "sum"), 6000);
    char *out = NULL;
    cr_assert_eq(sdb_score_get_json(s, 0, "k2999", &out), SDB_OK);
    free(out);
}

/* The row store's blocks against a plain reference: records of two
 * projects with interleaved ascending refs, deleted from the pending block
 * and from written blocks (first, middle and last rows: a block's key is
 * its last ref), read back by ref, forward from a ref and backward from
 * one, in the writing txn and in a later one. */
enum { RB_N = 3000 };
static uint8_t rb_live[RB_N + 1];

static void rb_rec(uint64_t ref, uint8_t *buf, size_t *len)
{
    /* A valid-looking record is not needed here: the block layer moves
     * bytes. Lengths vary, some records of 20 bytes, so that the
     * transposed width (the shortest record of the block) varies. Refs
     * 1000-1999 keep their own ref at bytes 29..36, as sdb__row_encode
     * writes it: blocks of those alone leave the ref columns out (codec
     * bit 2), a block with a 20-byte record among them cannot. */
    *len = ref % 97 == 0 ? 20 : 60 + ref % 150;
    for (size_t i = 0; i < *len; i++) buf[i] = (uint8_t)(ref * 31 + i * (ref % 7));
    if (ref >= 1000 && ref < 2000 && *len >= 37) memcpy(buf + 29, &ref, 8);
}

/* Blocks in `rows` whose refs are implied (*arg[1]) or not (*arg[0]). */
static int rb_codecs(sdb__txn *t, void *arg)
{
    long *n = arg;
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_ROWS, &c), SDB_OK);
    sdb__val k, v;
    int rc;
    for (rc = sdb__cur_seek(c, NULL, 0, &k, &v); rc == SDB_OK; rc = sdb__cur_next(c, &k, &v)) {
        cr_assert_geq(v.len, 12);
        n[(((const uint8_t *)v.p)[1] & 4) != 0]++;
    }
    sdb__cur_close(c);
    return SDB_OK;
}

static uint32_t rb_project(uint64_t ref) { return ref % 5 == 0 ? 1u : 0u; }

static void rb_check_get(sdb__txn *t)
{
    uint8_t want[256];
    size_t wl;
    for (uint64_t ref = 1; ref <= RB_N; ref++) {
        sdb__val v;
        int rc = sdb__row_get(t, rb_project(ref), ref, &v);
        if (!rb_live[ref]) {
            cr_assert_eq(rc, SDB_ENOTFOUND, "ref %llu", (unsigned long long)ref);
            continue;
        }
        cr_assert_eq(rc, SDB_OK, "ref %llu", (unsigned long long)ref);
        rb_rec(ref, want, &wl);
        cr_assert_eq(v.len, wl);
        cr_assert_eq(memcmp(v.p, want, wl), 0, "ref %llu", (unsigned long long)ref);
        cr_assert_eq(sdb__row_get(t, 1 - rb_project(ref), ref, &v), SDB_ENOTFOUND);
    }
}

static int rb_write_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    uint8_t buf[256];
    size_t len;
    for (uint64_t ref = 1; ref <= RB_N; ref++) {
        rb_rec(ref, buf, &len);
        int rc = sdb__row_put(t, rb_project(ref), ref, buf, len);
        if (rc) return rc;
        rb_live[ref] = 1;
        if (ref % 13 == 0) { /* still pending: dropped from the pending block */
            if ((rc = sdb__row_del(t, rb_project(ref - 6), ref - 6)) && rc != SDB_ENOTFOUND)
                return rc;
            rb_live[ref - 6] = 0;
        }
    }
    rb_check_get(t);
    return SDB_OK;
}

static int rb_del_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    for (uint64_t ref = 1; ref <= RB_N; ref += 1 + ref % 9) {
        int rc = sdb__row_del(t, rb_project(ref), ref);
        if (rc != (rb_live[ref] ? SDB_OK : SDB_ENOTFOUND)) return SDB_EINVAL;
        rb_live[ref] = 0;
    }
    rb_check_get(t);
    return SDB_OK;
}

static void rb_check_iter(sdb__txn *t, uint32_t project, uint64_t bound, int backward)
{
    sdb__rowit *it;
    cr_assert_eq(sdb__rows_open(t, project, bound, backward, &it), SDB_OK);
    uint64_t want = backward ? (bound > RB_N ? RB_N : bound - 1) : bound ? bound : 1;
    uint64_t ref;
    sdb__val v;
    for (;;) {
        while (want >= 1 && want <= RB_N && !(rb_live[want] && rb_project(want) == project))
            want = backward ? want - 1 : want + 1;
        int rc = sdb__rows_next(it, &ref, &v);
        if (want < 1 || want > RB_N) {
            cr_assert_eq(rc, SDB_ENOTFOUND, "extra ref %llu (project %u bound %llu backward %d)",
                         (unsigned long long)ref, project, (unsigned long long)bound, backward);
            break;
        }
        cr_assert_eq(rc, SDB_OK);
        cr_assert_eq(ref, want, "project %u bound %llu backward %d", project,
                     (unsigned long long)bound, backward);
        want = backward ? want - 1 : want + 1;
    }
    sdb__rows_close(it);
}

static int rb_purge_txn(sdb__txn *t, void *arg)
{
    return sdb__rows_purge(t, 3, arg); /* a few blocks a txn: several rounds */
}

/* Deleted records are marked gone and skipped by every read; the purge
 * then rewrites their blocks. Both states must read the same. */
Test(store, row_blocks_keep_every_record_through_deletes_purges_and_both_directions)
{
    memset(rb_live, 0, sizeof rb_live);
    cr_assert_eq(sdb__write(s, rb_write_txn, NULL), SDB_OK);
    long codecs[2] = {0, 0};
    cr_assert_eq(sdb__write(s, rb_codecs, codecs), SDB_OK);
    cr_assert_gt(codecs[1], 0, "blocks with their refs implied");
    cr_assert_gt(codecs[0], 0, "blocks with their ref columns");
    cr_assert_eq(sdb__write(s, rb_del_txn, NULL), SDB_OK);
    cr_assert_gt(db_entries("gone"), 0);
    for (int pass = 0; pass < 2; pass++) {
        sdb__txn *t;
        cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
        rb_check_get(t);
        for (uint32_t p = 0; p < 2; p++) {
            const uint64_t bounds[] = {0, 1, 2, 777, 1500, RB_N, RB_N + 1, UINT64_MAX};
            for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
                rb_check_iter(t, p, bounds[i], 0);
                if (bounds[i]) rb_check_iter(t, p, bounds[i], 1);
            }
        }
        sdb__txn_abort(t);
        int rounds = 0;
        for (int left = 1; left; rounds++) cr_assert_eq(sdb__write(s, rb_purge_txn, &left), SDB_OK);
        cr_assert_gt(rounds, pass ? 0 : 2);
        cr_assert_eq(db_entries("gone"), 0);
    }
    long live = 0;
    for (int i = 1; i <= RB_N; i++) live += rb_live[i];
    cr_assert_eq(db_entries("rows"), live, "the purged blocks hold the live rows only");
}

/* Block values planted raw (codec 0, docs/storage.md: version 2, n = 2,
 * refs 7 and 8 consecutive, lengths transposed, then tw bytes of each
 * record transposed and the rests): a good one reads back, and each
 * damaged length, width or size is SDB_ECORRUPT, never a read outside. */
typedef struct plant_ctx {
    uint32_t len0, len1;
    uint16_t tw;
    uint32_t body_extra;
} plant_ctx;

static int plant_block(sdb__txn *t, void *arg)
{
    const plant_ctx *pc = arg;
    uint8_t v[256] = {0}, k[12] = {0};
    uint16_t n = 2;
    uint32_t recs = 30 + 31, body = 8 + 4 * 2 + recs + (pc->body_extra & 0xF);
    uint64_t first = 7;
    v[0] = 2;
    v[1] = pc->body_extra == 0xFF ? 6 : 2; /* refs consecutive (and implied), not compressed */
    memcpy(v + 2, &n, 2);
    memcpy(v + 4, &body, 4);
    memcpy(v + 8, &pc->tw, 2);
    uint8_t *q = v + 12;
    memcpy(q, &first, 8);
    for (int j = 0; j < 4; j++) {
        q[8 + j * 2] = (uint8_t)(pc->len0 >> 8 * j);
        q[8 + j * 2 + 1] = (uint8_t)(pc->len1 >> 8 * j);
    }
    for (uint32_t i = 0; i < recs; i++) q[16 + i] = (uint8_t)i;
    k[11] = 8; /* project 0, last ref 8 */
    return sdb__put(t, SDB__DB_ROWS, k, sizeof k, v, 12 + body, 0);
}

static int get_ref(sdb__txn *t, void *arg)
{
    sdb__val v;
    int rc = sdb__row_get(t, 0, *(uint64_t *)arg, &v);
    if (rc == SDB_OK) *(uint64_t *)arg = v.len;
    return rc;
}

Test(store, a_row_block_with_damaged_lengths_is_corrupt_not_read_past)
{
    const plant_ctx good = {30, 31, 30, 0};
    cr_assert_eq(sdb__write(s, plant_block, (void *)&good), SDB_OK);
    uint64_t ref = 8;
    cr_assert_eq(sdb__write(s, get_ref, &ref), SDB_OK);
    cr_assert_eq(ref, 31, "record 8 is 31 bytes");
    const plant_ctx bad[] = {
        {30, 32, 30, 0},        /* the lengths pass the records */
        {30, 30, 30, 0},        /* they fall short of them */
        {20, 41, 30, 0},        /* a record shorter than the transposed width */
        {30, 31, 1025, 0},      /* a width past the most a GET gathers */
        {0xFFFFFFF0u, 61 + 16, 0, 0}, /* lengths that wrap */
        {30, 31, 30, 4},        /* a body longer than its parts */
        {30, 31, 30, 0xFF},     /* refs implied (codec bit 2) with a width short of them */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(sdb__write(s, plant_block, (void *)&bad[i]), SDB_OK);
        ref = 7;
        cr_assert_eq(sdb__write(s, get_ref, &ref), SDB_ECORRUPT, "case %zu", i);
    }
}

/* The transposed width of the first row block (docs/storage.md: the
 * u16 at byte 8 of its value). */
static int first_tw(sdb__txn *t, void *arg)
{
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_ROWS, &c), SDB_OK);
    sdb__val k, v;
    cr_assert_eq(sdb__cur_seek(c, NULL, 0, &k, &v), SDB_OK);
    cr_assert_geq(v.len, 12);
    uint16_t tw;
    memcpy(&tw, (const uint8_t *)v.p + 8, 2);
    *(uint32_t *)arg = tw;
    sdb__cur_close(c);
    return SDB_OK;
}

/* Records with tags and properties differ in length after the packed id
 * and trace id: a block transposes only the prefix they share (45 bytes
 * of fixed part, 4 for each of the two dimension ids, model and the
 * environment "default" that ingest gives a score without one, 16 of the
 * UUID, 17 of the hex trace id), not the text after it, whose repeats zstd finds record by
 * record (rows 81.0 MB of 1M such scores with the whole shortest record
 * transposed, 58.8 with the prefix). Every record reads back. */
Test(store, row_blocks_transpose_only_the_prefix_records_share)
{
    char json[400];
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int i = 0; i < 200; i++) {
        snprintf(json, sizeof json,
                 "{\"id\":\"%08x-1111-4222-8333-%012d\",\"name\":\"n\",\"value\":%d,"
                 "\"trace_id\":\"%032x\",\"timestamp\":%lld,\"model\":\"m\",\"tags\":[\"t%d\"%s],"
                 "\"properties\":{\"feature\":\"f%d\"}}",
                 (unsigned)(i * 2654435761u), i, i, (unsigned)(i * 40503u), (long long)(T0 + i),
                 i % 3, i % 2 ? ",\"long-context\"" : "", i % 5);
        cr_assert_eq(sdb_batch_add_json(b, json, strlen(json), err, sizeof err), SDB_OK, "%s",
                     err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    uint32_t tw = 0;
    cr_assert_eq(sdb__write(s, first_tw, &tw), SDB_OK);
    cr_assert_eq(tw, 45 + 2 * 4 + 16 + 17, "transposed width %u", tw);
    char id[64];
    for (int i = 0; i < 200; i += 7) {
        snprintf(id, sizeof id, "%08x-1111-4222-8333-%012d", (unsigned)(i * 2654435761u), i);
        cr_assert_eq(get_value(0, id), i, "%s", id);
    }
}

/* A `gone` mark without its record's block and a `dead` bitmap without
 * its chunk (a bug or a torn store might leave them) must not stop the
 * fold's purge: it would stop every fold after it. */
static int plant_orphans(sdb__txn *t, void *arg)
{
    (void)arg;
    uint8_t k[12], seg[SDB__SEGKEY_LEN], one = 1, bm[2] = {0xFF, 0x01};
    sdb__be32(k, 0);
    sdb__be64(k + 4, 999999);
    sdb__seg_key(seg, 0, 77, 0, 3);
    int rc = sdb__put(t, SDB__DB_GONE, k, sizeof k, &one, 1, 0);
    return rc ? rc : sdb__put(t, SDB__DB_DEAD, seg, sizeof seg, bm, sizeof bm, 0);
}

Test(store, orphan_gone_marks_and_dead_bitmaps_do_not_stop_the_fold)
{
    put(0, T0, "{\"id\":\"o\",\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    cr_assert_eq(sdb__write(s, plant_orphans, NULL), SDB_OK);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    cr_assert_eq(db_entries("gone"), 0);
    cr_assert_eq(db_entries("dead"), 0);
    cr_assert_eq(q1(0, "{}", "count"), 1);
}

/* A chunk whose last-ingested row was replaced keeps that row's ingest time
 * in its header until the purge: check must not take the header's upper
 * bound for a lie (the crash test's kills during replacement found it). */
Test(store, check_is_clean_while_a_chunk_holds_a_replaced_row)
{
    put(0, T0, "{\"id\":\"a\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":1767225600000}");
    put(0, T0 + 1000, "{\"id\":\"b\",\"name\":\"n\",\"value\":2,\"trace_id\":\"t\",\"timestamp\":1767225600001}");
    cr_assert_eq(sdb_store_fold(s, T0 + 1000, NULL), SDB_OK);
    put(0, T0 + 2000, "{\"id\":\"b\",\"name\":\"n\",\"value\":3,\"trace_id\":\"t\",\"timestamp\":1767225600001}");
    uint64_t n = 99;
    sdb__buf msgs = {0};
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 0, "%s", msgs.p ? msgs.p : "");
    sdb__buf_free(&msgs);
}
