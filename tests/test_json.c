/* Score and query validation (engine/json.c): every accepted shape, and
 * every rejection names the field and the value. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoredb.h"

static sdb_batch *b;
static char err[512];

static void setup(void) { cr_assert_eq(sdb_batch_new(&b), SDB_OK); }
static void teardown(void) { sdb_batch_free(b); }

static int add(const char *j)
{
    err[0] = 0;
    return sdb_batch_add_json(b, j, strlen(j), err, sizeof err);
}

static void rejects(const char *j, const char *needle)
{
    size_t before = sdb_batch_rows(b);
    cr_assert_eq(add(j), SDB_EINVAL, "accepted: %s", j);
    cr_assert_not_null(strstr(err, needle), "error for %s was \"%s\", expected it to name \"%s\"",
                       j, err, needle);
    cr_assert_eq(sdb_batch_rows(b), before, "a rejected row changed the batch");
}

TestSuite(score, .init = setup, .fini = teardown);

Test(score, accepts_every_data_type_and_infers_it)
{
    cr_assert_eq(add("{\"name\":\"a\",\"value\":0.5,\"trace_id\":\"t\"}"), SDB_OK, "%s", err);
    cr_assert_eq(add("{\"name\":\"a\",\"value\":true,\"session_id\":\"s\"}"), SDB_OK, "%s", err);
    cr_assert_eq(add("{\"name\":\"a\",\"value\":\"good\",\"dataset_run_id\":\"d\"}"), SDB_OK, "%s", err);
    cr_assert_eq(add("{\"name\":\"a\",\"value\":1,\"data_type\":\"BOOLEAN\",\"trace_id\":\"t\"}"), SDB_OK, "%s", err);
    cr_assert_eq(add("{\"name\":\"a\",\"value\":3,\"data_type\":\"NUMERIC\",\"trace_id\":\"t\","
                     "\"observation_id\":\"o\",\"timestamp\":\"2026-01-31T07:05:32.780Z\","
                     "\"source\":\"EVAL\",\"environment\":\"prod\",\"model\":\"m\","
                     "\"prompt_version\":\"v1\",\"trace_name\":\"tn\",\"user_id\":\"u\","
                     "\"author\":\"x\",\"config_id\":\"c\",\"tags\":[\"a\"],"
                     "\"properties\":{\"k\":\"v\"},\"comment\":\"hi\",\"metadata\":{\"a\":[1]},"
                     "\"id\":\"my-id\"}"),
                 SDB_OK, "%s", err);
    cr_assert_eq(sdb_batch_rows(b), 5);
    cr_assert_str_eq(sdb_batch_id(b, 4), "my-id");
    /* A generated id is a v7 UUID: time-ordered, variant 10. */
    const char *id = sdb_batch_id(b, 0);
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '7', "%s", id);
    cr_assert(strchr("89ab", id[19]) != NULL, "%s", id);
    cr_assert_str_neq(sdb_batch_id(b, 0), sdb_batch_id(b, 1));
    cr_assert(strncmp(sdb_batch_id(b, 0), sdb_batch_id(b, 1), 13) <= 0,
              "ids from later calls sort later (to the millisecond)");
}

Test(score, rejects_missing_and_bad_required_fields)
{
    rejects("{\"value\":1,\"trace_id\":\"t\"}", "\"name\": required");
    rejects("{\"name\":\"\",\"value\":1,\"trace_id\":\"t\"}", "\"name\"");
    rejects("{\"name\":5,\"value\":1,\"trace_id\":\"t\"}", "\"name\": expected a string, got 5");
    rejects("{\"name\":\"a\",\"trace_id\":\"t\"}", "\"value\": required");
    rejects("{\"name\":\"a\",\"value\":null,\"trace_id\":\"t\"}", "\"value\"");
    rejects("{\"name\":\"a\",\"value\":[1],\"trace_id\":\"t\"}", "\"value\"");
    rejects("{\"name\":\"a\",\"value\":1}", "trace_id, session_id or dataset_run_id");
    rejects("{\"name\":\"a\",\"value\":1,\"session_id\":\"s\",\"observation_id\":\"o\"}",
            "\"observation_id\": needs trace_id");
}

