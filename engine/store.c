/* The store: one LMDB environment per directory, and the only file that
 * includes <lmdb.h>.
 *
 * Everything else in the engine sees LMDB through a thin key/value layer
 * (sdb__txn, sdb__cur) so that error translation and map growth live in
 * one place. Invariant: a write either commits whole or leaves no trace;
 * a batch that fills the map is retried after the map grows, never dropped.
 *
 * Map growth: mdb_env_set_mapsize() may only be called while this process
 * has no transaction open (lmdb.h), so every transaction holds a shared
 * lock for its lifetime and growth takes it exclusively.
 *
 * A full disk is not a full map (docs/reliability.md). LMDB's writes fail
 * with ENOSPC (or EIO) at commit; that becomes SDB_ENOSPC, the batch is
 * refused whole, and the store remembers the refusal for
 * sdb_store_health() until a write commits again. The map grows only on
 * MDB_MAP_FULL, and never past the data file plus its file system's free
 * space: doubling blindly on ENOSPC took the map to 2^47 bytes, where mmap
 * failed. When mdb_env_set_mapsize() fails it has already unmapped the old
 * map (mdb.c: munmap, then mdb_env_map; me_map is left NULL and a second
 * call does not map again), and a failed meta-page write marks the env
 * MDB_FATAL_ERROR (every later txn gets MDB_PANIC). Both are mended the
 * one way LMDB allows, under the exclusive lock: close the env and open it
 * again.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE (64ull << 20)
/* The map's hard cap, 4 TiB: far below the 2^47 bytes of user address
 * space where mmap fails, far above any disk this runs on. */
#define MAP_MAX (1ull << 42)

uint64_t sdb__test_free_bytes;
#define DEFAULT_BUCKET_MS 86400000ll
#define DEFAULT_CHUNK_ROWS 8192u

static const char *const db_names[SDB__N_DBS] = {
    "segments", "rows", "ids", "dict", "dictrev", "meta", "preagg", "dead", "gone", "attrs",
    "traces",
    "tnum",
};

struct sdb__txn {
    MDB_txn *txn;
    sdb_store *s;
    void *rows; /* the row store's state for this txn (engine/row.c) */
};

struct sdb__cur {
    MDB_cursor *c;
};

const char *sdb_strerror(int code)
{
    switch (code) {
#define SDB__MSG(c, v, m) case c: return m;
        SDB_ERRORS(SDB__MSG)
#undef SDB__MSG
    }
    return "unknown error";
}

void sdb__errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* LMDB and errno codes become SDB_E* here, where they enter. */
static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return SDB_OK;
    case MDB_NOTFOUND: return SDB_ENOTFOUND;
    case MDB_MAP_FULL: return SDB_EFULL;
    case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: return SDB_ECORRUPT;
    case MDB_VERSION_MISMATCH: return SDB_EVERSION;
    case MDB_READERS_FULL: case MDB_TXN_FULL: case MDB_CURSOR_FULL: return SDB_EBUSY;
    case ENOMEM: return SDB_ENOMEM;
    case ENOSPC: case EDQUOT: return SDB_ENOSPC;
    default: return SDB_EIO; /* EIO, MDB_PANIC (a failed meta write), ... */
    }
}

int64_t sdb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static pthread_rwlock_t *lock_of(sdb_store *s) { return (pthread_rwlock_t *)s->lock; }

/* Settings fixed at creation live in meta; read them back, or write the
 * defaults on a new store. */
static int load_settings(sdb_store *s, const sdb_options *o, char *err, size_t errlen)
{
    sdb__txn *t = NULL;
    int rc = sdb__txn_begin(s, !s->read_only, &t);
    if (rc) return rc;
    uint64_t ver = 0, bucket = 0, chunk = 0;
    rc = sdb__meta_get_u64(t, "format_version", &ver);
    if (rc == SDB_ENOTFOUND && !s->read_only) {
        ver = SDB_FORMAT_VERSION;
        bucket = (uint64_t)(o && o->bucket_ms > 0 ? o->bucket_ms : DEFAULT_BUCKET_MS);
        chunk = o && o->chunk_rows ? o->chunk_rows : DEFAULT_CHUNK_ROWS;
        if ((rc = sdb__meta_put_u64(t, "format_version", ver)) ||
            (rc = sdb__meta_put_u64(t, "bucket_ms", bucket)) ||
            (rc = sdb__meta_put_u64(t, "chunk_rows", chunk)))
            goto done;
        rc = sdb__dict_id(t, 0, SDB_DICT_PROJECT, "default", 7, 1, &(uint32_t){0});
        if (rc) goto done;
        rc = sdb__txn_commit(t);
        t = NULL;
        if (rc) goto done;
    } else if (rc) {
        sdb__errf(err, errlen, "store at %s has no format version", s->path);
        goto done;
    } else {
        if (ver != SDB_FORMAT_VERSION) {
            sdb__errf(err, errlen,
                      "store %s is format version %llu, this build reads format version %u "
                      "(docs/storage.md says what changed; export it with the build that "
                      "wrote it and ingest the export into a new store)",
                      s->path, (unsigned long long)ver, SDB_FORMAT_VERSION);
            rc = SDB_EVERSION;
            goto done;
        }
        if ((rc = sdb__meta_get_u64(t, "bucket_ms", &bucket)) ||
            (rc = sdb__meta_get_u64(t, "chunk_rows", &chunk)))
            goto done;
    }
    if (bucket == 0 || chunk == 0 || chunk > (1u << 24)) {
        sdb__errf(err, errlen, "store settings are corrupt (bucket_ms=%llu chunk_rows=%llu)",
                  (unsigned long long)bucket, (unsigned long long)chunk);
        rc = SDB_ECORRUPT;
        goto done;
    }
    s->bucket_ms = (int64_t)bucket;
    s->chunk_rows = (uint32_t)chunk;
    if (o) {
        s->query_max_cells = o->query_max_cells;
        s->query_max_answer_bytes = o->query_max_answer_bytes;
        s->query_max_mem_bytes = o->query_max_mem_bytes;
        s->query_max_ms = o->query_max_ms;
    }
done:
    sdb__txn_abort(t);
    return rc;
}

