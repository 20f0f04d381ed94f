/* Private to the server files (http.c, serve.c, keys.c): the server
 * struct and the seams between HTTP plumbing and endpoints. */
#ifndef SDB_SRV_INT_H
#define SDB_SRV_INT_H

#include "server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct MHD_Daemon;
struct MHD_Connection;

/* Routes, for dispatch and for the metrics labels. */
enum {
    SDB_R_HEALTHZ,
    SDB_R_METRICS,
    SDB_R_SCORES_POST,
    SDB_R_SCORES_LIST,
    SDB_R_SCORE_GET,
    SDB_R_SCORE_DELETE,
    SDB_R_NAMES,
    SDB_R_QUERY,
    SDB_R_TRACES,
    SDB_R_LANGFUSE, /* compat.c: r->sub says which */
    SDB_R_HELICONE,
    SDB_R_OTHER,
    SDB_N_ROUTES
};
extern const char *const sdb__route_names[SDB_N_ROUTES];

#define SDB_N_STATUS 12   /* 200 207 400 401 404 405 413 500 501 503 507 other */
#define SDB_N_LAT 14      /* latency histogram buckets, the last is +Inf */
extern const int sdb__status_codes[SDB_N_STATUS];
extern const double sdb__lat_bounds[SDB_N_LAT - 1];

/* ---------------------------------------------------------------- keys */

typedef struct sdb_keys sdb_keys;
/* Load a keys file (format in keys.c), resolving project names to ids in
 * s (created when new). *out owned (sdb_keys_free). */
int sdb_keys_load(const char *path, sdb_store *s, sdb_keys **out, char *err, size_t errlen);
/* The project of credential cred (a Bearer key, or "public:secret" from
 * Basic). Constant time in the credential. Returns SDB_OK or
 * SDB_ENOTFOUND. */
int sdb_keys_check(const sdb_keys *k, const char *cred, size_t len, uint32_t *out_project);
/* The project whose key pair has public half `cred` (a score-creation-only
 * credential). Constant time. Returns SDB_OK or SDB_ENOTFOUND. */
int sdb_keys_check_public(const sdb_keys *k, const char *cred, size_t len, uint32_t *out_project);
void sdb_keys_free(sdb_keys *k);
/* The "project" sdb_keys_check gives the metrics key (a keys-file line
 * "@metrics KEY"): it reads /metrics for the whole server and nothing else. */
#define SDB_KEYS_METRICS UINT32_MAX
/* Per-project figures for /metrics read with a project's key, counted for
 * every project of the keys file (other projects are ignored): a request
 * answered (route, status index into sdb__status_codes) and scores
 * acknowledged. Any thread. */
void sdb_keys_note_request(sdb_keys *k, uint32_t project, int route, int status_index);
void sdb_keys_note_ingested(sdb_keys *k, uint32_t project, uint64_t n);
/* Copy project's figures out; SDB_ENOTFOUND when the keys file has no
 * such project. */
int sdb_keys_counts(const sdb_keys *k, uint32_t project,
                    uint64_t req[SDB_N_ROUTES][SDB_N_STATUS], uint64_t *ingested);

/* ------------------------------------------------------------- requests */

typedef struct sdb__req {
    int route;
    int sub;             /* compatible routes: which endpoint (compat.c) */
    int scores_only;     /* authorised by a public key alone: may create scores */
    uint32_t project;
    int status;          /* of the response queued, for metrics */
    int responded;       /* a response was queued (early error) */
    int over;            /* the body passed the cap: discard the rest */
    int counted;         /* counted in inflight */
    int close;           /* answer with Connection: close */
    int starved;         /* the body outgrew the body budget: discard the rest, 503 */
    size_t n_params;     /* query parameters counted on the request line */
    size_t held;         /* bytes reserved in the server's body budget */
    struct sdb__conn *conn; /* http.c: the connection's deadline record */
    double t0;           /* monotonic seconds at the first callback */
    char id[256];        /* /v1/scores/{id} */
    int started;         /* the first callback has run (http.c) */
    int authed;          /* project comes from a key of the keys file */
    char bad_uri[96];    /* http.c: why the raw URI is refused ("%00"), or "" */
    char *body;
    size_t len, cap;
    void *parked;        /* serve.c: an ingest whose connection is suspended
                            until its group commit; freed by sdb__serve_req_done */
} sdb__req;

