/* JSON in and out: the only engine file that includes <jansson.h>.
 *
 * Input (score objects, query objects) is parsed by jansson and validated
 * field by field; every rejection names the field and the offending value,
 * because the caller is usually a person reading an ingest report.
 * Output is written with small emitters: numbers use the shortest text that
 * reads back to the same double (so 0.1 prints as 0.1, not
 * 0.10000000000000001), which jansson's fixed %.17g cannot do.
 */
#include "query.h"

#include <jansson.h>
#include <math.h>

/* ------------------------------------------------------------- emitters */

void sdb__j_raw(sdb__buf *b, const char *s) { sdb__buf_add(b, s, strlen(s)); }

void sdb__j_str(sdb__buf *b, const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (sdb__buf_reserve(b, len + 2)) return;
    b->p[b->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        /* A run of bytes that need no escape goes in one copy (byte by
         * byte it was a sixth of a grouped answer's time). */
        size_t r = i;
        while (r < len && (unsigned char)p[r] >= 0x20 && p[r] != '"' && p[r] != '\\') r++;
        if (r > i) {
            sdb__buf_add(b, p + i, r - i);
            i = r - 1;
            continue;
        }
        unsigned char c = (unsigned char)p[i];
        char e[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            e[n++] = '\\';
            e[n++] = (char)c;
        } else if (c < 0x20) {
            e[n++] = '\\';
            switch (c) {
            case '\n': e[n++] = 'n'; break;
            case '\r': e[n++] = 'r'; break;
            case '\t': e[n++] = 't'; break;
            default:
                e[n++] = 'u'; e[n++] = '0'; e[n++] = '0';
                e[n++] = hex[c >> 4]; e[n++] = hex[c & 15];
            }
        } else {
            e[n++] = (char)c;
        }
        sdb__buf_add(b, e, n);
    }
    sdb__buf_add(b, "\"", 1);
}

int sdb_json_quote(const char *s, size_t len, char **out, size_t *out_len)
{
    sdb__buf b = {*out, *out_len, *out ? *out_len + 1 : 0};
    sdb__j_str(&b, s, len);
    if (sdb__buf_add(&b, "", 1)) return SDB_ENOMEM;
    *out = b.p;
    *out_len = b.len - 1;
    return SDB_OK;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v, for v in
 * [1e-3, 1e15), without printf or strtod: those took 1.7 us a number, most
 * of the time of an answer with a few thousand series points. v = m / 2^k
 * exactly; the p-digit rounding of v is N = round(m * 10^s / 2^k) with
 * s = p - 1 - E (E = floor(log10 v)), computed in 128-bit integers (m <
 * 2^53, 10^s <= 10^19, k <= 63 here), ties to even as glibc rounds; N
 * reads back as v exactly when it lies inside v's rounding interval
 * (half an ulp each side, a quarter below a power of two, the ends
 * included for even m, as strtod rounds ties to even). Digits are written
 * as %g writes them in this range (fixed point, no trailing zeros).
 * m, k and a first E come from the double's bits (E from the binary
 * exponent times log10(2), at most one too small, which the digit count
 * of N corrects): frexp, ldexp and log10 were a third of the printer's
 * time. Returns the length written to out (at most 24 bytes, no NUL), or
 * 0 when v is outside the range (the caller prints). */
__extension__ typedef unsigned __int128 u128; /* GCC's; pedantic C has none */

static const uint64_t P10[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull,
                                 1000000ull, 10000000ull, 100000000ull, 1000000000ull,
                                 10000000000ull, 100000000000ull, 1000000000000ull,
                                 10000000000000ull, 100000000000000ull,
                                 1000000000000000ull, 10000000000000000ull,
                                 100000000000000000ull, 1000000000000000000ull,
                                 10000000000000000000ull};

/* The nd low decimal digits of v, leading zeros included, written to end
 * from its right, two at a time: one digit per division by 10 made a
 * chain of 17 dependent multiplications, most of the printer's time; two
 * halves of 8 digits in 32 bits run side by side. */
static void put_digits(uint32_t v, char *end, int nd)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    for (; nd >= 2; nd -= 2) {
        uint32_t q = v / 100, r = v - q * 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
        v = q;
    }
    if (nd) *--end = (char)('0' + v % 10);
}