/* Every process that opens a store holds a shared flock(2) on DIR/scoredb.lock
 * for as long as it has it open; `scoredb compact` takes it exclusively, so
 * it runs only on a store nobody else has open, and nobody opens one while
 * it runs (they get SDB_EBUSY). flock locks belong to the open file
 * description, so they neither meet LMDB's fcntl locks on lock.mdb nor
 * vanish when another descriptor of the file is closed. */
static int lock_dir(const char *path, int exclusive, int *out_fd, char *err, size_t errlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/scoredb.lock", path);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EROFS) fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* A read-only directory without the file: nobody can compact it. */
        if (errno == EACCES || errno == EROFS || errno == ENOENT) {
            *out_fd = -1;
            return SDB_OK;
        }
        sdb__errf(err, errlen, "cannot open %s: %s", p, strerror(errno));
        return SDB_EIO;
    }
    if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            sdb__errf(err, errlen,
                      exclusive ? "store %s is open in another process (a running server?): "
                                  "stop it before compacting"
                                : "store %s is being compacted: try again when it is done",
                      path);
            return SDB_EBUSY;
        }
        sdb__errf(err, errlen, "cannot lock %s: %s", p, strerror(e));
        return SDB_EIO;
    }
    *out_fd = fd;
    return SDB_OK;
}

/* sdb_store_open, with the directory lock taken (shared) or already held
 * by the caller (lock_fd >= 0: compact). */
static int store_open(const char *path, const sdb_options *o, int held, sdb_store **out,
                      char *err, size_t errlen);

/* Bytes free for us on the store's file system. */
static uint64_t fs_free(const sdb_store *s)
{
    struct statvfs v;
    uint64_t f = UINT64_MAX;
    if (statvfs(s->path, &v) == 0) f = (uint64_t)v.f_bavail * v.f_frsize;
    if (sdb__test_free_bytes && sdb__test_free_bytes < f) f = sdb__test_free_bytes;
    return f;
}

/* The data file's length (what the map must cover). */
static uint64_t file_len(const sdb_store *s)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", s->path);
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int is_disk_refusal(int rc) { return rc == SDB_ENOSPC || rc == SDB_EIO; }

/* A full disk often reads as an I/O error: a write that only partly fits
 * returns a short count, which LMDB reports as EIO (mdb.c, mdb_page_flush;
 * seen on a full tmpfs). With less than this free it is called a full
 * disk. */
#define SPACE_LOW (1u << 20)

/* Record a refused write (rc SDB_ENOSPC or SDB_EIO) and return its code,
 * SDB_EIO told apart from a full disk by the free space. */
static int refused(sdb_store *s, int rc)
{
    if (rc == SDB_EIO && fs_free(s) < SPACE_LOW) rc = SDB_ENOSPC;
    __atomic_store_n(&s->write_err, rc, __ATOMIC_RELEASE);
    return rc;
}


/* Bytes of lock file allocated before LMDB opens it: at least LMDB's
 * reader table for 512 readers (64-byte slots and a header: 32,896). */
#define LOCK_BYTES (64u << 10)

/* LMDB sizes its lock file with ftruncate, which leaves a hole, and then
 * writes it through a shared map: on a full disk the first store to the
 * hole is a SIGBUS (seen on a full tmpfs, creating a store). Allocating
 * its blocks first turns that into SDB_ENOSPC. Allocating blocks that are
 * there already changes nothing, so this is safe beside a live process. */
static int lock_file_ready(const sdb_store *s, char *err, size_t errlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/lock.mdb", s->path);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return errno == ENOSPC || errno == EDQUOT ? SDB_ENOSPC : SDB_OK; /* LMDB says */
    struct stat st;
    int rc = SDB_OK, e = 0;
    if (fstat(fd, &st) == 0) {
        off_t len = st.st_size > (off_t)LOCK_BYTES ? st.st_size : (off_t)LOCK_BYTES;
        if ((uint64_t)st.st_blocks * 512u < (uint64_t)len) e = posix_fallocate(fd, 0, len);
    }
    close(fd);
    if (e == ENOSPC || e == EDQUOT) rc = SDB_ENOSPC;
    else if (e == EIO) rc = SDB_EIO;
    if (rc) sdb__errf(err, errlen, "cannot allocate the lock file %s: %s", p, strerror(e));
    return rc;
}

/* Create and open the LMDB env of s->path with `flags` at s->map_size and
 * open the databases. On failure s->env is NULL. */
