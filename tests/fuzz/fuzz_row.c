/* Fuzz target: a row record as read back from the `rows` database
 * (engine/row.c, sdb__row_decode and the tag/property walkers). The bytes
 * come from disk, so anything malformed must be SDB_ECORRUPT, never a read
 * outside the record.
 *
 * Invariants: every string a decoded row hands out lies inside the input;
 * the lookups (has_tag, prop_get) agree with iteration; re-encoding the
 * decoded row and decoding that gives the same fields.
 */
#include "fuzz.h"
#include "internal.h"

static const uint8_t *lo, *hi;
static const sdb__row *cur; /* packed id and trace_id render into its text_ */

static void inside(const sdb__str *s)
{
    if (!s->p) {
        FUZZ_CHECK(s->len == 0);
        return;
    }
    const uint8_t *p = (const uint8_t *)s->p;
    if (cur)
        for (int k = 0; k < 2; k++)
            if (s->p == cur->text_[k]) {
                FUZZ_CHECK(s->len < sizeof cur->text_[k] && s->p[s->len] == 0);
                return;
            }
    FUZZ_CHECK(p >= lo && p <= hi && (size_t)(hi - p) >= s->len);
}

static bool same(const sdb__str *a, const sdb__str *b)
{
    if (!a->p || !b->p) return !a->p == !b->p;
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sdb__row r;
    lo = data;
    hi = data + size;
    int rc = sdb__row_decode(data, size, &r);
    cur = &r;
    FUZZ_CHECK(rc == SDB_OK || rc == SDB_ECORRUPT);
    if (rc) return 0;

    const sdb__str *fields[] = {&r.id, &r.trace_id, &r.observation_id, &r.session_id,
                                &r.dataset_run_id, &r.config_id, &r.comment, &r.metadata};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) inside(fields[i]);

    /* Rebuild a score from the view, for the re-encoding check below. */
    sdb__score sc;
    memset(&sc, 0, sizeof sc);
    sc.id = r.id;
    sc.trace_id = r.trace_id;
    sc.observation_id = r.observation_id;
    sc.session_id = r.session_id;
    sc.dataset_run_id = r.dataset_run_id;
    sc.config_id = r.config_id;
    sc.comment = r.comment;
    sc.metadata = r.metadata;
    sc.n_tags = r.n_tags;
    sc.n_props = r.n_props;
    sc.tags = calloc(r.n_tags + 1, sizeof *sc.tags);
    sc.props = calloc(2 * (size_t)r.n_props + 1, sizeof *sc.props);
    FUZZ_CHECK(sc.tags && sc.props);

    sdb__str s, k, v;
    uint32_t i;
    for (i = 0; sdb__row_tag(&r, i, &s); i++) {
        inside(&s);
        FUZZ_CHECK(sdb__row_has_tag(&r, s.p, s.len));
        sc.tags[i] = s;
    }
    FUZZ_CHECK(i == r.n_tags);
    for (i = 0; sdb__row_prop(&r, i, &k, &v); i++) {
        inside(&k);
        inside(&v);
        sdb__str got;
        FUZZ_CHECK(sdb__row_prop_get(&r, k.p, k.len, &got));
        inside(&got);
        sc.props[2 * i] = k;
        sc.props[2 * i + 1] = v;
    }
    FUZZ_CHECK(i == r.n_props);
    FUZZ_CHECK(!sdb__row_has_tag(&r, "\xff\xfe-no-such-tag", 14) || r.n_tags);

    sdb__buf enc = {0};
    FUZZ_CHECK(sdb__row_encode(&r.fx, &sc, 0, &enc) == SDB_OK);
    sdb__row r2;
    FUZZ_CHECK(sdb__row_decode(enc.p, enc.len, &r2) == SDB_OK);
    FUZZ_CHECK(memcmp(&r.fx, &r2.fx, sizeof r.fx) == 0);
    const sdb__str *fields2[] = {&r2.id, &r2.trace_id, &r2.observation_id, &r2.session_id,
                                 &r2.dataset_run_id, &r2.config_id, &r2.comment, &r2.metadata};
    for (size_t j = 0; j < sizeof fields / sizeof *fields; j++)
        FUZZ_CHECK(same(fields[j], fields2[j]));
    FUZZ_CHECK(r2.n_tags == r.n_tags && r2.n_props == r.n_props);
    for (i = 0; i < r.n_tags; i++) {
        sdb__row_tag(&r2, i, &s);
        FUZZ_CHECK(s.len == sc.tags[i].len && memcmp(s.p, sc.tags[i].p, s.len) == 0);
    }
    for (i = 0; i < r.n_props; i++) {
        sdb__row_prop(&r2, i, &k, &v);
        FUZZ_CHECK(k.len == sc.props[2 * i].len && memcmp(k.p, sc.props[2 * i].p, k.len) == 0);
        FUZZ_CHECK(v.len == sc.props[2 * i + 1].len &&
                   memcmp(v.p, sc.props[2 * i + 1].p, v.len) == 0);
    }
    sdb__buf_free(&enc);
    free(sc.tags);
    free(sc.props);
    return 0;
}
