#!/usr/bin/env bash
# An installed shmbus builds a program outside the tree, both through
# pkg-config and through find_package(shmbus), and the program runs; the
# same for the bridge library (shmbus-bridge.pc, find_package(shmbus
# COMPONENTS bridge) and shmbus::bridge) when it is built.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cat > "$work/app.c" <<'C'
#include <shmbus/shmbus.h>
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	char name[32];
	snprintf(name, sizeof(name), "inst%d", (int)getpid());
	shmbus_t *bus;
	int rc = shmbus_open(name, NULL, &bus);
	if (rc == 0) {
		shmbus_close(bus);
		shmbus_unlink(name);
	}
	printf("%s\n", rc ? shmbus_errmsg() : "ok");
	return rc != 0;
}
C
pc=$(find "$work/prefix" -name shmbus.pc)
export PKG_CONFIG_PATH=$(dirname "$pc")
# ck is not in the public headers: none of its flags (ck.pc's Cflags are
# -D__x86_64__ -I/usr/include/x86_64-linux-gnu) in a user's compile line
cflags=$(echo $(pkg-config --cflags shmbus))
[[ $cflags =~ ^-I[^\ ]*/include$ ]] ||
  { echo "pkg-config --cflags shmbus: '$cflags' is more than its -I"; exit 1; }
pkg-config --static --libs shmbus | grep -qw -- -lck ||
  { echo "pkg-config --static --libs shmbus lacks -lck"; exit 1; }
cc "$work/app.c" $(pkg-config --cflags --libs shmbus) \
   -Wl,-rpath,"$(pkg-config --variable=libdir shmbus)" -o "$work/app_pc"
"$work/app_pc"
mkdir "$work/cm"
cat > "$work/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(shmbus REQUIRED)
add_executable(app $work/app.c)
target_link_libraries(app shmbus::shmbus)
CM
cmake -S "$work/cm" -B "$work/cm/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cm/b" >/dev/null
"$work/cm/b/app"

# the bridge library, when built: its .pc and its CMake component
[[ -e $build/src/bridge/libshmbus_bridge.so ]] || { echo "1 passed, 0 failed"; exit 0; }
cat > "$work/bapp.c" <<'C'
#include <shmbus/bridge.h>
#include <stdio.h>
int main(void)
{
	shmbus_bridge_config_t *c;
	int rc = shmbus_bridge_config_new(&c);
	if (rc == 0) {
		rc = shmbus_bridge_config_set(c, "bus", "inst");
		shmbus_bridge_config_free(c);
	}
	printf("%s\n", rc ? shmbus_bridge_errmsg() : "bridge ok");
	return rc != 0;
}
C
pkg-config --exists shmbus-bridge || { echo "no shmbus-bridge.pc"; exit 1; }
cc "$work/bapp.c" $(pkg-config --cflags --libs shmbus-bridge) \
   -o "$work/bapp_pc"
# as from a system library directory: libshmbus_bridge.so finds libshmbus
# through the loader's path, not the program's RUNPATH
export LD_LIBRARY_PATH=$(pkg-config --variable=libdir shmbus)
"$work/bapp_pc"
mkdir "$work/cmb"
cat > "$work/cmb/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(bapp C)
find_package(shmbus REQUIRED COMPONENTS bridge)
add_executable(bapp $work/bapp.c)
target_link_libraries(bapp shmbus::bridge)
CM
cmake -S "$work/cmb" -B "$work/cmb/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmb/b" >/dev/null
"$work/cmb/b/bapp"
# a component that does not exist is refused, by name
mkdir "$work/cmx"
sed 's/COMPONENTS bridge/COMPONENTS nosuch/' "$work/cmb/CMakeLists.txt" > "$work/cmx/CMakeLists.txt"
if cmake -S "$work/cmx" -B "$work/cmx/b" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmx.log" 2>&1; then
  echo "find_package(shmbus COMPONENTS nosuch) succeeded"; exit 1
fi
grep -q nosuch "$work/cmx.log" || { cat "$work/cmx.log"; exit 1; }
echo "1 passed, 0 failed"
