#!/usr/bin/python3
"""SVG charts for the Transformer experiments, with the standard library only (no matplotlib).

    transformer_plot.py lines CSV OUT.svg --x COL --y COL --group COL [--title T --xlabel X --ylabel Y]
                         [--xticks L1,L2,...]
        one line per value of the group column, points (x, y) in file order; with --xticks, x
        holds 1, 2, ... and the ticks are those labels (categories)
    transformer_plot.py bars CSV OUT.svg --label COL --values COL[,COL...] [--names N1,N2...]
                        [--label-prefix P] [--title T --ylabel Y]
        grouped bars: one group per row (P + its label), one bar per value column (legend: the
        names, or the column names)

Rows whose x or y is not a number are skipped.
"""
import csv
import html
import math
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]


def arg(name, default=None):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def num(s):
    try:
        v = float(s)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def ticks(vmax, n=5):
    step = vmax / n
    return [step * i for i in range(n + 1)]


def fmt(v):
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"


def header(W, H, title):
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="13">',
            '<rect width="100%" height="100%" fill="white"/>',
            f'<text x="70" y="26" font-size="15" font-weight="bold">{html.escape(title)}</text>']


def axes(out, L, T, pw, ph, ymax, ylabel, xlabel, W, H):
    for y in ticks(ymax):
        py = T + ph - ph * y / ymax
        out.append(f'<line x1="{L}" y1="{py:.1f}" x2="{L + pw}" y2="{py:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{py + 4:.1f}" text-anchor="end">{fmt(y)}</text>')
    out.append(f'<line x1="{L}" y1="{T + ph}" x2="{L + pw}" y2="{T + ph}" stroke="black"/>')
    out.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{T + ph}" stroke="black"/>')
    out.append(f'<text x="18" y="{T + ph / 2:.1f}" text-anchor="middle" transform="rotate(-90 18 {T + ph / 2:.1f})">'
               f'{html.escape(ylabel)}</text>')
    if xlabel:
        out.append(f'<text x="{L + pw / 2:.1f}" y="{H - 12}" text-anchor="middle">{html.escape(xlabel)}</text>')


def lines(rows, out_path):
    x, y, g = arg("--x"), arg("--y"), arg("--group")
    series = {}
    for r in rows:
        xv, yv = num(r.get(x)), num(r.get(y))
        if xv is not None and yv is not None:
            series.setdefault(r[g], []).append((xv, yv))
    W, H, L, R, T, B = 760, 440, 70, 190, 50, 60
    pw, ph = W - L - R, H - T - B
    cats = arg("--xticks").split(",") if arg("--xticks") else None
    xmax = len(cats) + 0.5 if cats else nice_max(max((p[0] for s in series.values() for p in s), default=1))
    xmin = 0.5 if cats else 0.0
    ymax = nice_max(max((p[1] for s in series.values() for p in s), default=1))
    out = header(W, H, arg("--title", ""))
    axes(out, L, T, pw, ph, ymax, arg("--ylabel", y), arg("--xlabel", x), W, H)
    sx = lambda a: L + pw * (a - xmin) / (xmax - xmin)
    for k, xt in enumerate(cats if cats else ticks(xmax)):
        px = sx(k + 1) if cats else sx(xt)
        out.append(f'<text x="{px:.1f}" y="{T + ph + 18}" text-anchor="middle">{html.escape(xt) if cats else fmt(xt)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        xy = [(sx(a), T + ph - ph * b / ymax) for a, b in pts]
        out.append(f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in xy)}" fill="none" stroke="{c}" stroke-width="2.5"/>')
        for (a, b), (u, v) in zip(xy, pts):
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{c}"><title>{html.escape(name)}: {u:g}, {v:g}</title></circle>')
        ly = T + 20 + 24 * i
        out.append(f'<line x1="{L + pw + 15}" y1="{ly}" x2="{L + pw + 40}" y2="{ly}" stroke="{c}" stroke-width="2.5"/>')
        out.append(f'<text x="{L + pw + 46}" y="{ly + 4}">{html.escape(name)}</text>')
    out.append("</svg>")
    open(out_path, "w").write("\n".join(out) + "\n")


def bars(rows, out_path):
    label, cols = arg("--label"), arg("--values").split(",")
    names = arg("--names").split(",") if arg("--names") else cols
    prefix = arg("--label-prefix", "")
    data = [(r[label], [num(r.get(c)) or 0.0 for c in cols]) for r in rows]
    W, H, L, R, T, B = 760, 440, 70, 190, 50, 60
    pw, ph = W - L - R, H - T - B
    ymax = nice_max(max((v for _, vs in data for v in vs), default=1))
    out = header(W, H, arg("--title", ""))
    axes(out, L, T, pw, ph, ymax, arg("--ylabel", ""), arg("--xlabel", ""), W, H)
    gw = pw / max(len(data), 1)
    bw = gw * 0.8 / len(cols)
    for k, (name, vs) in enumerate(data):
        x0 = L + gw * k + gw * 0.1
        for i, v in enumerate(vs):
            h = ph * v / ymax
            out.append(f'<rect x="{x0 + bw * i:.1f}" y="{T + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLORS[i % len(COLORS)]}"><title>{html.escape(name)} {cols[i]}: {v:g}</title></rect>')
            shown = f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
            out.append(f'<text x="{x0 + bw * i + bw / 2 - 1:.1f}" y="{T + ph - h - 4:.1f}" text-anchor="middle" '
                       f'font-size="11">{shown}</text>')
        out.append(f'<text x="{x0 + gw * 0.4:.1f}" y="{T + ph + 18}" text-anchor="middle">{html.escape(prefix + name)}</text>')
    for i, c in enumerate(cols):
        ly = T + 20 + 24 * i
        out.append(f'<rect x="{L + pw + 15}" y="{ly - 8}" width="25" height="12" fill="{COLORS[i % len(COLORS)]}"/>')
        out.append(f'<text x="{L + pw + 46}" y="{ly + 4}">{html.escape(names[i])}</text>')
    out.append("</svg>")
    open(out_path, "w").write("\n".join(out) + "\n")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    kind, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    {"lines": lines, "bars": bars}[kind](rows, out)


if __name__ == "__main__":
    main()
