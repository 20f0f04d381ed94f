/* Integration tests of the compatible APIs (server/compat.c over
 * engine/compat.c): every Langfuse and Helicone route, on a server bound to
 * an ephemeral 127.0.0.1 port over a fresh store. Answers are parsed with
 * jansson and asserted on their values; the numbers are checked against
 * the native /v1/query of the same scores. Sockets have receive timeouts
 * and every test sends a bounded number of requests.
 */
#include "compat.h"
#include "server.h"
#include "bounds.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define T0 4102444800000LL /* 2100-01-01T00:00:00Z, the fake "now" */
#define DAY "\"timeFilter\":{\"start\":\"2099-12-31T00:00:00Z\",\"end\":\"2100-01-02T00:00:00Z\"}"

/* ------------------------------------------------------------- helpers */

typedef struct srv {
    sdb_server *s;
    char dir[64];
    char keys[64];
    uint16_t port;
} srv;

/* A server over a fresh store with aggregation delay `delay_ms`. */
static void start_delay(srv *v, const char *keys_text, int64_t delay_ms)
{
    memset(v, 0, sizeof *v);
    strcpy(v->dir, "/tmp/sdb_compat_XXXXXX");
    cr_assert_not_null(mkdtemp(v->dir));
    sdb_server_opts o;
    memset(&o, 0, sizeof o);
    o.db = v->dir;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.delay_ms = delay_ms;
    o.fake_clock = 1;
    o.fake_now_ms = T0;
    if (keys_text) {
        strcpy(v->keys, "/tmp/sdb_compat_keys_XXXXXX");
        int fd = mkstemp(v->keys);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, keys_text, strlen(keys_text)), (ssize_t)strlen(keys_text));
        close(fd);
        o.keys_file = v->keys;
    }
    char err[512] = "";
    cr_assert_eq(sdb_server_start(&o, &v->s, err, sizeof err), SDB_OK, "start: %s", err);
    v->port = sdb_server_port(v->s);
}

static void start(srv *v, const char *keys_text) { start_delay(v, keys_text, 0); }

static void stop(srv *v)
{
    sdb_server_stop(v->s);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", v->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", v->dir);
    unlink(p);
    rmdir(v->dir);
    if (v->keys[0]) unlink(v->keys);
}

typedef struct resp {
    int status;
    char *raw;
    const char *body;
    json_t *j; /* the body parsed, NULL when it is not JSON */
} resp;

static void resp_free(resp *r)
{
    json_decref(r->j);
    free(r->raw);
}

/* One request on its own connection (Connection: close), read to EOF. */
static resp req_n(uint16_t port, const char *method, const char *path, const char *headers,
                  const char *body, size_t bl);

static resp req_h(uint16_t port, const char *method, const char *path, const char *headers,
                  const char *body)
{
    return req_n(port, method, path, headers, body, body ? strlen(body) : 0);
}

/* A request whose body is bl bytes (it may hold NUL). */
static resp req_n(uint16_t port, const char *method, const char *path, const char *headers,
                  const char *body, size_t bl)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {SDB_BOUND_S(5), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t cap = bl + 1024 + (headers ? strlen(headers) : 0);
    char *text = malloc(cap);
    int n = snprintf(text, cap,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", bl);
    memcpy(text + n, body ? body : "", bl);
    for (size_t off = 0, len = (size_t)n + bl; off < len;) {
        ssize_t w = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    free(text);
    resp r = {0, NULL, NULL, NULL};
    size_t rcap = 8192, got = 0;
    r.raw = malloc(rcap);
    for (;;) {
        if (got + 4096 > rcap) r.raw = realloc(r.raw, rcap *= 2);
        ssize_t k = recv(fd, r.raw + got, rcap - got - 1, 0);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    r.raw[got] = 0;
    sscanf(r.raw, "HTTP/1.%*d %d", &r.status);
    char *b = strstr(r.raw, "\r\n\r\n");
    r.body = b ? b + 4 : r.raw + got;
    r.j = json_loads(r.body, JSON_DECODE_ANY, NULL);
    return r;
}

static resp req(uint16_t port, const char *method, const char *path, const char *body)
{
    return req_h(port, method, path, NULL, body);
}

/* The value at a path of keys and array indexes ("data", "0", "name"). */
static json_t *at(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j;
         k = strtok_r(NULL, ".", &save))
        j = json_is_array(j) ? json_array_get(j, strtoul(k, NULL, 10)) : json_object_get(j, k);
    return j;
}

static double num_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    cr_assert(json_is_number(v), "%s is not a number", path);
    return json_number_value(v);
}

static const char *str_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

/* The avg of the native query {"name": name} (one group). */
static double native_avg(uint16_t port, const char *headers, const char *name, long *count)
{
    char q[256];
    snprintf(q, sizeof q, "{\"name\":\"%s\",\"stats\":[\"count\",\"avg\"]}", name);
    resp r = req_h(port, "POST", "/v1/query", headers, q);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    double avg = num_at(r.j, "groups.0.avg");
    if (count) *count = (long)num_at(r.j, "groups.0.count");
    resp_free(&r);
    return avg;
}

/* ------------------------------------------------------------- Langfuse */

Test(compat, langfuse_batch_ingest_then_native_query_gives_the_exact_average)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/ingestion",
                 "{\"batch\":["
                 "{\"id\":\"e1\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
                 "\"body\":{\"id\":\"s1\",\"name\":\"faith\",\"value\":0.25,\"traceId\":\"t1\"}},"
                 "{\"id\":\"e2\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
                 "\"body\":{\"name\":\"faith\",\"value\":0.5,\"traceId\":\"t2\","
                 "\"environment\":\"prod\",\"comment\":\"ok\",\"metadata\":{\"k\":[1,2]}}},"
                 "{\"id\":\"e3\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
                 "\"body\":{\"name\":\"faith\",\"value\":0.75,\"sessionId\":\"sess\"}},"
                 "{\"id\":\"e4\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
                 "\"body\":{\"name\":\"faith\",\"value\":1,\"datasetRunId\":\"run\","
                 "\"dataType\":\"NUMERIC\"}}],\"metadata\":{\"sdk\":\"python\"}}");
    cr_assert_eq(r.status, 207, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "successes")), 4, "%s", r.body);
    cr_assert_eq(json_array_size(at(r.j, "errors")), 0, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "successes.3.id"), "e4");
    cr_assert_eq(num_at(r.j, "successes.0.status"), 201);
    resp_free(&r);
    long count;
    cr_assert_eq(native_avg(v.port, NULL, "faith", &count), 0.625);
    cr_assert_eq(count, 4);
    /* The native row keeps the renamed fields. */
    r = req(v.port, "GET", "/v1/scores/s1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "trace_id"), "t1");
    cr_assert_str_eq(str_at(r.j, "timestamp"), "2100-01-01T00:00:00.000Z");
    resp_free(&r);
    stop(&v);
}

