/* The scoredb command-line tool: ingest, query, names (API.md "Command
 * line"); serve and export live in their own files and register below.
 *
 * The tools read the store with no aggregation delay: each folds every
 * acknowledged score before answering, so a query right after an ingest
 * sees the new scores. A fold the disk refuses is a warning, not a failed
 * read: the answer then comes from what is folded (docs/reliability.md).
 * Exit status: 0 success, 1 fatal (store cannot be opened, the disk
 * refused the ingest's writes), 2 usage, 3 some ingest rows rejected.
 */
#include "cli.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Rows per chunk (one parse job, one commit). SCOREDB_INGEST_BATCH
 * overrides it: tests use tiny chunks to drive the pipeline through many
 * turns of its ring. */
#define BATCH_ROWS 20000
static size_t batch_rows(void)
{
    const char *e = getenv("SCOREDB_INGEST_BATCH");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 && v <= 1000000 ? (size_t)v : BATCH_ROWS;
}
#define MAX_ERRORS 100000
/* Bytes of line text per chunk: a chunk ends at BATCH_ROWS lines or at this
 * many bytes, whichever comes first, so memory in flight is bounded in
 * bytes (N_JOBS chunks of text plus their batches), not in lines: 20,000
 * lines of 20 KB metadata each made 400 MB chunks and a 4.3 GiB peak.
 * SCOREDB_INGEST_CHUNK_BYTES overrides it (tests). */
#define CHUNK_BYTES (8u << 20)
static size_t chunk_bytes(void)
{
    const char *e = getenv("SCOREDB_INGEST_CHUNK_BYTES");
    long v = e ? strtol(e, NULL, 10) : 0;
    return v > 0 ? (size_t)v : CHUNK_BYTES;
}

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  scoredb ingest --db DIR [FILE ...|-]        NDJSON scores in, one per line\n"
          "  scoredb query  --db DIR [QUERY_JSON|-]      one query, JSON out\n"
          "  scoredb names  --db DIR                     score names with type and counts\n"
          "  scoredb stats  --db DIR                     where the store's bytes are\n"
          "  scoredb compact --db DIR                    give free pages back (store not open elsewhere)\n"
          "  scoredb serve  --db DIR [--listen 127.0.0.1:8080] [--aggregation-delay 10m]\n"
          "                 [--threads N] [--max-body 8MiB] [--keys FILE]\n"
          "  scoredb export --db DIR --format clickhouse|csv|ndjson [--out PATH]\n"
          "  scoredb check  --db DIR                     verify aggregates and indexes\n"
          "  scoredb backup --db DIR --out DIR2          compacted copy of a live store\n",
          f);
}

int sdb_cli_usage(const char *msg)
{
    if (msg) fprintf(stderr, "scoredb: %s\n", msg);
    usage(stderr);
    return 2;
}

/* Open the store for a command; `opts` may be NULL. */
static int cli_open_with(const char *db, int must_exist, const sdb_options *opts,
                         sdb_store **out)
{
    char err[512] = "";
    if (must_exist) {
        char p[4200];
        struct stat st;
        snprintf(p, sizeof p, "%s/data.mdb", db);
        if (stat(p, &st) != 0) {
            fprintf(stderr, "scoredb: no store at %s\n", db);
            return 1;
        }
    }
    int rc = sdb_store_open(db, opts, out, err, sizeof err);
    if (rc) {
        fprintf(stderr, "scoredb: %s\n", err[0] ? err : sdb_strerror(rc));
        return 1;
    }
    return 0;
}

int sdb_cli_open(const char *db, int must_exist, sdb_store **out)
{
    /* Commands that read still work on a disk that refuses writes. */
    sdb_options o = {.fallback_read_only = 1};
    return cli_open_with(db, must_exist, &o, out);
}

/* Fold before a read; a fold the disk refuses only warns. */
static void cli_fold(sdb_store *s)
{
    int rc = sdb_store_fold(s, sdb_now_ms(), NULL);
    if (rc == SDB_OK) return;
    char why[600];
    sdb_store_health(s, why, sizeof why);
    fprintf(stderr, "scoredb: warning: fold failed (%s%s%s); answering from what is folded\n",
            sdb_strerror(rc), why[0] ? ": " : "", why);
}

