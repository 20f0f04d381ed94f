/* Request bodies of the query server that are not one score or one query:
 * the ingest body (a JSON array, {"scores": [...]}, or NDJSON) and the
 * trace-search body.
 *
 * Score bodies are split here (NDJSON by lines) or by score_json.c (JSON
 * arrays, parsed once and validated element by element), so the score
 * rules and their messages live in one place. This is the second engine
 * file that includes <jansson.h> (json.c is the first, and owns query
 * parsing): the trace-search body is read here and its filters go through
 * the query parser.
 * It also holds the two small public helpers the client layers in server/
 * need from the engine: sdb_json_number and sdb_hash64.
 * NDJSON needs no JSON parser to split: a record ends at a newline, which
 * JSON text cannot contain unescaped (RFC 8259 section 7).
 */
#include "list.h"

#include <jansson.h>

#define ERR_MAX 512

typedef struct body_ctx {
    sdb_batch *b;
    sdb__buf errs; /* the JSON array text of errors, without brackets */
    size_t n_items, n_errors;
} body_ctx;

static int add_error(body_ctx *c, size_t index, long line, const char *msg)
{
    c->n_errors++;
    if (c->errs.len) sdb__j_raw(&c->errs, ",");
    sdb__j_raw(&c->errs, "{\"index\":");
    sdb__j_u64(&c->errs, index);
    if (line > 0) {
        sdb__j_raw(&c->errs, ",\"line\":");
        sdb__j_u64(&c->errs, (uint64_t)line);
    }
    sdb__j_raw(&c->errs, ",\"error\":");
    sdb__j_str(&c->errs, msg, strlen(msg));
    sdb__j_raw(&c->errs, "}");
    return SDB_OK;
}

static int add_item(body_ctx *c, const char *p, size_t len, long line)
{
    char err[ERR_MAX] = "";
    size_t index = c->n_items++;
    int rc = sdb_batch_add_json(c->b, p, len, err, sizeof err);
    if (rc == SDB_EINVAL) return add_error(c, index, line, err);
    return rc;
}

static int ndjson(body_ctx *c, const char *body, size_t len, size_t max_items)
{
    long line = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(body + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - body) : len;
        line++;
        size_t a = at, e = end;
        while (a < e && (body[a] == ' ' || body[a] == '\t' || body[a] == '\r')) a++;
        while (e > a && (body[e - 1] == ' ' || body[e - 1] == '\t' || body[e - 1] == '\r')) e--;
        at = end + 1;
        if (a == e) continue; /* blank lines are not scores */
        if (c->n_items == max_items) return SDB_ELIMIT;
        int rc = add_item(c, body + a, e - a, line);
        if (rc) return rc;
    }
    return SDB_OK;
}

static int array_error(void *ctx, size_t index, const char *msg)
{
    return add_error(ctx, index, 0, msg);
}

int sdb_batch_add_body(sdb_batch *b, const char *body, size_t len, int is_ndjson,
                       size_t max_items, size_t *out_items, size_t *out_n_errors,
                       char **out_errors, char *err, size_t errlen)
{
    body_ctx c = {.b = b};
    *out_errors = NULL;
    *out_items = *out_n_errors = 0;
    int rc;
    if (is_ndjson) {
        rc = ndjson(&c, body, len, max_items);
    } else {
        /* Arrays are parsed and validated where scores are (score_json.c),
         * element by element, without a second parse. */
        rc = sdb__batch_add_array(b, body, len, max_items, array_error, &c, &c.n_items, err,
                                  errlen);
        if (rc == SDB_EINVAL) return rc;
    }
    if (rc == SDB_ELIMIT)
        sdb__errf(err, errlen, "body: more than %zu scores in one request", max_items);
    if (rc == SDB_OK && sdb__buf_add(&c.errs, "", 1)) rc = SDB_ENOMEM;
    if (rc) {
        sdb__buf_free(&c.errs);
        return rc;
    }
    *out_errors = c.errs.p;
    *out_items = c.n_items;
    *out_n_errors = c.n_errors;
    return SDB_OK;
}

