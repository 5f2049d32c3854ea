#define _GNU_SOURCE
#include "CProcessSpawn.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#include <link.h>
#endif
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CPS_CHILD_COPIES_MEMORY 1
#endif
#endif
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
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/// clone3(2)'s arguments (linux/sched.h, up to Linux 5.7's `cgroup`), spelled out here so that
/// older kernel headers build too.
struct cps_clone_args {
    unsigned long long flags;
    unsigned long long pidfd;
    unsigned long long child_tid;
    unsigned long long parent_tid;
    unsigned long long exit_signal;
    unsigned long long stack;
    unsigned long long stack_size;
    unsigned long long tls;
    unsigned long long set_tid;
    unsigned long long set_tid_size;
    unsigned long long cgroup;
};

#if defined(__x86_64__) && !defined(CPS_CHILD_COPIES_MEMORY)
#define CPS_HAVE_CLONE3 1
/// clone3 for a child that runs `fn(arg)` on the stack given in `args` and exits with its result:
/// glibc has no clone3 wrapper, and a child on a stack of its own must never return into this
/// frame, so the child's side is written here as glibc's clone() writes it for clone(2). The
/// parent gets the child's pid or -errno.
static long clone3_running(struct cps_clone_args *args, int (*fn)(void *), void *arg) {
    register long rax __asm__("rax") = SYS_clone3;
    register struct cps_clone_args *rdi __asm__("rdi") = args;
    register unsigned long rsi __asm__("rsi") = sizeof(*args);
    register int (*r12)(void *) __asm__("r12") = fn;
    register void *r13 __asm__("r13") = arg;
    __asm__ volatile("syscall\n\t"
                     "testq %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     // The child, on its own stack (16-byte aligned at its top): fn(arg), then exit.
                     "xorl %%ebp, %%ebp\n\t"
                     "movq %%r13, %%rdi\n\t"
                     "callq *%%r12\n\t"
                     "movl %%eax, %%edi\n\t"
                     "movl $60, %%eax\n\t"
                     "syscall\n\t"
                     "ud2\n\t"
                     "1:"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    return rax;
}
#else
#define CPS_HAVE_CLONE3 0
#endif

static volatile int clone3_refused_for_tests = 0;

void cps_spawn_refuse_clone3(int refuse) {
    clone3_refused_for_tests = refuse;
}

/// Set once a child created with CLONE_INTO_CGROUP was killed at birth (see the header).
static volatile int clone_into_cgroup_kills = 0;

/// The process's nice value: its main thread's (PRIO_PROCESS names a thread on Linux, and the
/// process's pid is its main thread). 0, or errno with `*nice` untouched.
static int process_nice(int *nice) {
    errno = 0;
    int value = getpriority(PRIO_PROCESS, (id_t)getpid());
    if (errno != 0) return errno;
    *nice = value;
    return 0;
}

int cps_spawn_creates_in_cgroup(void) {
    return !clone_into_cgroup_kills;
}

void cps_spawn_forget_kills_at_birth(void) {
    clone_into_cgroup_kills = 0;
}

int cps_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cps_pidfd_send_signal(int pidfd, int signal) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
}

int cps_pidfd_wait(int pidfd, int *exited, int *status, int nohang, cps_usage *usage) {
    siginfo_t info;
    struct rusage rusage;
    memset(&info, 0, sizeof(info));
    memset(&rusage, 0, sizeof(rusage));
    long rc;
    // The raw system call: glibc's waitid has no rusage argument.
    do {
        rc = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | (nohang ? WNOHANG : 0), &rusage);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) return errno;
    if (info.si_pid == 0) return EAGAIN;
    *exited = info.si_code == CLD_EXITED ? 1 : 0;
    *status = info.si_status;
    if (usage != NULL) {
        usage->user_microseconds = (long long)rusage.ru_utime.tv_sec * 1000000 + rusage.ru_utime.tv_usec;
        usage->system_microseconds = (long long)rusage.ru_stime.tv_sec * 1000000 + rusage.ru_stime.tv_usec;
        usage->max_rss_kilobytes = rusage.ru_maxrss;
    }
    return 0;
}

