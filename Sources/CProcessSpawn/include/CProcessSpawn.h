#ifndef CPROCESSSPAWN_H
#define CPROCESSSPAWN_H

#include <sys/types.h>
// fgetxattr/fsetxattr, for directory ACLs (Swift's Glibc module leaves this header out).
#include <sys/xattr.h>

/// Who a child runs as: its real, effective and saved user and group ids and its supplementary
/// groups (`groups`, `group_count` of them), set before it execs.
typedef struct {
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int group_count;
} cps_identity;

/// One file descriptor the child should see: `source` in the parent becomes `target` in the child.
typedef struct {
    int source;
    int target;
} cps_fd_mapping;

/// Spawns `path` with `argv`/`envp` in `cwd` (NULL: inherit), as the leader of a new session
/// and process group, so the whole process tree can be signalled with killpg(pid, sig).
/// The child sees exactly the mapped descriptors (stdin/stdout/stderr included) and nothing else,
/// and starts with the process's nice value (its main thread's), not the spawning thread's.
/// When `search_path` is non-zero, `path` is looked up in PATH like execvp.
/// The child is inside its cgroups before the program runs a single instruction: it is created in
/// the cgroup2 directory `cgroup_dir_fd` (unless -1) by clone3's CLONE_INTO_CGROUP, and it writes
/// "0" to each of `join_fds` (open cgroup v1 `tasks` files, or `cgroup.procs`) before it execs.
/// Neither takes the kernel's machine-wide lock for moving processes, whose first taker after a
/// quiet spell waits for an RCU grace period (a `cgroup.procs` write does). Where clone3 or
/// CLONE_INTO_CGROUP is refused (kernels before 5.7, seccomp filters, architectures without our
/// clone3 entry), and where the kernel kills such a child at birth (see
/// `cps_spawn_creates_in_cgroup`), the child writes "0" to the directory's `cgroup.procs` instead.
/// Unless `oom_score_adj` is NULL, the child writes it (a number, -1000 to 1000) to its
/// /proc/self/oom_score_adj before it execs, and its descendants inherit it.
/// Unless `identity` is NULL, the child takes it (groups, then group id, then user id: raw system
/// calls, which change the child alone) after everything else that needs the executor's
/// privileges and before it enters `cwd`, which it enters as that user.
/// On success returns 0 and fills `*pid` and `*pidfd` (a pidfd to wait on, close-on-exec);
/// on failure returns an errno value (ENOENT, EACCES, … from the exec; a cgroup join's errno).
/// `*failed_step` says which step failed: 0 exec, 1 joining a cgroup, 2 other set-up, 3 taking
/// `identity`, 4 entering `cwd`.
int cps_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              const cps_fd_mapping *mappings, int mapping_count, int search_path,
              const int *join_fds, int join_count, int cgroup_dir_fd, const char *oom_score_adj,
              const cps_identity *identity, pid_t *pid, int *pidfd, int *failed_step);

/// Whether `cps_spawn` still creates children in their cgroup2 directory (CLONE_INTO_CGROUP): 1
/// until such a child is found killed at birth, 0 from then on (the child then joins through the
/// directory's `cgroup.procs`, and so do all later ones). Linux 6.18 (this project's VM) kills a
/// child created in a cgroup that has had a `cgroup.kill` while its creator's cgroup has not: it
/// compares the two cgroups' counts of kills, so an executor whose own cgroup was ever killed
/// could create no child in a fresh one. A spawn that meets this is not failed: `cps_spawn` reaps
/// the dead child and starts the program again the other way.
int cps_spawn_creates_in_cgroup(void);

/// Test hook: makes `cps_spawn_creates_in_cgroup` true again (as at start).
void cps_spawn_forget_kills_at_birth(void);

/// Test hook: non-zero makes `cps_spawn` take its fallback for CLONE_INTO_CGROUP (clone, then a
/// `cgroup.procs` write) as on a kernel that refuses clone3.
void cps_spawn_refuse_clone3(int refuse);

/// What the kernel accounted to a reaped child (and the descendants it waited for).
typedef struct {
    long long user_microseconds;
    long long system_microseconds;
    long long max_rss_kilobytes;
} cps_usage;

/// pidfd_open(2).
int cps_pidfd_open(pid_t pid);

/// Waits for the process behind `pidfd` (waitid P_PIDFD). Returns 0 and fills the outputs:
/// `*exited` is 1 for a normal exit (status = exit code), 0 for a signal (status = signal number);
/// `*usage` (may be NULL) gets the child's resource usage.
int cps_pidfd_wait(int pidfd, int *exited, int *status, int nohang, cps_usage *usage);

