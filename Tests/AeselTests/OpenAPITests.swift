import AeselBench
import Foundation
import Testing

/// docs/openapi.yaml describes exactly the routes the server answers: no route undocumented, no
/// documented route that is not served.
@Suite("OpenAPI spec", .timeLimit(.minutes(1)))
struct OpenAPITests {
    @Test("The spec's paths and methods are the served routes")
    func specMatchesRoutes() throws {
        let served = try Self.servedRoutes()
        try #require(!served.isEmpty, "`aesel routes` listed no route")
        let documented = try Self.documentedRoutes()
        try #require(!documented.isEmpty, "found no path under `paths:` in \(Self.specURL.path)")

        let undocumented = served.subtracting(documented).sorted()
        let notServed = documented.subtracting(served).sorted()
        #expect(undocumented.isEmpty, "served but missing from docs/openapi.yaml: \(undocumented.joined(separator: ", "))")
        #expect(notServed.isEmpty, "in docs/openapi.yaml but not served: \(notServed.joined(separator: ", "))")
    }

    /// The output of `aesel routes`: one `METHOD /path` a line.
    static func servedRoutes() throws -> Set<String> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.aeselExecutable())
        process.arguments = ["routes"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Read to the end before waiting, so the child never blocks on a full pipe.
        let data = try output.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "`aesel routes` exited with status \(process.terminationStatus)")
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
        return Set(lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// docs/openapi.yaml, beside the package's Tests folder.
    static let specURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Tests/AeselTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the package
        .appendingPathComponent("docs/openapi.yaml")

    static func documentedRoutes() throws -> Set<String> {
        try routes(inSpec: String(contentsOf: specURL, encoding: .utf8))
    }

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch"]

    /// The `METHOD /path` pairs of an OpenAPI document in block YAML, read line by line: under the
    /// top-level `paths:`, a path is a key indented exactly 2 spaces and a method a key indented exactly
    /// 4 spaces; the next top-level key ends the paths.
    static func routes(inSpec text: String) -> Set<String> {
        var routes: Set<String> = []
        var inPaths = false
        var path: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = String(rawLine)
            let content = line.trimmingCharacters(in: .whitespaces)
            if content.isEmpty || content.hasPrefix("#") { continue }
            let indent = line.prefix { $0 == " " }.count
            if indent == 0 {
                if inPaths { break }
                inPaths = content == "paths:"
                continue
            }
            guard inPaths, content.hasSuffix(":") else { continue }
            let key = String(content.dropLast())
            if indent == 2 {
                path = unquoted(key)
            } else if indent == 4, let path, methods.contains(key) {
                routes.insert("\(key.uppercased()) \(path)")
            }
        }
        return routes
    }

    /// A YAML key without its quotes, if it has them.
    private static func unquoted(_ key: String) -> String {
        for quote in ["'", "\""] where key.count >= 2 && key.hasPrefix(quote) && key.hasSuffix(quote) {
            return String(key.dropFirst().dropLast())
        }
        return key
    }
}
