/* Row records of version 4 (engine/row.c): tags and properties kept as
 * dictionary ids, given back by sdb__row_get and sdb__rows_next as the
 * version 3 record of the same score, byte for byte. Random scores (tags
 * and values empty, with NUL bytes, long, not UTF-8; ids mixed with
 * text), version 3 and 4 records in one store and one block run, deletes
 * and purges, the pending block, and ingest's cap on the ids it makes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "scoredb.h"
#include "internal.h" /* the row store and dictionaries driven directly */
#include "xorshift.h"

#define T0 1767225600000ll /* 2026-01-01 */

static char dir[64];
static sdb_store *s;
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/sdb_row_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {0};
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
}

static void teardown(void)
{
    sdb_store_close(s);
    sdb__row_id_cap = SDB__ROW_ID_CAP;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(row, .init = setup, .fini = teardown);

/* ------------------------------------------------ random scores, direct */

enum { N_REC = 1500, MAX_L = 9, VOCAB = 40 };

typedef struct rscore {
    sdb__fixed fx;
    sdb__score sc;
    sdb__str list[2 * MAX_L + MAX_L];
    uint32_t ids[2 * MAX_L + MAX_L];
    char bytes[2 * MAX_L + MAX_L][300];
    char id[40];
    int v4; /* put with sdb__row_put_v4 */
} rscore;

static rscore recs[N_REC + 1];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* A random string: empty, a word of a small vocabulary (ids repeat), NUL
 * bytes and bytes past 0x7F, or long (up to 299 bytes). */
static uint32_t rand_str(char *b)
{
    uint32_t kind = (uint32_t)(xorshift64(&rng) % 6), n = 0;
    if (kind == 0) return 0;
    if (kind <= 2) return (uint32_t)snprintf(b, 300, "w%u", (unsigned)(xorshift64(&rng) % VOCAB));
    n = kind == 5 ? 100 + (uint32_t)(xorshift64(&rng) % 200) : 1 + (uint32_t)(xorshift64(&rng) % 12);
    for (uint32_t i = 0; i < n; i++) b[i] = (char)(xorshift64(&rng) % 4 == 0 ? 0 : xorshift64(&rng));
    return n;
}

static void make_score(uint64_t ref, rscore *r)
{
    memset(r, 0, sizeof *r);
    r->fx.ts = T0 + (int64_t)ref;
    r->fx.ingested = T0;
    r->fx.value = (double)ref / 8;
    r->fx.ref = ref;
    r->fx.name = 1 + (uint32_t)(ref % 3);
    r->fx.dims[0] = (uint32_t)(ref % 2);
    /* Ids raw or packed (a UUID), and strings before and after the lists
     * (version 4 moves the lists before observation_id ... metadata). */
    if (ref % 3)
        snprintf(r->id, sizeof r->id, "id-%llu", (unsigned long long)ref);
    else
        snprintf(r->id, sizeof r->id, "%08llx-1111-4222-8333-444455556666", (unsigned long long)ref);
    r->sc.id = (sdb__str){r->id, (uint32_t)strlen(r->id)};
    if (ref % 2) r->sc.trace_id = (sdb__str){"0123456789abcdef0123456789abcdef", 32};
    if (ref % 4 == 1) r->sc.observation_id = (sdb__str){"obs", 3};
    if (ref % 3 == 1) r->sc.comment = (sdb__str){"a\0comment", 10};
    if (ref % 5 == 2) r->sc.metadata = (sdb__str){"{\"k\":1}", 7};
    r->sc.n_tags = (uint32_t)(xorshift64(&rng) % (MAX_L + 1));
    r->sc.n_props = (uint32_t)(xorshift64(&rng) % (MAX_L + 1));
    if (ref % 7 == 0) r->sc.n_tags = r->sc.n_props = 0; /* stays version 3 */
    uint32_t n = r->sc.n_tags + 2 * r->sc.n_props;
    for (uint32_t i = 0; i < n; i++) {
        /* Keys distinct within a score, as ingest requires. */
        uint32_t len = rand_str(r->bytes[i]);
        if (i >= r->sc.n_tags && (i - r->sc.n_tags) % 2 == 0)
            len = (uint32_t)snprintf(r->bytes[i], 300, "k%u", (unsigned)(i - r->sc.n_tags) / 2);
        r->list[i] = (sdb__str){r->bytes[i], len};
    }
    r->sc.tags = r->list;
    r->sc.props = r->list + r->sc.n_tags;
    r->v4 = ref % 5 != 0; /* every fifth record is put as version 3 */
}

/* Ids for a score's lists: made in the txn for most strings, 0 (text kept)
 * for a random few, as past the cap. */
static void give_ids(sdb__txn *t, rscore *r)
{
    for (uint32_t i = 0; i < r->sc.n_tags + 2 * r->sc.n_props; i++) {
        int dict = i < r->sc.n_tags ? SDB_DICT_TAG
                   : (i - r->sc.n_tags) % 2 ? SDB_DICT_PROP : SDB_DICT_PKEY;
        r->ids[i] = 0;
        if (xorshift64(&rng) % 4 == 0) continue;
        cr_assert_eq(sdb__dict_id(t, 0, dict, r->list[i].p, r->list[i].len, 1, &r->ids[i]), SDB_OK);
    }
}

static uint64_t put_lo, put_hi; /* refs (put_lo, put_hi] for put_txn */

static int put_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    sdb__buf b = {0};
    for (uint64_t ref = put_lo + 1; ref <= put_hi; ref++) {
        rscore *r = &recs[ref];
        if (r->v4) give_ids(t, r);
        cr_assert_eq(sdb__row_encode_ids(&r->fx, &r->sc, r->v4 ? r->ids : NULL, &b), SDB_OK);
        int rc = r->v4 ? sdb__row_put_v4(t, 0, ref, b.p, b.len) : sdb__row_put(t, 0, ref, b.p, b.len);
        cr_assert_eq(rc, SDB_OK);
    }
    sdb__buf_free(&b);
    return SDB_OK;
}

