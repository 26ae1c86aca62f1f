/* The library's version at run time (shmbus.h). */
#include "shmbus/shmbus.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *shmbus_version(void)
{
	return STR(SHMBUS_VERSION_MAJOR) "." STR(SHMBUS_VERSION_MINOR) "." STR(
		SHMBUS_VERSION_PATCH);
}

uint32_t shmbus_version_number(void)
{
	return SHMBUS_VERSION_NUMBER;
}

uint32_t shmbus_abi_version(void)
{
	return SHMBUS_ABI_VERSION;
}
