/* Wall-clock bounds in tests, scaled for the build they run in.
 *
 * A bound in a test (Criterion's .timeout, a socket's receive timeout)
 * exists to turn a hang into a failure, never to measure speed: speed
 * lives in bench/. A sanitizer build runs the same work 2-5x slower, and
 * the 2-core machines the suite runs on are often shared 10-16 deep, so a
 * bound that is generous for the plain build at rest (engine_diff's
 * random test: 30-60 s of CPU under ASan against 240 s) was hit under
 * ASan at load 16. Every such bound is written SDB_BOUND_S(seconds): the
 * plain figure, multiplied by 4 under AddressSanitizer. */
#ifndef SDB_TESTS_BOUNDS_H
#define SDB_TESTS_BOUNDS_H

#if defined(__SANITIZE_ADDRESS__)
#define SDB_BOUND_SCALE 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SDB_BOUND_SCALE 4
#endif
#endif
#ifndef SDB_BOUND_SCALE
#define SDB_BOUND_SCALE 1
#endif

#define SDB_BOUND_S(s) ((s) * SDB_BOUND_SCALE)

#endif
