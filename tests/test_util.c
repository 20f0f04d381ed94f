/* Time and duration parsing and formatting (engine/util.c). */
#include <criterion/criterion.h>
#include <string.h>

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
