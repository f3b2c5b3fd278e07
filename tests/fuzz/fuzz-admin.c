/*
 * Fuzz target: the admin API's request parser (core/admin-ini.c) on any
 * body: JSON object -> INI key/value lines -> the monitor's file.
 *
 * Properties: a body is accepted or refused with at least one error, and
 * the error list renders as JSON; every accepted key is a key name and
 * every value one clean INI value; and -- the injection property -- the
 * file rendered from an accepted body, read back by the configuration's
 * own reader, is exactly one section [monitor:NAME] holding exactly the
 * accepted keys and values, in order, key i on line i + 2: nothing in a
 * body can start a section, add a key or change a value.  A PATCH of the
 * body over itself keeps that too.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "admin-ini.h"
#include "cfg-read.h"
#include "fuzz.h"

static char path[64];

static void
remove_file(void)
{
	unlink(path);
}

/* Render D and read it back: the same lines, one section. */
static void
assert_round_trip(const struct admin_def *d)
{
	struct cfg_raw raw;
	struct wp_diag diag;
	char *text = admin_ini_render("fz", d);
	size_t i, k;
	FILE *f;

	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (fputs(text, f) < 0 || fclose(f) != 0)
		abort();
	memset(&raw, 0, sizeof(raw));
	diag_init(&diag, path);
	fuzz_assert(cfg_read(path, &raw, &diag) == 0);
	fuzz_assert(diag.errors == 0);
	fuzz_assert(raw.n_secs == 1);
	fuzz_assert(raw.secs[0].kind == CFG_MONITOR);
	fuzz_assert(strcmp(raw.secs[0].name, "fz") == 0);
	for (i = 0, k = 0; i < d->n; i++) {
		if (d->kv[i].value == NULL)
			continue;
		fuzz_assert(k < raw.secs[0].n_kv);
		fuzz_assert(strcmp(raw.secs[0].kv[k].key, d->kv[i].key) == 0);
		fuzz_assert(strcmp(raw.secs[0].kv[k].value,
		    d->kv[i].value) == 0);
		fuzz_assert(raw.secs[0].kv[k].line == (int)k + 2);
		k++;
	}
	fuzz_assert(k == raw.secs[0].n_kv);
	cfg_raw_free(&raw);
	diag_free(&diag);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admin_def d, merged, none = { NULL, 0 };
	struct admin_errors e = { NULL, 0 };
	json_t *j;
	char *out;
	size_t i;
	int syntax, rc;

	if (path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		int fd;
		snprintf(path, sizeof(path), "%s/wp-fuzz-admin.XXXXXX",
		    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
		atexit(remove_file);
	}
	rc = admin_json_parse((const char *)data, size, &d, &e, &syntax);
	fuzz_assert((rc == 0) == (e.n == 0));
	fuzz_assert(rc == 0 || d.n == 0);
	fuzz_assert(!syntax || rc != 0);
	out = admin_errors_json(&e);
	fuzz_assert(out != NULL);
	fuzz_assert((j = json_loads(out, 0, NULL)) != NULL);
	fuzz_assert(json_array_size(json_object_get(j, "errors")) == e.n);
	json_decref(j);
	free(out);
	admin_errors_free(&e);
	if (rc != 0)
		return 0;
	for (i = 0; i < d.n; i++) {
		fuzz_assert(admin_key_problem(d.kv[i].key) == NULL);
		fuzz_assert(d.kv[i].value == NULL || admin_value_problem(
		    d.kv[i].value, strlen(d.kv[i].value)) == NULL);
	}
	admin_def_merge(&none, &d, &merged);
	assert_round_trip(&merged);
	admin_def_free(&merged);
	/* The body as a PATCH of itself: the same keys again. */
	{
		struct admin_def base;

		admin_def_merge(&none, &d, &base);
		admin_def_merge(&base, &d, &merged);
		fuzz_assert(merged.n == base.n);
		assert_round_trip(&merged);
		admin_def_free(&merged);
		admin_def_free(&base);
	}
	admin_def_free(&d);
	return 0;
}
