list(APPEND NM_CLI_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/bench.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_bus.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_crypto_primitives.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_crypto_session.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_redis.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_jetstream.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_redex.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_caps.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_cortex.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_mesh_base.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_mesh.c
  ${CMAKE_CURRENT_LIST_DIR}/bench_channels.c
)
