/* Row records: the full score, kept for detail and list views and for the
 * per-row filters (tags, properties) that columns do not carry.
 *
 * Layout:
 *   u8  version (1)
 *   sdb__fixed (80 bytes, native order)
 *   6 × str16   id, trace_id, observation_id, session_id, dataset_run_id, config_id
 *   2 × str32   comment, metadata (compact JSON text)
 *   u16 n_tags, n_tags × str16
 *   u16 n_props, n_props × (str16 key, str16 value)
 * where str16 is a u16 length (0xFFFF = absent) then bytes, str32 likewise
 * with a u32 length (0xFFFFFFFF = absent). Dimension and label strings are
 * not repeated here: the fixed part carries their dictionary ids.
 */
#include "internal.h"

#define ABSENT16 0xFFFFu
#define ABSENT32 0xFFFFFFFFu

static int put16(sdb__buf *b, sdb__str s)
{
    uint16_t n = s.p ? (uint16_t)s.len : ABSENT16;
    if (sdb__buf_add(b, &n, 2)) return SDB_ENOMEM;
    return s.p ? sdb__buf_add(b, s.p, s.len) : SDB_OK;
}

static int put32(sdb__buf *b, sdb__str s)
{
    uint32_t n = s.p ? s.len : ABSENT32;
    if (sdb__buf_add(b, &n, 4)) return SDB_ENOMEM;
    return s.p ? sdb__buf_add(b, s.p, s.len) : SDB_OK;
}

int sdb__row_encode(const sdb__fixed *fx, const sdb__score *sc, uint32_t label_id,
                    sdb__buf *out)
{
    (void)label_id;
    out->len = 0;
    uint8_t ver = 1;
    if (sdb__buf_add(out, &ver, 1) || sdb__buf_add(out, fx, sizeof *fx)) return SDB_ENOMEM;
    const sdb__str *s16[] = {&sc->id, &sc->trace_id, &sc->observation_id,
                             &sc->session_id, &sc->dataset_run_id, &sc->config_id};
    for (size_t i = 0; i < 6; i++)
        if (put16(out, *s16[i])) return SDB_ENOMEM;
    if (put32(out, sc->comment) || put32(out, sc->metadata)) return SDB_ENOMEM;
    uint16_t n = (uint16_t)sc->n_tags;
    if (sdb__buf_add(out, &n, 2)) return SDB_ENOMEM;
    for (uint32_t i = 0; i < sc->n_tags; i++)
        if (put16(out, sc->tags[i])) return SDB_ENOMEM;
    n = (uint16_t)sc->n_props;
    if (sdb__buf_add(out, &n, 2)) return SDB_ENOMEM;
    for (uint32_t i = 0; i < 2 * sc->n_props; i++)
        if (put16(out, sc->props[i])) return SDB_ENOMEM;
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
    if (n == ABSENT16) {
        s->p = NULL;
        s->len = 0;
        return SDB_OK;
    }
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
    if (n == ABSENT32) {
        s->p = NULL;
        s->len = 0;
        return SDB_OK;
    }
    if ((size_t)(r->end - r->p) < n) return SDB_ECORRUPT;
    s->p = (const char *)r->p;
    s->len = n;
    r->p += n;
    return SDB_OK;
}

static int skip_list(rd *r, uint32_t per, uint32_t *n_out, const uint8_t **start)
{
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

int sdb__row_decode(const void *p, size_t len, sdb__row *out)
{
    rd r = {p, (const uint8_t *)p + len};
    if (len < 1 + sizeof(sdb__fixed) || r.p[0] != 1) return SDB_ECORRUPT;
    memcpy(&out->fx, r.p + 1, sizeof out->fx);
    r.p += 1 + sizeof out->fx;
    sdb__str *s16[] = {&out->id, &out->trace_id, &out->observation_id,
                       &out->session_id, &out->dataset_run_id, &out->config_id};
    for (size_t i = 0; i < 6; i++)
        if (get16(&r, s16[i])) return SDB_ECORRUPT;
    if (get32(&r, &out->comment) || get32(&r, &out->metadata)) return SDB_ECORRUPT;
    if (skip_list(&r, 1, &out->n_tags, &out->tags)) return SDB_ECORRUPT;
    if (skip_list(&r, 2, &out->n_props, &out->props)) return SDB_ECORRUPT;
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
            s->len = n == ABSENT16 ? 0 : n;
            return p + 2 + s->len;
        }
        p += 2 + (n == ABSENT16 ? 0 : n);
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
