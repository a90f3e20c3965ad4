/* attn: the command-line tool. Subcommands live in their own files (cli_*.c). */
#include <stdio.h>
#include <string.h>

#include "attn/attn.h"

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: attn <command> [options]\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("attn %s (%s)\n", ATTN_VERSION_STRING, attn_get_isa());
        return 0;
    }
    fprintf(stderr, "attn: unknown command '%s' (see attn --help)\n", argv[1]);
    return 2;
}
