public import AeselModel

/// Why a credential was not accepted, or a credential file could not be used.
public typealias AuthError = AeselError<AuthErrorCode>

public enum AuthErrorCode: String, AeselErrorCode {
    /// `missing`: the request carries no credential. `invalid`: a token that does not verify (signature,
    /// form, expiry, role), an unknown API key, or a wrong cluster secret. `unusable`: a secret or key
    /// file that cannot be read or is too weak.
    case missing, invalid, unusable
}
