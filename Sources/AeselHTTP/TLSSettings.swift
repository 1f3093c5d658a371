import AeselModel
public import Configuration
public import NIOSSL

/// A process's TLS files. With a certificate and key, its HTTP listener serves only HTTPS; the
/// certificate authorities are what its own `https://` calls (announcements, Adrestia's calls to pairs,
/// etcd) and a verifying PostgreSQL connection trust instead of the system's roots.
public struct TLSSettings: Sendable, Equatable {
    /// PEM: the server's certificate, then any intermediates.
    public var certificatePath: String?
    /// PEM: the certificate's private key.
    public var keyPath: String?
    /// PEM: the certificate authorities to trust; nil for the system's.
    public var certificateAuthorityPath: String?

    public init(certificatePath: String? = nil, keyPath: String? = nil, certificateAuthorityPath: String? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.certificateAuthorityPath = certificateAuthorityPath
    }

    /// Whether the listener serves HTTPS, so the URLs others are given start with `https://`.
    public var servesTLS: Bool { certificatePath != nil }

    /// `https` or `http`, for the base URLs this process advertises.
    public var scheme: String { servesTLS ? "https" : "http" }

    /// The listener's TLS configuration; nil without a certificate.
    public func serverConfiguration() throws -> TLSConfiguration? {
        guard let certificatePath, let keyPath else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map(NIOSSLCertificateSource.certificate)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
    }

    /// A client configuration that verifies servers against `certificateAuthorityPath` (or the system's
    /// roots) and their names.
    public func clientConfiguration() throws -> TLSConfiguration {
        try Self.clientConfiguration(trusting: certificateAuthorityPath)
    }

    public static func clientConfiguration(trusting certificateAuthorityPath: String?) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let certificateAuthorityPath {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificateAuthorityPath))
        }
        return configuration
    }

    /// ## Configuration keys
    /// - `tls.certificate`, `tls.key` (strings, optional, both or neither): PEM files; with them the HTTP
    ///   listener serves HTTPS only.
    /// - `tls.ca` (string, optional): a PEM bundle of the certificate authorities the process's own HTTPS
    ///   calls and `sslmode=verify-*` PostgreSQL connections trust, instead of the system's.
    ///
    /// The files are read here, so a missing or unreadable file, or a key that is not the certificate's,
    /// stops the process at start.
    public init(reader: ConfigReader) throws {
        self.init(
            certificatePath: reader.string(forKey: "tls.certificate"), keyPath: reader.string(forKey: "tls.key"),
            certificateAuthorityPath: reader.string(forKey: "tls.ca"))
        guard (certificatePath == nil) == (keyPath == nil) else {
            throw ConfigurationError(key: certificatePath == nil ? "tls.certificate" : "tls.key", reason: "TLS needs both a certificate and its key")
        }
        do {
            if let server = try serverConfiguration() { _ = try NIOSSLContext(configuration: server) }
        } catch {
            throw ConfigurationError(key: "tls.certificate", reason: "cannot use \(certificatePath ?? "") with the key \(keyPath ?? ""): \(error)")
        }
        do {
            _ = try clientConfiguration()
        } catch {
            throw ConfigurationError(key: "tls.ca", reason: "cannot read certificates from \(certificateAuthorityPath ?? ""): \(error)")
        }
    }
}
