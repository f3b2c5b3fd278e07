/*
 * listtypes -- `watchpost --list-types [--json]`: every loaded check and
 * alert type with its key table, and the host's own tables, read from the
 * same wp_key tables the configuration is parsed with.
 */
#ifndef CORE_LISTTYPES_H
#define CORE_LISTTYPES_H

#include <stdio.h>

/* Write the loaded plugins' types and the host's key tables to OUT: an
 * aligned table, or with JSON one JSON document.  0, or WP_ENOMEM. */
int list_types(FILE *out, int json);

#endif