static int env_open(sdb_store *s, unsigned flags, char *err, size_t errlen)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    int rc, mrc, rdonly = (flags & MDB_RDONLY) != 0;
    s->env = NULL;
    if ((rc = lock_file_ready(s, err, errlen))) return rc;
    if ((rc = from_mdb(mdb_env_create(&env)))) return rc;
    mdb_env_set_maxdbs(env, SDB__N_DBS + 2);
    mdb_env_set_maxreaders(env, 512);
    mdb_env_set_mapsize(env, (size_t)s->map_size);
    if ((mrc = mdb_env_open(env, s->path, flags, 0644))) {
        sdb__errf(err, errlen, "cannot open store %s: %s", s->path, mdb_strerror(mrc));
        rc = from_mdb(mrc);
        goto fail;
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    s->map_size = info.me_mapsize;
    if ((mrc = mdb_txn_begin(env, NULL, rdonly ? MDB_RDONLY : 0, &txn))) {
        sdb__errf(err, errlen, "cannot open store %s: %s", s->path, mdb_strerror(mrc));
        rc = from_mdb(mrc);
        goto fail;
    }
    for (int i = 0; i < SDB__N_DBS; i++) {
        MDB_dbi dbi;
        mrc = mdb_dbi_open(txn, db_names[i], rdonly ? 0 : MDB_CREATE, &dbi);
        /* A store written before the trace index, opened read-only: read
         * the id index's database in its place, where no key starts with
         * the trace index's 't', so the index reads as empty and lookups
         * walk the rows as they did (engine/traceidx.c). */
        /* The same for the trace numbers of a store older than them,
         * which the format check below then refuses before any read. */
        if (mrc == MDB_NOTFOUND && rdonly && (i == SDB__DB_TRACES || i == SDB__DB_TNUM)) {
            dbi = s->dbi[SDB__DB_IDS];
            mrc = 0;
        }
        if (mrc) {
            sdb__errf(err, errlen, "store %s: database %s: %s", s->path, db_names[i],
                      mdb_strerror(mrc));
            rc = mrc == MDB_NOTFOUND ? SDB_ECORRUPT : from_mdb(mrc);
            mdb_txn_abort(txn);
            goto fail;
        }
        s->dbi[i] = dbi;
    }
    if ((mrc = mdb_txn_commit(txn))) {
        sdb__errf(err, errlen, "store %s: %s", s->path, mdb_strerror(mrc));
        rc = from_mdb(mrc);
        goto fail;
    }
    s->env = env;
    s->env_flags = flags;
    return SDB_OK;
fail:
    mdb_env_close(env);
    return rc;
}

/* Close and reopen the env (no txn of this process may be open: the
 * caller holds the lock exclusively). */
static int env_reopen(sdb_store *s, unsigned flags)
{
    if (s->env) mdb_env_close((MDB_env *)s->env);
    s->env = NULL;
    return env_open(s, flags, NULL, 0);
}

int sdb_store_open(const char *path, const sdb_options *o, sdb_store **out, char *err,
                   size_t errlen)
{
    return store_open(path, o, 0, out, err, errlen);
}

static int store_open(const char *path, const sdb_options *o, int held, sdb_store **out,
                      char *err, size_t errlen)
{
    *out = NULL;
    int rc = SDB_ENOMEM;
    sdb_store *s = calloc(1, sizeof *s);
    if (!s) return SDB_ENOMEM;
    s->lock_fd = -1;
    s->read_only = o && o->read_only;
    s->path = strdup(path);
    s->lock = malloc(sizeof(pthread_rwlock_t));
    if (!s->path || !s->lock) goto fail;
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    /* A grow must not starve behind a stream of readers. */
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(lock_of(s), &la);
    pthread_rwlockattr_destroy(&la);

    if (!s->read_only && mkdir_p(path) != 0) {
        sdb__errf(err, errlen, "cannot create store directory %s: %s", path, strerror(errno));
        rc = errno == ENOSPC ? SDB_ENOSPC : SDB_EIO;
        goto fail_lock;
    }
    if (!held && (rc = lock_dir(path, 0, &s->lock_fd, err, errlen))) goto fail_lock;
    s->map_size = o && o->map_size ? o->map_size : DEFAULT_MAP_SIZE;
    unsigned flags = MDB_NOTLS;
    if (s->read_only) flags |= MDB_RDONLY;
    if (o && o->no_sync) flags |= MDB_NOSYNC;
    if (o && o->deferred_sync) flags |= MDB_NOMETASYNC;
    char data[4200];
    struct stat st;
    snprintf(data, sizeof data, "%s/data.mdb", path);
    int is_new = stat(data, &st) != 0 || st.st_size == 0;
    rc = env_open(s, flags, err, errlen);
    if (rc == SDB_OK) rc = load_settings(s, o, err, errlen);
    if (rc == SDB_EIO && fs_free(s) < SPACE_LOW) rc = SDB_ENOSPC; /* a short write */
    if (rc && is_new && !s->read_only) {
        /* A store the disk had no room to create: leave no half-written
         * file that would read as corrupt next time. */
        if (s->env) mdb_env_close((MDB_env *)s->env);
        s->env = NULL;
        unlink(data);
        if (rc == SDB_ENOSPC)
            sdb__errf(err, errlen, "no space left on device: cannot create store %s (%llu "
                                   "bytes free)", path, (unsigned long long)fs_free(s));
        goto fail_lock;
    }
    if (is_disk_refusal(rc) && !s->read_only && o && o->fallback_read_only) {
        /* The disk refuses writes: serve reads from what is stored. */
        char err2[64];
        if (s->env) mdb_env_close((MDB_env *)s->env);
        s->read_only = 1;
        int rc2 = env_open(s, flags | MDB_RDONLY, err2, sizeof err2);
        if (rc2 == SDB_OK) rc2 = load_settings(s, o, err2, sizeof err2);
        if (rc2 == SDB_OK) {
            s->fallback_ro = 1;
            rc = refused(s, rc);
            if (err && errlen) err[0] = 0;
            rc = SDB_OK;
        } else {
            s->read_only = 0;
        }
    }
    if (rc) goto fail_env;
    *out = s;
    return SDB_OK;

fail_env:
    if (s->env) mdb_env_close((MDB_env *)s->env);
fail_lock:
    pthread_rwlock_destroy(lock_of(s));
    if (s->lock_fd >= 0) close(s->lock_fd);
fail:
    if (rc == SDB_ENOMEM) sdb__errf(err, errlen, "out of memory opening %s", path);
    free(s->lock);
    free(s->path);
    free(s);
    return rc;
}

