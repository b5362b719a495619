# Crypto layer sources (BLAKE2s, KDF, identity, tokens, Noise, AEAD session,
# envelopes). Each helper appends its own files here.
list(APPEND NM_SOURCES
)