Test(compat, langfuse_ingestion_reports_each_bad_event_in_a_207)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/ingestion",
                 "{\"batch\":["
                 "{\"id\":\"good\",\"type\":\"score-create\",\"body\":{\"name\":\"q\",\"value\":2,"
                 "\"traceId\":\"t\"}},"
                 "{\"id\":\"badtype\",\"type\":\"score-create\",\"body\":{\"name\":\"q\","
                 "\"value\":\"high\",\"dataType\":\"NUMERIC\",\"traceId\":\"t\"}},"
                 "{\"id\":\"noattach\",\"type\":\"score-create\",\"body\":{\"name\":\"q\","
                 "\"value\":1}},"
                 "{\"id\":\"trace\",\"type\":\"trace-fly\",\"body\":{\"id\":\"t\"}},"
                 "{\"id\":\"extra\",\"type\":\"score-create\",\"body\":{\"name\":\"q\","
                 "\"value\":1,\"traceId\":\"t\",\"colour\":\"red\"}}]}");
    cr_assert_eq(r.status, 207, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "successes")), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "successes.0.id"), "good");
    cr_assert_eq(json_array_size(at(r.j, "errors")), 4, "%s", r.body);
    const char *ids[] = {"badtype", "noattach", "trace", "extra"};
    const char *names[] = {"dataType NUMERIC", "traceId", "trace-fly", "\"colour\""};
    for (int i = 0; i < 4; i++) {
        char p[32];
        snprintf(p, sizeof p, "errors.%d.id", i);
        cr_assert_str_eq(str_at(r.j, p), ids[i]);
        snprintf(p, sizeof p, "errors.%d.status", i);
        cr_assert_eq(num_at(r.j, p), 400);
        snprintf(p, sizeof p, "errors.%d.message", i);
        cr_assert(strstr(str_at(r.j, p), names[i]), "%s lacks %s", str_at(r.j, p), names[i]);
    }
    resp_free(&r);
    long count;
    cr_assert_eq(native_avg(v.port, NULL, "q", &count), 2);
    cr_assert_eq(count, 1);
    /* Not an ingestion body at all: 400 naming the field. */
    r = req(v.port, "POST", "/api/public/ingestion", "{\"events\":[]}");
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "\"batch\""), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/ingestion", "{\"batch\":[");
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "invalid JSON"), "%s", r.body);
    resp_free(&r);
    stop(&v);
}

Test(compat, langfuse_create_get_list_and_delete_a_score)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/scores",
                 "{\"id\":\"lf-1\",\"name\":\"helpful\",\"value\":0.9,\"traceId\":\"tr\","
                 "\"observationId\":\"obs\",\"comment\":\"nice\",\"environment\":\"prod\","
                 "\"metadata\":{\"judge\":\"gpt\"},\"timestamp\":\"2100-01-01T00:00:00Z\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "id"), "lf-1");
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/scores",
            "{\"name\":\"passed\",\"value\":1,\"dataType\":\"BOOLEAN\",\"sessionId\":\"s\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char bool_id[64];
    snprintf(bool_id, sizeof bool_id, "%s", str_at(r.j, "id"));
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/scores",
            "{\"name\":\"tone\",\"value\":\"calm\",\"traceId\":\"tr\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);

    r = req(v.port, "GET", "/api/public/scores/lf-1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "traceId"), "tr");
    cr_assert_str_eq(str_at(r.j, "observationId"), "obs");
    cr_assert_str_eq(str_at(r.j, "environment"), "prod");
    cr_assert_str_eq(str_at(r.j, "dataType"), "NUMERIC");
    cr_assert_str_eq(str_at(r.j, "source"), "API");
    cr_assert_str_eq(str_at(r.j, "comment"), "nice");
    cr_assert_str_eq(str_at(r.j, "metadata.judge"), "gpt");
    cr_assert_eq(num_at(r.j, "value"), 0.9);
    cr_assert(strstr(r.body, "\"value\":0.9,"), "shortest number text: %s", r.body);
    resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/public/v2/scores/%s", bool_id);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(num_at(r.j, "value"), 1);
    cr_assert_str_eq(str_at(r.j, "stringValue"), "True");
    cr_assert_str_eq(str_at(r.j, "dataType"), "BOOLEAN");
    resp_free(&r);

    /* List: newest first, pages with totals, filters by Langfuse names. */
    r = req(v.port, "GET", "/api/public/v2/scores?limit=2&page=1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 2);
    cr_assert_str_eq(str_at(r.j, "data.0.name"), "tone");
    cr_assert_str_eq(str_at(r.j, "data.0.stringValue"), "calm");
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 3);
    cr_assert_eq(num_at(r.j, "meta.totalPages"), 2);
    cr_assert_eq(num_at(r.j, "meta.limit"), 2);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?limit=2&page=2", NULL);
    cr_assert_eq(json_array_size(at(r.j, "data")), 1);
    cr_assert_str_eq(str_at(r.j, "data.0.id"), "lf-1");
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?traceId=tr&dataType=NUMERIC", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.id"), "lf-1");
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?value=0.5&operator=%3E", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 2, "%s", r.body); /* 0.9 and true */
    resp_free(&r);
    r = req(v.port, "GET",
            "/api/public/v2/scores?observationId=obs&fromTimestamp=2099-12-31T00:00:00Z"
            "&toTimestamp=2100-01-02T00:00:00Z",
            NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/scores?name=helpful", NULL); /* the v1 list */
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?dataType=TEXT", NULL);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "\"dataType\""), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?colour=red", NULL);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "\"colour\""), "%s", r.body);
    resp_free(&r);

    r = req(v.port, "DELETE", "/api/public/scores/lf-1", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "message"), "Score deleted successfully");
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/scores/lf-1", NULL);
    cr_assert_eq(r.status, 404);
    cr_assert(strstr(str_at(r.j, "message"), "no score"), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "DELETE", "/api/public/scores/lf-1", NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    stop(&v);
}

Test(compat, langfuse_bad_score_bodies_are_400_naming_the_field)
{
    srv v;
    start(&v, NULL);
    const char *bodies[] = {
        "{\"name\":\"x\",\"value\":1}",
        "{\"name\":\"x\",\"value\":1,\"traceId\":\"\"}",
        "{\"name\":\"x\",\"value\":true,\"traceId\":\"t\",\"dataType\":\"NUMERIC\"}",
        "{\"name\":\"x\",\"value\":1,\"traceId\":\"t\",\"queueId\":5}",
        "{\"name\":\"x\",\"value\":1,\"traceId\":\"t\",\"dataType\":\"TEXTUAL\"}",
        "{\"value\":1,\"traceId\":\"t\"}",
        "{\"name\":\"x\",\"value\":1,\"traceId\":\"t\",\"configId\":\"nope\"}",
        "[1]",
    };
    const char *field[] = {"traceId", "\"traceId\"", "\"value\"", "\"queueId\"",
                           "\"dataType\"", "\"name\"", "\"configId\"", "body"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        resp r = req(v.port, "POST", "/api/public/scores", bodies[i]);
        cr_assert_eq(r.status, 400, "%zu: %s", i, r.raw);
        cr_assert(strstr(str_at(r.j, "message"), field[i]), "%zu: %s", i, r.body);
        cr_assert_str_eq(str_at(r.j, "error"), str_at(r.j, "message"));
        resp_free(&r);
    }
    resp r = req(v.port, "GET", "/api/public/v2/scores", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 0, "%s", r.body);
    resp_free(&r);
    stop(&v);
}