const char *sdb_store_path(const sdb_store *s) { return s->path; }

int sdb_store_health(sdb_store *s, char *msg, size_t msglen)
{
    int e = __atomic_load_n(&s->write_err, __ATOMIC_ACQUIRE);
    if (msg && msglen) msg[0] = 0;
    if (e == SDB_ENOSPC)
        sdb__errf(msg, msglen, "no space left on device: the disk of store %s has %llu bytes "
                               "free%s", s->path, (unsigned long long)fs_free(s),
                  s->fallback_ro ? " (store opened read-only)" : "");
    else if (e)
        sdb__errf(msg, msglen, "%s: the disk of store %s refused a write%s", sdb_strerror(e),
                  s->path, s->fallback_ro ? " (store opened read-only)" : "");
    return e;
}

static int probe_txn(sdb__txn *t, void *ctx)
{
    (void)ctx;
    return sdb__meta_put_u64(t, "probe", (uint64_t)sdb_now_ms());
}

int sdb_store_probe(sdb_store *s)
{
    if (s->fallback_ro) {
        pthread_rwlock_wrlock(lock_of(s));
        if (s->fallback_ro) {
            unsigned ro = s->env_flags;
            int rc = env_reopen(s, ro & ~(unsigned)MDB_RDONLY);
            if (rc == SDB_OK) {
                s->read_only = 0;
                s->fallback_ro = 0;
            } else {
                if (is_disk_refusal(rc)) refused(s, rc);
                env_reopen(s, ro); /* on failure the next txn tries again */
            }
        }
        pthread_rwlock_unlock(lock_of(s));
        if (s->fallback_ro) return sdb_store_health(s, NULL, 0);
    }
    if (s->read_only) return SDB_EINVAL;
    return sdb__write(s, probe_txn, NULL);
}

int sdb_store_sync(sdb_store *s)
{
    if (s->read_only) return SDB_OK;
    pthread_rwlock_rdlock(lock_of(s));
    int rc = s->env ? from_mdb(mdb_env_sync((MDB_env *)s->env, 1)) : SDB_EIO;
    pthread_rwlock_unlock(lock_of(s));
    return is_disk_refusal(rc) ? refused(s, rc) : rc;
}

int sdb_store_backup(sdb_store *s, const char *out_dir, char *err, size_t errlen)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/data.mdb", out_dir);
    if (mkdir_p(out_dir) != 0) {
        sdb__errf(err, errlen, "cannot create %s: %s", out_dir, strerror(errno));
        return errno == ENOSPC ? SDB_ENOSPC : SDB_EIO;
    }
    if (stat(p, &st) == 0) {
        sdb__errf(err, errlen, "%s already holds a store; back up into an empty directory",
                  out_dir);
        return SDB_EINVAL;
    }
    /* One read txn inside LMDB: the copy is a snapshot, and writers of
     * this and other processes go on (a grow waits for the copy). */
    pthread_rwlock_rdlock(lock_of(s));
    int mrc = s->env ? mdb_env_copy2((MDB_env *)s->env, out_dir, MDB_CP_COMPACT) : EIO;
    pthread_rwlock_unlock(lock_of(s));
    if (mrc == 0) {
        /* mdb_env_copy2 closes the file without an fsync. */
        int fd = open(p, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0) mrc = errno ? errno : EIO;
        if (fd >= 0) close(fd);
    }
    if (mrc) {
        sdb__errf(err, errlen, "backup of %s into %s: %s", s->path, out_dir, mdb_strerror(mrc));
        unlink(p);
        return from_mdb(mrc);
    }
    return SDB_OK;
}

void sdb_store_close(sdb_store *s)
{
    if (!s) return;
    mdb_env_close((MDB_env *)s->env);
    pthread_rwlock_destroy(lock_of(s));
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s->lock);
    free(s->path);
    free(s);
}

static MDB_dbi dbi(sdb__txn *t, int db) { return (MDB_dbi)t->s->dbi[db]; }

/* Pages on LMDB's free list (database 0: txn id -> page number list, the
 * first word the count): reusable by later writes, given back to the file
 * system only by compact. */
static int free_pages(MDB_txn *txn, uint64_t *out)
{
    *out = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, 0, &c);
    if (rc) return from_mdb(rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        size_t n;
        if (v.mv_size < sizeof n) continue;
        memcpy(&n, v.mv_data, sizeof n);
        *out += n;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? SDB_OK : from_mdb(rc);
}

/* Key and value bytes of every entry of a database: against its pages,
 * how full they are. Inline values count in their leaf; large ones in
 * their overflow pages. A walk over every entry: stats costs a second or
 * so per 30M entries. */
static int payload_bytes(MDB_txn *txn, MDB_dbi d, int blocks, uint64_t *out, uint64_t *out_rows)
{
    *out = *out_rows = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, d, &c);
    if (rc) return from_mdb(rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        *out += k.mv_size + v.mv_size;
        uint32_t n = 0;
        if (blocks && sdb__rows_block_count(v.mv_data, v.mv_size, &n) == SDB_OK) *out_rows += n;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? SDB_OK : from_mdb(rc);
}

