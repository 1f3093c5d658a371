public import Hummingbird
import NIOCore
public import Prometheus

/// `GET /metrics`: the process's registry in Prometheus's text format; `update` records gauges first.
public func addMetricsRoute<Context: RequestContext>(to router: Router<Context>, registry: PrometheusCollectorRegistry, update: @escaping @Sendable () -> Void = {}) {
    router.get("/metrics") { _, _ in
        update()
        var text: [UInt8] = []
        registry.emit(into: &text)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}
