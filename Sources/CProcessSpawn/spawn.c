#define _GNU_SOURCE
#include "CProcessSpawn.h"

#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int cps_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cps_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int cps_pidfd_wait(int pidfd, int *exited, int *status, int nohang) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int rc;
    do {
        rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | (nohang ? WNOHANG : 0));
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) return errno;
    if (info.si_pid == 0) return EAGAIN;
    *exited = info.si_code == CLD_EXITED ? 1 : 0;
    *status = info.si_status;
    return 0;
}

int cps_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              const cps_fd_mapping *mappings, int mapping_count, int search_path,
              pid_t *pid, int *pidfd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }

    // Park every source above all sources and targets first, so that mapping one fd onto a
    // target number can never clobber a source that has not been mapped yet.
    int highest = 2;
    for (int i = 0; i < mapping_count; i++) {
        if (mappings[i].source > highest) highest = mappings[i].source;
        if (mappings[i].target > highest) highest = mappings[i].target;
    }
    int parking = highest + 1;
    for (int i = 0; i < mapping_count && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&actions, mappings[i].source, parking + i);
    for (int i = 0; i < mapping_count && rc == 0; i++)
        rc = posix_spawn_file_actions_adddup2(&actions, parking + i, mappings[i].target);
    int highest_target = -1;
    for (int i = 0; i < mapping_count; i++)
        if (mappings[i].target > highest_target) highest_target = mappings[i].target;
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, highest_target + 1);
    // Targets below the highest that were not mapped (e.g. no stdin) are closed too.
    for (int fd = 0; fd <= highest_target && rc == 0; fd++) {
        int mapped = 0;
        for (int i = 0; i < mapping_count; i++)
            if (mappings[i].target == fd) mapped = 1;
        if (!mapped) rc = posix_spawn_file_actions_addclose(&actions, fd);
    }
    if (rc == 0 && cwd != NULL) rc = posix_spawn_file_actions_addchdir_np(&actions, cwd);

    // A new session: the child leads its own process group, detached from our terminal.
    // Signal dispositions and the mask go back to defaults so SIGTERM works in the child
    // even though the executor handles it.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    pid_t child = 0;
    if (rc == 0) {
        if (search_path)
            rc = posix_spawnp(&child, path, &actions, &attr, argv, envp);
        else
            rc = posix_spawn(&child, path, &actions, &attr, argv, envp);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return rc;

    int fd = cps_pidfd_open(child);
    if (fd < 0) {
        int saved = errno;
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return saved;
    }
    *pid = child;
    *pidfd = fd;
    return 0;
}

#include <sys/epoll.h>

int cps_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int cps_epoll_add_readable(int epfd, int fd) {
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.events = EPOLLIN;
    event.data.fd = fd;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : errno;
}

int cps_epoll_remove(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : errno;
}

int cps_epoll_wait(int epfd, int *fds, int capacity) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count;
    do {
        count = epoll_wait(epfd, events, capacity, -1);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return -errno;
    for (int i = 0; i < count; i++) fds[i] = events[i].data.fd;
    return count;
}

void cps_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
