/* Fuzz target: one score object (engine/json.c, sdb_batch_add_json), the
 * unit of every ingest path (CLI lines, HTTP bodies, compatible APIs).
 *
 * Invariants: only SDB_OK, SDB_EINVAL or SDB_ENOMEM come back; an accepted
 * score adds exactly one row whose id is 1 to 200 bytes, from a text with
 * no control byte but JSON white space (docs/input.md); a rejected one
 * leaves the batch as it was and names its reason in err.
 */
#include "fuzz.h"
#include "scoredb.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sdb_batch *b;
    if (!b && sdb_batch_new(&b) != SDB_OK) return 0;
    /* Keep a few rows between inputs so that growth of the batch is
     * exercised too, but bound its memory. */
    if (sdb_batch_rows(b) >= 64) sdb_batch_clear(b);
    size_t before = sdb_batch_rows(b);
    char err[512];
    err[0] = 0;
    int rc = sdb_batch_add_json(b, (const char *)data, size, err, sizeof err);
    FUZZ_CHECK(rc == SDB_OK || rc == SDB_EINVAL || rc == SDB_ENOMEM);
    FUZZ_CHECK(memchr(err, 0, sizeof err) != NULL);
    if (rc == SDB_OK) {
        FUZZ_CHECK(sdb_batch_rows(b) == before + 1);
        const char *id = sdb_batch_id(b, before);
        FUZZ_CHECK(id != NULL);
        size_t n = strlen(id);
        FUZZ_CHECK(n >= 1 && n <= 200);
        FUZZ_CHECK(fuzz_controls_are_white_space(data, size));
    } else {
        FUZZ_CHECK(sdb_batch_rows(b) == before);
        if (rc == SDB_EINVAL) FUZZ_CHECK(err[0] != 0);
    }
    return 0;
}
