/* Prometheus text, checked by the exposition format's rules: names,
 * label escapes, a TYPE before each family, counters ending in _total, a
 * family never split, no series twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

struct prom {
	char typed[128][96], type[128][16], done[128][96], series[1024][256];
	int n_typed, n_done, n_series;
	char current[96];
};

static bool name_ok(const char *s, size_t n, bool colon)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  c == '_' || (colon && c == ':') ||
			  (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return n > 0;
}

/* A quoted label value with only \\, \" and \n escapes; p after it. */
static bool label_value_ok(const char **p)
{
	const char *s = *p;
	if (*s++ != '"')
		return false;
	for (; *s && *s != '"'; s++)
		if (*s == '\\' && (s[1] == '\\' || s[1] == '"' || s[1] == 'n'))
			s++;
		else if (*s == '\\' || *s == '\n')
			return false;
	*p = s + 1;
	return *s == '"';
}

static int find(char (*list)[96], int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return i;
	return -1;
}

static bool prom_comment(struct prom *st, const char *line, char *why)
{
	char kw[8], name[96], rest[64];
	if (sscanf(line, "# %7s %95s %63s", kw, name, rest) < 2)
		return true; /* a plain comment */
	if (!strcmp(kw, "TYPE")) {
		if (find(st->typed, st->n_typed, name) >= 0)
			return sprintf(why, "second TYPE for %s", name), false;
		if (strcmp(rest, "counter") && strcmp(rest, "gauge") &&
		    strcmp(rest, "summary") && strcmp(rest, "histogram") &&
		    strcmp(rest, "untyped"))
			return sprintf(why, "type '%s'", rest), false;
		snprintf(st->typed[st->n_typed], 96, "%s", name);
		snprintf(st->type[st->n_typed++], 16, "%.15s", rest);
	}
	return true;
}

/* The family a sample belongs to: its name, or a summary's base name. */
static int family(struct prom *st, const char *name)
{
	int i = find(st->typed, st->n_typed, name);
	static const char *const suffix[] = {"_sum", "_count", "_bucket"};
	for (int k = 0; i < 0 && k < 3; k++) {
		size_t n = strlen(name), sl = strlen(suffix[k]);
		char base[96];
		if (n <= sl || strcmp(name + n - sl, suffix[k]))
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(n - sl), name);
		i = find(st->typed, st->n_typed, base);
	}
	return i;
}

static bool prom_sample(struct prom *st, const char *line, char *why)
{
	const char *p = line;
	size_t n = strcspn(p, "{ ");
	char name[96];
	snprintf(name, sizeof(name), "%.*s", (int)n, p);
	if (!name_ok(p, n, true))
		return sprintf(why, "metric name '%s'", name), false;
	int fam = family(st, name);
	if (fam < 0)
		return sprintf(why, "no TYPE before %s", name), false;
	if (!strcmp(st->type[fam], "counter") &&
	    (n < 6 || strcmp(name + n - 6, "_total")))
		return sprintf(why, "counter %s without _total", name), false;
	if (strcmp(st->current, st->typed[fam])) { /* a new family */
		if (find(st->done, st->n_done, st->typed[fam]) >= 0)
			return sprintf(why, "%s split", name), false;
		if (st->current[0])
			strcpy(st->done[st->n_done++], st->current);
		strcpy(st->current, st->typed[fam]);
	}
	p += n;
	if (*p == '{') {
		for (p++; *p != '}';) {
			size_t ln = strcspn(p, "=");
			if (!name_ok(p, ln, false) || p[ln] != '=')
				return sprintf(why, "label in %s", line), false;
			p += ln + 1;
			if (!label_value_ok(&p))
				return sprintf(why, "label value in %s", line),
				       false;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return sprintf(why, "labels of %s", line),
				       false;
		}
		p++;
	}
	size_t key = (size_t)(p - line);
	for (int i = 0; i < st->n_series; i++)
		if (!strncmp(st->series[i], line, key) &&
		    st->series[i][key] == '\0')
			return sprintf(why, "series twice: %s", line), false;
	snprintf(st->series[st->n_series++], 256, "%.*s", (int)key, line);
	char *end;
	if (*p++ != ' ')
		return sprintf(why, "no value: %s", line), false;
	strtod(p, &end);
	if (end == p || (*end && *end != ' '))
		return sprintf(why, "value of %s", line), false;
	return true;
}

bool prom_ok(const char *text, char *why)
{
	static struct prom st;
	memset(&st, 0, sizeof(st));
	char line[1024];
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		p += n + (p[n] == '\n');
		if (n == 0)
			continue;
		if (!(line[0] == '#' ? prom_comment(&st, line, why)
				     : prom_sample(&st, line, why)))
			return false;
	}
	return true;
}
