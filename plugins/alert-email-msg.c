#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert-email-msg.h"

/* A 2.1 member of wp_alert, or zero / NULL from an older host. */
#define HAS(a, f) ((a)->size >= offsetof(struct wp_alert, f) + sizeof((a)->f))
#define GET(a, f) (HAS(a, f) ? (a)->f : 0)

/* RFC 5322: a line SHOULD NOT exceed 78 characters, MUST NOT 998. */
#define LINE_SOFT 78
#define LINE_HARD 998

/* The longest error quoted in a subject, in bytes. */
#define SUBJECT_ERROR_MAX 80

/* ------------------------------------------------------------------------ */
/* Text */

/*
 * The length of the valid UTF-8 sequence at P (1..4), or 0 when P does not
 * start one (overlong forms, surrogates and code points above U+10FFFF
 * are invalid).  P is NUL-terminated, so reading ahead stops at the NUL,
 * which is never a continuation byte.
 */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Close memstream F whose buffer is *P: the text, or NULL (freed) when a
 * write failed. */
static char *
finish(FILE *f, char **p)
{
	int bad = ferror(f);

	if (fclose(f) != 0)
		bad = 1;
	if (bad) {
		free(*p);
		return NULL;
	}
	return *p;
}

char *
email_clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	char *out = NULL;
	size_t len = 0, n;
	int space = 0, any = 0;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	while (*p != '\0') {
		if (*p < 0x20 || *p == 0x7f || *p == ' ') {
			space = 1;
			p++;
			continue;
		}
		if (space && any)
			fputc(' ', f);
		space = 0;
		any = 1;
		if ((n = utf8_len(p)) == 0) {
			fputs(replacement, f);
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	return finish(f, &out);
}

/* 1 if S (clean text) may stand in a header unencoded: printable ASCII,
 * no "=?", and no word too long to fold (encoded words split anywhere). */
static int
plain_ok(const char *s)
{
	const unsigned char *p;
	size_t word = 0;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p >= 0x7f)
			return 0;
		word = *p == ' ' ? 0 : word + 1;
		if (word > LINE_SOFT - 20)
			return 0;
	}
	return strstr(s, "=?") == NULL;
}

/* Q encoding (RFC 2047 4.2) of the character C[0..n) into OUT, which has
 * room for 12 bytes; returns its length.  Only characters safe in an
 * unstructured header's encoded word stay as they are. */
static size_t
q_char(const unsigned char *c, size_t n, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, k = 0;

	if (n == 1 && c[0] == ' ') {
		out[0] = '_';
		return 1;
	}
	if (n == 1 && c[0] > 0x20 && c[0] < 0x7f && c[0] != '=' &&
	    c[0] != '?' && c[0] != '_') {
		out[0] = (char)c[0];
		return 1;
	}
	for (i = 0; i < n; i++) {
		out[k++] = '=';
		out[k++] = hex[c[i] >> 4];
		out[k++] = hex[c[i] & 15];
	}
	return k;
}

char *
email_header(const char *name, const char *value)
{
	static const char open_w[] = "=?UTF-8?Q?";
	char *v, *out = NULL, enc[12];
	const unsigned char *p;
	size_t len = 0, col, n, k, w;
	const char *word, *sp;
	FILE *f;

	if ((v = email_clean_text(value)) == NULL)
		return NULL;
	if ((f = open_memstream(&out, &len)) == NULL) {
		free(v);
		return NULL;
	}
	fprintf(f, "%s:", name);
	col = strlen(name) + 1;
	if (plain_ok(v)) {
		/* Fold before a word that would pass the soft limit (every
		 * word fits on a line: plain_ok). */
		for (word = v; *word != '\0'; word = sp + (*sp == ' ')) {
			if ((sp = strchr(word, ' ')) == NULL)
				sp = word + strlen(word);
			w = (size_t)(sp - word);
			if (col > strlen(name) + 1 && col + 1 + w > LINE_SOFT) {
				fputs("\r\n", f);
				col = 0;
			}
			fputc(' ', f);
			fwrite(word, 1, w, f);
			col += 1 + w;
		}
	} else {
		/* Encoded words of at most 75 characters, never splitting a
		 * character (RFC 2047 5), one per folded line of at most
		 * LINE_SOFT. */
		fputc(' ', f);
		fputs(open_w, f);
		col += 1 + strlen(open_w);
		w = strlen(open_w);
		for (p = (const unsigned char *)v; *p != '\0'; p += n) {
			n = utf8_len(p); /* clean text: always valid */
			k = q_char(p, n, enc);
			if (w + k + 2 > 75 || col + k + 2 > LINE_SOFT) {
				fputs("?=\r\n ", f);
				fputs(open_w, f);
				col = 1 + strlen(open_w);
				w = strlen(open_w);
			}
			fwrite(enc, 1, k, f);
			w += k;
			col += k;
		}
		fputs("?=", f);
	}
	fputs("\r\n", f);
	free(v);
	return finish(f, &out);
}

