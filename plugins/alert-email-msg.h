/*
 * alert-email-msg -- the mail alert-email.so sends, as text: addresses,
 * header encoding (RFC 5322, RFC 2047), the body's transfer encoding
 * (RFC 2045) and the default subject and body.  No I/O, no curl: the unit
 * test (tests/test-email-msg.c) feeds it hostile strings directly.
 *
 * Every function that returns a string returns a malloc()ed one the caller
 * frees, or NULL when out of memory.  Nothing here ever lets a CR or LF of
 * its input reach a header: header values are cleaned (control characters
 * become spaces, invalid UTF-8 becomes U+FFFD) before they are encoded,
 * and the only line breaks in a header are the folds this code writes.
 */
#ifndef PLUGINS_ALERT_EMAIL_MSG_H
#define PLUGINS_ALERT_EMAIL_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <watchpost/plugin.h>

/* The longest address (RFC 5321: 254 octets of path) plus its NUL. */
#define EMAIL_ADDR_MAX 256

/*
 * Judge an address as configured: "local@domain" or "Display Name
 * <local@domain>", printable ASCII only (no SMTPUTF8).  On success writes
 * the bare local@domain into ADDR (EMAIL_ADDR_MAX bytes) and returns NULL;
 * otherwise returns a message saying what is wrong (quoting nothing).
 */
const char *email_parse_addr(const char *s, char *addr);

/*
 * S as one header line's worth of text: every control character (CR and
 * LF included) and run of white space becomes one space, leading and
 * trailing blanks go, invalid UTF-8 becomes U+FFFD.  NULL: "".
 */
char *email_clean_text(const char *s);

/*
 * The header field "NAME: VALUE\r\n" with VALUE cleaned (email_clean_text)
 * and, when it holds anything but printable ASCII (or an "=?" that a
 * reader could take for an encoded word), RFC 2047 encoded as UTF-8
 * Q encoded words of at most 75 characters, each on its own folded line.
 * Plain values longer than a line are folded at spaces.
 */
char *email_header(const char *name, const char *value);

/* WALL_US (unix epoch) as an RFC 5322 date in UTC:
 * "Wed, 02 Dec 2026 18:21:20 +0000".  LEN >= 32. */
void email_date(int64_t wall_us, char *buf, size_t len);

/*
 * The Message-ID of the mail about alert ID (and N - 1 more in its batch)
 * raised at TIMESTAMP_US by section SECTION of agent AGENT, with DOMAIN
 * (the From address's) on the right: "<watchpost.42.1764... .mail.host@
 * example.org>".  The same inputs give the same id, so a retried delivery
 * keeps its Message-ID; the parts are reduced to atom characters.
 */
char *email_message_id(uint64_t id, size_t n, int64_t timestamp_us,
    const char *section, const char *agent, const char *domain);

/*
 * TEXT as a body: line breaks (LF, CRLF, a lone CR) become CRLF, control
 * characters other than TAB become spaces, invalid UTF-8 becomes U+FFFD,
 * and a final line break is added when missing.  When the result is 7-bit
 * with lines of at most 998 octets it is returned as is and *CTE is
 * "7bit"; otherwise it is quoted-printable (lines of at most 76) and *CTE
 * is "quoted-printable".
 */
char *email_body(const char *text, const char **cte);

/* A duration as a person reads it: "45s", "5m 12s", "3h 4m", "2d 1h". */
void email_duration(int64_t us, char *buf, size_t len);

/*
 * The default subject and body for the N alerts A[0..N) (one, or a
 * group_window batch), plain UTF-8 text (email_header and email_body then
 * make them safe).  An alert from an older host (a->size without the 2.1
 * fields) reads as zero / NULL there.
 */
char *email_default_subject(const struct wp_alert *const *a, size_t n);
char *email_default_body(const struct wp_alert *const *a, size_t n);

#endif
