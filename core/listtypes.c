/*
 * listtypes -- the key tables as a table or as JSON (see listtypes.h).
 *
 * JSON shape:
 *   { "abi": "2.0",
 *     "common": { "agent": [KEY...], "monitor": [KEY...], "alert": [...] },
 *     "types": [ { "name", "kind": "check"|"alert", "version",
 *                  "description", "file", "keys": [KEY...] } ... ] }
 *   KEY: { "name", "type", "required", "repeatable", "default" (or null),
 *          "min", "max" (INT; DURATION in microseconds; absent when the
 *          type's own range), "values" (ENUM, URL schemes), "help" }
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include <jansson.h>

#include "cfg.h"
#include "keys.h"
#include "listtypes.h"
#include "loader.h"
#include "util.h"

static const char *
kind_name(int kind)
{
	return kind == WP_PLUGIN_ALERT ? "alert" : "check";
}

static json_t *
key_json(const struct wp_key *k)
{
	json_t *o = json_object(), *v;
	size_t i;

	json_object_set_new(o, "name", json_string(k->name));
	json_object_set_new(o, "type", json_string(keys_type_name(k->type)));
	json_object_set_new(o, "required",
	    json_boolean(k->flags & WP_KEY_REQUIRED));
	json_object_set_new(o, "repeatable", json_boolean(
	    (k->flags & WP_KEY_MULTI) || k->type == WP_KT_LIST));
	json_object_set_new(o, "default",
	    k->def != NULL ? json_string(k->def) : json_null());
	if ((k->type == WP_KT_INT || k->type == WP_KT_DURATION) &&
	    (k->min != 0 || k->max != 0)) {
		json_object_set_new(o, "min", json_integer(k->min));
		json_object_set_new(o, "max", json_integer(k->max));
	}
	if (k->values != NULL) {
		v = json_array();
		for (i = 0; k->values[i] != NULL; i++)
			json_array_append_new(v, json_string(k->values[i]));
		json_object_set_new(o, "values", v);
	}
	json_object_set_new(o, "help",
	    json_string(k->help != NULL ? k->help : ""));
	return o;
}

static json_t *
table_json(const struct wp_key *keys, size_t n, size_t key_size)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, key_json(KEYS_AT(keys, key_size, i)));
	return a;
}

/* A key's range or values as the table shows it ("1..65535", "1ms..1h",
 * "GET|HEAD|POST"), into BUF. */
static const char *
range_text(const struct wp_key *k, char *buf, size_t len)
{
	char a[32], b[32];
	size_t i, off = 0;

	buf[0] = '\0';
	if (k->type == WP_KT_INT && (k->min != 0 || k->max != 0))
		snprintf(buf, len, "%" PRId64 "..%" PRId64, k->min, k->max);
	else if (k->type == WP_KT_DURATION && (k->min != 0 || k->max != 0)) {
		format_duration(k->min / 1000, a, sizeof(a));
		format_duration(k->max / 1000, b, sizeof(b));
		snprintf(buf, len, "%s..%s", a, b);
	} else if (k->values != NULL)
		for (i = 0; k->values[i] != NULL && off < len; i++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
			    i ? "|" : "", k->values[i]);
	return buf;
}

static void
table_text(FILE *out, const char *title, const struct wp_key *keys,
    size_t n, size_t key_size)
{
	const struct wp_key *k;
	char range[256], flags[8];
	int wn = 4, wt = 4, wd = 7, wr = 5, l;
	size_t i;

	for (i = 0; i < n; i++) {
		k = KEYS_AT(keys, key_size, i);
		if ((l = (int)strlen(k->name)) > wn)
			wn = l;
		if ((l = (int)strlen(keys_type_name(k->type))) > wt)
			wt = l;
		if (k->def != NULL && (l = (int)strlen(k->def)) > wd)
			wd = l;
		if ((l = (int)strlen(range_text(k, range, sizeof(range)))) > wr)
			wr = l;
	}
	fprintf(out, "%s\n  %-*s  %-*s  %-3s  %-*s  %-*s  %s\n", title, wn,
	    "KEY", wt, "TYPE", "", wd, "DEFAULT", wr, "RANGE", "HELP");
	for (i = 0; i < n; i++) {
		k = KEYS_AT(keys, key_size, i);
		snprintf(flags, sizeof(flags), "%s%s",
		    (k->flags & WP_KEY_REQUIRED) ? "R" : "",
		    ((k->flags & WP_KEY_MULTI) || k->type == WP_KT_LIST) ?
		    "+" : "");
		fprintf(out, "  %-*s  %-*s  %-3s  %-*s  %-*s  %s\n", wn,
		    k->name, wt, keys_type_name(k->type), flags, wd,
		    k->def != NULL ? k->def : "-", wr,
		    range_text(k, range, sizeof(range)),
		    k->help != NULL ? k->help : "");
	}
	fputc('\n', out);
}

int
list_types(FILE *out, int json)
{
	const struct cfg_keys *host;
	const struct plugin *p;
	json_t *doc, *common, *types, *t;
	char title[512], abi[16];
	size_t n_host, i;
	char *text;
	int rc = 0;

	host = cfg_host_keys(&n_host);
	if (!json) {
		fputs("R: required, +: repeatable (DURATION ranges as "
		    "durations)\n\n", out);
		for (i = 0; i < n_host; i++) {
			/* [agent] and [status] are sections of their own. */
			snprintf(title, sizeof(title), "[%s]%s", host[i].name,
			    strcmp(host[i].name, "monitor") == 0 ?
			    " common keys of every [monitor:NAME]" :
			    strcmp(host[i].name, "alert") == 0 ?
			    " common keys of every [alert:NAME]" : "");
			table_text(out, title, host[i].keys, host[i].n_keys,
			    sizeof(struct wp_key));
		}
		for (i = 0; (p = loader_at(i)) != NULL; i++) {
			snprintf(title, sizeof(title), "%s type %s (version "
			    "%s): %s", kind_name(p->desc.kind), p->desc.name,
			    p->desc.version ? p->desc.version : "?",
			    p->desc.description ? p->desc.description : "");
			table_text(out, title, p->desc.keys, p->desc.n_keys,
			    p->desc.key_size);
		}
		return 0;
	}
	doc = json_object();
	snprintf(abi, sizeof(abi), "%d.%d", WP_ABI_MAJOR, WP_ABI_MINOR);
	json_object_set_new(doc, "abi", json_string(abi));
	common = json_object();
	for (i = 0; i < n_host; i++)
		json_object_set_new(common, host[i].name, table_json(
		    host[i].keys, host[i].n_keys, sizeof(struct wp_key)));
	json_object_set_new(doc, "common", common);
	types = json_array();
	for (i = 0; (p = loader_at(i)) != NULL; i++) {
		t = json_object();
		json_object_set_new(t, "name", json_string(p->desc.name));
		json_object_set_new(t, "kind",
		    json_string(kind_name(p->desc.kind)));
		json_object_set_new(t, "version", json_string(
		    p->desc.version ? p->desc.version : ""));
		json_object_set_new(t, "description", json_string(
		    p->desc.description ? p->desc.description : ""));
		json_object_set_new(t, "file", json_string(p->path));
		json_object_set_new(t, "keys", table_json(p->desc.keys,
		    p->desc.n_keys, p->desc.key_size));
		json_array_append_new(types, t);
	}
	json_object_set_new(doc, "types", types);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		rc = WP_ENOMEM;
	else {
		fprintf(out, "%s\n", text);
		free(text);
	}
	json_decref(doc);
	return rc;
}
