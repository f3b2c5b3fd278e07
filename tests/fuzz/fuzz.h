/*
 * The libFuzzer entry point every tests/fuzz/fuzz-*.c defines.  Built two
 * ways (tests/fuzz.am): with clang and -fsanitize=fuzzer for
 * `./bootstrap fuzz`, and with the normal compiler and driver.c, which
 * replays the committed corpus tests/fuzz/TARGET/ in `make check`.  A
 * target reports a failed property with fuzz_assert(), which aborts, so both
 * libFuzzer and the driver see a crash.
 */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_assert(cond)                                               \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: property failed: %s\n", \
			    __FILE__, __LINE__, #cond);                 \
			abort();                                        \
		}                                                       \
	} while (0)

/* DATA as a NUL-terminated string (cut at its first NUL); free() it. */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
