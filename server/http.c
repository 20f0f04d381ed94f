/* HTTP plumbing: the only server file that includes <microhttpd.h>.
 *
 * libmicrohttpd runs a pool of threads, each with its own epoll loop
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, THREAD_POOL_SIZE).
 * A request passes here in three steps. The first callback sees only the
 * headers: that is where every refusal that must not cost a body read is
 * decided: overload (503 + Retry-After, counted against max_inflight),
 * smuggling-prone framing (a repeated Content-Length, or Content-Length
 * together with Transfer-Encoding, RFC 9112 section 6.3: libmicrohttpd
 * 0.9.75 accepts both), a transfer coding other than chunked (501: the
 * library would read such a body until the connection closes), a declared
 * body over the cap (413), unknown path (404), wrong method (405 + Allow),
 * a missing or wrong key (401) and a body the budget cannot hold (503).
 * Then the body arrives in pieces and is appended, counted against the cap
 * even when chunked; past the cap the rest is discarded and 413 answered.
 * The last callback hands the complete request to serve.c. An ingest may
 * leave it suspended (MHD_ALLOW_SUSPEND_RESUME) until its group commit:
 * the writer resumes it and one more callback sends the reply.
 *
 * Slow clients. libmicrohttpd's timeout only closes a connection that is
 * silent, so a client that sends a header line every few seconds would
 * hold its slot for ever. A sweeper thread therefore enforces deadlines
 * of its own on every open connection (sdb__conn, from the library's
 * connection notifications): the whole head within head_timeout_s of the
 * connection opening or its request line (a keep-alive connection waits
 * for its next request as long as the idle timeout), and then a body that
 * averages body_min_rate once head_timeout_s has passed. A connection past
 * its deadline is shut down (shutdown(2); libmicrohttpd sees the end of
 * the stream and closes it). Connections being served or answered have no
 * deadline here. libmicrohttpd itself caps connections per client address
 * (max_per_ip), so one address cannot take every slot.
 *
 * Health under load. libmicrohttpd accepts SDB__CONN_RESERVE connections
 * past max_conns; those may only ask for /healthz or /metrics (others get
 * 503 and are closed) and have at most 2 s for their head, so a probe gets
 * an answer when slow clients hold every ordinary slot. While the reserve
 * is in use the sweeper also closes the connections that have waited
 * longest (over 1 s) for a head, so that slots come free and the listen
 * backlog moves even when slow clients outnumber the reserve. /healthz and
 * /metrics are never refused for the in-flight cap or the body budget:
 * they have no body and take no lock the writer or a query holds.
 *
 * Memory. Request bodies are reserved in one budget for all connections
 * (body_budget bytes, released when the request completes), so held bodies
 * are bounded in bytes, not in count x cap: a declared body past it is
 * refused at once with 503, a chunked one when it outgrows it.
 */
#include "compat.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

const char *const sdb__route_names[SDB_N_ROUTES] = {
    "healthz", "metrics", "scores_post", "scores_list", "score_get",
    "score_delete", "names", "query", "traces_search", "langfuse", "helicone", "other"};
const int sdb__status_codes[SDB_N_STATUS] = {200, 207, 400, 401, 404, 405, 413,
                                             500, 501, 503, 507, 0};
const double sdb__lat_bounds[SDB_N_LAT - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,  0.01,    0.025,  0.05,  0.1,
                                               0.25,   1,       5};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t mono_us(void) { return (int64_t)(mono() * 1e6); }

/* Query parameters a request line may carry. libmicrohttpd 0.9.75 keeps a
 * 56-byte record per parameter in the connection's 64 KiB pool; when the
 * pool runs out while it splits the query string it frees its read buffer
 * and neither answers nor closes (about 1,000 short parameters do it). */
