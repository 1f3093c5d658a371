public import Configuration
import Foundation
import SystemPackage

/// Where a server process's options come from, highest precedence first: command-line flags, `AESEL_*`
/// environment variables (`http.port` is `AESEL_HTTP_PORT`), then an optional JSON file (`--config` or
/// `AESEL_CONFIG`, keys nested by their dots: `{"http": {"port": 8080}}`). Each option's one default is
/// in its component's `Configuration`.
public enum ConfigurationSources {
    /// - Parameters:
    ///   - flags: the options given on the command line, by key.
    ///   - file: the `--config` path, if given.
    public static func reader(
        flags: [AbsoluteConfigKey: ConfigValue], file: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ConfigReader {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flags),
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(["AESEL_STORE", "AESEL_AUTH_TOKEN_SECRET", "AESEL_CLUSTER_SECRET"]))
                .prefixKeys(with: "aesel"),
        ]
        if let path = file ?? environment["AESEL_CONFIG"] {
            providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(path)))
        }
        return ConfigReader(providers: providers)
    }
}
