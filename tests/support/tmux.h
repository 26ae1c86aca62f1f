/* A terminal driver for full-screen tools: tmux on a server of its own,
 * the pane captured and searched. */
#ifndef SHMBUS_TEST_TMUX_H
#define SHMBUS_TEST_TMUX_H

#include <stdbool.h>
#include <stddef.h>

extern char screen[16384];

/* tmux on its own server (sock); what it prints in screen. */
void tmux(const char *sock, const char *fmt, ...);
/* Wait up to 10 s for text on the pane of session "top". */
bool pane_shows(const char *sock, const char *text, bool escapes);
/* The line of screen that holds text. */
const char *pane_line(const char *text, char *line, size_t n);

#endif
