/* Row records: the full score, kept for detail and list views, for the
 * per-row filters (tags, properties) that columns do not carry, and as the
 * fold's input (engine/fold.c reads the fixed part of the rows past a
 * project's fold mark).
 *
 * Layout (version 3, little-endian, unaligned):
 *   u8   version (3)
 *   u8   type | source << 2
 *   u8   dims mask: bit d set when dimension d is present
 *   u8   strings mask: bits 0..7 id, trace_id, observation_id, session_id,
 *        dataset_run_id, config_id, comment, metadata
 *   u8   lists mask: bit 0 tags, bit 1 properties; bits 2-3 how id is
 *        stored, bits 4-5 how trace_id is (PACK_*, below)
 *   i64  ts, i64 ingested, f64 value (categorical: label id)
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
 * carries their dictionary ids. Nor is the trace id's hash (the column
 * segments' trace column): version 2 kept it, 8 random bytes a record that
 * zstd cannot shrink (1M UUIDv4 scores: 63.9 MB of row blocks, 55.7 MB
 * without); decoding computes it from the trace id as ingest does.
 *
 * Version 4 (the block section below draws it) keeps tags, property keys
 * and values as dictionary ids; the row store gives it back to readers as
 * this version 3 record, so sdb__row_decode reads version 3 only.
 *
 * Version 1 wrote the 80-byte in-memory sdb__fixed and a length for every
 * absent string: 173 bytes for a typical score against 101 now (a
 * generated id and a 32-digit hex trace id), and the row store is most of
 * what ingest writes.
 */
#include "internal.h"

#define ROW_VERSION 3
#define ROW_V4 4 /* tags and properties as dictionary ids (below) */
#define HEAD 5u /* version and the four masks */
#define FIXED 40u /* ts, ingested, value, ref, project, name */

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