Test(compat, langfuse_score_configs_validate_scores_that_name_them)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/score-configs",
                 "{\"name\":\"rating\",\"dataType\":\"NUMERIC\",\"minValue\":1,\"maxValue\":5,"
                 "\"description\":\"stars\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char num_id[64];
    snprintf(num_id, sizeof num_id, "%s", str_at(r.j, "id"));
    cr_assert_eq(num_at(r.j, "maxValue"), 5);
    cr_assert(json_is_false(at(r.j, "isArchived")));
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/score-configs",
            "{\"name\":\"verdict\",\"dataType\":\"CATEGORICAL\",\"categories\":["
            "{\"label\":\"pass\",\"value\":1},{\"label\":\"fail\",\"value\":0}]}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char cat_id[64];
    snprintf(cat_id, sizeof cat_id, "%s", str_at(r.j, "id"));
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/score-configs",
            "{\"name\":\"ok\",\"dataType\":\"BOOLEAN\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "categories.0.label"), "True");
    cr_assert_eq(num_at(r.j, "categories.1.value"), 0);
    resp_free(&r);

    /* Bad configs name their field. */
    const char *bad[] = {"{\"name\":\"x\"}",
                         "{\"name\":\"x\",\"dataType\":\"CATEGORICAL\"}",
                         "{\"name\":\"x\",\"dataType\":\"NUMERIC\",\"minValue\":3,\"maxValue\":1}",
                         "{\"name\":\"x\",\"dataType\":\"BOOLEAN\",\"maxValue\":1}",
                         "{\"dataType\":\"NUMERIC\"}"};
    const char *field[] = {"\"dataType\"", "\"categories\"", "\"minValue\"", "\"maxValue\"",
                           "\"name\""};
    for (size_t i = 0; i < 5; i++) {
        r = req(v.port, "POST", "/api/public/score-configs", bad[i]);
        cr_assert_eq(r.status, 400, "%zu: %s", i, r.raw);
        cr_assert(strstr(str_at(r.j, "message"), field[i]), "%zu: %s", i, r.body);
        resp_free(&r);
    }

    r = req(v.port, "GET", "/api/public/score-configs?limit=2", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 2);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 3);
    cr_assert_eq(num_at(r.j, "meta.totalPages"), 2);
    resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/public/score-configs/%s", num_id);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "name"), "rating");
    cr_assert_str_eq(str_at(r.j, "description"), "stars");
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/score-configs/none", NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);

    /* Scores against the configs. */
    char body[512];
    struct {
        const char *name, *value, *cfg;
        int status;
        const char *field;
    } cases[] = {
        {"rating", "4", num_id, 200, NULL},
        {"rating", "4.5", num_id, 200, NULL},
        {"rating", "6", num_id, 400, "\"value\""},
        {"rating", "\"4\"", num_id, 400, "\"value\""},
        {"stars", "4", num_id, 400, "\"name\""},
        {"verdict", "\"pass\"", cat_id, 200, NULL},
        {"verdict", "0", cat_id, 200, NULL}, /* the category's value: stored as "fail" */
        {"verdict", "\"meh\"", cat_id, 400, "\"value\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"id\":\"c%zu\",\"name\":\"%s\",\"value\":%s,\"traceId\":\"t\","
                 "\"configId\":\"%s\"}",
                 i, cases[i].name, cases[i].value, cases[i].cfg);
        r = req(v.port, "POST", "/api/public/scores", body);
        cr_assert_eq(r.status, cases[i].status, "%zu: %s", i, r.raw);
        if (cases[i].field)
            cr_assert(strstr(str_at(r.j, "message"), cases[i].field), "%zu: %s", i, r.body);
        resp_free(&r);
    }
    snprintf(body, sizeof body,
             "{\"id\":\"c9\",\"name\":\"verdict\",\"value\":\"pass\",\"traceId\":\"t\","
             "\"dataType\":\"NUMERIC\",\"configId\":\"%s\"}",
             cat_id);
    r = req(v.port, "POST", "/api/public/scores", body);
    cr_assert_eq(r.status, 400, "%s", r.raw);
    cr_assert(strstr(str_at(r.j, "message"), "\"dataType\""), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/scores/c6", NULL);
    cr_assert_str_eq(str_at(r.j, "stringValue"), "fail");
    cr_assert_str_eq(str_at(r.j, "dataType"), "CATEGORICAL");
    char want[80];
    snprintf(want, sizeof want, "%s", cat_id);
    cr_assert_str_eq(str_at(r.j, "configId"), want);
    resp_free(&r);
    snprintf(path, sizeof path, "/api/public/v2/scores?configId=%s", num_id);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 2, "%s", r.body);
    resp_free(&r);
    cr_assert_eq(native_avg(v.port, NULL, "rating", NULL), 4.25);
    stop(&v);
}

Test(compat, langfuse_health_and_queue_list_parameters)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "GET", "/api/public/health", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(r.j, "status"), "OK");
    cr_assert(json_is_string(at(r.j, "version")));
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/annotation-queues?page=2&limit=10", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 0);
    cr_assert_eq(num_at(r.j, "meta.page"), 2);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 0);
    resp_free(&r);
    /* limit=0 once divided the page count by zero (SIGFPE). */
    r = req(v.port, "GET", "/api/public/annotation-queues?limit=0", NULL);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "\"limit\""), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/annotation-queues?limit=101", NULL);
    cr_assert_eq(r.status, 400, "Langfuse refuses limit over 100: %s", r.raw);
    resp_free(&r);
    r = req(v.port, "PUT", "/api/public/annotation-queues", "{}");
    cr_assert_eq(r.status, 405);
    cr_assert(strstr(r.raw, "Allow: GET, HEAD, POST"), "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "PUT", "/api/public/ingestion", "{}");
    cr_assert_eq(r.status, 405);
    resp_free(&r);
    stop(&v);
}

/* ------------------------------------------------------------- Helicone */

