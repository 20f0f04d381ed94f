/* engine/attrs.c: a chunk's tags and properties as columns.
 *
 * The randomized differential (test_engine_diff.c) checks the answers of
 * tag and property queries against a reference; this file checks what it
 * cannot see: that a corrupt value is refused rather than read, that
 * `scoredb check` notices a value that disagrees with the row records,
 * and that chunks past the real long-tail bounds (thousands of tag sets,
 * dozens of keys) answer exactly like the row records do.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoredb.h"
#include "query.h"

#define BASE_MS 1767225600000ll /* 2026-01-01T00:00:00Z */

static sdb_store *open_tmp(char *dir)
{
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {.no_sync = 1};
    sdb_store *s;
    char err[512];
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    return s;
}

static void drop(sdb_store *s, const char *dir)
{
    sdb_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* n scores of name "q" in one day; row i's JSON tail from fn. */
static void load(sdb_store *s, int n, void (*tail)(int i, char *buf, size_t len))
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    char buf[4096], t[3000], err[512];
    for (int i = 0; i < n; i++) {
        tail(i, t, sizeof t);
        int len = snprintf(buf, sizeof buf,
                           "{\"name\":\"q\",\"value\":%d,\"timestamp\":%lld,\"trace_id\":\"t%d\"%s}",
                           i % 10, BASE_MS + i, i, t);
        cr_assert_eq(sdb_batch_add_json(b, buf, (size_t)len, err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, BASE_MS + 2 * 86400000ll), SDB_OK);
    cr_assert_eq(sdb_store_fold(s, BASE_MS + 3 * 86400000ll, NULL), SDB_OK);
    sdb_batch_free(b);
}

static void small_tail(int i, char *buf, size_t len)
{
    snprintf(buf, len, ",\"tags\":[%s],\"properties\":{\"feature\":\"%s\"}",
             i % 3 == 0 ? "\"a\",\"b\"" : i % 3 == 1 ? "\"b\"" : "", i % 2 ? "chat" : "search");
}

/* The segment key of the first chunk (k), and a copy of its attrs value
 * (caller frees) of *len bytes. */
static uint8_t *first_value(sdb_store *s, uint8_t *k, size_t *len)
{
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    sdb__cur *c;
    cr_assert_eq(sdb__cur_open(t, SDB__DB_SEGMENTS, &c), SDB_OK);
    sdb__val key, val;
    cr_assert_eq(sdb__cur_seek(c, NULL, 0, &key, &val), SDB_OK);
    cr_assert_eq(key.len, SDB__SEGKEY_LEN);
    memcpy(k, key.p, SDB__SEGKEY_LEN);
    sdb__cur_close(c);
    sdb__val v;
    cr_assert_eq(sdb__get(t, SDB__DB_ATTRS, k, SDB__SEGKEY_LEN, &v), SDB_OK);
    uint8_t *copy = malloc(v.len);
    memcpy(copy, v.p, v.len);
    *len = v.len;
    sdb__txn_abort(t);
    return copy;
}

Test(attrs, a_value_opens_and_every_truncation_is_refused)
{
    char dir[] = "/tmp/sdb_attrs_XXXXXX";
    sdb_store *s = open_tmp(dir);
    load(s, 30, small_tail);
    uint8_t k[SDB__SEGKEY_LEN];
    size_t len;
    uint8_t *copy = first_value(s, k, &len);
    sdb__attrs a;
    cr_assert_eq(sdb__attrs_open(copy, len, &a), SDB_OK);
    cr_assert_eq(a.n, 30);
    cr_assert_eq(a.flags, SDB__ATTR_PREAGG, "no categorical rows: pre-aggregates");
    cr_assert_eq(a.n_sets, 3, "sets {a,b}, {b}, {}: got %u", a.n_sets);
    cr_assert_eq(a.n_keys, 1);
    /* Row 0 has tags a and b: its set holds two ids, in order. */
    const uint8_t *ids;
    uint32_t n, x, y;
    sdb__attrs_set(&a, sdb__seg_ld(a.set_col, a.set_w, 0), &ids, &n);
    cr_assert_eq(n, 2);
    memcpy(&x, ids, 4);
    memcpy(&y, ids + 4, 4);
    cr_assert(x < y, "a set is sorted");
    /* Rows 0 and 1 have different feature values, rows 1 and 3 the same. */
    cr_assert_neq(sdb__seg_ld(a.key_col[0], a.key_w[0], 0), sdb__seg_ld(a.key_col[0], a.key_w[0], 1));
    cr_assert_eq(sdb__seg_ld(a.key_col[0], a.key_w[0], 1), sdb__seg_ld(a.key_col[0], a.key_w[0], 3));
    for (size_t l = 0; l < len; l++)
        cr_assert_eq(sdb__attrs_open(copy, l, &a), SDB_ECORRUPT, "truncated to %zu bytes", l);
    /* A set index past the table reads as the empty set. */
    cr_assert_eq(sdb__attrs_open(copy, len, &a), SDB_OK);
    copy[(size_t)(a.set_col - copy)] = 200;
    cr_assert_eq(sdb__attrs_open(copy, len, &a), SDB_OK);
    sdb__attrs_set(&a, sdb__seg_ld(a.set_col, a.set_w, 0), &ids, &n);
    cr_assert_eq(n, 0);
    free(copy);
    drop(s, dir);
}

static int collect(void *ctx, const char *msg)
{
    char *all = ctx; /* 16000 bytes; the rest is dropped */
    size_t used = strlen(all), n = strlen(msg);
    if (used + n + 2 > 16000) return 0;
    memcpy(all + used, msg, n);
    memcpy(all + used + n, "\n", 2);
    return 0;
}

typedef struct tamper {
    const uint8_t *key;
    int mode; /* 0: swap two rows' tags, 1: delete the value, 2: a value for no chunk */
} tamper;

static int tamper_txn(sdb__txn *t, void *arg)
{
    const tamper *tp = arg;
    if (tp->mode == 1) return sdb__del(t, SDB__DB_ATTRS, tp->key, SDB__SEGKEY_LEN);
    uint32_t tags_ab[2] = {1, 2}, none = 0;
    sdb__arow rows[30];
    for (int i = 0; i < 30; i++) {
        /* Every row: tags {1, 2} (a and b), no properties. */
        rows[i] = (sdb__arow){tags_ab, &none, 2, 0};
    }
    uint8_t k[SDB__SEGKEY_LEN];
    memcpy(k, tp->key, sizeof k);
    if (tp->mode == 2) k[19] ^= 0x55; /* a chunk number no segment has */
    return sdb__attrs_put(t, k, rows, 30, NULL);
}

Test(attrs, check_reports_a_value_that_disagrees_with_the_row_records)
{
    char dir[] = "/tmp/sdb_attrs_XXXXXX";
    sdb_store *s = open_tmp(dir);
    load(s, 30, small_tail);
    uint8_t k[SDB__SEGKEY_LEN];
    size_t len;
    free(first_value(s, k, &len));
    char msgs[16000] = "";
    uint64_t n = 99;
    cr_assert_eq(sdb_store_check(s, collect, msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 0, "a fresh store: %s", msgs);

    tamper tp = {k, 0};
    cr_assert_eq(sdb__write(s, tamper_txn, &tp), SDB_OK);
    msgs[0] = 0;
    cr_assert_eq(sdb_store_check(s, collect, msgs, &n, NULL), SDB_OK);
    cr_assert(n >= 20, "rows 1, 2, 4, ... lack tag a, every row its feature: %llu\n%s",
              (unsigned long long)n, msgs);
    cr_assert(strstr(msgs, "row 1: its tags differ from the row record's"), "%s", msgs);
    cr_assert(strstr(msgs, "row 0: its properties differ"), "%s", msgs);

    tp.mode = 1;
    cr_assert_eq(sdb__write(s, tamper_txn, &tp), SDB_OK);
    msgs[0] = 0;
    cr_assert_eq(sdb_store_check(s, collect, msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 1, "%s", msgs);
    cr_assert(strstr(msgs, "has no attrs value"), "%s", msgs);

    tp.mode = 2;
    cr_assert_eq(sdb__write(s, tamper_txn, &tp), SDB_OK);
    msgs[0] = 0;
    cr_assert_eq(sdb_store_check(s, collect, msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 2, "%s", msgs);
    cr_assert(strstr(msgs, "tags and properties (attrs) of key 20 bytes"), "%s", msgs);
    drop(s, dir);
}

/* 3000 rows, each with a tag of its own and one of 40 keys, plus tag "x" on
 * every third and key "f" on every row: past both real bounds. */
static void tail_tail(int i, char *buf, size_t len)
{
    snprintf(buf, len, ",\"tags\":[\"u%d\"%s],\"properties\":{\"k%d\":\"v%d\",\"f\":\"%s\"}", i,
             i % 3 == 0 ? ",\"x\"" : "", i % 40, i % 7, i % 2 ? "odd" : "even");
}

static char *answer(sdb_store *s, const char *q)
{
    char *out = NULL, err[512];
    cr_assert_eq(sdb_query_json(s, 0, q, strlen(q), &out, err, sizeof err), SDB_OK, "%s", err);
    /* The watermark is the same for both runs; the rest must match. */
    return out;
}

/* q answered from the attrs columns, checked equal to the answer read from
 * the row records (sdb__attrs_off); the columns' answer is returned. */
static char *answer_cols_as_recs(sdb_store *s, const char *q)
{
    sdb__attrs_off = 0;
    char *cols = answer(s, q);
    sdb__attrs_off = 1;
    char *recs = answer(s, q);
    sdb__attrs_off = 0;
    cr_assert_str_eq(cols, recs, "%s", q);
    free(recs);
    return cols;
}

Test(attrs, chunks_past_the_long_tail_bounds_answer_like_the_row_records)
{
    char dir[] = "/tmp/sdb_attrs_XXXXXX";
    sdb_store *s = open_tmp(dir);
    load(s, 3000, tail_tail);
    uint8_t k[SDB__SEGKEY_LEN];
    size_t len;
    uint8_t *v = first_value(s, k, &len);
    sdb__attrs a;
    cr_assert_eq(sdb__attrs_open(v, len, &a), SDB_OK);
    cr_assert_eq(a.flags, SDB__ATTR_NO_TAGS | SDB__ATTR_SOME_KEYS | SDB__ATTR_PREAGG, "flags %u", a.flags);
    cr_assert_eq(a.n_keys, SDB__ATTR_MAX_KEYS);
    free(v);
    static const char *const qs[] = {
        "{\"name\":\"q\",\"where\":{\"tags\":[\"x\"]},\"stats\":[\"count\",\"avg\"]}",
        "{\"name\":\"q\",\"where\":{\"tags\":[\"u7\",\"x\"]},\"stats\":[\"count\"]}",
        "{\"name\":\"q\",\"where\":{\"properties\":{\"f\":[\"odd\"]}},\"stats\":[\"count\",\"sum\"]}",
        "{\"name\":\"q\",\"where\":{\"properties\":{\"k39\":[\"v1\",\"v2\"]}},\"stats\":[\"count\"]}",
        "{\"name\":\"q\",\"group_by\":[\"properties.k3\"],\"stats\":[\"count\",\"avg\"]}",
        "{\"name\":\"q\",\"group_by\":[\"properties.f\"],\"stats\":[\"count\",\"avg\"]}",
    };
    /* Known counts: 1000 with x, u7 lacks x (7 % 3 != 0), 1500 odd, k39 on
     * rows 39 + 40j with value v(i % 7) in {v1, v2}. */
    int k39 = 0;
    for (int i = 39; i < 3000; i += 40) k39 += i % 7 == 1 || i % 7 == 2;
    char want[4][64];
    snprintf(want[0], 64, "\"count\":1000,");
    snprintf(want[1], 64, "\"groups\":[]");
    snprintf(want[2], 64, "\"count\":1500,");
    snprintf(want[3], 64, "\"count\":%d}", k39);
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        char *cols = answer_cols_as_recs(s, qs[i]);
        if (i < 4) cr_assert(strstr(cols, want[i]), "%s: %s wanted %s", qs[i], cols, want[i]);
        free(cols);
    }
    drop(s, dir);
}

static void plain_tail(int i, char *buf, size_t len)
{
    (void)i;
    if (len) buf[0] = 0;
}

/* A fold whose rows carry no tag and no property at all (the fold's fast
 * path) appends them to a chunk whose rows do: the old rows keep theirs. */
Test(attrs, a_fold_without_tags_appends_to_a_chunk_with_them)
{
    char dir[] = "/tmp/sdb_attrs_XXXXXX";
    sdb_store *s = open_tmp(dir);
    load(s, 30, small_tail);
    load(s, 20, plain_tail); /* same day, same chunk */
    char *a = answer(s, "{\"name\":\"q\",\"where\":{\"tags\":[\"b\"]},\"stats\":[\"count\"]}");
    cr_assert(strstr(a, "\"count\":20}"), "rows 0..29 with i % 3 != 2 have b: %s", a);
    free(a);
    a = answer(s, "{\"name\":\"q\",\"group_by\":[\"properties.feature\"],\"stats\":[\"count\"]}");
    cr_assert(strstr(a, "{\"key\":{\"properties.feature\":null},\"count\":20}"), "%s", a);
    cr_assert(strstr(a, "{\"key\":{\"properties.feature\":\"chat\"},\"count\":15}"), "%s", a);
    free(a);
    char msgs[16000] = "";
    uint64_t n = 99;
    cr_assert_eq(sdb_store_check(s, collect, msgs, &n, NULL), SDB_OK);
    cr_assert_eq(n, 0, "%s", msgs);
    drop(s, dir);
}

static void many_keys_tail(int i, char *buf, size_t len)
{
    snprintf(buf, len,
             ",\"tags\":[%s],\"properties\":{\"p0\":\"v%d\",\"p1\":\"v%d\",\"p2\":\"v%d\","
             "\"p3\":\"v%d\",\"p4\":\"v%d\",\"p5\":\"v%d\"}",
             i % 2 ? "\"a\"" : "", i % 2, i % 3, i % 5, i % 7, i % 11, i % 13);
}

/* More tag and property filters than sdb__aseg keeps inline (4): the
 * selection reads every one of them, as the row records do, and the count
 * is the rows that pass them all. */
Test(attrs, many_tag_and_property_filters_answer_like_the_row_records)
{
    char dir[] = "/tmp/sdb_attrs_XXXXXX";
    sdb_store *s = open_tmp(dir);
    load(s, 3000, many_keys_tail);
#define Q0 "\"tags\":[\"a\"],\"properties\":{\"p1\":[\"v1\"],\"p2\":[\"v1\",\"v3\"],\"p3\":[\"v0\"," \
           "\"v1\",\"v2\",\"v3\",\"v4\"],\"p4\":[\"v1\",\"v2\",\"v3\",\"v4\",\"v5\",\"v6\",\"v7\","  \
           "\"v8\",\"v9\"]}"
#define Q1 "\"properties\":{\"p0\":[\"v1\"],\"p1\":[\"v1\",\"v2\"],\"p2\":[\"v0\",\"v1\",\"v2\"],"   \
           "\"p3\":[\"v1\",\"v2\",\"v3\",\"v4\",\"v5\",\"v6\"],\"p5\":[\"v0\",\"v1\",\"v2\",\"v3\","     \
           "\"v4\",\"v5\",\"v6\",\"v7\",\"v8\",\"v9\",\"v10\",\"v11\"]}"
    static const char *const qs[] = {
        "{\"name\":\"q\",\"where\":{" Q0 "},\"stats\":[\"count\",\"avg\"]}",
        "{\"name\":\"q\",\"where\":{" Q1 "},\"stats\":[\"count\",\"avg\"]}",
        "{\"name\":\"q\",\"where\":{" Q0 "},\"group_by\":[\"properties.p5\"],\"stats\":[\"count\"]}",
        "{\"name\":\"q\",\"where\":{" Q1 "},\"group_by\":[\"properties.p4\"],\"stats\":[\"count\"]}",
    };
#undef Q0
#undef Q1
    int want[2] = {0, 0};
    for (int i = 0; i < 3000; i++) {
        want[0] += i % 2 == 1 && i % 3 == 1 && (i % 5 == 1 || i % 5 == 3) && i % 7 <= 4 &&
                   i % 11 >= 1 && i % 11 <= 9;
        want[1] += i % 2 == 1 && i % 3 >= 1 && i % 5 <= 2 && i % 7 >= 1 && i % 13 <= 11;
    }
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        char *cols = answer_cols_as_recs(s, qs[i]);
        if (i < 2) {
            char w[64];
            snprintf(w, sizeof w, "\"count\":%d,", want[i]);
            cr_assert(strstr(cols, w), "%s: %s wanted %s", qs[i], cols, w);
        }
        free(cols);
    }
    drop(s, dir);
}