/* Where the two digits of each of a UUID's 16 bytes sit in its text. */
static const uint8_t uuid_at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};

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
        for (int i = 0; i < 16; i++) {
            uint8_t hi = hexv[p[uuid_at[i]]], lo = hexv[p[uuid_at[i] + 1]];
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

/* A u16 or u32 length, then the bytes, at w; returns the end. */
static uint8_t *put_str(uint8_t *w, sdb__str s, int wide)
{
    if (wide) {
        uint32_t n = s.len;
        memcpy(w, &n, 4);
        w += 4;
    } else {
        uint16_t n = (uint16_t)s.len;
        memcpy(w, &n, 2);
        w += 2;
    }
    if (s.len) memcpy(w, s.p, s.len);
    return w + s.len;
}

/* A LEB128 varint (7 bits a byte, low first) at w; returns the end. */
static uint8_t *put_var(uint8_t *w, uint32_t x)
{
    while (x >= 0x80) {
        *w++ = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    *w++ = (uint8_t)x;
    return w;
}

/* A version 4 list item: a dictionary id as the varint id << 1 | 1, else
 * the text as the varint len << 1 and the bytes. */
static uint8_t *put_item(uint8_t *w, sdb__str s, uint32_t id)
{
    if (id) return put_var(w, id << 1 | 1);
    w = put_var(w, s.len << 1);
    if (s.len) memcpy(w, s.p, s.len);
    return w + s.len;
}

int sdb__row_encode(const sdb__fixed *fx, const sdb__score *sc, uint32_t label_id,
                    sdb__buf *out)
{
    (void)label_id;
    return sdb__row_encode_ids(fx, sc, NULL, out);
}

int sdb__row_encode_ids(const sdb__fixed *fx, const sdb__score *sc, const uint32_t *ids,
                        sdb__buf *out)
{
    out->len = 0;
    const sdb__str *strs[] = {&sc->id, &sc->trace_id, &sc->observation_id, &sc->session_id,
                              &sc->dataset_run_id, &sc->config_id, &sc->comment,
                              &sc->metadata};
    /* Version 4 only for a record with a list to shorten: one without is
     * the same bytes in both, and stays version 3. */
    int v4 = ids && (sc->n_tags || sc->n_props);
    uint8_t packed[2][SDB_MAX_STR / 2 + 1];
    size_t n_packed[2] = {0, 0};
    int kind_id = sc->id.p ? try_pack(sc->id, packed[0], &n_packed[0]) : PACK_RAW;
    int kind_tr = sc->trace_id.p ? try_pack(sc->trace_id, packed[1], &n_packed[1]) : PACK_RAW;
    /* The record's size first, so that it is written with one reserve and
     * plain stores: two sdb__buf_add calls a string were 2.6% of a 1M-score
     * ingest (perf, the writer thread). Version 4's varints are counted at
     * their widest (5 bytes). */
    size_t total = HEAD + FIXED + 4 * SDB_N_DIMS;
    for (int i = 0; i < 8; i++) {
        if (!strs[i]->p) continue;
        int kind = i == 0 ? kind_id : i == 1 ? kind_tr : PACK_RAW;
        total += kind != PACK_RAW ? n_packed[i] : (i < 6 ? 2u : 4u) + strs[i]->len;
    }
    if (sc->n_tags) {
        total += 5;
        for (uint32_t i = 0; i < sc->n_tags; i++) total += 5 + (size_t)sc->tags[i].len;
    }
    if (sc->n_props) {
        total += 5;
        for (uint32_t i = 0; i < 2 * sc->n_props; i++) total += 5 + (size_t)sc->props[i].len;
    }
    if (sdb__buf_reserve(out, total)) return SDB_ENOMEM;
    uint8_t *head = (uint8_t *)out->p;
    head[0] = v4 ? ROW_V4 : ROW_VERSION;
    head[1] = (uint8_t)(fx->type | fx->source << 2);
    head[2] = head[3] = 0;
    head[4] = (uint8_t)((sc->n_tags ? 1 : 0) | (sc->n_props ? 2 : 0) | kind_id << 2 |
                        kind_tr << 4);
    for (int i = 0; i < 8; i++)
        if (strs[i]->p) head[3] |= (uint8_t)(1u << i);
    uint8_t *w = head + HEAD;
    memcpy(w, &fx->ts, 8);
    memcpy(w + 8, &fx->ingested, 8);
    memcpy(w + 16, &fx->value, 8);
    memcpy(w + 24, &fx->ref, 8);
    memcpy(w + 32, &fx->project, 4);
    memcpy(w + 36, &fx->name, 4);
    w += FIXED;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (fx->dims[d]) {
            head[2] |= (uint8_t)(1u << d);
            memcpy(w, &fx->dims[d], 4);
            w += 4;
        }
    for (int i = 0; i < 8; i++) {
        if (!strs[i]->p) continue;
        int kind = i == 0 ? kind_id : i == 1 ? kind_tr : PACK_RAW;
        if (kind != PACK_RAW) {
            memcpy(w, packed[i], n_packed[i]);
            w += n_packed[i];
        } else {
            w = put_str(w, *strs[i], i >= 6);
        }
    }
    if (v4) { /* the lists as varints and items, properties first (below) */
        if (sc->n_props) {
            w = put_var(w, sc->n_props);
            for (uint32_t j = 0; j < 2 * sc->n_props; j++)
                w = put_item(w, sc->props[j], ids[sc->n_tags + j]);
        }
        if (sc->n_tags) {
            w = put_var(w, sc->n_tags);
            for (uint32_t j = 0; j < sc->n_tags; j++) w = put_item(w, sc->tags[j], ids[j]);
        }
        out->len = (size_t)(w - head);
        return SDB_OK;
    }
    if (sc->n_tags) {
        uint16_t n = (uint16_t)sc->n_tags;
        memcpy(w, &n, 2);
        w += 2;
        for (uint32_t i = 0; i < sc->n_tags; i++) w = put_str(w, sc->tags[i], 0);
    }
    if (sc->n_props) {
        uint16_t n = (uint16_t)sc->n_props;
        memcpy(w, &n, 2);
        w += 2;
        for (uint32_t i = 0; i < 2 * sc->n_props; i++) w = put_str(w, sc->props[i], 0);
    }
    out->len = (size_t)(w - head);
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
    if (kind == PACK_UUID) {
        /* Each byte to its own place, the dashes after: the fold renders
         * every record's id and trace id, and a test for a dash at each
         * byte made this 5% of a 1M-score ingest (perf). */
        for (size_t i = 0; i < 16; i++) {
            buf[uuid_at[i]] = hex[r->p[i] >> 4];
            buf[uuid_at[i] + 1] = hex[r->p[i] & 15];
        }
        buf[8] = buf[13] = buf[18] = buf[23] = '-';
        o = 36;
    } else {
        for (size_t i = 0; i < nb; i++) {
            buf[o++] = hex[r->p[i] >> 4];
            buf[o++] = hex[r->p[i] & 15];
        }
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

/* The trace column's hash of a trace id: xxh3 of its text, 1 when that is
 * 0 (0 means no trace id), as ingest computes it. */
static uint64_t trace_hash(sdb__str s)
{
    uint64_t h = sdb__hash(s.p, s.len);
    return h ? h : 1;
}

/* fx->trace from the record's trace id (strings from q on): xxh3 of the
 * id's text, 1 when that is 0, 0 without a trace id (ingest's rule). The
 * id before it is skipped. */
static int trace_of(const uint8_t *p, const uint8_t *q, const uint8_t *end, sdb__fixed *fx)
{
    fx->trace = 0;
    if (!(p[3] & 2)) return SDB_OK;
    rd r = {q, end};
    char buf[SDB_MAX_STR + 1];
    sdb__str s;
    int k_id = p[4] >> 2 & 3, k_tr = p[4] >> 4 & 3;
    if (p[3] & 1) { /* the id: skipped by its length, not rendered */
        size_t nb = k_id == PACK_UUID ? 16 : k_id == PACK_HEX && r.p < end && *r.p ? 1u + *r.p : 0;
        if (k_id == PACK_RAW) {
            if (get16(&r, &s)) return SDB_ECORRUPT;
        } else if (nb == 0 || (size_t)(end - r.p) < nb) {
            return SDB_ECORRUPT;
        } else {
            r.p += nb;
        }
    }
    if (k_tr != PACK_RAW ? get_packed(&r, k_tr, buf, &s) : get16(&r, &s)) return SDB_ECORRUPT;
    fx->trace = trace_hash(s);
    return SDB_OK;
}

/* The version byte, masks and fixed part, the trace hash computed when
 * with_trace is set (sdb__row_decode hashes the trace id it renders
 * itself); *out_end is where the strings begin. */
static int decode_fixed(const uint8_t *p, size_t len, sdb__fixed *fx, const uint8_t **out_end,
                        int with_trace)
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
    memcpy(&fx->ref, q + 24, 8);
    memcpy(&fx->project, q + 32, 4);
    memcpy(&fx->name, q + 36, 4);
    q += FIXED;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if (dmask & (1u << d)) {
            if ((size_t)(p + len - q) < 4) return SDB_ECORRUPT;
            memcpy(&fx->dims[d], q, 4);
            q += 4;
        }
    *out_end = q;
    return with_trace ? trace_of(p, q, p + len, fx) : SDB_OK;
}

int sdb__row_fixed(const void *p, size_t len, sdb__fixed *out)
{
    const uint8_t *end;
    return decode_fixed(p, len, out, &end, 1);
}

/* With with_id 0 a packed id is skipped by its length, not rendered, and
 * out->id stays empty: the fold reads every record for its fixed part,
 * trace hash and lists only, and rendering each UUIDv4 id as text was
 * ~3% of the fold of 1M such scores (perf: get_packed, 340 of 5647
 * samples, half of them the id's). */
static int row_decode(const void *p, size_t len, sdb__row *out, int with_id)
{
    const uint8_t *b = p;
    rd r = {NULL, b + len};
    int rc = decode_fixed(b, len, &out->fx, &r.p, 0);
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
        if (i == 0 && kind != PACK_RAW && !with_id) {
            size_t nb = kind == PACK_UUID ? 16 : r.p < r.end && *r.p ? 1u + *r.p : 0;
            if (nb == 0 || (size_t)(r.end - r.p) < nb || (kind == PACK_HEX && 2 * (nb - 1) > SDB_MAX_STR))
                return SDB_ECORRUPT;
            r.p += nb;
            continue;
        }
        int rc = kind != PACK_RAW ? get_packed(&r, kind, out->text_[i], strs[i])
                 : i < 6         ? get16(&r, strs[i])
                                 : get32(&r, strs[i]);
        if (rc) return SDB_ECORRUPT;
        if (i == 0 && !with_id) strs[0]->p = NULL, strs[0]->len = 0; /* a plain one: read past */
    }
    if (out->trace_id.p) out->fx.trace = trace_hash(out->trace_id);
    if (skip_list(&r, lmask & 1, 1, &out->n_tags, &out->tags)) return SDB_ECORRUPT;
    if (skip_list(&r, lmask & 2, 2, &out->n_props, &out->props)) return SDB_ECORRUPT;
    if (r.p != r.end) return SDB_ECORRUPT;
    return SDB_OK;
}

int sdb__row_decode(const void *p, size_t len, sdb__row *out)
{
    return row_decode(p, len, out, 1);
}

int sdb__row_decode_noid(const void *p, size_t len, sdb__row *out)
{
    return row_decode(p, len, out, 0);
}

int sdb__row_may_have_lists(const void *p, size_t len)
{
    const uint8_t *r = p;
    return !(len > 4 && r[0] == ROW_VERSION && !(r[4] & 3u));
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

/* ------------------------------------------------------------ row blocks
 *
 * The row store keeps records in blocks of consecutive refs of one
 * project, compressed with zstd: a record alone is ~110 bytes of which a
 * random UUID and a trace id are most of the entropy, and the fixed parts
 * of neighbouring records (times, refs, names, dimension ids) repeat each
 * other, which zstd finds only when they sit together.
 *
 *   key:   project u32 BE | last ref of the block u64 BE   (12 bytes)
 *   value: u8 version (2) | u8 codec: bit 0 zstd, bit 1 refs consecutive,
 *          bit 2 refs implied | u16 n | u32 body_len | u16 tw | u16 0 | body,
 *          or a zstd frame of it
 *   body:  u64 first ref | u32 ref - first ref [n] (absent when the refs
 *          are first, first + 1, ...) | u32 length of record i [n], byte
 *          by byte (byte 0 of every length, then byte 1...) | the first tw
 *          bytes of every record byte by byte, tw the shortest record's
 *          length (at most TW_MAX) | the rest of each record, in ref order;
 *          refs implied: every record keeps its own ref at REF_AT (as
 *          sdb__row_encode writes it), and those 8 columns are left out
 *          (put back from the block's refs: 1 byte a record less)
 *
 * Transposed, the bytes that barely change from one record to the next
 * (the high bytes of times and refs, the ingest time, project, masks, the
 * packed trace id's length byte, a UUIDv4's version nibble) form long runs
 * that zstd takes for almost nothing; record by record they are short
 * literals between the random bytes of ids and trace ids. Version 1
 * transposed only the 45-byte heads and kept u32 ref deltas and record
 * ends as they are (counting sequences zstd cannot shrink): 55.4 bytes a
 * record of 1M UUIDv4 scores (bench/gen --ids uuid4, `scoredb ingest`,
 * `scoredb stats --db`), 47.9 now.
 *
 * Keyed by the last ref, a lookup of ref is one MDB_SET_RANGE: the first
 * block whose last ref is >= ref is the only one that can hold it. A write
 * txn gathers its new rows in a pending block (refs only grow), written
 * when it reaches BLOCK_RAW bytes, when the project changes, or at commit
 * (sdb__rows_flush, called by sdb__txn_commit); the txn's own reads see
 * it. Deleting a row marks it in `gone` (key project | ref), which every
 * read consults while it is not empty; the fold's purge rewrites each
 * block that holds gone rows once (sdb__rows_purge). Rewriting the block
 * at once cost ~120 us a delete (decompress, recompress 16 KiB): 5,000
 * re-sent ids took 660 ms, 49 ms without. A read txn keeps the last block
 * it decompressed, so the rows of one segment, read in ref order by a
 * row-filtered query, cost one decompression per block.
 */
#include <pthread.h>
#include <signal.h>
#include <zstd.h>

/* zstd contexts, one pair per thread: creating a decompression context
 * zeroes ~100 KB, which was a quarter of a GET by id when every read txn
 * made its own. A thread's pair is freed when it exits. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
typedef struct zctx {
    ZSTD_CCtx *c;
    ZSTD_DCtx *d;
} zctx;

static void ctx_free(void *p)
{
    zctx *z = p;
    ZSTD_freeCCtx(z->c);
    ZSTD_freeDCtx(z->d);
    free(z);
}

static void ctx_init(void) { pthread_key_create(&ctx_key, ctx_free); }

static zctx *thread_ctx(void)
{
    pthread_once(&ctx_once, ctx_init);
    zctx *z = pthread_getspecific(ctx_key);
    if (!z && (z = calloc(1, sizeof *z)) && pthread_setspecific(ctx_key, z)) {
        free(z);
        z = NULL;
    }
    return z;
}

static ZSTD_DCtx *dctx(void)
{
    zctx *z = thread_ctx();
    if (z && !z->d) z->d = ZSTD_createDCtx();
    return z ? z->d : NULL;
}

static ZSTD_CCtx *cctx(void)
{
    zctx *z = thread_ctx();
    if (z && !z->c) z->c = ZSTD_createCCtx();
    return z ? z->c : NULL;
}

#define BLOCK_VERSION 2
#define BLOCK_HEAD 12u
#define TW_MAX 1024u /* bytes of a record transposed at most: a GET gathers them */
#define BLOCK_RAW (16u << 10) /* raw bytes of records per block, until a ratio is known */
/* What a GET decompresses at most: 32 KiB, 17 us median at 1M UUIDv4
 * scores. At 24 KiB, format 5's blocks came to two pages, and a block the
 * ratio misjudged spilt into a third left it a third empty: rows fill
 * varied 0.917-0.947 between runs of one test, 0.935-0.945 now. */
#define BLOCK_RAW_MAX (32u << 10)
#define LMDB_PAGE 4096u
#define LMDB_OVHEAD 16u /* an overflow run's page header (PAGEHDRSZ) */
#define BLOCK_MAX_ROWS 4096u
#define ZLEVEL 1 /* ingest-bound: level 1 keeps ~350 MB/s on one core */

#define CODEC_ZSTD 1u
#define CODEC_CONSEC 2u
#define CODEC_REFS 4u
/* The block's records are row records, some of version 4: readers get
 * those back as version 3 (rec_v3). Blocks of sdb__row_put (bytes moved as
 * they are) and of builds before version 4 do not have it. */
#define CODEC_V4 8u
#define REF_AT (HEAD + 24u) /* a record's ref: after ts, ingested and value */

typedef struct block {
    uint32_t project, n, tw;
    int refs; /* the ref columns are left out (CODEC_REFS) */
    int v4;   /* CODEC_V4 */
    uint64_t first, last;
    sdb__buf raw;  /* the body, owned */
    sdb__buf rec;  /* the last record put back together */
    sdb__buf meta; /* u32 deltas [n], u32 ends [n], decoded from the body */
    const uint32_t *deltas, *ends;
    const uint8_t *recs;
    size_t recs_len;
    int valid;
} block;

/* ------------------------------------------------- version 4 records
 *
 * A version 4 record keeps its tags, property keys and property values as
 * ids of the project's dictionaries (SDB_DICT_TAG, SDB_DICT_PKEY,
 * SDB_DICT_PROP), given at ingest in the row's own transaction; every
 * reader gets the version 3 record of the same score back from
 * sdb__row_get and sdb__rows_next, so that no code past the row store sees
 * the difference, and version 3 records stay as they are. The purge
 * (block_drop) moves records as stored. Layout: version 3's through the
 * strings, then
 *   properties (when present): varint n, n x (item key, item value)
 *   tags (when present): varint n, n x item
 * item: varint id << 1 | 1 (a dictionary id, 1..SDB__ROW_ID_CAP), or
 *       varint len << 1 and the bytes (any bytes: NUL, empty, not UTF-8)
 * varint: LEB128, 7 bits a byte, low first, at most 5 bytes.
 * The block's transposed prefix (rec_prefix) ends before the lists, as in
 * version 3: taking in the properties' count and ids too (the same keys on
 * every score of an app) was 0.9 bytes a record less on the 1M bench
 * scores (50.66 against 51.54, /tmp tool of docs/storage.md), left for
 * later so that the block layout of every existing record stays as it is.
 *
 * A txn keeps the text of every id it has read (xcache) so that a list of
 * 1,000 rows looks each tag up once: dictionary ids never change once
 * given, and a cache per txn sees exactly the txn's dictionaries. It is
 * dropped when it passes XC_BYTES of text (a long tail of long values). */
#define XC_BYTES (8u << 20)
enum { XD_TAG, XD_PKEY, XD_PROP, XD_N };
static const int xd_dict[XD_N] = {SDB_DICT_TAG, SDB_DICT_PKEY, SDB_DICT_PROP};

typedef struct xent {
    uint32_t off, len1; /* len1: length + 1, 0 when not cached */
} xent;

typedef struct xcache {
    uint32_t project;
    xent *ent[XD_N];
    uint32_t n_ent[XD_N];
    sdb__buf arena;
} xcache;

static void xcache_free(xcache *x)
{
    for (int d = 0; d < XD_N; d++) free(x->ent[d]);
    sdb__buf_free(&x->arena);
    memset(x, 0, sizeof *x);
}

static void xcache_clear(xcache *x)
{
    for (int d = 0; d < XD_N; d++)
        if (x->ent[d]) memset(x->ent[d], 0, x->n_ent[d] * sizeof *x->ent[d]);
    x->arena.len = 0;
}

/* The text of id in dictionary xd of project, valid until the next call. */
static int xcache_str(sdb__txn *t, xcache *x, uint32_t project, int xd, uint32_t id, sdb__str *out)
{
    if (id == 0 || id > SDB__ROW_ID_CAP) return SDB_ECORRUPT;
    if (x->project != project) {
        xcache_clear(x);
        x->project = project;
    }
    if (id >= x->n_ent[xd]) {
        uint32_t n = x->n_ent[xd] ? x->n_ent[xd] : 64;
        while (n <= id) n *= 2;
        xent *e = realloc(x->ent[xd], n * sizeof *e);
        if (!e) return SDB_ENOMEM;
        memset(e + x->n_ent[xd], 0, (n - x->n_ent[xd]) * sizeof *e);
        x->ent[xd] = e;
        x->n_ent[xd] = n;
    }
    xent *e = &x->ent[xd][id];
    if (!e->len1) {
        sdb__val v;
        int rc = sdb__dict_str(t, project, xd_dict[xd], id, &v);
        if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
        if (v.len > SDB_MAX_VALUE) return SDB_ECORRUPT;
        if (x->arena.len + v.len > XC_BYTES) xcache_clear(x);
        /* Copied: a write txn's later writes may move the page v is on. */
        if (sdb__buf_add(&x->arena, v.p, v.len)) return SDB_ENOMEM;
        e = &x->ent[xd][id];
        e->off = (uint32_t)(x->arena.len - v.len);
        e->len1 = (uint32_t)v.len + 1;
    }
    out->p = x->arena.p + e->off;
    out->len = e->len1 - 1;
    return SDB_OK;
}

static int get_var(rd *r, uint32_t *out)
{
    if (r->p < r->end && *r->p < 0x80) { /* most: one byte */
        *out = *r->p++;
        return SDB_OK;
    }
    uint32_t x = 0;
    for (int i = 0; i < 5; i++) {
        if (r->p >= r->end) return SDB_ECORRUPT;
        uint8_t b = *r->p++;
        if (i == 4 && b > 15) return SDB_ECORRUPT; /* past 32 bits */
        x |= (uint32_t)(b & 0x7F) << 7 * i;
        if (!(b & 0x80)) {
            *out = x;
            return SDB_OK;
        }
    }
    return SDB_ECORRUPT;
}

/* Step over one item (validated); *out_id its id or 0 with *out its text. */
static int get_item(rd *r, uint32_t *out_id, sdb__str *out)
{
    uint32_t x;
    if (get_var(r, &x)) return SDB_ECORRUPT;
    *out_id = x & 1 ? x >> 1 : 0;
    if (x & 1) return x >> 1 ? SDB_OK : SDB_ECORRUPT;
    uint32_t n = x >> 1;
    if (n > SDB_MAX_VALUE || (size_t)(r->end - r->p) < n) return SDB_ECORRUPT;
    out->p = (const char *)r->p;
    out->len = n;
    r->p += n;
    return SDB_OK;
}

/* A list of version 4 (n items of per, from r) appended as version 3's:
 * u16 n, then a str16 per item. */
static int list_v3(sdb__txn *t, xcache *x, uint32_t project, rd *r, int per, sdb__buf *out)
{
    uint32_t n;
    if (get_var(r, &n) || n == 0 || n > UINT16_MAX) return SDB_ECORRUPT;
    uint16_t n16 = (uint16_t)n;
    if (sdb__buf_add(out, &n16, 2)) return SDB_ENOMEM;
    for (uint32_t i = 0; i < n * (uint32_t)per; i++) {
        uint32_t id;
        sdb__str s;
        int rc = get_item(r, &id, &s);
        if (rc) return rc;
        if (id) {
            int xd = per == 1 ? XD_TAG : i % 2 ? XD_PROP : XD_PKEY;
            const xent *e = x->project == project && id < x->n_ent[xd] ? &x->ent[xd][id] : NULL;
            if (e && e->len1) { /* cached: most items */
                s.p = x->arena.p + e->off;
                s.len = e->len1 - 1;
            } else if ((rc = xcache_str(t, x, project, xd, id, &s))) {
                return rc;
            }
        }
        uint16_t l = (uint16_t)s.len;
        if (out->cap - out->len < 2ull + s.len && sdb__buf_reserve(out, 2ull + s.len))
            return SDB_ENOMEM;
        memcpy(out->p + out->len, &l, 2);
        if (s.len) memcpy(out->p + out->len + 2, s.p, s.len);
        out->len += 2ull + s.len;
    }
    return SDB_OK;
}

/* When v is a version 4 record, the version 3 record of the same score
 * into out, and v views it; any other record is left as it is: the bytes
 * up to the lists as they are, then each list item by item. */
static int rec_v3(sdb__txn *t, xcache *x, uint32_t project, sdb__buf *out, sdb__val *v)
{
    const uint8_t *p = v->p;
    if (v->len == 0 || p[0] != ROW_V4) return SDB_OK;
    if (v->len < HEAD + FIXED || p[2] >> SDB_N_DIMS || !(p[4] & 3)) return SDB_ECORRUPT;
    rd r = {p + HEAD + FIXED + 4u * (uint32_t)__builtin_popcount(p[2]), p + v->len};
    if (r.p > r.end) return SDB_ECORRUPT;
    for (int k = 0; k < 8; k++) { /* step over the strings */
        if (!(p[3] & (1u << k))) continue;
        int kind = k < 2 ? p[4] >> (2 + 2 * k) & 3 : PACK_RAW;
        sdb__str s;
        size_t nb = kind == PACK_UUID ? 16 : kind == PACK_HEX && r.p < r.end ? 1u + *r.p : 0;
        if (kind == PACK_RAW) {
            if (k < 6 ? get16(&r, &s) : get32(&r, &s)) return SDB_ECORRUPT;
        } else if (kind == 3 || nb <= 1 || (size_t)(r.end - r.p) < nb) {
            return SDB_ECORRUPT;
        } else {
            r.p += nb;
        }
    }
    /* The lists at most double (a 1-byte id for a str16 of up to
     * SDB_MAX_VALUE bytes grows more, reserved as it comes). */
    out->len = 0;
    size_t pre = (size_t)(r.p - p);
    if (sdb__buf_reserve(out, 2 * v->len + 64) || sdb__buf_add(out, p, pre)) return SDB_ENOMEM;
    out->p[0] = ROW_VERSION;
    /* Version 3 has the tags first: step over the properties to them. */
    rd props = r;
    if (p[4] & 2) {
        uint32_t n, id;
        sdb__str s;
        if (get_var(&r, &n)) return SDB_ECORRUPT;
        for (uint64_t i = 0; i < 2ull * n; i++)
            if (get_item(&r, &id, &s)) return SDB_ECORRUPT;
    }
    int rc;
    if ((p[4] & 1) && (rc = list_v3(t, x, project, &r, 1, out))) return rc;
    if (r.p != r.end) return SDB_ECORRUPT;
    if ((p[4] & 2) && (rc = list_v3(t, x, project, &props, 2, out))) return rc;
    v->p = out->p;
    v->len = out->len;
    return SDB_OK;
}

typedef struct sdb__rowstate {
    /* pending block of this write txn */
    uint32_t p_project, p_n;
    int p_v4;                        /* its records are sdb__row_put_v4's */
    sdb__buf p_refs, p_ends, p_recs; /* u64 refs, u32 ends, records */
    block cache;                     /* last block read */
    int gone_known, gone_any;        /* whether `gone` has entries */
    struct zjob *jobs, *jobs_tail;   /* closed blocks not yet put, in order */
    uint32_t n_jobs;
    xcache xc;                       /* the text of version 4 records' ids */
    sdb__buf xl;                     /* the last version 4 record sdb__row_get gave back */
} sdb__rowstate;

static void jobs_cancel(sdb__rowstate *r);

void sdb__rows_txn_end(void *p)
{
    sdb__rowstate *r = p;
    if (!r) return;
    jobs_cancel(r);
    sdb__buf_free(&r->p_refs);
    sdb__buf_free(&r->p_ends);
    sdb__buf_free(&r->p_recs);
    sdb__buf_free(&r->cache.raw);
    sdb__buf_free(&r->cache.rec);
    sdb__buf_free(&r->cache.meta);
    xcache_free(&r->xc);
    sdb__buf_free(&r->xl);
    free(r);
}

static sdb__rowstate *state(sdb__txn *t)
{
    void **slot = sdb__txn_rows(t);
    if (!*slot) *slot = calloc(1, sizeof(sdb__rowstate));
    return *slot;
}

static void block_key(uint8_t *k, uint32_t project, uint64_t last)
{
    sdb__be32(k, project);
    sdb__be64(k + 4, last);
}

/* Decode a block value into b (its body copied or decompressed into
 * b->raw, the ref deltas and record ends into b->meta). */
static int block_decode(uint32_t project, const void *p, size_t len, block *b)
{
    b->valid = 0;
    const uint8_t *v = p;
    if (len < BLOCK_HEAD || v[0] != BLOCK_VERSION || v[1] > 15 || v[10] || v[11])
        return SDB_ECORRUPT;
    uint16_t n, tw;
    uint32_t body_len;
    memcpy(&n, v + 2, 2);
    memcpy(&body_len, v + 4, 4);
    memcpy(&tw, v + 8, 2);
    int consec = (v[1] & CODEC_CONSEC) != 0;
    uint64_t fixed = 8 + (consec ? 4ull : 8ull) * n;
    b->refs = (v[1] & CODEC_REFS) != 0;
    b->v4 = (v[1] & CODEC_V4) != 0;
    if (n == 0 || body_len < fixed || tw > TW_MAX || (b->refs && tw < REF_AT + 8))
        return SDB_ECORRUPT;
    b->raw.len = 0;
    if (sdb__buf_reserve(&b->raw, body_len)) return SDB_ENOMEM;
    if (!(v[1] & CODEC_ZSTD)) {
        if (len - BLOCK_HEAD != body_len) return SDB_ECORRUPT;
        memcpy(b->raw.p, v + BLOCK_HEAD, body_len);
    } else {
        ZSTD_DCtx *d = dctx();
        if (!d) return SDB_ENOMEM;
        size_t got = ZSTD_decompressDCtx(d, b->raw.p, body_len, v + BLOCK_HEAD, len - BLOCK_HEAD);
        if (ZSTD_isError(got) || got != body_len) return SDB_ECORRUPT;
    }
    b->raw.len = body_len;
    b->meta.len = 0;
    if (sdb__buf_reserve(&b->meta, 8ull * n)) return SDB_ENOMEM;
    uint32_t *deltas = (uint32_t *)(void *)b->meta.p, *ends = deltas + n;
    const uint8_t *q = (const uint8_t *)b->raw.p, *lens;
    memcpy(&b->first, q, 8);
    if (consec) {
        for (uint32_t i = 0; i < n; i++) deltas[i] = i;
        lens = q + 8;
    } else {
        memcpy(deltas, q + 8, 4ull * n);
        lens = q + 8 + 4ull * n;
    }
    b->recs = lens + 4ull * n;
    b->recs_len = body_len - fixed;
    if (b->refs) b->recs_len += 8ull * n; /* the lengths count the refs left out */
    uint64_t end = 0;
    for (uint32_t i = 0; i < n; i++) { /* ascending refs, records inside */
        uint32_t l = (uint32_t)lens[i] | (uint32_t)lens[n + i] << 8 |
                     (uint32_t)lens[2 * n + i] << 16 | (uint32_t)lens[3 * n + i] << 24;
        if ((i && deltas[i] <= deltas[i - 1]) || l < tw || (end += l) > b->recs_len)
            return SDB_ECORRUPT;
        ends[i] = (uint32_t)end;
    }
    if (end != b->recs_len) return SDB_ECORRUPT;
    if (b->refs) b->recs_len -= 8ull * n;
    b->deltas = deltas;
    b->ends = ends;
    b->tw = tw;
    b->n = n;
    b->project = project;
    b->last = b->first + deltas[n - 1];
    b->valid = 1;
    return SDB_OK;
}

static uint32_t block_ref_at(const block *b, uint32_t i) { return b->deltas[i]; }

/* Record i of b, put together in b->rec (so it lasts until the next
 * call): its first tw bytes from the byte columns, the rest from where the
 * rests of the records before it end (each is its length less tw). One
 * record costs its own bytes, not the block's: a GET by id reads one
 * record of ~100. */
static int block_rec(block *b, uint32_t i, sdb__val *out)
{
    uint32_t s = i ? b->ends[i - 1] : 0, e = b->ends[i], tw = b->tw;
    b->rec.len = 0;
    if (sdb__buf_reserve(&b->rec, e - s)) return SDB_ENOMEM;
    uint8_t *o = (uint8_t *)b->rec.p;
    const uint8_t *cols = b->recs;
    uint32_t tc = tw; /* columns kept */
    if (b->refs) {
        uint64_t ref = b->first + b->deltas[i];
        for (uint32_t j = 0; j < REF_AT; j++) o[j] = cols[(size_t)j * b->n + i];
        memcpy(o + REF_AT, &ref, 8);
        for (uint32_t j = REF_AT + 8; j < tw; j++) o[j] = cols[(size_t)(j - 8) * b->n + i];
        tc = tw - 8;
    } else {
        for (uint32_t j = 0; j < tw; j++) o[j] = cols[(size_t)j * b->n + i];
    }
    const uint8_t *rest = b->recs + (size_t)tc * b->n + (s - (size_t)tw * i);
    memcpy(o + tw, rest, e - s - tw);
    b->rec.len = e - s;
    out->p = b->rec.p;
    out->len = e - s;
    return SDB_OK;
}

/* Index of ref in b, or -1. */
static int64_t block_find(const block *b, uint64_t ref)
{
    if (!b->valid || ref < b->first || ref > b->last) return -1;
    uint32_t d = (uint32_t)(ref - b->first), lo = 0, hi = b->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (block_ref_at(b, mid) < d) lo = mid + 1;
        else hi = mid;
    }
    return lo < b->n && block_ref_at(b, lo) == d ? (int64_t)lo : -1;
}

/* Load the block that may hold (project, ref) into b: SDB_ENOTFOUND when
 * none can. *out_key gets its key. */
static int jobs_settle_for(sdb__txn *t, uint32_t project, uint64_t ref);

static int block_load(sdb__txn *t, uint32_t project, uint64_t ref, block *b,
                      uint8_t *out_key)
{
    int rc = jobs_settle_for(t, project, ref);
    if (rc) return rc;
    uint8_t k[12];
    block_key(k, project, ref);
    sdb__cur *c;
    if ((rc = sdb__cur_open(t, SDB__DB_ROWS, &c))) return rc;
    sdb__val key, val;
    rc = sdb__cur_seek(c, k, sizeof k, &key, &val);
    if (rc == SDB_OK && (key.len != 12 || sdb__rd32(key.p) != project)) rc = SDB_ENOTFOUND;
    if (rc == SDB_OK) {
        if (out_key) memcpy(out_key, key.p, 12);
        rc = block_decode(project, val.p, val.len, b);
        if (rc == SDB_OK && b->last != sdb__rd64((const uint8_t *)key.p + 4)) rc = SDB_ECORRUPT;
    }
    sdb__cur_close(c);
    return rc;
}

/* Index of ref in the pending block, or -1. */
static int64_t pending_find(const sdb__rowstate *r, uint32_t project, uint64_t ref)
{
    if (!r->p_n || r->p_project != project) return -1;
    const uint64_t *refs = (const uint64_t *)(void *)r->p_refs.p;
    uint32_t lo = 0, hi = r->p_n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (refs[mid] < ref) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->p_n && refs[lo] == ref ? (int64_t)lo : -1;
}

static void pending_rec(const sdb__rowstate *r, uint32_t i, sdb__val *out)
{
    const uint32_t *ends = (const uint32_t *)(void *)r->p_ends.p;
    uint32_t s = i ? ends[i - 1] : 0;
    out->p = r->p_recs.p + s;
    out->len = ends[i] - s;
}

static int gone_any(sdb__txn *t, sdb__rowstate *r)
{
    if (!r->gone_known) {
        r->gone_any = sdb__count(t, SDB__DB_GONE) != 0;
        r->gone_known = 1;
    }
    return r->gone_any;
}

/* 1 when (project, ref) is marked gone, 0 when not, or an error. */
static int is_gone(sdb__txn *t, sdb__rowstate *r, uint32_t project, uint64_t ref)
{
    if (!gone_any(t, r)) return 0;
    uint8_t k[12];
    block_key(k, project, ref);
    sdb__val v;
    int rc = sdb__get(t, SDB__DB_GONE, k, sizeof k, &v);
    return rc == SDB_OK ? 1 : rc == SDB_ENOTFOUND ? 0 : rc;
}

int sdb__row_get(sdb__txn *t, uint32_t project, uint64_t ref, sdb__val *out)
{
    sdb__rowstate *r = state(t);
    if (!r) return SDB_ENOMEM;
    int64_t i = pending_find(r, project, ref);
    if (i >= 0) {
        pending_rec(r, (uint32_t)i, out);
        return r->p_v4 ? rec_v3(t, &r->xc, project, &r->xl, out) : SDB_OK;
    }
    if (!(r->cache.valid && r->cache.project == project && ref >= r->cache.first &&
          ref <= r->cache.last)) {
        int rc = block_load(t, project, ref, &r->cache, NULL);
        if (rc) return rc;
    }
    if ((i = block_find(&r->cache, ref)) < 0) return SDB_ENOTFOUND;
    int g = is_gone(t, r, project, ref);
    if (g) return g > 0 ? SDB_ENOTFOUND : g;
    int rc = block_rec(&r->cache, (uint32_t)i, out);
    return rc || !r->cache.v4 ? rc : rec_v3(t, &r->xc, project, &r->xl, out);
}

/* ------------------------------------------- compression off the writer */

/* Compressing a closed block was 12% of a UUIDv4 ingest's CPU (perf, 10M
 * scores), all of it on the thread that holds the write txn: the ingest's
 * critical path, while the parse workers waited on it half the time. So a
 * write txn hands each closed block to a compressor thread (one per
 * process) and goes on; its blocks are put, in the order they closed, at
 * its commit (sdb__rows_flush), before it iterates the rows, or before it
 * reads a ref that one of them holds (block_load). When the writer needs a
 * block that the compressor has not taken yet, it compresses it itself,
 * so progress never waits on the thread, and a process that cannot start
 * one compresses everything on the writer as before. At most MAX_JOBS
 * blocks (~128 KiB of rows) are in flight per txn: blocks close at the
 * ratio of the last one compressed, and with 64 in flight a compressor
 * slowed by a loaded machine left that ratio dozens of blocks stale (the
 * rows-fill test's fill fell to 0.917-0.927 at load ~8, 0.937 with 4 and
 * two copies of it running at once); 1M UUIDv4, the same run: 2.9/2.8 s of
 * CPU with 4, main's build 3.3/3.2. */
#define MAX_JOBS 4u

enum { Z_WAIT, Z_RUN, Z_DONE };

typedef struct zjob {
    struct zjob *qnext; /* in the compressor's queue (Z_WAIT only) */
    struct zjob *next;  /* in its txn's list, in closing order */
    uint32_t project, n;
    int v4; /* CODEC_V4 */
    uint64_t first, last;
    sdb__buf refs, ends, recs; /* the block's rows: u64, u32 ends, records */
    sdb__buf out;              /* the value to put */
    int state, rc;             /* state under zq.mu */
} zjob;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    zjob *head, *tail; /* Z_WAIT jobs, oldest first */
} zq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
        NULL};