int sdb_store_stats_json(sdb_store *s, char **out_json)
{
    *out_json = NULL;
    sdb__txn *t;
    int rc = sdb__txn_begin(s, 0, &t);
    if (rc) return rc;
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info((MDB_env *)s->env, &info);
    mdb_env_stat((MDB_env *)s->env, &est);
    sdb__buf b = {0};
    char tmp[512];
    uint64_t psize = est.ms_psize, n_free = 0, ix_entries = 0, ix_runs = 0;
    uint64_t used = info.me_last_pgno + 1;
    if ((rc = free_pages(t->txn, &n_free)) || (rc = sdb__idx_stats(t, &ix_entries, &ix_runs))) {
        sdb__txn_abort(t);
        return rc;
    }
    snprintf(tmp, sizeof tmp,
             "{\"page_size\":%llu,\"pages_used\":%llu,\"bytes_used\":%llu,"
             "\"file_bytes\":%llu,\"free_pages\":%llu,\"free_bytes\":%llu,"
             "\"fill\":%.4f,\"id_index\":{\"entries\":%llu,\"runs\":%llu},\"dbs\":{",
             (unsigned long long)psize, (unsigned long long)used,
             (unsigned long long)(used * psize), (unsigned long long)sdb_store_disk_bytes(s),
             (unsigned long long)n_free, (unsigned long long)(n_free * psize),
             used ? (double)(used - (n_free < used ? n_free : used)) / (double)used : 0.0,
             (unsigned long long)ix_entries, (unsigned long long)ix_runs);
    rc = sdb__buf_add(&b, tmp, strlen(tmp));
    for (int i = 0; i < SDB__N_DBS && rc == SDB_OK; i++) {
        MDB_stat st;
        uint64_t payload, rows;
        if ((rc = from_mdb(mdb_stat(t->txn, dbi(t, i), &st)))) break;
        if ((rc = payload_bytes(t->txn, dbi(t, i), i == SDB__DB_ROWS, &payload, &rows))) break;
        uint64_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
        uint64_t data_pages = st.ms_leaf_pages + st.ms_overflow_pages;
        /* The row store's entries are its rows; its blocks are counted
         * beside them. */
        char blocks[48] = "";
        if (i == SDB__DB_ROWS)
            snprintf(blocks, sizeof blocks, ",\"blocks\":%llu", (unsigned long long)st.ms_entries);
        snprintf(tmp, sizeof tmp,
                 "%s\"%s\":{\"entries\":%llu%s,\"pages\":%llu,\"bytes\":%llu,"
                 "\"payload_bytes\":%llu,\"fill\":%.4f}",
                 i ? "," : "", db_names[i],
                 (unsigned long long)(i == SDB__DB_ROWS ? rows : st.ms_entries), blocks,
                 (unsigned long long)pages, (unsigned long long)(pages * psize),
                 (unsigned long long)payload,
                 data_pages ? (double)payload / (double)(data_pages * psize) : 0.0);
        rc = sdb__buf_add(&b, tmp, strlen(tmp));
    }
    if (rc == SDB_OK) rc = sdb__buf_add(&b, "}}", 3); /* with the NUL */
    sdb__txn_abort(t);
    if (rc) {
        sdb__buf_free(&b);
        return rc;
    }
    *out_json = b.p;
    return SDB_OK;
}

/* Remove DIR's store files (data.mdb, lock.mdb, scoredb.lock) and DIR. */
static void remove_store_dir(const char *dir)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "scoredb.lock"};
    char p[4400];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* fsync a directory (what makes a rename or a new file in it durable). */
static int fsync_dir(const char *p)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The parent directory of path (for the fsync that makes a rename durable). */
static void parent_of(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash) snprintf(out, n, ".");
    else if (slash == out) out[1] = 0;
    else *slash = 0;
}

