/* API keys → projects, the only server file that includes <sodium.h>.
 *
 * The keys file has one key per line, `PROJECT KEY`, blank lines and lines
 * starting with '#' ignored:
 *
 *     # project   key
 *     default     sk-3f9a0c...
 *     team-b      pk-lf-1234:sk-lf-5678
 *
 * A key containing ':' is also a Langfuse key pair: clients send it as
 * HTTP Basic with the public key as user and the secret key as password
 * (the server rebuilds "public:secret" from Basic); Bearer takes the whole
 * key text. Several keys may map to one project; one key may not be
 * listed twice (for two projects it would be ambiguous which one it
 * reads, so the file is refused at start, naming both lines).
 *
 * The project name "@metrics" is not a project: its key is the metrics
 * key, which reads /metrics for the whole server (totals over every
 * project) and no other route. A project's own key reads /metrics too, but
 * only that project's figures, counted here per project of the file.
 *
 * The public half of a pair, sent alone as Bearer (Langfuse's browser
 * SDK), is a credential of its own that may create scores and nothing else
 * (sdb_keys_check_public; server/compat.c scopes it).
 *
 * Keys are held only as BLAKE2b-256 hashes (libsodium crypto_generichash,
 * keyed with a random per-process key so the table is useless outside this
 * process), and a presented key is compared against every entry with
 * sodium_memcmp, without an early exit: the time taken does not depend on
 * which key, or how much of one, matched.
 */
#include "srv_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_entry {
    unsigned char hash[crypto_generichash_BYTES];
    uint32_t project;
    int line; /* in the keys file, for messages */
    int public_only; /* the public half of a pair: score creation only */
} key_entry;

typedef struct proj_stat {
    uint32_t project;
    _Atomic uint64_t req[SDB_N_ROUTES][SDB_N_STATUS];
    _Atomic uint64_t ingested;
} proj_stat;

struct sdb_keys {
    unsigned char hkey[crypto_generichash_KEYBYTES];
    key_entry *v;
    size_t n;
    proj_stat *ps; /* one per project of the file, in first-listed order */
    size_t n_ps;
};

/* Key files hold tens of projects: a scan is enough. */
static proj_stat *stat_of(const sdb_keys *k, uint32_t project)
{
    for (size_t i = 0; i < k->n_ps; i++)
        if (k->ps[i].project == project) return &k->ps[i];
    return NULL;
}

void sdb_keys_note_request(sdb_keys *k, uint32_t project, int route, int status_index)
{
    proj_stat *p = k ? stat_of(k, project) : NULL;
    if (p && route >= 0 && route < SDB_N_ROUTES && status_index >= 0 &&
        status_index < SDB_N_STATUS)
        atomic_fetch_add(&p->req[route][status_index], 1);
}

void sdb_keys_note_ingested(sdb_keys *k, uint32_t project, uint64_t n)
{
    proj_stat *p = k ? stat_of(k, project) : NULL;
    if (p) atomic_fetch_add(&p->ingested, n);
}

int sdb_keys_counts(const sdb_keys *k, uint32_t project,
                    uint64_t req[SDB_N_ROUTES][SDB_N_STATUS], uint64_t *ingested)
{
    const proj_stat *p = k ? stat_of(k, project) : NULL;
    if (!p) return SDB_ENOTFOUND;
    for (int r = 0; r < SDB_N_ROUTES; r++)
        for (int i = 0; i < SDB_N_STATUS; i++) req[r][i] = atomic_load(&p->req[r][i]);
    *ingested = atomic_load(&p->ingested);
    return SDB_OK;
}

static void hash_of(const sdb_keys *k, const char *cred, size_t len, unsigned char *out)
{
    crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)cred, len, k->hkey,
                       sizeof k->hkey);
}

