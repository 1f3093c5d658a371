#ifndef AESEL_CLIBCRYPTO_H
#define AESEL_CLIBCRYPTO_H

// OpenSSL's libcrypto, all the event path's cryptography: AES-256-GCM with the key schedule kept between
// datagrams (a context is set up once per key, and each datagram sets only its 12-byte nonce), HKDF-SHA256
// for the session keys, and the original's AES-256-CBC.
#include <openssl/evp.h>
#include <openssl/kdf.h>

/// A context for sealing (`encrypt` 1) or opening (0) with a 32-byte key; NULL on failure.
static inline EVP_CIPHER_CTX *aesel_gcm_new(const unsigned char *key, int encrypt) {
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL) return NULL;
    if (EVP_CipherInit_ex(context, EVP_aes_256_gcm(), NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(context);
        return NULL;
    }
    return context;
}

/// Seals `length` bytes of `input` into `output` (the same length) and writes the 16-byte `tag`; the
/// associated data is `aad1` then `aad2`. Returns 1, or 0 on failure.
static inline int aesel_gcm_seal(
    EVP_CIPHER_CTX *context, const unsigned char *nonce, const unsigned char *aad1, int aad1Length,
    const unsigned char *aad2, int aad2Length, const unsigned char *input, int length, unsigned char *output,
    unsigned char *tag
) {
    int written = 0;
    if (EVP_EncryptInit_ex(context, NULL, NULL, NULL, nonce) != 1) return 0;
    if (EVP_EncryptUpdate(context, NULL, &written, aad1, aad1Length) != 1) return 0;
    if (EVP_EncryptUpdate(context, NULL, &written, aad2, aad2Length) != 1) return 0;
    if (length > 0 && EVP_EncryptUpdate(context, output, &written, input, length) != 1) return 0;
    if (EVP_EncryptFinal_ex(context, output + written, &written) != 1) return 0;
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

/// Opens `length` bytes of `input` into `output` when `tag` proves them and the associated data
/// authentic. Returns 1, or 0 when they are not (nothing in `output` may then be used).
static inline int aesel_gcm_open(
    EVP_CIPHER_CTX *context, const unsigned char *nonce, const unsigned char *aad1, int aad1Length,
    const unsigned char *aad2, int aad2Length, const unsigned char *input, int length, const unsigned char *tag,
    unsigned char *output
) {
    int written = 0;
    if (EVP_DecryptInit_ex(context, NULL, NULL, NULL, nonce) != 1) return 0;
    if (EVP_DecryptUpdate(context, NULL, &written, aad1, aad1Length) != 1) return 0;
    if (EVP_DecryptUpdate(context, NULL, &written, aad2, aad2Length) != 1) return 0;
    if (length > 0 && EVP_DecryptUpdate(context, output, &written, input, length) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1) return 0;
    return EVP_DecryptFinal_ex(context, output + written, &written) == 1;
}

/// HKDF-SHA256 (RFC 5869) of `secret` with `salt` and `info` into `outputLength` bytes of `output`.
/// Returns 1, or 0 on failure.
static inline int aesel_hkdf_sha256(
    const unsigned char *secret, int secretLength, const unsigned char *salt, int saltLength, const unsigned char *info,
    int infoLength, unsigned char *output, size_t outputLength
) {
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (context == NULL) return 0;
    int derived = EVP_PKEY_derive_init(context) == 1 && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1
        && EVP_PKEY_CTX_set1_hkdf_salt(context, salt, saltLength) == 1
        && EVP_PKEY_CTX_set1_hkdf_key(context, secret, secretLength) == 1
        && EVP_PKEY_CTX_add1_hkdf_info(context, info, infoLength) == 1
        && EVP_PKEY_derive(context, output, &outputLength) == 1;
    EVP_PKEY_CTX_free(context);
    return derived;
}

/// AES-256-CBC with PKCS#7 padding: encrypts (`encrypt` 1) or decrypts (0) `length` bytes of `input`
/// with a 32-byte key and 16-byte IV into `output`, which must hold `length + 16` bytes. Returns the
/// number of bytes written, or -1 (for decryption: not whole blocks, or padding that is not valid).
static inline int aesel_cbc(
    const unsigned char *key, const unsigned char *iv, int encrypt, const unsigned char *input, int length, unsigned char *output
) {
    EVP_CIPHER_CTX *context = EVP_CIPHER_CTX_new();
    if (context == NULL) return -1;
    int written = 0;
    int final = 0;
    int done = EVP_CipherInit_ex(context, EVP_aes_256_cbc(), NULL, key, iv, encrypt) == 1
        && (length == 0 || EVP_CipherUpdate(context, output, &written, input, length) == 1)
        && EVP_CipherFinal_ex(context, output + written, &final) == 1;
    EVP_CIPHER_CTX_free(context);
    return done ? written + final : -1;
}

#endif