static pthread_once_t zq_once = PTHREAD_ONCE_INIT;
static int zq_running; /* the compressor thread started (set once, before any job) */

/* The bytes of record p (len bytes) that records of its shape share
 * position for position: the fixed part, the dimension ids, and the id and
 * trace id when they are packed (fixed lengths, or a length byte). The
 * strings after them (str16/str32 text, tags, properties) are not
 * transposed: records that carry tags or properties differ in length there,
 * and columns of misaligned text cost zstd the repeats it finds record by
 * record (1M UUIDv4 scores with 2 tags and 2 properties each: rows 68.2 MB
 * on main, 81.0 with the whole shortest record transposed, 58.8 now).
 * Bytes that are not a record of this version: all of them. */
static uint32_t rec_prefix(const uint8_t *p, uint32_t len)
{
    if (len < HEAD + FIXED || (p[0] != ROW_VERSION && p[0] != ROW_V4)) return len;
    uint32_t q = HEAD + FIXED + 4u * (uint32_t)__builtin_popcount(p[2] & ((1u << SDB_N_DIMS) - 1));
    for (int k = 0; k < 2 && q < len; k++) {
        if (!(p[3] & (1u << k))) continue;
        int kind = p[4] >> (2 + 2 * k) & 3;
        if (kind == PACK_UUID) q += 16;
        else if (kind == PACK_HEX) q += 1u + p[q];
        else break; /* raw: a str16, its length varies */
    }
    return q < len ? q : len;
}

