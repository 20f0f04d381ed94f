/* A disk that fails on demand: an LD_PRELOAD shim for the fault tests
 * (tests/fault_test.py, docs/reliability.md).
 *
 * It wraps the calls through which LMDB (and anything else) puts bytes on
 * a disk: write, pwrite, pwrite64, writev, pwritev, msync, fsync,
 * fdatasync, ftruncate, posix_fallocate and fallocate (and mmap, below).
 * A call that matches
 * is counted; the Nth and later matching calls fail with the chosen errno
 * and write nothing, as a full disk refuses an allocation. Only calls on
 * regular files count (msync has no descriptor and always counts), so the
 * HTTP sockets and pipes of the process under test are untouched.
 *
 * Settings (environment, read once):
 *   SDB_FAULT_AT=N        the first call to fail, counting from 1 (1)
 *   SDB_FAULT_COUNT=K     how many fail from there; 0: every later one,
 *                         a disk that stays full (0)
 *   SDB_FAULT_ERRNO=E     ENOSPC, EIO or EDQUOT (ENOSPC)
 *   SDB_FAULT_OPS=a,b     only these calls (names above; all)
 *   SDB_FAULT_PATH=S      only descriptors whose path contains S (any)
 *   SDB_FAULT_SWITCH=F    faults and counting only while file F exists: a
 *                         test fills the disk by creating F and frees it
 *                         by removing it (always on)
 *   SDB_FAULT_LOG=F       one line per failed call appended to F: the
 *                         call's name (the tests count faults from it)
 *   SDB_FAULT_MMAP_MAX=B  a shared mmap of a regular file longer than B
 *                         bytes fails with ENOMEM, as when the address
 *                         space runs out (LMDB growing its map)
 * With none of these set the shim only passes calls through.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_WRITE, OP_PWRITE, OP_WRITEV, OP_PWRITEV, OP_MSYNC, OP_FSYNC, OP_FDATASYNC,
       OP_FTRUNCATE, OP_FALLOCATE, N_OPS };
static const char *const op_names[N_OPS + 1] = {"write", "pwrite", "writev", "pwritev", "msync",
                                                "fsync", "fdatasync", "ftruncate", "fallocate",
                                                "mmap"};

static struct {
    atomic_int ready;
    long at, count;
    int err;
    unsigned ops;
    const char *path, *sw, *log;
    unsigned long long mmap_max;
    atomic_long calls;
} cfg;

static void setup(void)
{
    if (atomic_load(&cfg.ready)) return;
    const char *e = getenv("SDB_FAULT_AT");
    cfg.at = e ? strtol(e, NULL, 10) : 1;
    if (cfg.at < 1) cfg.at = 1;
    e = getenv("SDB_FAULT_COUNT");
    cfg.count = e ? strtol(e, NULL, 10) : 0;
    e = getenv("SDB_FAULT_ERRNO");
    cfg.err = !e || !strcmp(e, "ENOSPC") ? ENOSPC : !strcmp(e, "EIO") ? EIO
            : !strcmp(e, "EDQUOT") ? EDQUOT : ENOSPC;
    e = getenv("SDB_FAULT_OPS");
    cfg.ops = e ? 0 : (1u << N_OPS) - 1;
    for (const char *p = e; p && *p;) {
        size_t n = strcspn(p, ",");
        for (int i = 0; i < N_OPS; i++)
            if (strlen(op_names[i]) == n && !strncmp(p, op_names[i], n)) cfg.ops |= 1u << i;
        p += n + (p[n] == ',');
    }
    cfg.path = getenv("SDB_FAULT_PATH");
    cfg.sw = getenv("SDB_FAULT_SWITCH");
    cfg.log = getenv("SDB_FAULT_LOG");
    e = getenv("SDB_FAULT_MMAP_MAX");
    cfg.mmap_max = e ? strtoull(e, NULL, 10) : 0;
    /* With nothing asked for, inject nothing. */
    if (!getenv("SDB_FAULT_AT") && !getenv("SDB_FAULT_SWITCH")) cfg.ops = 0;
    atomic_store(&cfg.ready, 1);
}

/* Read the settings again once this library is initialised: ASan's
 * runtime calls write() before libc has set up the environment, and the
 * first, empty read would otherwise stay. */
