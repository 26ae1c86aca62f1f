/* The shmbus tool as a process of its own: see tool_proc.h. */
#include <fcntl.h>
#include <poll.h>

#include "tool_proc.h"
#include "tool_run.h"

int exit_within(pid_t pid, int s)
{
	int st;
	for (int i = 0; i < s * 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	child_status(pid);
	return -1;
}

int lines_of(const char *text)
{
	int n = 0;
	for (const char *p = text; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

pid_t tool_bg(const char *prefix, const char *const *args)
{
	char o[96], e[96];
	snprintf(o, sizeof(o), "%s.out", prefix);
	snprintf(e, sizeof(e), "%s.err", prefix);
	pid_t pid = test_fork();
	if (pid == 0) {
		const char *argv[16] = {"shmbus"};
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		int fo = open(o, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		int fe = open(e, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		dup2(fo, STDOUT_FILENO);
		dup2(fe, STDERR_FILENO);
		execv(SHMBUS_TOOL, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* A file into out. */
void slurp(const char *prefix, const char *ext)
{
	char path[96];
	snprintf(path, sizeof(path), "%s.%s", prefix, ext);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, sizeof(out) - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
}

void bg_remove(const char *prefix)
{
	char path[96];
	snprintf(path, sizeof(path), "%s.out", prefix);
	unlink(path);
	snprintf(path, sizeof(path), "%s.err", prefix);
	unlink(path);
}

uint64_t lines_after_sigterm(const char *const *args)
{
	int fo[2];
	cr_assert_eq(pipe(fo), 0);
	pid_t pid = test_fork();
	if (pid == 0) {
		const char *argv[16] = {"shmbus"};
		for (int i = 0; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		dup2(fo[1], STDOUT_FILENO);
		close(fo[0]);
		execv(SHMBUS_TOOL, (char *const *)argv);
		_exit(127);
	}
	close(fo[1]);
	struct pollfd pf = {.fd = fo[0], .events = POLLIN};
	cr_assert_gt(poll(&pf, 1, 20000), 0, "%s printed nothing", args[0]);
	usleep(200000);
	kill(pid, SIGTERM);
	uint64_t lines = 0;
	char buf[65536];
	ssize_t got;
	while ((got = read(fo[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < got; i++)
			lines += buf[i] == '\n';
	close(fo[0]);
	cr_expect_neq(exit_within(pid, 5), -1, "%s ignored SIGTERM", args[0]);
	return lines;
}
