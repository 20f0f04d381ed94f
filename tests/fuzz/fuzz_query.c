/* Fuzz target: a query object (engine/json.c sdb__query_parse, then the
 * planner and kernels of engine/query.c through sdb_query_json) and the
 * same text as a trace-search body (engine/http_json.c,
 * sdb_traces_search_json), both over a small store built once per
 * process: a few hundred scores of every type over several names, days,
 * dimensions, tags and properties, most folded into segments and some
 * still pending.
 *
 * Invariants: only the documented codes come back; an answer is a JSON
 * object with "groups" (query) or "data" (trace search) an array; an
 * error names its cause in err.
 */
#include "fuzz.h"
#include "scoredb.h"

#include <ftw.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#define T0 1767225600000ll /* 2026-01-01T00:00:00Z */
#define DAY 86400000ll

static sdb_store *store;
static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    sdb_store_close(store);
    store = NULL;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void add(sdb_batch *b, const char *json)
{
    char err[512];
    if (sdb_batch_add_json(b, json, strlen(json), err, sizeof err) != SDB_OK) {
        fprintf(stderr, "fuzz_query: seed score rejected: %s\n%s\n", err, json);
        abort();
    }
}

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_fuzz_XXXXXX");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    sdb_options o = {0};
    o.no_sync = 1;
    o.chunk_rows = 16; /* several chunks per bucket: every scan path */
    char err[512];
    if (sdb_store_open(dir, &o, &store, err, sizeof err) != SDB_OK) {
        fprintf(stderr, "fuzz_query: %s\n", err);
        abort();
    }
    atexit(teardown);
    static const char *const names[] = {"faithfulness", "relevance", "pass", "tone"};
    static const char *const models[] = {"gpt-4o", "claude", "llama"};
    static const char *const sources[] = {"API", "EVAL", "ANNOTATION"};
    static const char *const labels[] = {"good", "bad", "ok"};
    sdb_batch *b;
    FUZZ_CHECK(sdb_batch_new(&b) == SDB_OK);
    char json[1024];
    for (int i = 0; i < 400; i++) {
        int k = i % 4;
        char value[64];
        if (k == 2)
            snprintf(value, sizeof value, "%s", i % 3 ? "true" : "false");
        else if (k == 3)
            snprintf(value, sizeof value, "\"%s\"", labels[i % 3]);
        else
            snprintf(value, sizeof value, "%g", (double)((i * 37) % 101) / 100.0 - (i % 13 == 0));
        snprintf(json, sizeof json,
                 "{\"name\":\"%s\",\"value\":%s,\"trace_id\":\"t%d\",\"timestamp\":%lld,"
                 "\"source\":\"%s\",\"model\":\"%s\",\"prompt_version\":\"v%d\","
                 "\"environment\":\"%s\",\"user_id\":\"u%d\",\"tags\":[\"a%d\",\"b\"],"
                 "\"properties\":{\"feature\":\"f%d\"}%s}",
                 names[k], value, i % 37, (long long)(T0 + (int64_t)i * 3 * 3600000ll),
                 sources[i % 3], models[i % 3], i % 5, i % 7 ? "production" : "staging",
                 i % 11, i % 4, i % 3, i % 9 == 0 ? ",\"id\":\"fixed\"" : "");
        add(b, json);
    }
    FUZZ_CHECK(sdb_store_ingest(store, 0, b, T0) == SDB_OK);
    FUZZ_CHECK(sdb_store_fold(store, T0, NULL) == SDB_OK);
    /* A second batch ingested after the watermark stays pending. */
    sdb_batch_clear(b);
    for (int i = 0; i < 20; i++) {
        snprintf(json, sizeof json,
                 "{\"name\":\"faithfulness\",\"value\":%d,\"session_id\":\"s%d\","
                 "\"timestamp\":%lld}",
                 i % 2, i, (long long)(T0 + i * DAY));
        add(b, json);
    }
    FUZZ_CHECK(sdb_store_ingest(store, 0, b, T0 + 10 * DAY) == SDB_OK);
    /* And one more project, which queries of project 0 must never see. */
    sdb_batch_clear(b);
    add(b, "{\"name\":\"faithfulness\",\"value\":99,\"trace_id\":\"other\"}");
    uint32_t other;
    FUZZ_CHECK(sdb_project_id(store, "other", 1, &other) == SDB_OK);
    FUZZ_CHECK(sdb_store_ingest(store, other, b, T0) == SDB_OK);
    FUZZ_CHECK(sdb_store_fold(store, T0, NULL) == SDB_OK);
    sdb_batch_free(b);
}

static void check_answer(int rc, char *out, const char *err, const char *array)
{
    FUZZ_CHECK(rc == SDB_OK || rc == SDB_EINVAL || rc == SDB_ENOMEM);
    if (rc != SDB_OK) {
        FUZZ_CHECK(out == NULL);
        if (rc == SDB_EINVAL) FUZZ_CHECK(err[0] != 0);
        return;
    }
    FUZZ_CHECK(out != NULL);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    if (!o) fprintf(stderr, "fuzz_query: answer is not JSON (%s): %.2000s\n", je.text, out);
    FUZZ_CHECK(o != NULL);
    FUZZ_CHECK(json_is_object(o));
    FUZZ_CHECK(json_is_array(json_object_get(o, array)));
    json_decref(o);
    /* Nothing of project "other" (value 99, trace "other") may leak. */
    FUZZ_CHECK(strstr(out, "\"other\"") == NULL);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 14) return 0;
    if (!store) setup();
    char err[512], *out = NULL;
    err[0] = 0;
    int rc = sdb_query_json(store, 0, (const char *)data, size, &out, err, sizeof err);
    check_answer(rc, out, err, "groups");
    out = NULL;
    err[0] = 0;
    rc = sdb_traces_search_json(store, 0, (const char *)data, size, &out, err, sizeof err);
    check_answer(rc, out, err, "data");
    return 0;
}