/// Everything the child needs, prepared by the parent: the child shares our memory until it
/// execs (CLONE_VM | CLONE_VFORK), so it must not allocate; it reports a failure in `error`.
struct spawn_plan {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const cps_fd_mapping *mappings;
    int mapping_count;
    int search_path;
    const int *join_fds;
    int join_count;
    /// Written to /proc/self/oom_score_adj before exec, unless NULL.
    const char *oom_score_adj;
    /// Taken before exec, unless NULL.
    const cps_identity *identity;
    /// Above every source and target: where sources are parked, and the first descriptor the child's
    /// own table leaves out.
    int parking;
    int highest_target;
    volatile int error;
    volatile int failed_step;
    /// Set by the child first thing: a child that never ran was killed at birth.
    volatile int ran;
    /// The nice value the child starts with: the process's own (its main thread's), whatever the
    /// spawning thread's is.
    int nice;
};

static void child_fail(struct spawn_plan *plan, int step) {
    plan->error = errno != 0 ? errno : EINVAL;
    plan->failed_step = step;
    _exit(127);
}

static int child_main(void *argument) {
    struct spawn_plan *plan = argument;
    plan->ran = 1;
    // Handlers go back to their defaults (the executor handles SIGTERM; the task must not) and
    // the mask is emptied: the parent blocked everything around clone.
    struct sigaction default_action;
    memset(&default_action, 0, sizeof(default_action));
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &default_action, NULL, _NSIG / 8);
    }
    // A new session: the child leads its own process group, detached from our terminal.
    if (setsid() < 0) child_fail(plan, 2);
    // The spawning thread's priority is the executor's own affair (its task threads run at nice
    // -2): the program starts at the process's nice value, as the agent started the executor. A
    // value the child may not take (lower, without CAP_SYS_NICE) leaves it as it is.
    if (getpriority(PRIO_PROCESS, 0) != plan->nice) setpriority(PRIO_PROCESS, 0, plan->nice);
    // Into the cgroups before anything of the program runs.
    for (int i = 0; i < plan->join_count; i++) {
        ssize_t written;
        do {
            written = write(plan->join_fds[i], "0", 1);
        } while (written < 0 && errno == EINTR);
        if (written != 1) child_fail(plan, 1);
    }
    // The child shares our descriptor table (CLONE_FILES) until here. Its own table holds only the
    // descriptors below `parking` (every source and target is below it): copying the whole table at
    // clone and closing all of it again before exec cost a spawn ~70 µs with the executor's ~260
    // kept cgroup control files, which live above its other descriptors (see CgroupControlFiles).
    if (syscall(SYS_close_range, (unsigned)plan->parking, ~0U, CLOSE_RANGE_UNSHARE) != 0) {
        // A kernel before 5.9: a private copy of the whole table, then the same descriptors closed.
        if (unshare(CLONE_FILES) != 0) child_fail(plan, 2);
        struct rlimit limit;
        int open_limit = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536 ? (int)limit.rlim_cur : 65536;
        for (int fd = plan->parking; fd < open_limit; fd++) close(fd);
    }
    // The table is the child's own now: a descriptor opened here is not seen by our other threads.
    if (plan->oom_score_adj != NULL) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0) child_fail(plan, 2);
        size_t length = strlen(plan->oom_score_adj);
        ssize_t written;
        do {
            written = write(fd, plan->oom_score_adj, length);
        } while (written < 0 && errno == EINTR);
        int saved = errno;
        close(fd);
        errno = saved;
        if (written != (ssize_t)length) child_fail(plan, 2);
    }
    // Park every source above all sources and targets first, so that mapping one fd onto a
    // target number can never clobber a source that has not been mapped yet.
    for (int i = 0; i < plan->mapping_count; i++)
        if (dup2(plan->mappings[i].source, plan->parking + i) < 0) child_fail(plan, 2);
    for (int i = 0; i < plan->mapping_count; i++)
        if (dup2(plan->parking + i, plan->mappings[i].target) < 0) child_fail(plan, 2);
    if (syscall(SYS_close_range, (unsigned)(plan->highest_target + 1), ~0U, 0) != 0) {
        for (int fd = plan->highest_target + 1; fd < plan->parking + plan->mapping_count; fd++) close(fd);
    }
    // Targets below the highest that were not mapped (e.g. no stdin) are closed too.
    for (int fd = 0; fd <= plan->highest_target; fd++) {
        int mapped = 0;
        for (int i = 0; i < plan->mapping_count; i++)
            if (plan->mappings[i].target == fd) mapped = 1;
        if (!mapped) close(fd);
    }
    // The task's user last, so that everything above ran with the executor's privileges. Raw system
    // calls: glibc's setuid and friends would signal every thread of the process whose memory this
    // child shares, to change theirs too. Groups first: only a privileged process may set them.
    if (plan->identity != NULL) {
        const cps_identity *identity = plan->identity;
        if (syscall(SYS_setgroups, (size_t)identity->group_count, identity->groups) != 0) child_fail(plan, 3);
        if (syscall(SYS_setresgid, identity->gid, identity->gid, identity->gid) != 0) child_fail(plan, 3);
        if (syscall(SYS_setresuid, identity->uid, identity->uid, identity->uid) != 0) child_fail(plan, 3);
    }
    if (plan->cwd != NULL && chdir(plan->cwd) != 0) child_fail(plan, 4);
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);
    if (plan->search_path)
        execvpe(plan->path, plan->argv, plan->envp);
    else
        execve(plan->path, plan->argv, plan->envp);
    child_fail(plan, 0);
    return 127;
}

