/* A terminal driver for full-screen tools: see tmux.h. */
#include "tmux.h"
#include "tool_run.h"

char screen[16384];

void tmux(const char *sock, const char *fmt, ...)
{
	char program[128];
	va_list ap;
	snprintf(program, sizeof(program), "exec 2>/dev/null; tmux -L %s", sock);
	va_start(ap, fmt);
	vrun(screen, sizeof(screen), program, fmt, ap);
	va_end(ap);
}

bool pane_shows(const char *sock, const char *text, bool escapes)
{
	for (int i = 0; i < 200; i++) {
		tmux(sock, "capture-pane -p %s -t top", escapes ? "-e" : "");
		if (strstr(screen, text))
			return true;
		usleep(50000);
	}
	return false;
}

const char *pane_line(const char *text, char *line, size_t n)
{
	const char *p = strstr(screen, text);
	if (p == NULL)
		return "";
	while (p > screen && p[-1] != '\n')
		p--;
	snprintf(line, n, "%.*s", (int)strcspn(p, "\n"), p);
	return line;
}
