/*
 * commands: the table of subcommands. Each lives in cmd_<name>.c and has
 * the signature of pier_cmd_fn: argv[0] is the command's name, the global
 * options are already removed. It returns the process exit code:
 * 0 ok, 1 error (message printed as "pier: <message>"), 2 usage.
 */
#ifndef PIER_COMMANDS_H
#define PIER_COMMANDS_H

#include <stdio.h>

typedef int (*pier_cmd_fn)(int argc, char **argv);

typedef struct {
    const char *name;    /* as typed */
    pier_cmd_fn run;     /* the command */
    const char *summary; /* one line for `pier --help` */
    const char *usage;   /* full help for `pier help NAME` and NAME --help */
} pier_command;

enum { PIER_EXIT_OK = 0, PIER_EXIT_ERROR = 1, PIER_EXIT_USAGE = 2 };

/* Prints "pier: <message>" on stderr (the last error when msg is NULL) and
 * returns PIER_EXIT_ERROR. */
int pier_cli_fail(const char *msg);
/* Prints "pier NAME: <message>" + a hint to `pier help NAME`; returns
 * PIER_EXIT_USAGE. */
int pier_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help. */
int pier_cli_wants_help(int argc, char **argv);
/* Prints a command's usage to f. */
void pier_cli_print_usage(FILE *f, const char *cmd);

#define PIER_COMMAND_DECL(name) int pier_cmd_##name(int argc, char **argv);
PIER_COMMAND_DECL(credentials)
PIER_COMMAND_DECL(build)
PIER_COMMAND_DECL(serve)
PIER_COMMAND_DECL(changed)
PIER_COMMAND_DECL(deploy)
PIER_COMMAND_DECL(invalidate)
PIER_COMMAND_DECL(up)
PIER_COMMAND_DECL(run)
PIER_COMMAND_DECL(status)
PIER_COMMAND_DECL(logs)

#endif