#define SPAWN_STACK_SIZE (256 * 1024)

// Stacks of earlier spawns, ready for the next ones. A child runs on its stack only until it execs
// or exits, and clone(CLONE_VFORK) returns only then, so a stack is free again as soon as clone
// returns. Mapping and unmapping one per spawn cost a page fault per page the child touched and,
// the executor having several threads, a TLB shootdown on every other CPU at each unmap.
#define SPAWN_STACKS_KEPT 4
static pthread_mutex_t spare_stacks_lock = PTHREAD_MUTEX_INITIALIZER;
static void *spare_stacks[SPAWN_STACKS_KEPT];
static int spare_stack_count = 0;

static void *take_stack(void) {
    void *stack = NULL;
    pthread_mutex_lock(&spare_stacks_lock);
    if (spare_stack_count > 0) stack = spare_stacks[--spare_stack_count];
    pthread_mutex_unlock(&spare_stacks_lock);
    if (stack) return stack;
    stack = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    return stack == MAP_FAILED ? NULL : stack;
}

static void give_back_stack(void *stack) {
    pthread_mutex_lock(&spare_stacks_lock);
    int kept = spare_stack_count < SPAWN_STACKS_KEPT;
    if (kept) spare_stacks[spare_stack_count++] = stack;
    pthread_mutex_unlock(&spare_stacks_lock);
    if (!kept) munmap(stack, SPAWN_STACK_SIZE);
}

/// What clone3 answers when it cannot do what is asked at all, rather than failing for this child:
/// no such call (an old kernel, or a seccomp filter, as container runtimes install), arguments
/// or flags it does not know (CLONE_INTO_CGROUP before 5.7).
static int clone3_is_refused(int error) {
    return error == ENOSYS || error == E2BIG || error == EINVAL || error == EPERM;
}

#define MAX_JOINS 16

