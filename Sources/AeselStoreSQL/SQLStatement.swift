package import Foundation

/// The two SQL dialects the stores speak: where their statements differ, and the column types of the
/// migrations.
package enum SQLDialect: Sendable {
    case sqlite, postgres

    /// The parameter marker of the value at `position` (from 1).
    func placeholder(_ position: Int) -> String {
        self == .sqlite ? "?" : "$\(position)"
    }

    /// Keys sort in byte order in both: SQLite's default collation is binary, PostgreSQL's is the locale's.
    package var keyType: String { self == .sqlite ? "TEXT" : #"TEXT COLLATE "C""# }
    package var doubleType: String { self == .sqlite ? "DOUBLE" : "DOUBLE PRECISION" }
    package var blobType: String { self == .sqlite ? "BLOB" : "BYTEA" }
    package var bigintType: String { self == .sqlite ? "INTEGER" : "BIGINT" }
    package var trueValue: String { self == .sqlite ? "1" : "TRUE" }
}

/// A value bound to a statement parameter.
package enum SQLValue: Sendable, Hashable {
    case text(String)
    case real(Double)
    case integer(Int64)
    case bool(Bool)
    case blob(Data)
    case null

    package init(_ value: Double?) {
        self = value.map(SQLValue.real) ?? .null
    }
}

/// SQL text with its bound values, written once for both dialects: an interpolated value is bound as a
/// parameter (`\(key)`), and only `\(sql: …)` splices text, for table and column names.
package struct SQLStatement: Sendable, ExpressibleByStringInterpolation {
    fileprivate enum Part: Sendable {
        case sql(String)
        case value(SQLValue)
    }

    fileprivate var parts: [Part]

    package init(stringLiteral value: String) {
        parts = [.sql(value)]
    }

    package init(stringInterpolation: StringInterpolation) {
        parts = stringInterpolation.parts
    }

    package struct StringInterpolation: StringInterpolationProtocol {
        fileprivate var parts: [Part] = []

        package init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(2 * interpolationCount + 1)
        }

        package mutating func appendLiteral(_ literal: String) {
            parts.append(.sql(literal))
        }

        package mutating func appendInterpolation(_ value: SQLValue) {
            parts.append(.value(value))
        }

        package mutating func appendInterpolation(_ value: String) {
            parts.append(.value(.text(value)))
        }

        package mutating func appendInterpolation(_ value: Int64) {
            parts.append(.value(.integer(value)))
        }

        package mutating func appendInterpolation(sql: String) {
            parts.append(.sql(sql))
        }

        package mutating func appendInterpolation(_ statement: SQLStatement) {
            parts += statement.parts
        }
    }

    /// The bound values, in the order of their placeholders.
    package var values: [SQLValue] {
        parts.compactMap { part in
            if case .value(let value) = part { value } else { nil }
        }
    }

    /// The text, with the dialect's placeholders.
    package func sql(_ dialect: SQLDialect) -> String {
        var text = ""
        var position = 0
        for part in parts {
            switch part {
            case .sql(let sql): text += sql
            case .value:
                position += 1
                text += dialect.placeholder(position)
            }
        }
        return text
    }

    /// `statements` one after the other, with `separator` between them.
    package static func joined(_ statements: [SQLStatement], separator: String) -> SQLStatement {
        var joined = SQLStatement(stringLiteral: "")
        for (index, statement) in statements.enumerated() {
            if index > 0 { joined.parts.append(.sql(separator)) }
            joined.parts += statement.parts
        }
        return joined
    }
}
