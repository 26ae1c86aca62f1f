// The public headers compile as C++ (no _Atomic, extern "C").
#include <shmbus/shmbus.h>
#include <shmbus/version.h>
#include <shmbus/bridge.h>
#include <shmbus/journal.h>

int main()
{
	shmbus_record_t r{};
	return (r.len != 0) || shmbus_strerror(SHMBUS_EINVAL)[0] == '\0';
}
