#!/usr/bin/env bash
# An installed shmbus builds a program outside the tree, both through
# pkg-config and through find_package(shmbus), and the program runs.
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
