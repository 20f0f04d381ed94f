/* Export (engine/export.c, server/export.c): the NDJSON export read back
 * into an empty store gives the same store (same answers to queries, same
 * ids, byte-identical re-export), CSV follows RFC 4180, the ClickHouse rows
 * match their DDL, output is streamed in bounded chunks, and the command
 * line reports usage and I/O errors with the documented exit codes. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "scoredb.h"
#include "xorshift.h"

#define T0 1767225600000ll /* 2026-01-01 */

static char err[512];

static void mkdir_tmp(char *dir)
{
    strcpy(dir, "/tmp/sdb_export_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static sdb_store *open_at(const char *dir, const char *sub)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    sdb_options o = {0};
    o.chunk_rows = 64; /* several chunks per (name, day) */
    sdb_store *s = NULL;
    cr_assert_eq(sdb_store_open(p, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    return s;
}

/* Ingest NDJSON text (one score per line) in batches of `per_batch`,
 * asserting every line is accepted. */
static void ingest_lines(sdb_store *s, const char *text, size_t per_batch, int64_t now)
{
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            cr_assert_eq(sdb_batch_add_json(b, p, len, err, sizeof err), SDB_OK,
                         "%s in %.*s", err, (int)len, p);
            if (sdb_batch_rows(b) == per_batch) {
                cr_assert_eq(sdb_store_ingest(s, 0, b, now++), SDB_OK);
                sdb_batch_clear(b);
            }
        }
        p += len + (nl ? 1 : 0);
    }
    if (sdb_batch_rows(b)) cr_assert_eq(sdb_store_ingest(s, 0, b, now), SDB_OK);
    sdb_batch_free(b);
}

/* ------------------------------------------------------- memory sink */

typedef struct mem {
    char *p;
    size_t len, cap;
    size_t calls, max_chunk;
    int fail_after; /* refuse the call after this many (-1: never) */
} mem;

static int to_mem(void *ctx, const void *p, size_t len)
{
    mem *m = ctx;
    if (m->fail_after >= 0 && m->calls == (size_t)m->fail_after) return -1;
    m->calls++;
    if (len > m->max_chunk) m->max_chunk = len;
    if (m->len + len + 1 > m->cap) {
        m->cap = (m->len + len + 1) * 2;
        m->p = realloc(m->p, m->cap);
        cr_assert_not_null(m->p);
    }
    memcpy(m->p + m->len, p, len);
    m->len += len;
    m->p[m->len] = 0;
    return 0;
}

static char *export_text(sdb_store *s, int format, uint64_t *rows, mem *stats)
{
    mem m = {NULL, 0, 0, 0, 0, -1};
    uint64_t n;
    cr_assert_eq(sdb_store_export(s, 0, format, to_mem, &m, &n), SDB_OK);
    if (rows) *rows = n;
    if (stats) *stats = m;
    return m.p ? m.p : strdup("");
}

/* An answer without its "as_of", which is the time it was asked. */
static char *ask(sdb_store *s, const char *q)
{
    char *out = NULL;
    cr_assert_eq(sdb_query_json(s, 0, q, strlen(q), &out, err, sizeof err), SDB_OK, "%s: %s", q,
                 err);
    char *a = strstr(out, "\"as_of\":\"");
    if (a) {
        char *e = strchr(a + 9, '"');
        memmove(a, e + 1, strlen(e + 1) + 1);
    }
    return out;
}

/* -------------------------------------------------------- a random store */

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) { return (uint32_t)(xorshift64(&rng) % n); }

static void add(char **text, size_t *len, size_t *cap, const char *line)
{
    size_t n = strlen(line);
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *text = realloc(*text, *cap);
        cr_assert_not_null(*text);
    }
    memcpy(*text + *len, line, n);
    *len += n;
    (*text)[(*len)++] = '\n';
    (*text)[*len] = 0;
}

/* NDJSON of `n` scores: every data type, every source, dimensions present
 * and absent, tags, properties, metadata, awkward text, generated and
 * client ids, and client ids sent again (replacements). */
