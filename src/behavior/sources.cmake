list(APPEND NM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/bjson.c
  ${CMAKE_CURRENT_LIST_DIR}/numparse.c
  ${CMAKE_CURRENT_LIST_DIR}/tag.c
  ${CMAKE_CURRENT_LIST_DIR}/capset.c
  ${CMAKE_CURRENT_LIST_DIR}/predicate.c
  ${CMAKE_CURRENT_LIST_DIR}/pred_wire.c
  ${CMAKE_CURRENT_LIST_DIR}/pred_report.c
  ${CMAKE_CURRENT_LIST_DIR}/schema.c
  ${CMAKE_CURRENT_LIST_DIR}/diff.c
  ${CMAKE_CURRENT_LIST_DIR}/request.c
  ${CMAKE_CURRENT_LIST_DIR}/filter.c
  ${CMAKE_CURRENT_LIST_DIR}/index.c
  ${CMAKE_CURRENT_LIST_DIR}/subnet.c
  ${CMAKE_CURRENT_LIST_DIR}/channel.c ${CMAKE_CURRENT_LIST_DIR}/channel_guard.c ${CMAKE_CURRENT_LIST_DIR}/channel_rx.c
  ${CMAKE_CURRENT_LIST_DIR}/announce.c
  ${CMAKE_CURRENT_LIST_DIR}/announce_disc.c
)
