/* Shared by the fuzz targets in tests/fuzz/: one target per kind of
 * untrusted input, each a libFuzzer entry point
 *
 *     int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 *
 * built two ways: with clang -fsanitize=fuzzer by `make fuzz`, and with the
 * normal compiler and flags against replay.c, which runs the saved corpus in
 * `make test` and `make test-asan` so that a crash once found stays fixed.
 *
 * Targets check invariants with FUZZ_CHECK, which aborts (a crash is what
 * both libFuzzer and the replay driver report) instead of asserting: it
 * must stay on in optimised builds.
 */
#ifndef SDB_FUZZ_H
#define SDB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether every byte below 0x20 is JSON white space (tab, LF, CR): an
 * input that stores every score it holds must be (docs/input.md: no raw
 * control byte in a string, none but those three between tokens). */
static inline int fuzz_controls_are_white_space(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (data[i] < 0x20 && data[i] != '\t' && data[i] != '\n' && data[i] != '\r') return 0;
    return 1;
}

#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                           \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#endif