int sdb_store_compact(const char *path, uint64_t *out_before, uint64_t *out_after, char *err,
                      size_t errlen)
{
    *out_before = *out_after = 0;
    char tmp[4200], parent[4200], p[4300];
    int lock_fd = -1, rc;
    sdb_store *s = NULL;
    if (strlen(path) > 4000) {
        sdb__errf(err, errlen, "store path too long (%zu bytes)", strlen(path));
        return SDB_EINVAL;
    }
    snprintf(p, sizeof p, "%s/data.mdb", path);
    struct stat st;
    if (stat(p, &st) != 0) {
        sdb__errf(err, errlen, "no store at %s", path);
        return SDB_ENOTFOUND;
    }
    if ((rc = lock_dir(path, 1, &lock_fd, err, errlen))) return rc;
    if ((rc = store_open(path, NULL, 1, &s, err, errlen))) goto done;
    *out_before = sdb_store_disk_bytes(s);
    /* A sibling, so that the swap is a rename on one file system. */
    snprintf(tmp, sizeof tmp, "%s.compact-%ld", path, (long)getpid());
    remove_store_dir(tmp); /* left by an earlier run that died */
    /* The compacting copy (mdb_env_copy2 with MDB_CP_COMPACT, synced). */
    if ((rc = sdb_store_backup(s, tmp, err, errlen))) {
        remove_store_dir(tmp);
        goto done;
    }
    sdb_store_close(s);
    s = NULL;
    snprintf(p, sizeof p, "%s/data.mdb", tmp);
    parent_of(path, parent, sizeof parent);
    if (fsync_dir(tmp) != 0) {
        sdb__errf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        rc = SDB_EIO;
        remove_store_dir(tmp);
        goto done;
    }
    if (stat(p, &st) == 0) *out_after = (uint64_t)st.st_blocks * 512u;
    /* The swap: renameat2(RENAME_EXCHANGE) trades the two directories in
     * one step, so DIR is at every instant either the old store or the
     * new one. The old one then lies under the temporary name. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) != 0) {
        sdb__errf(err, errlen, "cannot swap %s and %s: %s (the compacted copy is in %s)", tmp,
                  path, strerror(errno), tmp);
        rc = SDB_EIO;
        goto done;
    }
    fsync_dir(parent);
    remove_store_dir(tmp);
    rc = SDB_OK;
done:
    sdb_store_close(s);
    if (lock_fd >= 0) close(lock_fd);
    return rc;
}

uint64_t sdb_store_disk_bytes(sdb_store *s)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/data.mdb", s->path);
    struct stat st;
    if (stat(p, &st) != 0) return 0;
    return (uint64_t)st.st_blocks * 512u;
}

/* ------------------------------------------------------------ transactions */

int sdb__txn_begin(sdb_store *s, int write, sdb__txn **out)
{
    *out = NULL;
    sdb__txn *t = malloc(sizeof *t);
    if (!t) return SDB_ENOMEM;
    t->s = s;
    t->rows = NULL;
    for (int reopened = 0;;) {
        pthread_rwlock_rdlock(lock_of(s));
        void *env = s->env;
        int mrc = env ? mdb_txn_begin((MDB_env *)env, NULL, write ? 0 : MDB_RDONLY, &t->txn)
                      : MDB_PANIC;
        if (mrc == 0) break;
        pthread_rwlock_unlock(lock_of(s));
        if (mrc == MDB_PANIC && !reopened++) {
            /* A meta write failed (MDB_FATAL_ERROR) or a map was lost:
             * reopen, unless another thread already did. */
            pthread_rwlock_wrlock(lock_of(s));
            if (s->env == env) env_reopen(s, s->env_flags);
            pthread_rwlock_unlock(lock_of(s));
            continue;
        }
        if (mrc == MDB_MAP_RESIZED) {
            /* Another process grew the map: adopt its size. */
            pthread_rwlock_wrlock(lock_of(s));
            if (s->env == env) {
                MDB_envinfo info;
                if (mdb_env_set_mapsize((MDB_env *)env, 0) == 0) {
                    mdb_env_info((MDB_env *)env, &info);
                    s->map_size = info.me_mapsize;
                } else {
                    env_reopen(s, s->env_flags); /* the old map is gone: see the top */
                }
            }
            pthread_rwlock_unlock(lock_of(s));
            continue;
        }
        free(t);
        return from_mdb(mrc);
    }
    *out = t;
    return SDB_OK;
}

int sdb__txn_commit(sdb__txn *t)
{
    int rc = sdb__rows_flush(t);
    if (rc == SDB_OK)
        rc = from_mdb(mdb_txn_commit(t->txn));
    else
        mdb_txn_abort(t->txn);
    sdb__rows_txn_end(t->rows);
    pthread_rwlock_unlock(lock_of(t->s));
    free(t);
    return rc;
}

void sdb__txn_abort(sdb__txn *t)
{
    if (!t) return;
    sdb__rows_txn_end(t->rows);
    mdb_txn_abort(t->txn);
    pthread_rwlock_unlock(lock_of(t->s));
    free(t);
}

sdb_store *sdb__txn_store(sdb__txn *t) { return t->s; }

void **sdb__txn_rows(sdb__txn *t) { return &t->rows; }

/* Bytes of the map up to its last page in use. */
static uint64_t map_used(sdb_store *s, MDB_envinfo *info)
{
    MDB_stat st;
    mdb_env_stat((MDB_env *)s->env, &st);
    return ((uint64_t)info->me_last_pgno + 1) * st.ms_psize;
}

/* Double the map, up to what the file system can hold (the file plus
 * its free space) and MAP_MAX; with `room` set, keep doubling until the
 * map has `room` bytes past the pages in use, and do nothing when it
 * already has (sdb__map_reserve). */
static int grow_for(sdb_store *s, uint64_t need)
{
    pthread_rwlock_wrlock(lock_of(s));
    int rc = SDB_OK;
    if (!s->env && (rc = env_reopen(s, s->env_flags))) goto done;
    MDB_envinfo info;
    mdb_env_info((MDB_env *)s->env, &info);
    uint64_t cur = info.me_mapsize, want = cur * 2, room = fs_free(s);
    if (need) {
        uint64_t used = map_used(s, &info);
        if (cur >= used && cur - used >= need) goto done;
        while (want < MAP_MAX && (want < used || want - used < need)) want *= 2;
    }
    uint64_t cap = file_len(s);
    cap = room > MAP_MAX - cap ? MAP_MAX : cap + room;
    cap &= ~(uint64_t)0xFFFF; /* whole pages of any size LMDB uses */
    if (want > cap) want = cap;
    if (want <= cur) {
        rc = cap == MAP_MAX ? SDB_EFULL : SDB_ENOSPC;
        goto done;
    }
    int mrc = mdb_env_set_mapsize((MDB_env *)s->env, (size_t)want);
    if (mrc) {
        /* The old map is gone (see the top of the file): map it again. */
        s->map_size = cur;
        env_reopen(s, s->env_flags);
        rc = from_mdb(mrc);
        goto done;
    }
    mdb_env_info((MDB_env *)s->env, &info);
    s->map_size = info.me_mapsize;
done:
    pthread_rwlock_unlock(lock_of(s));
    return rc;
}

static int grow(sdb_store *s) { return grow_for(s, 0); }

int sdb__map_reserve(sdb_store *s, uint64_t room)
{
    if (s->read_only || room == 0) return SDB_OK;
    /* Looked at under the shared lock first: the exclusive one waits for
     * every open transaction, and a server folds often with room to
     * spare. */
    pthread_rwlock_rdlock(lock_of(s));
    int enough = 0;
    if (s->env) {
        MDB_envinfo info;
        mdb_env_info((MDB_env *)s->env, &info);
        uint64_t used = map_used(s, &info);
        enough = info.me_mapsize >= used && info.me_mapsize - used >= room;
    }
    pthread_rwlock_unlock(lock_of(s));
    return enough ? SDB_OK : grow_for(s, room);
}

/* Resident pages of the map. A process keeps every page of the map it has
 * read in its resident set until the map goes, so `scoredb ingest` of 10M
 * UUIDv4 scores peaked at 1.06 GiB, 760 MiB of it file pages of the map
 * (the fold reads every row block back, ingest the id runs): past
 * sdb__map_resident_max of file-backed pages, a writer drops the map's pages
 * from its page tables with MADV_DONTNEED. The page cache keeps them, so
 * the next read of one is a minor fault; what is dropped is only this
 * process's mapping of clean file pages (the map is read-only: LMDB
 * writes through the file without MDB_WRITEMAP). /proc/self/statm's
 * third field counts file-backed resident pages; the map is found in
 * /proc/self/maps by the data file's inode (mdb_env_info gives its address
 * only with MDB_FIXEDMAP). Under the shared lock, so the map cannot move
 * meanwhile. */
uint64_t sdb__map_resident_max = 256ull << 20; /* tests lower it */

static void map_trim_as(sdb_store *s, int held);

static void map_trim(sdb_store *s) { map_trim_as(s, 0); }

void sdb__map_trim_in_txn(sdb__txn *t)
{
    if (!(t->s->read_only)) map_trim_as(t->s, 1);
}

/* held: the caller's open transaction holds the shared lock already (a
 * second rdlock could wait behind a queued grow that waits for it). */
static void map_trim_as(sdb_store *s, int held)
{
    if (s->env_flags & MDB_WRITEMAP) return;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return;
    unsigned long long size = 0, resident = 0, shared = 0;
    int got = fscanf(f, "%llu %llu %llu", &size, &resident, &shared);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (got != 3 || page <= 0 || shared * (unsigned long long)page < sdb__map_resident_max) return;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", s->path);
    if (stat(path, &st) != 0 || !(f = fopen("/proc/self/maps", "r"))) return;
    if (!held) pthread_rwlock_rdlock(lock_of(s));
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off, ino;
        unsigned maj, mnr;
        char perm[8];
        if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perm, &off, &maj, &mnr, &ino) ==
                7 &&
            ino == (unsigned long long)st.st_ino && makedev(maj, mnr) == st.st_dev &&
            perm[3] == 's' && perm[1] != 'w')
            madvise((void *)(uintptr_t)lo, (size_t)(hi - lo), MADV_DONTNEED);
    }
    if (!held) pthread_rwlock_unlock(lock_of(s));
    fclose(f);
}

