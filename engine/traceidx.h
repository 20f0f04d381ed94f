/* The refs index (engine/traceidx.c): trace, session, observation,
 * dataset run, config and property (key, value) -> row refs, exact, for
 * the list routes' filters on those fields. Private to engine/. */
#ifndef SDB_TRACEIDX_H
#define SDB_TRACEIDX_H

#include "internal.h"

/* The trace hash of a trace id as ingest writes it in sdb__fixed.trace
 * (xxh3, with 0 kept for "no trace" and so moved to 1). */
uint64_t sdb__tix_hash(const char *id, size_t len);

/* What an entry is keyed by. A key's 64-bit hash carries its kind (a
 * trace is its plain hash, the one the trace column holds; the others are
 * salted by kind), so every kind shares one set of runs. */
enum {
    SDB__TIX_TRACE,
    SDB__TIX_SESSION,
    SDB__TIX_OBS,
    SDB__TIX_RUN,    /* dataset run */
    SDB__TIX_CONFIG,
    SDB__TIX_PROP,   /* a property: key a, value b */
    SDB__TIX_NOTRACE, /* one key (a, b unused): the scores without a trace */
    SDB__TIX_N_KINDS
};
/* Whether property key k (len bytes) is indexed (SDB__TIX_PROP): only
 * "queue_id", the annotation queue a score belongs to (Langfuse's queueId,
 * server/langfuse.c). Every property of every score would cost 16 bytes
 * each: the benchmark's two per score, +32 B a score, a quarter of the
 * store. Other property filters are checked on the rows. */
bool sdb__tix_prop_indexed(const char *k, size_t len);

/* The hash of a key of `kind` (b: the value of a property, else unused). */
uint64_t sdb__tix_key(int kind, const char *a, size_t alen, const char *b, size_t blen);

/* The fold's hook, in two halves so that the fold can sort on another
 * thread while it builds its chunks. sdb__tix_prepare reads only
 * rows[0..n) (each project's rows in one ref-ordered span, as the fold
 * takes them; no txn, any thread): each row's trace, or the one
 * SDB__TIX_NOTRACE key for a row without one, sorted, into *out (owned:
 * sdb__tix_prep_free, which takes NULL). sdb__tix_write then indexes them
 * in the fold's write txn, before the fold moves the projects' fold marks,
 * with the keys only the records hold: session, observation, dataset run,
 * config and indexed property (sdb__tix_prop_indexed), read from the
 * span's records again; a record without any costs one look at its masks.
 * SDB_OK, SDB_ENOMEM, or an LMDB code from the write. */
typedef struct sdb__tix_prep sdb__tix_prep;
int sdb__tix_prepare(const sdb__fixed *rows, uint32_t n, sdb__tix_prep **out);

/* The keys only the records hold, collected by the fold as it reads each
 * record once (reading the span's records again in sdb__tix_write, for
 * keys most records do not have, was 7% of a 10M UUIDv4 ingest's CPU:
 * each block decompressed and each record decoded a second time).
 * sdb__tix_rec_keys appends the keys of the record rec (len bytes, as
 * sdb__rows_next gives it) of row ref to *k: row is the record decoded
 * already, or NULL (decoded here only when its masks say it may have
 * one). sdb__tix_prepare_keyed is sdb__tix_prepare with those keys, in
 * the rows' order (each key right after the keys of the rows before its
 * own), sorted in with the traces there, so that sdb__tix_write reads no
 * record. SDB_EINVAL when a key's ref is not one of rows' in that order. */
typedef struct sdb__tix_ent {
    uint64_t h, ref;
} sdb__tix_ent;
typedef struct sdb__tix_keys {
    sdb__tix_ent *v;
    size_t n, cap;
} sdb__tix_keys;
int sdb__tix_rec_keys(const void *rec, size_t len, const sdb__row *row, uint64_t ref,
                      sdb__tix_keys *k);
int sdb__tix_prepare_keyed(const sdb__fixed *rows, uint32_t n, const sdb__tix_keys *k,
                           sdb__tix_prep **out);
int sdb__tix_write(sdb__txn *t, const sdb__tix_prep *p);
void sdb__tix_prep_free(sdb__tix_prep *p);

/* The refs of `project`'s rows with any of the n_h keys hs (each of
 * `kind`, from sdb__tix_key or sdb__tix_hash) and whose ref is below
 * `below`, newest first, at most `max` of them (a ref once, whichever
 * keys it has): the index's
 * entries for the folded rows, and a walk of the rows past the fold mark
 * (the pending ones, which the fold drains). A ref may name a row that
 * has since been replaced or deleted, or (a 64-bit hash collision) a row
 * of another key: callers read the row and check the field.
 * *out_refs is owned (free()); NULL when *out_n is 0.
 * *out_base: refs at or below it were folded before the index held this
 * kind (stores written by older versions: traces since "tixbase:", the
 * other kinds since "rixbase:") and are not in the answer; 0 on any store
 * the index has seen from its start.
 * The pending walk reads at most `max` rows: when it stops short of the
 * fold mark, *out_cut is the ref to go on below (a cursor) and the answer
 * holds only the pending rows above it; else *out_cut is 0.
 * SDB_OK, SDB_ECORRUPT or SDB_ENOMEM. */
int sdb__tix_refs(sdb__txn *t, uint32_t project, int kind, const uint64_t *hs, size_t n_h,
                  uint64_t below, size_t max, uint64_t **out_refs, size_t *out_n,
                  uint64_t *out_base, uint64_t *out_cut);

/* *out_base as sdb__tix_refs gives it for kind: 0 when every folded row
 * of the project is in the index. */
int sdb__tix_base(sdb__txn *t, uint32_t project, int kind, uint64_t *out_base);

/* Entries and runs held (scoredb check and tests). */
int sdb__tix_stats(sdb__txn *t, uint32_t project, uint64_t *out_entries, uint64_t *out_runs);

#endif
