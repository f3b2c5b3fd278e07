/*
 * http-json -- see http-json.h for the grammar and the contracts.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http-json.h"

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_EXISTS, OP_ABSENT };
static const char *const op_words[] = {
	"==", "!=", "<", "<=", ">", ">=", "exists", "!exists"
};

struct step {
	char *name;      /* a member; NULL: an index */
	size_t index;
};

struct httpjson {
	char *text;      /* as configured, for the detail */
	struct step steps[HTTPJSON_STEPS_MAX];
	size_t n_steps;
	enum op op;
	json_t *value;   /* NULL for exists / !exists */
};

#define VALUE_SHOWN 64   /* bytes of a found value quoted in a detail */

void
httpjson_free(struct httpjson *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n_steps; i++)
		free(a->steps[i].name);
	json_decref(a->value);
	free(a->text);
	free(a);
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
is_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/*
 * One step at *P into S; advances *P.  Returns 0, -1 out of memory, or 1
 * with ERR set.
 */
static int
parse_step(const char **p, struct step *s, char *err, size_t len)
{
	const char *q = *p, *e;
	json_error_t je;
	json_t *j;
	size_t n;

	s->name = NULL;
	s->index = 0;
	if (*q == '.') {
		for (e = ++q; is_name(*e); e++)
			;
		if (e == q) {
			snprintf(err, len, "a name must follow '.' (write "
			    "[\"...\"] for other characters)");
			return 1;
		}
		if ((s->name = strndup(q, (size_t)(e - q))) == NULL)
			return -1;
		*p = e;
		return 0;
	}
	/* '[' */
	q++;
	if (*q >= '0' && *q <= '9') {
		for (n = 0; *q >= '0' && *q <= '9'; q++) {
			if (n > (SIZE_MAX - 9) / 10) {
				snprintf(err, len, "index too large");
				return 1;
			}
			n = n * 10 + (size_t)(*q - '0');
		}
		if (*q != ']') {
			snprintf(err, len, "an index ends with ']'");
			return 1;
		}
		s->index = n;
		*p = q + 1;
		return 0;
	}
	if (*q != '"') {
		snprintf(err, len, "'[' takes an index or a quoted name");
		return 1;
	}
	for (e = q + 1; *e != '\0' && *e != '"'; e++)
		if (*e == '\\' && e[1] != '\0')
			e++;
	if (*e != '"' || e[1] != ']') {
		snprintf(err, len, "a quoted name ends with \"]");
		return 1;
	}
	j = json_loadb(q, (size_t)(e - q + 1), JSON_DECODE_ANY, &je);
	if (j == NULL || !json_is_string(j)) {
		json_decref(j);
		snprintf(err, len, "bad quoted name: %s", je.text);
		return 1;
	}
	s->name = strdup(json_string_value(j));
	json_decref(j);
	if (s->name == NULL)
		return -1;
	*p = e + 2;
	return 0;
}

