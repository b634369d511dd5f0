/*
 * cmd_credentials: `pier credentials`. Placeholder until the provider chain
 * (src/aws/credentials.c) lands: it is filled in with the chain.
 */
#include "cli/commands.h"

int pier_cmd_credentials(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return pier_cli_fail("the credential provider chain is not built yet");
}
