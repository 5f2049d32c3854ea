// Defaults for a build with AddressSanitizer (`make asan`); nothing in any other build.
//
// LeakSanitizer cannot see a Swift object's weak-reference side table: the object's refcount field
// holds the table's address shifted and tagged, so every side table of an object still alive when
// the process exits is reported as a leak, and the process exits 1. The suite's own process gets
// `detect_leaks=0` from `make asan`'s ASAN_OPTIONS; the executors, workers and fork servers it
// starts get the environment an agent gives them, without it, so the programs carry the default.
// An explicit ASAN_OPTIONS still wins over it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }
#endif
#endif