static size_t short_num(double v, char *out)
{
    if (!(v >= 1e-3 && v < 1e15)) return 0;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int be = (int)(bits >> 52); /* v > 0 and normal here: 1 <= be <= 2046 */
    uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    int k = 1075 - be; /* v = m / 2^k */
    if (k < 1 || k > 63) return 0;
    /* 2^(be-1023) <= v < 2^(be-1022): floor((be - 1023) * log10 2) is E
     * or E - 1 (78913 / 2^18 is log10 2 to 6 digits, exact for floor over
     * this exponent range). */
    int E = ((be - 1023) * 78913) >> 18, fixes = 0;
    for (int p = 15; p <= 17; p++) {
        int s = p - 1 - E;
        if (s < 0 || s > 19) return 0;
        u128 num = (u128)m * P10[s];
        uint64_t n = (uint64_t)(num >> k);
        u128 rem = num & (((u128)1 << k) - 1), half = (u128)1 << (k - 1);
        if (n < P10[p - 1] || n >= P10[p]) { /* E was off by one */
            if (++fixes > 2) return 0;
            E += n < P10[p - 1] ? -1 : 1;
            p--;
            continue;
        }
        if (rem > half || (rem == half && (n & 1))) n++;
        u128 c = num; /* m * 10^s */
        if (n == P10[p]) { /* 9.99..95 rounded up: one digit more in front */
            n = P10[p - 1];
            E++;
            if (--s < 0) return 0;
            c = (u128)m * P10[s];
        }
        /* Inside the rounding interval? |n * 2^k - m * 10^s| against
         * 10^s / 2 (a quarter below a power of two). */
        u128 a = (u128)n << k;
        u128 d = a > c ? a - c : c - a, lim = (u128)P10[s];
        bool below = a < c, pow2 = m == (1ull << 52);
        /* 2d vs 10^s (or 4d below a power of two) */
        u128 dd = d << (below && pow2 ? 2 : 1);
        bool ok = dd < lim || (dd == lim && !(m & 1));
        if (!ok && p < 17) continue;
        /* Write n (p digits) with the point after E + 1 of them. */
        char dig[24];
        put_digits((uint32_t)(n % 100000000), dig + p, 8);
        put_digits((uint32_t)(n / 100000000), dig + p - 8, p - 8);
        int nd = p;
        while (nd > 1 && dig[nd - 1] == '0' && nd > E + 1) nd--;
        char *o = out;
        if (E >= 0) {
            for (int i = 0; i < nd || i <= E; i++) {
                if (i == E + 1) *o++ = '.';
                *o++ = i < nd ? dig[i] : '0';
            }
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -E - 1; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = dig[i];
        }
        return (size_t)(o - out);
    }
    return 0;
}

/* The decimal digits of v into out (no NUL); returns their count. */
static size_t u64_text(uint64_t v, char *out)
{
    char tmp[24];
    char *e = tmp + sizeof tmp, *o = e;
    do *--o = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    memcpy(out, o, (size_t)(e - o));
    return (size_t)(e - o);
}

/* The text of a finite v into out (room for 48 bytes, no NUL); returns
 * its length. Integers below 1e15 print as integers (what %.15g gives
 * them too), the rest as the shortest of %.15g, %.16g, %.17g that reads
 * back as v: short_num in its range, printf outside it. */
static size_t num_text(double v, char *out)
{
    if (v == 0) v = 0; /* -0 prints as 0 */
    double a = fabs(v);
    size_t neg = v < 0;
    out[0] = '-';
    if (a < 1e15 && a == (double)(uint64_t)a) return neg + u64_text((uint64_t)a, out + neg);
    size_t n = short_num(a, out + neg);
    if (n) return neg + n;
    for (int prec = 15; prec <= 17; prec++) {
        n = (size_t)snprintf(out, 48, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    return n;
}

int sdb__j_num_text(double v, char *tmp, size_t n)
{
    if (!isfinite(v) || n < 48) return 0;
    tmp[num_text(v, tmp)] = 0;
    return 1;
}

void sdb__j_num(sdb__buf *b, double v)
{
    if (!isfinite(v)) {
        sdb__buf_add(b, "null", 4);
        return;
    }
    /* Straight into the buffer: no copy through a scratch array. */
    if (sdb__buf_reserve(b, 48)) return;
    b->len += num_text(v, b->p + b->len);
}

void sdb__j_u64(sdb__buf *b, uint64_t v)
{
    if (sdb__buf_reserve(b, 20)) return;
    b->len += u64_text(v, b->p + b->len);
}

void sdb__j_time(sdb__buf *b, int64_t ms)
{
    char tmp[40];
    tmp[0] = '"';
    sdb_time_format(ms, tmp + 1);
    size_t n = strlen(tmp);
    tmp[n++] = '"';
    sdb__buf_add(b, tmp, n);
}

/* ---------------------------------------------------------------- shared */

static const char *kind_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* A short rendering of a JSON value for error messages. */
static void show(const json_t *v, char *out, size_t n)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s) {
        snprintf(out, n, "%s", kind_of(v));
        return;
    }
    if (strlen(s) > 60) {
        memcpy(s + 57, "...", 4);
    }
    snprintf(out, n, "%s", s);
    free(s);
}

