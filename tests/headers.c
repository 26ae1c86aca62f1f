/* Every public header, alone and together, compiles; the library links. */
#include <shmbus/shmbus.h>
#include <shmbus/version.h>
#include <shmbus/bridge.h>
#include <shmbus/journal.h>
#include <shmbus/shmbus.h> /* twice: include guards */

/* the load-time registration macros, one handler twice in one unit */
static int on_rec(const shmbus_record_t *r, void *ctx)
{
	(void)r;
	(void)ctx;
	return 0;
}
static int book;
SHMBUS_HANDLER(HdrChannel, on_rec)
SHMBUS_HANDLER_NAMED_CTX("hdr.channel-2", on_rec, &book)

int main(void)
{
	return shmbus_strerror(SHMBUS_EBUSY)[0] == '\0';
}
