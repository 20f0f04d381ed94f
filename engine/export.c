/* Export: every score of a project, streamed out in a form another system
 * loads (DESIGN.md "Beyond one machine"; API.md `scoredb export`).
 *
 * Three shapes over one walk of the `rows` database:
 *   - NDJSON: API.md score objects, one per line, written by list.c's own
 *     renderer (sdb__row_render) without `created_at`, so that
 *     `scoredb ingest` of the file into an empty store gives back the same
 *     store: same ids, same answers to every query.
 *   - CSV: RFC 4180 (quoted cells, doubled quotes, CRLF line ends) with a
 *     header line and fixed columns, for spreadsheets and generic loaders.
 *   - ClickHouse: JSONEachRow rows that match the CREATE TABLE of
 *     sdb_export_ddl(), so a user can move to ClickHouse without rewriting
 *     dashboards.
 *
 * The walk is one read transaction (a consistent snapshot) over the
 * project's key range of `rows`, which is keyed project | ref with refs in
 * ingest order: replaying the export in file order replays replacements in
 * the order the store saw them. Memory stays flat whatever the store size:
 * rows are rendered into one buffer that goes to the sink every FLUSH_AT
 * bytes, and nothing else is kept per row.
 */
#include "list.h"

#include <math.h>

#define FLUSH_AT (64u * 1024u)

/* ------------------------------------------------------------- formats */

static const char *const format_names[] = {"ndjson", "csv", "clickhouse"};

int sdb_export_format_parse(const char *name, int *out_format)
{
    for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
        if (name && strcmp(name, format_names[i]) == 0) {
            *out_format = i;
            return SDB_OK;
        }
    return SDB_EINVAL;
}

/* CSV columns, in order; the ClickHouse table has the same columns with
 * `project` first and `created_at` last. */
static const char *const csv_columns[] = {
    "id", "name", "value", "string_value", "data_type", "timestamp", "source",
    "trace_id", "observation_id", "session_id", "dataset_run_id",
    "environment", "model", "prompt_version", "trace_name", "user_id", "author",
    "config_id", "comment", "tags", "properties", "metadata",
};

/* ------------------------------------------------------------------ DDL */

/* The dimensions are LowCardinality(String) (dictionary-encoded, as they
 * are here) except user_id: ClickHouse advises LowCardinality below about
 * 10k distinct values, and an application's users easily pass that.
 * `value` is Nullable because a CATEGORICAL score has no number: 0 would be
 * averaged in, NULL is skipped by avg(), as API.md's stats skip it here.
 * Other absent strings are '' (ClickHouse's usual idiom; Nullable costs a
 * second column per field). */
static const char ddl_text[] =
    "-- scoredb export --format clickhouse: the table its JSONEachRow rows load into.\n"
    "-- Create it, then load the rows:\n"
    "--   clickhouse-client --multiquery < PATH.sql\n"
    "--   clickhouse-client --query \"INSERT INTO scores FORMAT JSONEachRow\" < PATH\n"
    "-- Absent strings are ''. value is NULL for CATEGORICAL scores (the label is\n"
    "-- string_value); BOOLEAN values are 1 and 0. Times are UTC, millisecond precision.\n"
    "CREATE TABLE scores\n"
    "(\n"
    "    project        LowCardinality(String),\n"
    "    id             String,\n"
    "    name           LowCardinality(String),\n"
    "    value          Nullable(Float64),\n"
    "    string_value   LowCardinality(String),\n"
    "    data_type      Enum8('NUMERIC' = 0, 'BOOLEAN' = 1, 'CATEGORICAL' = 2),\n"
    "    timestamp      DateTime64(3, 'UTC'),\n"
    "    source         Enum8('API' = 0, 'EVAL' = 1, 'ANNOTATION' = 2),\n"
    "    trace_id       String,\n"
    "    observation_id String,\n"
    "    session_id     String,\n"
    "    dataset_run_id String,\n"
    "    environment    LowCardinality(String),\n"
    "    model          LowCardinality(String),\n"
    "    prompt_version LowCardinality(String),\n"
    "    trace_name     LowCardinality(String),\n"
    "    user_id        String,\n"
    "    author         LowCardinality(String),\n"
    "    config_id      String,\n"
    "    comment        String,\n"
    "    tags           Array(String),\n"
    "    properties     Map(String, String),\n"
    "    metadata       String,\n"
    "    created_at     DateTime64(3, 'UTC')\n"
    ")\n"
    "ENGINE = MergeTree\n"
    "PARTITION BY toYYYYMM(timestamp)\n"
    "ORDER BY (project, name, timestamp);\n";

