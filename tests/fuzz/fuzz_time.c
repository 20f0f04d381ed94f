/* Fuzz target: time and duration text (engine/util.c sdb_time_parse,
 * sdb_time_format, sdb_duration_parse): the `timestamp`, `from` and `to`
 * fields of every request and the server's --aggregation-delay.
 *
 * Invariants: a parsed time inside years 0000..9999 formats to text that
 * parses back to the same milliseconds; formatting any int64 never writes
 * past its 32 bytes; an accepted duration is not negative.
 */
#include "fuzz.h"
#include "scoredb.h"

#include <string.h>

/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
#define MIN_MS (-62167219200000ll)
#define MAX_MS (253402300799999ll)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    const char *s = (const char *)data;
    int64_t ms;
    if (sdb_time_parse(s, size, &ms) == SDB_OK && ms >= MIN_MS && ms <= MAX_MS) {
        char buf[32], again[32];
        sdb_time_format(ms, buf);
        FUZZ_CHECK(strlen(buf) == 24);
        int64_t back;
        FUZZ_CHECK(sdb_time_parse(buf, strlen(buf), &back) == SDB_OK);
        FUZZ_CHECK(back == ms);
        sdb_time_format(back, again);
        FUZZ_CHECK(strcmp(buf, again) == 0);
    }

    /* Any 8 bytes as epoch ms: the formatter must cope with every int64. */
    if (size >= 8) {
        int64_t any;
        memcpy(&any, data, 8);
        char buf[40];
        memset(buf, 'x', sizeof buf);
        sdb_time_format(any, buf);
        FUZZ_CHECK(memchr(buf, 0, 32) != NULL);
        FUZZ_CHECK(buf[32] == 'x');
    }

    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    int64_t d;
    if (sdb_duration_parse(text, &d) == SDB_OK) FUZZ_CHECK(d >= 0);
    free(text);
    return 0;
}
