/* Routes of the compatible APIs (API.md "HTTP API (compatible)"): the
 * paths Langfuse and Helicone clients call, routed by server/compat.c and
 * shaped by one file per client (server/langfuse.c, server/helicone.c)
 * over the engine's public API. Private to the server files. */
#ifndef SDB_COMPAT_H
#define SDB_COMPAT_H

#include "srv_int.h"

#include <jansson.h>

/* Route of (method, url) among the compatible paths: SDB_R_LANGFUSE or
 * SDB_R_HELICONE with r->sub (and r->id for a path id) set; -1 when the
 * path is one of them but the method is not (*allow lists the methods);
 * -2 when the path is not a compatible one. */
int sdb__compat_route(const char *method, const char *url, sdb__req *r, const char **allow);

/* 1 when the routed request needs no API key (Langfuse's health check). */
int sdb__compat_public(const sdb__req *r);

/* {"message": msg, "error": msg}: an error as Langfuse clients read it. */
void sdb__compat_error(sdb__reply *out, int status, const char *msg);

/* Serve a routed, authorised compatible request whose body is complete. */
void sdb__compat_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r,
                          sdb__reply *out);

/* ------------------------------------------ JSON helpers (compat.c)
 * The client files parse with jansson and answer with the engine's
 * number and string emitters (sdb_json_number, sdb_json_quote). */

/* Render v as JSON text into *out (caller frees). Takes v (NULL: out of
 * memory). Returns SDB_OK or SDB_ENOMEM. */
int sdb__cj_finish(json_t *v, char **out);
/* Parse text as a JSON object (new reference in *out); err names `what`.
 * A `what` starting with '[' ("[body") also takes an array. jansson's
 * refusals are worded by the engine's string rules (sdb_json_load_error). */
int sdb__cj_load(const char *text, size_t len, const char *what, json_t **out, char *err,
                 size_t errlen);
/* SDB_EINVAL naming the first field of object o that is not in the
 * NULL-terminated list `allowed`. */
int sdb__cj_only(const json_t *o, const char *const *allowed, char *err, size_t errlen);
/* o[k], or NULL when absent or null (borrowed). */
json_t *sdb__cj_get(const json_t *o, const char *k);
/* printf into err (errlen bytes, may be 0). */
void sdb__cj_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Validate native score object n into batch b (sdb_batch_add_json). */
int sdb__cj_add_score(sdb_batch *b, const json_t *n, char *err, size_t errlen);
/* A number as a JSON value: integral values as integers (new ref). */
json_t *sdb__cj_num(double x);

/* --------------------------------------------- trace context (traces.c)
 * One request's traces and observations, applied to scores whichever
 * arrives first (traces.c says how). Records are native snake_case
 * objects: trace {id, name, user_id, session_id, tags, environment,
 * release, version, metadata}; observation {id, trace_id, model,
 * prompt_name, prompt_version}. */
#define SDB__TRACE_REAPPLY 10000 /* stored scores re-sent per request, at most */
typedef struct sdb__tctx sdb__tctx;
int sdb__tctx_new(sdb_store *s, uint32_t project, sdb__tctx **out);
void sdb__tctx_free(sdb__tctx *c);
/* Merge a trace or observation record (borrowed) into the context;
 * SDB_EINVAL names the bad field. */
int sdb__tctx_trace(sdb__tctx *c, const json_t *t, char *err, size_t errlen);
int sdb__tctx_observation(sdb__tctx *c, const json_t *o, char *err, size_t errlen);
/* Fill native score object `score` from its trace and observation. */
int sdb__tctx_apply(sdb__tctx *c, json_t *score);
/* Row `row` of the request's batch (id `score_id` as far as known) belongs
 * to trace_id (may be NULL). */
int sdb__tctx_note(sdb__tctx *c, const char *trace_id, const char *score_id, size_t row);
/* After b committed: index its noted rows under their traces. */
int sdb__tctx_index(sdb__tctx *c, const sdb_batch *b);
/* Store the records (one transaction), then append to b the
 * stored scores of every changed trace, re-applied (replacing them when b
 * commits); *out_reapplied counts them. */
int sdb__tctx_finish(sdb__tctx *c, sdb_batch *b, size_t *out_reapplied);
/* GET /v1/traces/{id} (native record) or, `langfuse`, GET
 * /api/public/traces/{id} (camelCase, with its scores and observations).
 * Returns SDB_OK, SDB_ENOTFOUND or an error. */
int sdb__trace_get(sdb_store *s, uint32_t project, const char *id, int langfuse, char **out_json);

/* ------------------------------------------------- Langfuse (langfuse.c)
 * Answers in *out_json are NUL-terminated JSON text owned by the caller
 * (free()). On SDB_EINVAL err names the caller's field (camelCase) and
 * what was wrong. */

/* POST /api/public/scores: validate one Langfuse create-score body and
 * append it to b (see docs/compat.md for the fields). A configId must name
 * a score config of `project`, whose data type, range or categories the
 * score must satisfy. Its trace context goes through tc (the caller calls
 * sdb__tctx_index after the commit). Returns SDB_OK, SDB_EINVAL (b
 * unchanged), SDB_ENOMEM or a store error. */
int sdb__lf_score_add(sdb_store *s, uint32_t project, sdb__tctx *tc, sdb_batch *b,
                      const char *body, size_t len, char *err, size_t errlen);
