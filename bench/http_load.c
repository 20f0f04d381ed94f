/* http_load — the HTTP section of the benchmark: a small closed-loop load
 * client for `scoredb serve`.
 *
 *   http_load query  [--host 127.0.0.1] --port P [--conns 1,16,64] [--seconds 5]
 *                    [--body QUERY_JSON]
 *       requests/s and p50/p99 latency of one dashboard panel query (POST
 *       /v1/query), one keep-alive connection per thread, each thread
 *       sending its next request as soon as the answer arrived;
 *   http_load ingest [--host 127.0.0.1] --port P [--conns 8] [--batch 5000]
 *                    [--requests 200]
 *       scores/s of batched NDJSON ingest (POST /v1/scores), acknowledged
 *       (durable) scores only;
 *   http_load get    [--host 127.0.0.1] --port P [--path /healthz] [--wait S]
 *       GET one path and print the body; with --wait, retry until it
 *       answers 200 or S seconds have passed (exit 1 then): how the
 *       benchmark waits for a server it has just started.
 *
 * Output: one JSON line per measurement. Each load is bounded by time or
 * count. Responses are framed by Content-Length, which libmicrohttpd sends
 * for every answer scoredb makes; anything else counts as an error.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static int port = 8080;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One response on a keep-alive connection; returns the status or -1. */
static int read_resp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap) return -1;
        ssize_t got = recv(fd, buf + n, cap - n - 1, 0);
        if (got <= 0) return -1;
        n += (size_t)got;
        buf[n] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *cl = NULL;
    for (char *p = buf; p < end; p++)
        if ((p == buf || p[-1] == '\n') && !strncasecmp(p, "Content-Length:", 15)) cl = p + 15;
    if (!cl) return -1;
    size_t want = (size_t)strtoull(cl, NULL, 10), have = n - (size_t)(end + 4 - buf);
    while (have < want) {
        char tmp[65536];
        size_t ask = want - have < sizeof tmp ? want - have : sizeof tmp;
        ssize_t got = recv(fd, tmp, ask, 0);
        if (got <= 0) return -1;
        have += (size_t)got;
    }
    return status;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ query */

typedef struct qthread {
    const char *req;
    size_t req_len;
    double until;
    double *lat;
    size_t n, cap, errors;
} qthread;

static void *query_loop(void *arg)
{
    qthread *t = arg;
    char *buf = malloc(1 << 20);
    int fd = dial();
    while (fd >= 0 && now_s() < t->until) {
        double a = now_s();
        if (send_all(fd, t->req, t->req_len) || read_resp(fd, buf, 1 << 20) != 200) {
            t->errors++;
            close(fd);
            fd = dial();
            continue;
        }
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 65536;
            t->lat = realloc(t->lat, t->cap * sizeof *t->lat);
        }
        t->lat[t->n++] = now_s() - a;
    }
    if (fd >= 0) close(fd);
    else t->errors++;
    free(buf);
    return NULL;
}

static void run_query(int conns, double seconds, const char *body)
{
    char *req = malloc(strlen(body) + 256);
    int n = sprintf(req,
                    "POST /v1/query HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n%s",
                    host, strlen(body), body);
    qthread *t = calloc((size_t)conns, sizeof *t);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        t[i].req = req;
        t[i].req_len = (size_t)n;
        t[i].until = t0 + seconds;
        pthread_create(&th[i], NULL, query_loop, &t[i]);
    }
    size_t total = 0, errors = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        total += t[i].n;
        errors += t[i].errors;
    }
    double dt = now_s() - t0;
    double *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++) {
        memcpy(all + k, t[i].lat, t[i].n * sizeof *all);
        k += t[i].n;
        free(t[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_d);
    double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)(total * 0.99)] : 0;
    printf("{\"test\":\"http_query\",\"conns\":%d,\"seconds\":%.2f,\"requests\":%zu,"
           "\"errors\":%zu,\"rps\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
           conns, dt, total, errors, total / dt, p50 * 1e3, p99 * 1e3);
    fflush(stdout);
    free(all);
    free(t);
    free(th);
    free(req);
}

/* -------------------------------------------------------------------- get */

/* GET path until 200 (at most `wait` seconds, one try when 0); print the
 * body. Returns the exit status. */