/* show() into an 80-byte buffer, returning it: for use inside a message. */
void sdb__json_load_error(const char *text, size_t len, int line, int column,
                          const char *why, char *err, size_t errlen)
{
    /* jansson refuses raw control bytes and \u0000 in strings itself
     * (json_loadb without JSON_ALLOW_NUL) but names only a position; the
     * string scan names the field. */
    if ((strstr(why, "control character") || strstr(why, "u0000")) &&
        sdb__json_strings_check(text, len, err, errlen) == SDB_EINVAL)
        return;
    sdb__errf(err, errlen, "invalid JSON at line %d column %d: %s", line, column, why);
}

static int load(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!*out) {
        sdb__json_load_error(text, len, je.line, je.column, je.text, err, errlen);
        return SDB_EINVAL;
    }
    if (!json_is_object(*out)) {
        char v[80];
        show(*out, v, sizeof v);
        sdb__errf(err, errlen, "expected a JSON object, got %s", v);
        json_decref(*out);
        *out = NULL;
        return SDB_EINVAL;
    }
    return SDB_OK;
}

/* A time: RFC 3339 string or integer epoch ms. */
static int get_time(const char *field, const json_t *v, int64_t *out, char *err, size_t errlen)
{
    char shown[80];
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return sdb__time_check(field, *out, err, errlen);
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return sdb__time_check(field, *out, err, errlen);
        }
    }
    if (json_is_string(v) &&
        sdb_time_parse(json_string_value(v), json_string_length(v), out) == SDB_OK)
        return sdb__time_check(field, *out, err, errlen);
    show(v, shown, sizeof shown);
    sdb__errf(err, errlen,
              "field \"%s\": expected an RFC 3339 time or integer epoch milliseconds, got %s",
              field, shown);
    return SDB_EINVAL;
}

/* ---------------------------------------------------------------- queries */

static int enum_of(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

typedef struct qparse {
    char *err;
    size_t errlen;
} qparse;

static int dup_str(const char *p, size_t len, sdb__str *out)
{
    char *d = malloc(len + 1);
    if (!d) return SDB_ENOMEM;
    memcpy(d, p, len);
    d[len] = 0;
    out->p = d;
    out->len = (uint32_t)len;
    return SDB_OK;
}

/* A list of strings: an array of strings, or one string. */
static int get_strs(qparse *c, const char *field, const json_t *v, sdb__strs *out)
{
    char shown[80];
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_array(v) && !json_is_string(v)) goto bad;
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v) return SDB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(s)) goto bad;
        if (dup_str(json_string_value(s), json_string_length(s), &out->v[i])) return SDB_ENOMEM;
        out->n++;
    }
    return SDB_OK;
bad:
    show(v, shown, sizeof shown);
    sdb__errf(c->err, c->errlen, "field \"%s\": expected an array of strings, got %s", field,
              shown);
    return SDB_EINVAL;
}

static int get_num(qparse *c, const char *field, const json_t *v, double *out)
{
    char shown[80];
    if (json_is_number(v) && isfinite(json_number_value(v))) {
        *out = json_number_value(v);
        return SDB_OK;
    }
    show(v, shown, sizeof shown);
    sdb__errf(c->err, c->errlen, "field \"%s\": expected a finite number, got %s", field, shown);
    return SDB_EINVAL;
}