/* The block value of rows refs[0..n) (ascending) into *out: the body of
 * docs/storage.md, one zstd frame (level ZLEVEL) unless that does not
 * shrink it. Runs on either thread (contexts are per thread). */
int sdb__rows_block_encode(const uint64_t *refs, const uint32_t *ends, const void *recs,
                           uint32_t n, int v4, sdb__buf *out)
{
    size_t recs_len = ends[n - 1];
    int consec = refs[n - 1] - refs[0] == n - 1;
    size_t body_len = 8 + (consec ? 4ull : 8ull) * n + recs_len;
    sdb__buf body = {0};
    int rc = SDB_ENOMEM;
    if (sdb__buf_reserve(&body, body_len)) goto done;
    uint8_t *q = (uint8_t *)body.p, *lens;
    memcpy(q, &refs[0], 8);
    if (consec) {
        lens = q + 8;
    } else {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t d = (uint32_t)(refs[i] - refs[0]);
            memcpy(q + 8 + 4ull * i, &d, 4);
        }
        lens = q + 8 + 4ull * n;
    }
    uint32_t tw = TW_MAX;
    const uint8_t *src = recs;
    for (uint32_t i = 0, s = 0; i < n; s = ends[i++]) {
        uint32_t l = ends[i] - s, pre = rec_prefix(src + s, l);
        for (int j = 0; j < 4; j++) lens[(size_t)j * n + i] = (uint8_t)(l >> 8 * j);
        if (pre < tw) tw = pre;
    }
    int implied = tw >= REF_AT + 8;
    for (uint32_t i = 0, s = 0; i < n && implied; s = ends[i++])
        implied = memcmp(src + s + REF_AT, &refs[i], 8) == 0;
    if (implied) body_len -= 8ull * n;
    uint32_t tc = implied ? tw - 8 : tw; /* columns kept */
    uint8_t *dst = lens + 4ull * n, *rest = dst + (size_t)tc * n;
    /* Columns [0, cut) then [cut + skip, tw): the ref's 8 left out when implied. */
    uint32_t cut = implied ? REF_AT : tw, skip = implied ? 8 : 0;
    for (uint32_t i = 0, s = 0; i < n; s = ends[i++]) {
        const uint8_t *r = src + s;
        uint8_t *d = dst + i;
        for (uint32_t j = 0; j < cut; j++, d += n) *d = r[j];
        for (uint32_t j = cut + skip; j < tw; j++, d += n) *d = r[j];
        memcpy(rest, r + tw, ends[i] - s - tw);
        rest += ends[i] - s - tw;
    }
    size_t bound = ZSTD_compressBound(body_len);
    out->len = 0;
    if (sdb__buf_reserve(out, BLOCK_HEAD + bound)) goto done;
    ZSTD_CCtx *c = cctx();
    if (!c) goto done;
    uint8_t *o = (uint8_t *)out->p;
    size_t z = ZSTD_compressCCtx(c, o + BLOCK_HEAD, bound, q, body_len, ZLEVEL);
    uint16_t n16 = (uint16_t)n, tw16 = (uint16_t)tw;
    uint32_t bl = (uint32_t)body_len;
    o[0] = BLOCK_VERSION;
    o[1] = (uint8_t)((consec ? CODEC_CONSEC : 0) | (implied ? CODEC_REFS : 0) |
                     (v4 ? CODEC_V4 : 0));
    if (ZSTD_isError(z) || z >= body_len) { /* incompressible: kept raw */
        memcpy(o + BLOCK_HEAD, q, body_len);
        z = body_len;
    } else {
        o[1] |= CODEC_ZSTD;
    }
    memcpy(o + 2, &n16, 2);
    memcpy(o + 4, &bl, 4);
    memcpy(o + 8, &tw16, 2);
    o[10] = o[11] = 0;
    out->len = BLOCK_HEAD + z;
    rc = SDB_OK;
