/* The query server (`scoredb serve`, API.md "HTTP API"), as functions that
 * the CLI and the integration tests both call: start on a listen address
 * (port 0: an ephemeral one), read the bound port, stop.
 *
 * Files: http.c owns libmicrohttpd (daemon, request lifecycle, limits,
 * metrics); serve.c owns the endpoints, the writer (group commit), the
 * aggregator (fold to now - delay), the answer cache and the CLI command;
 * keys.c owns API keys (libsodium). Only scoredb.h of the engine.
 */
#ifndef SDB_SERVER_H
#define SDB_SERVER_H

#include "scoredb.h"

#include <stdint.h>

typedef struct sdb_server sdb_server;

/* What the caller fills; zero means the default unless said otherwise. */
typedef struct sdb_server_opts {
    const char *db;           /* store directory (required) */
    const char *listen;       /* "HOST:PORT" ("127.0.0.1:8080"); port 0 = ephemeral */
    int64_t delay_ms;         /* aggregation delay; 0 = real time; < 0 = 10 minutes */
    unsigned threads;         /* HTTP thread pool (number of CPUs) */
    uint64_t max_body;        /* request body cap in bytes (8 MiB) */
    const char *keys_file;    /* NULL: one default project, loopback only */
    unsigned conn_timeout_s;  /* idle connection timeout (30 s) */
    unsigned max_conns;       /* open connections (1024) */
    unsigned max_inflight;    /* requests being served at once; past it 503 (256) */
    unsigned cache_entries;   /* cached query answers (1024) */
    uint64_t cache_bytes;     /* answer cache bytes, keys and values (1/64 of RAM,
                                 8 MiB to 1 GiB); an answer over 1/8 of it is not kept */
    int cache_off;            /* no answer cache at all (`--cache-bytes 0`: benchmarks
                                 that must time every query, not the cache) */
    unsigned head_timeout_s;  /* a whole request head within this (10 s) */
    uint64_t body_min_rate;   /* bytes/s a body must average once head_timeout_s
                                 has passed since its head (16 KiB/s) */
    unsigned max_per_ip;      /* open connections per client address (128) */
    const char *health_listen; /* "HOST:PORT" of a second listener with its own
                                 thread that serves /healthz and /metrics only
                                 (NULL: none); port 0 = ephemeral */
    uint64_t body_budget;     /* bytes of request bodies held at once, all
                                 connections together; past it 503 (256 MiB,
                                 at least max_body) */
    const char *clock_file;   /* tests: epoch ms read from this file is "now" */
    int fake_clock;           /* tests: start with "now" = fake_now_ms (see set_now) */
    int64_t fake_now_ms;
    int no_sync;              /* store without fsync (benchmarks only) */
    sdb_options query_limits; /* only its query_max_* fields are read (0: default) */
} sdb_server_opts;

/* Open the store and start serving. On success *out is a running server
 * owned by the caller (sdb_server_stop). On failure *out is NULL and err
 * says why. Returns SDB_OK, SDB_EINVAL (bad option, non-loopback address
 * without keys), SDB_EIO (cannot bind, store) or SDB_ENOMEM. */
int sdb_server_start(const sdb_server_opts *opts, sdb_server **out, char *err, size_t errlen);

/* The TCP port the server listens on. */
uint16_t sdb_server_port(const sdb_server *s);

/* The TCP port of the health listener (opts.health_listen), 0 without. */
uint16_t sdb_server_health_port(const sdb_server *s);

/* Move the fake clock (opts.fake_clock servers only). Any thread. */
void sdb_server_set_now(sdb_server *s, int64_t now_ms);

/* Stop accepting, finish requests in flight, commit queued ingests, stop
 * the threads, close the store and free. Takes NULL. */
void sdb_server_stop(sdb_server *s);

/* The `serve` command (server/commands.c). */
int sdb_cmd_serve(const char *db, int argc, char **argv);

#endif
