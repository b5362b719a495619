#!/bin/sh
# `make install` works: install into a temporary prefix, then build and run
# the Quick Start against it through pkg-config, as a user would.
set -eu
build="$1"; src="$2"; extra="${3:-}"  # sanitizer flags of the build
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name netmesh.pc | head -n1)
test -n "$pc" || { echo "netmesh.pc not installed"; exit 1; }
test -f "$tmp/prefix/include/netmesh.h" || { echo "netmesh.h not installed"; exit 1; }
find "$tmp/prefix" -name netmeshConfig.cmake | grep -q . || { echo "CMake package not installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH="$(dirname "$pc")"
cc -std=c11 $extra -o "$tmp/quickstart" "$src/examples/quickstart.c" \
   $(pkg-config --cflags --libs netmesh jansson) -Wl,-rpath,"$libdir"
"$tmp/quickstart" | grep -q '"token":"hello"'
echo "installed netmesh builds and runs the Quick Start"