static char *random_scores(int n)
{
    static const char *const names[] = {"faithfulness", "helpfulness", "thumbs", "grade", "latency"};
    static const char *const models[] = {"gpt-4o", "claude", "llama,3", NULL};
    static const char *const pv[] = {"v1", "v2", "v3"};
    static const char *const envs[] = {"production", "staging", NULL};
    static const char *const labels[] = {"pass", "fail", "needs \\\"review\\\"", "n/a"};
    static const char *const srcs[] = {"API", "EVAL", "ANNOTATION"};
    static const char *const comments[] = {
        "plain", "comma, inside", "a \\\"quote\\\"", "two\\nlines", "tab\\there", "caf\\u00e9 \\u2603"};
    char *text = NULL;
    size_t len = 0, cap = 0;
    char line[2048];
    for (int i = 0; i < n; i++) {
        int nm = (int)rnd(5);
        char value[64], id[64] = "", trace[64] = "", extra[1024] = "";
        if (nm == 2)
            snprintf(value, sizeof value, "%s", rnd(2) ? "true" : "false");
        else if (nm == 3)
            snprintf(value, sizeof value, "\"%s\"", labels[rnd(4)]);
        else if (nm == 4)
            snprintf(value, sizeof value, "%d", (int)rnd(5000) - 100);
        else
            snprintf(value, sizeof value, "%.6g", rnd(1000001) / 1e6);
        /* About half the scores carry a client id, from a pool small enough
         * that many are sent again: a replacement, possibly with another
         * name or type. */
        if (rnd(2)) snprintf(id, sizeof id, "\"id\":\"s-%u\",", rnd(n / 3 + 1));
        int att = (int)rnd(4);
        if (att != 1) snprintf(trace, sizeof trace, "\"trace_id\":\"tr-%u\",", rnd(n / 4 + 1));
        size_t e = 0;
#define X(...) e += (size_t)snprintf(extra + e, sizeof extra - e, __VA_ARGS__)
        if (att == 1) X(",\"session_id\":\"se-%u\"", rnd(20));
        if (att == 2) X(",\"dataset_run_id\":\"run-%u\"", rnd(5));
        if (att == 3) X(",\"observation_id\":\"ob-%u\",\"session_id\":\"se-%u\"", rnd(100), rnd(20));
        const char *m = models[rnd(4)];
        if (m) X(",\"model\":\"%s\"", m);
        if (rnd(3)) X(",\"prompt_version\":\"%s\"", pv[rnd(3)]);
        const char *env = envs[rnd(3)];
        if (env) X(",\"environment\":\"%s\"", env);
        if (rnd(4) == 0) X(",\"trace_name\":\"chat\",\"user_id\":\"u%u\"", rnd(7));
        if (rnd(5) == 0) X(",\"author\":\"ann%u\",\"config_id\":\"cfg-%u\"", rnd(3), rnd(2));
        if (rnd(3) == 0) X(",\"comment\":\"%s\"", comments[rnd(6)]);
        if (rnd(2)) X(",\"source\":\"%s\"", srcs[rnd(3)]);
        if (rnd(4) == 0) {
            X(",\"tags\":[]");
        } else if (rnd(3)) {
            X(",\"tags\":[");
            int nt = (int)rnd(3) + 1;
            for (int t = 0; t < nt; t++) X("%s\"tag%u\"", t ? "," : "", rnd(4));
            X("]");
        }
        if (rnd(2)) X(",\"properties\":{\"feature\":\"f%u\",\"lang\":\"%s\"}", rnd(3),
                      rnd(2) ? "en" : "de");
        if (rnd(3) == 0)
            X(",\"metadata\":{\"run\":%u,\"nested\":{\"k\":[1,2.5,\"x\",null,true]},\"s\":\"a,\\\"b\\\"\"}",
              rnd(9));
        if (rnd(10) == 0) X(",\"data_type\":\"%s\"", nm == 2 ? "BOOLEAN" : nm == 3 ? "CATEGORICAL" : "NUMERIC");
#undef X
        /* Times across three weeks, ms precision; one before 1970. */
        long long ts = i == 7 ? -86400123ll : T0 + (long long)rnd(21u * 86400u) * 1000 + rnd(1000);
        snprintf(line, sizeof line, "{%s%s\"name\":\"%s\",\"value\":%s,\"timestamp\":%lld%s}", id,
                 trace, names[nm], value, ts, extra);
        add(&text, &len, &cap, line);
    }
    return text;
}

/* ------------------------------------------------------------ round trip */

