#define _GNU_SOURCE
#include "CForkServer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static const char magic[4] = {'S', 'M', 'E', 'F'};

int cfs_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

int cfs_request_worker(int control, const int fds[4], const int *joins, size_t join_count, const char *environment,
                       size_t environment_length, int timeout_ms) {
    if (environment_length > CFS_MAXIMUM_ENVIRONMENT || join_count > CFS_MAXIMUM_JOINS) return -E2BIG;
    size_t count = 4 + join_count;
    struct iovec parts[2] = {
        {.iov_base = (void *)magic, .iov_len = sizeof(magic)},
        {.iov_base = (void *)environment, .iov_len = environment_length},
    };
    union {
        char buffer[CMSG_SPACE((4 + CFS_MAXIMUM_JOINS) * sizeof(int))];
        struct cmsghdr align;
    } control_data;
    memset(&control_data, 0, sizeof(control_data));
    struct msghdr message = {
        .msg_iov = parts,
        .msg_iovlen = environment_length > 0 ? 2 : 1,
        .msg_control = control_data.buffer,
        .msg_controllen = CMSG_SPACE(count * sizeof(int)),
    };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(header), fds, 4 * sizeof(int));
    if (join_count > 0) memcpy(CMSG_DATA(header) + 4 * sizeof(int), joins, join_count * sizeof(int));
    ssize_t sent;
    do {
        sent = sendmsg(control, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) return -errno;

    struct pollfd entry = {.fd = control, .events = POLLIN};
    int ready;
    do {
        ready = poll(&entry, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) return -errno;
    if (ready == 0) return -ETIMEDOUT;
    int32_t answer = 0;
    ssize_t got;
    do {
        got = recv(control, &answer, sizeof(answer), 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -errno;
    if (got == 0) return -EPIPE;
    if (got != sizeof(answer) || answer == 0) return -EPROTO;
    return answer;
}

static int reply(int control, int32_t value) {
    ssize_t sent;
    do {
        sent = send(control, &value, sizeof(value), MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : 0;
}

/// fork(2) whose child is our parent's child, created in the cgroup2 directory `cgroup_dir` when
/// that is not -1 (clone3's CLONE_INTO_CGROUP: the child is in it from its first instruction,
/// and no machine-wide lock is taken as a `cgroup.procs` write takes it). `*in_cgroup` says
/// whether it was: where the kernel or a seccomp filter refuses that, the child is created where we
/// are. glibc keeps the calling thread's id in its thread descriptor; the kernel writes the child's
/// id there (CLONE_CHILD_SETTID at the address glibc registered), as glibc's own fork does.
static pid_t clone_sibling(int cgroup_dir, int *in_cgroup) {
    int *tid_address = NULL;
    if (prctl(PR_GET_TID_ADDRESS, &tid_address, 0, 0, 0) != 0) tid_address = NULL;
    unsigned long long flags = CLONE_PARENT;
    if (tid_address != NULL) flags |= CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
            cgroup;
    } args;
    memset(&args, 0, sizeof(args));
    args.flags = flags;
    args.child_tid = (uint64_t)(uintptr_t)tid_address;
    *in_cgroup = 0;
    long pid;
    if (cgroup_dir >= 0) {
        args.flags = flags | CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_dir;
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid >= 0) {
            *in_cgroup = 1;
            return (pid_t)pid;
        }
        // Refused as a whole (an old kernel, a seccomp filter, flags it does not know): the
        // child is created where we are and joins through the directory's cgroup.procs. Any other
        // error is this cgroup's.
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL && errno != EPERM) return -1;
        args.flags = flags;
        args.cgroup = 0;
    }
    // The size of clone3's first arguments (Linux 5.3), which every kernel with clone3 takes.
    pid = syscall(SYS_clone3, &args, 8 * sizeof(uint64_t));
    if (pid >= 0 || errno != ENOSYS) return (pid_t)pid;
    // Kernels (or seccomp filters) without clone3. The exit signal is ignored with CLONE_PARENT.
#if defined(__x86_64__)
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, tid_address, NULL);
#else
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, tid_address);
#endif
}

static void close_from(int lowest) {
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0) == 0) return;
    long highest = sysconf(_SC_OPEN_MAX);
    for (int fd = lowest; fd < highest; fd++) close(fd);
}

/// In the new worker: says on its stderr which cgroup (`what`) it cannot join and why; returns `code`.
static int cannot_join(const char *what, int code, int stderr_fd) {
    char line[768];
    int size = snprintf(line, sizeof(line), "fork server: the new worker cannot join its cgroup (%s): %s\n", what,
                        strerror(code));
    if (size > (int)sizeof(line) - 1) size = (int)sizeof(line) - 1;
    if (size > 0) (void)!write(stderr_fd, line, (size_t)size);
    return code;
}