/* ------------------------------------------------------------------------ */
/* Addresses, date, Message-ID */

/* RFC 5322 atext, for the local part and the domain's labels (dots are
 * judged separately). */
static int
atext(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* S[0..n) is a dot-atom: atoms separated by single dots. */
static int
dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '.' ? s[i + 1] == '.' : !atext((unsigned char)s[i]))
			return 0;
	return 1;
}

const char *
email_parse_addr(const char *s, char *addr)
{
	const char *a = s, *end, *at, *p;
	size_t n;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return "only printable ASCII is allowed (no control "
			    "characters, no SMTPUTF8)";
	if ((p = strchr(s, '<')) != NULL) {
		/* "Display Name <addr>": the name is free text without the
		 * characters that would end or nest the angle form. */
		a = p + 1;
		if ((end = strchr(a, '>')) == NULL || end[1] != '\0')
			return "must be \"user@example.org\" or \"Name "
			    "<user@example.org>\"";
		/* Unquoted, so none of RFC 5322's specials (a comma would
		 * make two addresses of one). */
		if (strchr(a, '<') != NULL || strcspn(s, "()<>[]:;@\\,\"") <
		    (size_t)(p - s))
			return "the display name must not contain any of "
			    "( ) < > [ ] : ; @ \\ , \"";
	} else
		end = s + strlen(s);
	n = (size_t)(end - a);
	if (n == 0 || n >= EMAIL_ADDR_MAX - 2)
		return "the address must be 1 to 253 characters";
	if ((at = memchr(a, '@', n)) == NULL || memchr(at + 1, '@',
	    (size_t)(end - at - 1)) != NULL)
		return "the address must be local@domain";
	if (!dot_atom(a, (size_t)(at - a)) ||
	    !dot_atom(at + 1, (size_t)(end - at - 1)))
		return "the address must be local@domain without quotes, "
		    "spaces or comments";
	memcpy(addr, a, n);
	addr[n] = '\0';
	return NULL;
}

void
email_date(int64_t wall_us, char *buf, size_t len)
{
	/* Not strftime: %a and %b follow the locale, RFC 5322 wants
	 * English. */
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(wall_us / 1000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* S reduced to letters, digits and '-' (others become '-'), at most 64
 * bytes, into F; "x" when nothing is left. */
static void
put_atom(FILE *f, const char *s)
{
	size_t i;

	if (s == NULL || *s == '\0') {
		fputc('x', f);
		return;
	}
	for (i = 0; s[i] != '\0' && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];

		fputc((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ? c : '-', f);
	}
}

char *
email_message_id(uint64_t id, size_t n, int64_t timestamp_us,
    const char *section, const char *agent, const char *domain)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	/* The timestamp keeps ids apart when a new database restarts the
	 * numbering; the agent and section when several share a domain. */
	fprintf(f, "<watchpost.%" PRIu64, id);
	if (n > 1)
		fprintf(f, "+%zu", n - 1);
	fprintf(f, ".%" PRId64 ".", timestamp_us);
	put_atom(f, section);
	fputc('.', f);
	put_atom(f, agent);
	fputc('@', f);
	if (domain != NULL && dot_atom(domain, strlen(domain)))
		fputs(domain, f);
	else
		fputs("watchpost.invalid", f);
	fputc('>', f);
	return finish(f, &out);
}

/* ------------------------------------------------------------------------ */
/* Body */

/* TEXT normalised: CRLF line breaks, controls but TAB as spaces, valid
 * UTF-8, ending in a line break.  *EIGHTBIT and *LONG say whether a byte
 * >= 0x80 or a line over LINE_HARD octets is in it. */
static char *
normalise(const char *text, int *eightbit, int *longline)
{
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	char *out = NULL;
	size_t len = 0, n, col = 0;
	int any = 0;
	FILE *f;

	*eightbit = *longline = 0;
	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	while (*p != '\0') {
		any = 1;
		if (*p == '\r' || *p == '\n') {
			p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
			fputs("\r\n", f);
			col = 0;
			continue;
		}
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			fputc(' ', f);
			p++;
			n = 1;
		} else if ((n = utf8_len(p)) == 0) {
			fputs(replacement, f);
			p++;
			n = 3;
			*eightbit = 1;
		} else {
			fwrite(p, 1, n, f);
			if (n > 1)
				*eightbit = 1;
			p += n;
		}
		if ((col += n) > LINE_HARD)
			*longline = 1;
	}
	/* (len is only updated at fclose: not a test of "empty".) */
	if (col > 0 || !any)
		fputs("\r\n", f);
	return finish(f, &out);
}