/* The enums above must follow the engine's codes. */
_Static_assert(SDB_NUMERIC == 0 && SDB_BOOLEAN == 1 && SDB_CATEGORICAL == 2, "data_type enum");
_Static_assert(SDB_SRC_API == 0 && SDB_SRC_EVAL == 1 && SDB_SRC_ANNOTATION == 2, "source enum");

int sdb_export_ddl(char **out_sql)
{
    *out_sql = strdup(ddl_text);
    return *out_sql ? SDB_OK : SDB_ENOMEM;
}

/* ------------------------------------------------------------ one row */

/* A row's strings resolved from the dictionaries; p NULL when absent.
 * Borrowed from the read transaction. */
typedef struct resolved {
    sdb__str name, label, dims[SDB_N_DIMS];
} resolved;

static int dict_of(sdb__txn *t, uint32_t project, int dict, uint32_t id, sdb__str *out)
{
    out->p = NULL;
    out->len = 0;
    if (!id) return SDB_OK;
    sdb__val v;
    int rc = sdb__dict_str(t, project, dict, id, &v);
    if (rc) return rc == SDB_ENOTFOUND ? SDB_ECORRUPT : rc;
    out->p = v.p;
    out->len = (uint32_t)v.len;
    return SDB_OK;
}

static int resolve(sdb__txn *t, uint32_t project, const sdb__row *r, resolved *out)
{
    const sdb__fixed *x = &r->fx;
    int rc;
    if (x->type >= SDB_N_TYPES || x->source >= SDB_N_SOURCES) return SDB_ECORRUPT;
    if ((rc = dict_of(t, project, SDB_DICT_NAME, x->name, &out->name))) return rc;
    if (!out->name.p) return SDB_ECORRUPT;
    out->label.p = NULL;
    out->label.len = 0;
    if (x->type == SDB_CATEGORICAL &&
        (rc = dict_of(t, project, SDB_DICT_CATEGORY, (uint32_t)x->value, &out->label)))
        return rc;
    for (int d = 0; d < SDB_N_DIMS; d++)
        if ((rc = dict_of(t, project, d, x->dims[d], &out->dims[d]))) return rc;
    return SDB_OK;
}

/* The number a numeric or boolean score carries, as JSON/CSV text. */
static void put_value(sdb__buf *b, const sdb__fixed *x)
{
    if (x->type == SDB_BOOLEAN)
        sdb__j_raw(b, x->value != 0 ? "1" : "0");
    else
        sdb__j_num(b, x->value);
}

/* One CSV cell (RFC 4180 section 2): quoted when it holds a comma, a
 * quote, CR or LF, with each quote doubled. An absent value is empty. */
static void csv_cell(sdb__buf *b, const char *p, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
    if (!quote) {
        sdb__buf_add(b, p, len);
        return;
    }
    sdb__buf_add(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"') sdb__buf_add(b, "\"", 1);
        sdb__buf_add(b, p + i, 1);
    }
    sdb__buf_add(b, "\"", 1);
}

static void csv_str(sdb__buf *b, sdb__str s)
{
    sdb__buf_add(b, ",", 1);
    if (s.p) csv_cell(b, s.p, s.len);
}

/* A cell whose text is first rendered into `tmp` (JSON lists and maps). */
static void csv_tmp(sdb__buf *b, sdb__buf *tmp)
{
    sdb__buf_add(b, ",", 1);
    csv_cell(b, tmp->p ? tmp->p : "", tmp->len);
    tmp->len = 0;
}

static void csv_time(sdb__buf *b, int64_t ms)
{
    char tmp[32];
    sdb_time_format(ms, tmp);
    sdb__buf_add(b, ",", 1);
    sdb__j_raw(b, tmp);
}