/// Makes this process a child subreaper: orphaned descendants are re-parented to it.
int cps_become_subreaper(void);

/// Fills `pids` with up to `capacity` children of this process (every thread's), from
/// /proc/self/task/*/children. Returns the count, or -errno.
int cps_list_children(pid_t *pids, int capacity);

/// Reaps `pid` if it is a zombie child (waitpid WNOHANG). Returns 1 if reaped, 0 if not.
int cps_reap_if_exited(pid_t pid);

/// The pid of a child (of any thread) that has exited and is not reaped yet, left as it is
/// (waitid P_ALL, WNOWAIT): the oldest such child. 0 when there is none, -errno on failure.
pid_t cps_exited_child(void);

/// Sends `signal` to the process behind `pidfd`, immune to pid reuse.
int cps_pidfd_send_signal(int pidfd, int signal);



/// pipe2(fds, O_CLOEXEC) (Glibc's Swift overlay does not export pipe2). Returns 0 or errno.
int cps_pipe_cloexec(int fds[2]);

/// Names the calling thread (as ps -L and top -H show it); at most 15 bytes are kept.
void cps_name_this_thread(const char *name);

/// Sets the nice value of the calling thread alone (Linux schedules threads, so a thread's nice
/// is its own). Returns 0 or errno (EACCES/EPERM below the current value without CAP_SYS_NICE).
int cps_set_this_thread_nice(int nice);

/// Gives the calling thread the process's nice value (its main thread's). Returns 0 or errno.
int cps_take_process_nice(void);

/// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts afterwards
/// (`cps_spawn`'s children start with an empty mask). Returns 0 or errno.
int cps_block_termination_signals(void);
/// A signalfd (non-blocking, close-on-exec) on which the blocked SIGTERM and SIGINT arrive, or -errno.
int cps_termination_signalfd(void);
/// Reads one signal from a signalfd: its number, 0 when none is pending, or -errno.
int cps_read_signal(int fd);

/// epoll helpers for the reaper thread (Glibc's Swift overlay does not export epoll).
int cps_epoll_create(void);
int cps_epoll_add_readable(int epfd, int fd);
int cps_epoll_remove(int epfd, int fd);
/// Waits up to `timeout_ms` (-1: forever; EINTR retried) and fills `fds` with up to `capacity`
/// ready descriptors; returns the count (0 on timeout) or -errno.
int cps_epoll_wait(int epfd, int *fds, int capacity, int timeout_ms);
/// malloc_trim(0) where the C library has it (glibc): freed heap memory goes back to the system.
void cps_release_free_heap(void);
/// Where the C library is glibc: sets malloc's trim threshold (`trim` nonzero) or its mapping
/// threshold to `bytes` with mallopt, which also stops glibc adjusting either on its own.
/// Returns 1 if set, 0 otherwise (another C library, or a value glibc refuses).
int cps_set_heap_threshold(int trim, int bytes);

/// Gives back the whole pages of [address, address + length) that are in memory and hold only
/// zeros (`madvise(MADV_DONTNEED)` on private anonymous memory: they read as zeros again, and a
/// page is taken again only when written). For memory a library zeroed and never filled. The
/// caller makes sure nothing writes the range meanwhile. Returns the bytes given back.
size_t cps_release_zero_pages(void *address, size_t length);

/// Finds a data or function symbol that a loaded object exports, by name: its address and its
/// size in bytes (from the object's symbol table). Returns 0, or -1 when no loaded object has it.
int cps_find_symbol(const char *name, void **address, size_t *size);

/// Opens `path` (with `flags`, `mode`) with the filesystem credentials of `identity`: the calling
/// thread alone takes the user's groups, filesystem gid and filesystem uid (raw system calls, which
/// unlike glibc's wrappers change one thread's credentials), opens, and takes its own back before
/// returning, so the kernel checks the user's permissions on every directory and the file itself.
/// Needs CAP_SETUID and CAP_SETGID. Returns the descriptor, or -1 with `errno` set; aborts should
/// the thread's own credentials not come back (nothing else may then run on it).
int cps_open_as(const char *path, int flags, mode_t mode, const cps_identity *identity);

/// Unmaps the program's own relocation table (`.rela.dyn`, `.relr.dyn`): the dynamic loader reads
/// it once, before `main`, and nothing reads it again. Only whole pages inside the table, and
/// only where its segment is not writable (the pages are then clean file pages: should anything
/// read them again, they come back through minor faults). Returns the bytes unmapped.
size_t cps_release_relocation_table(void);
#endif
