/* Store, ingest and fold (engine/store.c, ingest.c, fold.c, segment.c):
 * durability across reopen, replacement in every place a score can be,
 * map growth, the watermark and pending counts, project isolation; a disk
 * without room (docs/reliability.md), scoredb check and backup. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h" /* sdb__test_free_bytes; raw writes that plant damage for check */

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
    sdb_store_close(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    open_store(256 << 10); /* 256 KiB: a few hundred rows fill it */
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
    sdb_store_close(s);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    open_store(256 << 10);
    sdb_batch *b = rows_batch(100, "a", 0);
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    cr_assert_eq(sdb_store_fold(s, T0, NULL), SDB_OK);
    char msg[600];
    cr_assert_eq(sdb_store_health(s, msg, sizeof msg), SDB_OK);
    cr_assert_str_eq(msg, "");

    /* The disk has 64 KiB left: 20,000 rows need megabytes. Before, the
     * map doubled regardless (and on a real full disk ENOSPC was taken
     * for a full map and doubled it until mmap failed). */
    sdb__test_free_bytes = 64 << 10;
    b = rows_batch(20000, "big", 0);
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
    cr_assert_eq(q1(0, "{}", "count"), 20100);
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
    int indexed;
    int rc = sdb__id_lookup(t, 0, ctx, strlen(ctx), &ref, &indexed);
    cr_assert_eq(rc, SDB_OK);
    uint8_t rk[12];
    sdb__be32(rk, 0);
    sdb__be64(rk + 4, ref);
    return sdb__del(t, SDB__DB_ROWS, rk, sizeof rk);
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
    cr_assert_eq(sdb_store_check(s, collect, &msgs, &n, NULL), SDB_OK);
    cr_assert_geq(n, 3, "%s", msgs.p);
    cr_assert(strstr(msgs.p, "header sum="), "%s", msgs.p);
    cr_assert(strstr(msgs.p, "id \"c200\" (project 0) names ref"), "%s", msgs.p);
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
