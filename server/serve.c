/* The query server's endpoints and the three pieces of state behind them.
 *
 * Writer (group commit). Ingest requests parse and validate their body
 * into their own sdb_batch on the HTTP thread, then queue it. One writer
 * thread takes everything queued, stores it with a single
 * sdb_store_ingest_many (one transaction, one fsync), and only then
 * releases the requests: no score is acknowledged before its commit, and N
 * concurrent requests cost one commit instead of N. A native ingest does
 * not hold its HTTP thread while it waits: the connection is suspended
 * (parked) and the writer resumes it, so that the pool's few threads
 * (one per core) go on receiving and parsing the next bodies while the
 * writer commits. With threads blocked instead, the writer sat idle a
 * quarter to a third of the time while its threads waited and a pool
 * thread with several connections served them one after the other.
 * The compatible routes wait on their thread (sdb__srv_commit).
 *
 * Aggregator (DESIGN.md "Aggregation delay"). Analytics see the scores
 * ingested at or before now - delay. A thread folds to that watermark once
 * a second; in addition the query path folds synchronously when a commit
 * it knows of has become due (`spans`: the ingest-time ranges of commits
 * not yet folded, one per second of ingest), so with delay 0 an answer
 * includes every acknowledged score, and a test that moves the fake clock
 * sees the move at once. List and get read the row store and see every
 * acknowledged score immediately.
 *
 * Cache. Query answers are cached by (project, request body) until the
 * answer may change: `gen` moves on every fold, commit and delete. The
 * cache is bounded in bytes (cache_bytes: keys, answers and a fixed cost
 * per entry) and in entries (cache_entries, the open-addressing table is
 * kept at most half full); an answer over 1/8 of the bound or 1 MiB is not
 * kept. To make room it evicts entries in slot order from a moving hand:
 * slots are hash order, so this is random eviction, which costs nothing
 * per hit (no LRU list under the lock on the read path) and, for a cache
 * invalidated wholesale on every commit, loses little to LRU. cache_off
 * (`--cache-bytes 0`) leaves the table out: every query is computed,
 * which benchmarks need when they time the engine over HTTP.
 *
 * Memory: kept warm while busy, given back when idle. A query's scratch
 * (values for percentiles, trace hashes, group tables: megabytes at 10M
 * scores) is malloc'd and freed on every request. malloc keeps it for the
 * next one (M_MMAP_THRESHOLD 64 MiB, M_TRIM_THRESHOLD 128 MiB). With the
 * threshold at 1 MiB, as it was (which also fixed the trim threshold at
 * 128 KiB), such buffers were fresh pages the kernel zeroed on first
 * touch: about 410 page faults a request of the worst cell of the 10M
 * HTTP matrix, 0.77 of its 3.16 ms of server CPU (in process, glibc's
 * moving thresholds keep them; bench/results/matrix-http-cpu.md).
 * Request bodies of 1 MiB and more are mapped pages of their own (http.c)
 * and go back at once. What the heap keeps goes back on the aggregator's
 * tick: after a burst of large bodies, and once the server has served
 * nothing for a whole tick (idle_trim), so RSS comes back down when the
 * work ends (docs/limits.md has the peak memory formula).
 *
 * A full disk (docs/reliability.md). Writes the disk refuses (no space,
 * I/O error) are answered 507 with a message naming the store, and
 * nothing is acknowledged that was not committed. Reads never depend on a
 * write: a fold that fails leaves analytics answering from what is folded
 * (their as_of says how old), and a store the disk will not open for
 * writes is opened read-only. /healthz then says "degraded" with the
 * reason, and the aggregator probes the disk each second until a write
 * commits again.
 */
#include "compat.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 100000u       /* scores per ingest request */
#define MAX_COMMIT_ROWS 500000u /* rows per group commit */
#define CACHE_VAL_MAX (1u << 20)
#define CACHE_ENTRY_COST 96u /* bytes an entry costs besides its key and answer */

/* ---------------------------------------------------------------- replies */

static void reply_text(sdb__reply *out, int status, char *body, const char *ctype)
{
    out->status = status;
    out->body = body;
    out->len = body ? strlen(body) : 0;
    out->ctype = ctype;
}

/* A JSON document, newline-terminated like the CLI's output. Takes `json`. */
static void reply_json(sdb__reply *out, int status, char *json)
{
    size_t n = strlen(json);
    char *p = realloc(json, n + 2);
    if (!p) {
        free(json);
        sdb__reply_error(out, 500, "out of memory");
        return;
    }
    p[n] = '\n';
    p[n + 1] = 0;
    out->status = status;
    out->body = p;
    out->len = n + 1;
    out->ctype = NULL;
}

void sdb__reply_error(sdb__reply *out, int status, const char *msg)
{
    char *b = strdup("{\"error\":");
    size_t len = b ? strlen(b) : 0;
    if (b && sdb_json_quote(msg, strlen(msg), &b, &len) == SDB_OK) {
        char *p = realloc(b, len + 3);
        if (p) {
            memcpy(p + len, "}\n", 3);
            out->status = status;
            out->body = p;
            out->len = len + 2;
            out->ctype = NULL;
            return;
        }
    }
    free(b);
    out->status = status;
    out->body = strdup("{\"error\":\"out of memory\"}\n");
    out->len = out->body ? strlen(out->body) : 0;
    out->ctype = NULL;
}

static void reply_engine_error(sdb__reply *out, int rc, const char *err)
{
    if (rc == SDB_EINVAL) {
        sdb__reply_error(out, 400, err && err[0] ? err : "invalid request");
    } else if (rc == SDB_ENOTFOUND) {
        sdb__reply_error(out, 404, "not found");
    } else if (rc == SDB_EBUSY && err && err[0]) {
        sdb__reply_error(out, 503, err); /* a query past its time cap */
    } else {
        char msg[600];
        snprintf(msg, sizeof msg, "%s%s%s", sdb_strerror(rc), err && err[0] ? ": " : "",
                 err ? err : "");
        sdb__reply_error(out, 500, msg);
    }
}

