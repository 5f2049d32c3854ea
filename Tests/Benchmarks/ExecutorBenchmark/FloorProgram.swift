// The floors that need a C program: compiled with `cc -O2 -static` when the benchmark starts, so
// every figure can be set against what this machine does at the same moment (its speed drifts).
//
//   floors               exits at once (the trivial program spawned and reaped)
//   floors pipe N        N 100-byte round trips through a forked echo child (4-byte length frames)
//   floors pipelined N   N 100-byte frames to the echo child, 16 in flight
//   floors post N        N sequential 350-byte POSTs on one keep-alive loopback connection to a
//                        forked server that answers 202
//   floors move N FROM TO N times, 100 ms after the last move: this process writes itself into TO's
//                        cgroup.procs (timed) and back into FROM's; the median of the timed moves
// Each mode prints one number: per second for pipe, pipelined and post, seconds for move.
let floorProgramSource = #"""
    #define _GNU_SOURCE
    #include <arpa/inet.h>
    #include <netinet/in.h>
    #include <netinet/tcp.h>
    #include <stdint.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/wait.h>
    #include <time.h>
    #include <unistd.h>

    static double now(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec + t.tv_nsec / 1e9;
    }

    static int readn(int fd, void *buffer, size_t count) {
        size_t done = 0;
        while (done < count) {
            ssize_t got = read(fd, (char *)buffer + done, count - done);
            if (got <= 0) return -1;
            done += (size_t)got;
        }
        return 0;
    }

    static int writen(int fd, const void *buffer, size_t count) {
        size_t done = 0;
        while (done < count) {
            ssize_t put = write(fd, (const char *)buffer + done, count - done);
            if (put <= 0) return -1;
            done += (size_t)put;
        }
        return 0;
    }

    /* A forked child that echoes length-prefixed frames; returns its pid. */
    static pid_t echo_child(int *to, int *from) {
        int down[2], up[2];
        if (pipe(down) || pipe(up)) exit(2);
        pid_t pid = fork();
        if (pid == 0) {
            close(down[1]);
            close(up[0]);
            char frame[65536];
            uint32_t length;
            while (readn(down[0], &length, 4) == 0 && length <= sizeof frame && readn(down[0], frame, length) == 0) {
                if (writen(up[1], &length, 4) || writen(up[1], frame, length)) break;
            }
            _exit(0);
        }
        close(down[0]);
        close(up[1]);
        *to = down[1];
        *from = up[0];
        return pid;
    }

    static double pipe_floor(long count, int window) {
        int to, from;
        pid_t child = echo_child(&to, &from);
        char frame[104];
        uint32_t length = 100;
        memcpy(frame, &length, 4);
        memset(frame + 4, 'x', 100);
        double start = now();
        long sent = 0, received = 0;
        while (sent < window && sent < count) {
            if (writen(to, frame, sizeof frame)) exit(3);
            sent++;
        }
        while (received < count) {
            if (readn(from, frame, sizeof frame)) exit(3);
            received++;
            if (sent < count) {
                if (writen(to, frame, sizeof frame)) exit(3);
                sent++;
            }
        }
        double elapsed = now() - start;
        close(to);
        close(from);
        waitpid(child, NULL, 0);
        return count / elapsed;
    }

    static double post_floor(long count) {
        int listener = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address;
        memset(&address, 0, sizeof address);
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (bind(listener, (struct sockaddr *)&address, size) || listen(listener, 1)) exit(2);
        getsockname(listener, (struct sockaddr *)&address, &size);
        pid_t child = fork();
        if (child == 0) {
            int connection = accept(listener, NULL, NULL);
            int one = 1;
            setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            static const char answer[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
            char buffer[8192];
            size_t have = 0;
            for (;;) {
                char *end = NULL;
                while ((end = memmem(buffer, have, "\r\n\r\n", 4)) == NULL) {
                    ssize_t got = read(connection, buffer + have, sizeof buffer - have);
                    if (got <= 0) _exit(0);
                    have += (size_t)got;
                }
                size_t head = (size_t)(end - buffer) + 4;
                char *field = memmem(buffer, head, "Content-Length: ", 16);
                size_t total = head + (field ? (size_t)atol(field + 16) : 0);
                while (have < total) {
                    ssize_t got = read(connection, buffer + have, sizeof buffer - have);
                    if (got <= 0) _exit(0);
                    have += (size_t)got;
                }
                if (writen(connection, answer, sizeof answer - 1)) _exit(0);
                memmove(buffer, buffer + total, have - total);
                have -= total;
            }
        }
        close(listener);
        int connection = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(connection, (struct sockaddr *)&address, sizeof address)) exit(2);
        int one = 1;
        setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char body[351];
        memset(body, 'x', 350);
        body[350] = 0;
        char request[1024];
        int length = snprintf(request, sizeof request,
            "POST /api/v1/executor HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 350\r\n\r\n%s", body);
        char answer[256];
        double start = now();
        for (long i = 0; i < count; i++) {
            if (writen(connection, request, (size_t)length)) exit(3);
            size_t have = 0;
            while (memmem(answer, have, "\r\n\r\n", 4) == NULL) {
                ssize_t got = read(connection, answer + have, sizeof answer - have);
                if (got <= 0) exit(3);
                have += (size_t)got;
            }
        }
        double elapsed = now() - start;
        close(connection);
        waitpid(child, NULL, 0);
        return count / elapsed;
    }

    static int move_self(const char *procs) {
        FILE *file = fopen(procs, "w");
        if (!file) return -1;
        int failed = fputs("0", file) < 0;
        return fclose(file) != 0 || failed ? -1 : 0;
    }

    static int compare_doubles(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
    }

    // A move into a cgroup after a quiet spell: the kernel-wide lock it write-locks may first wait
    // for an RCU grace period (unless the hierarchy is mounted with favordynmods).
    static double move_floor(long count, const char *from, const char *to) {
        double times[64];
        if (count > 64) count = 64;
        for (long i = 0; i < count; i++) {
            usleep(100000);
            double start = now();
            if (move_self(to)) exit(4);
            times[i] = now() - start;
            if (move_self(from)) exit(4);
        }
        qsort(times, (size_t)count, sizeof times[0], compare_doubles);
        return times[count / 2];
    }

    int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "move") == 0) {
            printf("%.9f\n", move_floor(atol(argv[2]), argv[3], argv[4]));
            return 0;
        }
        if (argc < 3) return 0;
        long count = atol(argv[2]);
        double value = 0;
        if (strcmp(argv[1], "pipe") == 0) value = pipe_floor(count, 1);
        else if (strcmp(argv[1], "pipelined") == 0) value = pipe_floor(count, 16);
        else if (strcmp(argv[1], "post") == 0) value = post_floor(count);
        else return 2;
        printf("%.1f\n", value);
        return 0;
    }
    """#
