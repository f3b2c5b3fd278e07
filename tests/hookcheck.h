/*
 * hookcheck -- what each webhook receiver requires of a body, checked the
 * way the service would (the fields and types of its published schema and
 * its length limits), for testhttpd's /svc/FORMAT route and the unit tests.
 */
#ifndef TESTS_HOOKCHECK_H
#define TESTS_HOOKCHECK_H

#include <stddef.h>

/*
 * Judge BODY (LEN bytes) sent with CONTENT_TYPE (may be NULL) to a
 * receiver of FORMAT ("slack", "pagerduty", ... as in the webhook's
 * `format`; "template" accepts any body, and for a JSON content type any
 * JSON).  Returns NULL when the service would accept it, else a static
 * message naming the first problem.
 */
const char *hookcheck(const char *format, const char *content_type,
    const char *body, size_t len);

#endif