/* A write the store refused (rc): 507 Insufficient Storage naming the
 * store's disk when the disk refused it, else as any engine error. */
static void reply_write_error(sdb_server *s, sdb__reply *out, int rc, const char *what)
{
    char msg[700];
    if (sdb__srv_write_error(s, rc, what, msg, sizeof msg) == 507)
        sdb__reply_error(out, 507, msg);
    else
        reply_engine_error(out, rc, what);
}

int sdb__srv_write_error(sdb_server *s, int rc, const char *what, char *msg, size_t len)
{
    if (rc != SDB_ENOSPC && rc != SDB_EIO) {
        snprintf(msg, len, "%s: %s", sdb_strerror(rc), what);
        return rc == SDB_EBUSY ? 503 : 500;
    }
    char why[600];
    if (!sdb_store_health(s->store, why, sizeof why))
        snprintf(why, sizeof why, "%s: the disk of store %s refused a write", sdb_strerror(rc),
                 sdb_store_path(s->store));
    snprintf(msg, len, "%s; %s", why, what);
    return 507;
}

/* GET /healthz: {"status":"ok"}, or 200 {"status":"degraded","reason",
 * "writes":false} while the disk refuses writes: reads still answer, so a
 * liveness check must not restart a server that a restart cannot mend. */
static void reply_health(sdb_server *s, sdb__reply *out)
{
    char why[600];
    if (!sdb_store_health(s->store, why, sizeof why)) {
        reply_text(out, 200, strdup("{\"status\":\"ok\"}\n"), NULL);
        return;
    }
    char *b = strdup("{\"status\":\"degraded\",\"writes\":false,\"reason\":");
    size_t len = b ? strlen(b) : 0;
    char *p = b && sdb_json_quote(why, strlen(why), &b, &len) == SDB_OK ? realloc(b, len + 2)
                                                                      : NULL;
    if (!p) {
        free(b);
        return;
    }
    memcpy(p + len, "}", 2);
    reply_json(out, 200, p);
}

/* ------------------------------------------------------------------ clock */

int64_t sdb__srv_now(sdb_server *s)
{
    int64_t f = atomic_load(&s->fake_now);
    if (f != INT64_MIN) return f;
    if (s->o.clock_file) {
        FILE *fp = fopen(s->o.clock_file, "r");
        long long v;
        int ok = fp && fscanf(fp, "%lld", &v) == 1;
        if (fp) fclose(fp);
        if (ok) return v;
    }
    return sdb_now_ms();
}

void sdb_server_set_now(sdb_server *s, int64_t now_ms) { atomic_store(&s->fake_now, now_ms); }

/* ------------------------------------------------------------- aggregator */

static int64_t delay_of(const sdb_server *s) { return s->o.delay_ms; }

/* Called with agg_mu held. */
static void spans_push(sdb_server *s, int64_t t)
{
    if (s->span_n) {
        sdb__span *tail = &s->spans[(s->span_head + s->span_n - 1) % SDB__SPANS];
        if (t / 1000 == tail->lo / 1000 || s->span_n == SDB__SPANS) {
            if (t > tail->hi) tail->hi = t;
            if (t < tail->lo) tail->lo = t;
            return;
        }
    }
    s->spans[(s->span_head + s->span_n) % SDB__SPANS] = (sdb__span){t, t};
    s->span_n++;
}