#define MAX_QUERY_PARAMS 256u

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
    if (r->close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
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
    const char *cl, *te;
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
        if (!h->te || strcasecmp(value, "chunked")) h->te = value;
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

/* Reserve n bytes of the body budget; 0 when they do not fit. */
static int budget_take(sdb_server *s, sdb__req *r, size_t n)
{
    uint64_t held = atomic_fetch_add(&s->body_held, n) + n;
    if (held > s->o.body_budget) {
        atomic_fetch_sub(&s->body_held, n);
        return 0;
    }
    r->held += n;
    return 1;
}

static void budget_give(sdb_server *s, sdb__req *r)
{
    if (!r->held) return;
    atomic_fetch_sub(&s->body_held, r->held);
    /* A large body was mapped pages of its own (body_resize) and is gone
     * already; what a burst of them leaves in the heap (the batches parsed
     * from them) goes back to the system on the aggregator's next tick
     * (malloc_trim). */
    if (r->held >= (1u << 20)) atomic_store(&s->trim_wanted, 1);
    r->held = 0;
}

/* Request bodies of BODY_MAP bytes or more are mapped pages of their own
 * (mmap, mremap to grow, munmap when done), so each one goes back to the
 * system the moment its request ends, whatever malloc keeps for reuse
 * (serve.c keeps freed heap memory warm for queries). A smaller body, and
 * the start of a chunked one, comes from malloc. r->cap says which. */
#define BODY_MAP (1u << 20)

static char *body_resize(char *p, size_t cap, size_t ncap)
{
    if (ncap < BODY_MAP) return realloc(p, ncap);
    void *q;
    if (cap >= BODY_MAP) {
        q = mremap(p, cap, ncap, MREMAP_MAYMOVE);
    } else {
        q = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q != MAP_FAILED && p) {
            memcpy(q, p, cap);
            free(p);
        }
    }
    return q == MAP_FAILED ? NULL : q;
}

static void body_free(sdb__req *r)
{
    if (r->cap >= BODY_MAP) munmap(r->body, r->cap);
    else free(r->body);
    r->body = NULL;
    r->cap = 0;
}

/* The body will not be used (over the cap, or the budget): free it and
 * its reservation; the rest of it is discarded as it arrives. */
static void drop_body(sdb_server *s, sdb__req *r)
{
    body_free(r);
    r->len = 0;
    budget_give(s, r);
}

static enum MHD_Result body_budget_503(sdb_server *s, struct MHD_Connection *c, sdb__req *r)
{
    char msg[200];
    atomic_fetch_add(&s->refused_budget, 1);
    snprintf(msg, sizeof msg,
             "the server holds its limit of request bodies (%llu bytes in all); retry",
             (unsigned long long)s->o.body_budget);
    return send_error(c, r, 503, msg, NULL);
}

/* Acknowledge the head at once when a body is to follow. A client that
 * writes the head and the body in two sends with Nagle's algorithm on
 * (node:http's req.write(body); req.end(), and so every library built on
 * it) holds the body back until the head is acknowledged, and Linux
 * delays that acknowledgement: each such request waited 2-8 ms on
 * loopback for an answer computed in 0.01 ms (bench/matrix_http.mjs
 * before it set noDelay). TCP_QUICKACK sends the pending ACK now; the
 * kernel clears the flag by itself, so it is set per request. It is a
 * hint: a failure costs only the delay. */