Test(score, rejects_a_data_type_that_disagrees_with_the_value)
{
    rejects("{\"name\":\"a\",\"value\":\"x\",\"data_type\":\"NUMERIC\",\"trace_id\":\"t\"}",
            "NUMERIC takes a number, got \"x\"");
    rejects("{\"name\":\"a\",\"value\":true,\"data_type\":\"NUMERIC\",\"trace_id\":\"t\"}",
            "NUMERIC takes a number, got true");
    rejects("{\"name\":\"a\",\"value\":2,\"data_type\":\"BOOLEAN\",\"trace_id\":\"t\"}",
            "BOOLEAN takes true, false, 0 or 1, got 2");
    rejects("{\"name\":\"a\",\"value\":0.5,\"data_type\":\"CATEGORICAL\",\"trace_id\":\"t\"}",
            "CATEGORICAL takes a string, got 0.5");
    rejects("{\"name\":\"a\",\"value\":1,\"data_type\":\"numeric\",\"trace_id\":\"t\"}",
            "\"data_type\": expected NUMERIC, BOOLEAN or CATEGORICAL, got \"numeric\"");
}

Test(score, rejects_bad_optional_fields_naming_them)
{
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":\"yesterday\"}",
            "\"timestamp\": expected an RFC 3339 time");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"timestamp\":\"2026-02-30T00:00:00Z\"}",
            "\"timestamp\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"source\":\"USER\"}",
            "\"source\": expected API, EVAL or ANNOTATION, got \"USER\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"tags\":\"x\"}", "\"tags\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"tags\":[1]}", "\"tags[0]\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"properties\":{\"k\":1}}",
            "\"properties.k\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"metadata\":\"x\"}", "\"metadata\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"model\":7}",
            "\"model\": expected a string, got 7");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"colour\":\"red\"}",
            "unknown field \"colour\"");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"\"}", "\"trace_id\": must not be empty");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"trace_id\":\"u\"}", "invalid JSON");
    rejects("{\"name\":\"a\",\"value\":1e999,\"trace_id\":\"t\"}", "\"value\": not a finite number");
    rejects("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\"} x", "text after the value");
    rejects("{\"name\":\"a\xff\",\"value\":1,\"trace_id\":\"t\"}", "not UTF-8");
    rejects("{\"name\":\"a\\u0000b\",\"value\":1,\"trace_id\":\"t\"}", "\\u0000");
    rejects("{\"name\":\"a\",", "invalid JSON at line 1");
    rejects("[1,2]", "expected a JSON object");
    char big[400];
    memset(big, 'x', 201);
    big[201] = 0;
    char j[600];
    snprintf(j, sizeof j, "{\"name\":\"%s\",\"value\":1,\"trace_id\":\"t\"}", big);
    rejects(j, "\"name\": must be 1 to 200 bytes, got 201");
}

Test(score, null_optional_fields_count_as_absent)
{
    cr_assert_eq(add("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"comment\":null,"
                     "\"metadata\":null,\"model\":null,\"timestamp\":null,\"source\":null}"),
                 SDB_OK, "%s", err);
}

/* ------------------------------------------------------ string rules */

/* add() for a text that may hold NUL bytes. */
static int add_n(const char *j, size_t len)
{
    err[0] = 0;
    return sdb_batch_add_json(b, j, len, err, sizeof err);
}

/* Every string field of a score object, with the path its message names
 * and the JSON around a string slot "@" (filled with x<byte>y). */
