/* Each subcommand is one function in its own file src/cli/cmd_<name>.c; main.c dispatches.
 * argv[0] is the subcommand name; flags start at argv[1]. Returns the process exit code. */
#ifndef JL_CLI_COMMANDS_H
#define JL_CLI_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

extern const cli_command cli_commands[];

#endif