static const char *const round_trip_queries[] = {
    "{}",
    "{\"group_by\":[\"name\"],\"stats\":[\"count\",\"avg\",\"min\",\"max\",\"sum\",\"stddev\",\"traces\"]}",
    "{\"group_by\":[\"name\",\"model\"],\"stats\":[\"count\",\"avg\",\"sum\"]}",
    "{\"group_by\":[\"environment\",\"prompt_version\"],\"stats\":[\"count\",\"avg\"]}",
    "{\"group_by\":[\"trace_name\",\"user_id\",\"author\"]}",
    "{\"group_by\":[\"source\"]}",
    "{\"group_by\":[\"data_type\"]}",
    "{\"group_by\":[\"properties.feature\"],\"stats\":[\"count\",\"avg\",\"traces\"]}",
    "{\"name\":\"grade\",\"group_by\":[\"model\"]}",
    "{\"name\":\"thumbs\",\"group_by\":[\"prompt_version\"],\"stats\":[\"count\",\"avg\"]}",
    "{\"names\":[\"faithfulness\",\"helpfulness\"],\"histogram\":{\"bins\":10,\"min\":0,\"max\":1},"
    "\"percentiles\":[1,50,90,99]}",
    "{\"name\":\"latency\",\"histogram\":{\"bins\":7},\"percentiles\":[25,75]}",
    "{\"name\":\"faithfulness\",\"from\":\"2026-01-03T00:00:00Z\",\"to\":\"2026-01-17T00:00:00Z\","
    "\"interval\":\"1d\",\"stats\":[\"count\",\"avg\",\"min\",\"max\"]}",
    "{\"interval\":\"1w\",\"group_by\":[\"name\"],\"stats\":[\"count\"]}",
    "{\"where\":{\"tags\":[\"tag1\"]},\"group_by\":[\"name\"]}",
    "{\"where\":{\"tags\":[\"tag0\",\"tag2\"],\"properties\":{\"lang\":[\"de\"]}},\"stats\":[\"count\",\"sum\"]}",
    "{\"where\":{\"value\":{\"gte\":0.2,\"lt\":0.6},\"source\":[\"EVAL\",\"ANNOTATION\"]},\"group_by\":[\"name\"]}",
    "{\"where\":{\"model\":[\"llama,3\"],\"environment\":[\"default\"],\"data_type\":[\"NUMERIC\"]},"
    "\"stats\":[\"count\",\"avg\",\"stddev\",\"traces\"]}",
    "{\"to\":0,\"stats\":[\"count\"]}",
};

Test(export, ndjson_round_trip_rebuilds_the_same_store)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *a = open_at(dir, "a");
    char *text = random_scores(1500);
    ingest_lines(a, text, 97, T0);
    /* Deleted scores are not exported. */
    ingest_lines(a,
                 "{\"id\":\"gone-1\",\"name\":\"faithfulness\",\"value\":0.3,\"trace_id\":\"t\"}\n"
                 "{\"id\":\"gone-2\",\"name\":\"grade\",\"value\":\"pass\",\"trace_id\":\"t\"}\n",
                 2, T0);
    cr_assert_eq(sdb_score_delete(a, 0, "gone-1"), SDB_OK);
    cr_assert_eq(sdb_score_delete(a, 0, "gone-2"), SDB_OK);
    cr_assert_eq(sdb_store_fold(a, sdb_now_ms(), NULL), SDB_OK);

    uint64_t rows;
    mem st;
    char *out = export_text(a, SDB_EXPORT_NDJSON, &rows, &st);
    /* Replacements leave one score per client id: fewer rows than lines. */
    cr_assert_lt(rows, 1500);
    cr_assert_gt(rows, 800);
    size_t lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_assert_eq(lines, rows);
    cr_assert_null(strstr(out, "\"created_at\""), "the NDJSON export is ingest-shaped");
    cr_assert_null(strstr(out, "gone-"));
    /* Streamed: many sink calls, none much over the 64 KiB flush size. */
    cr_assert_gt(st.calls, 3);
    cr_assert_lt(st.max_chunk, 64 * 1024 + 4096);

    sdb_store *b = open_at(dir, "b");
    ingest_lines(b, out, 500, sdb_now_ms());
    cr_assert_eq(sdb_store_fold(b, sdb_now_ms(), NULL), SDB_OK);

    /* Same answers to every query. */
    for (size_t i = 0; i < sizeof round_trip_queries / sizeof *round_trip_queries; i++) {
        char *qa = ask(a, round_trip_queries[i]), *qb = ask(b, round_trip_queries[i]);
        cr_assert(strstr(qa, "\"groups\":[{") != NULL, "%s matches something", round_trip_queries[i]);
        cr_assert_str_eq(qa, qb, "query %s", round_trip_queries[i]);
        free(qa);
        free(qb);
    }
    char *na, *nb;
    cr_assert_eq(sdb_names_json(a, 0, &na), SDB_OK);
    cr_assert_eq(sdb_names_json(b, 0, &nb), SDB_OK);
    cr_assert_str_eq(na, nb);
    free(na);
    free(nb);

    /* Same ids and every field: the copy exports byte for byte the same,
     * and a client id finds the same score in both. */
    char *out2 = export_text(b, SDB_EXPORT_NDJSON, NULL, NULL);
    cr_assert_str_eq(out, out2);
    int checked = 0;
    for (const char *p = out; (p = strstr(p, "{\"id\":\"")) != NULL; p++) {
        char id[64];
        size_t k = 0;
        for (const char *q = p + 7; *q != '"' && k < sizeof id - 1; q++) id[k++] = *q;
        id[k] = 0;
        char *ga, *gb;
        cr_assert_eq(sdb_score_get_json(a, 0, id, &ga), SDB_OK, "%s", id);
        cr_assert_eq(sdb_score_get_json(b, 0, id, &gb), SDB_OK, "%s", id);
        *strstr(ga, "\"created_at\"") = 0; /* the ingest time is the copy's own */
        *strstr(gb, "\"created_at\"") = 0;
        cr_assert_str_eq(ga, gb);
        free(ga);
        free(gb);
        checked++;
    }
    cr_assert_eq(checked, rows);
    char *gone;
    cr_assert_eq(sdb_score_get_json(b, 0, "gone-1", &gone), SDB_ENOTFOUND);

    free(text);
    free(out);
    free(out2);
    sdb_store_close(a);
    sdb_store_close(b);
    rm_dir(dir);
}