static int parse_value_filter(qparse *c, const json_t *v, sdb__query *q)
{
    char shown[80];
    if (!json_is_object(v)) {
        show(v, shown, sizeof shown);
        sdb__errf(c->err, c->errlen, "field \"where.value\": expected an object, got %s", shown);
        return SDB_EINVAL;
    }
    q->has_value = true;
    q->v_lo = -INFINITY;
    q->v_hi = INFINITY;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        char field[64];
        snprintf(field, sizeof field, "where.value.%.20s", k);
        double d;
        if (strcmp(k, "gt") && strcmp(k, "gte") && strcmp(k, "lt") && strcmp(k, "lte") &&
            strcmp(k, "eq")) {
            sdb__errf(c->err, c->errlen,
                      "unknown field \"%s\" (expected gt, gte, lt, lte or eq)", field);
            return SDB_EINVAL;
        }
        if (get_num(c, field, x, &d)) return SDB_EINVAL;
        /* Every bound becomes a closed one so kernels compare one way. */
        double lo = -INFINITY, hi = INFINITY;
        if (!strcmp(k, "gt")) lo = nextafter(d, INFINITY);
        if (!strcmp(k, "gte")) lo = d;
        if (!strcmp(k, "lt")) hi = nextafter(d, -INFINITY);
        if (!strcmp(k, "lte")) hi = d;
        if (!strcmp(k, "eq")) lo = hi = d;
        if (lo > q->v_lo) q->v_lo = lo;
        if (hi < q->v_hi) q->v_hi = hi;
    }
    return SDB_OK;
}

static int parse_enum_mask(qparse *c, const char *field, const json_t *v,
                           const char *const *names, int n, uint8_t *mask)
{
    sdb__strs s = {0};
    int rc = get_strs(c, field, v, &s);
    for (uint32_t i = 0; rc == SDB_OK && i < s.n; i++) {
        int e = enum_of(s.v[i].p, names, n);
        if (e < 0) {
            sdb__errf(c->err, c->errlen, "field \"%s\": unknown value \"%.200s\"", field,
                      s.v[i].p);
            rc = SDB_EINVAL;
        } else {
            *mask |= (uint8_t)(1u << e);
        }
    }
    for (uint32_t i = 0; i < s.n; i++) free((void *)s.v[i].p);
    free(s.v);
    /* An empty list matches nothing: keep a mask bit that no row has. */
    if (rc == SDB_OK && *mask == 0) *mask = 0x80;
    return rc;
}

static int parse_where(qparse *c, const json_t *w, sdb__query *q)
{
    char shown[80];
    if (!json_is_object(w)) {
        show(w, shown, sizeof shown);
        sdb__errf(c->err, c->errlen, "field \"where\": expected an object, got %s", shown);
        return SDB_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)w, k, v)
    {
        char field[240];
        snprintf(field, sizeof field, "where.%.200s", k);
        int rc, d;
        if (!strcmp(k, "value")) {
            rc = parse_value_filter(c, v, q);
        } else if (!strcmp(k, "source")) {
            rc = parse_enum_mask(c, field, v, sdb__source_names, SDB_N_SOURCES, &q->source_mask);
        } else if (!strcmp(k, "data_type")) {
            rc = parse_enum_mask(c, field, v, sdb__type_names, SDB_N_TYPES, &q->type_mask);
        } else if (!strcmp(k, "tags")) {
            rc = get_strs(c, field, v, &q->tags);
        } else if (!strcmp(k, "properties")) {
            if (!json_is_object(v)) {
                show(v, shown, sizeof shown);
                sdb__errf(c->err, c->errlen,
                          "field \"where.properties\": expected an object, got %s", shown);
                return SDB_EINVAL;
            }
            q->props = calloc(json_object_size(v) + 1, sizeof *q->props);
            if (!q->props) return SDB_ENOMEM;
            const char *pk;
            json_t *pv;
            rc = SDB_OK;
            json_object_foreach(v, pk, pv)
            {
                sdb__prop_filter *f = &q->props[q->n_props++];
                snprintf(field, sizeof field, "where.properties.%.200s", pk);
                if ((rc = dup_str(pk, strlen(pk), &f->key))) break;
                if ((rc = get_strs(c, field, pv, &f->values))) break;
            }
        } else if ((d = enum_of(k, sdb__dim_names, SDB_N_DIMS)) >= 0) {
            q->has_dim[d] = true;
            rc = get_strs(c, field, v, &q->dim[d]);
        } else {
            sdb__errf(c->err, c->errlen, "unknown field \"%s\"", field);
            rc = SDB_EINVAL;
        }
        if (rc) return rc;
    }
    return SDB_OK;
}

