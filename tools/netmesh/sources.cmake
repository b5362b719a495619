list(APPEND NM_CLI_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/main.c
  ${CMAKE_CURRENT_LIST_DIR}/util.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_demo.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_bench.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_identity.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_token.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_stream.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_log.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_caps.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_db.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_node.c
  ${CMAKE_CURRENT_LIST_DIR}/cmd_channel.c
)