Test(export, empty_store_exports_headers_only)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "db");
    uint64_t rows = 9;
    char *nd = export_text(s, SDB_EXPORT_NDJSON, &rows, NULL);
    cr_assert_eq(rows, 0);
    cr_assert_str_eq(nd, "");
    char *csv = export_text(s, SDB_EXPORT_CSV, &rows, NULL);
    cr_assert_eq(rows, 0);
    cr_assert_str_eq(csv, "id,name,value,string_value,data_type,timestamp,source,trace_id,"
                          "observation_id,session_id,dataset_run_id,environment,model,"
                          "prompt_version,trace_name,user_id,author,config_id,comment,tags,"
                          "properties,metadata\r\n");
    free(nd);
    free(csv);
    sdb_store_close(s);
    rm_dir(dir);
}

/* ------------------------------------------------------------------ CSV */

/* Split RFC 4180 text into records of fields (a reference reader: quoted
 * fields, doubled quotes, CRLF ends). Returns the number of records;
 * fields[r][f] are malloc'd. */
#define MAXF 32
static size_t csv_parse(const char *p, char *fields[][MAXF], size_t max_rec, size_t *nf)
{
    size_t r = 0;
    while (*p && r < max_rec) {
        size_t f = 0;
        for (;;) {
            char *cell = malloc(strlen(p) + 1);
            size_t n = 0;
            if (*p == '"') {
                p++;
                for (;;) {
                    cr_assert(*p, "unterminated quoted field");
                    if (*p == '"' && p[1] == '"') {
                        cell[n++] = '"';
                        p += 2;
                    } else if (*p == '"') {
                        p++;
                        break;
                    } else {
                        cell[n++] = *p++;
                    }
                }
            } else {
                while (*p && *p != ',' && *p != '\r' && *p != '\n') {
                    cr_assert_neq(*p, '"', "a quote in an unquoted field");
                    cell[n++] = *p++;
                }
            }
            cell[n] = 0;
            cr_assert_lt(f, MAXF);
            fields[r][f++] = cell;
            if (*p == ',') {
                p++;
                continue;
            }
            cr_assert(p[0] == '\r' && p[1] == '\n', "records end in CRLF");
            p += 2;
            break;
        }
        nf[r++] = f;
    }
    return r;
}