uint64_t sdb__write_redos;

int sdb__write(sdb_store *s, int (*fn)(sdb__txn *t, void *ctx), void *ctx)
{
    if (s->read_only) {
        int e = __atomic_load_n(&s->write_err, __ATOMIC_ACQUIRE);
        return s->fallback_ro && e ? e : SDB_EINVAL;
    }
    for (int attempt = 0; attempt < 40; attempt++) {
        sdb__txn *t;
        int rc = sdb__txn_begin(s, 1, &t);
        if (rc) return rc;
        rc = fn(t, ctx);
        if (rc == SDB_OK) {
            rc = sdb__txn_commit(t);
        } else {
            sdb__txn_abort(t);
        }
        if (rc == SDB_OK) {
            __atomic_store_n(&s->write_err, 0, __ATOMIC_RELEASE);
            map_trim(s);
            return SDB_OK;
        }
        if (rc != SDB_EFULL) return is_disk_refusal(rc) ? refused(s, rc) : rc;
        /* MDB_MAP_FULL from a put or the commit: grow and redo the batch. */
        __atomic_fetch_add(&sdb__write_redos, 1, __ATOMIC_RELAXED);
        if ((rc = grow(s))) return is_disk_refusal(rc) ? refused(s, rc) : rc;
    }
    return SDB_EFULL;
}

/* ------------------------------------------------------------- key/value */


int sdb__get(sdb__txn *t, int db, const void *k, size_t klen, sdb__val *out)
{
    MDB_val key = {klen, (void *)k}, val;
    int rc = mdb_get(t->txn, dbi(t, db), &key, &val);
    if (rc) return from_mdb(rc);
    out->p = val.mv_data;
    out->len = val.mv_size;
    return SDB_OK;
}

/* `append` is a hint that k sorts after every key of the database: LMDB
 * then puts it on the last page without a search from the root. When the
 * hint is wrong LMDB refuses with MDB_KEYEXIST before changing anything,
 * and the put is made the ordinary way. */
int sdb__put(sdb__txn *t, int db, const void *k, size_t klen, const void *v, size_t vlen,
             int append)
{
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
    int rc = mdb_put(t->txn, dbi(t, db), &key, &val, append ? MDB_APPEND : 0);
    if (rc == MDB_KEYEXIST && append) rc = mdb_put(t->txn, dbi(t, db), &key, &val, 0);
    return from_mdb(rc);
}

int sdb__reserve(sdb__txn *t, int db, const void *k, size_t klen, size_t vlen, void **out)
{
    MDB_val key = {klen, (void *)k}, val = {vlen, NULL};
    int rc = mdb_put(t->txn, dbi(t, db), &key, &val, MDB_RESERVE);
    if (rc) return from_mdb(rc);
    *out = val.mv_data;
    return SDB_OK;
}

