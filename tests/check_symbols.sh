#!/bin/sh
# Every symbol libnetmesh.so exports must be public API: nm_ prefixed.
# Internals (nmi_), statics and third-party code must stay hidden.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
      grep -v -E '^(nm_|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
count=$(nm -D --defined-only "$lib" | awk '$3 ~ /^nm_/' | wc -l)
if [ -n "$bad" ]; then
  echo "exported symbols outside the nm_ namespace:"; echo "$bad"; exit 1
fi
if [ "$count" -lt 20 ]; then
  echo "only $count nm_ symbols exported: visibility is broken"; exit 1
fi
echo "$count exported symbols, all nm_-prefixed"