static const struct {
    const char *path, *json;
} str_fields[] = {
    {"id", "{\"id\":\"@\",\"name\":\"a\",\"value\":1,\"trace_id\":\"t\"}"},
    {"name", "{\"name\":\"@\",\"value\":1,\"trace_id\":\"t\"}"},
    {"trace_id", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"@\"}"},
    {"session_id", "{\"name\":\"a\",\"value\":1,\"session_id\":\"@\"}"},
    {"dataset_run_id", "{\"name\":\"a\",\"value\":1,\"dataset_run_id\":\"@\"}"},
    {"observation_id", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"observation_id\":\"@\"}"},
    {"config_id", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"config_id\":\"@\"}"},
    {"value", "{\"name\":\"a\",\"value\":\"@\",\"trace_id\":\"t\"}"},
    {"model", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"model\":\"@\"}"},
    {"environment", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"environment\":\"@\"}"},
    {"user_id", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"user_id\":\"@\"}"},
    {"comment", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"comment\":\"@\"}"},
    {"tags[1]", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"tags\":[\"k\",\"@\"]}"},
    {"properties.k", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"properties\":{\"k\":\"@\"}}"},
    {"a field name in \"properties\"",
     "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"properties\":{\"@\":\"v\"}}"},
    {"metadata.m[0].deep", "{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\",\"metadata\":{\"m\":[{\"deep\":\"@\"}]}}"},
};

/* The template with "@" replaced by `fill` (fill_len bytes); returns the length. */
static size_t fill_slot(const char *tmpl, const char *fill, size_t fill_len, char *out)
{
    const char *at = strchr(tmpl, '@');
    size_t pre = (size_t)(at - tmpl), post = strlen(at + 1);
    memcpy(out, tmpl, pre);
    memcpy(out + pre, fill, fill_len);
    memcpy(out + pre + fill_len, at + 1, post + 1);
    return pre + fill_len + post;
}

Test(score, refuses_every_raw_control_byte_in_every_string_field_naming_it)
{
    char j[512];
    for (size_t f = 0; f < sizeof str_fields / sizeof *str_fields; f++)
        for (int c = 0; c < 0x20; c++) {
            char fill[3] = {'x', (char)c, 'y'};
            size_t n = fill_slot(str_fields[f].json, fill, 3, j);
            cr_assert_eq(add_n(j, n), SDB_EINVAL, "byte 0x%02x in %s accepted", c,
                         str_fields[f].path);
            cr_assert_not_null(strstr(err, str_fields[f].path), "0x%02x in %s: \"%s\"", c,
                               str_fields[f].path, err);
            char want[32];
            snprintf(want, sizeof want, "raw control byte 0x%02x", c);
            cr_assert_not_null(strstr(err, want), "0x%02x in %s: \"%s\"", c,
                               str_fields[f].path, err);
            /* The escape \u0000 is refused in the same places. */
            n = fill_slot(str_fields[f].json, "x\\u0000y", 8, j);
            cr_assert_eq(add_n(j, n), SDB_EINVAL);
            cr_assert_not_null(strstr(err, str_fields[f].path), "\\u0000 in %s: \"%s\"",
                               str_fields[f].path, err);
        }
    cr_assert_eq(sdb_batch_rows(b), 0, "a refused row changed the batch");
}

Test(score, a_raw_nul_no_longer_cuts_an_id_into_another_clients_id)
{
    static const char victim[] = "{\"id\":\"victim\",\"name\":\"a\",\"value\":1,\"trace_id\":\"t\"}";
    static const char attack[] = "{\"id\":\"victim\0x\",\"name\":\"a\",\"value\":2,\"trace_id\":\"t\"}";
    cr_assert_eq(add_n(victim, sizeof victim - 1), SDB_OK, "%s", err);
    cr_assert_eq(add_n(attack, sizeof attack - 1), SDB_EINVAL);
    cr_assert_not_null(strstr(err, "field \"id\": raw control byte 0x00 at column 14"), "%s", err);
    cr_assert_eq(sdb_batch_rows(b), 1);
    /* A name checked for length before: 200 bytes, a NUL, and more. */
    char j[600];
    char fill[260];
    memset(fill, 'n', sizeof fill);
    fill[200] = 0;
    size_t n = fill_slot("{\"name\":\"@\",\"value\":1,\"trace_id\":\"t\"}", fill, sizeof fill, j);
    cr_assert_eq(add_n(j, n), SDB_EINVAL);
    cr_assert_not_null(strstr(err, "field \"name\": raw control byte 0x00"), "%s", err);
}

