#ifndef CARCHIVE_SHIM_H
#define CARCHIVE_SHIM_H
// libarchive's types and constants only: PackageFetch loads the library itself on first use
// (LibArchive.swift), so nothing here may call into it directly.
#include <archive.h>
#include <archive_entry.h>

/// Calls `archive_set_error` (loaded, passed as `set_error`) without its printf-style varargs,
/// which Swift cannot call.
static inline void carchive_set_error(void *set_error, struct archive *archive, int code, const char *message) {
    ((void (*)(struct archive *, int, const char *, ...))set_error)(archive, code, "%s", message);
}
#endif
