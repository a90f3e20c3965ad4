/* The texts page (attn/viz_html.h, attn_texts_html): classified texts, each token a coloured
 * <span> written here (the page shows its colours without running any script); a small
 * script adds a "show weights" switch and the #selftest check. Every string of the input is
 * escaped for HTML (attn__sb_html), so no text can add markup or script to the page. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "attn/viz_html.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "viz/viz_internal.h"

/* The colour of weight x scaled by top (> 0): white to blue (the heatmaps' blues) for x >= 0;
 * with signed weights, white to red (ColorBrewer's Reds) for x < 0. */
static void color(float x, float top, int signed_w, unsigned char rgb[3]) {
    float a = top > 0 ? fminf(fabsf(x) / top, 1.0f) : 0.0f;
    if (!signed_w || x >= 0) {
        attn__heat_color(a, rgb);
        return;
    }
    static const float reds[5][3] = {{255, 255, 255}, {252, 187, 161}, {251, 106, 74}, {203, 24, 29}, {103, 0, 13}};
    int i = a >= 1.0f ? 3 : (int)(a * 4.0f);
    float t = a * 4.0f - (float)i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lrintf(reds[i][c] + t * (reds[i + 1][c] - reds[i][c]));
}

/* One coloured <span class="CLASS"> holding `s`, its weight as its title and data-w. */
static void span(attn__sb *b, const char *cls, const char *s, float x, float top, int signed_w) {
    unsigned char c[3];
    color(x, top, signed_w, c);
    float a = top > 0 ? fabsf(x) / top : 0.0f;
    attn__sb_printf(b, "<span class=\"%s\" style=\"background:#%02x%02x%02x%s\" title=\"%+.4f\" data-w=\"%.4f\">", cls, c[0],
                    c[1], c[2], a > 0.55f ? ";color:#fff" : "", (double)x, (double)x);
    attn__sb_html(b, s);
    attn__sb_str(b, "</span>");
}

