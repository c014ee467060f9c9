/*
 * cidrlist.c: the words of an address-list key and the list files they
 * name (cidrlist.h).
 *
 * A list file is read whole (CIDRLIST_FILE_MAX at most, a regular file, so
 * that /dev/zero or a FIFO cannot hang a reload) and parsed line by line
 * in place; it is read again each time the config is built, so a reload
 * picks up its changes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidrlist.h"

#define WORD_SHOWN	64	/* of a bad word, in a message */

/* Up to WORD_SHOWN bytes of w for a message, control bytes as '?'. */
static const char *
cidrlist_shown(const char *w, char *buf)
{
	size_t i;

	for (i = 0; i < WORD_SHOWN && w[i] != '\0'; i++)
		buf[i] = (unsigned char)w[i] < 0x20 || w[i] == 0x7f ? '?' : w[i];
	buf[i] = '\0';
	return buf;
}

/* word parsed and added; file and line name it in a message (NULL, 0: none). */
static int
cidrlist_word(struct cidr_set *s, const char *word, const char *file,
    unsigned line, char *msg, size_t msglen)
{
	struct cidr_range r;
	char shown[WORD_SHOWN + 1];
	const char *why;

	if (cidr_parse(word, &r, &why) == -1) {
		if (file != NULL)
			snprintf(msg, msglen, "%s:%u: %s '%s'", file, line, why,
			    cidrlist_shown(word, shown));
		else
			snprintf(msg, msglen, "%s '%s'", why, cidrlist_shown(word, shown));
		return -1;
	}
	if (cidr_set_add(s, &r) == -1) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	return 0;
}

/* The whole of the file at path, NUL-terminated; NULL with msg filled in. */
static char *
cidrlist_slurp(const char *path, char *msg, size_t msglen)
{
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO without a writer must not hang the open. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CIDRLIST_FILE_MAX) {
		snprintf(msg, msglen, "%s: not a regular file of at most %d MiB", path,
		    CIDRLIST_FILE_MAX >> 20);
		goto out;
	}
	if ((text = malloc(st.st_size + 1)) == NULL) {
		snprintf(msg, msglen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		if ((n = read(fd, text + got, st.st_size - got)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(msg, msglen, "%s: %s", path, strerror(errno));
			free(text);
			text = NULL;
			goto out;
		}
		if (n == 0)
			break;		/* it shrank: take what is there */
		got += n;
	}
	text[got] = '\0';
	if (strlen(text) != got) {
		snprintf(msg, msglen, "%s: the file contains a NUL byte", path);
		free(text);
		text = NULL;
	}
out:
	if (fd != -1)
		close(fd);
	return text;
}

/* Each line of the list file at path added to s. */
static int
cidrlist_file(struct cidr_set *s, const char *path, char *msg, size_t msglen)
{
	char *text, *p, *next, *w, *e, shown[WORD_SHOWN + 1];
	unsigned line = 0;
	int rc = 0;

	if ((text = cidrlist_slurp(path, msg, msglen)) == NULL)
		return -1;
	for (p = text; *p != '\0' && rc == 0; p = next) {
		line++;
		if ((next = strchr(p, '\n')) != NULL)
			*next++ = '\0';
		else
			next = p + strlen(p);
		e = p + strcspn(p, "#");	/* no address holds a '#' */
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		*e = '\0';
		w = p + strspn(p, " \t");
		if (*w == '\0')
			continue;	/* blank, or a comment */
		if (w[strcspn(w, " \t\r")] != '\0') {
			snprintf(msg, msglen, "%s:%u: one address a line, not '%s'",
			    path, line, cidrlist_shown(w, shown));
			rc = -1;
			break;
		}
		rc = cidrlist_word(s, w, path, line, msg, msglen);
	}
	free(text);
	return rc;
}

int
cidrlist_add(struct cidr_set *s, const char *value, char *msg, size_t msglen)
{
	char *buf, *tok, *save = NULL;
	int rc = 0;

	if ((buf = strdup(value)) == NULL) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(buf, " \t", &save); tok != NULL && rc == 0;
	    tok = strtok_r(NULL, " \t", &save))
		rc = tok[0] == '/' ? cidrlist_file(s, tok, msg, msglen) :
		    cidrlist_word(s, tok, NULL, 0, msg, msglen);
	free(buf);
	return rc;
}