Test(export, csv_quotes_commas_quotes_and_newlines)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "db");
    const char *lines =
        "{\"id\":\"a,1\",\"name\":\"q\\\"name\",\"value\":0.1,\"trace_id\":\"t\",\"timestamp\":"
        "\"2026-01-31T07:05:32.780Z\",\"comment\":\"one, \\\"two\\\"\\nthree\\r\\nfour\","
        "\"tags\":[\"x,y\",\"z\\\"\"],\"properties\":{\"k\":\"v,w\"},\"metadata\":{\"a\":\"b\"},"
        "\"model\":\"m\\nn\",\"source\":\"ANNOTATION\",\"config_id\":\"\"}\n"
        "{\"id\":\"b\",\"name\":\"label\",\"value\":\"ok, fine\",\"session_id\":\"s\","
        "\"timestamp\":0}\n"
        "{\"id\":\"c\",\"name\":\"flag\",\"value\":false,\"dataset_run_id\":\"d\","
        "\"timestamp\":1}\n";
    ingest_lines(s, lines, 10, T0);
    char *csv = export_text(s, SDB_EXPORT_CSV, NULL, NULL);
    char *f[8][MAXF];
    size_t nf[8];
    size_t nr = csv_parse(csv, f, 8, nf);
    cr_assert_eq(nr, 4, "%s", csv);
    for (size_t r = 0; r < nr; r++) cr_assert_eq(nf[r], 22, "record %zu", r);
    cr_assert_str_eq(f[0][0], "id");
    cr_assert_str_eq(f[0][21], "metadata");
    /* Record 1: every awkward cell comes back exactly. */
    cr_assert_str_eq(f[1][0], "a,1");
    cr_assert_str_eq(f[1][1], "q\"name");
    cr_assert_str_eq(f[1][2], "0.1");
    cr_assert_str_eq(f[1][3], "");
    cr_assert_str_eq(f[1][4], "NUMERIC");
    cr_assert_str_eq(f[1][5], "2026-01-31T07:05:32.780Z");
    cr_assert_str_eq(f[1][6], "ANNOTATION");
    cr_assert_str_eq(f[1][7], "t");
    cr_assert_str_eq(f[1][11], "default");
    cr_assert_str_eq(f[1][12], "m\nn");
    cr_assert_str_eq(f[1][17], "");
    cr_assert_str_eq(f[1][18], "one, \"two\"\nthree\r\nfour");
    cr_assert_str_eq(f[1][19], "[\"x,y\",\"z\\\"\"]");
    cr_assert_str_eq(f[1][20], "{\"k\":\"v,w\"}");
    cr_assert_str_eq(f[1][21], "{\"a\":\"b\"}");
    /* Record 2: a categorical score has its label and no number. */
    cr_assert_str_eq(f[2][0], "b");
    cr_assert_str_eq(f[2][2], "");
    cr_assert_str_eq(f[2][3], "ok, fine");
    cr_assert_str_eq(f[2][4], "CATEGORICAL");
    cr_assert_str_eq(f[2][5], "1970-01-01T00:00:00.000Z");
    cr_assert_str_eq(f[2][6], "API");
    cr_assert_str_eq(f[2][7], "");
    cr_assert_str_eq(f[2][9], "s");
    cr_assert_str_eq(f[2][19], "[]");
    cr_assert_str_eq(f[2][20], "{}");
    cr_assert_str_eq(f[2][21], "");
    /* Record 3: a boolean is a number. */
    cr_assert_str_eq(f[3][2], "0");
    cr_assert_str_eq(f[3][4], "BOOLEAN");
    cr_assert_str_eq(f[3][5], "1970-01-01T00:00:00.001Z");
    cr_assert_str_eq(f[3][10], "d");
    for (size_t r = 0; r < nr; r++)
        for (size_t i = 0; i < nf[r]; i++) free(f[r][i]);
    free(csv);
    sdb_store_close(s);
    rm_dir(dir);
}

/* ----------------------------------------------------------- ClickHouse */

