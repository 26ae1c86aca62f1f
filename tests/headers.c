/* Every public header, alone and together, compiles; the library links. */
#include <shmbus/shmbus.h>
#include <shmbus/version.h>
#include <shmbus/bridge.h>
#include <shmbus/journal.h>
#include <shmbus/shmbus.h> /* twice: include guards */

int main(void)
{
	return shmbus_strerror(SHMBUS_EBUSY)[0] == '\0';
}
