// The public headers compile as C++ (no _Atomic, extern "C").
#include <shmbus/shmbus.h>
#include <shmbus/version.h>
#include <shmbus/bridge.h>
#include <shmbus/journal.h>

// the load-time registration macros, one handler twice in one unit
static int on_rec(const shmbus_record_t *, void *) { return 0; }
static int book;
SHMBUS_HANDLER(HdrChannel, on_rec)
SHMBUS_HANDLER_CTX(HdrChannel, on_rec, &book)

int main()
{
	shmbus_record_t r{};
	return (r.len != 0) || shmbus_strerror(SHMBUS_EINVAL)[0] == '\0';
}