static void ack_now(const sdb__req *r)
{
    if (!r->conn || r->conn->fd < 0) return;
    int one = 1;
    (void)setsockopt(r->conn->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static enum MHD_Result first_call(sdb_server *s, struct MHD_Connection *c, const char *url,
                                  const char *method, sdb__req *r)
{
    r->route = SDB_R_OTHER;
    if (r->conn) {
        atomic_store(&r->conn->since_us, mono_us());
        atomic_store(&r->conn->phase, SDB__PH_BODY);
    }
    const char *allow;
    int known;
    int route = route_of(method, url, r, &allow, &known);
    /* Health probes are answered whatever the load: they hold no body and
     * count against neither the in-flight cap nor the reserve. */
    int health = route == SDB_R_HEALTHZ || route == SDB_R_METRICS;
    if (r->conn && r->conn->reserve) r->close = 1; /* a reserved slot serves one request */
    if (r->conn && r->conn->reserve && !health) {
        atomic_fetch_add(&s->refused_reserve, 1);
        return send_error(c, r, 503,
                          "the server is at its limit of open connections; retry", NULL);
    }
    if (!health) {
        int n = atomic_fetch_add(&s->inflight, 1) + 1;
        r->counted = 1;
        if (n > (int)s->o.max_inflight)
            return send_error(c, r, 503,
                              "the server is at its limit of concurrent requests; retry", NULL);
    }
    if (r->bad_uri[0]) return send_error(c, r, 400, r->bad_uri, NULL);
    if (r->n_params > MAX_QUERY_PARAMS) {
        char msg[160];
        r->close = 1;
        snprintf(msg, sizeof msg, "query string: %zu parameters, over the limit of %u",
                 r->n_params, MAX_QUERY_PARAMS);
        return send_error(c, r, 400, msg, NULL);
    }
    hdr_scan h = {0, 0, NULL, NULL};
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.n_cl > 1)
        return send_error(c, r, 400, "header \"Content-Length\": given more than once", NULL);
    if (h.n_cl && h.n_te)
        return send_error(c, r, 400,
                          "headers \"Content-Length\" and \"Transfer-Encoding\": give one, not both",
                          NULL);
    if (h.te && (h.n_te > 1 || strcasecmp(h.te, "chunked"))) {
        /* RFC 9112 section 6.1: a server that receives a transfer coding
         * it does not understand answers 501 and closes, since it cannot
         * tell where the body ends. */
        char msg[200];
        r->close = 1;
        snprintf(msg, sizeof msg,
                 "header \"Transfer-Encoding\": \"%.100s\"%s is not supported (only chunked)",
                 h.te, h.n_te > 1 ? " (given more than once)" : "");
        return send_error(c, r, 501, msg, NULL);
    }
    unsigned long long declared = 0;
    if (h.cl) {
        char *end;
        declared = strtoull(h.cl, &end, 10);
        if (end == h.cl || *end)
            return send_error(c, r, 400, "header \"Content-Length\": not a number", NULL);
        if (declared > s->o.max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "body: %llu bytes is over the limit of %llu bytes", declared,
                     (unsigned long long)s->o.max_body);
            return send_error(c, r, 413, msg, NULL);
        }
    }
    if (route < 0) {
        if (!known) return send_error(c, r, 404, "no such path", NULL);
        char msg[96];
        snprintf(msg, sizeof msg, "method %.16s is not allowed here (allowed: %s)", method, allow);
        return send_error(c, r, 405, msg, allow);
    }
    r->route = route;
    /* Under --keys /metrics needs a key too: its totals span every project.
     * The metrics key reads them; a project's key reads its own figures. */
    if (route != SDB_R_HEALTHZ && (route != SDB_R_METRICS || s->keys) &&
        !sdb__compat_public(r)) {
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
            if (project == SDB_KEYS_METRICS && route != SDB_R_METRICS)
                return send_error(c, r, 401,
                                  "header \"Authorization\": the metrics key reads /metrics "
                                  "only, not a project's scores", NULL);
            r->project = project;
            r->authed = 1;
        } else {
            r->project = 0;
        }
    }
    /* Only an authorised request holds body memory. */
    if (declared) {
        if (!budget_take(s, r, declared + 1)) return body_budget_503(s, c, r);
        r->body = body_resize(NULL, 0, declared + 1);
        if (!r->body) return send_error(c, r, 503, "out of memory; retry", NULL);
        r->cap = declared + 1;
        ack_now(r);
    }
    return MHD_YES;
}

/* The request's record at its first callback: on_uri's, or a new one
 * when on_uri did not run or could not allocate. NULL: out of memory. */
