/* cli_attention_html.h: `attn translate --attention-html FILE`: collects the attention maps of
 * every sentence translated in one run (through attn/translator.h, so for any model family)
 * and writes them as one explorer page (attn/viz_html.h). Bodies in cli_attention_html.c. */
#ifndef ATTN_CLI_ATTENTION_HTML_H
#define ATTN_CLI_ATTENTION_HTML_H

#include "attn/translator.h"

typedef struct cli_html_pages cli_html_pages;

cli_html_pages *cli_html_new(void); /* NULL if out of memory */
void cli_html_free(cli_html_pages *pg);

/* Adds the maps of one translation t of `sentence` (an empty translation adds nothing).
 * Returns a CLI exit code (the error printed). */
int cli_html_add(const char *cmd, cli_html_pages *pg, attn_translator *m, const char *sentence, const attn_s2s_translation *t);

/* Writes the page (atomically); CLI_EDATA with a message if no sentence had a map (the
 * distracted model has none). */
int cli_html_write(const char *cmd, cli_html_pages *pg, const char *path, const char *model_dir);

#endif
