#ifndef CPROCESSSPAWN_H
#define CPROCESSSPAWN_H

#include <sys/types.h>

/// One file descriptor the child should see: `source` in the parent becomes `target` in the child.
typedef struct {
    int source;
    int target;
} cps_fd_mapping;

/// Spawns `path` with `argv`/`envp` in `cwd` (NULL: inherit), as the leader of a new session
/// and process group, so the whole process tree can be signalled with killpg(pid, sig).
/// The child sees exactly the mapped descriptors (stdin/stdout/stderr included) and nothing else.
/// When `search_path` is non-zero, `path` is looked up in PATH like execvp.
/// On success returns 0 and fills `*pid` and `*pidfd` (a pidfd to wait on, close-on-exec);
/// on failure returns an errno value (ENOENT, EACCES, … from the exec, as posix_spawn reports it).
int cps_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              const cps_fd_mapping *mappings, int mapping_count, int search_path,
              pid_t *pid, int *pidfd);

/// pidfd_open(2).
int cps_pidfd_open(pid_t pid);

/// Waits for the process behind `pidfd` (waitid P_PIDFD). Returns 0 and fills the outputs:
/// `*exited` is 1 for a normal exit (status = exit code), 0 for a signal (status = signal number).
int cps_pidfd_wait(int pidfd, int *exited, int *status, int nohang);

/// Sends `signal` to the process behind `pidfd`, immune to pid reuse.
int cps_pidfd_send_signal(int pidfd, int signal);



/// epoll helpers for the reaper thread (Glibc's Swift overlay does not export epoll).
int cps_epoll_create(void);
int cps_epoll_add_readable(int epfd, int fd);
int cps_epoll_remove(int epfd, int fd);
/// Waits (EINTR retried) and fills `fds` with up to `capacity` ready descriptors; returns the count or -errno.
int cps_epoll_wait(int epfd, int *fds, int capacity);
/// malloc_trim(0) where the C library has it (glibc): freed heap memory goes back to the system.
void cps_release_free_heap(void);
#endif
