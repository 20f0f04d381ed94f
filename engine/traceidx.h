/* The trace index (engine/traceidx.c): trace -> row refs, exact, for the
 * list routes' trace filter. Private to engine/. */
#ifndef SDB_TRACEIDX_H
#define SDB_TRACEIDX_H

#include "internal.h"

/* The trace hash of a trace id as ingest writes it in sdb__fixed.trace
 * (xxh3, with 0 kept for "no trace" and so moved to 1). */
uint64_t sdb__tix_hash(const char *id, size_t len);

/* The fold's hook, in two halves so that the fold can sort on another
 * thread while it builds its chunks. sdb__tix_prepare reads only
 * rows[0..n) (any projects, any order; rows without a trace are skipped;
 * no txn, any thread) into *out (owned: sdb__tix_prep_free, which takes
 * NULL); sdb__tix_write then indexes them in the fold's write txn, before
 * the fold moves the projects' fold marks. SDB_OK, SDB_ENOMEM, or an
 * LMDB code from the write. */
typedef struct sdb__tix_prep sdb__tix_prep;
int sdb__tix_prepare(const sdb__fixed *rows, uint32_t n, sdb__tix_prep **out);
int sdb__tix_write(sdb__txn *t, const sdb__tix_prep *p);
void sdb__tix_prep_free(sdb__tix_prep *p);

/* The refs of `project`'s rows whose trace hash is h and whose ref is
 * below `below`, newest first, at most `max` of them: the index's
 * entries for the folded rows, and a walk of the rows past the fold mark
 * (the pending ones, which the fold drains). A ref may name a row that
 * has since been replaced or deleted, or (a 64-bit hash collision) a row
 * of another trace: callers read the row and check its trace id.
 * *out_refs is owned (free()); NULL when *out_n is 0.
 * *out_base: refs at or below it were folded before the index existed
 * (stores written by older versions) and are not in the answer; 0 on any
 * store the index has seen from its start.
 * The pending walk reads at most `max` rows: when it stops short of the
 * fold mark, *out_cut is the ref to go on below (a cursor) and the answer
 * holds only the pending rows above it; else *out_cut is 0.
 * SDB_OK, SDB_ECORRUPT or SDB_ENOMEM. */
int sdb__tix_refs(sdb__txn *t, uint32_t project, uint64_t h, uint64_t below, size_t max,
                  uint64_t **out_refs, size_t *out_n, uint64_t *out_base, uint64_t *out_cut);

/* Entries and runs held (scoredb check and tests). */
int sdb__tix_stats(sdb__txn *t, uint32_t project, uint64_t *out_entries, uint64_t *out_runs);

#endif