Test(score, escapes_and_plain_white_space_stay_accepted)
{
    /* Escaped control characters are JSON; an escaped backslash before
     * u0000 is text; tab, CR and LF between tokens are white space. */
    cr_assert_eq(add("{\"name\":\"a\",\"value\":1,\"trace_id\":\"t\","
                     "\"comment\":\"tab\\there\\nline \\\"q\\\" \\\\u0000 \\u0001\"}"),
                 SDB_OK, "%s", err);
    cr_assert_eq(add("{\t\"name\" :\r\"a\",\n\"value\":1,\"trace_id\":\"t\"}"), SDB_OK, "%s", err);
    rejects("{\"name\":\"a\",\x01\"value\":1,\"trace_id\":\"t\"}",
            "invalid JSON at line 1 column 13: raw control byte 0x01 outside a string");
    rejects("{\"name\":\"a\",\x0b\"value\":1,\"trace_id\":\"t\"}", "outside a string");
    cr_assert_eq(sdb_batch_rows(b), 2);
}

Test(score, lengths_are_checked_on_the_decoded_bytes)
{
    /* 100 escapes of 6 bytes: 600 bytes of text, a 100-byte name. */
    char j[2000], fill[1300];
    size_t n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)sprintf(fill + n, "\\u0041");
    size_t len = fill_slot("{\"name\":\"@\",\"value\":1,\"trace_id\":\"t\"}", fill, n, j);
    cr_assert_eq(add_n(j, len), SDB_OK, "%s", err);
    /* 199 bytes and one escape decoding to two bytes (U+00E9): 201. */
    memset(fill, 'x', 199);
    memcpy(fill + 199, "\\u00e9", 6);
    len = fill_slot("{\"name\":\"@\",\"value\":1,\"trace_id\":\"t\"}", fill, 205, j);
    rejects(j, "\"name\": must be 1 to 200 bytes, got 201");
}

/* Randomized: score lines with random escapes, white space, and now and
 * then a raw control byte or \u0000 put into one random string; the
 * reference is what was put in. Each refused line names the field. */
Test(score, random_lines_are_refused_exactly_when_a_string_breaks_the_rules)
{
    unsigned seed = 12345;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
    static const char *const pieces[] = {"ab", "\\n", "\\\"", "\\\\", "\\u00e9", "\\t", "z",
                                         "\\\\u0000", "\xc3\xa9"};
    static const char *const fields[] = {"id", "trace_id", "model", "comment", "user_id"};
    int refused = 0;
    for (int it = 0; it < 3000; it++) {
        char j[1024], val[5][128];
        size_t vlen[5];
        int bad_field = RND() % 3 == 0 ? (int)(RND() % 5) : -1;
        for (int f = 0; f < 5; f++) {
            size_t n = 0;
            int parts = 1 + (int)(RND() % 6);
            int bad_at = f == bad_field ? (int)(RND() % (unsigned)parts) : -1;
            for (int p = 0; p < parts; p++) {
                const char *x = pieces[RND() % (sizeof pieces / sizeof *pieces)];
                memcpy(val[f] + n, x, strlen(x));
                n += strlen(x);
                if (p == bad_at) {
                    if (RND() % 4 == 0) {
                        memcpy(val[f] + n, "\\u0000", 6);
                        n += 6;
                    } else {
                        val[f][n++] = (char)(RND() % 0x20);
                    }
                }
            }
            vlen[f] = n;
        }
        size_t n = (size_t)sprintf(j, "{\"name\":\"r\",%s\"value\":1", RND() % 2 ? "\t" : "");
        for (int f = 0; f < 5; f++) {
            n += (size_t)sprintf(j + n, ",%s\"%s\":\"", RND() % 3 ? "" : " ", fields[f]);
            memcpy(j + n, val[f], vlen[f]);
            n += vlen[f];
            j[n++] = '"';
        }
        j[n++] = '}';
        int rc = add_n(j, n);
        if (bad_field < 0) {
            cr_assert_eq(rc, SDB_OK, "line %d refused: %s", it, err);
        } else {
            refused++;
            char want[32];
            snprintf(want, sizeof want, "field \"%s\"", fields[bad_field]);
            cr_assert_eq(rc, SDB_EINVAL, "line %d accepted with a bad %s", it, fields[bad_field]);
            cr_assert_not_null(strstr(err, want), "line %d: \"%s\" lacks %s", it, err, want);
        }
    }
    cr_assert_gt(refused, 500);
    cr_assert_eq(sdb_batch_rows(b), (size_t)(3000 - refused));
#undef RND
}