static int render_csv(sdb__buf *b, sdb__buf *tmp, sdb__txn *t, uint32_t project,
                      const sdb__row *r)
{
    resolved z;
    int rc = resolve(t, project, r, &z);
    if (rc) return rc;
    const sdb__fixed *x = &r->fx;
    csv_cell(b, r->id.p ? r->id.p : "", r->id.p ? r->id.len : 0);
    csv_str(b, z.name);
    sdb__buf_add(b, ",", 1);
    if (x->type != SDB_CATEGORICAL) put_value(b, x);
    csv_str(b, z.label);
    sdb__buf_add(b, ",", 1);
    sdb__j_raw(b, sdb__type_names[x->type]);
    csv_time(b, x->ts);
    sdb__buf_add(b, ",", 1);
    sdb__j_raw(b, sdb__source_names[x->source]);
    csv_str(b, r->trace_id);
    csv_str(b, r->observation_id);
    csv_str(b, r->session_id);
    csv_str(b, r->dataset_run_id);
    for (int d = 0; d < SDB_N_DIMS; d++) csv_str(b, z.dims[d]);
    csv_str(b, r->config_id);
    csv_str(b, r->comment);
    sdb__row_tags_json(tmp, r);
    csv_tmp(b, tmp);
    sdb__row_props_json(tmp, r);
    csv_tmp(b, tmp);
    csv_str(b, r->metadata);
    return sdb__buf_add(b, "\r\n", 2);
}

/* A ClickHouse string field: absent is ''. */
static void ch_str(sdb__buf *b, const char *key, sdb__str s)
{
    sdb__j_raw(b, ",\"");
    sdb__j_raw(b, key);
    sdb__j_raw(b, "\":");
    sdb__j_str(b, s.p ? s.p : "", s.p ? s.len : 0);
}

/* DateTime64(3) text that ClickHouse's default (basic) input parser reads:
 * "YYYY-MM-DD hh:mm:ss.mmm", no T and no Z; the column's zone is UTC. */
static void ch_time(sdb__buf *b, const char *key, int64_t ms)
{
    char tmp[32];
    sdb_time_format(ms, tmp);
    tmp[10] = ' ';
    tmp[23] = 0; /* drop the Z */
    sdb__j_raw(b, ",\"");
    sdb__j_raw(b, key);
    sdb__j_raw(b, "\":\"");
    sdb__j_raw(b, tmp);
    sdb__j_raw(b, "\"");
}

static int render_clickhouse(sdb__buf *b, sdb__txn *t, uint32_t project, sdb__str project_name,
                             const sdb__row *r)
{
    resolved z;
    int rc = resolve(t, project, r, &z);
    if (rc) return rc;
    const sdb__fixed *x = &r->fx;
    sdb__j_raw(b, "{\"project\":");
    sdb__j_str(b, project_name.p, project_name.len);
    ch_str(b, "id", r->id);
    ch_str(b, "name", z.name);
    sdb__j_raw(b, ",\"value\":");
    if (x->type == SDB_CATEGORICAL)
        sdb__j_raw(b, "null");
    else
        put_value(b, x);
    ch_str(b, "string_value", z.label);
    sdb__j_raw(b, ",\"data_type\":\"");
    sdb__j_raw(b, sdb__type_names[x->type]);
    sdb__j_raw(b, "\"");
    ch_time(b, "timestamp", x->ts);
    sdb__j_raw(b, ",\"source\":\"");
    sdb__j_raw(b, sdb__source_names[x->source]);
    sdb__j_raw(b, "\"");
    ch_str(b, "trace_id", r->trace_id);
    ch_str(b, "observation_id", r->observation_id);
    ch_str(b, "session_id", r->session_id);
    ch_str(b, "dataset_run_id", r->dataset_run_id);
    for (int d = 0; d < SDB_N_DIMS; d++) ch_str(b, sdb__dim_names[d], z.dims[d]);
    ch_str(b, "config_id", r->config_id);
    ch_str(b, "comment", r->comment);
    sdb__j_raw(b, ",\"tags\":");
    sdb__row_tags_json(b, r);
    sdb__j_raw(b, ",\"properties\":");
    sdb__row_props_json(b, r);
    /* metadata is a String column holding the JSON text. */
    ch_str(b, "metadata", r->metadata);
    ch_time(b, "created_at", x->ingested);
    return sdb__buf_add(b, "}\n", 2);
}