Test(export, clickhouse_ddl_names_every_column_with_its_type)
{
    char *ddl;
    cr_assert_eq(sdb_export_ddl(&ddl), SDB_OK);
    static const char *const want[] = {
        "CREATE TABLE scores\n",
        "    project        LowCardinality(String),\n",
        "    id             String,\n",
        "    name           LowCardinality(String),\n",
        "    value          Nullable(Float64),\n",
        "    string_value   LowCardinality(String),\n",
        "    data_type      Enum8('NUMERIC' = 0, 'BOOLEAN' = 1, 'CATEGORICAL' = 2),\n",
        "    timestamp      DateTime64(3, 'UTC'),\n",
        "    source         Enum8('API' = 0, 'EVAL' = 1, 'ANNOTATION' = 2),\n",
        "    trace_id       String,\n",
        "    observation_id String,\n",
        "    session_id     String,\n",
        "    dataset_run_id String,\n",
        "    environment    LowCardinality(String),\n",
        "    model          LowCardinality(String),\n",
        "    prompt_version LowCardinality(String),\n",
        "    trace_name     LowCardinality(String),\n",
        "    user_id        String,\n",
        "    author         LowCardinality(String),\n",
        "    config_id      String,\n",
        "    comment        String,\n",
        "    tags           Array(String),\n",
        "    properties     Map(String, String),\n",
        "    metadata       String,\n",
        "    created_at     DateTime64(3, 'UTC')\n",
        "ENGINE = MergeTree\n",
        "ORDER BY (project, name, timestamp);\n",
    };
    const char *at = ddl;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *p = strstr(at, want[i]);
        cr_assert_not_null(p, "DDL lacks (in order) %s\n%s", want[i], ddl);
        at = p + strlen(want[i]);
    }
    cr_assert_not_null(strstr(ddl, "INSERT INTO scores FORMAT JSONEachRow"), "says how to load");
    free(ddl);
}

Test(export, clickhouse_rows_match_the_ddl)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "db");
    ingest_lines(s,
                 "{\"id\":\"n\",\"name\":\"acc\",\"value\":0.5,\"trace_id\":\"t\",\"timestamp\":"
                 "\"2026-01-31T07:05:32.780Z\",\"tags\":[\"a\"],\"properties\":{\"k\":\"v\"},"
                 "\"metadata\":{\"x\":[1,\"y\"]}}\n"
                 "{\"id\":\"c\",\"name\":\"lbl\",\"value\":\"pass\",\"trace_id\":\"t\","
                 "\"timestamp\":\"2026-02-01T00:00:00Z\",\"source\":\"EVAL\"}\n"
                 "{\"id\":\"b\",\"name\":\"ok\",\"value\":true,\"trace_id\":\"t\","
                 "\"timestamp\":\"2026-02-01T00:00:00Z\"}\n",
                 10, T0 + 5);
    uint64_t rows;
    char *out = export_text(s, SDB_EXPORT_CLICKHOUSE, &rows, NULL);
    cr_assert_eq(rows, 3);
    char *ddl;
    cr_assert_eq(sdb_export_ddl(&ddl), SDB_OK);
    /* Every row has every DDL column, in DDL order. */
    const char *open = strstr(ddl, "(\n"), *close = strstr(ddl, "\n)\n");
    cr_assert(open && close);
    char *line = strtok(out, "\n");
    int n = 0;
    while (line) {
        const char *at = line;
        for (const char *c = open + 2; c < close;) {
            while (*c == ' ') c++;
            char key[64];
            size_t k = 0;
            while (c[k] != ' ') key[k] = c[k], k++;
            key[k] = 0;
            char want[80];
            snprintf(want, sizeof want, "\"%s\":", key);
            const char *p = strstr(at, want);
            cr_assert_not_null(p, "row %d lacks %s after the previous column: %s", n, want, line);
            at = p + strlen(want);
            c = strchr(c, '\n');
            if (!c) break;
            c++;
        }
        if (n == 0) {
            cr_assert_str_eq(line,
                             "{\"project\":\"default\",\"id\":\"n\",\"name\":\"acc\",\"value\":0.5,"
                             "\"string_value\":\"\",\"data_type\":\"NUMERIC\",\"timestamp\":"
                             "\"2026-01-31 07:05:32.780\",\"source\":\"API\",\"trace_id\":\"t\","
                             "\"observation_id\":\"\",\"session_id\":\"\",\"dataset_run_id\":\"\","
                             "\"environment\":\"default\",\"model\":\"\",\"prompt_version\":\"\","
                             "\"trace_name\":\"\",\"user_id\":\"\",\"author\":\"\",\"config_id\":\"\","
                             "\"comment\":\"\",\"tags\":[\"a\"],\"properties\":{\"k\":\"v\"},"
                             "\"metadata\":\"{\\\"x\\\":[1,\\\"y\\\"]}\",\"created_at\":"
                             "\"2026-01-01 00:00:00.005\"}");
        } else if (n == 1) {
            cr_assert_not_null(strstr(line, "\"value\":null,\"string_value\":\"pass\","
                                             "\"data_type\":\"CATEGORICAL\""));
            cr_assert_not_null(strstr(line, "\"source\":\"EVAL\""));
        } else {
            cr_assert_not_null(strstr(line, "\"value\":1,\"string_value\":\"\",\"data_type\":\"BOOLEAN\""));
        }
        n++;
        line = strtok(NULL, "\n");
    }
    cr_assert_eq(n, 3);
    free(ddl);
    free(out);
    sdb_store_close(s);
    rm_dir(dir);
}

