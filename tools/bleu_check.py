#!/usr/bin/python3
"""Reference BLEU values for tests/test_bleu.c, computed independently of the C code.

BLEU itself comes from NLTK (nltk.translate.bleu_score.corpus_bleu, Debian's python3-nltk:
`apt-get install -y python3-nltk`), with no smoothing (method0) and with NLTK's method3, which
is the NIST geometric smoothing that sacreBLEU calls 'exp'. The tokenisation that sacreBLEU
applies first (13a, and zh for Chinese) is transcribed below from sacreBLEU 2.x
(tokenizers/tokenizer_re.py, tokenizer_13a.py, tokenizer_zh.py) and run with Python's `re`, so
the C transcription is checked against Python's regular-expression semantics.

It also prints the 13a / zh tokens of fixed tricky strings and of 40 seeded random strings
(random_cases), which tests/test_bleu.c compares with the C tokenisers.

NLTK and sacreBLEU agree when every hypothesis has at least 4 tokens (NLTK counts a
hypothesis shorter than n as one n-gram with no match; sacreBLEU counts none), so every case
here has hypotheses of 4 tokens or more.

Usage: /usr/bin/python3 tools/bleu_check.py   (prints C initialisers to paste into the test)
"""
import math
import random
import re
import sys
import warnings

from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

# ---- sacreBLEU's tokenisers, transcribed ------------------------------------------------------
_RE = [
    (re.compile(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])'), r' \1 '),
    (re.compile(r'([^0-9])([\.,])'), r'\1 \2 '),
    (re.compile(r'([\.,])([^0-9])'), r' \1 \2'),
    (re.compile(r'([0-9])(-)'), r'\1 \2 '),
]


def post_tokenize(line):
    for rx, rep in _RE:
        line = rx.sub(rep, line)
    return ' '.join(line.strip().split())


def tok_13a(line):
    line = line.rstrip()  # BLEU._preprocess_segment
    line = line.replace('<skipped>', '')
    line = line.replace('-\n', '')
    line = line.replace('\n', ' ')
    line = line.replace('&quot;', '"')
    line = line.replace('&amp;', '&')
    line = line.replace('&lt;', '<')
    line = line.replace('&gt;', '>')
    return post_tokenize(' {} '.format(line)).split()


# Kept exactly as sacreBLEU has it, including '\u20000' (which Python reads as U+2000 '0').
_UCODE_RANGES = [
    ('\u3400', '\u4db5'), ('\u4e00', '\u9fa5'), ('\u9fa6', '\u9fbb'), ('\uf900', '\ufa2d'),
    ('\ufa30', '\ufa6a'), ('\ufa70', '\ufad9'), ('\u20000', '\u2a6d6'), ('\u2f800', '\u2fa1d'),
    ('\uff00', '\uffef'), ('\u2e80', '\u2eff'), ('\u3000', '\u303f'), ('\u31c0', '\u31ef'),
    ('\u2f00', '\u2fdf'), ('\u2ff0', '\u2fff'), ('\u3100', '\u312f'), ('\u31a0', '\u31bf'),
    ('\ufe10', '\ufe1f'), ('\ufe30', '\ufe4f'), ('\u2600', '\u26ff'), ('\u2700', '\u27bf'),
    ('\u3200', '\u32ff'), ('\u3300', '\u33ff'),
]


def tok_zh(line):
    line = line.rstrip().strip()
    out = ''
    for ch in line:
        if any(a <= ch <= b for a, b in _UCODE_RANGES):
            out += ' ' + ch + ' '
        else:
            out += ch
    return post_tokenize(out).split()


# ---- cases -----------------------------------------------------------------------------------
CASES = {
    # A small corpus in which every order has matches: 'none' and 'exp' agree.
    'en_all_orders': ('13a', [
        ("The cat is sitting on the mat.", "The cat sat on the mat."),
        ("I don't know what you're talking about.", "I don't know what you are talking about."),
        ("Tom bought 3.5 kilos of apples yesterday.", "Tom bought 3.5 kg of apples yesterday."),
        ("She said \"hello\" to everyone in the room.", "She said \"hi\" to everyone in the room."),
        ("Please call me when you get home, okay?", "Call me when you get home, OK?"),
    ]),
    # No 4-gram matches anywhere: 'none' gives 0 (NLTK: about 1e-77), 'exp' does not.
    'no_4gram': ('13a', [
        ("the quick brown dog jumps", "the quick red dog jumps"),
        ("a b c a d", "a b x a d"),
    ]),
    # Hypotheses shorter than the references: brevity penalty below 1.
    'brevity': ('13a', [
        ("It is raining in the whole city.", "It has been raining all day today in the whole city."),
        ("We will meet at nine o'clock.", "We will meet again tomorrow morning at nine o'clock."),
    ]),
    # Chinese output with sacreBLEU's zh tokeniser (characters, fullwidth punctuation, digits).
    'zh': ('zh', [
        ("我今天很高兴。", "我今天非常高兴。"),
        ("他在2019年去了北京。", "他2019年去过北京。"),
        ("你叫什么名字？", "你叫什么名字？"),
    ]),
}

TOKENISATION_CASES = [
    ('13a', "Tom's here."),
    ('13a', "It costs $1,000.50, not 2-3 euros!"),
    ('13a', "a..b,,c 1.x x.1 ...end"),
    ('13a', "&quot;Hi&quot; &amp; <skipped>bye &lt;3"),
    ('13a', "e-mail me@example.com (now) {ok} [x] a_b ~c|d ^e `f'"),
    ('13a', "caf\u00e9. na\u00efve, r\u00e9sum\u00e9"),
    ('zh', "我爱你。Tom说：“你好！” 3.5元"),
]


def c_str(s):
    """A C string literal: printable text as it is (UTF-8), anything else as hex bytes."""
    out = ''
    for ch in s:
        if ch in '"\\':
            out += '\\' + ch
        elif 0x20 <= ord(ch) < 0x7f or (ord(ch) >= 0x80 and ch.isprintable() and not ch.isspace()):
            out += ch
        else:
            out += ''.join('\\x%02x""' % b for b in ch.encode('utf-8'))
    return '"' + out + '"'


def random_cases(n, seed):
    """Random strings of the characters that matter to 13a and zh (seeded, reproducible)."""
    alpha = list("ab1.,-'\"&;<>()[]{}|~^_`!?#$%*+:=@/ \t\n09") + [
        '&quot;', '&amp;', '&lt;', '&gt;', '<skipped>', '-\n', '\u00e9', '\u6211', '\u3002', '\uff0c',
        '\u201c', '\u201d', '\u2026', '\u3000', '\u00a0', '\u2028', '\u200b', '\U00020000', '\u2001',
        '\uff01', '\u2f81', '\x1c', '\x85']
    rnd = random.Random(seed)
    return [(rnd.choice(['13a', 'zh']), ''.join(rnd.choice(alpha) for _ in range(rnd.randint(0, 16))))
            for _ in range(n)]


def main():
    warnings.simplefilter('ignore')  # NLTK warns about the zero counts on purpose here
    print('/* Generated by tools/bleu_check.py (NLTK %s, Python %s). */' % (
        __import__('nltk').__version__, sys.version.split()[0]))
    for name, (tok, pairs) in CASES.items():
        t = tok_13a if tok == '13a' else tok_zh
        hyps = [t(h) for h, _ in pairs]
        refs = [[t(r)] for _, r in pairs]
        assert all(len(h) >= 4 for h in hyps), name
        none = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method0) * 100
        exp = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method3) * 100
        sys_len = sum(len(h) for h in hyps)
        ref_len = sum(len(r[0]) for r in refs)
        bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
        print('/* %s (%s): sys_len %d ref_len %d bp %.17g */' % (name, tok, sys_len, ref_len, bp))
        print('{"%s", %s, %.17g, %.17g, %d, %d},' % (name, tok.upper(), none, exp, sys_len, ref_len))
    for tok, s in TOKENISATION_CASES + random_cases(40, 2024):
        t = tok_13a if tok == '13a' else tok_zh
        print('{%s, %s, %s},' % (tok.upper(), c_str(s), c_str(' '.join(t(s)))))


if __name__ == '__main__':
    main()