/* Read a whole stream (query text from stdin). */
static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p) {
        size_t r = fread(p + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *q = realloc(p, cap * 2);
        if (!q) {
            free(p);
            return NULL;
        }
        p = q;
        cap *= 2;
    }
    *len = n;
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct report {
    unsigned long long accepted, rejected;
    char *errors;
    size_t len;
    size_t n_errors;
} report;

static void add_error(report *r, const char *file, unsigned long long line, const char *msg)
{
    r->rejected++;
    if (r->n_errors++ >= MAX_ERRORS) return;
    char head[64];
    if (r->len) {
        char *p = realloc(r->errors, r->len + 2);
        if (!p) return;
        r->errors = p;
        r->errors[r->len++] = ',';
        r->errors[r->len] = 0;
    }
    snprintf(head, sizeof head, "{\"line\":%llu,", line);
    size_t hl = strlen(head);
    char *p = realloc(r->errors, r->len + hl + 1);
    if (!p) return;
    r->errors = p;
    memcpy(r->errors + r->len, head, hl + 1);
    r->len += hl;
    if (file) {
        const char *k = "\"file\":";
        p = realloc(r->errors, r->len + strlen(k) + 1);
        if (!p) return;
        r->errors = p;
        strcpy(r->errors + r->len, k);
        r->len += strlen(k);
        sdb_json_quote(file, strlen(file), &r->errors, &r->len);
        p = realloc(r->errors, r->len + 2);
        if (!p) return;
        r->errors = p;
        strcpy(r->errors + r->len++, ",");
    }
    const char *k = "\"error\":";
    p = realloc(r->errors, r->len + strlen(k) + 1);
    if (!p) return;
    r->errors = p;
    strcpy(r->errors + r->len, k);
    r->len += strlen(k);
    sdb_json_quote(msg, strlen(msg), &r->errors, &r->len);
    p = realloc(r->errors, r->len + 2);
    if (!p) return;
    r->errors = p;
    strcpy(r->errors + r->len++, "}");
}

/* Longest score line the ingest takes: a longer one is reported as an
 * error for its line and skipped without being held, so one line cannot
 * cost more memory than this either (the server's body cap is 8 MiB). */
#define MAX_LINE (16u << 20)

/* Lines of a file read in 1 MiB blocks (stdio's 4 KiB reads made 52k read
 * calls per 1M scores), bounded: getline would hold a line of any length. */
typedef struct lreader {
    FILE *f;
    char *buf;
    size_t at, end, cap;
    int eof;
} lreader;

/* The next line into *line (growing it; no newline, NUL-terminated) and
 * its length; -1 at the end of the input; -2 for a line over `max` bytes,
 * consumed to its end, with its length in *long_len. */
static ssize_t next_line(lreader *lr, char **line, size_t *cap, size_t max, size_t *long_len)
{
    size_t len = 0, total = 0;
    int any = 0;
    for (;;) {
        if (lr->at == lr->end) {
            size_t n = lr->eof ? 0 : fread(lr->buf, 1, lr->cap, lr->f);
            if (n == 0) {
                lr->eof = 1;
                if (!any) return -1;
                break;
            }
            lr->at = 0;
            lr->end = n;
        }
        any = 1;
        const char *p = lr->buf + lr->at;
        const char *nl = memchr(p, '\n', lr->end - lr->at);
        size_t take = nl ? (size_t)(nl - p) : lr->end - lr->at;
        if (total + take <= max) {
            if (len + take + 1 > *cap) {
                size_t c = *cap ? *cap : 4096;
                while (c < len + take + 1) c *= 2;
                char *q = realloc(*line, c);
                if (!q) return -3;
                *line = q;
                *cap = c;
            }
            memcpy(*line + len, p, take);
            len += take;
        }
        total += take;
        lr->at += take + (nl != NULL);
        if (nl) break;
    }
    if (total > max) {
        *long_len = total;
        return -2;
    }
    if (*line) (*line)[len] = 0;
    return (ssize_t)len;
}

/* A regular file is read through a read-only mapping instead: lines are
 * parsed where they lie, so the one thread that reads and commits no
 * longer copies each byte twice (read() into the block, then into the
 * job) nor has the kernel copy it once more: read() and those copies
 * were 1.3 of the 9.4 CPU s the main thread spent on a 10M UUIDv4
 * ingest before its fold (perf). Pages of committed lines are dropped
 * from the mapping as the jobs commit, so the mapping holds at most the
 * chunks in flight and the peak RSS stays what it was. */
typedef struct fmap {
    const char *p;
    size_t size, at, dropped;
} fmap;

/* A mapped file that shrinks while it is read (truncated, or rewritten in
 * place, as logrotate's copytruncate does) makes the next read of a page
 * past its new end a SIGBUS, where read() would have seen the end of the
 * file. The handler turns that into an error that says so, exit status 1:
 * every commit before it is stored (commits write through the page cache,
 * which outlives the process), and the summary line, the acknowledgement,
 * is not printed. A SIGBUS anywhere else keeps its default action. */
static const char *volatile map_lo, *volatile map_hi;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    const char *a = si->si_addr;
    if (map_lo && a >= map_lo && a < map_hi) {
        static const char msg[] = "scoredb: the input file shrank while it was being read "
                                  "(truncated or rewritten): stopped; the scores committed "
                                  "before are stored, no summary is printed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Give back the whole pages of the mapping inside [from, to). */
static void map_forget(const fmap *m, size_t from, size_t to)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    from = (from + pg - 1) / pg * pg;
    to -= to % pg;
    if (to > from) madvise((char *)(uintptr_t)m->p + from, to - from, MADV_DONTNEED);
}

/* The next line of the mapping (no newline) into *out and its length, as
 * next_line: -1 at the end, -2 for a line over `max` bytes (skipped). The
 * newline is looked for a window at a time, and the pages of a line that
 * is already over the limit are given back as the search passes them, so
 * that a file with no newline in gigabytes is not held either. */
#define MAP_WINDOW (1u << 20)
static ssize_t map_line(fmap *m, const char **out, size_t max, size_t *long_len)
{
    if (m->at >= m->size) return -1;
    size_t start = m->at, w = start;
    const char *nl = NULL;
    while (w < m->size) {
        size_t n = m->size - w < MAP_WINDOW ? m->size - w : MAP_WINDOW;
        if ((nl = memchr(m->p + w, '\n', n))) break;
        w += n;
        if (w - start > max) map_forget(m, start, w);
    }
    size_t len = nl ? (size_t)(nl - (m->p + start)) : m->size - start;
    m->at = start + len + (nl != NULL);
    if (len > max) {
        *long_len = len;
        return -2;
    }
    *out = m->p + start;
    return (ssize_t)len;
}

/* Drop the whole pages of the mapping before offset `upto` (committed). */
static void map_drop(fmap *m, size_t upto)
{
    if (upto > m->dropped) {
        map_forget(m, m->dropped, upto);
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        m->dropped = upto - upto % pg;
    }
}

/* Ingest is a two-stage pipeline: the main thread reads lines and commits
 * batches in file order, while a worker thread parses and validates the
 * next chunk (parsing JSON is over half the work, so it gets its own core).
 * Commits stay in file order, so replacements by id apply as written.
 * Memory is N_JOBS chunks of text (each at most CHUNK_BYTES plus one line)
 * and their batches, whatever the file size. */
typedef struct job {
    char *text;
    size_t len, cap;
    /* Line i is llen[i] bytes at off[i] in text, or in the mapped file
     * `map` when the lines were not copied out of it. */
    struct fmap *map;
    size_t map_end; /* map: the offset the reader had reached when j filled */
    size_t *off, *llen;
    unsigned long long *lineno;
    size_t n, cap_n;
    const char *label;
    sdb_batch *b;
    char **emsg;
    unsigned long long *eline;
    size_t n_err, cap_err;
    unsigned long long *long_line; /* lines over MAX_LINE, not in text */
    size_t *long_len;
    size_t n_long, cap_long;
    int ready; /* parsed */
} job;

#define N_JOBS 4   /* chunks in flight: read, parsing (one per worker), committing */
#define N_WORKERS 2 /* parse threads; the main thread reads and commits */

typedef struct pipe_ctl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *queue[N_JOBS]; /* submitted, not yet taken by a worker (FIFO) */
    int q_head, q_len;
    int quit;
} pipe_ctl;

