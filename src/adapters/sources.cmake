# Shared by the adapters: the stored record, dedup ids and the dedup window.
list(APPEND NM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/record.c
  ${CMAKE_CURRENT_LIST_DIR}/dedup.c
)
