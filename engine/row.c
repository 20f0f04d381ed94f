/* Row records: the full score, kept for detail and list views, for the
 * per-row filters (tags, properties) that columns do not carry, and as the
 * fold's input (engine/fold.c reads the fixed part of the rows past a
 * project's fold mark).
 *
 * Layout (version 2, little-endian, unaligned):
 *   u8   version (2)
 *   u8   type | source << 2
 *   u8   dims mask: bit d set when dimension d is present
 *   u8   strings mask: bits 0..7 id, trace_id, observation_id, session_id,
 *        dataset_run_id, config_id, comment, metadata
 *   u8   lists mask: bit 0 tags, bit 1 properties; bits 2-3 how id is
 *        stored, bits 4-5 how trace_id is (PACK_*, below)
 *   i64  ts, i64 ingested, f64 value (categorical: label id), u64 trace
 *   u64  ref, u32 project, u32 name
 *   u32  dims[popcount(dims mask)], in column order
 *   the present strings in mask order: str16 for the first six, str32 for
 *        comment and metadata (compact JSON text)
 *   tags (when present): u16 n, n × str16
 *   properties (when present): u16 n, n × (str16 key, str16 value)
 * where str16 is a u16 length then bytes and str32 a u32 length then bytes.
 * id and trace_id are usually machine-made: a canonical lower-case UUID is
 * kept as its 16 bytes (PACK_UUID), lower-case hex of even length as a u8
 * byte count and the bytes (PACK_HEX, an OpenTelemetry trace id: 17 bytes
 * instead of 34); decoding renders them back into the sdb__row.
 * Dimension and label strings are not repeated here: the fixed part
 * carries their dictionary ids.
 *
 * Version 1 wrote the 80-byte in-memory sdb__fixed and a length for every
 * absent string: 173 bytes for a typical score against 101 now (a
 * generated id and a 32-digit hex trace id), and the row store is most of
 * what ingest writes.
 */
#include "internal.h"

#define ROW_VERSION 2
#define HEAD 5u /* version and the four masks */
#define FIXED 48u /* ts, ingested, value, trace, ref, project, name */

enum { PACK_RAW = 0, PACK_UUID = 1, PACK_HEX = 2 };

