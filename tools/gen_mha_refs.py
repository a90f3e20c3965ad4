#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/test_mha.c and tests/test_posenc.c.

    /usr/bin/python3 tools/gen_mha_refs.py [tests/data]     (writes tests/data/mha, tests/data/posenc)

Multi-head attention (tests/data/mha): for each case NAME,
  NAME.weights.safetensors  the module's state_dict, under PyTorch's own names (in_proj_weight
                            or q/k/v_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias),
                            float32: exactly what torch.save(state_dict) would hold.
  NAME.safetensors          inputs, expected outputs and gradients, with the case's settings in
                            __metadata__ (E H kdim vdim bias B Nq Nk causal average self):
      inputs   query (B,Nq,E) key (B,Nk,kdim) value (B,Nk,vdim) dout (B,Nq,E)          F32
               key_padding_mask (B,Nk) BOOL True = padding; attn_mask_bool (.., Nq, Nk)
               BOOL True = NOT allowed, or attn_mask_float F32 (may hold -inf)
      expect   out (B,Nq,E), weights (B,Nq,Nk) or (B,H,Nq,Nk), dquery dkey dvalue, and
               grad.<state_dict name> for every parameter                            F64
The module is torch.nn.MultiheadAttention(batch_first=True) in float64, evaluated on the
float32-rounded inputs and weights, so the only difference the C test sees is its own float32
arithmetic. Gradients are those of sum(out * dout). Query, key and value are three separate
leaves even when their values are equal (self-attention), so each gets its own gradient.
"causal" cases give PyTorch 1.13 (which has no is_causal) the equivalent bool mask
triu(ones, 1); the C side uses is_causal. No case has a fully masked row (PyTorch gives NaN
there, the library zeros: tested in C alone). Two broken weight files test the loader's errors.

Position encodings (tests/data/posenc), each NAME.safetensors with settings in __metadata__:
  sinusoidal  the table from the formula in float64 (numpy), for odd and even d
  alibi       slopes from the reference implementation's get_slopes (copied below), bias
  rope        an explicit rotate_half implementation in float64 torch (as Hugging Face's
              GPT-NeoX/Llama apply_rotary_pos_emb), with autograd for the gradient
  learned     x + nn.Embedding(pos), autograd for the table's gradient

safetensors is written by hand (the package is not installed): an 8-byte little-endian header
length, the JSON header padded with spaces to a multiple of 8, then the data.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.bool_): "BOOL"}


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> numpy array (float32, float64 or bool)."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in DTYPES:
            raise ValueError(f"{name}: dtype {a.dtype}")
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def np64(t):
    return t.detach().numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Multi-head attention