int cps_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
              const cps_fd_mapping *mappings, int mapping_count, int search_path,
              const int *join_fds, int join_count, int cgroup_dir_fd, const char *oom_score_adj,
              const cps_identity *identity, pid_t *pid, int *pidfd, int *failed_step) {
    if (join_count < 0 || join_count >= MAX_JOINS) return EINVAL;
    struct spawn_plan plan;
    memset(&plan, 0, sizeof(plan));
    plan.path = path;
    plan.argv = argv;
    plan.envp = envp;
    plan.cwd = cwd;
    plan.mappings = mappings;
    plan.mapping_count = mapping_count;
    plan.search_path = search_path;
    plan.join_fds = join_fds;
    plan.join_count = join_count;
    plan.oom_score_adj = oom_score_adj;
    plan.identity = identity;
    int highest = 2;
    plan.highest_target = -1;
    for (int i = 0; i < mapping_count; i++) {
        if (mappings[i].source > highest) highest = mappings[i].source;
        if (mappings[i].target > highest) highest = mappings[i].target;
        if (mappings[i].target > plan.highest_target) plan.highest_target = mappings[i].target;
    }
    // Join descriptors are written while the table is still shared: they need not be below it.
    plan.parking = highest + 1;
    if (process_nice(&plan.nice) != 0) plan.nice = getpriority(PRIO_PROCESS, 0);
    *failed_step = 2;

    void *stack = take_stack();
    if (stack == NULL) return errno;
    // No signal handler may run in the child while it shares our memory.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int child_pidfd = -1;
    pid_t child = -1;
    int clone_errno = 0;
    int refused = cgroup_dir_fd < 0 || clone3_refused_for_tests || clone_into_cgroup_kills;
#if CPS_HAVE_CLONE3
    if (!refused) {
        struct cps_clone_args args;
        memset(&args, 0, sizeof(args));
        args.flags = CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | CLONE_INTO_CGROUP;
        args.pidfd = (unsigned long long)(uintptr_t)&child_pidfd;
        args.exit_signal = SIGCHLD;
        args.stack = (unsigned long long)(uintptr_t)stack;
        args.stack_size = SPAWN_STACK_SIZE;
        args.cgroup = (unsigned long long)cgroup_dir_fd;
        long rc = clone3_running(&args, child_main, &plan);
        if (rc >= 0 && !plan.ran) {
            // Killed at birth (see cps_spawn_creates_in_cgroup): it ran nothing and is gone. Reaped
            // here (nobody else knows it), and the program starts again the other way.
            pid_t reaped;
            do {
                reaped = waitpid((pid_t)rc, NULL, __WALL);
            } while (reaped < 0 && errno == EINTR);
            if (child_pidfd >= 0) close(child_pidfd);
            child_pidfd = -1;
            clone_into_cgroup_kills = 1;
            refused = 1;
        } else if (rc >= 0) {
            child = (pid_t)rc;
        } else {
            clone_errno = (int)-rc;
            refused = clone3_is_refused(clone_errno);
            // Any other error is this cgroup's: it cannot be joined (removed, not a cgroup2 directory).
            if (!refused) plan.failed_step = 1;
        }
    }
#else
    refused = 1;
#endif
    int fallback_join = -1;
    int joins[MAX_JOINS];
    if (refused && cgroup_dir_fd >= 0) {
        // The child joins the cgroup2 directory itself, through its cgroup.procs.
        fallback_join = openat(cgroup_dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (fallback_join < 0) {
            clone_errno = errno;
            plan.failed_step = 1;
            refused = 0;
        } else {
            for (int i = 0; i < join_count; i++) joins[i] = join_fds[i];
            joins[join_count] = fallback_join;
            plan.join_fds = joins;
            plan.join_count = join_count + 1;
        }
    }
    if (refused) {
        clone_errno = 0;
#if CPS_CHILD_COPIES_MEMORY
        // ThreadSanitizer cannot follow a child that shares our memory (its clone interceptor fails
        // a CHECK): under it the child gets a copy, and reports a failure through a shared plan.
        struct spawn_plan *shared =
            mmap(NULL, sizeof plan, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared != MAP_FAILED) {
            *shared = plan;
            child = clone(child_main, (char *)stack + SPAWN_STACK_SIZE, CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                          shared, &child_pidfd);
            if (child < 0) clone_errno = errno;
            plan.error = shared->error;
            plan.failed_step = shared->failed_step;
            munmap(shared, sizeof plan);
        } else {
            clone_errno = errno;
        }
#else
        child = clone(child_main, (char *)stack + SPAWN_STACK_SIZE,
                      CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_PIDFD | SIGCHLD, &plan, &child_pidfd);
        if (child < 0) clone_errno = errno;
#endif
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    give_back_stack(stack);
    if (fallback_join >= 0) close(fallback_join);
    if (child < 0) {
        if (plan.failed_step == 1) *failed_step = 1;
        return clone_errno;
    }
    // A CLONE_PIDFD pidfd is close-on-exec already; pidfd_open's is too.
    if (child_pidfd < 0) child_pidfd = cps_pidfd_open(child);
    if (plan.error != 0) {
        // It never ran the program: reap it here, nobody else knows it.
        waitpid(child, NULL, 0);
        if (child_pidfd >= 0) close(child_pidfd);
        *failed_step = plan.failed_step;
        return plan.error;
    }
    if (child_pidfd < 0) {
        int saved = errno;
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        return saved;
    }
    *pid = child;
    *pidfd = child_pidfd;
    *failed_step = 0;
    return 0;
}

int cps_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;
}

int cps_list_children(pid_t *pids, int capacity) {
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) return -errno;
    int count = 0;
    struct dirent *entry;
    char path[64];
    char buffer[4096];
    while ((entry = readdir(tasks)) != NULL && count < capacity) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", entry->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
        close(fd);
        if (got <= 0) continue;
        buffer[got] = '\0';
        char *cursor = buffer;
        while (*cursor != '\0' && count < capacity) {
            char *end;
            long value = strtol(cursor, &end, 10);
            if (end == cursor) break;
            pids[count++] = (pid_t)value;
            cursor = end;
            while (*cursor == ' ' || *cursor == '\n') cursor++;
        }
    }
    closedir(tasks);
    return count;
}

