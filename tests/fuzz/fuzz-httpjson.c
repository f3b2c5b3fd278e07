/*
 * Fuzz target: the http check's json assertions (plugins/http-json.c).
 * The input's first line is an assertion, the rest a response body.
 * Properties: parsing never crashes and either gives an assertion or a
 * message; an assertion evaluates over any body to 1 or 0 (never -1 here,
 * memory is plentiful), with a NUL-terminated detail when 0, and the same
 * bytes give the same verdict and detail twice.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http-json.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t alen = nl != NULL ? (size_t)(nl - (const char *)data) : size;
	const char *body = nl != NULL ? nl + 1 : "";
	size_t blen = nl != NULL ? size - alen - 1 : 0;
	char *text = malloc(alen + 1), err[256], d1[512], d2[512];
	struct httpjson *a = NULL;
	int rc, v1, v2;

	if (text == NULL)
		return 0;
	memcpy(text, data, alen);
	text[alen] = '\0';
	err[0] = '\0';
	rc = httpjson_parse(text, &a, err, sizeof(err));
	fuzz_assert(rc == 0 || rc == 1);
	fuzz_assert(rc == 0 ? a != NULL : a == NULL && err[0] != '\0');
	if (rc == 0) {
		d1[0] = d2[0] = '\0';
		v1 = httpjson_eval(&a, 1, body, blen, d1, sizeof(d1));
		v2 = httpjson_eval(&a, 1, body, blen, d2, sizeof(d2));
		fuzz_assert(v1 == 0 || v1 == 1);
		fuzz_assert(v1 == v2);
		fuzz_assert(v1 == 1 || (strnlen(d1, sizeof(d1)) < sizeof(d1) &&
		    strcmp(d1, d2) == 0 && d1[0] != '\0'));
	}
	httpjson_free(a);
	free(text);
	return 0;
}
