import AeselLocalCluster
import Crypto
import Foundation
import SwiftASN1
import X509

/// A throwaway certificate authority and a server certificate it signed for 127.0.0.1, ::1 and
/// localhost, as PEM files in a folder of their own: what the TLS tests give `--tls-certificate`,
/// `--tls-key` and `--tls-ca`, PostgreSQL's `ssl_cert_file` and etcd's `--cert-file`. Made in process
/// (swift-certificates), so the tests need no openssl.
package struct TestCertificates: Sendable {
    package let folder: String
    /// The authority's certificate: what clients trust.
    package let certificateAuthority: String
    /// The server's certificate, signed by the authority.
    package let certificate: String
    /// The server certificate's private key (PKCS #8).
    package let key: String

    /// Writes `ca.pem`, `server.pem` and `server-key.pem` into a new temporary folder.
    /// - Parameter name: the authority's common name, so that two sets are told apart.
    package init(name: String = "Aesel test") throws {
        folder = NSTemporaryDirectory() + "aesel-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let now = Date()
        let (notBefore, notAfter) = (now - 3600, now + 86_400)

        let authorityKey = P256.Signing.PrivateKey()
        let authorityName = try DistinguishedName { CommonName("\(name) CA") }
        let authorityPublicKey = Certificate.PublicKey(authorityKey.publicKey)
        let authority = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: authorityPublicKey, notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: authorityName, subject: authorityName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: authorityPublicKey)
            },
            issuerPrivateKey: .init(authorityKey))

        let serverKey = P256.Signing.PrivateKey()
        let loopbackV6 = [UInt8](repeating: 0, count: 15) + [1]
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: authorityName, subject: try DistinguishedName { CommonName("localhost") }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: authorityPublicKey).keyIdentifier)
                SubjectAlternativeNames([
                    .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice(loopbackV6))),
                ])
            },
            issuerPrivateKey: .init(authorityKey))

        certificateAuthority = folder + "/ca.pem"
        certificate = folder + "/server.pem"
        key = folder + "/server-key.pem"
        try authority.serializeAsPEM().pemString.write(toFile: certificateAuthority, atomically: true, encoding: .utf8)
        try server.serializeAsPEM().pemString.write(toFile: certificate, atomically: true, encoding: .utf8)
        try serverKey.pemRepresentation.write(toFile: key, atomically: true, encoding: .utf8)
    }

    /// The server options of a process that serves HTTPS with these files and trusts the authority.
    package var serverArguments: [String] {
        ["--tls-certificate", certificate, "--tls-key", key, "--tls-ca", certificateAuthority]
    }

    /// The files for a throwaway etcd or PostgreSQL.
    package var files: TLSFiles {
        TLSFiles(certificate: certificate, key: key, certificateAuthority: certificateAuthority)
    }

    package func remove() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}