__attribute__((constructor)) static void fault_init(void)
{
    atomic_store(&cfg.ready, 0);
    setup();
}

/* The next definition of `name` into the function pointer at fp (ISO C
 * has no cast from dlsym's object pointer to a function pointer). */
static void real(const char *name, void *fp)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f) abort();
    memcpy(fp, &f, sizeof f);
}

static ssize_t (*real_write)(int, const void *, size_t);

static void log_fault(int op)
{
    if (!cfg.log) return;
    if (!real_write) real("write", &real_write);
    int fd = open(cfg.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s %s\n", op_names[op], strerror(cfg.err));
    (void)!real_write(fd, line, (size_t)n);
    close(fd);
}

/* Whether this call fails; sets errno when it does. fd < 0: no descriptor. */
static int fault(int op, int fd)
{
    setup();
    if (!(cfg.ops & (1u << op))) return 0;
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
        if (cfg.path) {
            char link[64], target[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n < 0) return 0;
            target[n] = 0;
            if (!strstr(target, cfg.path)) return 0;
        }
    }
    if (cfg.sw && access(cfg.sw, F_OK) != 0) return 0;
    long n = atomic_fetch_add(&cfg.calls, 1) + 1;
    if (n < cfg.at || (cfg.count > 0 && n >= cfg.at + cfg.count)) return 0;
    log_fault(op);
    errno = cfg.err;
    return 1;
}

ssize_t write(int fd, const void *p, size_t n)
{
    if (!real_write) real("write", &real_write);
    if (fault(OP_WRITE, fd)) return -1;
    return real_write(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    static ssize_t (*f)(int, const void *, size_t, off_t);
    if (!f) real("pwrite", &f);
    if (fault(OP_PWRITE, fd)) return -1;
    return f(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    static ssize_t (*f)(int, const void *, size_t, off_t);
    if (!f) real("pwrite64", &f);
    if (fault(OP_PWRITE, fd)) return -1;
    return f(fd, p, n, off);
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
    static ssize_t (*f)(int, const struct iovec *, int);
    if (!f) real("writev", &f);
    if (fault(OP_WRITEV, fd)) return -1;
    return f(fd, v, n);
}

ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
    static ssize_t (*f)(int, const struct iovec *, int, off_t);
    if (!f) real("pwritev", &f);
    if (fault(OP_PWRITEV, fd)) return -1;
    return f(fd, v, n, off);
}

int msync(void *addr, size_t len, int flags)
{
    static int (*f)(void *, size_t, int);
    if (!f) real("msync", &f);
    if (fault(OP_MSYNC, -1)) return -1;
    return f(addr, len, flags);
}

int fsync(int fd)
{
    static int (*f)(int);
    if (!f) real("fsync", &f);
    if (fault(OP_FSYNC, fd)) return -1;
    return f(fd);
}

int fdatasync(int fd)
{
    static int (*f)(int);
    if (!f) real("fdatasync", &f);
    if (fault(OP_FDATASYNC, fd)) return -1;
    return f(fd);
}

int ftruncate(int fd, off_t len)
{
    static int (*f)(int, off_t);
    if (!f) real("ftruncate", &f);
    if (fault(OP_FTRUNCATE, fd)) return -1;
    return f(fd, len);
}

/* posix_fallocate returns the error instead of setting errno. */
int posix_fallocate(int fd, off_t off, off_t len)
{
    static int (*f)(int, off_t, off_t);
    if (!f) real("posix_fallocate", &f);
    if (fault(OP_FALLOCATE, fd)) return errno;
    return f(fd, off, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    static int (*f)(int, int, off_t, off_t);
    if (!f) real("fallocate", &f);
    if (fault(OP_FALLOCATE, fd)) return -1;
    return f(fd, mode, off, len);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    static void *(*f)(void *, size_t, int, int, int, off_t);
    if (!f) real("mmap", &f);
    setup();
    struct stat st;
    if (cfg.mmap_max && len > cfg.mmap_max && fd >= 0 && (flags & MAP_SHARED) &&
        fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        log_fault(N_OPS);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return f(addr, len, prot, flags, fd, off);
}
