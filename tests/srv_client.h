/* The socket client the server integration tests share (test_server.c,
 * test_server_limits.c): start a server on an ephemeral 127.0.0.1 port
 * over a fresh store, and talk to it with hand-written requests (on
 * purpose: several tests send malformed HTTP that a client library would
 * refuse to produce). Every socket has a receive timeout.
 */
#ifndef SDB_TEST_SRV_CLIENT_H
#define SDB_TEST_SRV_CLIENT_H

#include "server.h"
#include "bounds.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define T0 4102444800000LL /* 2100-01-01: later than any real clock the CLI folds to */

typedef struct srv {
    sdb_server *s;
    char dir[64];
    uint16_t port;
} srv;

static inline void rm_store(const char *dir)
{
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static inline void start_with(srv *v, sdb_server_opts o)
{
    strcpy(v->dir, "/tmp/sdb_srv_XXXXXX");
    cr_assert_not_null(mkdtemp(v->dir));
    o.db = v->dir;
    if (!o.listen) o.listen = "127.0.0.1:0";
    if (!o.threads) o.threads = 4;
    char err[512] = "";
    int rc = sdb_server_start(&o, &v->s, err, sizeof err);
    cr_assert_eq(rc, SDB_OK, "start: %s", err);
    v->port = sdb_server_port(v->s);
    cr_assert_neq(v->port, 0);
}

static inline void start(srv *v, int64_t delay_ms)
{
    sdb_server_opts o;
    memset(&o, 0, sizeof o);
    o.delay_ms = delay_ms;
    o.fake_clock = 1;
    o.fake_now_ms = T0;
    start_with(v, o);
}

static inline void stop(srv *v)
{
    sdb_server_stop(v->s);
    v->s = NULL;
    rm_store(v->dir);
}

static inline int connect_to(uint16_t port)
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
    return fd;
}

static inline void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the server may close early (413, 400) */
        p += w;
        n -= (size_t)w;
    }
}

typedef struct resp {
    int status;
    char *raw;  /* whole response, NUL-terminated */
    char *body; /* into raw */
} resp;

static inline void resp_free(resp *r) { free(r->raw); }

/* Read until the server closes (requests say Connection: close). */
static inline resp read_resp(int fd)
{
    resp r = {0, NULL, NULL};
    size_t cap = 8192, n = 0;
    r.raw = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) r.raw = realloc(r.raw, cap *= 2);
        ssize_t got = recv(fd, r.raw + n, cap - n - 1, 0);
        if (got <= 0) break;
        n += (size_t)got;
    }
    r.raw[n] = 0;
    sscanf(r.raw, "HTTP/1.%*d %d", &r.status);
    char *b = strstr(r.raw, "\r\n\r\n");
    r.body = b ? b + 4 : r.raw + n;
    return r;
}

static inline resp raw_req(uint16_t port, const char *text, size_t len)
{
    int fd = connect_to(port);
    send_all(fd, text, len);
    resp r = read_resp(fd);
    close(fd);
    return r;
}

/* A request whose body is bl bytes (it may hold NUL). */
static inline resp req_n(uint16_t port, const char *method, const char *path,
                         const char *headers, const char *body, size_t bl)
{
    size_t cap = bl + 1024 + strlen(path) + (headers ? strlen(headers) : 0);
    char *text = malloc(cap);
    int n = snprintf(text, cap,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", bl);
    memcpy(text + n, body ? body : "", bl);
    resp r = raw_req(port, text, (size_t)n + bl);
    free(text);
    return r;
}

static inline resp req_h(uint16_t port, const char *method, const char *path,
                         const char *headers, const char *body)
{
    return req_n(port, method, path, headers, body, body ? strlen(body) : 0);
}

static inline resp req(uint16_t port, const char *method, const char *path, const char *body)
{
    return req_h(port, method, path, NULL, body);
}

static inline int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The value of "key":NUMBER in a JSON text (first occurrence), or -1. */
static inline long long num_field(const char *s, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The value of one line of /metrics ("name VALUE"), or -1. */
static inline long long metric(uint16_t port, const char *name)
{
    resp r = req(port, "GET", "/metrics", NULL);
    char pat[160];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r.body, pat);
    long long v = p ? strtoll(p + strlen(pat), NULL, 10) : -1;
    resp_free(&r);
    return v;
}

#endif