/* Quoted-printable (RFC 2045 6.7) of S, whose lines end in CRLF. */
static char *
qp_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *out = NULL, tok[4];
	size_t len = 0, col = 0, k;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			fputs("\r\n", f);
			p++;
			col = 0;
			continue;
		}
		/* Blanks before a line break must be encoded (rule 3); '='
		 * and anything but printable ASCII always. */
		if ((*p >= 0x21 && *p <= 0x7e && *p != '=') ||
		    ((*p == ' ' || *p == '\t') && p[1] != '\r')) {
			tok[0] = (char)*p;
			k = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[*p >> 4];
			tok[2] = hex[*p & 15];
			k = 3;
		}
		/* At most 76 characters, the soft break's '=' included. */
		if (col + k > 75 && !(p[1] == '\r' && col + k <= 76)) {
			fputs("=\r\n", f);
			col = 0;
		}
		fwrite(tok, 1, k, f);
		col += k;
	}
	return finish(f, &out);
}

char *
email_body(const char *text, const char **cte)
{
	int eightbit, longline;
	char *n, *q;

	if ((n = normalise(text, &eightbit, &longline)) == NULL)
		return NULL;
	if (!eightbit && !longline) {
		*cte = "7bit";
		return n;
	}
	/* Not 8bit: libcurl does not ask the server for 8BITMIME, and a
	 * server without it may mangle 8-bit bytes. */
	q = qp_encode(n);
	free(n);
	*cte = "quoted-printable";
	return q;
}

/* ------------------------------------------------------------------------ */
/* Default subject and body */

void
email_duration(int64_t us, char *buf, size_t len)
{
	int64_t s = us / 1000000;

	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRId64 "h %" PRId64 "m", s / 3600,
		    s / 60 % 60);
	else
		snprintf(buf, len, "%" PRId64 "d %" PRId64 "h", s / 86400,
		    s / 3600 % 24);
}

/* WALL_US as "2026-12-02 18:21:20 UTC". */
static void
when(int64_t wall_us, char *buf, size_t len)
{
	time_t t = (time_t)(wall_us / 1000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d UTC",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
}

/* STATE in capitals into BUF ("DOWN"); "?" when unknown. */
static const char *
upper(const char *state, char *buf, size_t len)
{
	size_t i;

	if (state == NULL || *state == '\0')
		state = "?";
	for (i = 0; i + 1 < len && state[i] != '\0'; i++)
		buf[i] = (state[i] >= 'a' && state[i] <= 'z') ?
		    (char)(state[i] - 'a' + 'A') : state[i];
	buf[i] = '\0';
	return buf;
}

static int
is_up(const struct wp_alert *a)
{
	return a->state != NULL && strcmp(a->state, "up") == 0;
}

/* How long the episode lasted at the alert's check: since_us to the
 * check's timestamp; 0 unknown. */
static int64_t
episode_us(const struct wp_alert *a)
{
	int64_t since = GET(a, since_us);

	return since > 0 && a->timestamp_us > since ? a->timestamp_us - since :
	    0;
}

/* ERR cut to at most SUBJECT_ERROR_MAX bytes on a character boundary,
 * "..." marking the cut, into F. */
static void
put_short(FILE *f, const char *err)
{
	const unsigned char *p = (const unsigned char *)err;
	size_t used = 0, n;

	if (strlen(err) <= SUBJECT_ERROR_MAX) {
		fputs(err, f);
		return;
	}
	while (*p != '\0') {
		n = utf8_len(p);
		if (n == 0)
			n = 1;
		if (used + n > SUBJECT_ERROR_MAX - 3)
			break;
		fwrite(p, 1, n, f);
		used += n;
		p += n;
	}
	fputs("...", f);
}

static int
any_test(const struct wp_alert *const *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (GET(a[i], flags) & WP_ALERT_TEST)
			return 1;
	return 0;
}

char *
email_default_subject(const struct wp_alert *const *a, size_t n)
{
	static const char *const states[] = { "down", "degraded", "up" };
	char *out = NULL, st[16], d[32];
	size_t len = 0, i, k, count[3] = { 0, 0, 0 }, kinds = 0, other = 0;
	const char *sep = "";
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	fputs("[watchpost] ", f);
	if (any_test(a, n))
		fputs("TEST: ", f);
	if (n == 1) {
		if (GET(a[0], repeat) > 0)
			fputs("STILL ", f);
		fprintf(f, "%s: %s", upper(a[0]->state, st, sizeof(st)),
		    a[0]->monitor ? a[0]->monitor : "?");
		if (is_up(a[0]) && episode_us(a[0]) > 0) {
			email_duration(episode_us(a[0]), d, sizeof(d));
			fprintf(f, " (down for %s)", d);
		} else if (!is_up(a[0]) && a[0]->error && *a[0]->error) {
			fputs(" (", f);
			put_short(f, a[0]->error);
			fputc(')', f);
		}
		return finish(f, &out);
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < 3; k++)
			if (a[i]->state && strcmp(a[i]->state, states[k]) == 0)
				break;
		if (k == 3)
			other++;
		else if (count[k]++ == 0)
			kinds++;
	}
	if (kinds == 1 && other == 0) {
		for (k = 0; count[k] == 0; k++)
			;
		fprintf(f, "%zu monitors %s", n, upper(states[k], st,
		    sizeof(st)));
		return finish(f, &out);
	}
	fprintf(f, "%zu monitors changed state:", n);
	for (k = 0; k < 3; k++)
		if (count[k] > 0) {
			fprintf(f, "%s %zu %s", sep, count[k], upper(states[k],
			    st, sizeof(st)));
			sep = ",";
		}
	if (other > 0)
		fprintf(f, "%s %zu other", sep, other);
	return finish(f, &out);
}