Test(compat, helicone_scores_then_evals_and_native_query_agree)
{
    srv v;
    start(&v, NULL);
    /* Floats accepted; booleans are pass rates; a repeated name replaces. */
    const char *posts[][2] = {
        {"/v1/request/req-1/score", "{\"scores\":{\"accuracy\":0.9,\"grounded\":true}}"},
        {"/v1/request/req-2/score", "{\"scores\":{\"accuracy\":0.2,\"grounded\":false}}"},
        {"/v1/request/req-3/score", "{\"scores\":{\"accuracy\":0.1,\"grounded\":true}}"},
        {"/v1/request/req-3/score", "{\"scores\":{\"accuracy\":0.4}}"},
        {"/v1/request/req-4/score", "{\"scores\":{}}"},
    };
    for (size_t i = 0; i < 5; i++) {
        resp r = req(v.port, "POST", posts[i][0], posts[i][1]);
        cr_assert_eq(r.status, 200, "%zu: %s", i, r.raw); /* Helicone's docs: 200 */
        cr_assert(json_is_null(at(r.j, "data")) && json_is_null(at(r.j, "error")), "%s", r.body);
        resp_free(&r);
    }
    long count;
    double avg = native_avg(v.port, NULL, "accuracy", &count);
    cr_assert_eq(count, 3);
    cr_assert_eq(avg, (0.9 + 0.2 + 0.4) / 3);

    resp r = req(v.port, "GET", "/v1/evals/scores", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 2, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0"), "accuracy");
    cr_assert_str_eq(str_at(r.j, "data.1"), "grounded");
    cr_assert(json_is_null(at(r.j, "error")));
    resp_free(&r);

    r = req(v.port, "POST", "/v1/evals/query", "{\"filter\":\"all\"," DAY "}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 2, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.name"), "accuracy");
    cr_assert_eq(num_at(r.j, "data.0.averageScore"), avg);
    cr_assert_eq(num_at(r.j, "data.0.minScore"), 0.2);
    cr_assert_eq(num_at(r.j, "data.0.maxScore"), 0.9);
    cr_assert_eq(num_at(r.j, "data.0.count"), 3);
    cr_assert_eq(json_array_size(at(r.j, "data.0.overTime")), 48, "hourly over two days");
    cr_assert_str_eq(str_at(r.j, "data.0.overTime.24.date"), "2100-01-01T00:00:00.000Z");
    cr_assert_eq(num_at(r.j, "data.0.overTime.24.count"), 3);
    cr_assert_eq(num_at(r.j, "data.0.averageOverTime.24.value"), avg);
    cr_assert_eq(num_at(r.j, "data.0.averageOverTime.0.value"), 0);
    cr_assert_eq(num_at(r.j, "data.1.averageScore"), 2.0 / 3, "grounded pass rate");
    resp_free(&r);
    r = req(v.port, "POST", "/v1/evals/query", "{\"filter\":{}," DAY ",\"offset\":1,\"limit\":1}");
    cr_assert_eq(json_array_size(at(r.j, "data")), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.name"), "grounded");
    resp_free(&r);

    /* Caller-chosen bins over a caller-chosen range, exact counts. */
    r = req(v.port, "POST", "/v1/evals/score-distributions/query",
            "{\"filter\":\"all\"," DAY ",\"bins\":4,\"min\":0,\"max\":1}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "data.0.name"), "accuracy");
    cr_assert_eq(json_array_size(at(r.j, "data.0.distribution")), 4, "%s", r.body);
    double counts[4] = {1, 1, 0, 1}; /* 0.2 | 0.4 | - | 0.9 */
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof p, "data.0.distribution.%d.lower", i);
        cr_assert_eq(num_at(r.j, p), i * 0.25);
        snprintf(p, sizeof p, "data.0.distribution.%d.upper", i);
        cr_assert_eq(num_at(r.j, p), (i + 1) * 0.25);
        snprintf(p, sizeof p, "data.0.distribution.%d.value", i);
        cr_assert_eq(num_at(r.j, p), counts[i], "bin %d: %s", i, r.body);
    }
    resp_free(&r);
    r = req(v.port, "POST", "/v1/evals/score-distributions/query", "{\"filter\":\"all\"," DAY "}");
    cr_assert_eq(json_array_size(at(r.j, "data.0.distribution")), 10, "default 10 bins: %s",
                 r.body);
    resp_free(&r);
    stop(&v);
}

Test(compat, helicone_filters_map_to_dimensions)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/v1/scores",
                 "[{\"name\":\"acc\",\"value\":1,\"trace_id\":\"a\",\"model\":\"gpt-4o\","
                 "\"properties\":{\"feature\":\"search\"}},"
                 "{\"name\":\"acc\",\"value\":0.5,\"trace_id\":\"b\",\"model\":\"gpt-4o\"},"
                 "{\"name\":\"acc\",\"value\":0,\"trace_id\":\"c\",\"model\":\"claude\"}]");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/evals/query",
            "{\"filter\":{\"request_response_rmt\":{\"model\":{\"equals\":\"gpt-4o\"}}}," DAY "}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(num_at(r.j, "data.0.count"), 2, "%s", r.body);
    cr_assert_eq(num_at(r.j, "data.0.averageScore"), 0.75);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/evals/query",
            "{\"filter\":{\"left\":{\"request_response_rmt\":{\"model\":{\"equals\":\"gpt-4o\"}}},"
            "\"operator\":\"and\",\"right\":{\"request_response_rmt\":{\"properties\":"
            "{\"feature\":{\"equals\":\"search\"}}}}}," DAY "}");
    cr_assert_eq(num_at(r.j, "data.0.count"), 1, "%s", r.body);
    cr_assert_eq(num_at(r.j, "data.0.averageScore"), 1);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/evals/query",
            "{\"filter\":{\"left\":{\"request_response_rmt\":{\"model\":{\"equals\":\"gpt-4o\"}}},"
            "\"operator\":\"and\",\"right\":{\"request_response_rmt\":{\"model\":"
            "{\"equals\":\"claude\"}}}}," DAY "}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "data")), 0, "contradiction: %s", r.body);
    resp_free(&r);

    /* What scoredb cannot answer is a 400 naming the field. */
    const char *bad[] = {
        "{\"filter\":{\"left\":\"all\",\"operator\":\"xor\",\"right\":\"all\"}," DAY "}",
        "{\"filter\":{\"request_response_rmt\":{\"latency\":{\"gte\":1}}}," DAY "}",
        "{\"filter\":{\"request_response_rmt\":{\"model\":{\"like\":\"gpt%\"}}}," DAY "}",
        "{\"filter\":\"all\"}",
        "{\"filter\":\"all\",\"timeFilter\":{\"start\":\"yesterday\",\"end\":\"2100-01-01T00:00:00Z\"}}",
        "{" DAY "}",
        "{\"filter\":\"all\"," DAY ",\"limit\":-1}",
        "{\"filter\":\"all\"," DAY ",\"bins\":4}",
    };
    const char *field[] = {"filter.operator", "filter.request_response_rmt.latency",
                           "filter.request_response_rmt.model", "timeFilter",
                           "timeFilter.start", "\"filter\"", "\"limit\"", "\"bins\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = req(v.port, "POST", "/v1/evals/query", bad[i]);
        cr_assert_eq(r.status, 400, "%zu: %s", i, r.raw);
        cr_assert(json_is_null(at(r.j, "data")), "%zu: %s", i, r.body);
        cr_assert(strstr(str_at(r.j, "error"), field[i]), "%zu: %s", i, r.body);
        resp_free(&r);
    }
    r = req(v.port, "POST", "/v1/evals/score-distributions/query",
            "{\"filter\":\"all\"," DAY ",\"bins\":0}");
    cr_assert_eq(r.status, 400, "%s", r.raw);
    cr_assert(strstr(str_at(r.j, "error"), "\"bins\""), "%s", r.body);
    resp_free(&r);
    stop(&v);
}