static sdb__req *req_begin(void **con_cls)
{
    sdb__req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return NULL;
        r->t0 = mono();
        *con_cls = r;
    }
    r->started = 1;
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_len, void **con_cls)
{
    (void)version;
    sdb_server *s = cls;
    sdb__req *r = *con_cls;
    if (!r || !r->started) {
        if (!(r = req_begin(con_cls))) return MHD_NO;
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
        if (r->conn) atomic_fetch_add(&r->conn->body_bytes, n);
        if (r->over || r->starved) return MHD_YES;
        if (r->len + n > s->o.max_body) {
            r->over = 1;
            drop_body(s, r);
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            if (cap > s->o.max_body + 1) cap = s->o.max_body + 1;
            if (!budget_take(s, r, cap - r->cap)) {
                /* A chunked body that outgrew the budget: its answer can
                 * only be queued once the body is in (libmicrohttpd). */
                r->starved = 1;
                drop_body(s, r);
                return MHD_YES;
            }
            char *p = body_resize(r->body, r->cap, cap);
            if (!p) return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->conn) atomic_store(&r->conn->phase, SDB__PH_BUSY);
    if (r->starved) return body_budget_503(s, c, r);
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

/* The health listener (--health-listen): /healthz and /metrics only,
 * through the same steps as on the main port. It has a thread of its
 * own, so probes are answered while every pool thread runs a long query
 * or the main port's slots are all taken. */
static enum MHD_Result on_health(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_len, void **con_cls)
{
    sdb__req *r = *con_cls;
    if ((!r || !r->started) && strcmp(url, "/healthz") && strcmp(url, "/metrics")) {
        if (!(r = req_begin(con_cls))) return MHD_NO;
        r->route = SDB_R_OTHER;
        r->close = 1;
        return send_error(c, r, 404, "this listener serves /healthz and /metrics only", NULL);
    }
    return on_request(cls, c, url, method, version, upload, upload_len, con_cls);
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
        if (r->authed) sdb_keys_note_request(s->keys, r->project, r->route, status_index(r->status));
        atomic_fetch_add(&s->lat[r->route][b], 1);
        atomic_fetch_add(&s->lat_sum_us[r->route], (uint64_t)(dt * 1e6));
    }
    sdb__serve_req_done(s, r);
    body_free(r);
    budget_give(s, r);
    atomic_fetch_add(&s->served, 1);
    if (r->conn) {
        /* Keep-alive: the next head is due within the idle timeout (or
         * the head deadline, when longer); on_uri shortens it once the
         * request line is in. */
        unsigned wait = s->o.conn_timeout_s > s->o.head_timeout_s ? s->o.conn_timeout_s
                                                                   : s->o.head_timeout_s;
        atomic_store(&r->conn->until_us, mono_us() + (int64_t)wait * 1000000);
        atomic_store(&r->conn->body_bytes, 0);
        atomic_store(&r->conn->head_since_us, mono_us());
        atomic_store(&r->conn->phase, SDB__PH_HEAD);
    }
    free(r);
}

/* --------------------------------------------------------- connections */

/* The request line is in (MHD_OPTION_URI_LOG_CALLBACK), as it came,
 * before libmicrohttpd splits the query string and decodes it in place;
 * what this returns is the request's context for on_request. Three jobs:
 *
 * - The head deadline: at most head_timeout_s from now.
 * - NUL. libmicrohttpd hands the handler the path and the query arguments
 *   percent-decoded as C strings, so "%00" decodes to a NUL that cuts
 *   them: /v1/scores/pipe-1%00zzz read and deleted pipe-1, and
 *   ?trace_id=a%00b listed trace a. No id, name or key scoredb keeps may
 *   hold NUL (docs/input.md), so a raw URI holding "%00" is refused before
 *   anything is decoded.
 * - Too many query parameters (MAX_QUERY_PARAMS): the query string is cut
 *   before the library splits it and the first callback answers 400. The
 *   library calls this before the split ("log callback before we modify
 *   URI *or* args", connection.c), on the line in its own read buffer,
 *   which is why writing one NUL into it is safe. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    sdb_server *s = cls;
    sdb__req *r = calloc(1, sizeof *r);
    if (!r) return NULL; /* on_request allocates it then */
    r->t0 = mono();
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->conn = ci ? ci->socket_context : NULL;
    if (r->conn) {
        int64_t until = mono_us() + (int64_t)s->o.head_timeout_s * 1000000;
        if (until < atomic_load(&r->conn->until_us)) atomic_store(&r->conn->until_us, until);
    }
    const char *nul = strstr(uri, "%00"), *q = strchr(uri, '?');
    if (nul && (!q || nul < q)) {
        snprintf(r->bad_uri, sizeof r->bad_uri,
                 "path: \"%%00\" (a NUL byte) is not allowed in an id or name");
    } else if (nul) {
        const char *k = nul;
        while (k > q + 1 && k[-1] != '&' && k[-1] != ';') k--;
        const char *eq = memchr(k, '=', (size_t)(nul - k));
        if (eq) {
            /* The name as sent (still percent-encoded), printable ASCII only. */
            char name[41];
            size_t n = (size_t)(eq - k) < sizeof name - 1 ? (size_t)(eq - k) : sizeof name - 1;
            for (size_t i = 0; i < n; i++) name[i] = k[i] > 0x20 && k[i] < 0x7f ? k[i] : '?';
            name[n] = 0;
            snprintf(r->bad_uri, sizeof r->bad_uri,
                     "parameter \"%s\": \"%%00\" (a NUL byte) is not allowed", name);
        } else
            snprintf(r->bad_uri, sizeof r->bad_uri,
                     "a parameter name: \"%%00\" (a NUL byte) is not allowed");
    }
    if (q && q[1]) {
        size_t n = 1;
        for (const char *p = q + 1; (p = strchr(p, '&')); p++) n++;
        r->n_params = n;
        if (n > MAX_QUERY_PARAMS) ((char *)q)[1] = 0;
    }
    return r;
}

