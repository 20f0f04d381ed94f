/* HTTP plumbing: the only server file that includes <microhttpd.h>.
 *
 * libmicrohttpd runs a pool of threads, each with its own epoll loop
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, THREAD_POOL_SIZE).
 * A request passes here in three steps. The first callback sees only the
 * headers: that is where every refusal that must not cost a body read is
 * decided: overload (503 + Retry-After, counted against max_inflight so
 * that memory stays bounded at max_inflight x max_body), smuggling-prone
 * framing (a repeated Content-Length, or Content-Length together with
 * Transfer-Encoding, RFC 9112 section 6.3: libmicrohttpd 0.9.75 accepts
 * both), a declared body over the cap (413), unknown path (404), wrong
 * method (405 + Allow) and a missing or wrong key (401). Then the body
 * arrives in pieces and is appended, counted against the cap even when
 * chunked; past the cap the rest is discarded and 413 answered. The last
 * callback hands the complete request to serve.c. An ingest may leave it
 * suspended (MHD_ALLOW_SUSPEND_RESUME) until its group commit: the
 * writer resumes it and one more callback sends the reply.
 */
#include "compat.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

const char *const sdb__route_names[SDB_N_ROUTES] = {
    "healthz", "metrics", "scores_post", "scores_list", "score_get",
    "score_delete", "names", "query", "traces_search", "langfuse", "helicone", "other"};
const int sdb__status_codes[SDB_N_STATUS] = {200, 207, 400, 401, 404, 405, 413, 500, 503, 0};
const double sdb__lat_bounds[SDB_N_LAT - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,  0.01,    0.025,  0.05,  0.1,
                                               0.25,   1,       5};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- responses */

static enum MHD_Result send_reply(struct MHD_Connection *c, sdb__req *r, sdb__reply *rep,
                                  const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(rep->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->ctype ? rep->ctype : "application/json");
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (rep->status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (rep->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    r->status = rep->status;
    r->responded = 1;
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, sdb__req *r, int status,
                                  const char *msg, const char *allow)
{
    sdb__reply rep;
    sdb__reply_error(&rep, status, msg);
    return send_reply(c, r, &rep, allow);
}

/* --------------------------------------------------------------- routing */

/* Route of (method, path); *allow gets the Allow list when the path is
 * known but the method is not (405), NULL for an unknown path (404). */
static int route_of(const char *method, const char *url, sdb__req *r, const char **allow,
                    int *known)
{
    *allow = NULL;
    *known = 1;
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    int post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/healthz")) {
        *allow = "GET, HEAD";
        return get ? SDB_R_HEALTHZ : -1;
    }
    if (!strcmp(url, "/metrics")) {
        *allow = "GET, HEAD";
        return get ? SDB_R_METRICS : -1;
    }
    if (!strcmp(url, "/v1/scores") || !strcmp(url, "/v1/scores/")) {
        *allow = "GET, HEAD, POST";
        return post ? SDB_R_SCORES_POST : get ? SDB_R_SCORES_LIST : -1;
    }
    /* A score id may hold '/' (sent as %2F): the rest of the path is it. */
    if (!strncmp(url, "/v1/scores/", 11) && url[11] && strlen(url + 11) < sizeof r->id) {
        strcpy(r->id, url + 11);
        *allow = "GET, HEAD, DELETE";
        return get ? SDB_R_SCORE_GET : del ? SDB_R_SCORE_DELETE : -1;
    }
    if (!strcmp(url, "/v1/names")) {
        *allow = "GET, HEAD";
        return get ? SDB_R_NAMES : -1;
    }
    if (!strcmp(url, "/v1/query")) {
        *allow = "POST";
        return post ? SDB_R_QUERY : -1;
    }
    if (!strcmp(url, "/v1/traces/search")) {
        *allow = "POST";
        return post ? SDB_R_TRACES : -1;
    }
    int compat = sdb__compat_route(method, url, r, allow);
    if (compat != -2) return compat;
    *known = 0;
    return -1;
}

/* ------------------------------------------------------------ header checks */

typedef struct hdr_scan {
    int n_cl, n_te;
    const char *cl;
} hdr_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    hdr_scan *h = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        h->n_cl++;
        h->cl = value;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        h->n_te++;
    }
    return MHD_YES;
}

