import CProcessSpawn

/// pipe2(2) with `O_CLOEXEC`: both ends are close-on-exec from the start, so no spawn made
/// meanwhile on another thread can inherit them (Glibc's Swift overlay does not export pipe2).
/// `fds` gets the read end, then the write end; returns 0 or errno.
public func makeCloseOnExecPipe(_ fds: inout [Int32]) -> Int32 {
    precondition(fds.count == 2, "a pipe has two ends")
    return cps_pipe_cloexec(&fds)
}