/* Lower-case hex digit values; X (0xFF) for every other byte. */
#define X 0xFF
static const uint8_t hexv[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X

/* Pack s into tmp when it is a canonical lower-case UUID (PACK_UUID, 16
 * bytes) or lower-case hex of even length (PACK_HEX, a count byte and the
 * bytes); PACK_RAW otherwise. One pass: the digits are packed while they
 * are checked. */
static int try_pack(sdb__str s, uint8_t *tmp, size_t *out_n)
{
    const uint8_t *p = (const uint8_t *)s.p;
    uint8_t bad = 0;
    size_t n = 0;
    if (s.len == 36 && p[8] == '-' && p[13] == '-' && p[18] == '-' && p[23] == '-') {
        static const uint8_t at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
        for (int i = 0; i < 16; i++) {
            uint8_t hi = hexv[p[at[i]]], lo = hexv[p[at[i] + 1]];
            bad |= hi | lo;
            tmp[i] = (uint8_t)(hi << 4 | (lo & 15));
        }
        *out_n = 16;
        return bad & 0x80 ? PACK_RAW : PACK_UUID;
    }
    if (s.len == 0 || s.len % 2 || s.len > SDB_MAX_STR) return PACK_RAW;
    tmp[n++] = (uint8_t)(s.len / 2);
    for (uint32_t i = 0; i < s.len; i += 2) {
        uint8_t hi = hexv[p[i]], lo = hexv[p[i + 1]];
        bad |= hi | lo;
        tmp[n++] = (uint8_t)(hi << 4 | (lo & 15));
    }
    *out_n = n;
    return bad & 0x80 ? PACK_RAW : PACK_HEX;
}

static int put16(sdb__buf *b, sdb__str s)
{
    uint16_t n = (uint16_t)s.len;
    if (sdb__buf_add(b, &n, 2)) return SDB_ENOMEM;
    return sdb__buf_add(b, s.p, s.len);
}

static int put32(sdb__buf *b, sdb__str s)
{
    uint32_t n = s.len;
    if (sdb__buf_add(b, &n, 4)) return SDB_ENOMEM;
    return sdb__buf_add(b, s.p, s.len);
}

int sdb__row_encode(const sdb__fixed *fx, const sdb__score *sc, uint32_t label_id,
                    sdb__buf *out)
{
    (void)label_id;
    out->len = 0;
    const sdb__str *strs[] = {&sc->id, &sc->trace_id, &sc->observation_id, &sc->session_id,
                              &sc->dataset_run_id, &sc->config_id, &sc->comment,
                              &sc->metadata};
    uint8_t head[HEAD + FIXED + 4 * SDB_N_DIMS];
    head[0] = ROW_VERSION;
    head[1] = (uint8_t)(fx->type | fx->source << 2);
    head[2] = head[3] = 0;
    uint8_t packed[2][SDB_MAX_STR / 2 + 1];
    size_t n_packed[2] = {0, 0};
    int kind_id = sc->id.p ? try_pack(sc->id, packed[0], &n_packed[0]) : PACK_RAW;
    int kind_tr = sc->trace_id.p ? try_pack(sc->trace_id, packed[1], &n_packed[1]) : PACK_RAW;
    head[4] = (uint8_t)((sc->n_tags ? 1 : 0) | (sc->n_props ? 2 : 0) | kind_id << 2 |
                        kind_tr << 4);
    for (int i = 0; i < 8; i++)
        if (strs[i]->p) head[3] |= (uint8_t)(1u << i);
    uint8_t *p = head + HEAD;
    memcpy(p, &fx->ts, 8);
    memcpy(p + 8, &fx->ingested, 8);
    memcpy(p + 16, &fx->value, 8);
    memcpy(p + 24, &fx->trace, 8);
    memcpy(p + 32, &fx->ref, 8);
    memcpy(p + 40, &fx->project, 4);
    memcpy(p + 44, &fx->name, 4);
    p += FIXED;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (fx->dims[d]) {
            head[2] |= (uint8_t)(1u << d);
            memcpy(p, &fx->dims[d], 4);
            p += 4;
        }
    if (sdb__buf_add(out, head, (size_t)(p - head))) return SDB_ENOMEM;
    for (int i = 0; i < 8; i++) {
        if (!strs[i]->p) continue;
        int kind = i == 0 ? kind_id : i == 1 ? kind_tr : PACK_RAW;
        int rc = kind != PACK_RAW ? sdb__buf_add(out, packed[i], n_packed[i])
                 : i < 6         ? put16(out, *strs[i])
                                 : put32(out, *strs[i]);
        if (rc) return SDB_ENOMEM;
    }
    if (sc->n_tags) {
        uint16_t n = (uint16_t)sc->n_tags;
        if (sdb__buf_add(out, &n, 2)) return SDB_ENOMEM;
        for (uint32_t i = 0; i < sc->n_tags; i++)
            if (put16(out, sc->tags[i])) return SDB_ENOMEM;
    }
    if (sc->n_props) {
        uint16_t n = (uint16_t)sc->n_props;
        if (sdb__buf_add(out, &n, 2)) return SDB_ENOMEM;
        for (uint32_t i = 0; i < 2 * sc->n_props; i++)
            if (put16(out, sc->props[i])) return SDB_ENOMEM;
    }
    return SDB_OK;
}

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static int get16(rd *r, sdb__str *s)
{
    uint16_t n;
    if (r->end - r->p < 2) return SDB_ECORRUPT;
    memcpy(&n, r->p, 2);
    r->p += 2;
    if (r->end - r->p < n) return SDB_ECORRUPT;
    s->p = (const char *)r->p;
    s->len = n;
    r->p += n;
    return SDB_OK;
}

static int get32(rd *r, sdb__str *s)
{
    uint32_t n;
    if (r->end - r->p < 4) return SDB_ECORRUPT;
    memcpy(&n, r->p, 4);
    r->p += 4;
    if ((size_t)(r->end - r->p) < n) return SDB_ECORRUPT;
    s->p = (const char *)r->p;
    s->len = n;
    r->p += n;
    return SDB_OK;
}

/* A packed string, rendered into buf (SDB_MAX_STR + 1 bytes). */
static int get_packed(rd *r, int kind, char *buf, sdb__str *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t nb;
    if (kind == PACK_UUID) {
        nb = 16;
    } else {
        if (r->end - r->p < 1) return SDB_ECORRUPT;
        nb = *r->p++;
        if (nb == 0 || 2 * nb > SDB_MAX_STR) return SDB_ECORRUPT;
    }
    if ((size_t)(r->end - r->p) < nb) return SDB_ECORRUPT;
    size_t o = 0;
    for (size_t i = 0; i < nb; i++) {
        if (kind == PACK_UUID && (i == 4 || i == 6 || i == 8 || i == 10)) buf[o++] = '-';
        buf[o++] = hex[r->p[i] >> 4];
        buf[o++] = hex[r->p[i] & 15];
    }
    buf[o] = 0;
    r->p += nb;
    s->p = buf;
    s->len = (uint32_t)o;
    return SDB_OK;
}

static int skip_list(rd *r, int present, uint32_t per, uint32_t *n_out, const uint8_t **start)
{
    *n_out = 0;
    *start = r->p;
    if (!present) return SDB_OK;
    uint16_t n;
    if (r->end - r->p < 2) return SDB_ECORRUPT;
    memcpy(&n, r->p, 2);
    r->p += 2;
    *n_out = n;
    *start = r->p;
    for (uint32_t i = 0; i < (uint32_t)n * per; i++) {
        sdb__str s;
        if (get16(r, &s)) return SDB_ECORRUPT;
    }
    return SDB_OK;
}

/* The version byte, masks and fixed part; *out_end is where the strings
 * begin. */
static int decode_fixed(const uint8_t *p, size_t len, sdb__fixed *fx, const uint8_t **out_end)
{
    if (len < HEAD + FIXED || p[0] != ROW_VERSION) return SDB_ECORRUPT;
    uint8_t ts = p[1], dmask = p[2];
    if ((ts & 3) >= SDB_N_TYPES || (ts >> 2) >= SDB_N_SOURCES || dmask >> SDB_N_DIMS ||
        p[4] >> 6 || (p[4] >> 2 & 3) == 3 || (p[4] >> 4 & 3) == 3)
        return SDB_ECORRUPT;
    memset(fx, 0, sizeof *fx);
    fx->type = ts & 3;
    fx->source = (uint8_t)(ts >> 2);
    const uint8_t *q = p + HEAD;
    memcpy(&fx->ts, q, 8);
    memcpy(&fx->ingested, q + 8, 8);
    memcpy(&fx->value, q + 16, 8);
    memcpy(&fx->trace, q + 24, 8);
    memcpy(&fx->ref, q + 32, 8);
    memcpy(&fx->project, q + 40, 4);
    memcpy(&fx->name, q + 44, 4);
    q += FIXED;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (dmask & (1u << d)) {
            if ((size_t)(p + len - q) < 4) return SDB_ECORRUPT;
            memcpy(&fx->dims[d], q, 4);
            q += 4;
        }
    *out_end = q;
    return SDB_OK;
}

int sdb__row_fixed(const void *p, size_t len, sdb__fixed *out)
{
    const uint8_t *end;
    return decode_fixed(p, len, out, &end);
}

int sdb__row_decode(const void *p, size_t len, sdb__row *out)
{
    const uint8_t *b = p;
    rd r = {NULL, b + len};
    int rc = decode_fixed(b, len, &out->fx, &r.p);
    if (rc) return rc;
    uint8_t smask = b[3], lmask = b[4];
    sdb__str *strs[] = {&out->id, &out->trace_id, &out->observation_id, &out->session_id,
                        &out->dataset_run_id, &out->config_id, &out->comment,
                        &out->metadata};
    for (int i = 0; i < 8; i++) {
        strs[i]->p = NULL;
        strs[i]->len = 0;
        if (!(smask & (1u << i))) continue;
        int kind = i == 0 ? lmask >> 2 & 3 : i == 1 ? lmask >> 4 & 3 : PACK_RAW;
        int rc = kind != PACK_RAW ? get_packed(&r, kind, out->text_[i], strs[i])
                 : i < 6         ? get16(&r, strs[i])
                                 : get32(&r, strs[i]);
        if (rc) return SDB_ECORRUPT;
    }
    if (skip_list(&r, lmask & 1, 1, &out->n_tags, &out->tags)) return SDB_ECORRUPT;
    if (skip_list(&r, lmask & 2, 2, &out->n_props, &out->props)) return SDB_ECORRUPT;
    if (r.p != r.end) return SDB_ECORRUPT;
    return SDB_OK;
}

/* Walk a decoded list; the record was validated by sdb__row_decode. */
static const uint8_t *nth16(const uint8_t *p, uint32_t i, sdb__str *s)
{
    for (;;) {
        uint16_t n;
        memcpy(&n, p, 2);
        if (i == 0) {
            s->p = (const char *)p + 2;
            s->len = n;
            return p + 2 + s->len;
        }
        p += 2 + n;
        i--;
    }
}

int sdb__row_tag(const sdb__row *r, uint32_t i, sdb__str *out)
{
    if (i >= r->n_tags) return 0;
    nth16(r->tags, i, out);
    return 1;
}

int sdb__row_prop(const sdb__row *r, uint32_t i, sdb__str *key, sdb__str *val)
{
    if (i >= r->n_props) return 0;
    const uint8_t *p = nth16(r->props, 2 * i, key);
    nth16(p, 0, val);
    return 1;
}

bool sdb__row_has_tag(const sdb__row *r, const char *t, size_t len)
{
    sdb__str s;
    const uint8_t *p = r->tags;
    for (uint32_t i = 0; i < r->n_tags; i++) {
        p = nth16(p, 0, &s);
        if (s.len == len && memcmp(s.p, t, len) == 0) return true;
    }
    return false;
}

bool sdb__row_prop_get(const sdb__row *r, const char *k, size_t klen, sdb__str *val)
{
    sdb__str key, v;
    const uint8_t *p = r->props;
    for (uint32_t i = 0; i < r->n_props; i++) {
        p = nth16(p, 0, &key);
        p = nth16(p, 0, &v);
        if (key.len == klen && memcmp(key.p, k, klen) == 0) {
            *val = v;
            return true;
        }
    }
    return false;
}