/* The credential of the Authorization header: a Bearer key, or Basic's
 * "user:password" (what Langfuse clients send: public key, secret key). */
static int credential(struct MHD_Connection *c, char *out, size_t cap)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a) return -1;
    if (!strncasecmp(a, "Bearer ", 7)) {
        a += 7;
        while (*a == ' ') a++;
        size_t n = strlen(a);
        if (n == 0 || n >= cap) return -1;
        memcpy(out, a, n + 1);
        return (int)n;
    }
    if (!strncasecmp(a, "Basic ", 6)) {
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        int n = -1;
        if (user && pass && strlen(user) + strlen(pass) + 2 <= cap)
            n = snprintf(out, cap, "%s:%s", user, pass);
        MHD_free(user);
        MHD_free(pass);
        return n;
    }
    return -1;
}

/* ---------------------------------------------------------------- callbacks */

static enum MHD_Result first_call(sdb_server *s, struct MHD_Connection *c, const char *url,
                                  const char *method, sdb__req *r)
{
    int n = atomic_fetch_add(&s->inflight, 1) + 1;
    r->counted = 1;
    r->route = SDB_R_OTHER;
    if (n > (int)s->o.max_inflight)
        return send_error(c, r, 503, "the server is at its limit of concurrent requests; retry",
                          NULL);
    hdr_scan h = {0, 0, NULL};
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.n_cl > 1)
        return send_error(c, r, 400, "header \"Content-Length\": given more than once", NULL);
    if (h.n_cl && h.n_te)
        return send_error(c, r, 400,
                          "headers \"Content-Length\" and \"Transfer-Encoding\": give one, not both",
                          NULL);
    if (h.cl) {
        char *end;
        unsigned long long v = strtoull(h.cl, &end, 10);
        if (end == h.cl || *end)
            return send_error(c, r, 400, "header \"Content-Length\": not a number", NULL);
        if (v > s->o.max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "body: %llu bytes is over the limit of %llu bytes", v,
                     (unsigned long long)s->o.max_body);
            return send_error(c, r, 413, msg, NULL);
        }
        if (v) {
            r->body = malloc(v + 1);
            if (!r->body) return send_error(c, r, 503, "out of memory; retry", NULL);
            r->cap = v + 1;
        }
    }
    const char *allow;
    int known;
    int route = route_of(method, url, r, &allow, &known);
    if (route < 0) {
        if (!known) return send_error(c, r, 404, "no such path", NULL);
        char msg[96];
        snprintf(msg, sizeof msg, "method %.16s is not allowed here (allowed: %s)", method, allow);
        return send_error(c, r, 405, msg, allow);
    }
    r->route = route;
    if (route != SDB_R_HEALTHZ && route != SDB_R_METRICS && !sdb__compat_public(r)) {
        if (s->keys) {
            char cred[1024];
            int len = credential(c, cred, sizeof cred);
            uint32_t project;
            if (len < 0 || sdb_keys_check(s->keys, cred, (size_t)len, &project) != SDB_OK) {
                /* A Langfuse public key alone: compat.c lets it score. */
                if (len < 0 || r->route != SDB_R_LANGFUSE ||
                    sdb_keys_check_public(s->keys, cred, (size_t)len, &project) != SDB_OK) {
                    const char *m = "header \"Authorization\": missing or not a valid API key";
                    if (r->route != SDB_R_LANGFUSE) return send_error(c, r, 401, m, NULL);
                    sdb__reply rep; /* Langfuse clients read "message" */
                    sdb__compat_error(&rep, 401, m);
                    return send_reply(c, r, &rep, NULL);
                }
                r->scores_only = 1;
            }
            r->project = project;
        } else {
            r->project = 0;
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **con_cls)
{
    (void)version;
    sdb_server *s = cls;
    sdb__req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t0 = mono();
        *con_cls = r;
        return first_call(s, c, url, method, r);
    }
    if (r->parked) { /* resumed by the writer after the commit */
        sdb__reply rep = {0, NULL, 0, NULL};
        sdb__serve_resumed(s, r, &rep);
        return send_reply(c, r, &rep, NULL);
    }
    if (r->responded) { /* an early error: drop whatever body follows */
        *upload_len = 0;
        return MHD_YES;
    }
    if (*upload_len) {
        size_t n = *upload_len;
        *upload_len = 0;
        if (r->over) return MHD_YES;
        if (r->len + n > s->o.max_body) {
            r->over = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            if (cap > s->o.max_body + 1) cap = s->o.max_body + 1;
            char *p = realloc(r->body, cap);
            if (!p) return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->over) {
        char msg[120];
        snprintf(msg, sizeof msg, "body: over the limit of %llu bytes",
                 (unsigned long long)s->o.max_body);
        return send_error(c, r, 413, msg, NULL);
    }
    if (r->body) r->body[r->len] = 0;
    sdb__reply rep = {0, NULL, 0, NULL};
    sdb__serve_dispatch(s, c, r, &rep);
    if (!rep.body && r->parked) return MHD_YES; /* suspended until the commit */
    return send_reply(c, r, &rep, NULL);
}

static int status_index(int status)
{
    for (int i = 0; i < SDB_N_STATUS - 1; i++)
        if (sdb__status_codes[i] == status) return i;
    return SDB_N_STATUS - 1;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    sdb_server *s = cls;
    sdb__req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->counted) atomic_fetch_sub(&s->inflight, 1);
    if (r->responded) {
        double dt = mono() - r->t0;
        int b = 0;
        while (b < SDB_N_LAT - 1 && dt > sdb__lat_bounds[b]) b++;
        atomic_fetch_add(&s->req[r->route][status_index(r->status)], 1);
        atomic_fetch_add(&s->lat[r->route][b], 1);
        atomic_fetch_add(&s->lat_sum_us[r->route], (uint64_t)(dt * 1e6));
    }
    sdb__serve_req_done(s, r);
    free(r->body);
    free(r);
}