/// In the new worker, first of all: writes "0" to each cgroup file of the request (v1 `tasks`, v2
/// `cgroup.procs`). On a failure it says which, on the new worker's stderr, and returns the errno.
static int join_cgroups(const int *joins, int count, int stderr_fd) {
    for (int i = 0; i < count; i++) {
        ssize_t written;
        do {
            written = write(joins[i], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written == 1) continue;
        int code = written < 0 ? errno : EIO;
        char path[64], target[512];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", joins[i]);
        ssize_t length = readlink(path, target, sizeof(target) - 1);
        target[length > 0 ? length : 0] = '\0';
        return cannot_join(length > 0 ? target : "unknown file", code, stderr_fd);
    }
    return 0;
}

/// In the new worker: descriptors and environment as the request says, a session of its own.
static int become_worker(const int received[4], char *environment, size_t length) {
    // Park the received descriptors above the targets first, so no dup2 clobbers a source.
    int parked[4];
    for (int i = 0; i < 4; i++) {
        parked[i] = fcntl(received[i], F_DUPFD, 16);
        if (parked[i] < 0) return -errno;
    }
    for (int i = 0; i < 4; i++)
        if (dup2(parked[i], i + 1) < 0) return -errno;
    close_from(5);
    if (setsid() < 0) return -errno;
    for (size_t start = 0; start < length;) {
        char *entry = environment + start;
        size_t remaining = length - start;
        size_t entry_length = strnlen(entry, remaining);
        if (entry_length == remaining) break;  // not NUL-terminated: not an entry
        start += entry_length + 1;
        char *equals = memchr(entry, '=', entry_length);
        if (equals == NULL || equals == entry) continue;
        *equals = '\0';
        if (setenv(entry, equals + 1, 1) != 0) return -errno;
    }
    return 0;
}

int cfs_serve(int control) {
    static char buffer[sizeof(magic) + CFS_MAXIMUM_ENVIRONMENT + 1];
    for (;;) {
        union {
            char buffer[CMSG_SPACE((4 + CFS_MAXIMUM_JOINS) * sizeof(int))];
            struct cmsghdr align;
        } control_data;
        struct iovec part = {.iov_base = buffer, .iov_len = sizeof(buffer) - 1};
        struct msghdr message = {
            .msg_iov = &part,
            .msg_iovlen = 1,
            .msg_control = control_data.buffer,
            .msg_controllen = sizeof(control_data.buffer),
        };
        ssize_t got = recvmsg(control, &message, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -errno;
        if (got == 0) return 0;

        enum { most = 4 + CFS_MAXIMUM_JOINS };
        int received[most];
        int count = 0;
        // The control buffer holds `most` descriptors: the kernel drops any beyond (MSG_CTRUNC).
        for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL;
             header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
            int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < n && count < most; i++)
                memcpy(&received[count++], CMSG_DATA(header) + i * sizeof(int), sizeof(int));
        }
        int problem = 0;
        if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) problem = E2BIG;
        else if (got < (ssize_t)sizeof(magic) || memcmp(buffer, magic, sizeof(magic)) != 0 || count < 4) problem = EPROTO;
        if (problem != 0) {
            for (int i = 0; i < count; i++) close(received[i]);
            if (reply(control, -problem) != 0) return -EPIPE;
            continue;
        }

        // A directory among the cgroup descriptors (from a server whose hello said
        // `fork_server_creates_in_cgroup`) is a cgroup2 directory to create the worker in.
        int joins[CFS_MAXIMUM_JOINS];
        int join_count = 0;
        int cgroup_dir = -1;
        for (int i = 4; i < count; i++) {
            struct stat status;
            if (cgroup_dir < 0 && fstat(received[i], &status) == 0 && S_ISDIR(status.st_mode))
                cgroup_dir = received[i];
            else
                joins[join_count++] = received[i];
        }
        int in_cgroup = 0;
        pid_t pid = clone_sibling(cgroup_dir, &in_cgroup);
        if (pid == 0) {
            if (cgroup_dir >= 0 && !in_cgroup) {
                // Created where the server is: the worker joins the directory's cgroup.procs.
                int procs = openat(cgroup_dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (procs < 0) {
                    cannot_join("cgroup.procs", errno, received[1]);
                    _exit(CFS_JOIN_FAILED_STATUS);
                }
                if (join_cgroups(&procs, 1, received[1]) != 0) _exit(CFS_JOIN_FAILED_STATUS);
                close(procs);
            }
            if (join_cgroups(joins, join_count, received[1]) != 0) _exit(CFS_JOIN_FAILED_STATUS);
            int rc = become_worker(received, buffer + sizeof(magic), (size_t)got - sizeof(magic));
            if (rc != 0) _exit(127);
            return 1;
        }
        int code = pid < 0 ? -errno : pid;
        for (int i = 0; i < count; i++) close(received[i]);
        if (reply(control, code) != 0) return -EPIPE;
    }
}

struct thread_job {
    void (*body)(void *);
    void *context;
};

static void *run_job(void *argument) {
    struct thread_job *job = argument;
    job->body(job->context);
    return NULL;
}

int cfs_run_on_new_thread(void (*body)(void *), void *context) {
    struct thread_job job = {.body = body, .context = context};
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, run_job, &job);
    if (rc != 0) return rc;
    pthread_join(thread, NULL);
    return 0;
}