/* Connection opened or closed (MHD_OPTION_NOTIFY_CONNECTION). CLOSED comes
 * before libmicrohttpd closes the socket (daemon.c), and the sweeper only
 * shuts a socket down under conn_mu, so it never touches a reused fd. */
static void on_conn(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_ConnectionNotificationCode code)
{
    sdb_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        sdb__conn *k = calloc(1, sizeof *k);
        if (!k) return; /* no deadline for this one; libmicrohttpd's timeout still holds */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&s->conn_mu);
        s->n_conns++;
        k->reserve = s->n_conns > s->o.max_conns;
        unsigned head = s->o.head_timeout_s;
        if (k->reserve && head > 2) head = 2;
        atomic_init(&k->phase, SDB__PH_HEAD);
        atomic_init(&k->until_us, mono_us() + (int64_t)head * 1000000);
        atomic_init(&k->since_us, 0);
        atomic_init(&k->body_bytes, 0);
        atomic_init(&k->head_since_us, mono_us());
        k->next = s->conns;
        if (s->conns) s->conns->prev = k;
        s->conns = k;
        pthread_mutex_unlock(&s->conn_mu);
        *ctx = k;
        return;
    }
    sdb__conn *k = *ctx;
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    if (k->prev) k->prev->next = k->next;
    else s->conns = k->next;
    if (k->next) k->next->prev = k->prev;
    s->n_conns--;
    pthread_mutex_unlock(&s->conn_mu);
    free(k);
    *ctx = NULL;
}

/* Whether connection k has missed its deadline at time now (us). */
static int overdue(const sdb_server *s, sdb__conn *k, int64_t now, int *head)
{
    int ph = atomic_load(&k->phase);
    *head = ph == SDB__PH_HEAD;
    if (ph == SDB__PH_HEAD) return now > atomic_load(&k->until_us);
    if (ph != SDB__PH_BODY) return 0;
    /* The body may take head_timeout_s, then must average body_min_rate. */
    double dt = (double)(now - atomic_load(&k->since_us)) / 1e6 - s->o.head_timeout_s;
    return dt > 0 && (double)atomic_load(&k->body_bytes) < dt * (double)s->o.body_min_rate;
}

static void *sweeper_main(void *arg)
{
    sdb_server *s = arg;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->sweep_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L; /* deadlines hold to 0.2 s */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->sweep_cv, &s->conn_mu, &ts);
        int64_t now = mono_us();
        sdb__conn *last = NULL;
        unsigned closing = 0;
        for (sdb__conn *k = s->conns; k && !s->sweep_stop; k = k->next) {
            int head;
            last = k;
            if (!k->cut && k->fd >= 0 && overdue(s, k, now, &head)) {
                k->cut = 1;
                shutdown(k->fd, SHUT_RDWR);
                atomic_fetch_add(head ? &s->cut_head : &s->cut_body, 1);
            }
            closing += k->cut;
        }
        /* Past max_conns (the reserve in use), libmicrohttpd stops
         * accepting and a probe would queue in the listen backlog behind
         * every slow client until their deadlines: instead free slots at
         * once from the connections that have waited longest for a head
         * (idle keep-alive ones included), down to max_conns - reserve.
         * A client that sends its head promptly is never among them. */
        unsigned keep = s->o.max_conns > 2 * SDB__CONN_RESERVE ? s->o.max_conns - SDB__CONN_RESERVE
                                                                : s->o.max_conns / 2;
        if (s->n_conns > s->o.max_conns)
            for (sdb__conn *k = last; k && s->n_conns - closing > keep; k = k->prev) {
                if (k->cut || k->fd < 0 || atomic_load(&k->phase) != SDB__PH_HEAD ||
                    now - atomic_load(&k->head_since_us) < 1000000)
                    continue;
                k->cut = 1;
                closing++;
                shutdown(k->fd, SHUT_RDWR);
                atomic_fetch_add(&s->cut_full, 1);
            }
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
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