int cps_reap_if_exited(pid_t pid) {
    int status;
    pid_t rc;
    do {
        rc = waitpid(pid, &status, WNOHANG | __WALL);
    } while (rc < 0 && errno == EINTR);
    return rc == pid ? 1 : 0;
}

pid_t cps_exited_child(void) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    int rc;
    do {
        rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WALL);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return errno == ECHILD ? 0 : -errno;
    return info.si_pid;
}

#include <sys/epoll.h>

int cps_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}

void cps_name_this_thread(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof truncated, "%s", name);
    pthread_setname_np(pthread_self(), truncated);
}

static sigset_t termination_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

int cps_block_termination_signals(void) {
    sigset_t set = termination_signals();
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cps_termination_signalfd(void) {
    sigset_t set = termination_signals();
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int cps_read_signal(int fd) {
    struct signalfd_siginfo info;
    ssize_t count;
    do {
        count = read(fd, &info, sizeof info);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return errno == EAGAIN ? 0 : -errno;
    return count == (ssize_t)sizeof info ? (int)info.ssi_signo : 0;
}

int cps_set_this_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : errno;
}

int cps_take_process_nice(void) {
    int nice = 0;
    int error = process_nice(&nice);
    return error != 0 ? error : cps_set_this_thread_nice(nice);
}

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

int cps_epoll_wait(int epfd, int *fds, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count;
    do {
        count = epoll_wait(epfd, events, capacity, timeout_ms);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return -errno;
    for (int i = 0; i < count; i++) fds[i] = events[i].data.fd;
    return count;
}

static size_t release_table(const struct dl_phdr_info *info, ElfW(Addr) table, size_t length) {
    if (table == 0 || length == 0) return 0;
    // The loader may have made the dynamic section's addresses absolute; a link-time one is
    // smaller than the load address.
    if (table < info->dlpi_addr) table += info->dlpi_addr;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return 0;
    uintptr_t start = ((uintptr_t)table + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)table + length) & ~((uintptr_t)page - 1);
    if (end <= start) return 0;
    // Only inside one loaded segment that is not writable: its pages were never written.
    int inside = 0;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD) continue;
        uintptr_t low = info->dlpi_addr + header->p_vaddr, high = low + header->p_memsz;
        if (start >= low && end <= high) inside = (header->p_flags & PF_W) == 0;
    }
    if (!inside) return 0;
    return madvise((void *)start, end - start, MADV_DONTNEED) == 0 ? end - start : 0;
}

static int release_main_program_relocations(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    size_t *released = data;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type != PT_DYNAMIC) continue;
        const ElfW(Dyn) *entry = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
        ElfW(Addr) rela = 0, relr = 0;
        size_t rela_size = 0, relr_size = 0;
        for (; entry->d_tag != DT_NULL; entry++) {
            switch (entry->d_tag) {
            case DT_TEXTREL: return 1;  // relocations written into code: leave everything alone
            case DT_RELA: rela = entry->d_un.d_ptr; break;
            case DT_RELASZ: rela_size = entry->d_un.d_val; break;
#ifdef DT_RELR
            case DT_RELR: relr = entry->d_un.d_ptr; break;
            case DT_RELRSZ: relr_size = entry->d_un.d_val; break;
#endif
            default: break;
            }
        }
        *released += release_table(info, rela, rela_size) + release_table(info, relr, relr_size);
    }
    return 1;  // the first object is the program itself
}

