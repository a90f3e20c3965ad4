#!/usr/bin/python3
"""Writes the PyTorch reference files for tests/test_transformer.c.

    /usr/bin/python3 tools/gen_transformer_refs.py [tests/data]     (writes tests/data/transformer)

For each case NAME (tests/data/transformer):
and reverse.tsv, a tiny sequence-reversal data set for tests/cli_transformer.sh and
tests/cli_html.sh.

  NAME.weights.safetensors  the parameters under the names attn's Transformer uses, which are
                            torch.nn.Transformer's state_dict names for the layers
                            (encoder.layers.0.self_attn.in_proj_weight, ..., decoder.norm.bias)
                            plus the embeddings, position tables and generator around them;
                            float32, as a user would export them.
  NAME.safetensors          inputs and expected outputs, with __metadata__ "config" holding
                            the model's JSON (as attn_transformer_config_to_json writes it):
      inputs   src (B,S), src_len (B), tgt_in (B,T), tgt_out (B,T): token ids as F32
      expect   logits (B,T,Vt), loss (1) = cross_entropy(logits, tgt_out, ignore_index=0,
               label_smoothing=0.1), grad.<name> for every parameter                 F64
The model is torch.nn.Transformer(batch_first=True, dropout=0) in float64 evaluated on the
float32-rounded weights, around it what attn adds (the paper's): embeddings times sqrt(E),
the sinusoidal table or learned position rows added, the generator (tied to the target
embedding, or separate). Source padding is given as src_key_padding_mask and
memory_key_padding_mask, the causal mask as a float -inf mask. Training mode with dropout 0
(so PyTorch's fast inference path, which zeroes padded positions, is not taken).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def save_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
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


def sinusoidal(n, d):
    pe = np.zeros((n, d))
    for p in range(n):
        for i in range(0, d, 2):
            ang = p / 10000.0 ** (i / d)
            pe[p, i] = math.sin(ang)
            if i + 1 < d:
                pe[p, i + 1] = math.cos(ang)
    return torch.tensor(pe.astype(np.float32).astype(np.float64))


class Ref(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E = c["d_model"]
        self.tr = nn.Transformer(d_model=E, nhead=c["heads"], num_encoder_layers=c["enc_layers"],
                                 num_decoder_layers=c["dec_layers"], dim_feedforward=c["d_ff"], dropout=0.0,
                                 activation=c["activation"], batch_first=True, norm_first=c["norm"] == "pre")
        g = torch.Generator().manual_seed(c["seed"])
        def p(*shape, std=1.0):
            return nn.Parameter(torch.randn(*shape, generator=g) * std)
        if c["share"] == "all":
            self.embed = p(c["src_vocab"], E, std=E ** -0.5)
        else:
            self.src_embed = p(c["src_vocab"], E, std=E ** -0.5)
            self.tgt_embed = p(c["tgt_vocab"], E, std=E ** -0.5)
        if c["share"] == "none":
            self.gen_w = p(c["tgt_vocab"], E, std=E ** -0.5)
        self.gen_b = p(c["tgt_vocab"], std=0.1)
        if c["pos"] == "learned":
            self.src_pos = p(c["max_len"], E, std=0.1)
            self.tgt_pos = p(c["max_len"], E, std=0.1)
        # Non-trivial biases and norms, so that every parameter is tested.
        with torch.no_grad():
            for name, q in self.tr.named_parameters():
                if q.dim() == 1:
                    q.copy_(torch.randn(q.shape, generator=g) * 0.1 + (1.0 if "norm" in name and "weight" in name else 0.0))

    def tables(self):
        s = self.embed if self.c["share"] == "all" else self.src_embed
        t = self.embed if self.c["share"] == "all" else self.tgt_embed
        gw = t if self.c["share"] != "none" else self.gen_w
        return s, t, gw

    def named_weights(self):
        """attn's names -> parameters."""
        out = {}
        for name, q in self.tr.named_parameters():
            out[name] = q
        if self.c["share"] == "all":
            out["embed.weight"] = self.embed
        else:
            out["src_embed.weight"] = self.src_embed
            out["tgt_embed.weight"] = self.tgt_embed
        if self.c["share"] == "none":
            out["generator.weight"] = self.gen_w
        out["generator.bias"] = self.gen_b
        if self.c["pos"] == "learned":
            out["src_pos.weight"] = self.src_pos
            out["tgt_pos.weight"] = self.tgt_pos
        return out

    def forward(self, src, src_len, tgt_in):
        c = self.c
        E = c["d_model"]
        B, S = src.shape
        T = tgt_in.shape[1]
        se, te, gw = self.tables()
        x = se[src] * math.sqrt(E)
        y = te[tgt_in] * math.sqrt(E)
        if c["pos"] == "sinusoidal":
            x = x + sinusoidal(S, E)
            y = y + sinusoidal(T, E)
        elif c["pos"] == "learned":
            x = x + self.src_pos[:S]
            y = y + self.tgt_pos[:T]
        pad = torch.arange(S)[None, :] >= src_len[:, None]
        causal = torch.triu(torch.full((T, T), float("-inf")), 1)
        out = self.tr(x, y, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad)
        return out @ gw.T + self.gen_b


