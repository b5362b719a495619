# Wire layer: pure codecs for every mesh on-wire format (no I/O).
list(APPEND NM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/header.c
  ${CMAKE_CURRENT_LIST_DIR}/frame.c
  ${CMAKE_CURRENT_LIST_DIR}/route.c
  ${CMAKE_CURRENT_LIST_DIR}/pingwave.c
  ${CMAKE_CURRENT_LIST_DIR}/control.c
  ${CMAKE_CURRENT_LIST_DIR}/membership.c
  ${CMAKE_CURRENT_LIST_DIR}/packet.c
)
