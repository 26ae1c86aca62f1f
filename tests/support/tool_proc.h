/*
 * The shmbus tool as a process of its own (not a shell, so that signals
 * reach it): started in the background, its output read back, its end
 * awaited within a bound.
 */
#ifndef SHMBUS_TEST_TOOL_PROC_H
#define SHMBUS_TEST_TOOL_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* The tool in the background (args end in NULL); its stdout and stderr go
 * to PREFIX.out, .err. */
pid_t tool_bg(const char *prefix, const char *const *args);
/* The file PREFIX.EXT into out. */
void slurp(const char *prefix, const char *ext);
void bg_remove(const char *prefix);
/* A child's exit status, or -1 if it had not ended within s seconds (then
 * it is killed): a tool that ignores a signal fails, never hangs, a test. */
int exit_within(pid_t pid, int s);
int lines_of(const char *text);
/* The tool (args end in NULL) with its stdout in a pipe that fills and
 * holds it in a write; SIGTERM then. Returns the lines it printed in all;
 * it must have ended within 5 s. */
uint64_t lines_after_sigterm(const char *const *args);

#endif
