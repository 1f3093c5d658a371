import Foundation

/// Great-circle distances for scene queries.
enum Geography {
    static let earthRadiusKilometres = 6371.0

    /// The haversine distance between two points given in degrees.
    static func kilometres(from a: (latitude: Double, longitude: Double), to b: (latitude: Double, longitude: Double)) -> Double {
        let radians = Double.pi / 180
        let dLatitude = (b.latitude - a.latitude) * radians
        let dLongitude = (b.longitude - a.longitude) * radians
        let h = pow(sin(dLatitude / 2), 2) + cos(a.latitude * radians) * cos(b.latitude * radians) * pow(sin(dLongitude / 2), 2)
        return 2 * earthRadiusKilometres * asin(min(1, sqrt(h)))
    }
}