int sdb__reserve_append(sdb__txn *t, int db, const void *k, size_t klen, size_t vlen,
                        void **out)
{
    MDB_val key = {klen, (void *)k}, val = {vlen, NULL};
    int rc = mdb_put(t->txn, dbi(t, db), &key, &val, MDB_RESERVE | MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
        val = (MDB_val){vlen, NULL};
        rc = mdb_put(t->txn, dbi(t, db), &key, &val, MDB_RESERVE);
    }
    if (rc) return from_mdb(rc);
    *out = val.mv_data;
    return SDB_OK;
}

int sdb__del(sdb__txn *t, int db, const void *k, size_t klen)
{
    MDB_val key = {klen, (void *)k};
    return from_mdb(mdb_del(t->txn, dbi(t, db), &key, NULL));
}

int sdb__clear(sdb__txn *t, int db) { return from_mdb(mdb_drop(t->txn, dbi(t, db), 0)); }

uint64_t sdb__count(sdb__txn *t, int db)
{
    MDB_stat st;
    if (mdb_stat(t->txn, dbi(t, db), &st)) return 0;
    return st.ms_entries;
}

int sdb__cur_open(sdb__txn *t, int db, sdb__cur **out)
{
    sdb__cur *c = malloc(sizeof *c);
    if (!c) return SDB_ENOMEM;
    int rc = mdb_cursor_open(t->txn, dbi(t, db), &c->c);
    if (rc) {
        free(c);
        return from_mdb(rc);
    }
    *out = c;
    return SDB_OK;
}

void sdb__cur_close(sdb__cur *c)
{
    if (!c) return;
    mdb_cursor_close(c->c);
    free(c);
}

static int cur_get(sdb__cur *c, MDB_val *key, MDB_cursor_op op, sdb__val *k, sdb__val *v)
{
    MDB_val val;
    int rc = mdb_cursor_get(c->c, key, &val, op);
    if (rc) return from_mdb(rc);
    if (k) { k->p = key->mv_data; k->len = key->mv_size; }
    if (v) { v->p = val.mv_data; v->len = val.mv_size; }
    return SDB_OK;
}

int sdb__cur_seek(sdb__cur *c, const void *k, size_t klen, sdb__val *key, sdb__val *val)
{
    MDB_val mk = {klen, (void *)k};
    return cur_get(c, &mk, k ? MDB_SET_RANGE : MDB_FIRST, key, val);
}

int sdb__cur_next(sdb__cur *c, sdb__val *key, sdb__val *val)
{
    MDB_val mk;
    return cur_get(c, &mk, MDB_NEXT, key, val);
}

int sdb__cur_prev(sdb__cur *c, sdb__val *key, sdb__val *val)
{
    MDB_val mk;
    return cur_get(c, &mk, MDB_PREV, key, val);
}

int sdb__cur_last(sdb__cur *c, sdb__val *key, sdb__val *val)
{
    MDB_val mk;
    return cur_get(c, &mk, MDB_LAST, key, val);
}

int sdb__cur_del(sdb__cur *c) { return from_mdb(mdb_cursor_del(c->c, 0)); }

/* ------------------------------------------------------------------ meta */

int sdb__meta_get_u64(sdb__txn *t, const char *key, uint64_t *out)
{
    sdb__val v = {NULL, 0};
    int rc = sdb__get(t, SDB__DB_META, key, strlen(key), &v);
    if (rc) return rc;
    if (v.len != 8) return SDB_ECORRUPT;
    *out = sdb__rd64(v.p);
    return SDB_OK;
}

int sdb__meta_put_u64(sdb__txn *t, const char *key, uint64_t v)
{
    uint8_t b[8];
    sdb__be64(b, v);
    return sdb__put(t, SDB__DB_META, key, strlen(key), b, 8, 0);
}

/* Per-project values in meta: key prefix (at most 15 bytes) + project. */
static size_t project_key(char *k, const char *prefix, uint32_t project)
{
    size_t n = strlen(prefix);
    memcpy(k, prefix, n);
    sdb__be32((uint8_t *)k + n, project);
    return n + 4;
}

int sdb__meta_get_project(sdb__txn *t, const char *prefix, uint32_t project, uint64_t *out)
{
    char k[20];
    size_t klen = project_key(k, prefix, project);
    sdb__val v = {NULL, 0};
    int rc = sdb__get(t, SDB__DB_META, k, klen, &v);
    *out = 0;
    if (rc == SDB_ENOTFOUND) return SDB_OK;
    if (rc) return rc;
    if (v.len != 8) return SDB_ECORRUPT;
    *out = sdb__rd64(v.p);
    return SDB_OK;
}

int sdb__meta_put_project(sdb__txn *t, const char *prefix, uint32_t project, uint64_t v)
{
    char k[20];
    uint8_t b[8];
    size_t klen = project_key(k, prefix, project);
    sdb__be64(b, v);
    return sdb__put(t, SDB__DB_META, k, klen, b, 8, 0);
}

int sdb__pending_of(sdb__txn *t, uint32_t project, uint64_t *out)
{
    return sdb__meta_get_project(t, "pending:", project, out);
}

int sdb__pending_add(sdb__txn *t, uint32_t project, int64_t delta)
{
    uint64_t n;
    int rc = sdb__pending_of(t, project, &n);
    if (rc) return rc;
    n = (int64_t)n + delta < 0 ? 0 : (uint64_t)((int64_t)n + delta);
    return sdb__meta_put_project(t, "pending:", project, n);
}
