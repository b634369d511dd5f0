/*
 * procgroup: see procgroup.h.
 *
 * The child of pier_procgroup_spawn runs between fork and execve, in a
 * process that may have inherited locks held by other threads: it calls
 * only async-signal-safe functions (setsid, sigaction, dup2, chdir,
 * close_range, execve, write, _exit) and allocates nothing; the argument
 * and environment arrays are built before the fork.
 *
 * Liveness: kill(-g, 0) succeeds while a zombie is left in the group, so
 * pier_procgroup_alive reads the state and group of each process in /proc
 * instead (kill(-g, 0) only when /proc cannot be opened).
 */
#include "build/procgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"

static void groups_add(pier_procgroup *g, pid_t id)
{
    if (g->group_count == g->group_cap) {
        g->group_cap = g->group_cap ? g->group_cap * 2 : 16;
        g->groups = pier_realloc(g->groups, g->group_cap * sizeof *g->groups);
    }
    g->groups[g->group_count++] = id;
}

void pier_procgroup_signal(pier_procgroup *g, int sig)
{
    for (size_t i = 0; i < g->group_count; i++)
        if (kill(-g->groups[i], sig) != 0 && errno == ESRCH)
            kill(g->groups[i], sig); /* the child may not have called setsid yet */
}

/* True when process group g has a member that is not a zombie (a zombie
 * still counts for kill(-g, 0), so /proc is read instead). */
static bool group_alive(pid_t g)
{
    DIR *d = opendir("/proc");
    if (!d)
        return kill(-g, 0) == 0;
    bool alive = false;
    struct dirent *de;
    while (!alive && (de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *close_paren = strrchr(buf, ')');
        char state;
        long ppid, pgrp;
        if (close_paren && sscanf(close_paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3 &&
            pgrp == (long)g && state != 'Z' && state != 'X')
            alive = true;
    }
    closedir(d);
    return alive;
}

bool pier_procgroup_alive(const pier_procgroup *g)
{
    for (size_t i = 0; i < g->group_count; i++)
        if (group_alive(g->groups[i]))
            return true;
    return false;
}

int pier_procgroup_exit_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

int pier_procgroup_spawn(pier_procgroup *g, const char *shell, const char *script, char **envp,
                         const char *cwd, int in_fd, int out_fd, pid_t *out)
{
    char *argv[] = {(char *)shell, (char *)script, NULL};
    pid_t pid = fork();
    if (pid < 0)
        return pier_error_set_errno(PIER_EIO, "starting %s", shell);
    if (pid == 0) {
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                sigaction(s, &dfl, NULL);
        dup2(in_fd, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        if (chdir(cwd) != 0) {
            static const char msg[] = "pier: cannot enter the build's working directory\n";
            ssize_t w = write(2, msg, sizeof msg - 1);
            (void)w;
            _exit(126);
        }
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        execve(shell, argv, envp);
        static const char msg[] = "pier: cannot run the build shell\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    groups_add(g, pid);
    *out = pid;
    return 0;
}

void pier_procgroup_free(pier_procgroup *g)
{
    if (!g)
        return;
    free(g->groups);
    memset(g, 0, sizeof *g);
}
