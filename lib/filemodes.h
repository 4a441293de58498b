/* The StrictModes rule for a path that goes through symbolic links, shared by the secret
 * reader (secret.c: a PIN or client-secret file behind an unsafe link is refused) and the
 * configuration check (filemodes.c: the same finding for every file a config names). */
#ifndef PHC_FILEMODES_H
#define PHC_FILEMODES_H

#include <stddef.h>

/* Walks the absolute path component by component, following symbolic links (at most 40),
 * as the kernel would. Every link met must belong to root or to this process's user; the
 * final file and every directory a name is looked up in, on the link's side and on the
 * target's, must belong to root or to this user and be writable by neither group nor
 * others (a sticky directory such as /tmp may be writable by others).
 *
 * Returns 0 with real (size realsz) set to the path with no link left and *linked set when a
 * link was followed; *unsafe is then 1 with why (size whysz) naming the first element that
 * breaks the rule, its owner or mode, or 0. Returns -1 with errno set when the path cannot be
 * walked (ENOENT, ELOOP, ENAMETOOLONG, EACCES, EINVAL for a relative path). */
int phc__path_walk(const char *path, char *real, size_t realsz, int *linked, int *unsafe, char *why,
                   size_t whysz);

#endif