def mha_case(out_dir, name, rng, E, H, B, Nq, Nk, kdim=None, vdim=None, bias=True, self_attn=False,
             kpm=None, bool_mask=None, float_mask=None, mask3d=False, causal=False, average=True):
    kd, vd = kdim or E, vdim or E
    torch.manual_seed(int(rng.integers(1 << 30)))
    m = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    # Round the parameters to float32, and give the biases nonzero values (PyTorch zeros them).
    sd32 = {}
    with torch.no_grad():
        for k, p in m.named_parameters():
            v = f32(rng, *p.shape, scale=0.3) if "bias" in k else p.detach().numpy().astype(np.float32)
            p.copy_(torch.from_numpy(v.astype(np.float64)))
            sd32[k] = v
    assert set(sd32) == set(m.state_dict().keys()), (set(sd32), m.state_dict().keys())
    save_safetensors(os.path.join(out_dir, name + ".weights.safetensors"), sd32)

    x = f32(rng, B, Nq, E)
    q_np = x if self_attn else x
    k_np = x if self_attn else f32(rng, B, Nk, kd)
    v_np = x if self_attn else f32(rng, B, Nk, vd)
    dout = f32(rng, B, Nq, E)
    query, key, value = t64(q_np), t64(k_np), t64(v_np)

    tensors = {"query": q_np, "key": k_np, "value": v_np, "dout": dout}
    meta = dict(E=E, H=H, kdim=kd, vdim=vd, bias=int(bias), B=B, Nq=Nq, Nk=Nk, causal=int(causal),
                average=int(average), self=int(self_attn))
    kw = {}
    if kpm is not None:
        kw["key_padding_mask"] = torch.from_numpy(kpm)
        tensors["key_padding_mask"] = kpm
    am = None
    if bool_mask is not None:
        am = bool_mask
        tensors["attn_mask_bool"] = bool_mask
    if float_mask is not None:
        am = float_mask
        tensors["attn_mask_float"] = float_mask
    if causal:
        c = np.triu(np.ones((Nq, Nk), dtype=bool), 1)
        if am is None:
            am = c
        elif am.dtype == np.bool_:
            am = am | c
        else:
            am = np.where(c, -np.inf, am).astype(am.dtype)
    if am is not None:
        kw["attn_mask"] = torch.from_numpy(am if am.dtype == np.bool_ else am.astype(np.float64))

    out, weights = m(query, key, value, need_weights=True, average_attn_weights=average, **kw)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all(), name + ": a fully masked row"
    (out * torch.from_numpy(dout.astype(np.float64))).sum().backward()
    tensors.update(out=np64(out), weights=np64(weights), dquery=np64(query.grad), dkey=np64(key.grad),
                   dvalue=np64(value.grad))
    for k, p in m.named_parameters():
        tensors["grad." + k] = np64(p.grad)
    save_safetensors(os.path.join(out_dir, name + ".safetensors"), tensors, meta)
    return sd32


def allowed_rows(mask_not_allowed):
    """Clears one entry per fully masked row so every query sees a key (True = NOT allowed)."""
    m = mask_not_allowed.copy()
    full = m.all(axis=-1)
    m[full, 0] = False
    return m