Test(compat, helicone_bad_scores_store_nothing_and_name_the_field)
{
    srv v;
    start(&v, NULL);
    const char *bad[] = {"{\"scores\":{\"a\":1,\"b\":\"high\"}}", "{\"scores\":[1]}",
                         "{\"score\":{\"a\":1}}", "{\"scores\":{\"\":1}}", "nope"};
    const char *field[] = {"\"scores.b\"", "\"scores\"", "\"score\"", "\"scores.\"",
                           "invalid JSON"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp r = req(v.port, "POST", "/v1/request/r1/score", bad[i]);
        cr_assert_eq(r.status, 400, "%zu: %s", i, r.raw);
        cr_assert(strstr(str_at(r.j, "error"), field[i]), "%zu: %s", i, r.body);
        resp_free(&r);
    }
    resp r = req(v.port, "GET", "/v1/scores", NULL);
    cr_assert_eq(json_array_size(at(r.j, "data")), 0, "all or nothing: %s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/v1/request/r1/score", NULL);
    cr_assert_eq(r.status, 405);
    resp_free(&r);
    stop(&v);
}

/* A raw control byte or \u0000 in any string of a Langfuse or Helicone
 * body is a 400 naming the field (jansson refuses the text; the string
 * scan names where), and nothing of that body is stored. */
Test(compat, nul_and_control_bytes_are_400_naming_the_field_on_every_compat_body)
{
    srv v;
    start(&v, NULL);
    static const struct {
        const char *path, *body;
        size_t len;
        const char *field;
    } cases[] = {
#define C(p, b, f) {p, b, sizeof b - 1, f}
        C("/api/public/scores", "{\"id\":\"victim\0x\",\"name\":\"n\",\"value\":1,\"traceId\":\"t\"}",
          "field \"id\": raw control byte 0x00"),
        C("/api/public/scores", "{\"name\":\"n\x01\",\"value\":1,\"traceId\":\"t\"}",
          "field \"name\": raw control byte 0x01"),
        C("/api/public/scores", "{\"name\":\"n\",\"value\":1,\"traceId\":\"t\\u0000\"}",
          "field \"traceId\": the escape \\u0000"),
        C("/api/public/ingestion",
          "{\"batch\":[{\"id\":\"e1\",\"type\":\"score-create\",\"body\":{\"name\":\"n\",\"value\":1,"
          "\"traceId\":\"t\"}}],\"metadata\":{\"sdk\":\"x\x01\"}}",
          "field \"metadata.sdk\": raw control byte 0x01"),
        C("/api/public/score-configs", "{\"name\":\"c\0\",\"dataType\":\"NUMERIC\"}",
          "field \"name\": raw control byte 0x00"),
        C("/v1/request/r1/score", "{\"scores\":{\"a\0b\":1}}", "a field name in \"scores\": raw control byte 0x00"),
        C("/v1/request/r1%00/score", "{\"scores\":{\"a\":1}}", "path: \"%00\""),
        C("/v1/evals/query", "{\"filter\":\"all\",\"timeFilter\":{\"start\":\"2099\x02\"}}",
          "field \"timeFilter.start\": raw control byte 0x02"),
#undef C
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = req_n(v.port, "POST", cases[i].path, NULL, cases[i].body, cases[i].len);
        cr_assert_eq(r.status, 400, "%zu: %s", i, r.raw);
        cr_assert(strstr(r.body, "{") && r.j, "%zu: not JSON: %s", i, r.raw);
        const char *m = json_string_value(json_object_get(r.j, "message"));
        if (!m) m = json_string_value(json_object_get(r.j, "error"));
        cr_assert(m && strstr(m, cases[i].field), "%zu: %s lacks %s", i, r.body, cases[i].field);
        resp_free(&r);
    }
    resp r = req(v.port, "GET", "/v1/scores", NULL);
    cr_assert_eq(json_array_size(at(r.j, "data")), 0, "nothing stored: %s", r.body);
    resp_free(&r);
    /* In an ingestion batch the event alone is refused (207), as a row of
     * a native batch is; the others are stored. */
    static const char batch[] =
        "{\"batch\":[{\"id\":\"e1\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
        "\"body\":{\"id\":\"s1\",\"name\":\"n\",\"value\":1,\"traceId\":\"t\"}},"
        "{\"id\":\"e2\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
        "\"body\":{\"id\":\"s1\\u0000\",\"name\":\"n\",\"value\":5,\"traceId\":\"t\",\"sessionId\":\"s\x1f\"}},"
        "{\"id\":\"e3\",\"type\":\"score-create\",\"timestamp\":\"2100-01-01T00:00:00Z\","
        "\"body\":{\"id\":\"s3\",\"name\":\"n\",\"value\":2,\"traceId\":\"t\"}}]}";
    r = req_n(v.port, "POST", "/api/public/ingestion", NULL, batch, sizeof batch - 1);
    cr_assert_eq(r.status, 207, "%s", r.raw);
    cr_assert_eq(json_array_size(at(r.j, "successes")), 2, "%s", r.body);
    cr_assert_eq(json_array_size(at(r.j, "errors")), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "errors.0.id"), "e2");
    cr_assert(strstr(str_at(r.j, "errors.0.message"),
                     "batch[1]: field \"body.id\": the escape \\u0000 (NUL)"), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/query", "{\"name\":\"n\",\"stats\":[\"count\",\"sum\"]}");
    cr_assert(strstr(r.body, "\"count\":2,\"sum\":3"), "s1 is untouched, s3 stored: %s", r.body);
    resp_free(&r);
    stop(&v);
}

/* ----------------------------------------------------------------- auth */