static void spans_folded(sdb_server *s, int64_t w)
{
    while (s->span_n && s->spans[s->span_head].hi <= w) {
        s->span_head = (s->span_head + 1) % SDB__SPANS;
        s->span_n--;
    }
    if (s->span_n && s->spans[s->span_head].lo <= w) s->spans[s->span_head].lo = w + 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fold to now - delay when a known commit became due. `force` is the
 * periodic tick: it also folds scores of unknown age (pending from before
 * this process, or written by another one), and moves an idle store's
 * as_of forward once a minute. Cached answers are dropped only when rows
 * were folded: an answer whose as_of is a little older is still exactly
 * the answer at that watermark, and keeping it spares a dashboard's
 * pollers a recomputation every second. */
static int fold_due(sdb_server *s, int force)
{
    int64_t now = sdb__srv_now(s), target = now - delay_of(s);
    pthread_mutex_lock(&s->agg_mu);
    int due_rows = s->fold_unknown || (s->span_n && s->spans[s->span_head].lo <= target);
    int due = due_rows;
    uint64_t before = 0, after = 0;
    int rc = SDB_OK;
    if (!due && force && target > s->folded_to) {
        rc = sdb_store_watermark(s->store, NULL, &before);
        due = rc == SDB_OK && (before > 0 || mono_s() - s->last_tick_fold >= 60);
    }
    if (due) {
        rc = sdb_store_fold(s->store, target, &after);
        if (rc == SDB_OK) {
            if (target > s->folded_to) s->folded_to = target;
            s->fold_unknown = 0;
            s->last_tick_fold = mono_s();
            spans_folded(s, target);
            if (due_rows || after < before) atomic_fetch_add(&s->gen, 1);
            atomic_fetch_add(&s->folds, 1);
        }
    }
    pthread_mutex_unlock(&s->agg_mu);
    return rc;
}

/* A failed fold, on stderr once per change of cause (it is retried each
 * second). Any thread. */
static void fold_failed(sdb_server *s, int rc)
{
    if (atomic_exchange(&s->fold_rc, rc) == rc) return;
    char why[600] = "";
    if (rc) sdb_store_health(s->store, why, sizeof why);
    if (rc)
        fprintf(stderr, "scoredb serve: fold failed: %s%s%s; analytics answer from what is "
                        "folded\n", sdb_strerror(rc), why[0] ? ": " : "", why);
    else
        fprintf(stderr, "scoredb serve: folding again\n");
}

/* The tick's malloc_trim when nothing was served since the last tick and
 * something was since the last trim: once per idle spell, never while
 * requests keep coming (a trim there would hand back the scratch the next
 * query is about to fault in again). */
static int idle_trim(sdb_server *s, uint64_t *seen, uint64_t *trimmed)
{
    uint64_t served = atomic_load(&s->served);
    int idle = served == *seen && served != *trimmed;
    *seen = served;
    if (idle) *trimmed = served;
    return idle;
}

static void *agg_main(void *arg)
{
    sdb_server *s = arg;
    uint64_t seen = 0, trimmed = 0;
    pthread_mutex_lock(&s->agg_mu);
    while (!s->agg_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->agg_cv, &s->agg_mu, &ts);
        if (s->agg_stop) break;
        pthread_mutex_unlock(&s->agg_mu);
        /* While the disk refuses writes, try it once a tick: writes resume
         * (and /healthz says ok) as soon as space returns, also with no
         * ingest or fold to notice it. */
        int refused = sdb_store_health(s->store, NULL, 0);
        if (refused && (refused = sdb_store_probe(s->store)) == SDB_OK)
            fprintf(stderr, "scoredb serve: the store takes writes again\n");
        if (!refused) fold_failed(s, fold_due(s, 1));
        /* A burst of large bodies ended, or the server went idle: give
         * the heap's free pages back (milliseconds at most, once a second
         * at most). */
        int burst = atomic_load(&s->trim_wanted) &&
                    atomic_load(&s->body_held) < s->o.body_budget / 4;
        if (idle_trim(s, &seen, &trimmed) || burst) {
            atomic_store(&s->trim_wanted, 0);
            malloc_trim(0);
            atomic_fetch_add(&s->trims, 1);
        }
        pthread_mutex_lock(&s->agg_mu);
    }
    pthread_mutex_unlock(&s->agg_mu);
    return NULL;
}

/* ----------------------------------------------------------------- writer */

static void *writer_main(void *arg)
{
    sdb_server *s = arg;
    size_t cap = 64;
    uint32_t *projects = malloc(cap * sizeof *projects);
    sdb_batch **batches = malloc(cap * sizeof *batches);
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->stopping) pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        if (!s->wq_head) break; /* stopping and drained */
        /* Take a prefix of the queue, bounded in rows. */
        sdb__wreq *first = s->wq_head, *last = first;
        size_t n = 1, rows = sdb_batch_rows(first->b);
        while (last->next && rows + sdb_batch_rows(last->next->b) <= MAX_COMMIT_ROWS) {
            last = last->next;
            rows += sdb_batch_rows(last->b);
            n++;
        }
        s->wq_head = last->next;
        if (!s->wq_head) s->wq_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->wq_mu);

        int rc = SDB_OK;
        if (n > cap) {
            size_t nc = n * 2;
            uint32_t *p = realloc(projects, nc * sizeof *p);
            if (p) projects = p;
            sdb_batch **b = realloc(batches, nc * sizeof *b);
            if (b) batches = b;
            if (p && b) cap = nc;
        }
        if (!projects || !batches || n > cap) rc = SDB_ENOMEM;
        if (rc == SDB_OK) {
            size_t i = 0;
            for (sdb__wreq *w = first; w; w = w->next, i++) {
                projects[i] = w->project;
                batches[i] = w->b;
            }
            int64_t now = sdb__srv_now(s);
            rc = sdb_store_ingest_many(s->store, projects, batches, n, now);
            if (rc == SDB_OK) {
                pthread_mutex_lock(&s->agg_mu);
                spans_push(s, now);
                pthread_mutex_unlock(&s->agg_mu);
                atomic_fetch_add(&s->ingested, rows);
                if (s->keys)
                    for (sdb__wreq *w = first; w; w = w->next)
                        sdb_keys_note_ingested(s->keys, w->project, sdb_batch_rows(w->b));
                atomic_fetch_add(&s->commits, 1);
                atomic_fetch_add(&s->gen, 1);
            }
        }
        pthread_mutex_lock(&s->wq_mu);
        size_t resumed = 0;
        for (sdb__wreq *w = first, *nx; w; w = nx) {
            nx = w->next;
            w->rc = rc;
            w->done = 1;
            /* Once resumed, the request may be answered and freed by its
             * HTTP thread at once: w is not touched after this. */
            if (w->conn) {
                sdb__http_resume(w->conn);
                resumed++;
            }
        }
        s->parked -= resumed;
        s->resumed += resumed;
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->wq_mu);
    free(projects);
    free(batches);
    return NULL;
}

/* Called with wq_mu held. */
static void enqueue(sdb_server *s, sdb__wreq *w)
{
    if (s->wq_tail)
        s->wq_tail->next = w;
    else
        s->wq_head = w;
    s->wq_tail = w;
    pthread_cond_signal(&s->wq_cv);
}

/* Queue a batch and wait for its commit. */
static int commit(sdb_server *s, uint32_t project, sdb_batch *b)
{
    sdb__wreq w = {NULL, project, b, 0, 0, NULL};
    pthread_mutex_lock(&s->wq_mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->wq_mu);
        return SDB_EBUSY;
    }
    enqueue(s, &w);
    while (!w.done) pthread_cond_wait(&s->done_cv, &s->wq_mu);
    pthread_mutex_unlock(&s->wq_mu);
    return w.rc;
}