static int parse_group_by(qparse *c, const json_t *v, sdb__query *q)
{
    sdb__strs s = {0};
    int rc = get_strs(c, "group_by", v, &s);
    if (rc == SDB_OK && s.n > SDB_MAX_GROUP_BY) {
        sdb__errf(c->err, c->errlen, "field \"group_by\": at most %u fields, got %u",
                  SDB_MAX_GROUP_BY, s.n);
        rc = SDB_EINVAL;
    }
    for (uint32_t i = 0; rc == SDB_OK && i < s.n; i++) {
        const char *f = s.v[i].p;
        /* A key twice would make every group's "key" object hold the same
         * field twice, which is not JSON a client can read back. */
        for (uint32_t k = 0; k < i; k++)
            if (!strcmp(s.v[k].p, f)) {
                sdb__errf(c->err, c->errlen, "field \"group_by\": \"%.200s\" is given twice", f);
                rc = SDB_EINVAL;
            }
        if (rc) break;
        sdb__gb *g = &q->group[q->n_group++];
        snprintf(g->label, sizeof g->label, "%.215s", f);
        int d;
        if (!strcmp(f, "name")) {
            g->kind = SDB_GB_NAME;
        } else if (!strcmp(f, "source")) {
            g->kind = SDB_GB_SOURCE;
        } else if (!strcmp(f, "data_type")) {
            g->kind = SDB_GB_TYPE;
        } else if ((d = enum_of(f, sdb__dim_names, SDB_N_DIMS)) >= 0) {
            g->kind = SDB_GB_DIM;
            g->dim = d;
        } else if (!strncmp(f, "properties.", 11) && f[11]) {
            g->kind = SDB_GB_PROP;
            rc = dup_str(f + 11, strlen(f + 11), &g->key);
        } else {
            sdb__errf(c->err, c->errlen,
                      "field \"group_by\": unknown dimension \"%.200s\" (expected name, "
                      "source, data_type, environment, model, prompt_version, trace_name, "
                      "user_id, author or properties.KEY)",
                      f);
            rc = SDB_EINVAL;
        }
    }
    for (uint32_t i = 0; i < s.n; i++) free((void *)s.v[i].p);
    free(s.v);
    return rc;
}

static int parse_interval(qparse *c, const json_t *v, sdb__query *q)
{
    char shown[80];
    show(v, shown, sizeof shown);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long n = strtoll(s, &end, 10);
        int64_t unit = 0;
        if (end != s && n > 0 && n <= 100000 && end[0] && !end[1]) {
            switch (end[0]) {
            case 's': unit = 1000; break;
            case 'm': unit = 60000; break;
            case 'h': unit = 3600000; break;
            case 'd': unit = 86400000; break;
            case 'w': unit = 7 * 86400000ll; break;
            }
        }
        if (unit) {
            q->interval_ms = n * unit;
            /* 1970-01-05 was a Monday: weeks are ISO weeks. */
            q->interval_origin = end[0] == 'w' ? 4 * 86400000ll : 0;
            return SDB_OK;
        }
    }
    sdb__errf(c->err, c->errlen,
              "field \"interval\": expected a positive count and a unit s, m, h, d or w "
              "(\"1d\"), got %s",
              shown);
    return SDB_EINVAL;
}

static int parse_stats(qparse *c, const json_t *v, sdb__query *q)
{
    static const char *const names[] = {"count", "avg", "min", "max", "sum", "stddev", "traces"};
    sdb__strs s = {0};
    int rc = get_strs(c, "stats", v, &s);
    q->stats = 0;
    for (uint32_t i = 0; rc == SDB_OK && i < s.n; i++) {
        int e = enum_of(s.v[i].p, names, 7);
        if (e < 0) {
            sdb__errf(c->err, c->errlen,
                      "field \"stats\": unknown stat \"%.200s\" (expected count, avg, min, "
                      "max, sum, stddev or traces)",
                      s.v[i].p);
            rc = SDB_EINVAL;
        } else {
            q->stats |= 1u << e;
        }
    }
    for (uint32_t i = 0; i < s.n; i++) free((void *)s.v[i].p);
    free(s.v);
    return rc;
}

static int parse_histogram(qparse *c, const json_t *v, sdb__query *q)
{
    char shown[80];
    if (!json_is_object(v)) {
        show(v, shown, sizeof shown);
        sdb__errf(c->err, c->errlen, "field \"histogram\": expected an object, got %s", shown);
        return SDB_EINVAL;
    }
    q->has_hist = true;
    q->bins = 10;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (!strcmp(k, "bins")) {
            if (!json_is_integer(x) || json_integer_value(x) < 1 ||
                json_integer_value(x) > 10000) {
                show(x, shown, sizeof shown);
                sdb__errf(c->err, c->errlen,
                          "field \"histogram.bins\": expected an integer from 1 to 10000, got %s",
                          shown);
                return SDB_EINVAL;
            }
            q->bins = (uint32_t)json_integer_value(x);
        } else if (!strcmp(k, "min")) {
            if (json_is_null(x)) continue;
            if (get_num(c, "histogram.min", x, &q->hist_min)) return SDB_EINVAL;
            q->hist_has_min = true;
        } else if (!strcmp(k, "max")) {
            if (json_is_null(x)) continue;
            if (get_num(c, "histogram.max", x, &q->hist_max)) return SDB_EINVAL;
            q->hist_has_max = true;
        } else {
            sdb__errf(c->err, c->errlen, "unknown field \"histogram.%.200s\"", k);
            return SDB_EINVAL;
        }
    }
    if (q->hist_has_min && q->hist_has_max && !(q->hist_max > q->hist_min)) {
        sdb__errf(c->err, c->errlen,
                  "field \"histogram.max\": must be greater than histogram.min (%g), got %g",
                  q->hist_min, q->hist_max);
        return SDB_EINVAL;
    }
    return SDB_OK;
}