static void job_reset(job *j, const char *label, fmap *map)
{
    j->len = j->n = 0;
    j->map = map;
    j->map_end = 0;
    for (size_t i = 0; i < j->n_err; i++) free(j->emsg[i]);
    j->n_err = 0;
    j->n_long = 0;
    j->label = label;
    j->ready = 0;
    sdb_batch_clear(j->b);
}

static int job_add_line(job *j, const char *p, size_t len, unsigned long long lineno)
{
    if (!j->map && j->len + len + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1 << 20;
        while (cap < j->len + len + 1) cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) return -1;
        j->text = t;
        j->cap = cap;
    }
    if (j->n == j->cap_n) {
        size_t cap = j->cap_n ? j->cap_n * 2 : 4096;
        size_t *o = realloc(j->off, cap * sizeof *o);
        if (!o) return -1;
        j->off = o;
        unsigned long long *l = realloc(j->lineno, cap * sizeof *l);
        if (!l) return -1;
        j->lineno = l;
        size_t *n = realloc(j->llen, cap * sizeof *n);
        if (!n) return -1;
        j->llen = n;
        j->cap_n = cap;
    }
    if (j->map) {
        j->off[j->n] = (size_t)(p - j->map->p);
    } else {
        memcpy(j->text + j->len, p, len);
        j->text[j->len + len] = 0;
        j->off[j->n] = j->len;
    }
    j->llen[j->n] = len;
    j->lineno[j->n++] = lineno;
    j->len += len + 1; /* the chunk's size, in either case */
    return 0;
}

