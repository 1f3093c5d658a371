import AeselLocalCluster
import AeselTesting
import Foundation
import Testing

/// docs/openapi.yaml describes exactly the routes `aesel serve` answers, and docs/adrestia.yaml those
/// Adrestia answers itself: no route undocumented, no documented route that is not served.
@Suite("OpenAPI spec", .timeLimit(.minutes(1)))
struct OpenAPITests {
    enum Server: String, CaseIterable, CustomTestStringConvertible {
        case serve = "openapi.yaml"
        case adrestia = "adrestia.yaml"

        var testDescription: String { "docs/\(rawValue)" }
        var routesArguments: [String] { self == .adrestia ? ["routes", "--adrestia"] : ["routes"] }
    }

    @Test("The spec's paths and methods are the served routes", arguments: Server.allCases)
    func specMatchesRoutes(server: Server) throws {
        let served = try Self.servedRoutes(server)
        try #require(!served.isEmpty, "`aesel routes` listed no route")
        let specURL = Self.docsURL.appendingPathComponent(server.rawValue)
        let documented = Self.routes(inSpec: try String(contentsOf: specURL, encoding: .utf8))
        try #require(!documented.isEmpty, "found no path under `paths:` in \(specURL.path)")

        let undocumented = served.subtracting(documented).sorted()
        let notServed = documented.subtracting(served).sorted()
        #expect(undocumented.isEmpty, "served but missing from docs/\(server.rawValue): \(undocumented.joined(separator: ", "))")
        #expect(notServed.isEmpty, "in docs/\(server.rawValue) but not served: \(notServed.joined(separator: ", "))")
    }

    /// The output of `aesel routes`: one `METHOD /path` a line.
    static func servedRoutes(_ server: Server) throws -> Set<String> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.aeselExecutable())
        process.arguments = server.routesArguments
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

    /// The docs folder, beside the package's Tests folder.
    static let docsURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Tests/IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the package
        .appendingPathComponent("docs")

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