/* POST /api/public/ingestion: every "score-create" event of the body's
 * "batch" (at most max_events) is validated as sdb__lf_score_add and the
 * valid ones appended to b; *out_json is the multi-status report, true
 * once b is stored; *out_n_errors counts its errors. Returns SDB_OK;
 * SDB_EINVAL when the body is not {"batch": [...]} (b may hold rows then:
 * clear it); SDB_ENOMEM or a store error. */
int sdb__lf_ingest(sdb_store *s, uint32_t project, sdb__tctx *tc, sdb_batch *b,
                   const char *body, size_t len,
                   size_t max_events, int scores_only, char **out_json, size_t *out_n_errors,
                   char *err, size_t errlen);
/* Native field names in err rewritten as Langfuse's (trace_id → traceId). */
void sdb__lf_rename(char *err, size_t errlen);
/* GET /api/public/v2/scores: Langfuse's parameters over every
 * acknowledged score, newest first: {"data","meta"}. */
int sdb__lf_scores_list(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                        int v1, char **out_json, char *err, size_t errlen);
/* GET /api/public/scores/{id}. Returns SDB_OK, SDB_ENOTFOUND or an error. */
int sdb__lf_score_get(sdb_store *s, uint32_t project, const char *id, char **out_json);
/* POST /api/public/score-configs; GET list (page, limit) and by id. */
int sdb__lf_config_create(sdb_store *s, uint32_t project, const char *body, size_t len,
                          int64_t now_ms, char **out_json, char *err, size_t errlen);
int sdb__lf_configs_list(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                         char **out_json, char *err, size_t errlen);
int sdb__lf_config_get(sdb_store *s, uint32_t project, const char *id, char **out_json);
/* PATCH /api/public/score-configs/{id}: isArchived, name, categories,
 * minValue, maxValue, description. */
int sdb__lf_config_update(sdb_store *s, uint32_t project, const char *id, const char *body,
                          size_t len, int64_t now_ms, char **out_json, char *err, size_t errlen);
/* A native trace answer (takes t) in Langfuse's TraceWithFullDetails
 * shape, with its scores. */
int sdb__lf_trace(sdb_store *s, uint32_t project, json_t *t, char **out_json);
/* GET /api/public/v3/scores: cursor pages (docs/compat.md). */
int sdb__lf_scores_v3(sdb_store *s, uint32_t project, const sdb_param *params, size_t n,
                      char **out_json, char *err, size_t errlen);

/* ------------------------------------------ annotation queues (queues.c)
 * Native snake_case objects (queues.c says which); new references in
 * *out; SDB_ENOTFOUND for an unknown queue or item; SDB_EINVAL names the
 * field in err. Lists: offset/limit, *total from counters. */
int sdb__queue_create(sdb_store *s, uint32_t p, const json_t *body, int64_t now, json_t **out,
                      char *err, size_t errlen);
int sdb__queue_get(sdb_store *s, uint32_t p, const char *qid, json_t **out);
int sdb__queue_update(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int64_t now,
                      json_t **out, char *err, size_t errlen);
int sdb__queue_delete(sdb_store *s, uint32_t p, const char *qid);
int sdb__queues_list(sdb_store *s, uint32_t p, uint64_t offset, uint64_t limit, json_t **out,
                     uint64_t *total);
/* One item ({object_id, object_type, status}) or, for an array or
 * {"items": [...]}, up to 1000 in one transaction (an array answer). */
int sdb__items_create(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int64_t now,
                      json_t **out, char *err, size_t errlen);
int sdb__item_get(sdb_store *s, uint32_t p, const char *qid, const char *iid, json_t **out);
int sdb__item_update(sdb_store *s, uint32_t p, const char *qid, const char *iid,
                     const json_t *body, int64_t now, json_t **out, char *err, size_t errlen);
int sdb__item_delete(sdb_store *s, uint32_t p, const char *qid, const char *iid);
/* status NULL: every item. */
int sdb__items_list(sdb_store *s, uint32_t p, const char *qid, const char *status,
                    uint64_t offset, uint64_t limit, json_t **out, uint64_t *total);
/* Assign ({"user_id"}) a reviewer to a queue, or remove one (del). */
int sdb__assignment(sdb_store *s, uint32_t p, const char *qid, const json_t *body, int del,
                    int64_t now, json_t **out, char *err, size_t errlen);

/* ------------------------------------------------- Helicone (helicone.c) */

/* POST /v1/request/{requestId}/score: each name: number|boolean of the
 * body's "scores" becomes a score of that name on trace `request_id`, with
 * an id derived from both so that a repeated name replaces its value. All
 * or nothing: on failure b is cleared. `props` (borrowed; may be empty)
 * become each score's properties (from Helicone-Property-* headers). */
int sdb__hc_scores_add(sdb_batch *b, const char *request_id, const json_t *props,
                       const char *body, size_t len, char *err, size_t errlen);
/* POST /v1/evals/{requestId}: {"score": number, "name": string}, one
 * score as sdb__hc_scores_add makes it (the same id: the same score). */
int sdb__hc_eval_add(sdb_batch *b, const char *request_id, const json_t *props,
                     const char *body, size_t len, char *err, size_t errlen);
/* GET /v1/evals/scores; POST /v1/evals/query; POST
 * /v1/evals/score-distributions/query (docs/compat.md). */
int sdb__hc_names(sdb_store *s, uint32_t project, char **out_json);
int sdb__hc_evals(sdb_store *s, uint32_t project, const char *body, size_t len, char **out_json,
                  char *err, size_t errlen);
int sdb__hc_distributions(sdb_store *s, uint32_t project, const char *body, size_t len,
                          char **out_json, char *err, size_t errlen);

#endif
