#ifndef CFORKSERVER_H
#define CFORKSERVER_H

#include <stddef.h>
#include <sys/types.h>

/// The fork server protocol, on a SOCK_SEQPACKET unix socket pair.
///
/// Request (executor -> server): one message of the 4-byte magic "SMEF" followed by the extra
/// environment as NAME=value entries each ended by a NUL byte, carrying four descriptors
/// (SCM_RIGHTS): the new worker's stdout, stderr, worker-protocol input (its fd 3) and
/// worker-protocol output (its fd 4). To a server whose hello said `fork_server_joins_cgroups`,
/// up to CFS_MAXIMUM_JOINS more may follow them: cgroup files (v1 `tasks`, v2 `cgroup.procs`) the
/// new worker writes "0" to, joining those cgroups, before anything else; one of them may be a
/// cgroup2 directory (to a server whose hello said `fork_server_creates_in_cgroup`), which the new
/// worker is created in (clone3's CLONE_INTO_CGROUP) or, where the kernel refuses that, joins
/// through its `cgroup.procs`. A new worker that cannot join one writes why to its stderr and
/// exits with CFS_JOIN_FAILED_STATUS before it says hello.
/// Reply (server -> executor): one 4-byte native int: the new worker's pid, or -errno.
///
/// The new worker is created with clone(CLONE_PARENT): it is the child of the executor (the
/// server's parent), which waits for it like any child it spawned itself.

/// The largest extra environment a request can carry.
#define CFS_MAXIMUM_ENVIRONMENT (60 * 1024)

/// The most cgroup-file descriptors a request may carry after the four.
#define CFS_MAXIMUM_JOINS 8

/// The exit status of a new worker that could not join a cgroup of its request.
#define CFS_JOIN_FAILED_STATUS 126

/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC). Returns 0 or -errno.
int cfs_socketpair(int fds[2]);

/// Executor side: asks the server on `control` for a new worker. `fds` holds the four
/// descriptors described above, `joins` the `join_count` cgroup files it joins (only for a
/// server that said it joins them). Waits at most `timeout_ms` for the answer.
/// Returns the pid (> 0) or -errno: -ETIMEDOUT, -EPIPE/-ECONNRESET (the server is gone),
/// -E2BIG (environment too large or too many joins), or the error the server met (clone's errno).
int cfs_request_worker(int control, const int fds[4], const int *joins, size_t join_count, const char *environment,
                       size_t environment_length, int timeout_ms);

/// Server side: serves requests on `control` until the executor closes it.
/// Returns 1 in each new worker: it joined the request's cgroups, its descriptors 1-4 are in
/// place, every other descriptor above 2 is closed, the extra environment is set and it leads a
/// session of its own.
/// Returns 0 in the server when the executor closed the socket, -errno when serving failed.
/// The server must be single-threaded.
int cfs_serve(int control);

/// Runs `body(context)` on a new thread and waits for it. A forked worker's main thread carries
/// thread-local state copied from the server (cached thread ids), so the new worker's work starts
/// on a thread of its own. Returns 0, or an errno if no thread could be created.
int cfs_run_on_new_thread(void (*body)(void *), void *context);

#endif