int
httpjson_parse(const char *text, struct httpjson **out, char *err,
    size_t len)
{
	struct httpjson *a;
	const char *p = text, *v;
	json_error_t je;
	size_t i, n;
	int rc = 1;

	*out = NULL;
	if (strlen(text) > HTTPJSON_TEXT_MAX) {
		snprintf(err, len, "an assertion is at most %d bytes",
		    HTTPJSON_TEXT_MAX);
		return 1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	while (is_blank(*p))
		p++;
	if (*p != '$') {
		snprintf(err, len, "a path starts with '$' (e.g. $.status == "
		    "\"ok\")");
		goto fail;
	}
	p++;
	while (*p == '.' || *p == '[') {
		if (a->n_steps == HTTPJSON_STEPS_MAX) {
			snprintf(err, len, "a path has at most %d steps",
			    HTTPJSON_STEPS_MAX);
			goto fail;
		}
		if ((rc = parse_step(&p, &a->steps[a->n_steps], err, len)) != 0)
			goto fail;
		a->n_steps++;
		rc = 1;
	}
	if (!is_blank(*p)) {
		snprintf(err, len, *p == '\0' ? "an operator must follow the "
		    "path (==, !=, <, <=, >, >=, exists, !exists)" :
		    "unexpected character after the path");
		goto fail;
	}
	while (is_blank(*p))
		p++;
	/* The longest word first: "<=" before "<", "!exists" before "!=". */
	for (i = sizeof(op_words) / sizeof(op_words[0]); i-- > 0;) {
		n = strlen(op_words[i]);
		if (strncmp(p, op_words[i], n) == 0 &&
		    (p[n] == '\0' || is_blank(p[n]) || i < OP_EXISTS))
			break;
	}
	if (i == (size_t)-1) {
		snprintf(err, len, "unknown operator (==, !=, <, <=, >, >=, "
		    "exists, !exists)");
		goto fail;
	}
	a->op = (enum op)i;
	for (v = p + strlen(op_words[i]); is_blank(*v); v++)
		;
	if (a->op >= OP_EXISTS) {
		if (*v != '\0') {
			snprintf(err, len, "%s takes no value", op_words[i]);
			goto fail;
		}
	} else {
		if (*v == '\0') {
			snprintf(err, len, "%s needs a value (a JSON text: "
			    "\"ok\", 3, true, null)", op_words[i]);
			goto fail;
		}
		n = strlen(v);
		while (n > 0 && is_blank(v[n - 1]))
			n--;
		a->value = json_loadb(v, n, JSON_DECODE_ANY, &je);
		if (a->value == NULL) {
			snprintf(err, len, "the value is not JSON: %s (a "
			    "string needs double quotes)", je.text);
			goto fail;
		}
		if (a->op != OP_EQ && a->op != OP_NE &&
		    !json_is_number(a->value)) {
			snprintf(err, len, "%s compares numbers", op_words[i]);
			goto fail;
		}
	}
	if ((a->text = strdup(text + (size_t)(strspn(text, " \t")))) == NULL) {
		rc = -1;
		goto fail;
	}
	*out = a;
	return 0;
fail:
	httpjson_free(a);
	return rc;
}

/* UTF-8 code points in the string S of LEN bytes. */
static size_t
utf8_len(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

/*
 * Walk A's path in ROOT.  Returns the value (borrowed) or, for a last
 * `.length`, a new integer in *OWNED; NULL when the path leads nowhere,
 * with what is missing in WHY.
 */
static json_t *
walk(const struct httpjson *a, json_t *root, json_t **owned, char *why,
    size_t len)
{
	json_t *v = root, *next;
	size_t i, size;

	*owned = NULL;
	for (i = 0; i < a->n_steps; i++) {
		const struct step *s = &a->steps[i];

		if (s->name == NULL) {
			if (!json_is_array(v)) {
				snprintf(why, len, "step %zu is not an array",
				    i + 1);
				return NULL;
			}
			if ((next = json_array_get(v, s->index)) == NULL) {
				snprintf(why, len, "no element %zu (%zu in "
				    "the array)", s->index, json_array_size(v));
				return NULL;
			}
			v = next;
			continue;
		}
		if (json_is_object(v) &&
		    (next = json_object_get(v, s->name)) != NULL) {
			v = next;
			continue;
		}
		if (i + 1 == a->n_steps && strcmp(s->name, "length") == 0 &&
		    (json_is_array(v) || json_is_string(v) ||
		    json_is_object(v))) {
			size = json_is_array(v) ? json_array_size(v) :
			    json_is_object(v) ? json_object_size(v) :
			    utf8_len(json_string_value(v),
			    json_string_length(v));
			*owned = json_integer((json_int_t)size);
			return *owned;
		}
		if (json_is_object(v))
			snprintf(why, len, "no member \"%.40s\"", s->name);
		else
			snprintf(why, len, "step %zu is not an object", i + 1);
		return NULL;
	}
	return v;
}

/* Does V, found at A's path, satisfy A?  1 yes, 0 no. */
static int
holds(const struct httpjson *a, json_t *v)
{
	double x, y;
	int eq;

	if (a->op == OP_EXISTS)
		return 1;
	if (json_is_number(v) && json_is_number(a->value)) {
		x = json_number_value(v);
		y = json_number_value(a->value);
		if (json_is_integer(v) && json_is_integer(a->value))
			eq = json_integer_value(v) ==
			    json_integer_value(a->value);
		else
			eq = x == y;
		switch (a->op) {
		case OP_EQ: return eq;
		case OP_NE: return !eq;
		case OP_LT: return x < y && !eq;
		case OP_LE: return x <= y || eq;
		case OP_GT: return x > y && !eq;
		case OP_GE: return x >= y || eq;
		default: return 0;
		}
	}
	if (a->op == OP_EQ)
		return json_equal(v, a->value);
	if (a->op == OP_NE)
		return !json_equal(v, a->value);
	return 0; /* an order between a non-number and a number */
}

/* V as compact JSON, at most VALUE_SHOWN bytes of it, into BUF. */
static void
show(json_t *v, char *buf, size_t len)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	if (s == NULL) {
		snprintf(buf, len, "(a value)");
		return;
	}
	if (strlen(s) > VALUE_SHOWN)
		snprintf(buf, len, "%.*s...", VALUE_SHOWN, s);
	else
		snprintf(buf, len, "%s", s);
	free(s);
}

static const char *
type_of(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: break;
	}
	return "null";
}

int
httpjson_eval(struct httpjson *const *a, size_t n, const char *body,
    size_t len, char *detail, size_t dlen)
{
	json_error_t je;
	json_t *root, *v, *owned;
	char why[128], found[VALUE_SHOWN + 8];
	size_t i;
	int ok = 1;

	if (n == 0)
		return 1;
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (root == NULL) {
		snprintf(detail, dlen, "json: the body is not JSON (line %d, "
		    "column %d: %.80s)", je.line, je.column, je.text);
		return 0;
	}
	for (i = 0; i < n && ok; i++) {
		v = walk(a[i], root, &owned, why, sizeof(why));
		if (v == NULL) {
			if (a[i]->op == OP_ABSENT)
				continue;
			snprintf(detail, dlen, "json: %.200s: %s", a[i]->text,
			    why);
			ok = 0;
		} else if (a[i]->op == OP_ABSENT) {
			show(v, found, sizeof(found));
			snprintf(detail, dlen, "json: %.200s: found %s",
			    a[i]->text, found);
			ok = 0;
		} else if (!holds(a[i], v)) {
			show(v, found, sizeof(found));
			if (a[i]->op >= OP_LT && a[i]->op <= OP_GE &&
			    !json_is_number(v))
				snprintf(detail, dlen, "json: %.200s: found "
				    "%s, not a number: %s", a[i]->text,
				    type_of(v), found);
			else
				snprintf(detail, dlen, "json: %.200s: found "
				    "%s", a[i]->text, found);
			ok = 0;
		}
		json_decref(owned);
	}
	json_decref(root);
	return ok;
}
