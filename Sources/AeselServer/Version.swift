/// `aesel --version`: raised with each release of the wire formats, routes or options.
public let aeselVersion = "0.12.0"
