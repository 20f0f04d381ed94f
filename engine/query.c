/* The query engine's driver: parse, plan, execute, answer, render.
 *
 * Each stage owns one file (query.h draws the map): json.c parses the
 * query object, plan.c keeps the segments that can match and checks the
 * cost budget, exec.c runs the per-segment pipeline into the group table
 * of aggregate.c, answer.c turns the table into groups, and json.c renders
 * them. Everything runs in one read transaction, so the answer reflects
 * one watermark (`as_of`) and the column pointers stay valid throughout.
 *
 * Exactness: counts, min, max, histogram bins and percentiles are exact;
 * sum and avg are sums of doubles (the same additions a SQL engine
 * performs, in another order); stddev comes from moments about a shift
 * near each group's mean, merged with Chan's formula.
 */
#include "query.h"

static void limits_of(const sdb_store *s, sdb__limits *l)
{
    l->max_cells = s->query_max_cells ? s->query_max_cells : SDB__QMAX_CELLS_DEFAULT;
    l->max_answer = s->query_max_answer_bytes ? s->query_max_answer_bytes : SDB__QMAX_ANSWER_DEFAULT;
    l->max_mem = s->query_max_mem_bytes ? s->query_max_mem_bytes : SDB__QMAX_MEM_DEFAULT;
    l->max_ms = s->query_max_ms ? s->query_max_ms : SDB__QMAX_MS_DEFAULT;
}

int sdb__query_in(sdb_store *s, sdb__txn *t, uint32_t project, const sdb__query *q,
                  sdb__answer *a, char *err, size_t errlen)
{
    sdb__plan p;
    sdb__gtab g;
    memset(&p, 0, sizeof p);
    memset(&g, 0, sizeof g);
    sdb__limits lim;
    limits_of(s, &lim);
    int rc;
    if ((rc = sdb__plan_make(&p, t, project, q, &lim, err, errlen))) goto done;
    bool hist = q->has_hist && (p.fixed_hist || !p.want_vals);
    if ((rc = sdb__gtab_init(&g, t, project, q, p.n_int, p.n_labels, hist, p.want_traces,
                             p.want_vals)))
        goto done;
    if ((rc = sdb__exec_run(&p, &g))) goto done;
    rc = sdb__answer_build(&p, &g, a);
done:
    if (rc == SDB_ELIMIT) rc = SDB_EINVAL;
    sdb__gtab_free(&g);
    sdb__plan_free(&p);
    return rc;
}

int sdb_query_json(sdb_store *s, uint32_t project, const char *text, size_t len,
                   char **out_json, char *err, size_t errlen)
{
    *out_json = NULL;
    sdb__query q;
    int rc = sdb__query_parse(text, len, &q, err, errlen);
    if (rc) return rc;
    atomic_fetch_add(&sdb__queries_running, 1u);
    sdb__txn *t = NULL;
    sdb__answer a;
    memset(&a, 0, sizeof a);
    if ((rc = sdb__txn_begin(s, 0, &t))) goto done;
    uint64_t wm = 0;
    a.as_of = sdb__meta_get_u64(t, "watermark", &wm) == SDB_OK ? sdb__key_ts(wm) : INT64_MIN;
    if ((rc = sdb__pending_of(t, project, &a.pending))) goto done;
    if ((rc = sdb__query_in(s, t, project, &q, &a, err, errlen))) goto done;
    rc = sdb__answer_render(&q, &a, out_json);
done:
    sdb__answer_free(&a);
    sdb__txn_abort(t);
    sdb__query_free(&q);
    atomic_fetch_sub(&sdb__queries_running, 1u);
    return rc;
}