static int job_add_long(job *j, unsigned long long lineno, size_t len)
{
    if (j->n_long == j->cap_long) {
        size_t cap = j->cap_long ? j->cap_long * 2 : 16;
        unsigned long long *l = realloc(j->long_line, cap * sizeof *l);
        if (!l) return -1;
        j->long_line = l;
        size_t *n = realloc(j->long_len, cap * sizeof *n);
        if (!n) return -1;
        j->long_len = n;
        j->cap_long = cap;
    }
    j->long_line[j->n_long] = lineno;
    j->long_len[j->n_long++] = len;
    return 0;
}

static void job_parse(job *j)
{
    char err[512];
    const char *base = j->map ? j->map->p : j->text;
    for (size_t i = 0; i < j->n; i++) {
        if (sdb_batch_add_json(j->b, base + j->off[i], j->llen[i], err, sizeof err) == SDB_OK)
            continue;
        if (j->n_err == j->cap_err) {
            size_t cap = j->cap_err ? j->cap_err * 2 : 64;
            char **m = realloc(j->emsg, cap * sizeof *m);
            unsigned long long *l = m ? realloc(j->eline, cap * sizeof *l) : NULL;
            if (m) j->emsg = m;
            if (!l) continue;
            j->eline = l;
            j->cap_err = cap;
        }
        j->emsg[j->n_err] = strdup(err);
        j->eline[j->n_err++] = j->lineno[i];
    }
}

/* SCOREDB_TEST_JITTER=N: each parse job sleeps up to N microseconds
 * before it is marked ready (tests only). */
static unsigned jitter_us;

