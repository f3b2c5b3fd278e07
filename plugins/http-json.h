/*
 * http-json -- the http check's `json` assertions: "PATH OP VALUE" rules
 * over a JSON response body, parsed once at configure time and evaluated
 * with jansson on each body.  No I/O; http.c and the fuzz target
 * (tests/fuzz/fuzz-httpjson.c) run the same code.  Compiled into http.so
 * with hidden visibility.
 *
 * The grammar (README, watchpost.ini(5)):
 *   assertion := blank* PATH blank+ OP [blank+ VALUE] blank*
 *   PATH      := '$' STEP*
 *   STEP      := '.' NAME | '[' DIGITS ']' | '[' JSON-STRING ']'
 *   NAME      := one or more of A-Z a-z 0-9 _ - (anything else: ["..."])
 *   OP        := == | != | < | <= | > | >= | exists | !exists
 *   VALUE     := a JSON text (string, number, true, false, null, or an
 *                array or object for == and !=); none after exists
 * A last step `.length` of an array, a string or an object without a
 * member "length" is its size (elements, UTF-8 code points, members).
 * == and != compare numbers by value (1 == 1.0) and everything else by
 * JSON equality; <, <=, >, >= need a number on both sides.
 */
#ifndef PLUGINS_HTTP_JSON_H
#define PLUGINS_HTTP_JSON_H

#include <stddef.h>

#define HTTPJSON_TEXT_MAX 1024   /* bytes of one assertion */
#define HTTPJSON_STEPS_MAX 32    /* steps of one path */
#define HTTPJSON_DEPTH_MAX 64    /* nesting a body may have */

struct httpjson;  /* one parsed assertion */

/*
 * Parse TEXT into *OUT (the caller's, freed with httpjson_free()).
 * Returns 0, -1 out of memory, or 1 with what is wrong in ERR (LEN
 * bytes, NUL-terminated).  On failure *OUT is NULL.
 */
int httpjson_parse(const char *text, struct httpjson **out, char *err,
    size_t len);
/* Accepts NULL. */
void httpjson_free(struct httpjson *a);

/*
 * Evaluate the N assertions A over the body at BODY (LEN bytes, not
 * NUL-terminated).  Returns 1 when every assertion holds, 0 when one does
 * not or the body is no JSON text, -1 out of memory; on 0 DETAIL (DLEN
 * bytes) says which assertion failed first and what the body held there
 * (values cut short, never the whole body).
 */
int httpjson_eval(struct httpjson *const *a, size_t n, const char *body,
    size_t len, char *detail, size_t dlen);

#endif