done:
    sdb__buf_free(&body);
    return rc;
}

/* Blocks sized to whole pages. A block value is an LMDB overflow run, a
 * whole number of pages: blocks closed at 16 KiB of records came to ~10.5
 * KB, three pages, and 13% of the row store's pages were slack (1M UUIDv4
 * scores: 63.9 MB of values in 73.7 MB of pages). So a block closes when
 * its body, at the compression ratio of the last block compressed (parts
 * per 65536, process-wide: an estimate, never a rule), would pass 97% of
 * the most whole pages that keep its records under BLOCK_RAW_MAX. */
static uint32_t zratio; /* 0: none yet; atomic */

static void ratio_note(size_t body_len, size_t value_len)
{
    if (body_len < 4096) return; /* too small to say */
    uint64_t r = ((uint64_t)value_len << 16) / body_len;
    /* Up at once, down slowly: a block that compresses worse than the
     * estimate spills into one more page, which costs more than a block
     * closed a little early. */
    uint64_t old = __atomic_load_n(&zratio, __ATOMIC_RELAXED);
    if (old && r < old) r = (old * 15 + r) / 16;
    __atomic_store_n(&zratio, (uint32_t)(r ? r : 1), __ATOMIC_RELAXED);
}

/* Body bytes (records plus 8 per row) a block may reach. */
static size_t body_target(void)
{
    uint64_t r = __atomic_load_n(&zratio, __ATOMIC_RELAXED);
    if (!r) return BLOCK_RAW;
    uint64_t pages = ((uint64_t)BLOCK_RAW_MAX * r >> 16) / LMDB_PAGE;
    if (pages == 0) return BLOCK_RAW_MAX; /* it fits in a leaf page or one overflow page */
    uint64_t room = pages * LMDB_PAGE - LMDB_OVHEAD - BLOCK_HEAD;
    uint64_t body = (room * 97 / 100 << 16) / r;
    return body < 4096 ? 4096 : body > BLOCK_RAW_MAX ? BLOCK_RAW_MAX : (size_t)body;
}