static uint8_t live[N_REC + 1];

/* v is the record of ref: it must be the version 3 record of its score,
 * byte for byte, and decode to the score's text. */
static void check_rec(uint64_t ref, sdb__val v)
{
    rscore *r = &recs[ref];
    sdb__buf want = {0};
    cr_assert_eq(sdb__row_encode(&r->fx, &r->sc, 0, &want), SDB_OK);
    cr_assert_eq(v.len, want.len, "ref %llu: %zu bytes, %zu expected", (unsigned long long)ref,
                 v.len, want.len);
    cr_assert_eq(memcmp(v.p, want.p, want.len), 0, "ref %llu", (unsigned long long)ref);
    sdb__buf_free(&want);
    sdb__row row;
    cr_assert_eq(sdb__row_decode(v.p, v.len, &row), SDB_OK);
    cr_assert_eq(row.n_tags, r->sc.n_tags);
    cr_assert_eq(row.n_props, r->sc.n_props);
    sdb__str a, b;
    for (uint32_t i = 0; i < row.n_tags; i++) {
        cr_assert(sdb__row_tag(&row, i, &a));
        cr_assert(a.len == r->sc.tags[i].len && memcmp(a.p, r->sc.tags[i].p, a.len) == 0,
                  "ref %llu tag %u", (unsigned long long)ref, i);
    }
    for (uint32_t i = 0; i < row.n_props; i++) {
        cr_assert(sdb__row_prop(&row, i, &a, &b));
        cr_assert(a.len == r->sc.props[2 * i].len && memcmp(a.p, r->sc.props[2 * i].p, a.len) == 0);
        cr_assert(b.len == r->sc.props[2 * i + 1].len &&
                  memcmp(b.p, r->sc.props[2 * i + 1].p, b.len) == 0,
                  "ref %llu value %u", (unsigned long long)ref, i);
    }
}

static void check_all(sdb__txn *t)
{
    for (uint64_t ref = 1; ref <= put_hi; ref++) {
        sdb__val v;
        int rc = sdb__row_get(t, 0, ref, &v);
        cr_assert_eq(rc, live[ref] ? SDB_OK : SDB_ENOTFOUND, "ref %llu", (unsigned long long)ref);
        if (rc == SDB_OK) check_rec(ref, v);
    }
    for (int backward = 0; backward < 2; backward++) {
        sdb__rowit *it;
        cr_assert_eq(sdb__rows_open(t, 0, backward ? UINT64_MAX : 0, backward, &it), SDB_OK);
        uint64_t ref, n = 0, prev = backward ? UINT64_MAX : 0;
        sdb__val v;
        while (sdb__rows_next(it, &ref, &v) == SDB_OK) {
            cr_assert(backward ? ref < prev : ref > prev);
            cr_assert(live[ref], "ref %llu", (unsigned long long)ref);
            check_rec(ref, v);
            prev = ref;
            n++;
        }
        sdb__rows_close(it);
        uint64_t want = 0;
        for (uint64_t i = 1; i <= put_hi; i++) want += live[i];
        cr_assert_eq(n, want);
    }
}

static int check_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    check_all(t);
    return SDB_OK;
}

/* Puts and, in the same txn, reads of the pending block and of blocks
 * still with the compressor. */
static int put_check_txn(sdb__txn *t, void *arg)
{
    put_txn(t, arg);
    check_all(t);
    return SDB_OK;
}

