public import FetchPolicy

/// Lets tasks wait for the executor's package: the fetch starts as soon as the executor knows its
/// configuration (it calls ``package()`` from its own run group), every task awaits the same result,
/// and a failed fetch is handed to the tasks waiting for it and then forgotten, so the next task
/// tries again: no poisoned result is kept.
///
/// The fetch runs in the task of the first caller; later callers wait for it. No task is spawned here.
public actor PackageGate {
    private enum State {
        case idle
        case running([CheckedContinuation<Result<FetchedPackage, FetchError>, Never>])
        case ready(FetchedPackage)
    }

    private let fetch: @Sendable () async throws(FetchError) -> FetchedPackage
    private var state = State.idle

    /// `fetch` is typically `{ try await fetcher.fetch(request, into: sandbox) }`.
    public init(fetch: @escaping @Sendable () async throws(FetchError) -> FetchedPackage) {
        self.fetch = fetch
    }

    /// The fetched package, fetching it (again, after a failure) when no fetch is running.
    public func package() async throws(FetchError) -> FetchedPackage {
        switch state {
        case .ready(let package):
            return package
        case .running(var waiters):
            let result = await withCheckedContinuation { continuation in
                waiters.append(continuation)
                state = .running(waiters)
            }
            return try result.get()
        case .idle:
            state = .running([])
            let result: Result<FetchedPackage, FetchError>
            do throws(FetchError) {
                result = .success(try await fetch())
            } catch {
                result = .failure(error)
            }
            guard case .running(let waiters) = state else { return try result.get() }
            switch result {
            case .success(let package): state = .ready(package)
            case .failure: state = .idle
            }
            for waiter in waiters { waiter.resume(returning: result) }
            return try result.get()
        }
    }

    /// The package if it is ready, without waiting or fetching.
    public var readyPackage: FetchedPackage? {
        if case .ready(let package) = state { return package }
        return nil
    }
}
