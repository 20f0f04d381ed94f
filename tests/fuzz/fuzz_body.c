/* Fuzz target: an HTTP ingest body (engine/http_json.c,
 * sdb_batch_add_body): a JSON array of score objects, {"scores": [...]},
 * or NDJSON. Every input is tried in both modes.
 *
 * Invariants: on SDB_OK every item was either added to the batch or
 * reported, so rows == items - errors, and the error list wrapped in
 * brackets is a JSON array of exactly `errors` objects, each with an
 * "index" below `items`; a body that stores every item holds no control
 * byte but JSON white space; on failure no error list is returned.
 */
#include "fuzz.h"
#include "scoredb.h"

#include <jansson.h>
#include <string.h>

#define MAX_ITEMS 100

static void check_errors(const char *errs, size_t n_errors, size_t n_items)
{
    size_t len = strlen(errs);
    char *text = malloc(len + 3);
    FUZZ_CHECK(text != NULL);
    text[0] = '[';
    memcpy(text + 1, errs, len);
    memcpy(text + 1 + len, "]", 2);
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    FUZZ_CHECK(a != NULL);
    FUZZ_CHECK(json_is_array(a));
    FUZZ_CHECK(json_array_size(a) == n_errors);
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e)
    {
        json_t *index = json_object_get(e, "index");
        FUZZ_CHECK(json_is_integer(index));
        FUZZ_CHECK(json_integer_value(index) >= 0 && (size_t)json_integer_value(index) < n_items);
        FUZZ_CHECK(json_is_string(json_object_get(e, "error")));
    }
    json_decref(a);
    free(text);
}

static void one(sdb_batch *b, const uint8_t *data, size_t size, int ndjson)
{
    size_t items = 0, n_errors = 0;
    char *errs = NULL, err[512];
    err[0] = 0;
    sdb_batch_clear(b);
    int rc = sdb_batch_add_body(b, (const char *)data, size, ndjson, MAX_ITEMS, &items,
                                &n_errors, &errs, err, sizeof err);
    FUZZ_CHECK(rc == SDB_OK || rc == SDB_EINVAL || rc == SDB_ELIMIT || rc == SDB_ENOMEM);
    FUZZ_CHECK(memchr(err, 0, sizeof err) != NULL);
    if (rc != SDB_OK) {
        FUZZ_CHECK(errs == NULL);
        if (rc != SDB_ENOMEM) FUZZ_CHECK(err[0] != 0);
        return;
    }
    FUZZ_CHECK(errs != NULL);
    FUZZ_CHECK(items <= MAX_ITEMS);
    FUZZ_CHECK(n_errors <= items);
    FUZZ_CHECK(sdb_batch_rows(b) == items - n_errors);
    if (n_errors == 0) FUZZ_CHECK(fuzz_controls_are_white_space(data, size));
    check_errors(errs, n_errors, items);
    free(errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sdb_batch *b;
    if (size > 1 << 16) return 0;
    if (!b && sdb_batch_new(&b) != SDB_OK) return 0;
    one(b, data, size, 0);
    one(b, data, size, 1);
    return 0;
}
