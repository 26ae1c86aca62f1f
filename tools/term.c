/*
 * The terminal by ANSI escapes, not ncurses: the views are a table redrawn
 * in place, which needs five escapes (home, clear to end of line, clear
 * below, the alternate screen, cursor on/off) that every terminal of the
 * last thirty years understands, tmux included. ncurses would add a library
 * and terminfo to the tool for nothing a table needs, and its own screen
 * bookkeeping that we would have to keep in step with ours.
 */
#define _GNU_SOURCE
#include "term.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static struct termios saved;
static bool raw_on, screen_on, registered;
static volatile sig_atomic_t stop_sig, suspend_sig, resize_sig;

bool term_is_tty(void)
{
	return isatty(STDOUT_FILENO) == 1;
}

static void on_signal(int sig)
{
	if (sig == SIGTSTP)
		suspend_sig = 1;
	else if (sig == SIGWINCH)
		resize_sig = 1;
	else
		stop_sig = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: select ends at once */
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void put(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void term_enter(void)
{
	if (!registered) {
		atexit(term_leave);
		catch_signals();
		registered = true;
	}
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;
		/* keys one by one, unechoed; ISIG stays: Ctrl-C is SIGINT */
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		raw_on = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	put("\033[?1049h\033[?25l\033[H\033[2J");
	screen_on = true;
}

void term_leave(void)
{
	if (screen_on)
		put("\033[?25h\033[?1049l");
	screen_on = false;
	if (raw_on)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw_on = false;
}

void term_size(int *rows, int *cols)
{
	struct winsize ws;
	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row &&
	    ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* One line of text (without its newline) cut to cols, styled by its
 * first byte, then cleared to the end of the screen line. */
static void paint_line(FILE *f, const char *line, size_t n, int cols)
{
	const char *style = NULL;
	if (n && (line[0] == TERM_ALERT || line[0] == TERM_DIM)) {
		style = line[0] == TERM_ALERT ? "\033[1;31m" : "\033[2m";
		line++;
		n--;
	}
	if (n > (size_t)cols)
		n = (size_t)cols;
	if (style)
		fputs(style, f);
	fwrite(line, 1, n, f);
	fputs(style ? "\033[0m\033[K" : "\033[K", f);
}

void term_paint(const char *text, size_t len)
{
	int rows, cols, row = 0;
	term_size(&rows, &cols);
	char *frame = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&frame, &size);
	if (f == NULL)
		return;
	fputs("\033[H", f);
	const char *p = text, *end = text + len;
	while (p < end && row < rows) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (row > 0)
			fputs("\r\n", f);
		paint_line(f, p, n, cols);
		row++;
		p += n + (nl != NULL);
	}
	fputs("\033[J", f);
	fclose(f);
	put(frame);
	free(frame);
}

/* Ctrl-Z: give the terminal back, stop, take it again on resume. */
static void suspend(void)
{
	suspend_sig = 0;
	term_leave();
	signal(SIGTSTP, SIG_DFL);
	raise(SIGTSTP);
	catch_signals(); /* running again */
	term_enter();
}

static uint64_t mono_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int term_key(double seconds)
{
	uint64_t end = mono_now_ns() + (uint64_t)(seconds * 1e9);
	bool eof = false; /* end of input: wait out the time without it */
	for (;;) {
		if (stop_sig)
			return -1;
		if (suspend_sig) {
			suspend();
			return 0;
		}
		if (resize_sig) {
			resize_sig = 0;
			return 0;
		}
		uint64_t now = mono_now_ns();
		if (now >= end)
			return 0;
		/* naps of at most 10 ms: a signal that came after the looks
		 * above, before select began, is seen at the next one */
		uint64_t ns = end - now < 10000000 ? end - now : 10000000;
		struct timeval tv = {0, (suseconds_t)(ns / 1000)};
		fd_set in;
		FD_ZERO(&in);
		if (!eof)
			FD_SET(STDIN_FILENO, &in);
		int n = select(eof ? 0 : STDIN_FILENO + 1, &in, NULL, NULL,
			       &tv);
		if (n <= 0)
			continue; /* a nap ended, or a signal came */
		unsigned char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);
		if (r == 1)
			return c;
		if (r == 0)
			eof = true;
		else if (errno != EINTR)
			return 0;
	}
}