static void *worker(void *arg)
{
    pipe_ctl *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->q_len && !c->quit) pthread_cond_wait(&c->cv, &c->mu);
        if (!c->q_len) break;
        job *j = c->queue[c->q_head];
        c->q_head = (c->q_head + 1) % N_JOBS;
        c->q_len--;
        pthread_mutex_unlock(&c->mu);
        job_parse(j);
        if (jitter_us) {
            /* Fault injection for tests: parse jobs finish out of order. */
            static _Thread_local unsigned seed = 1;
            seed = seed * 1103515245u + 12345u + (unsigned)(uintptr_t)j;
            if (seed & 0x10000u) usleep((useconds_t)((seed >> 17) % jitter_us));
        }
        pthread_mutex_lock(&c->mu);
        j->ready = 1;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void submit(pipe_ctl *c, job *j)
{
    pthread_mutex_lock(&c->mu);
    c->queue[(c->q_head + c->q_len) % N_JOBS] = j;
    c->q_len++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_ready(pipe_ctl *c, job *j)
{
    pthread_mutex_lock(&c->mu);
    while (!j->ready) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Whether a job is parsed, read under the lock that the worker stores it
 * under (a plain read of `ready` would race with the worker). */
static int is_ready(pipe_ctl *c, const job *j)
{
    pthread_mutex_lock(&c->mu);
    int r = j->ready;
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* Commit a parsed job: its errors join the report, its rows the store. */
static int commit(sdb_store *s, job *j, report *r)
{
    /* Parse errors and over-long lines, merged in line order. */
    for (size_t a = 0, b = 0; a < j->n_err || b < j->n_long;) {
        if (b == j->n_long || (a < j->n_err && j->eline[a] < j->long_line[b])) {
            add_error(r, j->label, j->eline[a], j->emsg[a] ? j->emsg[a] : "out of memory");
            a++;
        } else {
            char msg[120];
            snprintf(msg, sizeof msg, "line: %zu bytes, over the limit of %u bytes per score",
                     j->long_len[b], MAX_LINE);
            add_error(r, j->label, j->long_line[b], msg);
            b++;
        }
    }
    size_t n = sdb_batch_rows(j->b);
    int rc = n ? sdb_store_ingest(s, 0, j->b, sdb_now_ms()) : SDB_OK;
    if (rc) {
        char why[600];
        sdb_store_health(s, why, sizeof why);
        fprintf(stderr, "scoredb: ingest failed after %llu scores (those are stored): %s\n",
                r->accepted, why[0] ? why : sdb_strerror(rc));
        return 1;
    }
    r->accepted += n;
    if (j->map && j->map_end) map_drop(j->map, j->map_end);
    return 0;
}

static int cmd_ingest(const char *db, int n_files, char **files)
{
    /* The summary line is the only acknowledgement, so commits may defer
     * their meta flush: one sdb_store_sync() before the summary makes
     * every accepted score durable (a commit's second, synchronous write
     * of the meta page was ~7% of ingest). */
    sdb_options opts = {.deferred_sync = 1};
    /* Keep freed memory for reuse instead of handing it back: every fold
     * slice and commit frees then mallocs the same large buffers again
     * (LMDB's dirty overflow pages, the fold's slice arrays), and each
     * time glibc returned them (munmap or a trimmed heap) the kernel
     * zeroed fresh pages on the next touch: page faults were 0.7 s of the
     * 7 s single-threaded fold at the end of a 10M UUIDv4 ingest (perf).
     * The peak stays what the largest moment needs. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    sdb_malloc_policy_is_hosts();
    sdb_store *s;
    int rc = cli_open_with(db, 0, &opts, &s);
    if (rc) return rc;
    job jobs[N_JOBS];
    memset(jobs, 0, sizeof jobs);
    pipe_ctl ctl = {.q_head = 0, .q_len = 0, .quit = 0};
    pthread_mutex_init(&ctl.mu, NULL);
    pthread_cond_init(&ctl.cv, NULL);
    pthread_t th[N_WORKERS];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
    const char *jit = getenv("SCOREDB_TEST_JITTER");
    jitter_us = jit ? (unsigned)strtoul(jit, NULL, 10) : 0;
    int n_th = 0, fatal = 0;
    for (int i = 0; i < N_JOBS && !fatal; i++) fatal = sdb_batch_new(&jobs[i].b) != SDB_OK;
    while (!fatal && n_th < N_WORKERS)
        if (pthread_create(&th[n_th], NULL, worker, &ctl) == 0) n_th++;
        else break;
    if (fatal || n_th == 0) {
        fprintf(stderr, "scoredb: out of memory\n");
        fatal = 1;
    }
    report r = {0};
    int tty = isatty(2);
    /* Jobs in flight form a ring in file order: jobs[head] is the oldest,
     * jobs[(head + n_fifo) % N_JOBS] the next free slot. Slots are taken
     * and committed in the same cyclic order, so the free ones are always
     * the ones after the newest. */
    int head = 0, n_fifo = 0;
    const size_t chunk_rows = batch_rows(), chunk_max = chunk_bytes();
    double t0 = now_s(), last_print = t0;
    char *line = NULL;
    size_t cap = 0;
    char *stdin_name = "-";
    enum { INBUF = 1 << 20 };
    char *inbuf = malloc(INBUF);
    if (n_files == 0) {
        files = &stdin_name;
        n_files = 1;
    }
    /* Every path is checked before the first score is stored: a directory
     * opens for reading on Linux and reads as an error (EISDIR) that
     * getline() reports as end of file, so `ingest DIR` stored nothing and
     * exited 0. */
    for (int fi = 0; fi < n_files && !fatal; fi++) {
        struct stat st;
        if (!strcmp(files[fi], "-")) continue;
        if (stat(files[fi], &st)) {
            fprintf(stderr, "scoredb: cannot read %s: %s\n", files[fi], strerror(errno));
            fatal = 1;
        } else if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "scoredb: cannot read %s: a directory (give the NDJSON files in it)\n",
                    files[fi]);
            fatal = 1;
        }
    }
    for (int fi = 0; fi < n_files && !fatal; fi++) {
        int is_stdin = strcmp(files[fi], "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(files[fi], "r");
        if (!f) {
            fprintf(stderr, "scoredb: cannot read %s: %s\n", files[fi], strerror(errno));
            fatal = 1;
            break;
        }
        if (!inbuf) {
            fprintf(stderr, "scoredb: out of memory\n");
            fatal = 1;
            if (!is_stdin) fclose(f);
            break;
        }
        lreader lr = {f, inbuf, 0, 0, INBUF, 0};
        const char *label = n_files > 1 ? files[fi] : NULL;
        unsigned long long lineno = 0;
        int eof = 0;
        fmap fm = {0}, *map = NULL;
        struct stat fst;
        if (!is_stdin && !getenv("SCOREDB_INGEST_NO_MAP") && fstat(fileno(f), &fst) == 0 &&
            S_ISREG(fst.st_mode) && fst.st_size > 0 && (uintmax_t)fst.st_size <= SIZE_MAX) {
            void *p = mmap(NULL, (size_t)fst.st_size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
            if (p != MAP_FAILED) {
                madvise(p, (size_t)fst.st_size, MADV_SEQUENTIAL);
                fm.p = p;
                fm.size = (size_t)fst.st_size;
                map = &fm;
                map_lo = fm.p;
                map_hi = fm.p + fm.size;
                /* Tests only: the file shrinks to half once it is mapped. */
                if (getenv("SCOREDB_TEST_SHRINK") && truncate(files[fi], fst.st_size / 2)) {
                    fprintf(stderr, "scoredb: SCOREDB_TEST_SHRINK: %s\n", strerror(errno));
                    fatal = 1;
                }
            }
        }
        while (!eof && !fatal) {
            if (n_fifo == N_JOBS) {
                /* Every slot is in flight: commit the oldest to free one. */
                job *old = &jobs[head];
                wait_ready(&ctl, old);
                fatal = commit(s, old, &r);
                head = (head + 1) % N_JOBS;
                n_fifo--;
                if (fatal) break;
            }
            job *j = &jobs[(head + n_fifo) % N_JOBS];
            job_reset(j, label, map);
            ssize_t len = 0;
            size_t long_len = 0;
            const char *p = NULL;
            while (j->n < chunk_rows && j->len < chunk_max) {
                if (map) {
                    len = map_line(map, &p, MAX_LINE, &long_len);
                } else {
                    len = next_line(&lr, &line, &cap, MAX_LINE, &long_len);
                    p = line;
                }
                if (len == -1) break;
                lineno++;
                if (len == -2) {
                    if (job_add_long(j, lineno, long_len)) len = -3;
                    else continue;
                }
                if (len == -3) {
                    fprintf(stderr, "scoredb: out of memory\n");
                    fatal = 1;
                    break;
                }
                while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ' ||
                                   p[len - 1] == '\t'))
                    len--;
                size_t at = 0;
                while ((ssize_t)at < len && (p[at] == ' ' || p[at] == '\t')) at++;
                if ((ssize_t)at == len) continue; /* blank lines are not scores */
                if (job_add_line(j, p + at, (size_t)len - at, lineno)) {
                    fprintf(stderr, "scoredb: out of memory\n");
                    fatal = 1;
                    break;
                }
            }
            if (map) j->map_end = map->at; /* committing j frees the file up to here */
            if (len == -1 && map) {
                /* The mapping ends where the file ended when it was
                 * opened; whatever was appended since is read as before
                 * (a line cut at that point reads as two). */
                map = NULL;
                if (fseeko(f, (off_t)fm.size, SEEK_SET)) eof = 1;
            } else if (len == -1) {
                eof = 1;
            }
            if (fatal) break;
            submit(&ctl, j);
            n_fifo++;
            /* Commit whatever is parsed at the front without waiting. */
            while (n_fifo && !fatal && is_ready(&ctl, &jobs[head])) {
                fatal = commit(s, &jobs[head], &r);
                head = (head + 1) % N_JOBS;
                n_fifo--;
            }
            if (tty) {
                double t = now_s();
                if (t - last_print >= 1) {
                    fprintf(stderr, "\r%llu scores, %.0f scores/s   ", r.accepted,
                            r.accepted / (t - t0));
                    last_print = t;
                }
            }
        }
        if (!fatal && ferror(f)) {
            fprintf(stderr, "scoredb: cannot read %s: %s\n", files[fi], strerror(errno));
            fatal = 1;
        }
        if (fm.p) {
            /* Jobs in flight point into the mapping: commit them first. */
            for (; n_fifo; n_fifo--, head = (head + 1) % N_JOBS) {
                wait_ready(&ctl, &jobs[head]);
                if (!fatal) fatal = commit(s, &jobs[head], &r);
            }
            map_lo = map_hi = NULL;
            munmap((void *)(uintptr_t)fm.p, fm.size);
        }
        if (!is_stdin) fclose(f);
    }
    for (int i = 0; i < n_fifo; i++) {
        job *j = &jobs[(head + i) % N_JOBS];
        wait_ready(&ctl, j);
        if (!fatal) fatal = commit(s, j, &r);
    }
    pthread_mutex_lock(&ctl.mu);
    ctl.quit = 1;
    pthread_cond_broadcast(&ctl.cv);
    pthread_mutex_unlock(&ctl.mu);
    for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
    free(line);
    free(inbuf);
    if (!fatal) {
        /* The CLI has no aggregation delay: make everything visible now. */
        int frc = sdb_store_fold(s, sdb_now_ms(), NULL);
        if (frc) {
            fprintf(stderr, "scoredb: fold failed: %s\n", sdb_strerror(frc));
            fatal = 1;
        }
    }
    /* Whatever was committed, fatal or not, is durable before we say so. */
    int src = sdb_store_sync(s);
    if (src) {
        fprintf(stderr, "scoredb: sync failed: %s\n", sdb_strerror(src));
        fatal = 1;
    }
    if (tty) {
        double t = now_s();
        fprintf(stderr, "\r%llu scores in %.1f s, %.0f scores/s\n", r.accepted, t - t0,
                r.accepted / (t - t0 > 0 ? t - t0 : 1));
    }
    printf("{\"accepted\":%llu,\"rejected\":%llu,\"errors\":[%s]}\n", r.accepted, r.rejected,
           r.errors ? r.errors : "");
    free(r.errors);
    for (int i = 0; i < N_JOBS; i++) {
        if (jobs[i].b) job_reset(&jobs[i], NULL, NULL);
        free(jobs[i].text);
        free(jobs[i].off);
        free(jobs[i].llen);
        free(jobs[i].lineno);
        free(jobs[i].emsg);
        free(jobs[i].eline);
        free(jobs[i].long_line);
        free(jobs[i].long_len);
        sdb_batch_free(jobs[i].b);
    }
    pthread_mutex_destroy(&ctl.mu);
    pthread_cond_destroy(&ctl.cv);
    sdb_store_close(s);
    if (fatal) return 1;
    return r.rejected ? 3 : 0;
}

static int cmd_query(const char *db, const char *arg)
{
    char *text = NULL;
    size_t len;
    if (!arg || strcmp(arg, "-") == 0) {
        text = slurp(stdin, &len);
        if (!text) return 1;
    } else {
        text = strdup(arg);
        len = strlen(arg);
    }
    sdb_store *s;
    int rc = sdb_cli_open(db, 1, &s);
    if (rc) {
        free(text);
        return rc;
    }
    cli_fold(s);
    char *out = NULL, err[512] = "";
    rc = sdb_query_json(s, 0, text, len, &out, err, sizeof err);
    free(text);
    sdb_store_close(s);
    if (rc == SDB_EINVAL) {
        fprintf(stderr, "scoredb: query: %s\n", err);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "scoredb: query failed: %s\n", err[0] ? err : sdb_strerror(rc));
        return 1;
    }
    puts(out);
    free(out);
    return 0;
}

