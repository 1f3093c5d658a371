import AeselClient
import AeselTesting

/// The test deployment's admin API key (``TestCredentials/shared``), for clients of tests about something
/// else than who may call.
let admin = AeselCredential.apiKey(TestCredentials.shared.adminKey)
