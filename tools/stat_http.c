/*
 * shmbus stat BUS --listen ADDR:PORT: the Prometheus text served over HTTP,
 * for a Prometheus server to scrape directly. One connection at a time, a
 * fresh snapshot per request; GET /metrics (or /) answers 200, anything
 * else 404 or 405. A bare PORT (or :PORT) listens on 127.0.0.1 only: a
 * wider address is a choice the user writes out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "stat.h"

/* "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" into host and port. */
static int split(const char *spec, char *host, size_t hn, char *port,
		 size_t pn)
{
	const char *colon = strrchr(spec, ':');
	const char *p = colon ? colon + 1 : spec;
	size_t h = colon ? (size_t)(colon - spec) : 0;
	if (h >= 2 && spec[0] == '[' && spec[h - 1] == ']') {
		spec++;
		h -= 2;
	}
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) ||
	    strlen(p) >= pn || h >= hn)
		return -1;
	snprintf(host, hn, "%.*s", (int)h, h ? spec : "127.0.0.1");
	snprintf(port, pn, "%s", p);
	return 0;
}

/* A listening socket on spec, or after saying why -CLI_USAGE (not an
 * address) or -CLI_ERR (cannot listen there). */
static int listen_on(const char *spec)
{
	char host[256], port[8], shown[300];
	if (split(spec, host, sizeof(host), port, sizeof(port)))
		return -cli_usage_error("stat", "--listen '%s' is not "
						"ADDR:PORT or PORT", spec);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		return -cli_failf("stat", "--listen %s: %s", spec,
				  gai_strerror(rc));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) ||
	    listen(fd, 16)) {
		int e = errno;
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -cli_failf("stat", "cannot listen on %s:%s: %s", host,
				  port, strerror(e));
	}
	freeaddrinfo(ai);
	/* the port the kernel chose for :0, for whoever started us */
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char h[128], s[16];
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
	    getnameinfo((struct sockaddr *)&sa, len, h, sizeof(h), s,
			sizeof(s), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
		snprintf(shown, sizeof(shown), strchr(h, ':') ? "[%s]:%s"
							       : "%s:%s",
			 h, s);
		fprintf(stderr, "shmbus stat: serving /metrics on http://%s/\n",
			shown);
	}
	return fd;
}

/* The request line, read within a second; "" if none came. */
static void request_line(int fd, char *line, size_t n)
{
	size_t got = 0;
	line[0] = '\0';
	while (got + 1 < n && !strstr(line, "\r\n\r\n") &&
	       !strstr(line, "\n\n")) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1000) <= 0)
			break;
		ssize_t r = read(fd, line + got, n - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		line[got] = '\0';
	}
	line[strcspn(line, "\r\n")] = '\0';
}

static void reply(int fd, const char *status, const char *type,
		  const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, type, len);
	/* MSG_NOSIGNAL: a scraper that hung up is no reason to die */
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n && len)
		(void)!send(fd, body, len, MSG_NOSIGNAL);
}

static void serve(int fd, struct busview *v)
{
	char line[4096], method[16] = "", path[256] = "";
	request_line(fd, line, sizeof(line));
	sscanf(line, "%15s %255s", method, path);
	path[strcspn(path, "?")] = '\0';
	if (strcmp(path, "/metrics") && strcmp(path, "/")) {
		reply(fd, "404 Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		reply(fd, "405 Method Not Allowed", "text/plain", "GET\n", 4);
		return;
	}
	struct snapshot s;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL || busview_read(v, &s)) {
		if (f)
			fclose(f);
		free(text);
		const char *why = shmbus_errmsg();
		reply(fd, "503 Service Unavailable", "text/plain", why,
		      strlen(why));
		return;
	}
	stat_prometheus(f, &s);
	snapshot_free(&s);
	fclose(f);
	reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
	      strcmp(method, "HEAD") ? text : NULL,
	      strcmp(method, "HEAD") ? len : 0);
	free(text);
}

int stat_listen(struct busview *v, const char *spec)
{
	int lfd = listen_on(spec);
	if (lfd < 0)
		return -lfd;
	cli_catch_stop();
	int rc = 0;
	while (!cli_stopping()) {
		if (busview_gone(v)) {
			rc = cli_failf("stat", "bus '%s' was removed",
				       v->name);
			break;
		}
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(fd, v);
		close(fd);
	}
	close(lfd);
	return rc;
}