/* Randomized: array bodies (root arrays and {"scores": [...]}) whose
 * elements carry strings full of brackets, commas, colons, quotes and
 * backslashes (escaped), nested metadata, and now and then a raw control
 * byte or \u0000 in one string; the reference is the set of elements
 * spoiled. Exactly those are refused, by index, and the rest stored. */
Test(score, random_array_bodies_refuse_exactly_the_spoiled_elements)
{
    unsigned seed = 777;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
    static const char *const tricky[] = {"[", "]", "{", "}", ",", ":", "\\\"", "\\\\", "\\\\\\\"",
                                         "\\u005b", "x", "\\/"};
    enum { MAXN = 40 };
    char *body = malloc(1 << 16);
    for (int it = 0; it < 300; it++) {
        int n = 1 + (int)(RND() % MAXN), spoiled[MAXN], n_spoiled = 0;
        int wrap = RND() % 2;
        size_t len = 0;
        len += (size_t)sprintf(body + len, "%s[", wrap ? "{\"scores\":" : "");
        for (int e = 0; e < n; e++) {
            spoiled[e] = RND() % 4 == 0;
            n_spoiled += spoiled[e];
            int where = (int)(RND() % 3); /* comment, metadata value, tag */
            char str[3][160];
            size_t sl[3];
            for (int k = 0; k < 3; k++) {
                size_t m = 0;
                int parts = (int)(RND() % 5);
                for (int p = 0; p < parts; p++) {
                    const char *t = tricky[RND() % (sizeof tricky / sizeof *tricky)];
                    memcpy(str[k] + m, t, strlen(t));
                    m += strlen(t);
                }
                if (spoiled[e] && k == where) {
                    if (RND() % 3 == 0) {
                        memcpy(str[k] + m, "\\u0000", 6);
                        m += 6;
                    } else {
                        str[k][m++] = (char)(RND() % 0x20);
                    }
                }
                sl[k] = m;
            }
            /* The strings may hold NUL: copied by length, not printed. */
            static const char *const glue[] = {"\",\"metadata\":{\"a\":[{\"b\":\"",
                                               "\"},[]]},\"tags\":[\"", "\"]}"};
            len += (size_t)sprintf(body + len,
                                   "%s%s{\"id\":\"e%d\",\"name\":\"r\",\"value\":%d,\"trace_id\":\"t\","
                                   "\"comment\":\"",
                                   e ? "," : "", RND() % 2 ? "\n " : "", e, e);
            for (int k = 0; k < 3; k++) {
                memcpy(body + len, str[k], sl[k]);
                len += sl[k];
                len += (size_t)sprintf(body + len, "%s", glue[k]);
            }
        }
        len += (size_t)sprintf(body + len, "]%s", wrap ? "}" : "");
        size_t items, n_err;
        char *errs = NULL;
        sdb_batch_clear(b);
        int rc = sdb_batch_add_body(b, body, len, 0, 100, &items, &n_err, &errs, err, sizeof err);
        cr_assert_eq(rc, SDB_OK, "body %d: %s", it, err);
        cr_assert_eq(items, (size_t)n, "body %d", it);
        cr_assert_eq(n_err, (size_t)n_spoiled, "body %d: %s", it, errs);
        cr_assert_eq(sdb_batch_rows(b), (size_t)(n - n_spoiled), "body %d", it);
        size_t row = 0;
        for (int e = 0; e < n; e++) {
            char want[48];
            snprintf(want, sizeof want, "{\"index\":%d,\"error\":", e);
            if (spoiled[e]) {
                cr_assert_not_null(strstr(errs, want), "body %d element %d: %s", it, e, errs);
            } else {
                cr_assert_null(strstr(errs, want), "body %d element %d: %s", it, e, errs);
                char id[16];
                snprintf(id, sizeof id, "e%d", e);
                cr_assert_str_eq(sdb_batch_id(b, row), id, "body %d", it);
                row++;
            }
        }
        free(errs);
    }
    free(body);
#undef RND
}

