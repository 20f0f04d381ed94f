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
}

Test(query, an_empty_store_answers_no_groups)
{
    char *out = NULL;
    cr_assert_eq(sdb_query_json(store, 0, "{}", 2, &out, err, sizeof err), SDB_OK, "%s", err);
    cr_assert_not_null(strstr(out, "\"groups\":[]"), "%s", out);
    cr_assert_not_null(strstr(out, "\"pending\":0"), "%s", out);
    free(out);
}