typedef struct sdb__reply {
    int status;
    char *body;          /* malloc'd, taken by the HTTP layer */
    size_t len;
    const char *ctype;   /* NULL: application/json */
} sdb__reply;

/* serve.c: run the endpoint of a routed, authorised request whose body is
 * complete. When it returns with r->parked set and no reply (out->body
 * NULL), the connection is suspended (sdb__http_suspend) and the writer
 * resumes it after the commit; libmicrohttpd then calls back once more and
 * sdb__serve_resumed makes the reply. */
void sdb__serve_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb__reply *out);
void sdb__serve_resumed(sdb_server *s, sdb__req *r, sdb__reply *out);
/* Free what serve.c keeps in r: a parked ingest, once its reply is made
 * or its connection is gone (the request-completed callback). */
void sdb__serve_req_done(sdb_server *s, sdb__req *r);
/* A JSON error reply {"error": msg}. */
void sdb__reply_error(sdb__reply *out, int status, const char *msg);
/* Epoch ms by the server's clock (real, file or fake). */
int64_t sdb__srv_now(sdb_server *s);
/* Queue batch b of `project` for the writer and wait for its commit (the
 * acknowledgement). Returns the commit's code; SDB_EBUSY when stopping. */
int sdb__srv_commit(sdb_server *s, uint32_t project, sdb_batch *b);
/* Fold to now - delay when a known commit became due (before analytics).
 * Always SDB_OK: a fold the disk refuses leaves analytics answering from
 * what is folded, and the aggregator retries it. */
int sdb__srv_fold(sdb_server *s);
/* The HTTP status and message (into msg) for a write that failed with
 * rc: 507 naming the store's disk when the disk refused it (SDB_ENOSPC,
 * SDB_EIO), 503 for SDB_EBUSY, else 500. `what` ends the message ("the
 * scores were not stored"). */
int sdb__srv_write_error(sdb_server *s, int rc, const char *what, char *msg, size_t len);

/* http.c */
int sdb__http_start(sdb_server *s, char *err, size_t errlen);
void sdb__http_stop(sdb_server *s);
/* Prometheus text of the counters plus store gauges (caller frees); for
 * a request authorised by a project's key, that project's counters only. */
char *sdb__metrics_text(sdb_server *s, const sdb__req *r, size_t *len);
/* The URL query parameters, borrowed from the connection for the request;
 * *out is malloc'd (free()). */
size_t sdb__http_args(struct MHD_Connection *c, sdb_param **out);
/* The request's headers, borrowed like sdb__http_args; *out malloc'd. */
size_t sdb__http_headers(struct MHD_Connection *c, sdb_param **out);
/* The request's Content-Type header (NULL when absent). */
const char *sdb__http_ctype(struct MHD_Connection *c);
/* Suspend c (only from inside its request's callback); resume it from any
 * thread, at any time after. */
void sdb__http_suspend(struct MHD_Connection *c);
void sdb__http_resume(struct MHD_Connection *c);

/* ---------------------------------------------------------------- state */

/* http.c: one per open connection, from libmicrohttpd's connection
 * notifications; what the deadline sweeper reads (see http.c). */
