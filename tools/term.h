/* The terminal, for views that redraw in place (top, stat --watch). */
#ifndef SHMBUS_TOOLS_TERM_H
#define SHMBUS_TOOLS_TERM_H

#include <stdbool.h>
#include <stddef.h>

/* A line of painted text that starts with one of these is shown so. */
#define TERM_ALERT '\001' /* bold red: something is failing */
#define TERM_DIM '\002'	  /* dim: nobody home */

bool term_is_tty(void);
/* Full screen: keys without echo or line editing, the alternate screen,
 * no cursor. Restored by term_leave, at exit, and while suspended. */
void term_enter(void);
void term_leave(void);
/* Draw text over the screen from its top-left corner: each line cut to the
 * width and cleared to its end, lines past the height left out, the rest
 * of the screen cleared. */
void term_paint(const char *text, size_t len);
void term_size(int *rows, int *cols);
/* Wait up to seconds for a key: the key, 0 after the time or a resize, -1
 * when asked to stop (SIGINT, SIGTERM, SIGHUP). Ctrl-Z suspends with the
 * terminal restored, and full screen comes back on resume. */
int term_key(double seconds);

#endif