static int parse_percentiles(qparse *c, const json_t *v, sdb__query *q)
{
    char shown[80];
    if (!json_is_array(v) || json_array_size(v) > 100) {
        show(v, shown, sizeof shown);
        sdb__errf(c->err, c->errlen,
                  "field \"percentiles\": expected an array of at most 100 numbers, got %s",
                  shown);
        return SDB_EINVAL;
    }
    q->pct = calloc(json_array_size(v) + 1, sizeof *q->pct);
    if (!q->pct) return SDB_ENOMEM;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        double p;
        char field[40];
        snprintf(field, sizeof field, "percentiles[%zu]", i);
        if (get_num(c, field, x, &p)) return SDB_EINVAL;
        if (p < 0 || p > 100) {
            sdb__errf(c->err, c->errlen, "field \"%s\": must be from 0 to 100, got %g", field, p);
            return SDB_EINVAL;
        }
        q->pct[q->n_pct++] = p;
    }
    return SDB_OK;
}

int sdb__query_parse(const char *text, size_t len, sdb__query *q, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->stats = SDB_STAT_COUNT | SDB_STAT_AVG | SDB_STAT_MIN | SDB_STAT_MAX;
    json_t *o;
    int rc = load(text, len, &o, err, errlen);
    if (rc) return rc;
    qparse c = {err, errlen};
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (json_is_null(v)) continue; /* null means absent, as clients send it */
        if (!strcmp(k, "name")) {
            if (q->has_names) goto both;
            q->has_names = true;
            if (!json_is_string(v)) {
                char shown[80];
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen, "field \"name\": expected a string, got %s", shown);
                rc = SDB_EINVAL;
            } else {
                rc = get_strs(&c, "name", v, &q->names);
            }
        } else if (!strcmp(k, "names")) {
            if (q->has_names) goto both;
            q->has_names = true;
            rc = get_strs(&c, "names", v, &q->names);
        } else if (!strcmp(k, "from")) {
            rc = get_time("from", v, &q->from, err, errlen);
            q->has_from = true;
        } else if (!strcmp(k, "to")) {
            rc = get_time("to", v, &q->to, err, errlen);
            q->has_to = true;
        } else if (!strcmp(k, "where")) {
            rc = parse_where(&c, v, q);
        } else if (!strcmp(k, "group_by")) {
            rc = parse_group_by(&c, v, q);
        } else if (!strcmp(k, "interval")) {
            rc = parse_interval(&c, v, q);
        } else if (!strcmp(k, "stats")) {
            rc = parse_stats(&c, v, q);
        } else if (!strcmp(k, "histogram")) {
            rc = parse_histogram(&c, v, q);
        } else if (!strcmp(k, "percentiles")) {
            rc = parse_percentiles(&c, v, q);
        } else {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            rc = SDB_EINVAL;
        }
        if (rc) break;
    }
    if (rc == SDB_OK && q->has_from && q->has_to && q->to < q->from) {
        sdb__errf(err, errlen, "field \"to\": must not be before \"from\"");
        rc = SDB_EINVAL;
    }
    json_decref(o);
    if (rc) sdb__query_free(q);
    return rc;
both:
    sdb__errf(err, errlen, "fields \"name\" and \"names\": give one, not both");
    json_decref(o);
    sdb__query_free(q);
    return SDB_EINVAL;
}

