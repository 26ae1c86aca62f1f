/* Prometheus text, checked by the exposition format's rules. */
#ifndef SHMBUS_TEST_PROM_H
#define SHMBUS_TEST_PROM_H

#include <stdbool.h>

/* Check text by the exposition format; why says what is wrong. */
bool prom_ok(const char *text, char *why);

#endif
