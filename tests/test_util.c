/* Time and duration parsing and formatting, and the hash sort
 * (engine/util.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "scoredb.h"

static int64_t parse(const char *s)
{
    int64_t ms = 0;
    cr_assert_eq(sdb_time_parse(s, strlen(s), &ms), SDB_OK, "rejected %s", s);
    return ms;
}

Test(time, parses_rfc3339_with_fractions_and_offsets)
{
    cr_assert_eq(parse("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse("2026-01-31T07:05:32.780Z"), 1769843132780ll);
    cr_assert_eq(parse("2026-01-31T07:05:32.78Z"), 1769843132780ll);
    cr_assert_eq(parse("2026-01-31T07:05:32.780123Z"), 1769843132780ll);
    cr_assert_eq(parse("2026-01-31T09:05:32.780+02:00"), 1769843132780ll);
    cr_assert_eq(parse("2026-01-31t07:05:32.780z"), 1769843132780ll);
    cr_assert_eq(parse("2026-01-31 07:05:32Z"), 1769843132000ll);
    cr_assert_eq(parse("2026-01-31"), 1769817600000ll);
    cr_assert_eq(parse("1969-12-31T23:59:59.999Z"), -1);
    cr_assert_eq(parse("2024-02-29T00:00:00Z"), 1709164800000ll);
}

Test(time, rejects_what_is_not_a_time)
{
    const char *bad[] = {"", "2026", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-01-31T25:00:00Z", "2026-01-31T07:05:32", "2026-01-31T07:05:32.Z",
                         "2026-01-31T07:05:32Zjunk", "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms;
        cr_assert_eq(sdb_time_parse(bad[i], strlen(bad[i]), &ms), SDB_EINVAL, "accepted %s", bad[i]);
    }
}

Test(time, formats_utc_with_milliseconds_and_round_trips)
{
    char buf[32];
    sdb_time_format(1769843132780ll, buf);
    cr_assert_str_eq(buf, "2026-01-31T07:05:32.780Z");
    sdb_time_format(-1, buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    for (int64_t t = -100000000000ll; t < 5000000000000ll; t += 123456789011ll) {
        sdb_time_format(t, buf);
        cr_assert_eq(parse(buf), t, "%s", buf);
    }
}

Test(duration, parses_units_and_compounds)
{
    int64_t ms;
    cr_assert_eq(sdb_duration_parse("10m", &ms), SDB_OK);
    cr_assert_eq(ms, 600000);
    cr_assert_eq(sdb_duration_parse("0", &ms), SDB_OK);
    cr_assert_eq(ms, 0);
    cr_assert_eq(sdb_duration_parse("1h30m", &ms), SDB_OK);
    cr_assert_eq(ms, 5400000);
    cr_assert_eq(sdb_duration_parse("500ms", &ms), SDB_OK);
    cr_assert_eq(ms, 500);
    cr_assert_eq(sdb_duration_parse("2d", &ms), SDB_OK);
    cr_assert_eq(ms, 172800000);
    cr_assert_eq(sdb_duration_parse("10", &ms), SDB_EINVAL);
    cr_assert_eq(sdb_duration_parse("m", &ms), SDB_EINVAL);
    cr_assert_eq(sdb_duration_parse("", &ms), SDB_EINVAL);
}

/* ---- sdb__hash_sort (engine/util.c): against qsort on the same records,
 * uniform hashes and hashes drawn from a few values (buckets far past the
 * insertion-sort size, as one trace with many scores makes), every size
 * around the qsort cut-off. */

typedef struct hrec {
    uint64_t h, ref;
} hrec;

static int cmp_hrec(const void *a, const void *b)
{
    const hrec *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->ref < y->ref ? -1 : x->ref > y->ref;
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Test(hash_sort, orders_like_qsort_with_uniform_and_repeated_hashes)
{
    const size_t sizes[] = {0, 1, 2, 63, 64, 65, 1000, 70000};
    uint64_t seed = 42;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        for (int repeats = 0; repeats < 3; repeats++) {
            size_t n = sizes[si];
            hrec *a = malloc(sizeof *a * (n + 1)), *b = malloc(sizeof *b * (n + 1)),
                 *tmp = malloc(sizeof *tmp * (n + 1));
            cr_assert(a && b && tmp);
            /* repeats 0: uniform; 1: 7 distinct hashes; 2: half of the
             * records on one hash, the rest uniform. */
            uint64_t few[7];
            for (int k = 0; k < 7; k++) few[k] = mix(&seed);
            for (size_t i = 0; i < n; i++) {
                uint64_t r = mix(&seed);
                a[i].h = repeats == 0 ? r : repeats == 1 ? few[r % 7] : (r & 1 ? few[0] : mix(&seed));
                a[i].ref = (mix(&seed) % (n + 1)) * 1000 + i; /* unique, not in order */
            }
            memcpy(b, a, sizeof *a * n);
            qsort(b, n, sizeof *b, cmp_hrec);
            sdb__hash_sort(a, n, sizeof *a, cmp_hrec, tmp);
            for (size_t i = 0; i < n; i++) {
                cr_assert_eq(a[i].h, b[i].h, "n %zu repeats %d: hash at %zu", n, repeats, i);
                cr_assert_eq(a[i].ref, b[i].ref, "n %zu repeats %d: ref at %zu", n, repeats, i);
            }
            free(a);
            free(b);
            free(tmp);
        }
    }
}
