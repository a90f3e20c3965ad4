/* cli_recall.h: the associative-recall commands (cli_recall.c): `attn train recall` and the
 * recall branch of `attn eval`. Uses only the public headers. */
#ifndef ATTN_CLI_RECALL_H
#define ATTN_CLI_RECALL_H

int cli_train_recall(int argc, char **argv);
/* attn eval --model DIR of a recall checkpoint: argv as cli_eval's. */
int cli_eval_recall(int argc, char **argv);
/* 1 if dir's config.json names a recall model (prints nothing; the checkpoint need not load). */
int cli_is_recall(const char *dir);

#endif
