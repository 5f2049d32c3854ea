import Foundation
import ProcessSupervision

/// Turns a local package path into the bytes the harness serves: a file as it is, a directory
/// packed as `.tar.gz` (by `tar`, as a person would pack it).
enum PackagePreparation {
    /// The served file name and its bytes.
    static func pack(_ path: String, into directory: String) async throws -> (name: String, bytes: [UInt8]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HarnessError.packageNotServed("\(path) does not exist")
        }
        let base = (path as NSString).lastPathComponent
        guard isDirectory.boolValue else {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw HarnessError.packageNotServed("cannot read \(path)")
            }
            return (base, Array(data))
        }
        let name = (base.isEmpty || base == "." ? "package" : base) + ".tar.gz"
        let archive = directory + "/" + name
        let tar = try ChildProcess.spawn(
            SpawnRequest(
                executable: "tar", arguments: ["tar", "-czf", archive, "-C", path, "."],
                environment: ["PATH=/usr/local/bin:/usr/bin:/bin"]))
        let termination = await tar.wait()
        guard termination.isSuccess, let data = FileManager.default.contents(atPath: archive) else {
            throw HarnessError.packageNotServed("tar -czf \(archive) -C \(path) . \(termination)")
        }
        return (name, Array(data))
    }
}