/* ------------------------------------------------------------ the API */

Test(export, formats_parse_by_name_only)
{
    int f = -1;
    cr_assert_eq(sdb_export_format_parse("ndjson", &f), SDB_OK);
    cr_assert_eq(f, SDB_EXPORT_NDJSON);
    cr_assert_eq(sdb_export_format_parse("csv", &f), SDB_OK);
    cr_assert_eq(f, SDB_EXPORT_CSV);
    cr_assert_eq(sdb_export_format_parse("clickhouse", &f), SDB_OK);
    cr_assert_eq(f, SDB_EXPORT_CLICKHOUSE);
    cr_assert_eq(sdb_export_format_parse("CSV", &f), SDB_EINVAL);
    cr_assert_eq(sdb_export_format_parse("parquet", &f), SDB_EINVAL);
    cr_assert_eq(sdb_export_format_parse(NULL, &f), SDB_EINVAL);
}

Test(export, a_refusing_sink_stops_with_eio)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "db");
    char *text = random_scores(800);
    ingest_lines(s, text, 200, T0);
    mem m = {NULL, 0, 0, 0, 0, 1};
    uint64_t n;
    cr_assert_eq(sdb_store_export(s, 0, SDB_EXPORT_NDJSON, to_mem, &m, &n), SDB_EIO);
    cr_assert_eq(m.calls, 1);
    cr_assert_gt(n, 0);
    cr_assert_eq(sdb_store_export(s, 0, 7, to_mem, &m, &n), SDB_EINVAL);
    cr_assert_eq(sdb_store_export(s, 0, SDB_EXPORT_CSV, NULL, NULL, &n), SDB_EINVAL);
    free(m.p);
    free(text);
    sdb_store_close(s);
    rm_dir(dir);
}

Test(export, other_projects_stay_out)
{
    char dir[64];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "db");
    uint32_t p;
    cr_assert_eq(sdb_project_id(s, "team-b", 1, &p), SDB_OK);
    cr_assert_neq(p, 0);
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    const char *j = "{\"id\":\"only-b\",\"name\":\"x\",\"value\":1,\"trace_id\":\"t\"}";
    cr_assert_eq(sdb_batch_add_json(b, j, strlen(j), err, sizeof err), SDB_OK);
    cr_assert_eq(sdb_store_ingest(s, p, b, T0), SDB_OK);
    sdb_batch_free(b);
    ingest_lines(s, "{\"id\":\"only-default\",\"name\":\"x\",\"value\":2,\"trace_id\":\"t\"}", 1, T0);
    char *d = export_text(s, SDB_EXPORT_CLICKHOUSE, NULL, NULL);
    cr_assert_not_null(strstr(d, "\"project\":\"default\",\"id\":\"only-default\""));
    cr_assert_null(strstr(d, "only-b"));
    mem m = {NULL, 0, 0, 0, 0, -1};
    cr_assert_eq(sdb_store_export(s, p, SDB_EXPORT_CLICKHOUSE, to_mem, &m, NULL), SDB_OK);
    cr_assert_not_null(strstr(m.p, "\"project\":\"team-b\",\"id\":\"only-b\""));
    cr_assert_null(strstr(m.p, "only-default"));
    free(m.p);
    free(d);
    sdb_store_close(s);
    rm_dir(dir);
}

/* -------------------------------------------------------- command line */

