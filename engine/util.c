/* Small shared pieces: growable buffers, hashing, a sort of hashed
 * records, moments, and time.
 *
 * Times are epoch milliseconds in UTC everywhere inside the engine. Parsing
 * follows RFC 3339 section 5.6 (with the common relaxations: a space for
 * 'T', lower case 't'/'z', any number of fraction digits, a bare date);
 * calendar arithmetic is Howard Hinnant's days_from_civil, which works for
 * every proleptic Gregorian date without touching the C library's time zone
 * state.
 */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <xxhash.h>

/* Sort n records of `size` bytes that start with a u64 hash, by that hash
 * (ties by cmp): a counting pass over the hash's top bits, then each small
 * bucket in place. Hashes are uniform, so buckets hold about one record
 * and the sort is two passes; qsort cost 8% of a UUIDv4 ingest's CPU
 * (perf, 10M scores) when ids.c sorted its batches with it, and the trace
 * index's 8-pass LSD radix sort 3% (perf, 1M). A bucket past a few records
 * (one id sent many times, one trace with many scores: they share a hash)
 * is left to qsort, so no input makes it quadratic. tmp holds n records. */
#define HSORT_SMALL 16u

void sdb__hash_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *),
                      void *tmp)
{
    if (n < 64) {
        qsort(base, n, size, cmp);
        return;
    }
    unsigned bits = 1;
    while (bits < 20 && (1ull << bits) < n) bits++;
    size_t nb = (size_t)1 << bits;
    size_t *start = calloc(nb + 1, sizeof *start);
    if (!start) {
        qsort(base, n, size, cmp);
        return;
    }
    uint8_t *b = base, *o = tmp;
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, b + i * size, 8);
        start[(h >> (64 - bits)) + 1]++;
    }
    for (size_t k = 0; k < nb; k++) start[k + 1] += start[k];
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, b + i * size, 8);
        memcpy(o + start[h >> (64 - bits)]++ * size, b + i * size, size);
    }
    /* start[k] is now the end of bucket k, the start of bucket k + 1. */
    uint8_t x[32];
    for (size_t k = 0, lo = 0; k < nb; lo = start[k++]) {
        size_t m = start[k] - lo;
        uint8_t *q = o + lo * size;
        if (m > HSORT_SMALL || size > sizeof x) {
            qsort(q, m, size, cmp);
            continue;
        }
        for (size_t i = 1; i < m; i++) { /* insertion sort */
            memcpy(x, q + i * size, size);
            size_t j = i;
            for (; j > 0 && cmp(q + (j - 1) * size, x) > 0; j--)
                memcpy(q + j * size, q + (j - 1) * size, size);
            memcpy(q + j * size, x, size);
        }
    }
    memcpy(base, tmp, n * size);
    free(start);
}

const char *const sdb__dim_names[SDB_N_DIMS] = {
    "environment", "model", "prompt_version", "trace_name", "user_id", "author",
};
const char *const sdb__type_names[SDB_N_TYPES] = {"NUMERIC", "BOOLEAN", "CATEGORICAL"};
const char *const sdb__source_names[SDB_N_SOURCES] = {"API", "EVAL", "ANNOTATION"};

int sdb__buf_reserve(sdb__buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return SDB_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return SDB_ENOMEM;
    b->p = p;
    b->cap = cap;
    return SDB_OK;
}

int sdb__buf_add(sdb__buf *b, const void *p, size_t len)
{
    if (sdb__buf_reserve(b, len)) return SDB_ENOMEM;
    if (len) memcpy(b->p + b->len, p, len);
    b->len += len;
    return SDB_OK;
}

void sdb__buf_free(sdb__buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

uint64_t sdb__hash(const void *p, size_t len) { return XXH3_64bits(p, len); }

/* --------------------------------------------------------------- moments */

void sdb__mom_init(sdb__mom *m)
{
    m->n = 0;
    m->sum = m->k = m->dm = m->m2 = 0.0;
    m->min = INFINITY;
    m->max = -INFINITY;
}

void sdb__mom_merge(sdb__mom *m, const sdb__mom *o)
{
    if (o->n == 0) return;
    if (m->n == 0) {
        *m = *o;
        return;
    }
    double na = (double)m->n, nb = (double)o->n, n = na + nb;
    /* Difference of the means, k first: two data values subtract exactly
     * when they are within a factor of two of each other. */
    double d = (o->k - m->k) + (o->dm - m->dm);
    m->m2 += o->m2 + d * d * na * nb / n;
    m->dm += d * nb / n;
    m->sum += o->sum;
    m->n += o->n;
    if (o->min < m->min) m->min = o->min;
    if (o->max > m->max) m->max = o->max;
}

void sdb__mom_add(sdb__mom *m, double x)
{
    if (m->n == 0) m->k = x;
    m->n++;
    /* Welford's update on the deviation from k. */
    double y = x - m->k;
    double e = y - m->dm;
    m->dm += e / (double)m->n;
    m->m2 += e * (y - m->dm);
    m->sum += x;
    if (x < m->min) m->min = x;
    if (x > m->max) m->max = x;
}

/* ------------------------------------------------------------------ time */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i])) return -1;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return 0;
}