/* The address of option `opt` (--listen, --health-listen) into ss. */
static int listen_addr(const sdb_server *s, const char *opt, const char *text,
                       struct sockaddr_storage *ss, int *v6, char *err, size_t errlen)
{
    socklen_t sl;
    int loopback;
    if (parse_listen(text, ss, &sl, v6, &loopback)) {
        snprintf(err, errlen, "%s: expected HOST:PORT (127.0.0.1:8080), got \"%s\"", opt, text);
        return SDB_EINVAL;
    }
    if (!s->keys && !loopback) {
        snprintf(err, errlen,
                 "%s %s: without --keys the server has no authentication and listens "
                 "on loopback only (127.0.0.1, [::1])",
                 opt, text);
        return SDB_EINVAL;
    }
    return SDB_OK;
}

/* The health listener: one thread, few small connections. */
static int health_start(sdb_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int v6;
    int rc = listen_addr(s, "--health-listen", s->o.health_listen, &ss, &v6, err, errlen);
    if (rc) return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0);
    s->hd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_health, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)8, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)16 * 1024, MHD_OPTION_END);
    if (!s->hd) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
                 s->o.health_listen);
        return SDB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->hd, MHD_DAEMON_INFO_BIND_PORT);
    s->health_port = di ? di->port : 0;
    return SDB_OK;
}

int sdb__http_start(sdb_server *s, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int v6;
    int rc = listen_addr(s, "--listen", s->listen, &ss, &v6, err, errlen);
    if (rc) return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (v6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->o.conn_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(s->o.max_conns + SDB__CONN_RESERVE), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->o.max_per_ip, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)64 * 1024, MHD_OPTION_END);
    if (s->d) {
        s->sweep_stop = 0;
        s->sweeping = pthread_create(&s->sweeper, NULL, sweeper_main, s) == 0;
        if (!s->sweeping) {
            MHD_stop_daemon(s->d);
            s->d = NULL;
            snprintf(err, errlen, "cannot start the connection sweeper thread");
            return SDB_ENOMEM;
        }
    }
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)", s->listen);
        return SDB_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    if (s->o.health_listen && (rc = health_start(s, err, errlen))) {
        sdb__http_stop(s);
        return rc;
    }
    return SDB_OK;
}