static int del_txn(sdb__txn *t, void *arg)
{
    (void)arg;
    for (uint64_t ref = 3; ref <= put_hi; ref += 1 + ref % 11) {
        cr_assert_eq(sdb__row_del(t, 0, ref), SDB_OK);
        live[ref] = 0;
    }
    return SDB_OK;
}

static int purge_txn(sdb__txn *t, void *arg)
{
    return sdb__rows_purge(t, 1000, (int *)arg);
}

Test(row, version_4_records_read_back_as_their_version_3_record_through_every_path)
{
    for (uint64_t ref = 1; ref <= N_REC; ref++) make_score(ref, &recs[ref]);
    memset(live, 1, sizeof live);
    /* Three txns: version 3 and 4 records in one store, the last read in
     * the txn that wrote it. */
    put_lo = 0, put_hi = 600;
    cr_assert_eq(sdb__write(s, put_txn, NULL), SDB_OK);
    put_lo = 600, put_hi = 1000;
    cr_assert_eq(sdb__write(s, put_check_txn, NULL), SDB_OK);
    put_lo = 1000, put_hi = N_REC;
    cr_assert_eq(sdb__write(s, put_txn, NULL), SDB_OK);
    cr_assert_eq(sdb__write(s, check_txn, NULL), SDB_OK);
    cr_assert_eq(sdb__write(s, del_txn, NULL), SDB_OK);
    cr_assert_eq(sdb__write(s, check_txn, NULL), SDB_OK);
    int left = 1;
    while (left) cr_assert_eq(sdb__write(s, purge_txn, &left), SDB_OK);
    sdb__txn *t;
    cr_assert_eq(sdb__txn_begin(s, 0, &t), SDB_OK);
    check_all(t);
    sdb__txn_abort(t);
}

/* A version 4 record is shorter than its version 3 record when it has
 * ids, and a damaged one (an id the dictionary lacks, a length past the
 * end) is SDB_ECORRUPT, never read past. */
static int damaged_txn(sdb__txn *t, void *arg)
{
    int *out = arg;
    rscore r;
    make_score(8, &r);
    r.sc.n_tags = 2;
    r.sc.n_props = 0;
    r.list[0] = (sdb__str){"alpha", 5};
    r.list[1] = (sdb__str){"", 0};
    cr_assert_eq(sdb__dict_id(t, 0, SDB_DICT_TAG, "alpha", 5, 1, &r.ids[0]), SDB_OK);
    r.ids[1] = 0;
    sdb__buf v3 = {0}, v4 = {0};
    cr_assert_eq(sdb__row_encode(&r.fx, &r.sc, 0, &v3), SDB_OK);
    cr_assert_eq(sdb__row_encode_ids(&r.fx, &r.sc, r.ids, &v4), SDB_OK);
    cr_assert_eq(((uint8_t *)v4.p)[0], 4);
    /* The count: u16 against a 1-byte varint; alpha: a str16 of 7 bytes
     * against a 1-byte id; "": a str16 of 2 against a 1-byte varint. */
    cr_assert_eq(v4.len, v3.len - 1 - 6 - 1, "%zu %zu", v4.len, v3.len);
    /* The tag list is the end of this record: n, id 1, then "" (varint 0). */
    uint8_t *p = (uint8_t *)v4.p;
    cr_assert_eq(p[v4.len - 3], 2);
    cr_assert_eq(p[v4.len - 2], (r.ids[0] << 1 | 1));
    cr_assert_eq(p[v4.len - 1], 0);
    uint64_t ref = 8;
    const struct { size_t at; uint8_t b; size_t cut; } bad[] = {
        {v4.len - 2, 99 << 1 | 1, 0}, /* an id the dictionary lacks */
        {v4.len - 1, 9 << 1, 0},      /* text longer than the record */
        {v4.len - 3, 3, 0},           /* a count past the items */
        {v4.len - 2, 0x81, 0},        /* a varint that runs off the end */
        {0, 4, 1},                    /* the record cut short */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sdb__buf d = {0};
        cr_assert_eq(sdb__buf_add(&d, v4.p, v4.len), 0);
        ((uint8_t *)d.p)[bad[i].at] = bad[i].b;
        d.len -= bad[i].cut;
        cr_assert_eq(sdb__row_put_v4(t, 0, ref, d.p, d.len), SDB_OK);
        sdb__val v;
        int rc = sdb__row_get(t, 0, ref, &v);
        if (rc == SDB_OK) {
            sdb__row row;
            rc = sdb__row_decode(v.p, v.len, &row);
        }
        cr_assert_eq(rc, SDB_ECORRUPT, "case %zu", i);
        ref++;
        sdb__buf_free(&d);
    }
    cr_assert_eq(sdb__row_put_v4(t, 0, ref, v4.p, v4.len), SDB_OK);
    sdb__val v;
    cr_assert_eq(sdb__row_get(t, 0, ref, &v), SDB_OK);
    cr_assert_eq(v.len, v3.len);
    cr_assert_eq(memcmp((const uint8_t *)v.p + 1, v3.p + 1, v3.len - 1), 0);
    sdb__buf_free(&v3);
    sdb__buf_free(&v4);
    *out = 1;
    return SDB_OK;
}

