#if canImport(Glibc)
    import Glibc
#endif

@main
enum SparkMesosExecutor {
    static let version = "0.1.0"

    static func main() async {
        let invocation: Invocation
        do {
            invocation = try CommandLineInterface.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            ProcessEnvironment.printError("Error: \(error.message)\nUsage: \(error.usage)")
            exit(64)
        }
        switch invocation {
        case .run(let options):
            exit(await Run(options: options).run())
        case .harness(let arguments):
            exit(HarnessLauncher.run(arguments))
        case .cacheList(let directory):
            exit(Cache(directory: directory).list())
        case .cachePrune(let directory, let maxBytes):
            exit(Cache(directory: directory).prune(maxBytes: maxBytes))
        case .cacheClear(let directory):
            exit(Cache(directory: directory).clear())
        case .help(let text):
            print(text, terminator: "")
            exit(0)
        case .version:
            print(version)
            exit(0)
        }
    }
}