Test(compat, keys_guard_every_compat_route_and_isolate_projects)
{
    srv v;
    start(&v, "alpha pk-lf-a:sk-lf-a\nbeta sk-helicone-b\n");
    /* Basic base64("pk-lf-a:sk-lf-a") */
    const char *A = "Authorization: Basic cGstbGYtYTpzay1sZi1h\r\n";
    const char *B = "Authorization: Bearer sk-helicone-b\r\n";
    resp r = req_h(v.port, "POST", "/api/public/scores", A,
                   "{\"id\":\"x\",\"name\":\"acc\",\"value\":0.25,\"traceId\":\"t\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req_h(v.port, "POST", "/v1/request/t/score", B, "{\"scores\":{\"acc\":0.75}}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    cr_assert_eq(native_avg(v.port, A, "acc", NULL), 0.25);
    cr_assert_eq(native_avg(v.port, B, "acc", NULL), 0.75);
    r = req_h(v.port, "GET", "/api/public/scores/x", B, NULL);
    cr_assert_eq(r.status, 404, "another project's score: %s", r.raw);
    resp_free(&r);
    r = req_h(v.port, "GET", "/api/public/v2/scores", A, NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    resp_free(&r);
    r = req_h(v.port, "POST", "/api/public/score-configs", A,
              "{\"name\":\"acc\",\"dataType\":\"NUMERIC\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "/api/public/score-configs/%s", str_at(r.j, "id"));
    resp_free(&r);
    r = req_h(v.port, "GET", cfg, B, NULL);
    cr_assert_eq(r.status, 404, "another project's config: %s", r.raw);
    resp_free(&r);

    /* Every compat route wants a key; the health check does not. */
    const char *routes[][2] = {
        {"POST", "/api/public/ingestion"},    {"POST", "/api/public/scores"},
        {"GET", "/api/public/v2/scores"},     {"GET", "/api/public/scores/x"},
        {"DELETE", "/api/public/scores/x"},   {"GET", "/api/public/score-configs"},
        {"POST", "/api/public/score-configs"}, {"GET", "/api/public/annotation-queues"},
        {"POST", "/v1/request/t/score"},      {"GET", "/v1/evals/scores"},
        {"POST", "/v1/evals/query"},          {"POST", "/v1/evals/score-distributions/query"},
    };
    const char *wrong[] = {"", "Authorization: Basic cGstbGYtYTp4\r\n", /* pk-lf-a:x */
                           "Authorization: Bearer sk-helicone-c\r\n"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        for (size_t k = 0; k < 3; k++) {
            r = req_h(v.port, routes[i][0], routes[i][1], wrong[k], "{}");
            cr_assert_eq(r.status, 401, "%s %s key %zu: %s", routes[i][0], routes[i][1], k,
                         r.raw);
            resp_free(&r);
        }
    r = req(v.port, "GET", "/api/public/health", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req_h(v.port, "DELETE", "/api/public/scores/x", A, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw); /* Langfuse: 200 with a message */
    cr_assert(json_is_string(at(r.j, "message")), "%s", r.raw);
    resp_free(&r);
    stop(&v);
}

/* ----------------------------------------------- traces as score context */

/* The count of each group of a native query, as "key=count;" text. */
static void groups_text(uint16_t port, const char *q, const char *key, char *out, size_t n)
{
    resp r = req(port, "POST", "/v1/query", q);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    out[0] = 0;
    size_t i;
    json_t *g;
    json_array_foreach(at(r.j, "groups"), i, g)
    {
        json_t *k = json_object_get(json_object_get(g, "key"), key);
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s=%lld;", json_is_string(k) ? json_string_value(k) : "null",
                 (long long)json_integer_value(json_object_get(g, "count")));
    }
    resp_free(&r);
}

Test(compat, a_trace_reaches_scores_whose_ids_were_generated)
{
    srv v;
    start(&v, NULL);
    /* No id: the engine generates one, final only at the commit; the
     * trace index once kept the provisional one and missed the score. */
    resp r = req(v.port, "POST", "/api/public/scores", "{\"name\":\"g\",\"value\":1,"
                                                        "\"traceId\":\"tg\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/traces", "{\"id\":\"tg\",\"name\":\"named\"}");
    cr_assert_eq(num_at(r.j, "scores_updated"), 1, "%s", r.body);
    resp_free(&r);
    char got[128];
    groups_text(v.port, "{\"name\":\"g\",\"group_by\":[\"trace_name\"]}", "trace_name", got,
                sizeof got);
    cr_assert_str_eq(got, "named=1;");
    stop(&v);
}

Test(compat, a_trace_applies_to_its_scores_whichever_arrives_first)
{
    srv v;
    start(&v, NULL);
    /* Scores first (one on an observation), their trace and generation after. */
    resp r = req(v.port, "POST", "/api/public/ingestion",
                 "{\"batch\":[{\"id\":\"e1\",\"type\":\"score-create\",\"body\":{\"id\":\"s1\","
                 "\"name\":\"q\",\"value\":0.5,\"traceId\":\"late\"}},"
                 "{\"id\":\"e2\",\"type\":\"score-create\",\"body\":{\"id\":\"s2\",\"name\":\"q\","
                 "\"value\":1,\"traceId\":\"late\",\"observationId\":\"g1\"}}]}");
    cr_assert_eq(r.status, 207);
    cr_assert_eq(json_array_size(at(r.j, "errors")), 0, "%s", r.body);
    resp_free(&r);
    char got[256];
    groups_text(v.port, "{\"name\":\"q\",\"group_by\":[\"trace_name\"]}", "trace_name", got,
                sizeof got);
    cr_assert_str_eq(got, "null=2;");
    r = req(v.port, "POST", "/api/public/ingestion",
            "{\"batch\":[{\"id\":\"e3\",\"type\":\"trace-create\",\"body\":{\"id\":\"late\","
            "\"name\":\"chat\",\"userId\":\"u9\",\"tags\":[\"b\",\"a\"],\"release\":\"r2\","
            "\"input\":\"not kept\"}},"
            "{\"id\":\"e4\",\"type\":\"generation-create\",\"body\":{\"id\":\"g1\","
            "\"traceId\":\"late\",\"model\":\"gpt-x\",\"promptName\":\"p\",\"promptVersion\":3}}]}");
    cr_assert_eq(r.status, 207);
    cr_assert_eq(json_array_size(at(r.j, "successes")), 2, "%s", r.body);
    resp_free(&r);
    groups_text(v.port, "{\"name\":\"q\",\"group_by\":[\"trace_name\"]}", "trace_name", got,
                sizeof got);
    cr_assert_str_eq(got, "chat=2;");
    groups_text(v.port, "{\"name\":\"q\",\"group_by\":[\"model\"]}", "model", got, sizeof got);
    cr_assert_str_eq(got, "gpt-x=2;", "the trace-level score takes the trace's first model");
    groups_text(v.port, "{\"name\":\"q\",\"group_by\":[\"prompt_version\"],\"where\":"
                "{\"tags\":[\"a\",\"b\"],\"user_id\":[\"u9\"],\"properties\":{\"release\":[\"r2\"]}}}",
                "prompt_version", got, sizeof got);
    cr_assert_str_eq(got, "3=2;");
    /* A trace update re-applies; a later score inherits at once. */
    r = req(v.port, "POST", "/v1/traces", "{\"id\":\"late\",\"user_id\":\"u10\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(num_at(r.j, "scores_updated"), 2);
    resp_free(&r);
    /* The same record again changes nothing and re-sends nothing. */
    r = req(v.port, "POST", "/v1/traces", "{\"id\":\"late\",\"user_id\":\"u10\"}");
    cr_assert_eq(num_at(r.j, "scores_updated"), 0, "%s", r.body);
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/scores",
            "{\"id\":\"s3\",\"name\":\"q\",\"value\":0,\"traceId\":\"late\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    groups_text(v.port, "{\"name\":\"q\",\"group_by\":[\"user_id\"]}", "user_id", got, sizeof got);
    cr_assert_str_eq(got, "u10=3;");
    r = req(v.port, "GET", "/api/public/v2/scores?userId=u10&traceTags=a", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 3, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.trace.tags.0"), "a");
    resp_free(&r);
    /* By traceId: the trace's score index, newest first, exact totals. */
    r = req(v.port, "GET", "/api/public/v2/scores?traceId=late&limit=2&page=1", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 3, "%s", r.body);
    cr_assert_eq(json_array_size(at(r.j, "data")), 2);
    cr_assert_str_eq(str_at(r.j, "data.0.id"), "s3");
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?traceId=late&observationId=g1", NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.id"), "s2");
    resp_free(&r);
    r = req(v.port, "GET", "/v1/traces/late", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(!at(r.j, "input"), "inputs are not kept: %s", r.body);
    cr_assert_eq(num_at(r.j, "scores_total"), 3);
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/ingestion",
            "{\"batch\":[{\"id\":\"e5\",\"type\":\"span-create\",\"body\":{\"id\":\"x\"}}]}");
    cr_assert_str_eq(str_at(r.j, "errors.0.id"), "e5", "an observation needs its traceId");
    cr_assert(strstr(str_at(r.j, "errors.0.message"), "traceId"), "%s", r.body);
    resp_free(&r);
    stop(&v);
}

Test(compat, a_public_key_alone_may_create_scores_and_nothing_else)
{
    srv v;
    start(&v, "default pk-lf-p:sk-lf-s\n");
    const char *pk = "Authorization: Bearer pk-lf-p\r\n";
    resp r = req_h(v.port, "POST", "/api/public/ingestion", pk,
                   "{\"batch\":[{\"id\":\"a\",\"type\":\"score-create\",\"body\":{\"name\":\"t\","
                   "\"value\":1,\"traceId\":\"x\"}},{\"id\":\"b\",\"type\":\"trace-create\","
                   "\"body\":{\"id\":\"x\"}}]}");
    cr_assert_eq(r.status, 207, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "successes.0.id"), "a");
    cr_assert_eq(num_at(r.j, "errors.0.status"), 403);
    resp_free(&r);
    const char *routes[][2] = {{"GET", "/api/public/v2/scores"},
                               {"POST", "/api/public/scores"},
                               {"GET", "/api/public/annotation-queues"},
                               {"POST", "/v1/query"}};
    for (size_t i = 0; i < 4; i++) {
        r = req_h(v.port, routes[i][0], routes[i][1], pk, "{}");
        cr_assert_eq(r.status, 401, "%s: %s", routes[i][1], r.raw);
        if (i < 3) cr_assert(json_is_string(at(r.j, "message")), "%s", r.raw);
        resp_free(&r);
    }
    /* Basic with the public key and a wrong secret is not the public key. */
    r = req_h(v.port, "POST", "/api/public/ingestion",
              "Authorization: Basic cGstbGYtcDp4\r\n" /* pk-lf-p:x */, "{\"batch\":[]}");
    cr_assert_eq(r.status, 401, "%s", r.raw);
    resp_free(&r);
    stop(&v);
}

Test(compat, annotation_queues_track_progress_and_scores_carry_the_queue)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/annotation-queues",
                 "{\"name\":\"review\",\"scoreConfigIds\":[\"nope\"]}");
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "message"), "score_config_ids[0]"), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/annotation-queues", "{\"name\":\"review\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char q[64], path[200];
    snprintf(q, sizeof q, "%s", str_at(r.j, "id"));
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/annotation-queues/%s/items", q);
    r = req(v.port, "POST", path,
            "{\"items\":[{\"object_id\":\"t1\",\"object_type\":\"TRACE\"},{\"object_id\":\"t2\","
            "\"object_type\":\"TRACE\"},{\"object_id\":\"s1\",\"object_type\":\"SESSION\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char item[64];
    snprintf(item, sizeof item, "%s", str_at(r.j, "0.id"));
    resp_free(&r);
    r = req(v.port, "POST", path, "[{\"object_id\":\"t3\",\"object_type\":\"SPAN\"}]");
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(str_at(r.j, "error"), "items[0]: field \"object_type\""), "%s", r.body);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/annotation-queues/%s/items/%s", q, item);
    r = req(v.port, "PATCH", path, "{\"status\":\"COMPLETED\",\"completed_by\":\"ann\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(str_at(r.j, "completed_by"), "ann");
    cr_assert(json_is_string(at(r.j, "completed_at")));
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/annotation-queues/%s", q);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(num_at(r.j, "items"), 3);
    cr_assert_eq(num_at(r.j, "pending"), 2);
    cr_assert_eq(num_at(r.j, "completed"), 1);
    resp_free(&r);
    /* Back to PENDING clears the completion; deleting moves the counts. */
    snprintf(path, sizeof path, "/api/public/annotation-queues/%s/items/%s", q, item);
    r = req(v.port, "PATCH", path, "{\"status\":\"PENDING\"}");
    cr_assert(json_is_null(at(r.j, "completedAt")), "%s", r.body);
    resp_free(&r);
    r = req(v.port, "DELETE", path, NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    snprintf(path, sizeof path, "/api/public/annotation-queues/%s/items?status=PENDING&limit=1", q);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 2, "%s", r.body);
    cr_assert_eq(num_at(r.j, "meta.totalPages"), 2);
    const char *oid = str_at(r.j, "data.0.objectId"); /* the ids order items, not time */
    cr_assert(!strcmp(oid, "t2") || !strcmp(oid, "s1"), "%s", r.body);
    resp_free(&r);
    char body[300];
    snprintf(body, sizeof body, "{\"name\":\"q\",\"value\":1,\"traceId\":\"t1\",\"queueId\":\"%s\"}", q);
    r = req(v.port, "POST", "/api/public/scores", body);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    snprintf(path, sizeof path, "/api/public/v2/scores?queueId=%s", q);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(num_at(r.j, "meta.totalItems"), 1, "%s", r.body);
    cr_assert_str_eq(str_at(r.j, "data.0.queueId"), q);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"name\":\"q\",\"where\":{\"properties\":{\"queue_id\":[\"%s\"]}}}", q);
    r = req(v.port, "POST", "/v1/query", body);
    cr_assert_eq(num_at(r.j, "groups.0.count"), 1, "%s", r.body);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/annotation-queues/%s", q);
    r = req(v.port, "DELETE", path, NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "GET", path, NULL);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    stop(&v);
}

/* The v2 list's totals come from analytics (folded scores) plus a walk of
 * the pending ones: checked against a plain count of what was sent, with
 * part of the scores folded and part pending. */
Test(compat, v2_list_totals_agree_with_a_reference_count)
{
    srv v;
    start_delay(&v, NULL, 60000);
    enum { N = 240 };
    static const char *names[] = {"a", "b", "c"}, *envs[] = {"prod", "dev"},
                      *srcs[] = {"API", "ANNOTATION", "EVAL"};
    int nm[N], en[N], sr[N];
    double val[N];
    unsigned seed = 12345;
    for (int round = 0; round < 2; round++) {
        char *body = malloc(64 * 1024);
        size_t len = (size_t)snprintf(body, 64, "{\"batch\":[");
        for (int i = round * N / 2; i < (round + 1) * N / 2; i++) {
            nm[i] = (int)(rand_r(&seed) % 3);
            en[i] = (int)(rand_r(&seed) % 2);
            sr[i] = (int)(rand_r(&seed) % 3);
            val[i] = (rand_r(&seed) % 100) / 100.0;
            len += (size_t)snprintf(body + len, 64 * 1024 - len,
                                    "%s{\"id\":\"e%d\",\"type\":\"score-create\",\"body\":{"
                                    "\"name\":\"%s\",\"value\":%g,\"traceId\":\"t%d\","
                                    "\"environment\":\"%s\",\"source\":\"%s\"}}",
                                    i % (N / 2) ? "," : "", i, names[nm[i]], val[i], i % 7,
                                    envs[en[i]], srcs[sr[i]]);
        }
        snprintf(body + len, 64 * 1024 - len, "]}");
        resp r = req(v.port, "POST", "/api/public/ingestion", body);
        cr_assert_eq(r.status, 207, "%s", r.raw);
        cr_assert_eq(json_array_size(at(r.j, "errors")), 0, "%s", r.body);
        resp_free(&r);
        free(body);
        /* The first half folds (the clock passes the delay), the second stays pending. */
        if (round == 0) {
            sdb_server_set_now(v.s, T0 + 120000);
            resp q = req(v.port, "POST", "/v1/query", "{\"stats\":[\"count\"]}");
            cr_assert_eq(num_at(q.j, "pending"), 0, "%s", q.body);
            resp_free(&q);
        }
    }
    for (int k = 0; k < 40; k++) {
        int fn = (int)(rand_r(&seed) % 4) - 1, fe = (int)(rand_r(&seed) % 3) - 1,
            fs = (int)(rand_r(&seed) % 4) - 1;
        double thr = (rand_r(&seed) % 100) / 100.0;
        int use_v = rand_r(&seed) % 2;
        char path[300];
        int l = snprintf(path, sizeof path, "/api/public/v2/scores?limit=%d", 1 + k % 5);
        if (fn >= 0) l += snprintf(path + l, sizeof path - l, "&name=%s", names[fn]);
        if (fe >= 0) l += snprintf(path + l, sizeof path - l, "&environment=%s", envs[fe]);
        if (fs >= 0) l += snprintf(path + l, sizeof path - l, "&source=%s", srcs[fs]);
        if (use_v) snprintf(path + l, sizeof path - l, "&value=%g&operator=%%3E%%3D", thr);
        long want = 0;
        for (int i = 0; i < N; i++)
            want += (fn < 0 || nm[i] == fn) && (fe < 0 || en[i] == fe) && (fs < 0 || sr[i] == fs) &&
                    (!use_v || val[i] >= thr);
        resp r = req(v.port, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s", r.raw);
        cr_assert_eq((long)num_at(r.j, "meta.totalItems"), want, "%s: %s", path, r.body);
        cr_assert_eq((long)json_array_size(at(r.j, "data")), want < 1 + k % 5 ? want : 1 + k % 5);
        resp_free(&r);
    }
    stop(&v);
}

Test(compat, a_score_id_with_a_slash_is_reachable_url_encoded)
{
    srv v;
    start(&v, NULL);
    resp r = req(v.port, "POST", "/api/public/scores",
                 "{\"id\":\"run/7\",\"name\":\"x\",\"value\":1,\"traceId\":\"t\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    const char *paths[] = {"/api/public/scores/run%2F7", "/api/public/v2/scores/run%2F7",
                           "/v1/scores/run%2F7"};
    for (int i = 0; i < 3; i++) {
        r = req(v.port, "GET", paths[i], NULL);
        cr_assert_eq(r.status, 200, "%s: %s", paths[i], r.raw);
        cr_assert_str_eq(str_at(r.j, "id"), "run/7");
        resp_free(&r);
    }
    r = req(v.port, "DELETE", "/api/public/scores/run%2F7", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "GET", "/v1/scores/run%2F7", NULL);
    cr_assert_eq(r.status, 404, "%s", r.raw);
    resp_free(&r);
    stop(&v);
}

Test(compat, a_trace_shows_its_native_scores_too_and_lists_find_them)
{
    srv v;
    start(&v, NULL);
    /* A trace record, one Langfuse score and two native ones (which the
     * trace-score documents never knew): the trace's reads count all
     * three, through the engine's trace index. */
    resp r = req(v.port, "POST", "/v1/traces", "{\"id\":\"tn\",\"name\":\"t\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "POST", "/api/public/scores",
            "{\"id\":\"lf1\",\"name\":\"g\",\"value\":1,\"traceId\":\"tn\"}");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "POST", "/v1/scores",
            "[{\"id\":\"n1\",\"name\":\"g\",\"value\":0.5,\"trace_id\":\"tn\"},"
            "{\"id\":\"n2\",\"name\":\"h\",\"value\":0.25,\"trace_id\":\"tn\"},"
            "{\"id\":\"x\",\"name\":\"g\",\"value\":0,\"trace_id\":\"other\"}]");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    resp_free(&r);
    r = req(v.port, "GET", "/v1/traces/tn", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(num_at(r.j, "scores_total"), 3, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.j, "score_ids")), 3, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r.j, "score_ids"), 0)),
                     "n2", "newest first: %s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/traces/tn", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_array_size(json_object_get(r.j, "scores")), 3, "%s", r.body);
    resp_free(&r);
    r = req(v.port, "GET", "/api/public/v2/scores?traceId=tn&name=g", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r.j, "meta"), "totalItems")),
                 2, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.j, "data")), 2, "%s", r.body);
    resp_free(&r);
    stop(&v);
}