/* ----------------------------------------------------------------- daemon */

/* "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                        int *v6, int *loopback)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof host) return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || port > 65535) return -1;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']') return -1;
        host[n - 1] = 0;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1) return -1;
        *len = sizeof *a;
        *v6 = 1;
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        return 0;
    }
    if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    *v6 = 0;
    *loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    return 0;
}

int sdb__http_start(sdb_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int v6, loopback;
    if (parse_listen(s->listen, &ss, &sl, &v6, &loopback)) {
        snprintf(err, errlen, "--listen: expected HOST:PORT (127.0.0.1:8080), got \"%s\"",
                 s->listen);
        return SDB_EINVAL;
    }
    if (!s->keys && !loopback) {
        snprintf(err, errlen,
                 "--listen %s: without --keys the server has no authentication and listens "
                 "on loopback only (127.0.0.1, [::1])",
                 s->listen);
        return SDB_EINVAL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (v6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->o.conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conns,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)", s->listen);
        return SDB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return SDB_OK;
}

void sdb__http_stop(sdb_server *s)
{
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
}

/* --------------------------------------------------------------- metrics */

typedef struct tbuf {
    char *p;
    size_t len, cap;
} tbuf;

static void tprintf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(tbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return;
        b->p = p;
        b->cap = cap;
    }
}

