/*
 * Replays a fuzz target's committed corpus: every file in
 * $abs_top_srcdir/tests/fuzz/TARGET/ (or in the directories and files
 * given as arguments) goes through LLVMFuzzerTestOneInput() once.  A
 * property failure or a crash aborts; an empty corpus fails too, so the
 * test cannot pass by finding nothing.  TAP output.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET"
#endif

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	/* A private copy of exactly n bytes, so ASan sees over-reads. */
	{
		uint8_t *exact = malloc(n ? n : 1);
		if (exact == NULL)
			abort();
		memcpy(exact, buf, n);
		free(buf);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file in DIR (sorted); returns how many, -1 on error. */
static int
run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, *path;
	size_t n = 0, i;
	struct stat st;
	int count = 0;

	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((names = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (names[n] = strdup(e->d_name)) == NULL)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
			abort();
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(path) != 0) {
				count = -1;
				free(path);
				break;
			}
			printf("ok %d - %s\n", ++count, names[i]);
			fflush(stdout);
		}
		free(path);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	const char *top = getenv("abs_top_srcdir");
	char *dir;
	int i, n, total = 0;
	struct stat st;

	if (argc > 1) {
		for (i = 1; i < argc; i++) {
			if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
				n = run_dir(argv[i]);
			else
				n = run_file(argv[i]) == 0 ? 1 : -1;
			if (n < 0)
				return 1;
			total += n;
		}
	} else {
		if (asprintf(&dir, "%s/tests/fuzz/%s", top ? top : ".",
		    FUZZ_TARGET) < 0)
			abort();
		total = run_dir(dir);
		free(dir);
	}
	if (total <= 0) {
		printf("not ok 1 - no corpus files for %s\n", FUZZ_TARGET);
		return 1;
	}
	printf("1..%d\n", total);
	return 0;
}