Test(row, a_version_4_record_is_shorter_and_a_damaged_one_is_corrupt)
{
    int done = 0;
    cr_assert_eq(sdb__write(s, damaged_txn, &done), SDB_OK);
    cr_assert(done);
}

/* -------------------------------------------------- through ingest */

static void ingest(const char *json)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    const char *p = json;
    while (*p) {
        const char *e = strchr(p, '\n');
        cr_assert_eq(sdb_batch_add_json(b, p, (size_t)(e - p), err, sizeof err), SDB_OK, "%s", err);
        p = e + 1;
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
}

typedef struct seen {
    char tags[64][64];
    uint32_t n;
} seen;

static int read_all_txn(sdb__txn *t, void *arg)
{
    seen *sn = arg;
    sdb__rowit *it;
    cr_assert_eq(sdb__rows_open(t, 0, 0, 0, &it), SDB_OK);
    uint64_t ref;
    sdb__val v;
    sn->n = 0;
    while (sdb__rows_next(it, &ref, &v) == SDB_OK) {
        sdb__row row;
        cr_assert_eq(sdb__row_decode(v.p, v.len, &row), SDB_OK);
        sdb__str a, b;
        char *o = sn->tags[sn->n++];
        o[0] = 0;
        for (uint32_t i = 0; sdb__row_tag(&row, i, &a); i++)
            snprintf(o + strlen(o), 64 - strlen(o), "%.*s,", (int)a.len, a.p);
        for (uint32_t i = 0; sdb__row_prop(&row, i, &a, &b); i++)
            snprintf(o + strlen(o), 64 - strlen(o), "%.*s=%.*s;", (int)a.len, a.p, (int)b.len, b.p);
    }
    sdb__rows_close(it);
    return SDB_OK;
}

static int dict_max_txn(sdb__txn *t, void *arg)
{
    uint32_t *m = arg;
    m[0] = sdb__dict_max(t, 0, SDB_DICT_TAG);
    m[1] = sdb__dict_max(t, 0, SDB_DICT_PKEY);
    return SDB_OK;
}

/* With a cap of 3 ids a dictionary, ingest gives the first three tags and
 * keys ids and keeps the text of the rest; every score reads back as sent,
 * through replacement by id too. */
Test(row, ingest_keeps_text_past_the_id_cap_and_every_score_reads_back)
{
    sdb__row_id_cap = 3;
    char json[8192] = "";
    for (int i = 0; i < 12; i++)
        snprintf(json + strlen(json), sizeof json - strlen(json),
                 "{\"id\":\"s%d\",\"name\":\"n\",\"value\":%d,\"trace_id\":\"tr\",\"timestamp\":%lld,"
                 "\"tags\":[\"t%d\",\"\",\"t%d\"],"
                 "\"properties\":{\"k%d\":\"v%d\",\"req\":\"r%d\"}}\n",
                 i, i, (long long)(T0 + i), i % 5, i, i % 4, i % 2, i);
    ingest(json);
    uint32_t m[2];
    cr_assert_eq(sdb__write(s, dict_max_txn, m), SDB_OK);
    cr_assert_eq(m[0], 3, "tag ids made past the cap: %u", m[0]);
    cr_assert_eq(m[1], 3, "key ids made past the cap: %u", m[1]);
    /* s4 sent again with other lists: the replacement is what reads back. */
    ingest("{\"id\":\"s4\",\"name\":\"n\",\"value\":1,\"trace_id\":\"tr\",\"tags\":[\"t0\",\"new\"],"
           "\"properties\":{\"req\":\"r4b\"}}\n");
    seen sn;
    cr_assert_eq(sdb__write(s, read_all_txn, &sn), SDB_OK);
    cr_assert_eq(sn.n, 12);
    for (uint32_t j = 0, i = 0; i < 12; i++) {
        if (i == 4) continue;
        char want[64];
        snprintf(want, sizeof want, "t%u,,t%u,k%u=v%u;req=r%u;", i % 5, i, i % 4, i % 2, i);
        cr_assert_str_eq(sn.tags[j], want, "score s%u", i);
        j++;
    }
    cr_assert_str_eq(sn.tags[11], "t0,new,req=r4b;");
}
