#include "cli.h"
int cli_bench_decode(int argc, char **argv) { (void)argc, (void)argv; return CLI_EUSAGE; }