/* The v2 total while the fold runs. It was the query's count of the folded
 * scores plus the pending ones counted by the listing in a second read
 * txn, so a fold that committed between the two counted its rows in
 * neither. Both are now read in the page's own txn: with 3000 scores of
 * one name folded 16 at a time in another thread, every page says 3000. */
extern uint32_t sdb__fold_slice;

typedef struct fold_arg {
    sdb_store *s;
    int64_t now;
    volatile int done;
} fold_arg;

static void *fold_thread(void *p)
{
    fold_arg *a = p;
    cr_assert_eq(sdb_store_fold(a->s, a->now, NULL), SDB_OK);
    a->done = 1;
    return NULL;
}

Test(compat, v2_totals_stay_exact_while_the_fold_runs)
{
    char dir[64] = "/tmp/sdb_compat_race_XXXXXX", err[512] = "";
    cr_assert_not_null(mkdtemp(dir));
    sdb_options o = {0};
    o.chunk_rows = 64;
    sdb_store *s;
    cr_assert_eq(sdb_store_open(dir, &o, &s, err, sizeof err), SDB_OK, "%s", err);
    enum { N = 3000 };
    sdb_batch *b;
    cr_assert_eq(sdb_batch_new(&b), SDB_OK);
    for (int i = 0; i < N; i++) {
        char js[160];
        snprintf(js, sizeof js, "{\"name\":\"a\",\"value\":%d,\"trace_id\":\"t%d\",\"timestamp\":%lld}",
                 i % 5, i % 97, (long long)(T0 - i));
        cr_assert_eq(sdb_batch_add_json(b, js, strlen(js), err, sizeof err), SDB_OK, "%s", err);
    }
    cr_assert_eq(sdb_store_ingest(s, 0, b, T0), SDB_OK);
    sdb_batch_free(b);
    uint32_t saved = sdb__fold_slice;
    sdb__fold_slice = 16;
    fold_arg fa = {s, T0 + 1, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, fold_thread, &fa), 0);
    sdb_param p[] = {{"name", "a"}, {"limit", "1"}};
    int pages = 0;
    while (!fa.done || pages < 3) {
        char *out = NULL;
        cr_assert_eq(sdb__lf_scores_list(s, 0, p, 2, 0, &out, err, sizeof err), SDB_OK, "%s", err);
        json_t *j = json_loads(out, 0, NULL);
        cr_assert_not_null(j, "%s", out);
        json_int_t total = json_integer_value(json_object_get(json_object_get(j, "meta"),
                                                              "totalItems"));
        cr_assert_eq(total, N, "page %d during the fold: %s", pages, out);
        json_decref(j);
        free(out);
        pages++;
    }
    pthread_join(th, NULL);
    sdb__fold_slice = saved;
    sdb_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
