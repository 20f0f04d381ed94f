/* The tests' pseudo-random numbers: Marsaglia's xorshift64 (13, 7, 17)
 * over a state each test file seeds and keeps, so that a file's sequence
 * (and the data its randomized tests draw) is the same on every run. */
#ifndef SDB_TEST_XORSHIFT_H
#define SDB_TEST_XORSHIFT_H

#include <stdint.h>

static inline uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif
