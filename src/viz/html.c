/* The attention explorer page (attn/viz_html.h): weights as JSON inside a <script> element,
 * a small inline script that draws the chosen map as a table of shaded cells, inline style.
 * The JSON is escaped so that no "</script>" can appear in it (every '<' is \u003c), labels
 * are sanitised UTF-8, weights are written with 4 significant digits. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "attn/io.h"
#include "attn/text.h"
#include "attn/viz_html.h"
#include "core/internal.h"
#include "core/strbuf.h"
#include "io/json.h"
#include "viz/viz_internal.h"

void attn__sb_html(attn__sb *b, const char *s) {
    char *clean = NULL;
    if (!s) s = "";
    if (!attn_utf8_valid(s, strlen(s), NULL) && attn_utf8_sanitize(s, strlen(s), &clean, NULL) == ATTN_OK) s = clean;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<': attn__sb_str(b, "&lt;"); break;
        case '>': attn__sb_str(b, "&gt;"); break;
        case '&': attn__sb_str(b, "&amp;"); break;
        case '"': attn__sb_str(b, "&quot;"); break;
        default: attn__sb_put(b, p, 1);
        }
    }
    attn_free(clean);
}

static const char PAGE_HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";

static const char STYLE[] =
    "</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif,'Noto Sans CJK SC','WenQuanYi Micro Hei';margin:1.2em;color:#222}\n"
    "h1{font-size:1.25em;margin:0 0 .4em}\n"
    "#controls{display:flex;flex-wrap:wrap;gap:.8em;align-items:center;margin:.6em 0}\n"
    "#controls label{font-size:.9em}\n"
    "select{font-size:1em;margin-left:.3em}\n"
    "#caption{margin:.5em 0;font-size:.95em;color:#444}\n"
    "table.map{border-collapse:collapse;font-size:13px}\n"
    "table.map td.c{width:26px;height:26px;min-width:26px;text-align:center;font-size:9px;border:1px solid #fff}\n"
    "table.map th{font-weight:normal;padding:2px 5px;white-space:nowrap}\n"
    "table.map th.col{writing-mode:vertical-rl;vertical-align:bottom;text-align:left;height:auto}\n"
    "table.map th.row{text-align:right}\n"
    "#axes{font-size:.85em;color:#666;margin-top:.4em}\n"
    "#selftest{font-size:.8em;color:#666}\n"
    "</style>\n</head>\n<body>\n";

static const char BODY[] =
    "<div id=\"controls\">\n"
    "<label id=\"sentence-box\">sentence<select id=\"sentence\"></select></label>\n"
    "<label>attention<select id=\"kind\"></select></label>\n"
    "<label>layer<select id=\"layer\"></select></label>\n"
    "<label>head<select id=\"head\"></select></label>\n"
    "<label><input type=\"checkbox\" id=\"values\"> show weights</label>\n"
    "</div>\n"
    "<div id=\"caption\"></div>\n"
    "<div id=\"view\"></div>\n"
    "<div id=\"axes\">rows: the tokens attending (queries); columns: the tokens attended to (keys); "
    "darker = more weight; each row sums to 1.</div>\n"
    "<pre id=\"selftest\"></pre>\n";

/* The script: reads the JSON, fills the selects, draws a table. Plain ES5 so that any browser
 * runs it. */
static const char SCRIPT[] =
    "<script>\n"
    "(function(){\n"
    "'use strict';\n"
    "var D=JSON.parse(document.getElementById('attn-data').textContent);\n"
    "var $=function(id){return document.getElementById(id);};\n"
    "var st={s:0,kind:null,layer:0,head:0,values:false};\n"
    "function item(){return D.items[st.s];}\n"
    "function uniq(a){var o=[];a.forEach(function(x){if(o.indexOf(x)<0)o.push(x);});return o;}\n"
    "function kinds(){return uniq(item().maps.map(function(m){return m.k;}));}\n"
    "function layers(){return uniq(item().maps.filter(function(m){return m.k===st.kind;}).map(function(m){return m.l;})).sort(function(a,b){return a-b;});}\n"
    "function heads(){return uniq(item().maps.filter(function(m){return m.k===st.kind&&m.l===st.layer;}).map(function(m){return m.h;})).sort(function(a,b){return a-b;});}\n"
    "function fill(sel,opts,val,fmt){sel.innerHTML='';opts.forEach(function(o){var e=document.createElement('option');e.value=String(o);e.textContent=fmt?fmt(o):String(o);sel.appendChild(e);});sel.value=String(val);}\n"
    "function fix(){var k=kinds();if(k.indexOf(st.kind)<0)st.kind=k[0];var l=layers();if(l.indexOf(st.layer)<0)st.layer=l[0];"
    "var h=heads();if(st.head!=='mean'&&h.indexOf(st.head)<0)st.head=h[0];if(h.length<2&&st.head==='mean')st.head=h[0];}\n"
    "function sync(){fix();fill($('sentence'),D.items.map(function(_,i){return i;}),st.s,function(i){return (i+1)+': '+D.items[i].title;});"
    "$('sentence-box').style.display=D.items.length>1?'':'none';"
    "fill($('kind'),kinds(),st.kind);fill($('layer'),layers(),st.layer,function(l){return String(l+1);});"
    "var h=heads();var ho=h.slice();if(h.length>1)ho.push('mean');fill($('head'),ho,st.head,function(x){return x==='mean'?'mean of '+h.length:String(x+1);});"
    "$('values').checked=st.values;}\n"
    "function current(){var ms=item().maps.filter(function(m){return m.k===st.kind&&m.l===st.layer;});"
    "if(st.head!=='mean'){for(var i=0;i<ms.length;i++)if(ms[i].h===st.head)return ms[i];return null;}"
    "var m0=ms[0],w=new Array(m0.w.length);for(var j=0;j<w.length;j++){var s=0;for(var q=0;q<ms.length;q++)s+=ms[q].w[j];w[j]=s/ms.length;}"
    "return {k:m0.k,l:m0.l,h:'mean',r:m0.r,c:m0.c,rl:m0.rl,cl:m0.cl,w:w};}\n"
    "function shade(x){x=Math.max(0,Math.min(1,x));var r=Math.round(255-x*(255-8)),g=Math.round(255-x*(255-48)),b=Math.round(255-x*(255-107));return 'rgb('+r+','+g+','+b+')';}\n"
    "function render(){var m=current(),it=item(),v=$('view');v.innerHTML='';if(!m){$('caption').textContent='(no map)';return;}"
    "var rl=it.labels[m.rl],cl=it.labels[m.cl];var t=document.createElement('table');t.className='map';t.id='map';"
    "var hr=document.createElement('tr');hr.appendChild(document.createElement('th'));"
    "cl.forEach(function(x){var th=document.createElement('th');th.className='col';th.textContent=x;hr.appendChild(th);});t.appendChild(hr);"
    "for(var i=0;i<m.r;i++){var tr=document.createElement('tr');var th=document.createElement('th');th.className='row';th.textContent=rl[i];tr.appendChild(th);"
    "for(var j=0;j<m.c;j++){var x=m.w[i*m.c+j],td=document.createElement('td');td.className='c';td.style.background=shade(x);"
    "if(x>0.55)td.style.color='#fff';td.title=rl[i]+' \\u2192 '+cl[j]+': '+x.toFixed(3);if(st.values)td.textContent=x.toFixed(2).replace(/^0/,'');tr.appendChild(td);}"
    "t.appendChild(tr);}v.appendChild(t);"
    "$('caption').textContent=it.title+'  \\u2014  '+st.kind+', layer '+(st.layer+1)+', '+(st.head==='mean'?'mean of the heads':'head '+(st.head+1))+' ('+m.r+' \\u00d7 '+m.c+')';"
    "if(!/selftest/.test(location.hash)){var h='#s='+st.s+'&kind='+encodeURIComponent(st.kind)+'&layer='+st.layer+'&head='+st.head;"
    "if(location.hash!==h)history.replaceState?history.replaceState(null,'',h):(location.hash=h);}}\n"
    "function readHash(){var h=location.hash.replace(/^#/,'');h.split('&').forEach(function(kv){var p=kv.split('=');var k=p[0],x=decodeURIComponent(p[1]||'');"
    "if(k==='s'&&+x>=0&&+x<D.items.length)st.s=+x;else if(k==='kind')st.kind=x;else if(k==='layer')st.layer=+x;else if(k==='head')st.head=(x==='mean'?'mean':+x);});}\n"
    "$('sentence').onchange=function(){st.s=+this.value;sync();render();};\n"
    "$('kind').onchange=function(){st.kind=this.value;sync();render();};\n"
    "$('layer').onchange=function(){st.layer=+this.value;sync();render();};\n"
    "$('head').onchange=function(){st.head=this.value==='mean'?'mean':+this.value;sync();render();};\n"
    "$('values').onchange=function(){st.values=this.checked;render();};\n"
    "readHash();sync();render();\n"
    "function sig(){var t=$('map');if(!t)return '';var s=[];Array.prototype.forEach.call(t.querySelectorAll('td'),function(td){s.push(td.style.background);});return s.join('|');}\n"
    "function labels(){var t=$('map');return t?Array.prototype.map.call(t.querySelectorAll('th'),function(x){return x.textContent;}).join(' '):'';}\n"
    "function pick(sel,i){sel.selectedIndex=i;var e=document.createEvent('HTMLEvents');e.initEvent('change',true,true);sel.dispatchEvent(e);}\n"
    "if(/selftest/.test(location.hash)){var out=[],ok=true;var s0=sig();out.push('tokens: '+labels());"
    "if($('head').options.length>1){pick($('head'),1);var s1=sig();var c1=s1!==s0;ok=ok&&c1;out.push('head switch changes the picture: '+c1);}"
    "if($('kind').options.length>1){var s2=sig(),l2=labels();pick($('kind'),$('kind').options.length-1);var c2=sig()!==s2||labels()!==l2;ok=ok&&c2;out.push('kind switch changes the picture: '+c2);}"
    "if($('layer').options.length>1){var s3=sig();pick($('layer'),1);var c3=sig()!==s3;ok=ok&&c3;out.push('layer switch changes the picture: '+c3);}"
    "ok=ok&&s0.length>0;$('selftest').textContent='selftest: '+(ok?'ok':'FAIL')+'\\n'+out.join('\\n');}\n"
    "})();\n"
    "</script>\n</body>\n</html>\n";

/* The index of labels among the distinct label arrays of an item (appended if new). */
static int label_index(const char *const **seen, const int *lens, int *n, const char *const *labels, int len) {
    for (int i = 0; i < *n; i++)
        if (seen[i] == labels && lens[i] == len) return i;
    seen[*n] = labels;
    ((int *)lens)[*n] = len;
    return (*n)++;
}

int attn_attention_html(const char *title, const attn_html_item *items, int n_items, char **out) {
    if (!out) return attn__error(ATTN_EINVAL, "attn_attention_html: NULL output");
    *out = NULL;
    if (!items || n_items < 1) return attn__error(ATTN_EINVAL, "attn_attention_html: no sentence to show");
    int max_maps = 0;
    for (int i = 0; i < n_items; i++) {
        if (items[i].n_maps < 1 || !items[i].maps)
            return attn__error(ATTN_EINVAL, "attn_attention_html: sentence %d has no attention map", i + 1);
        for (int k = 0; k < items[i].n_maps; k++) {
            const attn_html_map *m = &items[i].maps[k];
            if (!m->w || !m->row_labels || !m->col_labels || !m->kind || m->rows < 1 || m->cols < 1 || m->layer < 0 || m->head < 0)
                return attn__error(ATTN_EINVAL, "attn_attention_html: map %d of sentence %d lacks weights, labels or sizes", k + 1,
                                   i + 1);
        }
        if (items[i].n_maps > max_maps) max_maps = items[i].n_maps;
    }
    const char *const **seen = attn_malloc((size_t)2 * max_maps * sizeof *seen);
    int *lens = attn_malloc((size_t)2 * max_maps * sizeof *lens);
    int *ri = attn_malloc((size_t)max_maps * sizeof *ri), *ci = attn_malloc((size_t)max_maps * sizeof *ci);
    attn__sb b = {0};
    if (!seen || !lens || !ri || !ci) b.failed = 1;
    const char *t = title ? title : "attention";
    attn__sb_str(&b, PAGE_HEAD);
    attn__sb_html(&b, t);
    attn__sb_str(&b, STYLE);
    attn__sb_str(&b, "<h1>");
    attn__sb_html(&b, t);
    attn__sb_str(&b, "</h1>\n");
    attn__sb_str(&b, BODY);
    attn__sb_str(&b, "<script id=\"attn-data\" type=\"application/json\">\n{\"title\":");
    attn__json_escape(&b, t, ATTN__JSON_HTML);
    attn__sb_str(&b, ",\"items\":[");
    for (int i = 0; i < n_items && !b.failed; i++) {
        const attn_html_item *it = &items[i];
        int nl = 0;
        for (int k = 0; k < it->n_maps; k++) {
            ri[k] = label_index(seen, lens, &nl, it->maps[k].row_labels, it->maps[k].rows);
            ci[k] = label_index(seen, lens, &nl, it->maps[k].col_labels, it->maps[k].cols);
        }
        attn__sb_str(&b, i ? ",\n{\"title\":" : "\n{\"title\":");
        attn__json_escape(&b, it->title ? it->title : "", ATTN__JSON_HTML);
        attn__sb_str(&b, ",\"labels\":[");
        for (int l = 0; l < nl; l++) {
            attn__sb_str(&b, l ? ",[" : "[");
            for (int j = 0; j < lens[l]; j++) {
                if (j) attn__sb_str(&b, ",");
                attn__json_escape(&b, seen[l][j], ATTN__JSON_HTML);
            }
            attn__sb_str(&b, "]");
        }
        attn__sb_str(&b, "],\"maps\":[");
        for (int k = 0; k < it->n_maps; k++) {
            const attn_html_map *m = &it->maps[k];
            attn__sb_str(&b, k ? ",\n{\"k\":" : "\n{\"k\":");
            attn__json_escape(&b, m->kind, ATTN__JSON_HTML);
            attn__sb_printf(&b, ",\"l\":%d,\"h\":%d,\"r\":%d,\"c\":%d,\"rl\":%d,\"cl\":%d,\"w\":[", m->layer, m->head, m->rows, m->cols, ri[k],
                      ci[k]);
            size_t n = (size_t)m->rows * m->cols;
            for (size_t j = 0; j < n; j++) {
                float x = m->w[j];
                if (!isfinite(x)) x = 0.0f;
                attn__sb_printf(&b, j ? ",%.4g" : "%.4g", (double)x);
            }
            attn__sb_str(&b, "]}");
        }
        attn__sb_str(&b, "]}");
    }
    attn__sb_str(&b, "]}\n</script>\n");
    attn__sb_str(&b, SCRIPT);
    attn_free((void *)seen), attn_free(lens), attn_free(ri), attn_free(ci);
    if (b.failed) {
        attn__sb_free(&b);
        return attn__error(ATTN_ENOMEM, "attn_attention_html: out of memory");
    }
    *out = b.buf;
    return ATTN_OK;
}

int attn_attention_html_save(const char *title, const attn_html_item *items, int n_items, const char *path) {
    if (!path) return attn__error(ATTN_EINVAL, "attn_attention_html_save: NULL path");
    char *s = NULL;
    int st = attn_attention_html(title, items, n_items, &s);
    if (st) return st;
    st = attn_write_file_atomic(path, s, strlen(s));
    attn_free(s);
    return st;
}