size_t cps_release_relocation_table(void) {
    size_t released = 0;
    dl_iterate_phdr(release_main_program_relocations, &released);
    return released;
}

static int page_is_zero(const unsigned char *page, size_t length) {
    const uint64_t *word = (const uint64_t *)page;
    for (size_t i = 0; i < length / sizeof(uint64_t); i++) {
        if (word[i] != 0) return 0;
    }
    return 1;
}

size_t cps_release_zero_pages(void *address, size_t length) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || address == NULL || length == 0) return 0;
    uintptr_t start = ((uintptr_t)address + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)address + length) & ~((uintptr_t)page - 1);
    if (end <= start) return 0;
    size_t count = (end - start) / (size_t)page;
    unsigned char *resident = malloc(count);
    if (resident == NULL) return 0;
    // Only pages already in memory are read: reading the others would map them for nothing.
    if (mincore((void *)start, end - start, resident) != 0) {
        free(resident);
        return 0;
    }
    size_t released = 0;
    uintptr_t run = 0;
    for (size_t i = 0; i <= count; i++) {
        uintptr_t at = start + i * (size_t)page;
        int zero = i < count && (resident[i] & 1) && page_is_zero((const unsigned char *)at, (size_t)page);
        if (zero) {
            if (run == 0) run = at;
        } else if (run != 0) {
            if (madvise((void *)run, at - run, MADV_DONTNEED) == 0) released += at - run;
            run = 0;
        }
    }
    free(resident);
    return released;
}

int cps_find_symbol(const char *name, void **address, size_t *size) {
    void *found = dlsym(RTLD_DEFAULT, name);
    if (found == NULL) return -1;
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1(found, &info, (void **)&symbol, RTLD_DL_SYMENT) == 0 || symbol == NULL) return -1;
    *address = found;
    *size = (size_t)symbol->st_size;
    return 0;
}

void cps_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

int cps_set_heap_threshold(int trim, int bytes) {
#if defined(__GLIBC__)
    return mallopt(trim ? M_TRIM_THRESHOLD : M_MMAP_THRESHOLD, bytes) == 1 ? 1 : 0;
#else
    (void)trim;
    (void)bytes;
    return 0;
#endif
}

int cps_open_as(const char *path, int flags, mode_t mode, const cps_identity *identity) {
    // The thread's own groups, kept to be put back (at most 65536 on Linux).
    int own_count = getgroups(0, NULL);
    if (own_count < 0) return -1;
    gid_t *own = malloc(sizeof(gid_t) * (size_t)(own_count > 0 ? own_count : 1));
    if (own == NULL) return -1;
    if (getgroups(own_count, own) != own_count) {
        free(own);
        return -1;
    }
    uid_t own_fsuid = geteuid();
    gid_t own_fsgid = getegid();
    int fd = -1;
    int saved = 0;
    if (syscall(SYS_setgroups, (size_t)identity->group_count, identity->groups) != 0) {
        saved = errno;
    } else {
        // setfsuid/setfsgid return the previous value whether or not they changed it: read back.
        syscall(SYS_setfsgid, identity->gid);
        syscall(SYS_setfsuid, identity->uid);
        if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) != identity->uid
            || (gid_t)syscall(SYS_setfsgid, (gid_t)-1) != identity->gid) {
            saved = EPERM;
        } else {
            fd = open(path, flags, mode);
            saved = fd < 0 ? errno : 0;
        }
    }
    syscall(SYS_setfsuid, own_fsuid);
    syscall(SYS_setfsgid, own_fsgid);
    int restored = syscall(SYS_setgroups, (size_t)own_count, own) == 0
        && (uid_t)syscall(SYS_setfsuid, (uid_t)-1) == own_fsuid && (gid_t)syscall(SYS_setfsgid, (gid_t)-1) == own_fsgid;
    free(own);
    if (!restored) abort();
    errno = saved;
    return fd;
}