/* A native ingest parked until its commit (sdb__req.parked). */
typedef struct parked_ingest {
    sdb__wreq w;
    char *errs;   /* the rejected rows, for a 207 */
    size_t n_err;
} parked_ingest;

/* Queue the batch of a request on connection c and suspend c; the writer
 * resumes it. Takes b and errs on success (r->parked); returns -1, taking
 * nothing, when the server is stopping its HTTP side: commit on the thread
 * then. */
static int park(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb_batch *b, char *errs,
                size_t n_err)
{
    parked_ingest *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->w = (sdb__wreq){NULL, r->project, b, 0, 0, c};
    p->errs = errs;
    p->n_err = n_err;
    pthread_mutex_lock(&s->wq_mu);
    if (s->no_park || s->stopping) {
        pthread_mutex_unlock(&s->wq_mu);
        free(p);
        return -1;
    }
    /* Suspend before the writer can see it: resuming a connection that is
     * not suspended is undefined (microhttpd.h). */
    sdb__http_suspend(c);
    r->parked = p;
    s->parked++;
    enqueue(s, &p->w);
    pthread_mutex_unlock(&s->wq_mu);
    return 0;
}

void sdb__serve_req_done(sdb_server *s, sdb__req *r)
{
    parked_ingest *p = r->parked;
    if (!p) return;
    sdb_batch_free(p->w.b);
    free(p->errs);
    free(p);
    r->parked = NULL;
    /* Only a resumed request gets here: none is suspended when the daemon
     * closes its connections (sdb_server_stop). */
    pthread_mutex_lock(&s->wq_mu);
    s->resumed--;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->wq_mu);
}

int sdb__srv_commit(sdb_server *s, uint32_t project, sdb_batch *b)
{
    return commit(s, project, b);
}

/* Reads call this: a fold the disk refuses is retried by the aggregator
 * and logged there, never the read's failure. While the disk refuses
 * writes reads do not try: a fold builds its segments before its commit
 * fails, and a backlog of a million scores would cost each read ~0.3 s. */
int sdb__srv_fold(sdb_server *s)
{
    if (sdb_store_health(s->store, NULL, 0) == SDB_OK) fold_due(s, 0);
    return SDB_OK;
}

/* ------------------------------------------------------------------ cache */

static uint64_t fnv(uint32_t project, const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ project;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}

static char *cache_get(sdb_server *s, uint32_t project, const char *key, size_t klen,
                       uint64_t gen, size_t *vlen)
{
    if (!s->cache_cap) return NULL;
    uint64_t h = fnv(project, key, klen);
    char *out = NULL;
    pthread_mutex_lock(&s->cache_mu);
    for (size_t i = h & (s->cache_cap - 1);; i = (i + 1) & (s->cache_cap - 1)) {
        sdb__centry *e = &s->cache[i];
        if (!e->hash) break;
        if (e->hash == h && e->project == project && e->klen == klen &&
            !memcmp(e->key, key, klen)) {
            if (e->gen == gen && (out = malloc(e->vlen + 1))) {
                memcpy(out, e->val, e->vlen + 1);
                *vlen = e->vlen;
            }
            break;
        }
    }
    pthread_mutex_unlock(&s->cache_mu);
    return out;
}

static size_t centry_cost(const sdb__centry *e) { return e->klen + e->vlen + CACHE_ENTRY_COST; }

static void cache_clear_locked(sdb_server *s)
{
    for (size_t i = 0; i < s->cache_cap; i++) {
        free(s->cache[i].key);
        free(s->cache[i].val);
        memset(&s->cache[i], 0, sizeof s->cache[i]);
    }
    s->cache_n = 0;
    atomic_store(&s->cache_used, 0);
}

/* Empty slot i of the linear-probing table, moving back each later entry
 * of the cluster that would no longer be found past the hole (Knuth's
 * algorithm R, TAOCP 6.4), so no tombstones are needed. */