static int run_get(const char *path, double wait)
{
    double until = now_s() + wait;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    if (n < 0 || (size_t)n >= sizeof req) return 2;
    for (;;) {
        int fd = dial();
        if (fd >= 0 && !send_all(fd, req, (size_t)n)) {
            size_t cap = 1 << 22, len = 0;
            char *buf = malloc(cap);
            ssize_t got;
            while (buf && len + 1 < cap && (got = recv(fd, buf + len, cap - len - 1, 0)) > 0)
                len += (size_t)got;
            int status = 0;
            if (buf) {
                buf[len] = 0;
                sscanf(buf, "HTTP/1.%*d %d", &status);
            }
            char *body = buf ? strstr(buf, "\r\n\r\n") : NULL;
            if (status == 200 && body) {
                fputs(body + 4, stdout);
                free(buf);
                close(fd);
                return 0;
            }
            free(buf);
        }
        if (fd >= 0) close(fd);
        if (now_s() >= until) break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "http_load: GET %s on %s:%d: no 200 answer\n", path, host, port);
    return 1;
}

/* ----------------------------------------------------------------- ingest */

typedef struct ithread {
    int id, batch, requests;
    size_t acked, errors;
} ithread;

static void *ingest_loop(void *arg)
{
    ithread *t = arg;
    size_t cap = (size_t)t->batch * 200 + 256;
    char *body = malloc(cap), *req = malloc(cap + 256), *buf = malloc(1 << 22);
    int fd = dial();
    for (int r = 0; r < t->requests && fd >= 0; r++) {
        size_t n = 0;
        for (int i = 0; i < t->batch; i++)
            n += (size_t)snprintf(body + n, cap - n,
                                  "{\"id\":\"h%d-%d-%d\",\"name\":\"load_%d\",\"value\":%.3f,"
                                  "\"trace_id\":\"tr%d-%d\",\"model\":\"m%d\"}\n",
                                  t->id, r, i, i % 8, (i % 1000) / 1000.0, t->id, r, i % 4);
        int h = snprintf(req, 256,
                         "POST /v1/scores HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                         host, n);
        memcpy(req + h, body, n);
        if (send_all(fd, req, (size_t)h + n) || read_resp(fd, buf, 1 << 22) != 200) {
            t->errors++;
            close(fd);
            fd = dial();
            continue;
        }
        t->acked += (size_t)t->batch;
    }
    if (fd >= 0) close(fd);
    free(body);
    free(req);
    free(buf);
    return NULL;
}

static void run_ingest(int conns, int batch, int requests)
{
    ithread *t = calloc((size_t)conns, sizeof *t);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        t[i] = (ithread){i, batch, requests, 0, 0};
        pthread_create(&th[i], NULL, ingest_loop, &t[i]);
    }
    size_t acked = 0, errors = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        acked += t[i].acked;
        errors += t[i].errors;
    }
    double dt = now_s() - t0;
    printf("{\"test\":\"http_ingest\",\"conns\":%d,\"batch\":%d,\"seconds\":%.2f,"
           "\"scores\":%zu,\"errors\":%zu,\"scores_per_s\":%.0f}\n",
           conns, batch, dt, acked, errors, acked / dt);
    free(t);
    free(th);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: http_load query|ingest|get --port P [options] (see the source)\n");
        return 2;
    }
    const char *mode = argv[1], *conns = NULL,
               *body = "{\"name\":\"faithfulness\",\"interval\":\"1d\",\"stats\":[\"count\",\"avg\"]}";
    const char *path = "/healthz";
    double seconds = 5, wait = 0;
    int batch = 5000, requests = 200;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns")) conns = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--body")) body = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--requests")) requests = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--path")) path = argv[i + 1];
        else if (!strcmp(argv[i], "--wait")) wait = atof(argv[i + 1]);
        else {
            fprintf(stderr, "http_load: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 600 || batch < 1 || requests < 1 || wait < 0 || wait > 600)
        return 2;
    if (!strcmp(mode, "get")) return run_get(path, wait);
    if (!strcmp(mode, "query")) {
        char list[64];
        snprintf(list, sizeof list, "%s", conns ? conns : "1,16,64");
        for (char *save = NULL, *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
            run_query(atoi(c) > 0 ? atoi(c) : 1, seconds, body);
        return 0;
    }
    if (!strcmp(mode, "ingest")) {
        run_ingest(conns ? atoi(conns) : 8, batch, requests);
        return 0;
    }
    fprintf(stderr, "http_load: unknown mode %s\n", mode);
    return 2;
}
