/* Routes of the compatible APIs (API.md "HTTP API (compatible)"): the
 * paths Langfuse and Helicone clients call, served by server/compat.c over
 * engine/compat.c. Private to the server files. */
#ifndef SDB_COMPAT_H
#define SDB_COMPAT_H

#include "srv_int.h"

/* Route of (method, url) among the compatible paths: SDB_R_LANGFUSE or
 * SDB_R_HELICONE with r->sub (and r->id for a path id) set; -1 when the
 * path is one of them but the method is not (*allow lists the methods);
 * -2 when the path is not a compatible one. */
int sdb__compat_route(const char *method, const char *url, sdb__req *r, const char **allow);

/* 1 when the routed request needs no API key (Langfuse's health check). */
int sdb__compat_public(const sdb__req *r);

/* Serve a routed, authorised compatible request whose body is complete. */
void sdb__compat_dispatch(sdb_server *s, struct MHD_Connection *c, sdb__req *r,
                          sdb__reply *out);

#endif