static int job_encode(zjob *j)
{
    int rc = sdb__rows_block_encode((const uint64_t *)(void *)j->refs.p,
                          (const uint32_t *)(void *)j->ends.p, j->recs.p, j->n, j->v4,
                                    &j->out);
    if (rc == SDB_OK) ratio_note(8 + 8ull * j->n + j->recs.len, j->out.len);
    return rc;
}

static void job_free(zjob *j)
{
    sdb__buf_free(&j->refs);
    sdb__buf_free(&j->ends);
    sdb__buf_free(&j->recs);
    sdb__buf_free(&j->out);
    free(j);
}

/* Compress j, which the caller has just taken (under zq.mu, which is
 * released meanwhile and held again on return). */
static void job_run(zjob *j)
{
    j->state = Z_RUN;
    pthread_mutex_unlock(&zq.mu);
    int rc = job_encode(j);
    pthread_mutex_lock(&zq.mu);
    j->rc = rc;
    j->state = Z_DONE;
    pthread_cond_broadcast(&zq.done);
}

static void *zworker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&zq.mu);
    for (;;) {
        while (!zq.head) pthread_cond_wait(&zq.work, &zq.mu);
        zjob *j = zq.head;
        zq.head = j->qnext;
        if (!zq.head) zq.tail = NULL;
        job_run(j);
    }
    return NULL;
}

/* The compressor lives as long as the process, detached, with every
 * signal blocked (they belong to the threads that handle them). */
static void zq_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t a;
    pthread_t th;
    if (pthread_attr_init(&a)) return;
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    zq_running = pthread_create(&th, &a, zworker, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
}

/* Take a Z_WAIT job out of the compressor's queue (it is in it only when
 * the compressor runs). Under zq.mu. */
static void zq_unlink(zjob *j)
{
    zjob **pp = &zq.head, *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp) return;
    *pp = j->qnext;
    if (zq.tail == j) zq.tail = prev;
}

/* Job j done, by whichever thread gets to it first. Called by the writer. */
static void job_finish(zjob *j)
{
    pthread_mutex_lock(&zq.mu);
    if (j->state == Z_WAIT) { /* not taken: the writer compresses it */
        zq_unlink(j);
        job_run(j);
    }
    while (j->state != Z_DONE) pthread_cond_wait(&zq.done, &zq.mu);
    pthread_mutex_unlock(&zq.mu);
}

/* Put the txn's oldest closed block (compressing it first if need be). */
static int job_put_front(sdb__txn *t, sdb__rowstate *r)
{
    zjob *j = r->jobs;
    job_finish(j);
    int rc = j->rc;
    if (rc == SDB_OK) {
        uint8_t k[12];
        block_key(k, j->project, j->last);
        rc = sdb__put(t, SDB__DB_ROWS, k, sizeof k, j->out.p, j->out.len, 1);
    }
    r->jobs = j->next;
    if (!r->jobs) r->jobs_tail = NULL;
    r->n_jobs--;
    job_free(j);
    return rc;
}