int sdb_keys_load(const char *path, sdb_store *s, sdb_keys **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return SDB_EIO;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--keys %s: cannot read the file", path);
        return SDB_EIO;
    }
    sdb_keys *k = calloc(1, sizeof *k);
    if (!k) {
        fclose(f);
        return SDB_ENOMEM;
    }
    crypto_generichash_keygen(k->hkey);
    char *line = NULL;
    size_t cap = 0, cap_v = 0;
    ssize_t got;
    int rc = SDB_OK, lineno = 0;
    while (rc == SDB_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *save = NULL, *proj = strtok_r(line, " \t\r\n", &save);
        if (!proj || proj[0] == '#') continue;
        char *key = strtok_r(NULL, " \t\r\n", &save), *extra = strtok_r(NULL, " \t\r\n", &save);
        if (!key || extra || strlen(proj) > 200) {
            snprintf(err, errlen, "--keys %s line %d: expected \"PROJECT KEY\"", path, lineno);
            rc = SDB_EINVAL;
            break;
        }
        if (k->n + 2 > cap_v) {
            cap_v = cap_v ? cap_v * 2 : 16;
            key_entry *v = realloc(k->v, cap_v * sizeof *v);
            if (!v) {
                rc = SDB_ENOMEM;
                break;
            }
            k->v = v;
        }
        key_entry *e = &k->v[k->n];
        hash_of(k, key, strlen(key), e->hash);
        /* The public key alone (Langfuse's browser SDK sends it as Bearer)
         * scopes the same project for score creation. */
        char *colon = strchr(key, ':');
        int has_pub = colon && colon > key;
        unsigned char pub[crypto_generichash_BYTES];
        if (has_pub) hash_of(k, key, (size_t)(colon - key), pub);
        sodium_memzero(key, strlen(key));
        e->line = lineno;
        e->public_only = 0;
        /* Key files hold tens of keys: a scan per line is enough. */
        for (size_t i = 0; i < k->n; i++)
            if (sodium_memcmp(k->v[i].hash, e->hash, sizeof e->hash) == 0) {
                snprintf(err, errlen,
                         "--keys %s line %d: the key of line %d again (a key names one "
                         "project; give each project its own key)",
                         path, lineno, k->v[i].line);
                rc = SDB_EINVAL;
            }
        if (rc) break;
        if (!strcmp(proj, "@metrics")) {
            e->project = SDB_KEYS_METRICS;
        } else if ((rc = sdb_project_id(s, proj, 1, &e->project))) {
            snprintf(err, errlen, "--keys %s line %d: project \"%s\": %s", path, lineno, proj,
                     sdb_strerror(rc));
            break;
        } else if (!stat_of(k, e->project)) {
            proj_stat *ps = realloc(k->ps, (k->n_ps + 1) * sizeof *ps);
            if (!ps) {
                rc = SDB_ENOMEM;
                break;
            }
            k->ps = ps;
            memset(&ps[k->n_ps], 0, sizeof *ps);
            ps[k->n_ps++].project = e->project;
        }
        k->n++;
        if (has_pub && e->project != SDB_KEYS_METRICS) {
            key_entry *pe = &k->v[k->n++];
            memcpy(pe->hash, pub, sizeof pub);
            pe->project = e->project;
            pe->line = lineno;
            pe->public_only = 1;
        }
        sodium_memzero(pub, sizeof pub);
    }
    if (line) sodium_memzero(line, cap);
    free(line);
    fclose(f);
    if (rc == SDB_OK && k->n == 0) {
        snprintf(err, errlen, "--keys %s: no keys in the file", path);
        rc = SDB_EINVAL;
    }
    if (rc) {
        sdb_keys_free(k);
        return rc;
    }
    *out = k;
    return SDB_OK;
}

static int check(const sdb_keys *k, const char *cred, size_t len, int public_only,
                 uint32_t *out_project)
{
    unsigned char h[crypto_generichash_BYTES];
    hash_of(k, cred, len, h);
    int found = 0;
    uint32_t project = 0;
    for (size_t i = 0; i < k->n; i++) {
        int eq = (sodium_memcmp(h, k->v[i].hash, sizeof h) == 0) &
                 (k->v[i].public_only == public_only);
        /* Branch-free select: no early exit on a match. */
        uint32_t mask = (uint32_t)0 - (uint32_t)(eq & !found);
        project = (project & ~mask) | (k->v[i].project & mask);
        found |= eq;
    }
    *out_project = project;
    return found ? SDB_OK : SDB_ENOTFOUND;
}

int sdb_keys_check(const sdb_keys *k, const char *cred, size_t len, uint32_t *out_project)
{
    return check(k, cred, len, 0, out_project);
}

int sdb_keys_check_public(const sdb_keys *k, const char *cred, size_t len, uint32_t *out_project)
{
    return check(k, cred, len, 1, out_project);
}

void sdb_keys_free(sdb_keys *k)
{
    if (!k) return;
    sodium_memzero(k->hkey, sizeof k->hkey);
    free(k->ps);
    free(k->v);
    free(k);
}
