#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <libcgroup.h>

/// libcgroup's table of mounted controllers and the lock that guards it: exported by the library
/// (`cg_mount_table`, `cg_mount_table_lock`) though in none of its public headers, so looked up by
/// name. `cgroup_init()` zeroes the whole table (about 800 KB of its .bss for a hundred controllers)
/// and fills the few entries this machine has. Returns 0, with the table's address in `*table`, its
/// size in `*length` and the lock in `*lock`; -1 when this libcgroup has no such symbols.
static inline int sme_libcgroup_mount_table(void **table, size_t *length, pthread_rwlock_t **lock) {
    void *found_table = dlsym(RTLD_DEFAULT, "cg_mount_table");
    void *found_lock = dlsym(RTLD_DEFAULT, "cg_mount_table_lock");
    if (found_table == NULL || found_lock == NULL) return -1;
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1(found_table, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0 || symbol == NULL) return -1;
    if (symbol->st_size == 0) return -1;
    *table = found_table;
    *length = (size_t)symbol->st_size;
    *lock = (pthread_rwlock_t *)found_lock;
    return 0;
}