static const char HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<script>window.onerror=function(m){var e=document.getElementById('selftest');"
    "if(e)e.textContent='selftest: FAIL script error: '+m;window.attnError=m;};</script>\n"
    "<style>\n"
    "body{font-family:system-ui,sans-serif,'Noto Sans CJK SC','WenQuanYi Micro Hei';margin:1.2em;color:#222;max-width:60em}\n"
    "h1{font-size:1.25em;margin:0 0 .4em}\n"
    "#legend{font-size:.9em;color:#444;margin:.4em 0 1em}\n"
    ".text{border-top:1px solid #ddd;padding:.6em 0}\n"
    ".verdict{font-size:.95em;margin-bottom:.3em}\n"
    ".orig{color:#666;font-size:.85em;margin-bottom:.4em;overflow-wrap:anywhere}\n"
    ".toks{line-height:2}\n"
    ".tok,.term,.key{padding:1px 3px;margin:0 1px;border-radius:3px}\n"
    ".show .tok::after{content:' ' attr(data-w);font-size:.7em}\n"
    "ol.terms{font-size:.85em;margin:.4em 0}\n"
    "#selftest{font-size:.8em;color:#666}\n"
    "</style>\n<title>";

static const char SCRIPT[] =
    "<pre id=\"selftest\"></pre>\n<script>\n"
    "(function(){\n'use strict';\n"
    "var $=function(id){return document.getElementById(id);};\n"
    "$('values').onchange=function(){document.body.className=this.checked?'show':'';};\n"
    "if(/selftest/.test(location.hash)&&!window.attnError){var t=document.querySelectorAll('.text'),k=document.querySelectorAll('.tok'),"
    "ok=t.length>0;Array.prototype.forEach.call(k,function(s){ok=ok&&s.style.background!==''&&s.title!=='';});"
    "$('selftest').textContent='selftest: '+(ok?'ok':'FAIL')+', '+k.length+' tokens in '+t.length+' texts';}\n"
    "})();\n</script>\n</body>\n</html>\n";

/* The legend: the page's words, then a scale of colours from one end to the other. */
static void legend(attn__sb *b, const attn_html_texts *p) {
    attn__sb_str(b, "<div id=\"legend\">");
    attn__sb_html(b, p->legend);
    attn__sb_str(b, "<br>scale: ");
    static const float STEPS[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f};
    for (int i = p->signed_weights ? 0 : 2; i < 5; i++) {
        unsigned char c[3];
        color(STEPS[i], 1.0f, p->signed_weights, c);
        attn__sb_printf(b, "<span class=\"key\" style=\"background:#%02x%02x%02x%s\">%s</span>", c[0], c[1], c[2],
                        fabsf(STEPS[i]) > 0.55f ? ";color:#fff" : "",
                        !p->signed_weights  ? (i == 2 ? "0" : i == 4 ? "largest of the text" : "&nbsp;")
                        : STEPS[i] == -1.0f ? "most against"
                        : STEPS[i] == 1.0f  ? "most for"
                        : STEPS[i] == 0.0f  ? "0"
                                            : "&nbsp;");
    }
    attn__sb_str(b, " <label><input type=\"checkbox\" id=\"values\"> show weights</label></div>\n");
}

static void one_text(attn__sb *b, const attn_html_texts *p, const attn_html_text *t, int i) {
    float top = 0;
    for (int k = 0; k < t->n; k++) top = fabsf(t->w[k]) > top ? fabsf(t->w[k]) : top;
    attn__sb_printf(b, "<div class=\"text\" id=\"t%d\">\n<div class=\"verdict\">%d. <b>", i + 1, i + 1);
    attn__sb_html(b, t->label);
    attn__sb_str(b, "</b> ");
    attn__sb_html(b, p->number);
    attn__sb_printf(b, " %.4f</div>\n<div class=\"orig\">", t->number);
    attn__sb_html(b, t->text);
    attn__sb_str(b, "</div>\n<div class=\"toks\">");
    for (int k = 0; k < t->n; k++) span(b, "tok", t->tok[k], t->w[k], top, p->signed_weights);
    attn__sb_str(b, "</div>\n");
    if (t->n_terms > 0) {
        float tt = 0;
        for (int k = 0; k < t->n_terms; k++) tt = fabsf(t->term_w[k]) > tt ? fabsf(t->term_w[k]) : tt;
        attn__sb_str(b, "<ol class=\"terms\" title=\"");
        attn__sb_html(b, p->terms);
        attn__sb_str(b, "\">");
        for (int k = 0; k < t->n_terms; k++) {
            char num[32];
            snprintf(num, sizeof num, "%+.4f", (double)t->term_w[k]);
            attn__sb_str(b, "<li>");
            span(b, "term", num, t->term_w[k], tt, p->signed_weights);
            attn__sb_str(b, " ");
            attn__sb_html(b, t->term[k]);
            attn__sb_str(b, "</li>");
        }
        attn__sb_str(b, "</ol>\n");
    }
    attn__sb_str(b, "</div>\n");
}

int attn_texts_html(const attn_html_texts *page, const attn_html_text *texts, int n_texts, char **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_texts_html: NULL output");
    *out = NULL;
    if (!page || !texts || n_texts < 1) return attn__error(ATTN_EINVAL, "attn_texts_html: no text to show");
    for (int i = 0; i < n_texts; i++)
        if (texts[i].n < 0 || (texts[i].n && (!texts[i].tok || !texts[i].w)) || texts[i].n_terms < 0 ||
            (texts[i].n_terms && (!texts[i].term || !texts[i].term_w)))
            return attn__error(ATTN_EINVAL, "attn_texts_html: text %d lacks its tokens or weights", i + 1);
    attn__sb b = {0};
    attn__sb_str(&b, HEAD);
    attn__sb_html(&b, page->title);
    attn__sb_str(&b, "</title>\n</head>\n<body>\n<h1>");
    attn__sb_html(&b, page->title);
    attn__sb_str(&b, "</h1>\n");
    legend(&b, page);
    if (page->terms && page->terms[0]) {
        attn__sb_str(&b, "<p id=\"terms-note\">Under each text: ");
        attn__sb_html(&b, page->terms);
        attn__sb_str(&b, ".</p>\n");
    }
    for (int i = 0; i < n_texts; i++) one_text(&b, page, &texts[i], i);
    attn__sb_str(&b, SCRIPT);
    if (b.failed) {
        attn__sb_free(&b);
        return attn__error(ATTN_ENOMEM, "attn_texts_html: out of memory");
    }
    *out = b.buf;
    return ATTN_OK;
}

int attn_texts_html_save(const attn_html_texts *page, const attn_html_text *texts, int n_texts, const char *path) {
    if (!path) return attn__error(ATTN_EINVAL, "attn_texts_html_save: NULL path");
    char *s = NULL;
    int st = attn_texts_html(page, texts, n_texts, &s);
    if (st) return st;
    st = attn_write_file_atomic(path, s, strlen(s));
    attn_free(s);
    return st;
}
