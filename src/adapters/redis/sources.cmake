file(GLOB _nm_redis_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
list(APPEND NM_SOURCES ${_nm_redis_sources})