Test(score, a_bad_string_refuses_its_element_alone_in_every_body_shape)
{
    static const char arr[] =
        "[{\"id\":\"a\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\"},\n"
        " {\"id\":\"victim\0x\",\"name\":\"n\",\"value\":2,\"trace_id\":\"t\"},\n"
        " {\"id\":\"c\",\"name\":\"n\",\"value\":3,\"trace_id\":\"t\",\"tags\":[\"\x1f\"]},\n"
        " {\"id\":\"d\",\"name\":\"n\",\"value\":4,\"trace_id\":\"t\"}]";
    static const char obj[] =
        "{\"scores\":[{\"id\":\"a\",\"name\":\"n\\u0000\",\"value\":1,\"trace_id\":\"t\"},"
        "{\"id\":\"b\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\"}]}";
    static const char nd[] = "{\"id\":\"a\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\"}\n"
                             "{\"id\":\"b\x02\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\"}\n";
    size_t items, n_err;
    char *errs;
    cr_assert_eq(sdb_batch_add_body(b, arr, sizeof arr - 1, 0, 100, &items, &n_err, &errs, err,
                                    sizeof err), SDB_OK, "%s", err);
    cr_assert_eq(items, 4);
    cr_assert_eq(n_err, 2, "%s", errs);
    cr_assert_eq(sdb_batch_rows(b), 2);
    cr_assert_str_eq(sdb_batch_id(b, 0), "a");
    cr_assert_str_eq(sdb_batch_id(b, 1), "d");
    cr_assert_not_null(strstr(errs, "{\"index\":1,\"error\":\"field \\\"id\\\": raw control byte 0x00 at line 2 column 15"), "%s", errs);
    cr_assert_not_null(strstr(errs, "{\"index\":2,\"error\":\"field \\\"tags[0]\\\": raw control byte 0x1f at line 3"), "%s", errs);
    free(errs);
    cr_assert_eq(sdb_batch_add_body(b, obj, sizeof obj - 1, 0, 100, &items, &n_err, &errs, err,
                                    sizeof err), SDB_OK, "%s", err);
    cr_assert_eq(n_err, 1);
    cr_assert_not_null(strstr(errs, "{\"index\":0,\"error\":\"field \\\"name\\\": the escape \\\\u0000"), "%s", errs);
    cr_assert_str_eq(sdb_batch_id(b, 2), "b");
    free(errs);
    cr_assert_eq(sdb_batch_add_body(b, nd, sizeof nd - 1, 1, 100, &items, &n_err, &errs, err,
                                    sizeof err), SDB_OK, "%s", err);
    cr_assert_eq(n_err, 1);
    cr_assert_not_null(strstr(errs, "{\"index\":1,\"line\":2,\"error\":\"field \\\"id\\\": raw control byte 0x02"), "%s", errs);
    free(errs);
    cr_assert_eq(sdb_batch_rows(b), 4);
    /* Outside every element, the body as a whole is refused. */
    static const char broken[] = "[{\"id\":\"a\",\"name\":\"n\",\"value\":1,\"trace_id\":\"t\"},\x01{}]";
    cr_assert_eq(sdb_batch_add_body(b, broken, sizeof broken - 1, 0, 100, &items, &n_err, &errs,
                                    err, sizeof err), SDB_EINVAL);
    cr_assert_not_null(strstr(err, "raw control byte 0x01 outside a string"), "%s", err);
    cr_assert_eq(sdb_batch_rows(b), 4);
}