/* ------------------------------------------------------------- the walk */

typedef struct out {
    sdb__buf b;
    sdb_export_sink sink;
    void *ctx;
} out;

static int flush(out *o)
{
    if (!o->b.len) return SDB_OK;
    int rc = o->sink(o->ctx, o->b.p, o->b.len) ? SDB_EIO : SDB_OK;
    o->b.len = 0;
    return rc;
}

/* The project's name for the ClickHouse `project` column: project 0 is
 * "default", any other is its entry in the project dictionary
 * (sdb_project_id). An id with no entry keeps its number. */
static int project_name(sdb__txn *t, uint32_t project, char *buf, size_t cap, sdb__str *out)
{
    if (project != 0) {
        sdb__val v;
        int rc = sdb__dict_str(t, 0, SDB_DICT_PROJECT, project, &v);
        if (rc == SDB_OK) {
            out->p = v.p;
            out->len = (uint32_t)v.len;
            return SDB_OK;
        }
        if (rc != SDB_ENOTFOUND) return rc;
    }
    if (project == 0)
        snprintf(buf, cap, "default");
    else
        snprintf(buf, cap, "%lu", (unsigned long)project);
    out->p = buf;
    out->len = (uint32_t)strlen(buf);
    return SDB_OK;
}

int sdb_store_export(sdb_store *s, uint32_t project, int format, sdb_export_sink sink,
                     void *ctx, uint64_t *out_rows)
{
    if (out_rows) *out_rows = 0;
    if (!s || !sink || format < SDB_EXPORT_NDJSON || format > SDB_EXPORT_CLICKHOUSE)
        return SDB_EINVAL;
    out o = {{0}, sink, ctx};
    sdb__buf tmp = {0};
    sdb__txn *t = NULL;
    sdb__rowit *it = NULL;
    uint64_t n = 0;
    char pbuf[16];
    sdb__str pname = {NULL, 0};
    int rc;
    if ((rc = sdb__txn_begin(s, 0, &t))) goto done;
    if ((rc = project_name(t, project, pbuf, sizeof pbuf, &pname))) goto done;
    if (format == SDB_EXPORT_CSV) {
        for (size_t i = 0; i < sizeof csv_columns / sizeof *csv_columns; i++) {
            if (i) sdb__buf_add(&o.b, ",", 1);
            sdb__j_raw(&o.b, csv_columns[i]);
        }
        if ((rc = sdb__buf_add(&o.b, "\r\n", 2))) goto done;
    }
    if ((rc = sdb__rows_open(t, project, 0, 0, &it))) goto done;
    uint64_t ref;
    sdb__val val;
    while ((rc = sdb__rows_next(it, &ref, &val)) == SDB_OK) {
        sdb__row row;
        if ((rc = sdb__row_decode(val.p, val.len, &row))) goto done;
        size_t before = o.b.len;
        switch (format) {
        case SDB_EXPORT_NDJSON:
            rc = sdb__row_render(&o.b, t, project, &row, 0);
            if (rc == SDB_OK) rc = sdb__buf_add(&o.b, "\n", 1);
            break;
        case SDB_EXPORT_CSV:
            rc = render_csv(&o.b, &tmp, t, project, &row);
            break;
        default:
            rc = render_clickhouse(&o.b, t, project, pname, &row);
            break;
        }
        if (rc) goto done;
        /* The emitters drop what does not fit when memory runs out; a row
         * that does not end in its newline was cut short. */
        if (o.b.len <= before || o.b.p[o.b.len - 1] != '\n') {
            rc = SDB_ENOMEM;
            goto done;
        }
        n++;
        if (o.b.len >= FLUSH_AT && (rc = flush(&o))) goto done;
    }
    if (rc != SDB_OK && rc != SDB_ENOTFOUND) goto done;
    rc = flush(&o);
done:
    sdb__rows_close(it);
    sdb__txn_abort(t);
    sdb__buf_free(&o.b);
    sdb__buf_free(&tmp);
    if (out_rows) *out_rows = n;
    return rc;
}