void sdb__http_stop(sdb_server *s)
{
    if (s->sweeping) {
        pthread_mutex_lock(&s->conn_mu);
        s->sweep_stop = 1;
        pthread_cond_broadcast(&s->sweep_cv);
        pthread_mutex_unlock(&s->conn_mu);
        pthread_join(s->sweeper, NULL);
        s->sweeping = 0;
    }
    if (s->hd) MHD_stop_daemon(s->hd);
    s->hd = NULL;
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

/* Request counts by route and status, the same lines whoever reads them. */
static void requests_text(tbuf *b, uint64_t req[SDB_N_ROUTES][SDB_N_STATUS])
{
    tprintf(b, "# HELP scoredb_http_requests_total HTTP requests by route and status.\n"
               "# TYPE scoredb_http_requests_total counter\n");
    for (int r = 0; r < SDB_N_ROUTES; r++)
        for (int i = 0; i < SDB_N_STATUS; i++) {
            uint64_t v = req[r][i];
            if (!v) continue;
            if (sdb__status_codes[i])
                tprintf(b, "scoredb_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        sdb__route_names[r], sdb__status_codes[i], (unsigned long long)v);
            else
                tprintf(b, "scoredb_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                        sdb__route_names[r], (unsigned long long)v);
        }
}

char *sdb__metrics_text(sdb_server *s, const sdb__req *rq, size_t *len)
{
    tbuf b = {NULL, 0, 0};
    uint64_t req[SDB_N_ROUTES][SDB_N_STATUS];
    if (rq->authed && rq->project != SDB_KEYS_METRICS) {
        /* A project's key: that project's figures, nothing summed over
         * other projects (their volume is not this key's to see). */
        uint64_t ingested = 0;
        if (sdb_keys_counts(s->keys, rq->project, req, &ingested)) memset(req, 0, sizeof req);
        requests_text(&b, req);
        tprintf(&b,
                "# HELP scoredb_ingested_scores_total Scores acknowledged by this process.\n"
                "# TYPE scoredb_ingested_scores_total counter\n"
                "scoredb_ingested_scores_total %llu\n",
                (unsigned long long)ingested);
        *len = b.len;
        return b.p;
    }
    for (int r = 0; r < SDB_N_ROUTES; r++)
        for (int i = 0; i < SDB_N_STATUS; i++) req[r][i] = atomic_load(&s->req[r][i]);
    requests_text(&b, req);
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
    /* docs/reliability.md: 0 while the disk refuses writes */
    tprintf(&b, "# HELP scoredb_store_writable Whether the store's disk takes writes.\n"
                "# TYPE scoredb_store_writable gauge\nscoredb_store_writable %d\n",
            sdb_store_health(s->store, NULL, 0) == SDB_OK);
    pthread_mutex_lock(&s->conn_mu);
    unsigned open = s->n_conns;
    pthread_mutex_unlock(&s->conn_mu);
    tprintf(&b,
            "# HELP scoredb_query_cache_bytes Bytes the answer cache holds (keys, answers, "
            "entries).\n# TYPE scoredb_query_cache_bytes gauge\n"
            "scoredb_query_cache_bytes %llu\n"
            "# HELP scoredb_query_cache_limit_bytes The cache's bound (--cache-bytes).\n"
            "# TYPE scoredb_query_cache_limit_bytes gauge\n"
            "scoredb_query_cache_limit_bytes %llu\n"
            "# HELP scoredb_query_cache_evictions_total Answers dropped to stay in the bound.\n"
            "# TYPE scoredb_query_cache_evictions_total counter\n"
            "scoredb_query_cache_evictions_total %llu\n"
            "# HELP scoredb_http_connections Open connections.\n"
            "# TYPE scoredb_http_connections gauge\n"
            "scoredb_http_connections %u\n"
            "# HELP scoredb_http_body_bytes Bytes of request bodies held (--body-budget).\n"
            "# TYPE scoredb_http_body_bytes gauge\n"
            "scoredb_http_body_bytes %llu\n"
            "# HELP scoredb_http_cut_total Connections closed for missing a deadline.\n"
            "# TYPE scoredb_http_cut_total counter\n"
            "scoredb_http_cut_total{reason=\"head\"} %llu\n"
            "scoredb_http_cut_total{reason=\"body\"} %llu\n"
            "scoredb_http_cut_total{reason=\"full\"} %llu\n"
            "# HELP scoredb_http_refused_total Requests refused with 503 for a limit.\n"
            "# TYPE scoredb_http_refused_total counter\n"
            "scoredb_http_refused_total{limit=\"connections\"} %llu\n"
            "scoredb_http_refused_total{limit=\"body_budget\"} %llu\n"
            "# HELP scoredb_heap_trims_total Free heap handed back to the system (after a "
            "burst of large bodies, or once idle).\n"
            "# TYPE scoredb_heap_trims_total counter\n"
            "scoredb_heap_trims_total %llu\n",
            (unsigned long long)atomic_load(&s->cache_used),
            (unsigned long long)s->o.cache_bytes,
            (unsigned long long)atomic_load(&s->cache_evictions), open,
            (unsigned long long)atomic_load(&s->body_held),
            (unsigned long long)atomic_load(&s->cut_head),
            (unsigned long long)atomic_load(&s->cut_body),
            (unsigned long long)atomic_load(&s->cut_full),
            (unsigned long long)atomic_load(&s->refused_reserve),
            (unsigned long long)atomic_load(&s->refused_budget),
            (unsigned long long)atomic_load(&s->trims));
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