/* Put every closed block of the txn. */
static int jobs_settle(sdb__txn *t, sdb__rowstate *r)
{
    int rc = SDB_OK;
    while (r->jobs && rc == SDB_OK) rc = job_put_front(t, r);
    return rc;
}

/* Put every closed block first when one of them holds (project, ref):
 * until then `rows` does not have it. */
static int jobs_settle_for(sdb__txn *t, uint32_t project, uint64_t ref)
{
    sdb__rowstate *r = *sdb__txn_rows(t);
    if (!r) return SDB_OK;
    for (const zjob *j = r->jobs; j; j = j->next)
        if (j->project == project && ref >= j->first && ref <= j->last) return jobs_settle(t, r);
    return SDB_OK;
}

/* An aborted txn's blocks: dropped, once the compressor lets go of them. */
static void jobs_cancel(sdb__rowstate *r)
{
    while (r->jobs) {
        zjob *j = r->jobs;
        pthread_mutex_lock(&zq.mu);
        if (j->state == Z_WAIT) {
            zq_unlink(j);
            j->state = Z_DONE;
        }
        while (j->state != Z_DONE) pthread_cond_wait(&zq.done, &zq.mu);
        pthread_mutex_unlock(&zq.mu);
        r->jobs = j->next;
        job_free(j);
    }
    r->jobs_tail = NULL;
    r->n_jobs = 0;
}

/* Close rows (refs ascending, in the three buffers, which the job takes:
 * they are left empty) as one block of project. */
static int block_submit(sdb__txn *t, sdb__rowstate *r, uint32_t project, sdb__buf *refs,
                        sdb__buf *ends, sdb__buf *recs, uint32_t n, int v4)
{
    zjob *j = calloc(1, sizeof *j);
    if (!j) return SDB_ENOMEM;
    j->v4 = v4;
    const uint64_t *rf = (const uint64_t *)(void *)refs->p;
    j->project = project;
    j->n = n;
    j->first = rf[0];
    j->last = rf[n - 1];
    j->refs = *refs;
    j->ends = *ends;
    j->recs = *recs;
    *refs = *ends = *recs = (sdb__buf){0};
    j->state = Z_WAIT;
    if (r->jobs_tail) r->jobs_tail->next = j;
    else r->jobs = j;
    r->jobs_tail = j;
    r->n_jobs++;
    pthread_once(&zq_once, zq_start);
    if (zq_running) {
        pthread_mutex_lock(&zq.mu);
        if (zq.tail) zq.tail->qnext = j;
        else zq.head = j;
        zq.tail = j;
        pthread_cond_signal(&zq.work);
        pthread_mutex_unlock(&zq.mu);
    }
    /* Put what is compressed already, and the oldest at the cap. */
    int rc = SDB_OK;
    while (rc == SDB_OK && r->jobs) {
        int ready;
        pthread_mutex_lock(&zq.mu);
        ready = r->jobs->state == Z_DONE;
        pthread_mutex_unlock(&zq.mu);
        /* Until a ratio is known every block would close at BLOCK_RAW:
         * the first one is finished at once. */
        int first = !__atomic_load_n(&zratio, __ATOMIC_RELAXED);
        if (!ready && !first && r->n_jobs <= (zq_running ? MAX_JOBS : 0)) break;
        rc = job_put_front(t, r);
    }
    return rc;
}

int sdb__rows_flush(sdb__txn *t)
{
    sdb__rowstate *r = *sdb__txn_rows(t);
    if (!r) return SDB_OK;
    int rc = SDB_OK;
    if (r->p_n) {
        uint32_t n = r->p_n;
        r->p_n = 0;
        rc = block_submit(t, r, r->p_project, &r->p_refs, &r->p_ends, &r->p_recs, n, r->p_v4);
    }
    if (rc == SDB_OK) rc = jobs_settle(t, r);
    return rc;
}

static int row_put(sdb__txn *t, uint32_t project, uint64_t ref, const void *rec, size_t len,
                   int v4)
{
    sdb__rowstate *r = state(t);
    if (!r) return SDB_ENOMEM;
    if (len > UINT32_MAX / 2) return SDB_ELIMIT;
    const uint64_t *refs = (const uint64_t *)(void *)r->p_refs.p;
    if (r->p_n && (r->p_project != project || r->p_v4 != v4 || r->p_n == BLOCK_MAX_ROWS ||
                   r->p_recs.len + len + 8ull * (r->p_n + 1) + 8 > body_target() ||
                   ref <= refs[r->p_n - 1] ||
                   ref - refs[0] > UINT32_MAX)) {
        uint32_t n = r->p_n;
        r->p_n = 0;
        int rc = block_submit(t, r, r->p_project, &r->p_refs, &r->p_ends, &r->p_recs, n, r->p_v4);
        if (rc) return rc;
    }
    uint32_t end = (uint32_t)(r->p_recs.len + len);
    if (sdb__buf_add(&r->p_refs, &ref, 8) || sdb__buf_add(&r->p_ends, &end, 4) ||
        sdb__buf_add(&r->p_recs, rec, len))
        return SDB_ENOMEM;
    r->p_project = project;
    r->p_v4 = v4;
    r->p_n++;
    return SDB_OK;
}

int sdb__row_put(sdb__txn *t, uint32_t project, uint64_t ref, const void *rec, size_t len)
{
    return row_put(t, project, ref, rec, len, 0);
}

int sdb__row_put_v4(sdb__txn *t, uint32_t project, uint64_t ref, const void *rec, size_t len)
{
    return row_put(t, project, ref, rec, len, 1);
}

int sdb__row_del(sdb__txn *t, uint32_t project, uint64_t ref)
{
    sdb__rowstate *r = state(t);
    if (!r) return SDB_ENOMEM;
    int64_t pi = pending_find(r, project, ref);
    if (pi >= 0) { /* drop it from the pending block */
        uint32_t i = (uint32_t)pi, *ends = (uint32_t *)(void *)r->p_ends.p;
        uint64_t *refs = (uint64_t *)(void *)r->p_refs.p;
        uint32_t s = i ? ends[i - 1] : 0, len = ends[i] - s;
        memmove(r->p_recs.p + s, r->p_recs.p + ends[i], r->p_recs.len - ends[i]);
        r->p_recs.len -= len;
        for (uint32_t j = i; j + 1 < r->p_n; j++) {
            refs[j] = refs[j + 1];
            ends[j] = ends[j + 1] - len;
        }
        r->p_n--;
        r->p_refs.len -= 8;
        r->p_ends.len -= 4;
        return SDB_OK;
    }
    sdb__val v;
    int rc = sdb__row_get(t, project, ref, &v);
    if (rc) return rc;
    uint8_t k[12], one = 1;
    block_key(k, project, ref);
    if ((rc = sdb__put(t, SDB__DB_GONE, k, sizeof k, &one, 1, 0))) return rc;
    r->gone_known = r->gone_any = 1;
    return SDB_OK;
}

/* Rewrite block b (key `key`) without the rows whose refs are drop[0..m)
 * (ascending; refs b does not hold are ignored). */
static int block_drop(sdb__txn *t, sdb__rowstate *r, uint32_t project, block *b,
                      const uint8_t *key, const uint64_t *drop, uint32_t m)
{
    int rc = sdb__del(t, SDB__DB_ROWS, key, 12);
    if (rc) return rc;
    sdb__buf refs = {0}, ends = {0}, recs = {0};
    uint32_t n = 0;
    for (uint32_t i = 0, j = 0; i < b->n && rc == SDB_OK; i++) {
        uint64_t ref = b->first + block_ref_at(b, i);
        while (j < m && drop[j] < ref) j++;
        if (j < m && drop[j] == ref) continue;
        sdb__val v;
        if ((rc = block_rec(b, i, &v))) break;
        uint32_t end = (uint32_t)(recs.len + v.len);
        if (sdb__buf_add(&recs, v.p, v.len) || sdb__buf_add(&refs, &ref, 8) ||
            sdb__buf_add(&ends, &end, 4))
            rc = SDB_ENOMEM;
        n++;
    }
    if (rc == SDB_OK && n) rc = block_submit(t, r, project, &refs, &ends, &recs, n, b->v4);
    sdb__buf_free(&refs);
    sdb__buf_free(&ends);
    sdb__buf_free(&recs);
    return rc;
}

