#!/usr/bin/env bash
# An installed shmbus builds a program outside the tree, both through
# pkg-config and through find_package(shmbus), and the program runs; the
# same for the journal (shmbus-journal.pc, find_package(shmbus COMPONENTS
# journal) and shmbus::journal), a library of its own that the bus does
# not link, and for the bridge library (shmbus-bridge.pc,
# find_package(shmbus COMPONENTS bridge) and shmbus::bridge) when it is
# built.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# cmake_app NAME FIND_ARGS TARGET [ARG...]: a CMake project in $work/NAME
# builds $work/NAME.c against the installed package (find_package(shmbus
# FIND_ARGS), linking TARGET), and the program runs with ARGs
cmake_app() {
  local name=$1 find=$2 target=$3
  shift 3
  mkdir "$work/$name"
  cat > "$work/$name/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project($name C)
find_package(shmbus $find)
add_executable($name $work/$name.c)
target_link_libraries($name $target)
CM
  cmake -S "$work/$name" -B "$work/$name/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/$name/b" >/dev/null
  "$work/$name/b/$name" "$@"
}
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
cmake_app app REQUIRED shmbus::shmbus

# the journal: its own library; the bus's links no ISA-L
lib=$(pkg-config --variable=libdir shmbus)
# crash-test failpoints are the tests' library's alone
if nm "$lib"/libshmbus*.so "$lib"/libshmbus*.a 2>/dev/null | grep -q failpoint_hit; then
  echo "an installed library has crash-test failpoints"; exit 1
fi
if readelf -d "$lib/libshmbus.so" | grep NEEDED | grep -q isal; then
  echo "libshmbus.so links ISA-L: the journal belongs in libshmbus_journal"
  exit 1
fi
readelf -d "$lib/libshmbus_journal.so" | grep NEEDED | grep -q libshmbus.so ||
  { echo "libshmbus_journal.so does not name libshmbus.so"; exit 1; }
cat > "$work/japp.c" <<'C'
#include <shmbus/journal.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	(void)argc;
	shmbus_journal_t *j;
	int rc = shmbus_journal_open(argv[1], NULL, &j);
	if (rc == 0) {
		rc = shmbus_journal_append(j, 1, 0, 0, 7, "hello", 5);
		shmbus_journal_close(j);
	}
	printf("%s\n", rc ? shmbus_errmsg() : "journal ok");
	return rc != 0;
}
C
pkg-config --exists shmbus-journal || { echo "no shmbus-journal.pc"; exit 1; }
cc "$work/japp.c" $(pkg-config --cflags --libs shmbus-journal) \
   -Wl,-rpath,"$lib" -o "$work/japp_pc"
"$work/japp_pc" "$work/j1"
cmake_app japp "REQUIRED COMPONENTS journal" shmbus::journal "$work/j2"
# a static link of the two libraries: the journal's spill reader registers
# itself though nothing calls it (pkg-config --static pulls it in)
cat > "$work/spill.c" <<'C'
#include <shmbus/shmbus.h>
#include <stdio.h>
#include <unistd.h>
static int handled(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}
int main(int argc, char **argv)
{
	(void)argc;
	char name[32];
	snprintf(name, sizeof(name), "instsp%d", (int)getpid());
	shmbus_t *bus;
	shmbus_channel_t *ch;
	shmbus_sub_t *s;
	shmbus_channel_opts_t o = {.record_size = 8, .capacity = 64,
				   .stall_policy = SHMBUS_STALL_SPILL};
	shmbus_sub_opts_t so = {.name = "sp", .journal = argv[1]};
	int rc = shmbus_open(name, NULL, &bus);
	if (rc == 0) {
		rc = shmbus_channel_open(bus, "C", &o, &ch);
		if (rc == 0)
			rc = shmbus_subscribe(ch, handled, NULL, &so, &s);
		if (rc == 0)
			shmbus_sub_close(s, 0);
		shmbus_close(bus);
		shmbus_unlink(name);
	}
	printf("%s\n", rc ? shmbus_errmsg() : "spill subscriber ok");
	return rc != 0;
}
C
libs=" $(pkg-config --static --libs shmbus-journal) "
libs=${libs// -lshmbus_journal / -Wl,-Bstatic -lshmbus_journal -Wl,-Bdynamic }
libs=${libs// -lshmbus / -Wl,-Bstatic -lshmbus -Wl,-Bdynamic }
cc "$work/spill.c" $(pkg-config --cflags shmbus-journal) $libs -o "$work/spill_static"
"$work/spill_static" "$work/j2"

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
cmake_app bapp "REQUIRED COMPONENTS bridge" shmbus::bridge
# a component that does not exist is refused, by name
mkdir "$work/cmx"
sed 's/COMPONENTS bridge/COMPONENTS nosuch/' "$work/bapp/CMakeLists.txt" > "$work/cmx/CMakeLists.txt"
if cmake -S "$work/cmx" -B "$work/cmx/b" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/cmx.log" 2>&1; then
  echo "find_package(shmbus COMPONENTS nosuch) succeeded"; exit 1
fi
grep -q nosuch "$work/cmx.log" || { cat "$work/cmx.log"; exit 1; }
echo "1 passed, 0 failed"