CASES = [
    # name, overrides
    ("post_sin_tgt_relu", dict(norm="post", pos="sinusoidal", share="tgt", activation="relu", seed=1)),
    ("pre_learned_none_gelu", dict(norm="pre", pos="learned", share="none", activation="gelu", seed=2)),
    ("post_none_all_relu", dict(norm="post", pos="none", share="all", activation="relu", seed=3, tgt_vocab=11)),
]


def gen(root):
    os.makedirs(root, exist_ok=True)
    for name, over in CASES:
        c = dict(src_vocab=11, tgt_vocab=13, d_model=16, heads=4, kv_heads=4, d_ff=24, enc_layers=2, dec_layers=2,
                 max_len=16, rope_base=10000.0, scale_embed=True, dropout=0.0, ln_eps=1e-5, src_tok="zh", tgt_tok="en")
        c.update(over)
        torch.manual_seed(c["seed"])
        m = Ref(c)
        # Round every weight to float32, as the C side holds them.
        with torch.no_grad():
            for q in m.parameters():
                q.copy_(q.float().double())
        m.train()
        rng = np.random.default_rng(c["seed"])
        B, S, T = 3, 6, 5
        src_len = np.array([6, 3, 1])
        src = rng.integers(4, c["src_vocab"], size=(B, S))
        tgt_in = rng.integers(4, c["tgt_vocab"], size=(B, T))
        tgt_in[:, 0] = 2
        tgt_out = rng.integers(3, c["tgt_vocab"], size=(B, T))
        for b in range(B):
            src[b, src_len[b]:] = 0
        tgt_len = np.array([5, 4, 2])
        for b in range(B):
            tgt_in[b, tgt_len[b]:] = 0
            tgt_out[b, tgt_len[b]:] = 0
        logits = m(torch.tensor(src), torch.tensor(src_len), torch.tensor(tgt_in))
        loss = nn.functional.cross_entropy(logits.reshape(-1, c["tgt_vocab"]), torch.tensor(tgt_out).reshape(-1),
                                           ignore_index=0, label_smoothing=0.1)
        loss.backward()
        weights = m.named_weights()
        save_safetensors(os.path.join(root, name + ".weights.safetensors"),
                         {k: v.detach().numpy().astype(np.float32) for k, v in weights.items()})
        exp = {
            "src": src.astype(np.float32), "src_len": src_len.astype(np.float32),
            "tgt_in": tgt_in.astype(np.float32), "tgt_out": tgt_out.astype(np.float32),
            "logits": logits.detach().numpy(), "loss": np.array([loss.item()]),
        }
        for k, v in weights.items():
            exp["grad." + k] = v.grad.numpy()
        cfg = {"kind": "transformer"}
        cfg.update({k: v for k, v in c.items() if k != "seed"})
        save_safetensors(os.path.join(root, name + ".safetensors"), exp, {"config": json.dumps(cfg)})
        print(name, "loss", loss.item())


def gen_reverse(root):
    """reverse.tsv: 200 pairs "c a f" -> "f a c" over the letters a..h, for the CLI tests."""
    rng = np.random.default_rng(5)
    with open(os.path.join(root, "reverse.tsv"), "w") as f:
        for _ in range(200):
            w = [chr(ord("a") + int(x)) for x in rng.integers(0, 8, size=int(rng.integers(3, 7)))]
            f.write(" ".join(w) + "\t" + " ".join(reversed(w)) + "\n")


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data")
    gen(os.path.join(root, "transformer"))
    gen_reverse(os.path.join(root, "transformer"))