/* Run `scoredb export` in this process (server/export.c is linked in). */
static int cli(const char *db, const char *a1, const char *a2, const char *a3, const char *a4,
               const char *a5, const char *a6)
{
    char *argv[7];
    int argc = 0;
    const char *a[] = {a1, a2, a3, a4, a5, a6};
    for (int i = 0; i < 6 && a[i]; i++) argv[argc++] = (char *)a[i];
    argv[argc] = NULL;
    return sdb_cmd_export(db, argc, argv);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

Test(export, command_line_exit_codes)
{
    char dir[64], db[128], out[160], sql[170], partial[180];
    mkdir_tmp(dir);
    snprintf(db, sizeof db, "%s/db", dir);
    sdb_store *s = open_at(dir, "db");
    ingest_lines(s, "{\"name\":\"x\",\"value\":1,\"trace_id\":\"t\"}", 1, T0);
    sdb_store_close(s); /* one LMDB handle per process */
    cr_redirect_stderr(); /* the messages are for people; the codes are tested */

    /* Usage: 2. */
    cr_assert_eq(cli(db, NULL, NULL, NULL, NULL, NULL, NULL), 2, "no --format");
    cr_assert_eq(cli(db, "--format", "xml", NULL, NULL, NULL, NULL), 2);
    cr_assert_eq(cli(db, "--format", NULL, NULL, NULL, NULL, NULL), 2);
    cr_assert_eq(cli(db, "--format=", NULL, NULL, NULL, NULL, NULL), 2);
    cr_assert_eq(cli(db, "--format", "csv", "extra", NULL, NULL, NULL), 2);
    cr_assert_eq(cli(db, "--format", "csv", "--limit", "3", NULL, NULL), 2);
    cr_assert_eq(cli(db, "--format", "csv", "--out", NULL, NULL, NULL), 2);
    /* The store or the project is missing, the output cannot be written: 1. */
    char nodb[160];
    snprintf(nodb, sizeof nodb, "%s/none", dir);
    cr_assert_eq(cli(nodb, "--format", "csv", NULL, NULL, NULL, NULL), 1);
    cr_assert(!exists(nodb), "export never creates a store");
    snprintf(out, sizeof out, "%s/out.csv", dir);
    cr_assert_eq(cli(db, "--format", "csv", "--project", "nobody", "--out", out), 1);
    cr_assert_eq(cli(db, "--format", "csv", "--out", "/nonexistent-dir/x.csv", NULL, NULL), 1);
    cr_assert(!exists(out));
    /* Success: 0, files in place, no temporary left behind. */
    cr_assert_eq(cli(db, "--format=csv", "--out", out, NULL, NULL, NULL), 0);
    cr_assert(exists(out));
    snprintf(out, sizeof out, "%s/scores.jsonl", dir);
    snprintf(sql, sizeof sql, "%s.sql", out);
    snprintf(partial, sizeof partial, "%s.partial", out);
    cr_assert_eq(cli(db, "--format", "clickhouse", "--out", out, "--project", "default"), 0);
    cr_assert(exists(out) && exists(sql) && !exists(partial));
    FILE *f = fopen(sql, "r");
    char head[4096];
    size_t got = fread(head, 1, sizeof head - 1, f);
    head[got] = 0;
    fclose(f);
    cr_assert_not_null(strstr(head, "CREATE TABLE scores"));
    rm_dir(dir);
}

/* The real binary end to end, when the test run names it: export to a
 * file, ingest it into a new store, export again: the same bytes. A write
 * error (a full device) exits 1. */
Test(export, binary_round_trip_through_files)
{
    const char *bin = getenv("SCOREDB_BIN");
    if (!bin) return;
    char dir[64], cmd[1024];
    mkdir_tmp(dir);
    sdb_store *s = open_at(dir, "a");
    char *text = random_scores(300);
    ingest_lines(s, text, 50, T0);
    sdb_store_close(s);
    snprintf(cmd, sizeof cmd,
             "%s export --db %s/a --format ndjson --out %s/a.ndjson 2>/dev/null && "
             "%s ingest --db %s/b %s/a.ndjson >/dev/null && "
             "%s export --db %s/b --format ndjson > %s/b.ndjson && "
             "cmp -s %s/a.ndjson %s/b.ndjson",
             bin, dir, dir, bin, dir, dir, bin, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    if (exists("/dev/full")) {
        snprintf(cmd, sizeof cmd, "%s export --db %s/a --format csv > /dev/full 2>/dev/null", bin,
                 dir);
        int rc = system(cmd);
        cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "a write error exits 1");
    }
    free(text);
    rm_dir(dir);
}
