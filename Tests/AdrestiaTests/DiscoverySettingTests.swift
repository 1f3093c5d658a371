import Adrestia
import Testing

@Suite("Discovery URLs")
struct DiscoverySettingTests {
    @Test("etcd:// is etcd over HTTP, etcds:// over HTTPS; both print as given, the cluster defaulting to aesel")
    func etcdSchemes() {
        #expect(DiscoverySetting("etcd://10.0.0.5:2379/prod") == .etcd(endpoint: "http://10.0.0.5:2379", cluster: "prod"))
        #expect(DiscoverySetting("etcds://10.0.0.5:2379/prod") == .etcd(endpoint: "https://10.0.0.5:2379", cluster: "prod"))
        #expect(DiscoverySetting("etcds://etcd.local:2379") == .etcd(endpoint: "https://etcd.local:2379", cluster: "aesel"))
        #expect(DiscoverySetting("etcds://etcd.local:2379")?.description == "etcds://etcd.local:2379/aesel")
        #expect(DiscoverySetting("etcd://etcd.local:2379/x")?.description == "etcd://etcd.local:2379/x")
        #expect(DiscoverySetting("https://adrestia.local:8080/") == .embedded(adrestia: "https://adrestia.local:8080"))
        for bad in ["etcds://", "etcds://h:1/a/b", "etcdss://h:1"] {
            #expect(DiscoverySetting(bad) == nil, "\(bad)")
        }
    }
}
