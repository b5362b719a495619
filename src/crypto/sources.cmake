# Crypto layer: every .c file in src/crypto (BLAKE2s, KDF, identity, tokens,
# Noise, AEAD session, envelopes).
file(GLOB _nm_crypto_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
list(APPEND NM_SOURCES ${_nm_crypto_sources})
