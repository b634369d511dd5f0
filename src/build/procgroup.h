/*
 * procgroup: the process groups a build starts, and starting one.
 *
 * Each command runs in a new session, so it leads a process group of its
 * own and whatever it starts in the background stays in that group. A
 * pier_procgroup remembers every group started, so a timeout, a cancel or
 * the end of the build can signal all of them, and can tell whether any
 * still has a live member.
 *
 * Invariants: a group id is the pid of the command that leads it; ids are
 * only added. Costs: signalling is one kill(2) per group; the liveness check
 * reads /proc/<pid>/stat for every process on the machine (zombies do not
 * count), so it is for occasional polling, not tight loops.
 *
 * Ownership: the struct belongs to its holder (usually embedded, zeroed to
 * start); pier_procgroup_free releases the list.
 */
#ifndef PIER_PROCGROUP_H
#define PIER_PROCGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t *groups;      /* process groups started */
    size_t group_count; /* their number */
    size_t group_cap;   /* allocated */
} pier_procgroup;

/* Starts shell on script in a new session, with envp (a NULL-terminated
 * "NAME=VALUE" array, borrowed), in cwd, stdin from in_fd and stdout and
 * stderr to out_fd; every other descriptor is closed and signal handling is
 * reset. The child's group is remembered; its pid goes to *out. Only
 * async-signal-safe calls happen in the child (126: cwd missing, 127: the
 * shell did not start). */
int pier_procgroup_spawn(pier_procgroup *g, const char *shell, const char *script, char **envp,
                         const char *cwd, int in_fd, int out_fd, pid_t *out);
/* Sends sig to every group started (to the leader alone when it has not
 * yet called setsid). */
void pier_procgroup_signal(pier_procgroup *g, int sig);
/* True when a group started has a member that is not a zombie. */
bool pier_procgroup_alive(const pier_procgroup *g);
/* A wait status as a shell exit code: the status, or 128+N for signal N. */
int pier_procgroup_exit_code(int st);
/* Releases the list (the processes are left alone). Accepts NULL. */
void pier_procgroup_free(pier_procgroup *g);

#endif