def gen_mha(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    # Self-attention, E=12/H=3 (head size 4), averaged weights.
    mha_case(out_dir, "self_e12h3_n7", rng, 12, 3, 2, 7, 7, self_attn=True)
    # One token.
    mha_case(out_dir, "self_e12h3_n1", rng, 12, 3, 2, 1, 1, self_attn=True, average=False)
    # Cross-attention with kdim/vdim != E: q/k/v_proj_weight, per-head weights.
    mha_case(out_dir, "cross_kv_e16h4", rng, 16, 4, 2, 7, 33, kdim=10, vdim=6, average=False)
    # No bias, N=33.
    mha_case(out_dir, "nobias_e16h4_n33", rng, 16, 4, 2, 33, 33, bias=False, self_attn=True)
    # Key padding: batch 0 none, batch 1 the last 3 keys, batch 2 scattered keys.
    kpm = np.zeros((3, 9), dtype=bool)
    kpm[1, 6:] = True
    kpm[2, [0, 3, 4, 8]] = True
    mha_case(out_dir, "kpm_e12h3", rng, 12, 3, 3, 7, 9, kpm=kpm)
    # Bool attn_mask (B*H, Nq, Nk) combined with key padding; per-head weights.
    B, H, Nq, Nk = 2, 4, 7, 33
    kpm = np.zeros((B, Nk), dtype=bool)
    kpm[1, 20:] = True
    bm = rng.random((B * H, Nq, Nk)) < 0.5
    pad = np.repeat(kpm, H, axis=0)  # (B*H, Nk): row b*H + h is batch b
    for r, i in zip(*np.nonzero((bm | pad[:, None, :]).all(-1))):
        bm[r, i, np.flatnonzero(~pad[r])[0]] = False  # reopen one unpadded key
    assert not (bm | pad[:, None, :]).all(-1).any()
    mha_case(out_dir, "boolmask3d_kpm_e16h4", rng, 16, H, B, Nq, Nk, kdim=16, vdim=16, kpm=kpm, bool_mask=bm,
             average=False)
    # Bool attn_mask (Nq, Nk), 2-D.
    bm2 = allowed_rows(rng.random((7, 9)) < 0.4)
    mha_case(out_dir, "boolmask2d_e12h3", rng, 12, 3, 2, 7, 9, bool_mask=bm2)
    # Float attn_mask (Nq, Nk) with -inf entries, with a bool key padding (-inf rule).
    fm = f32(rng, 7, 9)
    fm[rng.random((7, 9)) < 0.2] = -np.inf
    kpm = np.zeros((2, 9), dtype=bool)
    kpm[0, 7:] = True
    keep = np.isinf(fm)[None] | kpm[:, None, :]
    assert not keep.all(-1).any()
    mha_case(out_dir, "floatmask2d_kpm_e12h3", rng, 12, 3, 2, 7, 9, kpm=kpm, float_mask=fm)
    # Float attn_mask (B*H, Nq, Nk), 3-D, per-head weights.
    fm3 = f32(rng, 2 * 3, 5, 6, scale=2.0)
    mha_case(out_dir, "floatmask3d_e12h3", rng, 12, 3, 2, 5, 6, float_mask=fm3, average=False)
    # Causal self-attention, N=33, with key padding in batch 1.
    kpm = np.zeros((2, 33), dtype=bool)
    kpm[1, 30:] = True
    mha_case(out_dir, "causal_kpm_e16h4_n33", rng, 16, 4, 2, 33, 33, self_attn=True, causal=True, kpm=kpm)
    # Causal with a float mask too.
    fmc = f32(rng, 7, 7)
    mha_case(out_dir, "causal_float_e12h3", rng, 12, 3, 1, 7, 7, self_attn=True, causal=True, float_mask=fmc,
             average=False)

    # Broken weight files for the loader's error paths (E=12, H=3, bias).
    sd = mha_case(out_dir, "tmp_for_broken", rng, 12, 3, 1, 2, 2)
    for suffix in (".safetensors", ".weights.safetensors"):
        os.remove(os.path.join(out_dir, "tmp_for_broken" + suffix))
    missing = {k: v for k, v in sd.items() if k != "out_proj.bias"}
    save_safetensors(os.path.join(out_dir, "broken_missing.safetensors"), missing)
    wrong = dict(sd)
    wrong["out_proj.weight"] = np.zeros((12, 13), dtype=np.float32)
    save_safetensors(os.path.join(out_dir, "broken_shape.safetensors"), wrong)
    bkv = dict(sd)
    bkv["bias_k"] = np.zeros((1, 1, 12), dtype=np.float32)
    bkv["bias_v"] = np.zeros((1, 1, 12), dtype=np.float32)
    save_safetensors(os.path.join(out_dir, "broken_bias_kv.safetensors"), bkv)
    # A prefixed file, as a layer of a bigger model.
    save_safetensors(os.path.join(out_dir, "prefixed.safetensors"),
                     {"layers.0.self_attn." + k: v for k, v in sd.items()})


# ---------------------------------------------------------------------------------------------
# Position encodings


def get_slopes(n):
    """ofirpress/attention_with_linear_biases, fairseq/models/transformer.py, verbatim."""
    def get_slopes_power_of_2(n):
        start = (2 ** (-2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    else:
        closest_power_of_2 = 2 ** math.floor(math.log2(n))
        return get_slopes_power_of_2(closest_power_of_2) + get_slopes(2 * closest_power_of_2)[0::2][:n - closest_power_of_2]


def rotate_half(x):
    """Hugging Face GPT-NeoX / Llama."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_ref(x, positions, rot_dim, base):
    """x (B, H, N, dh) float64; positions (B, N). Returns x with the first rot_dim features rotated."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dim, 2, dtype=torch.float64) / rot_dim))
    freqs = positions[..., None].to(torch.float64) * inv_freq  # (B, N, rot/2)
    emb = torch.cat((freqs, freqs), dim=-1)[:, None]           # (B, 1, N, rot)
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rot_dim], x[..., rot_dim:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


def gen_posenc(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    # Sinusoidal: table and x + PE, even and odd d, with an offset.
    for d, N, offset in ((16, 33, 0), (13, 7, 5), (1, 3, 2)):
        pos = np.arange(offset, offset + N, dtype=np.float64)[:, None]
        pe = np.zeros((N, d))
        for c in range(0, d, 2):
            ang = pos[:, 0] / 10000.0 ** (c / d)
            pe[:, c] = np.sin(ang)
            if c + 1 < d:
                pe[:, c + 1] = np.cos(ang)
        x = f32(rng, 2, N, d)
        save_safetensors(os.path.join(out_dir, f"sinusoidal_d{d}_n{N}.safetensors"),
                         {"pe": pe, "x": x, "y": x.astype(np.float64) + pe[None]}, dict(N=N, d=d, offset=offset))
    # ALiBi: slopes for several head counts, bias causal and symmetric.
    for H in (1, 2, 3, 5, 6, 8, 12, 16, 24):
        s = np.array(get_slopes(H), dtype=np.float64)
        Nq, Nk, qo = 5, 8, 3
        i = np.arange(Nq)[:, None] + qo
        j = np.arange(Nk)[None, :]
        causal = -s[:, None, None] * (i - j)[None]
        sym = -s[:, None, None] * np.abs(i - j)[None]
        save_safetensors(os.path.join(out_dir, f"alibi_h{H}.safetensors"),
                         {"slopes": s, "bias_causal": causal, "bias_symmetric": sym},
                         dict(H=H, Nq=Nq, Nk=Nk, q_offset=qo))
    # RoPE: contiguous and strided, full and partial, offsets and explicit positions.
    cases = [
        ("rope_dh8_n7", 2, 3, 7, 8, 8, 10000.0, 0, False),
        ("rope_dh6_n33_off", 1, 2, 33, 6, 6, 10000.0, 100, False),
        ("rope_dh12_rot8_pos", 2, 2, 5, 12, 8, 500.0, 0, True),
        ("rope_dh64_n3_off", 1, 1, 3, 64, 64, 10000.0, 4093, False),
    ]
    for name, B, H, N, dh, rot, base, offset, explicit in cases:
        x32 = f32(rng, B, H, N, dh)
        if explicit:
            positions = rng.integers(0, 2000, size=(B, N)).astype(np.int64)
        else:
            positions = np.broadcast_to(np.arange(offset, offset + N), (B, N)).copy()
        x = t64(x32)
        y = rope_ref(x, torch.from_numpy(positions), rot, base)
        dy = f32(rng, B, H, N, dh)
        (y * torch.from_numpy(dy.astype(np.float64))).sum().backward()
        t = {"x": x32, "y": np64(y), "dy": dy, "dx": np64(x.grad)}
        if explicit:
            t["pos"] = positions.astype(np.float64)  # small integers, exact in F64
        save_safetensors(os.path.join(out_dir, name + ".safetensors"), t,
                         dict(B=B, H=H, N=N, dh=dh, rot_dim=rot, base=base, offset=offset, explicit=int(explicit)))
    # Learned: x + table[pos], with repeated positions so that the gradient sums.
    B, N, d, L = 2, 6, 5, 10
    table32 = f32(rng, L, d)
    x32 = f32(rng, B, N, d)
    positions = np.array([[0, 1, 2, 3, 4, 5], [9, 9, 2, 0, 7, 7]], dtype=np.int64)
    emb = torch.nn.Embedding(L, d)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(table32.astype(np.float64)))
    x = t64(x32)
    y = x + emb(torch.from_numpy(positions))
    dy = f32(rng, B, N, d)
    (y * torch.from_numpy(dy.astype(np.float64))).sum().backward()
    save_safetensors(os.path.join(out_dir, "learned.safetensors"),
                     {"table": table32, "x": x32, "pos": positions.astype(np.float64), "y": np64(y), "dy": dy,
                      "dtable": np64(emb.weight.grad)}, dict(B=B, N=N, d=d, max_len=L))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data")
    gen_mha(os.path.join(root, "mha"))
    gen_posenc(os.path.join(root, "posenc"))


if __name__ == "__main__":
    main()