/* One "Label:   value" line, when VALUE is set. */
static void
field(FILE *f, const char *label, const char *value)
{
	if (value != NULL && *value != '\0')
		fprintf(f, "%-10s %s\n", label, value);
}

/* The details of alert A, one field per line. */
static void
details(FILE *f, const struct wp_alert *a)
{
	char st[16], prev[16], t[64], d[32], line[160];
	const char *agent = GET(a, agent), *loc = GET(a, location);

	snprintf(line, sizeof(line), "%s (%s)", a->monitor ? a->monitor : "?",
	    a->type ? a->type : "?");
	field(f, "Monitor:", line);
	snprintf(line, sizeof(line), "%s (was %s)", upper(a->state, st,
	    sizeof(st)), upper(a->previous_state, prev, sizeof(prev)));
	field(f, "State:", line);
	if (GET(a, since_us) > 0) {
		when(GET(a, since_us), t, sizeof(t));
		field(f, is_up(a) ? "Outage:" : "Since:", t);
	}
	if (episode_us(a) > 0) {
		email_duration(episode_us(a), d, sizeof(d));
		field(f, is_up(a) ? "Lasted:" : "For:", d);
	}
	if (a->timestamp_us > 0) {
		when(a->timestamp_us, t, sizeof(t));
		field(f, "Checked:", t);
	}
	if (!is_up(a)) {
		field(f, "Error:", a->error);
		field(f, "Reason:", a->reason);
	}
	if (a->latency_us >= 0) {
		snprintf(line, sizeof(line), "%" PRId64 " ms",
		    (a->latency_us + 500) / 1000);
		field(f, "Latency:", line);
	}
	field(f, "Target:", GET(a, target));
	if (agent != NULL && loc != NULL && *loc != '\0') {
		snprintf(line, sizeof(line), "%s (%s)", agent, loc);
		field(f, "Agent:", line);
	} else
		field(f, "Agent:", agent);
	if (GET(a, repeat) > 0) {
		snprintf(line, sizeof(line), "%u", GET(a, repeat));
		field(f, "Reminder:", line);
	}
	if (GET(a, flags) & WP_ALERT_ESCALATION)
		field(f, "Escalated:", "yes (still down after the escalate "
		    "delay)");
	field(f, "Status:", GET(a, status_url));
	snprintf(line, sizeof(line), "%" PRIu64, a->id);
	field(f, "Alert id:", line);
}

/* The one-line summary of A: "api-home is DOWN: connection refused". */
static void
summary(FILE *f, const struct wp_alert *a)
{
	char st[16], d[32];

	fprintf(f, "%s is %s", a->monitor ? a->monitor : "?",
	    upper(a->state, st, sizeof(st)));
	if (is_up(a) && episode_us(a) > 0) {
		email_duration(episode_us(a), d, sizeof(d));
		fprintf(f, " again after %s down", d);
	} else if (!is_up(a) && a->error != NULL && *a->error != '\0')
		fprintf(f, ": %s", a->error);
	fputc('\n', f);
}

char *
email_default_body(const struct wp_alert *const *a, size_t n)
{
	char *out = NULL;
	size_t len = 0, i;
	FILE *f;

	if ((f = open_memstream(&out, &len)) == NULL)
		return NULL;
	if (any_test(a, n))
		fputs("This is a TEST alert (watchpost --test-alert): no "
		    "monitor changed state.\n\n", f);
	if (n == 1) {
		summary(f, a[0]);
		fputc('\n', f);
		details(f, a[0]);
	} else {
		fprintf(f, "%zu monitors changed state:\n\n", n);
		for (i = 0; i < n; i++) {
			fputs("  - ", f);
			summary(f, a[i]);
		}
		for (i = 0; i < n; i++) {
			fputs("\n", f);
			details(f, a[i]);
		}
	}
	fputs("\n-- \nSent by watchpost.\n", f);
	return finish(f, &out);
}
