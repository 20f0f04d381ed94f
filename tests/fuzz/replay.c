/* Replays saved fuzz inputs through a target's LLVMFuzzerTestOneInput
 * without libFuzzer, so that the corpus runs under the normal build flags
 * in `make test` (and under ASan/UBSan in `make test-asan`).
 *
 *     replay_<target> DIR|FILE ...
 *
 * Each input runs in a child process of its own: a crash or a failed
 * invariant then names its file and the rest still run, and LeakSanitizer
 * checks every input at the child's exit. Targets set up shared state
 * (the query target's store) lazily, so each child builds its own and no
 * LMDB environment ever crosses a fork. Inputs are copied into a buffer of
 * exactly their size, so that ASan sees a read one byte past the end.
 * Prints "<name>: N passed, M failed" and exits 1 when any failed.
 */
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long n_pass, n_fail;

static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int bad = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(buf, cap);
            if (!p) {
                bad = 1;
                break;
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    bad |= ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    /* Exactly len bytes (malloc(0) may return NULL: use 1 then). */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    if (len) memcpy(exact, buf, len);
    free(buf);
    *out = exact;
    *out_len = len;
    return 0;
}

static void run_one(const char *path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        n_fail++;
        return;
    }
    if (pid == 0) {
        uint8_t *data;
        size_t len;
        if (read_file(path, &data, &len)) {
            fprintf(stderr, "replay: cannot read %s\n", path);
            exit(2);
        }
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "replay: FAILED on %s (%s %d)\n", path,
                WIFSIGNALED(st) ? "signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        n_fail++;
    } else {
        n_pass++;
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a directory, in name order (not recursive). */
static void run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        n_fail++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) break;
            names = p;
        }
        size_t l = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(l))) break;
        snprintf(names[n], l, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) run_one(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            run_dir(argv[i]);
        else
            run_one(argv[i]);
    }
    const char *name = strrchr(argv[0], '/');
    printf("%s: %lu passed, %lu failed\n", name ? name + 1 : argv[0], n_pass, n_fail);
    return n_fail ? 1 : 0;
}