static void cache_delete_locked(sdb_server *s, size_t i)
{
    size_t mask = s->cache_cap - 1;
    sdb__centry *e = &s->cache[i];
    atomic_fetch_sub(&s->cache_used, centry_cost(e));
    free(e->key);
    free(e->val);
    s->cache_n--;
    for (size_t j = (i + 1) & mask; s->cache[j].hash; j = (j + 1) & mask) {
        size_t home = s->cache[j].hash & mask;
        /* Entry j may stay when its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        s->cache[i] = s->cache[j];
        i = j;
    }
    memset(&s->cache[i], 0, sizeof s->cache[i]);
}

/* Evict from the hand until `need` more bytes and one more entry fit. */
static void cache_make_room_locked(sdb_server *s, size_t need)
{
    while (s->cache_n && (atomic_load(&s->cache_used) + need > s->o.cache_bytes ||
                          (s->cache_n + 1) * 2 > s->cache_cap)) {
        size_t i = s->cache_hand & (s->cache_cap - 1);
        if (s->cache[i].hash) {
            cache_delete_locked(s, i);
            atomic_fetch_add(&s->cache_evictions, 1);
        }
        s->cache_hand = i + 1;
    }
}

static void cache_put(sdb_server *s, uint32_t project, const char *key, size_t klen,
                      uint64_t gen, const char *val, size_t vlen)
{
    size_t need = klen + vlen + CACHE_ENTRY_COST;
    if (!s->cache_cap || vlen > CACHE_VAL_MAX || need > s->o.cache_bytes / 8) return;
    uint64_t h = fnv(project, key, klen);
    char *k = malloc(klen + 1), *v = malloc(vlen + 1);
    if (!k || !v) {
        free(k);
        free(v);
        return;
    }
    memcpy(k, key, klen);
    k[klen] = 0;
    memcpy(v, val, vlen + 1);
    pthread_mutex_lock(&s->cache_mu);
    size_t mask = s->cache_cap - 1;
    /* The same request cached before (an older generation): replace it. */
    for (size_t i = h & mask; s->cache[i].hash; i = (i + 1) & mask) {
        sdb__centry *e = &s->cache[i];
        if (e->hash == h && e->project == project && e->klen == klen &&
            !memcmp(e->key, key, klen)) {
            cache_delete_locked(s, i);
            break;
        }
    }
    cache_make_room_locked(s, need);
    size_t i = h & mask;
    while (s->cache[i].hash) i = (i + 1) & mask;
    s->cache[i] = (sdb__centry){h, gen, project, k, klen, v, vlen};
    s->cache_n++;
    atomic_fetch_add(&s->cache_used, need);
    pthread_mutex_unlock(&s->cache_mu);
}

/* -------------------------------------------------------------- endpoints */

static void ingest_reply(sdb_server *s, sdb__reply *out, int rc, sdb_batch *b, const char *errs,
                         size_t n_err);

static void ep_ingest(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb__reply *out)
{
    if (!r->len) {
        sdb__reply_error(out, 400, "body: empty; send a JSON array of scores, {\"scores\": "
                                   "[...]}, or NDJSON");
        return;
    }
    const char *ct = sdb__http_ctype(c);
    int nd = ct && (!strncasecmp(ct, "application/x-ndjson", 20) ||
                    !strncasecmp(ct, "application/jsonl", 17) ||
                    !strncasecmp(ct, "application/ndjson", 18));
    sdb_batch *b;
    if (sdb_batch_new(&b)) {
        sdb__reply_error(out, 500, "out of memory");
        return;
    }
    size_t items, n_err;
    char *errs = NULL, err[512] = "";
    int rc = sdb_batch_add_body(b, r->body, r->len, nd, MAX_ITEMS, &items, &n_err, &errs, err,
                                sizeof err);
    if (rc) {
        reply_engine_error(out, rc == SDB_ELIMIT ? SDB_EINVAL : rc, err);
        sdb_batch_free(b);
        return;
    }
    if (sdb_batch_rows(b) == 0) {
        const char *head = items ? "{\"error\":\"no valid score in the body\",\"accepted\":0,"
                                   "\"errors\":["
                                 : "{\"error\":\"body: no scores\",\"accepted\":0,\"errors\":[";
        size_t hl = strlen(head), el = strlen(errs);
        char *body = malloc(hl + el + 4);
        if (body) {
            memcpy(body, head, hl);
            memcpy(body + hl, errs, el);
            memcpy(body + hl + el, "]}", 3);
            reply_json(out, 400, body);
        } else {
            sdb__reply_error(out, 500, "out of memory");
        }
        free(errs);
        sdb_batch_free(b);
        return;
    }
    if (c && park(s, c, r, b, errs, n_err) == 0) return;
    ingest_reply(s, out, commit(s, r->project, b), b, errs, n_err);
    free(errs);
    sdb_batch_free(b);
}

void sdb__serve_resumed(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    parked_ingest *p = r->parked;
    ingest_reply(s, out, p->w.rc, p->w.b, p->errs, p->n_err);
    sdb__serve_req_done(s, r);
    if (!out->body) sdb__reply_error(out, 500, "out of memory");
}

/* A reply body that doubles as it grows, so a reply of n ids costs O(n)
 * bytes copied: appending each id with a realloc to the exact size was
 * quadratic (100k ids took over 120 s under ASan, whose realloc always
 * copies). */
typedef struct rbuf {
    char *p;
    size_t len, cap;
    int failed;
} rbuf;

static void rb_add(rbuf *b, const char *p, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* The reply to an ingest whose commit returned rc: 200 with the ids of the
 * batch's rows, 207 when some rows were rejected (errs, n_err). */
static void ingest_reply(sdb_server *s, sdb__reply *out, int rc, sdb_batch *b, const char *errs,
                         size_t n_err)
{
    if (rc) {
        reply_write_error(s, out, rc, "the scores were not stored");
        return;
    }
    size_t ok = sdb_batch_rows(b);
    char head[64];
    rbuf body = {NULL, 0, 0, 0};
    char *q = NULL; /* one id quoted, reused: sdb_json_quote appends to it */
    size_t qlen = 0;
    snprintf(head, sizeof head, "{\"accepted\":%zu,\"ids\":[", ok);
    rb_add(&body, head, strlen(head));
    for (size_t i = 0; i < ok && !body.failed; i++) {
        const char *id = sdb_batch_id(b, i);
        if (i) rb_add(&body, ",", 1);
        qlen = 0;
        if (sdb_json_quote(id, strlen(id), &q, &qlen)) body.failed = 1;
        else rb_add(&body, q, qlen);
    }
    free(q);
    if (n_err) {
        rb_add(&body, "],\"errors\":[", 12);
        rb_add(&body, errs, strlen(errs));
    }
    rb_add(&body, "]}", 2);
    if (body.failed) {
        free(body.p);
        sdb__reply_error(out, 500, "out of memory (the scores were stored)");
        return;
    }
    reply_json(out, n_err ? 207 : 200, body.p);
}

static void ep_query(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb__srv_fold(s); /* a failed fold leaves the answer at the old as_of */
    uint64_t gen = atomic_load(&s->gen);
    const char *body = r->body ? r->body : "";
    size_t vlen;
    char *hit = cache_get(s, r->project, body, r->len, gen, &vlen);
    if (hit) {
        atomic_fetch_add(&s->cache_hits, 1);
        reply_text(out, 200, hit, NULL);
        return;
    }
    atomic_fetch_add(&s->cache_misses, 1);
    char *ans = NULL, err[512] = "";
    int rc = sdb_query_json(s->store, r->project, body, r->len, &ans, err, sizeof err);
    if (rc) {
        reply_engine_error(out, rc, err);
        return;
    }
    reply_json(out, 200, ans);
    if (out->status == 200) cache_put(s, r->project, body, r->len, gen, out->body, out->len);
}

static void ep_names(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    sdb__srv_fold(s);
    char *ans = NULL;
    int rc = sdb_names_json(s->store, r->project, &ans);
    if (rc)
        reply_engine_error(out, rc, NULL);
    else
        reply_json(out, 200, ans);
}

static void ep_list(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb__reply *out)
{
    sdb_param *params = NULL;
    size_t n = sdb__http_args(c, &params);
    char *ans = NULL, err[512] = "";
    int rc = sdb_scores_list_json(s->store, r->project, params, n, &ans, err, sizeof err);
    free(params);
    if (rc)
        reply_engine_error(out, rc, err);
    else
        reply_json(out, 200, ans);
}

static void ep_get(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    char *ans = NULL;
    int rc = sdb_score_get_json(s->store, r->project, r->id, &ans);
    if (rc == SDB_ENOTFOUND)
        sdb__reply_error(out, 404, "no score with this id");
    else if (rc)
        reply_engine_error(out, rc, NULL);
    else
        reply_json(out, 200, ans);
}

static void ep_delete(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    int rc = sdb_score_delete(s->store, r->project, r->id);
    if (rc == SDB_ENOTFOUND) {
        sdb__reply_error(out, 404, "no score with this id");
        return;
    }
    if (rc) {
        reply_write_error(s, out, rc, "the score was not deleted");
        return;
    }
    atomic_fetch_add(&s->gen, 1);
    char *b = strdup("{\"deleted\":");
    size_t len = b ? strlen(b) : 0;
    if (b && sdb_json_quote(r->id, strlen(r->id), &b, &len) == SDB_OK) {
        char *p = realloc(b, len + 2);
        if (p) {
            memcpy(p + len, "}", 2);
            reply_json(out, 200, p);
            return;
        }
    }
    free(b);
    sdb__reply_error(out, 500, "out of memory (the score was deleted)");
}

static void ep_traces(sdb_server *s, sdb__req *r, sdb__reply *out)
{
    char *ans = NULL, err[512] = "";
    int rc = sdb_traces_search_json(s->store, r->project, r->body ? r->body : "", r->len, &ans,
                                    err, sizeof err);
    if (rc)
        reply_engine_error(out, rc, err);
    else
        reply_json(out, 200, ans);
}

void sdb__serve_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r, sdb__reply *out)
{
    switch (r->route) {
    case SDB_R_HEALTHZ: reply_health(s, out); break;
    case SDB_R_METRICS: {
        size_t len;
        char *m = sdb__metrics_text(s, r, &len);
        reply_text(out, 200, m, "text/plain; version=0.0.4");
        break;
    }
    case SDB_R_SCORES_POST: ep_ingest(s, c, r, out); break;
    case SDB_R_SCORES_LIST: ep_list(s, c, r, out); break;
    case SDB_R_SCORE_GET: ep_get(s, r, out); break;
    case SDB_R_SCORE_DELETE: ep_delete(s, r, out); break;
    case SDB_R_NAMES: ep_names(s, r, out); break;
    case SDB_R_QUERY: ep_query(s, r, out); break;
    case SDB_R_TRACES: ep_traces(s, r, out); break;
    case SDB_R_LANGFUSE:
    case SDB_R_HELICONE: sdb__compat_dispatch(s, c, r, out); break;
    default: sdb__reply_error(out, 404, "no such path"); break;
    }
    if (!out->body && !r->parked) sdb__reply_error(out, 500, "out of memory");
}

/* -------------------------------------------------------------- lifecycle */

int sdb_server_start(const sdb_server_opts *opts, sdb_server **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen) err[0] = 0;
    if (!opts->db) {
        snprintf(err, errlen, "--db DIR is required");
        return SDB_EINVAL;
    }
    sdb_server *s = calloc(1, sizeof *s);
    if (!s) return SDB_ENOMEM;
    s->o = *opts;
    snprintf(s->listen, sizeof s->listen, "%s", opts->listen ? opts->listen : "127.0.0.1:8080");
    if (s->o.delay_ms < 0) s->o.delay_ms = 10 * 60 * 1000;
    if (!s->o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->o.threads = n > 0 ? (unsigned)n : 2;
    }
    if (!s->o.max_body) s->o.max_body = 8u << 20;
    if (!s->o.conn_timeout_s) s->o.conn_timeout_s = 30;
    if (!s->o.max_conns) s->o.max_conns = 1024;
    if (!s->o.max_inflight) s->o.max_inflight = 256;
    if (!s->o.cache_entries) s->o.cache_entries = 1024;
    if (!s->o.cache_bytes) {
        /* A small fraction of RAM: 1/64, from 8 MiB to 1 GiB. */
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        uint64_t ram = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 1ull << 30;
        s->o.cache_bytes = ram / 64;
        if (s->o.cache_bytes < (8u << 20)) s->o.cache_bytes = 8u << 20;
        if (s->o.cache_bytes > (1u << 30)) s->o.cache_bytes = 1u << 30;
    }
    if (!s->o.head_timeout_s) s->o.head_timeout_s = 10;
    if (!s->o.body_min_rate) s->o.body_min_rate = 16u << 10;
    if (!s->o.max_per_ip) s->o.max_per_ip = 128;
    if (!s->o.body_budget) s->o.body_budget = 256u << 20;
    if (s->o.body_budget < s->o.max_body + 1) s->o.body_budget = s->o.max_body + 1;
    /* Process-wide, and the server is the process: see "Memory" above.
     * Fixed values also turn off glibc's adjustment. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    sdb_malloc_policy_is_hosts(); /* the engine's own setting would override these */
    atomic_init(&s->fake_now, opts->fake_clock ? opts->fake_now_ms : INT64_MIN);
    s->fold_unknown = 1;
    s->folded_to = INT64_MIN;
    if (s->o.cache_off) {
        s->o.cache_bytes = 0; /* what /metrics reports as the bound */
        s->cache_cap = 0;     /* cache_get and cache_put do nothing */
    } else {
        for (s->cache_cap = 16; s->cache_cap < 2 * (size_t)s->o.cache_entries;) s->cache_cap *= 2;
        s->cache = calloc(s->cache_cap, sizeof *s->cache);
    }
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_mutex_init(&s->agg_mu, NULL);
    pthread_cond_init(&s->agg_cv, NULL);
    pthread_mutex_init(&s->cache_mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->sweep_cv, NULL);
    int rc = s->cache || s->o.cache_off ? SDB_OK : SDB_ENOMEM;
    sdb_options so = {0};
    so.no_sync = opts->no_sync;
    so.fallback_read_only = 1; /* start on a full disk: serve reads */
    so.query_max_cells = opts->query_limits.query_max_cells;
    so.query_max_answer_bytes = opts->query_limits.query_max_answer_bytes;
    so.query_max_mem_bytes = opts->query_limits.query_max_mem_bytes;
    so.query_max_ms = opts->query_limits.query_max_ms;
    if (rc == SDB_OK) rc = sdb_store_open(opts->db, &so, &s->store, err, errlen);
    if (rc == SDB_OK && opts->keys_file)
        rc = sdb_keys_load(opts->keys_file, s->store, &s->keys, err, errlen);
    int writer = 0, agg = 0;
    if (rc == SDB_OK) {
        writer = pthread_create(&s->writer, NULL, writer_main, s) == 0;
        agg = pthread_create(&s->agg, NULL, agg_main, s) == 0;
        if (!writer || !agg) rc = SDB_ENOMEM;
    }
    if (rc == SDB_OK) {
        char why[600];
        if (sdb_store_health(s->store, why, sizeof why))
            fprintf(stderr, "scoredb serve: %s; serving reads, writes answer 507 until the disk "
                            "takes them\n", why);
        fold_failed(s, fold_due(s, 1)); /* a full disk must not stop the start */
        rc = sdb__http_start(s, err, errlen);
    }
    if (rc) {
        if (err && errlen && !err[0]) snprintf(err, errlen, "%s", sdb_strerror(rc));
        pthread_mutex_lock(&s->wq_mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->wq_cv);
        pthread_mutex_unlock(&s->wq_mu);
        pthread_mutex_lock(&s->agg_mu);
        s->agg_stop = 1;
        pthread_cond_broadcast(&s->agg_cv);
        pthread_mutex_unlock(&s->agg_mu);
        if (writer) pthread_join(s->writer, NULL);
        if (agg) pthread_join(s->agg, NULL);
        s->d = NULL;
        sdb_server_stop(s);
        return rc;
    }
    *out = s;
    return SDB_OK;
}

uint16_t sdb_server_port(const sdb_server *s) { return s->port; }

uint16_t sdb_server_health_port(const sdb_server *s) { return s->health_port; }

void sdb_server_stop(sdb_server *s)
{
    if (!s) return;
    if (s->d) {
        /* No connection may be suspended when the daemon stops
         * (microhttpd.h): from now on ingests wait on their thread, and
         * the writer resumes the parked ones. Then give the resumed ones
         * a moment to make their replies, so that what was committed is
         * acknowledged too (bounded: a reply costs milliseconds). */
        pthread_mutex_lock(&s->wq_mu);
        s->no_park = 1;
        while (s->parked) pthread_cond_wait(&s->done_cv, &s->wq_mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        while (s->resumed && pthread_cond_timedwait(&s->done_cv, &s->wq_mu, &until) == 0) {
        }
        pthread_mutex_unlock(&s->wq_mu);
        sdb__http_stop(s);
        pthread_mutex_lock(&s->wq_mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->wq_cv);
        pthread_mutex_unlock(&s->wq_mu);
        pthread_join(s->writer, NULL);
        pthread_mutex_lock(&s->agg_mu);
        s->agg_stop = 1;
        pthread_cond_broadcast(&s->agg_cv);
        pthread_mutex_unlock(&s->agg_mu);
        pthread_join(s->agg, NULL);
    }
    if (s->cache) {
        cache_clear_locked(s);
        free(s->cache);
    }
    sdb_keys_free(s->keys);
    sdb_store_close(s->store);
    pthread_mutex_destroy(&s->wq_mu);
    pthread_cond_destroy(&s->wq_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->agg_mu);
    pthread_cond_destroy(&s->agg_cv);
    pthread_mutex_destroy(&s->cache_mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->sweep_cv);
    free(s);
}

/* ------------------------------------------------------------ the command */

static volatile sig_atomic_t got_signal;

/* serve.c is also linked into the tests, without main.c: its own usage. */
static int usage_error(const char *msg)
{
    fprintf(stderr, "scoredb serve: %s\n"
                    "usage: scoredb serve --db DIR [--listen 127.0.0.1:8080] "
                    "[--aggregation-delay 10m]\n"
                    "                     [--threads N] [--max-body 8MiB] [--keys FILE]\n"
                    "                     [--max-connections N] [--max-inflight N]\n"
                    "                     [--max-per-ip N] [--head-timeout 10s]\n"
                    "                     [--body-min-rate 16KiB] [--body-budget 256MiB]\n"
                    "                     [--cache-bytes SIZE|0] [--health-listen HOST:PORT]\n"
                    "                     [--query-max-cells N] [--query-max-answer SIZE]\n"
                    "                     [--query-max-mem SIZE] [--query-max-ms N]\n"
                    "                     (docs/limits.md, docs/query-engine.md)\n",
            msg);
    return 2;
}
static void on_signal(int sig) { got_signal = sig; }

/* "8MiB", "512k", "1048576" into bytes. */
static int parse_size(const char *t, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (end == t || errno || t[0] == '-') return -1;
    uint64_t m = 1;
    if (!strcasecmp(end, "") || !strcasecmp(end, "b")) m = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb") || !strcasecmp(end, "kib")) m = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb") || !strcasecmp(end, "mib")) m = 1u << 20;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb") || !strcasecmp(end, "gib")) m = 1u << 30;
    else return -1;
    if (v == 0 || v > UINT64_MAX / m) return -1;
    *out = v * m;
    return 0;
}