/* ------------------------------------------------------------- queries */

static sdb_store *store;
static char dir[64];

static void qsetup(void)
{
    strcpy(dir, "/tmp/sdb_q_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(sdb_store_open(dir, NULL, &store, err, sizeof err), SDB_OK);
}

static void qteardown(void)
{
    sdb_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void qrejects(const char *q, const char *needle)
{
    char *out = NULL;
    err[0] = 0;
    cr_assert_eq(sdb_query_json(store, 0, q, strlen(q), &out, err, sizeof err), SDB_EINVAL,
                 "accepted: %s", q);
    cr_assert_null(out);
    cr_assert_not_null(strstr(err, needle), "error for %s was \"%s\", expected \"%s\"", q, err,
                       needle);
}

TestSuite(query, .init = qsetup, .fini = qteardown);

Test(query, rejects_invalid_query_objects_naming_the_field)
{
    qrejects("{\"name\":\"a\",\"names\":[\"b\"]}", "give one, not both");
    qrejects("{\"from\":\"soon\"}", "\"from\"");
    qrejects("{\"from\":10,\"to\":5}", "\"to\": must not be before");
    qrejects("{\"where\":{\"value\":{\"between\":1}}}", "where.value.between");
    qrejects("{\"where\":{\"value\":{\"gt\":\"x\"}}}", "where.value.gt");
    qrejects("{\"where\":{\"source\":[\"USER\"]}}", "where.source\": unknown value \"USER\"");
    qrejects("{\"where\":{\"colour\":[\"x\"]}}", "where.colour");
    qrejects("{\"group_by\":[\"colour\"]}", "unknown dimension \"colour\"");
    qrejects("{\"interval\":\"1y\"}", "\"interval\"");
    qrejects("{\"interval\":\"0d\"}", "\"interval\"");
    qrejects("{\"stats\":[\"median\"]}", "unknown stat \"median\"");
    qrejects("{\"histogram\":{\"bins\":0}}", "histogram.bins");
    qrejects("{\"histogram\":{\"min\":1,\"max\":1}}", "histogram.max");
    qrejects("{\"percentiles\":[101]}", "percentiles[0]");
    qrejects("{\"limit\":3}", "unknown field \"limit\"");
    qrejects("{\"from\":0,\"to\":100000000000,\"interval\":\"1s\"}", "more than 100000 intervals");
    qrejects("nope", "invalid JSON");
    qrejects("{\"group_by\":[\"model\",\"model\"]}", "field \"group_by\": \"model\" is given twice");
    qrejects("{\"group_by\":[\"name\",\"properties.k\",\"properties.k\"]}",
             "\"properties.k\" is given twice");
    /* jansson refuses raw control bytes and \u0000 itself; the message names the field. */
    qrejects("{\"name\":\"a\x01\"}", "field \"name\": raw control byte 0x01");
    qrejects("{\"where\":{\"model\":[\"m\\u0000\"]}}", "field \"where.model[0]\": the escape \\u0000");
}

Test(query, an_empty_store_answers_no_groups)
{
    char *out = NULL;
    cr_assert_eq(sdb_query_json(store, 0, "{}", 2, &out, err, sizeof err), SDB_OK, "%s", err);
    cr_assert_not_null(strstr(out, "\"groups\":[]"), "%s", out);
    cr_assert_not_null(strstr(out, "\"pending\":0"), "%s", out);
    free(out);
}
