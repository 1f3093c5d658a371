package import AeselModel
internal import AeselStore
package import CoreMetrics
package import Foundation

/// One result row, read by column name: what GRDB's `Row` and PostgresNIO's `PostgresRandomAccessRow`
/// adapt to, so that each record is decoded once for both back ends.
///
/// Each method returns nil for SQL NULL and throws when the column is missing or holds another type.
package protocol SQLRow {
    func text(_ column: String) throws -> String?
    func real(_ column: String) throws -> Double?
    func integer(_ column: String) throws -> Int64?
    func bool(_ column: String) throws -> Bool?
    func blob(_ column: String) throws -> Data?
}

/// The counters of the SQL stores, created once per store.
package struct SQLStoreMetrics: Sendable {
    private let corruptRows: [String: Counter]

    package init(factory: any MetricsFactory = MetricsSystem.factory) {
        corruptRows = Dictionary(
            uniqueKeysWithValues: SQLTables.names.map { table in
                (table, Counter(label: "aesel_store_corrupt_rows_total", dimensions: [("table", table)], factory: factory))
            }
        )
    }

    func countCorruptRow(in table: String) {
        corruptRows[table]?.increment()
    }
}

/// Reads the columns of a row of `table` into model values. A column that does not decode is a
/// ``StoreErrorCode/corrupt`` error naming the table, the row's key and the column, and is counted: a
/// corrupt row is never read as an empty or default one.
package struct RowReader<Row: SQLRow> {
    private let row: Row
    private let table: String
    private let metrics: SQLStoreMetrics
    /// The row's key once read, for the messages.
    private var key = "(key unread)"

    package init(_ row: Row, table: String, metrics: SQLStoreMetrics) {
        self.row = row
        self.table = table
        self.metrics = metrics
    }

    /// The same reader, naming the row `key` in its errors.
    package func identified(by key: String) -> RowReader {
        var reader = self
        reader.key = key
        return reader
    }

    /// A session key kept in two columns, both null or both set.
    package func sessionKey(id idColumn: String, secret secretColumn: String) throws -> EventSessionKey? {
        guard let id = try row.integer(idColumn) else { return nil }
        guard let secret = try row.blob(secretColumn), secret.count == EventSessionKey.secretSize, id > 0 else {
            throw corrupt(secretColumn, "a session key id without a \(EventSessionKey.secretSize)-byte secret")
        }
        return EventSessionKey(id: UInt64(id), secret: [UInt8](secret))
    }

    package func string(_ column: String) throws -> String {
        try required(column) { try $0.text(column) }
    }

    package func double(_ column: String) throws -> Double {
        try required(column) { try $0.real(column) }
    }

    package func optionalDouble(_ column: String) throws -> Double? {
        do {
            return try row.real(column)
        } catch {
            throw corrupt(column, "is not a number", underlyingError: error)
        }
    }

    package func int64(_ column: String) throws -> Int64 {
        try required(column) { try $0.integer(column) }
    }

    package func bool(_ column: String) throws -> Bool {
        try required(column) { try $0.bool(column) }
    }

    /// A column of JSON text: lists, vectors, actions.
    package func json<Value: Decodable>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        let text = try string(column)
        do {
            return try JSONDecoder().decode(Value.self, from: Data(text.utf8))
        } catch {
            throw corrupt(column, "is not the JSON of a \(Value.self)", underlyingError: error)
        }
    }

    package func vector(_ column: String) throws -> SIMD3<Double> {
        try json(column)
    }

    /// A string that names a case of `Value`.
    package func enumeration<Value: RawRepresentable<String>>(_ column: String, as type: Value.Type = Value.self) throws -> Value {
        let text = try string(column)
        guard let value = Value(rawValue: text) else { throw corrupt(column, "is not a \(Value.self)") }
        return value
    }

    package func transform(_ column: String) throws -> Transform {
        let data = try required(column) { try $0.blob(column) }
        guard let transform = SQLColumns.transform(data) else {
            throw corrupt(column, "holds \(data.count) bytes, not a transform's 128")
        }
        return transform
    }

    private func required<Value>(_ column: String, _ read: (Row) throws -> Value?) throws -> Value {
        let value: Value?
        do {
            value = try read(row)
        } catch {
            throw corrupt(column, "does not hold a \(Value.self)", underlyingError: error)
        }
        guard let value else { throw corrupt(column, "is NULL") }
        return value
    }

    private func corrupt(_ column: String, _ problem: String, underlyingError: (any Error)? = nil) -> StoreError {
        metrics.countCorruptRow(in: table)
        return StoreError(.corrupt, "\(table) \(key): column \(column) \(problem)", underlyingError: underlyingError)
    }
}

/// The column encodings both back ends share: lists, vectors and actions as JSON text (readable with
/// the sqlite3 shell and psql), transforms as 16 little-endian float64s (cheap to write on every
/// write-behind flush).
package enum SQLColumns {
    package static func json<Value: Encodable>(_ value: Value) -> SQLValue {
        .text(jsonText(value))
    }

    package static func jsonText<Value: Encodable>(_ value: Value) -> String {
        // The codecs refuse non-finite numbers, so encoding does not fail; "[]" only keeps this non-throwing.
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }

    package static func blob(_ transform: Transform) -> Data {
        var data = Data(capacity: 128)
        for index in 0..<16 {
            withUnsafeBytes(of: transform.elements[index].bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    /// nil unless `data` is 128 bytes.
    static func transform(_ data: Data) -> Transform? {
        guard data.count == 128 else { return nil }
        var elements = SIMD16<Double>()
        data.withUnsafeBytes { bytes in
            for index in 0..<16 {
                elements[index] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
            }
        }
        return Transform(elements: elements)
    }
}