/* A command's JSON answer on stdout (exit 0), or its failure on stderr
 * (exit 1). Takes `out`. */
static int print_answer(const char *cmd, int rc, char *out)
{
    if (rc) {
        fprintf(stderr, "scoredb: %s failed: %s\n", cmd, sdb_strerror(rc));
        free(out);
        return 1;
    }
    puts(out);
    free(out);
    return 0;
}

static int cmd_names(const char *db)
{
    sdb_store *s;
    int rc = sdb_cli_open(db, 1, &s);
    if (rc) return rc;
    cli_fold(s);
    char *out = NULL;
    rc = sdb_names_json(s, 0, &out);
    sdb_store_close(s);
    return print_answer("names", rc, out);
}

/* Where the store's bytes are (sdb_store_stats_json). */
static int cmd_stats(const char *db)
{
    sdb_store *s;
    int rc = sdb_cli_open(db, 1, &s);
    if (rc) return rc;
    char *out = NULL;
    rc = sdb_store_stats_json(s, &out);
    sdb_store_close(s);
    return print_answer("stats", rc, out);
}

/* Give the store's free pages back (sdb_store_compact). */
static int cmd_compact(const char *db)
{
    char err[512] = "";
    uint64_t before, after;
    int rc = sdb_store_compact(db, &before, &after, err, sizeof err);
    if (rc) {
        fprintf(stderr, "scoredb: compact: %s\n", err[0] ? err : sdb_strerror(rc));
        return 1;
    }
    printf("{\"before_bytes\":%llu,\"after_bytes\":%llu}\n", (unsigned long long)before,
           (unsigned long long)after);
    return 0;
}

