/* cli_vision.h: the visual-attention commands (cli_vision.c): `attn train vision`, the vision
 * branch of `attn eval`, `attn classify-image` and `attn vision-examples`. Uses only the
 * public headers. */
#ifndef ATTN_CLI_VISION_H
#define ATTN_CLI_VISION_H

int cli_train_vision(int argc, char **argv);
/* attn eval --model DIR of a vision checkpoint: argv as cli_eval's. */
int cli_eval_vision(int argc, char **argv);
/* 1 if dir's config.json names a vision model (prints nothing; the checkpoint need not load). */
int cli_is_vision(const char *dir);
int cli_classify_image(int argc, char **argv);
int cli_vision_examples(int argc, char **argv);

#endif