/* ------------------------------------------------------------ trace search */

int sdb_traces_search_json(sdb_store *s, uint32_t project, const char *body, size_t len,
                           char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        sdb__json_load_error(body, len, je.line, je.column, je.text, err, errlen);
        return SDB_EINVAL;
    }
    int rc = SDB_EINVAL;
    char *rest = NULL, *after = NULL;
    uint32_t limit = 100;
    sdb__query q;
    memset(&q, 0, sizeof q);
    if (!json_is_object(o)) {
        sdb__errf(err, errlen, "body: expected a JSON object");
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcmp(k, "name") && strcmp(k, "names") && strcmp(k, "from") && strcmp(k, "to") &&
            strcmp(k, "where") && strcmp(k, "limit") && strcmp(k, "cursor")) {
            sdb__errf(err, errlen, "unknown field \"%.200s\"", k);
            goto done;
        }
    }
    json_t *lv = json_object_get(o, "limit");
    if (lv && !json_is_null(lv)) {
        if (!json_is_integer(lv) || json_integer_value(lv) < 1 ||
            json_integer_value(lv) > 1000) {
            sdb__errf(err, errlen, "field \"limit\": expected an integer from 1 to 1000");
            goto done;
        }
        limit = (uint32_t)json_integer_value(lv);
    }
    json_t *cv = json_object_get(o, "cursor");
    if (cv && !json_is_null(cv)) {
        if (!json_is_string(cv)) {
            sdb__errf(err, errlen, "field \"cursor\": expected a string (a next_cursor)");
            goto done;
        }
        if (!(after = strdup(json_string_value(cv)))) {
            rc = SDB_ENOMEM;
            goto done;
        }
    }
    json_object_del(o, "limit");
    json_object_del(o, "cursor");
    if (!(rest = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        rc = SDB_ENOMEM;
        goto done;
    }
    if ((rc = sdb__query_parse(rest, strlen(rest), &q, err, errlen))) goto done;
    rc = sdb__traces_search(s, project, &q, limit, after, out_json, err, errlen);
    sdb__query_free(&q);
done:
    free(rest);
    free(after);
    json_decref(o);
    return rc;
}

/* ------------------------------------------- helpers for client layers */

void sdb_json_number(double v, char *out)
{
    sdb__buf b = {0};
    sdb__j_num(&b, v);
    if (b.p && b.len < 32) {
        memcpy(out, b.p, b.len);
        out[b.len] = 0;
    } else {
        snprintf(out, 32, "%.17g", v);
    }
    sdb__buf_free(&b);
}

uint64_t sdb_hash64(const void *p, size_t len) { return sdb__hash(p, len); }

/* --------------------------------------- string rules for client layers
 * The client files in server/ parse with jansson, which refuses a whole
 * text over one bad string; these give them the engine's string rules
 * (docs/input.md) through the public header. */

struct sdb_json_bads {
    sdb__jbads b;
};

int sdb_json_strings_blank(const char *text, size_t len, const char *items_under,
                           char **out_text, sdb_json_bads **out_bads, char *err, size_t errlen)
{
    *out_text = NULL;
    *out_bads = calloc(1, sizeof **out_bads);
    if (!*out_bads) return SDB_ENOMEM;
    return sdb__json_strings_blank(text, len, items_under, out_text, &(*out_bads)->b, err,
                                   errlen);
}

const char *sdb_json_bads_msg(const sdb_json_bads *b, long item)
{
    return b ? sdb__jbads_msg(&b->b, item) : NULL;
}

void sdb_json_bads_free(sdb_json_bads *b)
{
    if (!b) return;
    sdb__jbads_free(&b->b);
    free(b);
}

int sdb_json_strings_check(const char *text, size_t len, char *err, size_t errlen)
{
    return sdb__json_strings_check(text, len, err, errlen);
}

void sdb_json_load_error(const char *text, size_t len, int line, int column, const char *why,
                         char *err, size_t errlen)
{
    sdb__json_load_error(text, len, line, column, why, err, errlen);
}