char *sdb__metrics_text(sdb_server *s, size_t *len)
{
    tbuf b = {NULL, 0, 0};
    tprintf(&b, "# HELP scoredb_http_requests_total HTTP requests by route and status.\n"
                "# TYPE scoredb_http_requests_total counter\n");
    for (int r = 0; r < SDB_N_ROUTES; r++)
        for (int i = 0; i < SDB_N_STATUS; i++) {
            uint64_t v = atomic_load(&s->req[r][i]);
            if (!v) continue;
            if (sdb__status_codes[i])
                tprintf(&b, "scoredb_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        sdb__route_names[r], sdb__status_codes[i], (unsigned long long)v);
            else
                tprintf(&b, "scoredb_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                        sdb__route_names[r], (unsigned long long)v);
        }
    tprintf(&b, "# HELP scoredb_http_request_seconds Request latency, first byte in to "
                "response queued.\n# TYPE scoredb_http_request_seconds histogram\n");
    for (int r = 0; r < SDB_N_ROUTES; r++) {
        uint64_t cum = 0;
        for (int i = 0; i < SDB_N_LAT; i++) cum += atomic_load(&s->lat[r][i]);
        if (!cum) continue;
        cum = 0;
        for (int i = 0; i < SDB_N_LAT; i++) {
            cum += atomic_load(&s->lat[r][i]);
            if (i < SDB_N_LAT - 1)
                tprintf(&b, "scoredb_http_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                        sdb__route_names[r], sdb__lat_bounds[i], (unsigned long long)cum);
            else
                tprintf(&b, "scoredb_http_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                        sdb__route_names[r], (unsigned long long)cum);
        }
        tprintf(&b, "scoredb_http_request_seconds_sum{route=\"%s\"} %.6f\n", sdb__route_names[r],
                atomic_load(&s->lat_sum_us[r]) / 1e6);
        tprintf(&b, "scoredb_http_request_seconds_count{route=\"%s\"} %llu\n",
                sdb__route_names[r], (unsigned long long)cum);
    }
    uint64_t pending = 0;
    int64_t wm = 0;
    sdb_store_watermark(s->store, &wm, &pending);
    tprintf(&b,
            "# HELP scoredb_ingested_scores_total Scores acknowledged by this process.\n"
            "# TYPE scoredb_ingested_scores_total counter\n"
            "scoredb_ingested_scores_total %llu\n"
            "# HELP scoredb_ingest_commits_total Group commits (one fsync each).\n"
            "# TYPE scoredb_ingest_commits_total counter\n"
            "scoredb_ingest_commits_total %llu\n"
            "# HELP scoredb_pending_scores Acknowledged scores not yet in analytics.\n"
            "# TYPE scoredb_pending_scores gauge\n"
            "scoredb_pending_scores %llu\n"
            "# HELP scoredb_watermark_seconds The analytics watermark (as_of).\n"
            "# TYPE scoredb_watermark_seconds gauge\n"
            "scoredb_watermark_seconds %.3f\n"
            "# HELP scoredb_store_bytes Size of the store's data file.\n"
            "# TYPE scoredb_store_bytes gauge\n"
            "scoredb_store_bytes %llu\n"
            "# HELP scoredb_query_cache_total Query answers served from / missing the cache.\n"
            "# TYPE scoredb_query_cache_total counter\n"
            "scoredb_query_cache_total{result=\"hit\"} %llu\n"
            "scoredb_query_cache_total{result=\"miss\"} %llu\n"
            "# HELP scoredb_http_inflight Requests being served.\n"
            "# TYPE scoredb_http_inflight gauge\n"
            "scoredb_http_inflight %d\n",
            (unsigned long long)atomic_load(&s->ingested),
            (unsigned long long)atomic_load(&s->commits), (unsigned long long)pending,
            wm == INT64_MIN ? 0.0 : wm / 1e3, (unsigned long long)sdb_store_disk_bytes(s->store),
            (unsigned long long)atomic_load(&s->cache_hits),
            (unsigned long long)atomic_load(&s->cache_misses), atomic_load(&s->inflight));
    *len = b.len;
    return b.p;
}

/* ---------------------------------------------------- request arguments */

typedef struct args {
    sdb_param *v;
    size_t n, cap;
} args;

static enum MHD_Result take_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    args *a = cls;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        sdb_param *v = realloc(a->v, cap * sizeof *v);
        if (!v) return MHD_NO;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n].key = key;
    a->v[a->n].value = value;
    a->n++;
    return MHD_YES;
}

size_t sdb__http_args(struct MHD_Connection *c, sdb_param **out)
{
    args a = {NULL, 0, 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_arg, &a);
    *out = a.v;
    return a.n;
}

size_t sdb__http_headers(struct MHD_Connection *c, sdb_param **out)
{
    args a = {NULL, 0, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, take_arg, &a);
    *out = a.v;
    return a.n;
}

const char *sdb__http_ctype(struct MHD_Connection *c)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
}


void sdb__http_suspend(struct MHD_Connection *c) { MHD_suspend_connection(c); }

void sdb__http_resume(struct MHD_Connection *c) { MHD_resume_connection(c); }