typedef struct sdb__conn {
    struct sdb__conn *prev, *next;
    int fd;
    int reserve;                /* admitted past max_conns: /healthz and /metrics only */
    _Atomic int phase;          /* SDB__PH_* */
    _Atomic int64_t until_us;   /* HEAD: monotonic deadline of the whole head */
    _Atomic int64_t since_us;   /* BODY: when the head was complete */
    _Atomic uint64_t body_bytes; /* BODY: received so far */
    _Atomic int64_t head_since_us; /* HEAD: when it began waiting for a head */
    int cut;                    /* shut down by the sweeper */
} sdb__conn;
enum { SDB__PH_HEAD, SDB__PH_BODY, SDB__PH_BUSY };
#define SDB__CONN_RESERVE 4u /* connections past max_conns kept for health probes */

typedef struct sdb__wreq {
    struct sdb__wreq *next;
    uint32_t project;
    sdb_batch *b;
    int done, rc;
    struct MHD_Connection *conn; /* parked: resume it when done; NULL: a
                                    thread waits on done_cv */
} sdb__wreq;

typedef struct sdb__span {
    int64_t lo, hi; /* ingest times of commits not yet folded */
} sdb__span;
#define SDB__SPANS 4096

typedef struct sdb__centry {
    uint64_t hash, gen;
    uint32_t project;
    char *key;   /* the request body */
    size_t klen;
    char *val;
    size_t vlen;
} sdb__centry;

struct sdb_server {
    sdb_server_opts o;
    char listen[256];
    sdb_store *store;
    sdb_keys *keys;
    struct MHD_Daemon *d;
    uint16_t port;
    struct MHD_Daemon *hd; /* the health listener, or NULL */
    uint16_t health_port;
    _Atomic int64_t fake_now; /* INT64_MIN: not faked */

    /* writer: group commit */
    pthread_t writer;
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv, done_cv;
    sdb__wreq *wq_head, *wq_tail;
    int stopping;
    size_t parked;   /* suspended connections the writer still has to resume */
    size_t resumed;  /* resumed by the writer, reply not made yet */
    int no_park;     /* stopping HTTP: ingests wait on their thread instead */

    /* aggregator */
    pthread_t agg;
    pthread_mutex_t agg_mu;
    pthread_cond_t agg_cv;
    int agg_stop;
    int64_t folded_to;
    _Atomic int fold_rc; /* the last fold's code, to log each change once */
    int fold_unknown; /* the store may hold pending scores of unknown age */
    double last_tick_fold; /* monotonic s of the last fold */
    sdb__span spans[SDB__SPANS];
    size_t span_head, span_n;

    /* answer cache */
    pthread_mutex_t cache_mu;
    sdb__centry *cache;
    size_t cache_cap, cache_n;
    size_t cache_hand;            /* next slot the eviction looks at */
    _Atomic uint64_t cache_used;  /* bytes of keys, values and entries */
    _Atomic uint64_t cache_evictions;

    /* connections (http.c): deadlines, the reserve, the body budget */
    pthread_mutex_t conn_mu;
    pthread_cond_t sweep_cv;
    pthread_t sweeper;
    int sweeping, sweep_stop;
    sdb__conn *conns;             /* open connections */
    unsigned n_conns;
    _Atomic uint64_t body_held;   /* bytes of request bodies reserved */
    _Atomic int trim_wanted;      /* a large body was freed: malloc_trim on the next tick */
    _Atomic uint64_t served;      /* requests completed (the idle trim watches it) */
    _Atomic uint64_t trims;       /* malloc_trim calls (/metrics) */
    _Atomic uint64_t cut_head, cut_body, cut_full, refused_reserve, refused_budget;
    _Atomic uint64_t gen; /* bumped when answers may change */

    /* metrics */
    _Atomic int inflight;
    _Atomic uint64_t req[SDB_N_ROUTES][SDB_N_STATUS];
    _Atomic uint64_t lat[SDB_N_ROUTES][SDB_N_LAT];
    _Atomic uint64_t lat_sum_us[SDB_N_ROUTES];
    _Atomic uint64_t ingested, commits, cache_hits, cache_misses, folds;
};

#endif