static void free_strs(sdb__strs *s)
{
    for (uint32_t i = 0; i < s->n; i++) free((void *)s->v[i].p);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void sdb__query_free(sdb__query *q)
{
    free_strs(&q->names);
    for (int d = 0; d < SDB_N_DIMS; d++) free_strs(&q->dim[d]);
    free_strs(&q->tags);
    for (uint32_t i = 0; i < q->n_props; i++) {
        free((void *)q->props[i].key.p);
        free_strs(&q->props[i].values);
    }
    free(q->props);
    for (uint32_t i = 0; i < q->n_group; i++) free((void *)q->group[i].key.p);
    free(q->pct);
    memset(q, 0, sizeof *q);
}

/* ---------------------------------------------------------------- answers */

/* Literal text: its length known when compiled, no strlen per piece. */
#define LIT(b, s) sdb__buf_add((b), "" s, sizeof(s) - 1)

static void num_or_null(sdb__buf *b, bool any, double v)
{
    if (any)
        sdb__j_num(b, v);
    else
        LIT(b, "null");
}

static void stat_fields(sdb__buf *b, uint32_t stats, const sdb__mom *m, bool numeric)
{
    if (!numeric) return;
    bool any = m->n > 0;
    if (stats & SDB_STAT_AVG) {
        LIT(b, ",\"avg\":");
        num_or_null(b, any, m->sum / (double)m->n);
    }
    if (stats & SDB_STAT_MIN) {
        LIT(b, ",\"min\":");
        num_or_null(b, any, m->min);
    }
    if (stats & SDB_STAT_MAX) {
        LIT(b, ",\"max\":");
        num_or_null(b, any, m->max);
    }
    if (stats & SDB_STAT_SUM) {
        LIT(b, ",\"sum\":");
        num_or_null(b, any, m->sum);
    }
    if (stats & SDB_STAT_STDDEV) {
        LIT(b, ",\"stddev\":");
        if (m->n >= 2)
            sdb__j_num(b, sqrt(m->m2 / (double)(m->n - 1)));
        else
            LIT(b, "null");
    }
}

/* The percentile keys, quoted with their colon (,"50":), printed once
 * per answer into k rather than once per group: snprintf's %.15g was
 * 0.3 us a key, 0.15 ms of an answer of 160 groups with three
 * percentiles. Key i is k->p[off[i] .. off[i + 1]). */
static int pct_keys(const sdb__query *q, sdb__buf *k, uint32_t *off)
{
    for (uint32_t i = 0; i < q->n_pct; i++) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.15g", q->pct[i]);
        off[i] = (uint32_t)k->len;
        if (i) LIT(k, ",");
        sdb__j_str(k, tmp, strlen(tmp));
        if (LIT(k, ":")) return SDB_ENOMEM;
    }
    off[q->n_pct] = (uint32_t)k->len;
    return SDB_OK;
}