int sdb__rows_purge(sdb__txn *t, uint32_t max_blocks, int *out_left)
{
    *out_left = 0;
    sdb__rowstate *r = state(t);
    if (!r) return SDB_ENOMEM;
    r->cache.valid = 0;
    block b = {0};
    sdb__buf drop = {0};
    int rc = SDB_OK;
    for (uint32_t done = 0; rc == SDB_OK; done++) {
        /* The first gone row, its block, and every gone row of it. */
        sdb__cur *c;
        if ((rc = sdb__cur_open(t, SDB__DB_GONE, &c))) break;
        sdb__val key, val;
        rc = sdb__cur_seek(c, NULL, 0, &key, &val);
        if (rc == SDB_OK && done == max_blocks) *out_left = 1;
        if (rc || done == max_blocks) {
            sdb__cur_close(c);
            break;
        }
        uint32_t project = sdb__rd32(key.p);
        uint64_t first = sdb__rd64((const uint8_t *)key.p + 4);
        uint8_t bkey[12];
        rc = key.len == 12 ? block_load(t, project, first, &b, bkey) : SDB_ECORRUPT;
        if (rc == SDB_ENOTFOUND) {
            /* Marked gone, yet in no block: nothing to rewrite, and a fold
             * that stopped here would stop every fold after it. */
            uint8_t k[12];
            memcpy(k, key.p, 12);
            sdb__cur_close(c);
            if ((rc = sdb__del(t, SDB__DB_GONE, k, sizeof k))) break;
            continue;
        }
        drop.len = 0;
        for (; rc == SDB_OK; rc = sdb__cur_next(c, &key, &val)) {
            if (key.len != 12 || sdb__rd32(key.p) != project ||
                sdb__rd64((const uint8_t *)key.p + 4) > b.last)
                break;
            uint64_t ref = sdb__rd64((const uint8_t *)key.p + 4);
            if (sdb__buf_add(&drop, &ref, 8)) rc = SDB_ENOMEM;
        }
        sdb__cur_close(c);
        if (rc && rc != SDB_ENOTFOUND) break;
        const uint64_t *refs = (const uint64_t *)(void *)drop.p;
        uint32_t m = (uint32_t)(drop.len / 8);
        rc = block_drop(t, r, project, &b, bkey, refs, m);
        for (uint32_t i = 0; i < m && rc == SDB_OK; i++) {
            uint8_t k[12];
            block_key(k, project, refs[i]);
            rc = sdb__del(t, SDB__DB_GONE, k, sizeof k);
        }
    }
    if (rc == SDB_ENOTFOUND) rc = SDB_OK;
    r->gone_known = 0;
    sdb__buf_free(&b.raw);
    sdb__buf_free(&b.rec);
    sdb__buf_free(&b.meta);
    sdb__buf_free(&drop);
    return rc;
}

/* ------------------------------------------------------------ iteration */

struct sdb__rowit {
    sdb__txn *t;
    sdb__rowstate *r;
    sdb__cur *cur;
    sdb__cur *gone;   /* over `gone`, when it has entries (forward) */
    int g_valid, g_end;
    uint64_t g_ref;   /* the first gone ref of the project at or after the last seek */
    uint32_t project;
    int backward;
    uint64_t bound;
    block b;
    int64_t i;   /* next index in b */
    sdb__buf xl; /* the last version 4 record given back, as version 3 */
};

static int it_block(sdb__rowit *it, int rc, sdb__val *key, sdb__val *val)
{
    if (rc) return rc;
    if (key->len != 12 || sdb__rd32(key->p) != it->project) return SDB_ENOTFOUND;
    return block_decode(it->project, val->p, val->len, &it->b);
}

int sdb__rows_open(sdb__txn *t, uint32_t project, uint64_t bound, int backward,
                   sdb__rowit **out)
{
    *out = NULL;
    int rc = sdb__rows_flush(t); /* the txn's own rows too */
    if (rc) return rc;
    sdb__rowit *it = calloc(1, sizeof *it);
    if (!it) return SDB_ENOMEM;
    it->t = t;
    it->r = state(t);
    it->project = project;
    it->backward = backward;
    it->bound = bound;
    if (!it->r) rc = SDB_ENOMEM;
    else rc = sdb__cur_open(t, SDB__DB_ROWS, &it->cur);
    if (rc) {
        free(it);
        return rc;
    }
    uint8_t k[12];
    sdb__val key, val;
    if (!backward) {
        block_key(k, project, bound);
        rc = it_block(it, sdb__cur_seek(it->cur, k, sizeof k, &key, &val), &key, &val);
        it->i = 0;
        while (rc == SDB_OK && it->i < it->b.n && it->b.first + block_ref_at(&it->b, (uint32_t)it->i) < bound)
            it->i++;
    } else {
        /* The block holding the last ref below bound: the first block at
         * or past bound, or the one before it. */
        block_key(k, project, bound);
        rc = sdb__cur_seek(it->cur, k, sizeof k, &key, &val);
        if (rc == SDB_OK && key.len == 12 && sdb__rd32(key.p) == project) {
            rc = it_block(it, rc, &key, &val);
        } else {
            rc = rc == SDB_OK ? sdb__cur_prev(it->cur, &key, &val)
                 : rc == SDB_ENOTFOUND ? sdb__cur_last(it->cur, &key, &val) : rc;
            rc = it_block(it, rc, &key, &val);
        }
        it->i = rc == SDB_OK ? (int64_t)it->b.n - 1 : -1;
        while (rc == SDB_OK && it->i >= 0 && it->b.first + block_ref_at(&it->b, (uint32_t)it->i) >= bound)
            it->i--;
    }
    if (rc == SDB_ENOTFOUND) {
        it->b.valid = 0;
        rc = SDB_OK;
    }
    if (rc) {
        sdb__rows_close(it);
        return rc;
    }
    *out = it;
    return SDB_OK;
}

/* 1 when ref (of the iterator's project) is gone. Forward, refs only
 * grow: one seek per gone ref passed, not a lookup per row. */
static int it_gone(sdb__rowit *it, uint64_t ref)
{
    if (!gone_any(it->t, it->r)) return 0;
    if (it->backward) return is_gone(it->t, it->r, it->project, ref);
    if (!it->gone) {
        int rc = sdb__cur_open(it->t, SDB__DB_GONE, &it->gone);
        if (rc) return rc;
    }
    if (!it->g_valid || (!it->g_end && it->g_ref < ref)) {
        uint8_t k[12];
        block_key(k, it->project, ref);
        sdb__val key, val;
        int rc = sdb__cur_seek(it->gone, k, sizeof k, &key, &val);
        if (rc && rc != SDB_ENOTFOUND) return rc;
        it->g_valid = 1;
        it->g_end = rc == SDB_ENOTFOUND || key.len != 12 || sdb__rd32(key.p) != it->project;
        if (!it->g_end) it->g_ref = sdb__rd64((const uint8_t *)key.p + 4);
    }
    return !it->g_end && it->g_ref == ref;
}

int sdb__rows_next(sdb__rowit *it, uint64_t *out_ref, sdb__val *out)
{
    while (it->b.valid) {
        if ((!it->backward && it->i < it->b.n) || (it->backward && it->i >= 0)) {
            uint32_t i = (uint32_t)it->i;
            it->i += it->backward ? -1 : 1;
            uint64_t ref = it->b.first + block_ref_at(&it->b, i);
            int g = it_gone(it, ref);
            if (g < 0) return g;
            if (g) continue;
            *out_ref = ref;
            int rc = block_rec(&it->b, i, out);
            return rc || !it->b.v4 ? rc : rec_v3(it->t, &it->r->xc, it->project, &it->xl, out);
        }
        sdb__val key, val;
        int rc = it->backward ? sdb__cur_prev(it->cur, &key, &val) : sdb__cur_next(it->cur, &key, &val);
        rc = it_block(it, rc, &key, &val);
        if (rc == SDB_ENOTFOUND) it->b.valid = 0;
        else if (rc) return rc;
        else it->i = it->backward ? (int64_t)it->b.n - 1 : 0;
    }
    return SDB_ENOTFOUND;
}

void sdb__rows_close(sdb__rowit *it)
{
    if (!it) return;
    sdb__cur_close(it->cur);
    sdb__cur_close(it->gone);
    sdb__buf_free(&it->b.raw);
    sdb__buf_free(&it->b.rec);
    sdb__buf_free(&it->b.meta);
    sdb__buf_free(&it->xl);
    free(it);
}

int sdb__rows_block_count(const void *p, size_t len, uint32_t *out_n)
{
    const uint8_t *v = p;
    uint16_t n;
    if (len < BLOCK_HEAD || v[0] != BLOCK_VERSION) return SDB_ECORRUPT;
    memcpy(&n, v + 2, 2);
    *out_n = n;
    return SDB_OK;
}