/* Pull "--db DIR" (or --db=DIR) out of argv; the rest stay in order. */
static const char *take_db(int *argc, char **argv)
{
    const char *db = NULL;
    int w = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < *argc) {
            db = argv[++i];
        } else if (strncmp(argv[i], "--db=", 5) == 0) {
            db = argv[i] + 5;
        } else {
            argv[w++] = argv[i];
        }
    }
    *argc = w;
    return db;
}

int main(int argc, char **argv)
{
    if (argc < 2) return sdb_cli_usage(NULL);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    int rest = argc - 2;
    char **args = argv + 2;
    const char *db = take_db(&rest, args);
    for (int i = 0; i < rest; i++)
        if (args[i][0] == '-' && args[i][1] == '-' && strcmp(cmd, "serve") &&
            strcmp(cmd, "export") && strcmp(cmd, "backup")) {
            fprintf(stderr, "scoredb: %s: unknown option %s\n", cmd, args[i]);
            return sdb_cli_usage(NULL);
        }
    if (!db) {
        fprintf(stderr, "scoredb: %s: --db DIR is required\n", cmd);
        return sdb_cli_usage(NULL);
    }
    if (!strcmp(cmd, "ingest")) return cmd_ingest(db, rest, args);
    if (!strcmp(cmd, "query")) {
        if (rest > 1) return sdb_cli_usage("query takes one query object");
        return cmd_query(db, rest ? args[0] : NULL);
    }
    if (!strcmp(cmd, "names")) {
        if (rest) return sdb_cli_usage("names takes no arguments");
        return cmd_names(db);
    }
    if (!strcmp(cmd, "stats")) {
        if (rest) return sdb_cli_usage("stats takes no arguments");
        return cmd_stats(db);
    }
    if (!strcmp(cmd, "compact")) {
        if (rest) return sdb_cli_usage("compact takes no arguments");
        return cmd_compact(db);
    }
    for (const sdb_cli_cmd *c = sdb_cli_cmds; c->name; c++)
        if (!strcmp(cmd, c->name)) return c->run(db, rest, args);
    fprintf(stderr, "scoredb: unknown command %s\n", cmd);
    return sdb_cli_usage(NULL);
}