int sdb__answer_render(const sdb__query *q, const sdb__answer *a, char **out)
{
    sdb__buf b = {0};
    /* Room for the whole answer at once, roughly (a series point takes
     * about 90 bytes, a bin 8): no doubling copies on the way. */
    size_t per = 160 + (size_t)q->n_pct * 24 + (q->has_hist ? (size_t)q->bins * 32 : 0);
    if (a->n_groups && a->groups[0].n_series) per += (size_t)a->groups[0].n_series * 90;
    sdb__buf pk = {0};
    uint32_t pk_off[101]; /* n_pct <= 100 (json.c's parse) */
    if (q->n_pct > 100 || pct_keys(q, &pk, pk_off) ||
        sdb__buf_reserve(&b, 64 + per * a->n_groups)) {
        sdb__buf_free(&pk);
        return SDB_ENOMEM;
    }
    /* Every group's series has the same intervals (answer.c): their
     * heads, ,{"t":"...","count":, are printed once, from the first
     * group's, and copied into each group's (a point whose t differs
     * prints its own). Date and time by hand per point were a sixth of
     * the time of an answer of a thousand groups x 90 points. */
    sdb__buf heads = {0};
    uint32_t *heads_off = NULL, n_heads = 0;
    if (q->interval_ms && a->n_groups > 1 && a->groups[0].n_series &&
        /* 6 + 33 (a quoted time, sdb_time_format) + 9 bytes a head */
        sdb__buf_reserve(&heads, (size_t)a->groups[0].n_series * 48) == SDB_OK &&
        (heads_off = malloc(((size_t)a->groups[0].n_series + 1) * sizeof *heads_off))) {
        const sdb__out_group *g0 = &a->groups[0];
        for (uint32_t i = 0; i < g0->n_series; i++) {
            heads_off[i] = (uint32_t)heads.len;
            LIT(&heads, ",{\"t\":");
            sdb__j_time(&heads, g0->series[i].t);
            LIT(&heads, ",\"count\":");
        }
        heads_off[g0->n_series] = (uint32_t)heads.len;
        n_heads = g0->n_series; /* reserved: no append above could fail */
    }
    LIT(&b, "{\"as_of\":");
    if (a->as_of == INT64_MIN)
        LIT(&b, "null");
    else
        sdb__j_time(&b, a->as_of);
    LIT(&b, ",\"pending\":");
    sdb__j_u64(&b, a->pending);
    LIT(&b, ",\"groups\":[");
    for (uint32_t gi = 0; gi < a->n_groups; gi++) {
        const sdb__out_group *g = &a->groups[gi];
        /* A group with numeric or boolean rows carries numeric stats; a
         * purely categorical one carries count and categories. */
        bool numeric = g->mom.n > 0 || g->n_cat == 0;
        sdb__j_raw(&b, gi ? ",{" : "{");
        bool first = true;
        if (q->n_group) {
            LIT(&b, "\"key\":{");
            for (uint32_t k = 0; k < q->n_group; k++) {
                if (k) LIT(&b, ",");
                sdb__j_str(&b, q->group[k].label, strlen(q->group[k].label));
                LIT(&b, ":");
                if (g->key[k].p)
                    sdb__j_str(&b, g->key[k].p, g->key[k].len);
                else
                    LIT(&b, "null");
            }
            LIT(&b, "}");
            first = false;
        }
        /* count is always given: it is what every other stat is over. */
        sdb__j_raw(&b, first ? "\"count\":" : ",\"count\":");
        sdb__j_u64(&b, g->count);
        stat_fields(&b, q->stats, &g->mom, numeric);
        if (q->stats & SDB_STAT_TRACES) {
            LIT(&b, ",\"traces\":");
            sdb__j_u64(&b, g->traces);
        }
        if (q->has_hist && numeric && g->edges) {
            LIT(&b, ",\"histogram\":{\"edges\":[");
            for (uint32_t i = 0; i <= q->bins; i++) {
                if (i) LIT(&b, ",");
                sdb__j_num(&b, g->edges[i]);
            }
            LIT(&b, "],\"counts\":[");
            for (uint32_t i = 0; i < q->bins; i++) {
                if (i) LIT(&b, ",");
                sdb__j_u64(&b, g->hist[i]);
            }
            LIT(&b, "],\"underflow\":");
            sdb__j_u64(&b, g->under);
            LIT(&b, ",\"overflow\":");
            sdb__j_u64(&b, g->over);
            LIT(&b, "}");
        }
        if (q->n_pct && numeric) {
            LIT(&b, ",\"percentiles\":{");
            for (uint32_t i = 0; i < q->n_pct; i++) {
                sdb__buf_add(&b, pk.p + pk_off[i], pk_off[i + 1] - pk_off[i]);
                if (g->pct)
                    sdb__j_num(&b, g->pct[i]);
                else
                    LIT(&b, "null");
            }
            LIT(&b, "}");
        }
        if (g->n_cat) {
            LIT(&b, ",\"categories\":{");
            for (uint32_t i = 0; i < g->n_cats; i++) {
                if (i) LIT(&b, ",");
                sdb__j_str(&b, g->cats[i].label.p, g->cats[i].label.len);
                LIT(&b, ":");
                sdb__j_u64(&b, g->cats[i].count);
            }
            LIT(&b, "}");
        }
        if (q->interval_ms) {
            LIT(&b, ",\"series\":[");
            for (uint32_t i = 0; i < g->n_series; i++) {
                const sdb__point *p = &g->series[i];
                if (i < n_heads && p->t == a->groups[0].series[i].t) {
                    size_t at = heads_off[i] + (i == 0); /* the first has no comma */
                    sdb__buf_add(&b, heads.p + at, heads_off[i + 1] - at);
                } else {
                    sdb__j_raw(&b, i ? ",{\"t\":" : "{\"t\":");
                    sdb__j_time(&b, p->t);
                    LIT(&b, ",\"count\":");
                }
                sdb__j_u64(&b, p->count);
                stat_fields(&b, q->stats, &p->mom, numeric);
                LIT(&b, "}");
            }
            LIT(&b, "]");
        }
        LIT(&b, "}");
    }
    LIT(&b, "]}");
    sdb__buf_free(&pk);
    sdb__buf_free(&heads);
    free(heads_off);
    if (sdb__buf_add(&b, "", 1)) {
        sdb__buf_free(&b);
        return SDB_ENOMEM;
    }
    *out = b.p;
    return SDB_OK;
}