int sdb_cmd_serve(const char *db, int argc, char **argv)
{
    sdb_server_opts o;
    memset(&o, 0, sizeof o);
    o.db = db;
    o.delay_ms = -1;
    o.clock_file = getenv("SCOREDB_FAKE_NOW_FILE");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--listen") && v) {
            o.listen = v;
        } else if (!strcmp(a, "--aggregation-delay") && v) {
            if (sdb_duration_parse(v, &o.delay_ms) || o.delay_ms < 0)
                return usage_error("--aggregation-delay: expected a duration (10m, 0, 1h30m)");
        } else if (!strcmp(a, "--threads") && v) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1024) return usage_error("--threads: expected 1 to 1024");
            o.threads = (unsigned)n;
        } else if (!strcmp(a, "--max-body") && v) {
            if (parse_size(v, &o.max_body))
                return usage_error("--max-body: expected a size (8MiB, 512KiB, bytes)");
        } else if (!strcmp(a, "--keys") && v) {
            o.keys_file = v;
        } else if (!strcmp(a, "--max-connections") && v) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1) return usage_error("--max-connections: expected a count");
            o.max_conns = (unsigned)n;
        } else if (!strcmp(a, "--max-inflight") && v) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1) return usage_error("--max-inflight: expected a count");
            o.max_inflight = (unsigned)n;
        } else if (!strcmp(a, "--max-per-ip") && v) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1) return usage_error("--max-per-ip: expected a count");
            o.max_per_ip = (unsigned)n;
        } else if (!strcmp(a, "--head-timeout") && v) {
            int64_t ms;
            if (sdb_duration_parse(v, &ms) || ms < 1000 || ms > 3600 * 1000)
                return usage_error("--head-timeout: expected a duration from 1s to 1h (10s)");
            o.head_timeout_s = (unsigned)(ms / 1000);
        } else if (!strcmp(a, "--body-min-rate") && v) {
            if (parse_size(v, &o.body_min_rate))
                return usage_error("--body-min-rate: expected bytes per second (16KiB)");
        } else if (!strcmp(a, "--body-budget") && v) {
            if (parse_size(v, &o.body_budget))
                return usage_error("--body-budget: expected a size (256MiB)");
        } else if (!strcmp(a, "--cache-bytes") && v) {
            if (!strcmp(v, "0"))
                o.cache_off = 1;
            else if (parse_size(v, &o.cache_bytes))
                return usage_error("--cache-bytes: expected a size (64MiB), or 0 for no cache");
        } else if (!strcmp(a, "--health-listen") && v) {
            o.health_listen = v;
        } else if (!strcmp(a, "--query-max-cells") && v) {
            long long n = strtoll(v, &end, 10);
            if (*end || n < 1) return usage_error("--query-max-cells: expected a count");
            o.query_limits.query_max_cells = (uint64_t)n;
        } else if (!strcmp(a, "--query-max-answer") && v) {
            if (parse_size(v, &o.query_limits.query_max_answer_bytes))
                return usage_error("--query-max-answer: expected a size (64MiB)");
        } else if (!strcmp(a, "--query-max-mem") && v) {
            if (parse_size(v, &o.query_limits.query_max_mem_bytes))
                return usage_error("--query-max-mem: expected a size (1GiB)");
        } else if (!strcmp(a, "--query-max-ms") && v) {
            long long n = strtoll(v, &end, 10);
            if (*end || n < 1) return usage_error("--query-max-ms: expected milliseconds");
            o.query_limits.query_max_ms = n;
        } else if (!strcmp(a, "--clock-file") && v) { /* tests only */
            o.clock_file = v;
        } else {
            char msg[200];
            snprintf(msg, sizeof msg, "serve: unknown or incomplete option %.100s", a);
            return usage_error(msg);
        }
        i++;
    }
    sdb_server *s;
    char err[512] = "";
    int rc = sdb_server_start(&o, &s, err, sizeof err);
    if (rc) {
        fprintf(stderr, "scoredb serve: %s\n", err[0] ? err : sdb_strerror(rc));
        return rc == SDB_EINVAL ? 2 : 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "scoredb serve: listening on http://%s (port %u), store %s, aggregation delay %lld ms%s\n",
            s->listen, sdb_server_port(s), db, (long long)s->o.delay_ms,
            s->keys ? ", API keys on" : ", no keys (loopback only)");
    if (s->o.health_listen)
        fprintf(stderr, "scoredb serve: /healthz and /metrics also on http://%s (port %u)\n",
                s->o.health_listen, sdb_server_health_port(s));
    while (!got_signal) pause();
    fprintf(stderr, "scoredb serve: stopping\n");
    sdb_server_stop(s);
    return 0;
}