int sdb_time_parse(const char *s, size_t len, int64_t *out_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || digits(s, len, 8, 2, &d))
        return SDB_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return SDB_EINVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return SDB_EINVAL;
    size_t i = 10;
    int64_t frac_ms = 0, offset_min = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return SDB_EINVAL;
        if (digits(s, len, 11, 2, &h) || len < 16 || s[13] != ':' ||
            digits(s, len, 14, 2, &mi))
            return SDB_EINVAL;
        i = 16;
        if (i < len && s[i] == ':') {
            if (digits(s, len, 17, 2, &sec)) return SDB_EINVAL;
            i = 19;
        }
        if (h > 23 || mi > 59 || sec > 60) return SDB_EINVAL;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            i++;
            size_t start = i;
            int64_t scale = 100;
            while (i < len && isdigit((unsigned char)s[i])) {
                frac_ms += (s[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (i == start) return SDB_EINVAL;
        }
        if (i >= len) return SDB_EINVAL; /* RFC 3339 requires a zone */
        if (s[i] == 'Z' || s[i] == 'z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int oh, om;
            if (digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
                digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
                return SDB_EINVAL;
            offset_min = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
            i += 6;
        } else {
            return SDB_EINVAL;
        }
        if (i != len) return SDB_EINVAL;
    }
    if (sec == 60) sec = 59; /* a leap second is held at :59.999 */
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return SDB_OK;
}

int sdb__time_check(const char *field, int64_t ms, char *err, size_t errlen)
{
    if (ms >= SDB__MIN_MS && ms <= SDB__MAX_MS) return SDB_OK;
    sdb__errf(err, errlen,
              "field \"%s\": must be from 0000-01-01T00:00:00.000Z to "
              "9999-12-31T23:59:59.999Z (%lld to %lld ms), got %lld",
              field, SDB__MIN_MS, SDB__MAX_MS, (long long)ms);
    return SDB_EINVAL;
}

void sdb_time_format(int64_t ms, char *buf)
{
    /* Safe for every int64 (ms - days * 86400000 would overflow at the
     * ends): the remainder first, then the days. */
    int64_t rem = ms % 86400000;
    if (rem < 0) rem += 86400000;
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y >= 0 && y <= 9999) {
        /* Digits by hand: snprintf was most of the time of a series
         * answer's timestamps (thousands of points). */
        unsigned f[7] = {(unsigned)y, m, d, (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
                         (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000)};
        static const unsigned width[7] = {4, 2, 2, 2, 2, 2, 3};
        static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
        char *o = buf;
        for (int i = 0; i < 7; i++) {
            for (unsigned k = width[i]; k-- > 0; f[i] /= 10) o[k] = (char)('0' + f[i] % 10);
            o += width[i];
            *o++ = sep[i];
        }
        *o = 0;
        return;
    }
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
             (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
             (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
    memcpy(buf, tmp, 31);
    buf[31] = 0;
}

int sdb_duration_parse(const char *text, int64_t *out_ms)
{
    const char *p = text;
    int64_t total = 0;
    if (!*p) return SDB_EINVAL;
    if (strcmp(p, "0") == 0) {
        *out_ms = 0;
        return SDB_OK;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p)) return SDB_EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > 1000000000000ll) return SDB_EINVAL;
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit;
        if (p[0] == 'm' && p[1] == 's') { unit = 1; p += 2; }
        else if (*p == 's') { unit = 1000; p++; }
        else if (*p == 'm') { unit = 60000; p++; }
        else if (*p == 'h') { unit = 3600000; p++; }
        else if (*p == 'd') { unit = 86400000; p++; }
        else if (*p == 'w') { unit = 7 * 86400000ll; p++; }
        else return SDB_EINVAL;
        /* Past ~292 million years of milliseconds a duration means nothing. */
        if (n > (INT64_MAX - total) / unit) return SDB_EINVAL;
        total += n * unit;
    }
    *out_ms = total;
    return SDB_OK;
}
