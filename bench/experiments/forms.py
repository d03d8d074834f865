"""Full-size SqueezeBERT-uncased encoders in several Paddle formulations, all built from the same random
weights (_cache/weights.npz, HF/PaddleNLP layout: conv weights [out, in/groups, 1]).

Not a script: imported by bench_dygraph.py / bench_infer.py / check_parity.py.
All forms: forward(input_ids, token_type_ids, attention_mask) -> (sequence_output [B, L, 768], pooled [B, 768]).

  A        nn.Conv1D on [B, C, L] (PaddleNLP's way, incl. its transpose-LN-transpose)      baseline
  B        [B*L, C] rows; grouped conv = reshape [N,g,c] -> transpose [g,N,c] -> bmm [g,c,o] -> transpose back
  C        like B but grouped conv via paddle.einsum('ngc,gco->ngo')
  D        "fused": one bmm for Q,K,V of all groups ([4,N,192]@[4,192,576]), scale folded into Wq,
           post_attention (groups=1) = F.linear, intermediate->gelu->output kept in [g, N, *] layout
           (no transpose between them), explicit matmul/softmax attention
  E        D but attention through F.scaled_dot_product_attention ([B, L, H, D] layout, additive mask)
  F        dense: every grouped conv as one F.linear with a block-diagonal weight (3.2x the FLOPs, 0 transposes)
  G        D, but grouped convs as g separate F.linear on column slices + concat (fc-fusable in inference)
  VG       V with G's split grouped convs
  G2       grouped convs as per-group 2-D F.linear on column slices, no stack between inter/output (fc fusable)
  H        G2 but Q/K/V by one head-major broadcast bmm [1,B,4,1,L,192]@[3,1,4,3,192,64] -> [3,B,12,L,64]
  VG2/VH   varlen versions of G2 / H (x gathered back to the padded grid only as the QKV input)
  W*       varlen with selectable QKV / FFN pieces (class VarLayer): W = V re-coded, WS = split FFN,
           WD/WDS = dense block-diagonal q,k,v (4x QKV FLOPs, no transposes), WG/WGS = one dense fused QKV
           W2 = W with the output-conv bias added after transpose/reshape (lets oneDNN fold them into the
           matmul), W3 = W2 + attention on 5-D [B,4,3,L,64] (no reshape after the 6-D transpose)
  X        varlen, groups folded into the attention batch ([4B, 3 heads, L, 64]): no explicit activation
           transposes, post-attention as bmm + sum over groups (class GroupAttnLayer)
  V        "varlen": D computed only on the real (non-pad) tokens: ids gathered by nonzero(mask); per-token
           ops (all convs, LN, gelu) run on T real tokens, only Q/K/V are gathered back to the padded
           [B, L] grid for attention. Sequence output at pad positions is 0 (HF has garbage there).
"""
import math
import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from common import H, I, LAYERS, HEADS, HEAD_DIM, G_QKV, G_POST, G_INT, G_OUT, EPS


def P(arr, dtype="float32"):
    """numpy -> frozen parameter (create_parameter so jit.save stores it as a param)."""
    arr = np.ascontiguousarray(arr, dtype=dtype)
    p = paddle.create_parameter(list(arr.shape), dtype, default_initializer=nn.initializer.Assign(arr))
    p.stop_gradient = True
    return p


def grouped_w(w, g):
    """conv weight [out, in/g, 1] -> [g, in/g, out/g] so that y_g = x_g @ W[g]."""
    out, cin_g, _ = w.shape
    return w[:, :, 0].reshape(g, out // g, cin_g).transpose(0, 2, 1)


def blockdiag_w(w, g):
    """conv weight [out, in/g, 1] -> dense [in, out] (paddle Linear layout) with zero off-diagonal blocks."""
    out, cin_g, _ = w.shape
    d = np.zeros((cin_g * g, out), np.float32)
    og = out // g
    for k in range(g):
        d[k * cin_g:(k + 1) * cin_g, k * og:(k + 1) * og] = w[k * og:(k + 1) * og, :, 0].T
    return d


class Embeddings(nn.Layer):
    def __init__(self, w):
        super().__init__()
        self.word = P(w["embeddings.word_embeddings.weight"])
        self.pos = P(w["embeddings.position_embeddings.weight"])
        self.ttype = P(w["embeddings.token_type_embeddings.weight"])
        self.ln_w = P(w["embeddings.LayerNorm.weight"]); self.ln_b = P(w["embeddings.LayerNorm.bias"])

    def forward(self, ids, tt):
        L = paddle.shape(ids)[1]
        pos = paddle.arange(L, dtype="int64")
        x = F.embedding(ids, self.word) + F.embedding(pos, self.pos).unsqueeze(0) + F.embedding(tt, self.ttype)
        return F.layer_norm(x, [H], self.ln_w, self.ln_b, EPS)


class Pooler(nn.Layer):
    def __init__(self, w):
        super().__init__()
        self.w = P(w["pooler.dense.weight"].T); self.b = P(w["pooler.dense.bias"])

    def forward(self, first_tok):
        return paddle.tanh(F.linear(first_tok, self.w, self.b))


def ext_mask(mask, dtype="float32"):
    return ((1.0 - mask.astype(dtype)) * -10000.0).unsqueeze([1, 2])  # [B,1,1,L]


# ----------------------------------------------------------------------------------------------- A
class ConvLayer(nn.Layer):
    def __init__(self, w, l):
        super().__init__()
        p = f"encoder.layers.{l}."
        def conv(name, cin, cout, g):
            c = nn.Conv1D(cin, cout, 1, groups=g)
            c.weight.set_value(w[p + name + ".weight"]); c.bias.set_value(w[p + name + ".bias"])
            c.weight.stop_gradient = True; c.bias.stop_gradient = True
            return c
        self.q = conv("attention.query", H, H, G_QKV); self.k = conv("attention.key", H, H, G_QKV)
        self.v = conv("attention.value", H, H, G_QKV)
        self.post = conv("post_attention.conv1d", H, H, G_POST)
        self.inter = conv("intermediate.conv1d", H, I, G_INT)
        self.out = conv("output.conv1d", I, H, G_OUT)
        self.ln1 = nn.LayerNorm(H, epsilon=EPS); self.ln2 = nn.LayerNorm(H, epsilon=EPS)
        self.ln1.weight.set_value(w[p + "post_attention.layernorm.weight"]); self.ln1.bias.set_value(w[p + "post_attention.layernorm.bias"])
        self.ln2.weight.set_value(w[p + "output.layernorm.weight"]); self.ln2.bias.set_value(w[p + "output.layernorm.bias"])

    def forward(self, x, mask):  # x [B, C, L]
        q = self.q(x).reshape([0, HEADS, HEAD_DIM, -1]).transpose([0, 1, 3, 2])
        k = self.k(x).reshape([0, HEADS, HEAD_DIM, -1])
        v = self.v(x).reshape([0, HEADS, HEAD_DIM, -1]).transpose([0, 1, 3, 2])
        s = paddle.matmul(q, k) / math.sqrt(HEAD_DIM) + mask
        ctx = paddle.matmul(F.softmax(s, -1), v)                       # [B, h, L, d]
        ctx = ctx.transpose([0, 1, 3, 2]).reshape([0, H, -1])         # [B, C, L]
        y = self.ln1((self.post(ctx) + x).transpose([0, 2, 1])).transpose([0, 2, 1])
        h = F.gelu(self.inter(y))
        return self.ln2((self.out(h) + y).transpose([0, 2, 1])).transpose([0, 2, 1])


class FormA(nn.Layer):
    def __init__(self, w):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([ConvLayer(w, l) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        m = ext_mask(mask)
        x = self.emb(ids, tt).transpose([0, 2, 1])
        for lay in self.layers:
            x = lay(x, m)
        seq = x.transpose([0, 2, 1])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- B / C
def gconv_bmm(x, w, b, g):
    """x [N, cin] -> [N, cout]; w [g, cin/g, cout/g] (transpose + batched matmul)."""
    cin_g = w.shape[1]
    xg = x.reshape([-1, g, cin_g]).transpose([1, 0, 2])
    return paddle.matmul(xg, w).transpose([1, 0, 2]).reshape([-1, g * w.shape[2]]) + b


def gconv_einsum(x, w, b, g):
    cin_g = w.shape[1]
    return paddle.einsum("ngc,gco->ngo", x.reshape([-1, g, cin_g]), w).reshape([-1, g * w.shape[2]]) + b


class RowLayer(nn.Layer):
    """[N=B*L, C] activations; every conv through `gconv` (groups=1 too, for B/C purity)."""
    def __init__(self, w, l, gconv):
        super().__init__()
        p = f"encoder.layers.{l}."
        self.gconv = gconv
        self.wq = P(grouped_w(w[p + "attention.query.weight"], G_QKV)); self.bq = P(w[p + "attention.query.bias"])
        self.wk = P(grouped_w(w[p + "attention.key.weight"], G_QKV)); self.bk = P(w[p + "attention.key.bias"])
        self.wv = P(grouped_w(w[p + "attention.value.weight"], G_QKV)); self.bv = P(w[p + "attention.value.bias"])
        self.wp = P(grouped_w(w[p + "post_attention.conv1d.weight"], G_POST)); self.bp = P(w[p + "post_attention.conv1d.bias"])
        self.wi = P(grouped_w(w[p + "intermediate.conv1d.weight"], G_INT)); self.bi = P(w[p + "intermediate.conv1d.bias"])
        self.wo = P(grouped_w(w[p + "output.conv1d.weight"], G_OUT)); self.bo = P(w[p + "output.conv1d.bias"])
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def forward(self, x, mask, B, L):  # x [N, C]
        heads = lambda t: t.reshape([B, L, HEADS, HEAD_DIM]).transpose([0, 2, 1, 3])
        q = heads(self.gconv(x, self.wq, self.bq, G_QKV))
        k = heads(self.gconv(x, self.wk, self.bk, G_QKV))
        v = heads(self.gconv(x, self.wv, self.bv, G_QKV))
        s = paddle.matmul(q, k, transpose_y=True) / math.sqrt(HEAD_DIM) + mask
        ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([-1, H])
        y = F.layer_norm(self.gconv(ctx, self.wp, self.bp, G_POST) + x, [H], self.l1w, self.l1b, EPS)
        h = F.gelu(self.gconv(y, self.wi, self.bi, G_INT))
        return F.layer_norm(self.gconv(h, self.wo, self.bo, G_OUT) + y, [H], self.l2w, self.l2b, EPS)


class FormRows(nn.Layer):
    def __init__(self, w, gconv):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([RowLayer(w, l, gconv) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        m = ext_mask(mask)
        x = self.emb(ids, tt).reshape([-1, H])
        for lay in self.layers:
            x = lay(x, m, B, L)
        seq = x.reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- D / E / G / V
class FusedLayer(nn.Layer):
    """attn: 'matmul' (explicit) or 'sdpa'. gmode: 'bmm' (transpose+bmm) or 'split' (g x F.linear)."""
    bias_after = False
    def __init__(self, w, l, attn="matmul", gmode="bmm", ffn_dtype="float32"):
        super().__init__()
        p = f"encoder.layers.{l}."
        self.attn, self.gmode = attn, gmode
        sc = 1.0 / math.sqrt(HEAD_DIM)
        wq = grouped_w(w[p + "attention.query.weight"], G_QKV) * sc
        wk = grouped_w(w[p + "attention.key.weight"], G_QKV)
        wv = grouped_w(w[p + "attention.value.weight"], G_QKV)
        g = G_QKV; og = H // g
        bq = w[p + "attention.query.bias"].reshape(g, og) * sc
        bk = w[p + "attention.key.bias"].reshape(g, og); bv = w[p + "attention.value.bias"].reshape(g, og)
        self.wqkv = P(np.concatenate([wq, wk, wv], axis=2))                 # [4, 192, 576]
        self.bqkv = P(np.concatenate([bq, bk, bv], axis=1)[:, None, :])      # [4, 1, 576]
        self.wp = P(w[p + "post_attention.conv1d.weight"][:, :, 0].T); self.bp = P(w[p + "post_attention.conv1d.bias"])
        self.wi = P(grouped_w(w[p + "intermediate.conv1d.weight"], G_INT))            # [4, 192, 768]
        self.bi = P(w[p + "intermediate.conv1d.bias"].reshape(G_INT, 1, I // G_INT))
        self.wo = P(grouped_w(w[p + "output.conv1d.weight"], G_OUT))                  # [4, 768, 192]
        self.bo = P(w[p + "output.conv1d.bias"].reshape(G_OUT, 1, H // G_OUT))
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def _gmm_in(self, x, wt, bt):
        """x [N, C] -> [g, N, o] grouped (the [g, *, *] layout is kept for the caller)."""
        g, cin_g = wt.shape[0], wt.shape[1]
        if self.gmode == "split":
            return paddle.stack([paddle.matmul(x[:, k * cin_g:(k + 1) * cin_g], wt[k]) + bt[k] for k in range(g)])
        return paddle.matmul(x.reshape([-1, g, cin_g]).transpose([1, 0, 2]), wt) + bt

    def qkv(self, x, B, L):
        qkv = self._gmm_in(x, self.wqkv, self.bqkv)                       # [4, N, 576] = [g, N, (qkv, h3, d)]
        if self.attn == "sdpa":   # -> [3, B, L, 12, 64]
            t = qkv.reshape([G_QKV, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 2, 0, 4, 5])
            t = t.reshape([3, B, L, HEADS, HEAD_DIM])
        else:                      # -> [3, B, 12, L, 64]
            t = qkv.reshape([G_QKV, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 0, 4, 2, 5])
            t = t.reshape([3, B, HEADS, L, HEAD_DIM])
        return t[0], t[1], t[2]

    def attention(self, q, k, v, mask):
        """returns context as [B, L, 768]"""
        if self.attn == "sdpa":
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, training=False, scale=1.0)
            return ctx.reshape([0, 0, H])
        s = paddle.matmul(q, k, transpose_y=True) + mask
        ctx = paddle.matmul(F.softmax(s, -1), v)
        return ctx.transpose([0, 2, 1, 3]).reshape([0, 0, H])

    def ffn(self, x, ctx):
        y = F.layer_norm(F.linear(ctx, self.wp, self.bp) + x, [H], self.l1w, self.l1b, EPS)
        h = F.gelu(self._gmm_in(y, self.wi, self.bi))                      # [4, N, 768]
        if self.gmode == "split":
            z = paddle.concat([paddle.matmul(h[k], self.wo[k]) for k in range(G_OUT)], axis=1)
            z = z + self.bo.reshape([-1])
        else:
            if self.bias_after:
                z = paddle.matmul(h, self.wo).transpose([1, 0, 2]).reshape([-1, H]) + self.bo
            else:
                z = (paddle.matmul(h, self.wo) + self.bo).transpose([1, 0, 2]).reshape([-1, H])
        return F.layer_norm(z + y, [H], self.l2w, self.l2b, EPS)

    def forward(self, x, mask, B, L):   # x [N, C] (N = B*L)
        q, k, v = self.qkv(x, B, L)
        ctx = self.attention(q, k, v, mask).reshape([-1, H])
        return self.ffn(x, ctx)


class FormFused(nn.Layer):
    def __init__(self, w, attn="matmul", gmode="bmm"):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([FusedLayer(w, l, attn, gmode) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        m = ext_mask(mask)
        x = self.emb(ids, tt).reshape([-1, H])
        for lay in self.layers:
            x = lay(x, m, B, L)
        seq = x.reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


class FormVarlen(nn.Layer):
    """Per-token work on real tokens only. tok = nonzero(mask) (T rows); pad2tok maps every padded slot
    (b, l) to a real-token row (pads -> the previous real token: any finite value is fine since the
    additive mask zeroes them in softmax)."""
    def __init__(self, w, attn="matmul", gmode="bmm"):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([FusedLayer(w, l, attn, gmode) for l in range(LAYERS)])
        self.attn = attn

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        mflat = mask.reshape([-1])
        tok = paddle.nonzero(mflat).reshape([-1])                                   # [T] flat padded index
        pad2tok = paddle.clip(paddle.cumsum(mflat, axis=0) - 1, min=0)              # [B*L] -> row in [T]
        pos = paddle.arange(L, dtype="int64").unsqueeze(0).expand([B, L]).reshape([-1])
        e = self.emb
        x = (F.embedding(paddle.gather(ids.reshape([-1]), tok), e.word)
             + F.embedding(paddle.gather(pos, tok), e.pos)
             + F.embedding(paddle.gather(tt.reshape([-1]), tok), e.ttype))
        x = F.layer_norm(x, [H], e.ln_w, e.ln_b, EPS)                               # [T, C]
        m = ext_mask(mask)
        for lay in self.layers:
            qkv = lay._gmm_in(x, lay.wqkv, lay.bqkv)                                # [4, T, 576]
            qkv = paddle.gather(qkv, pad2tok, axis=1)                               # [4, B*L, 576]
            if self.attn == "sdpa":
                t = qkv.reshape([G_QKV, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 2, 0, 4, 5]).reshape([3, B, L, HEADS, HEAD_DIM])
            else:
                t = qkv.reshape([G_QKV, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 0, 4, 2, 5]).reshape([3, B, HEADS, L, HEAD_DIM])
            ctx = lay.attention(t[0], t[1], t[2], m).reshape([-1, H])                # [B*L, C]
            x = lay.ffn(x, paddle.gather(ctx, tok))                                  # [T, C]
        # back to padded [B, L, C] with zeros at pads
        seq = paddle.scatter(paddle.zeros([B * L, H], x.dtype), tok, x).reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- G2 / H
class SplitLayer(nn.Layer):
    """Grouped convs as per-group 2-D F.linear on column slices (oneDNN fc: bias+gelu fused), no stack.
    qkv: 'split' -> per-group F.linear [N,192]x[192,576], stack, 6-D transpose (like G)
         'head'  -> head-major broadcast bmm: x [B,4,L,192] (1 small transpose) @ W [3,1,4,3,192,64]
                    -> [3,B,4,3,L,64] = q,k,v [B,12,L,64] directly (no transpose of the outputs)."""
    def __init__(self, w, l, qkv="split"):
        super().__init__()
        p = f"encoder.layers.{l}."
        self.qkv_mode = qkv
        sc = 1.0 / math.sqrt(HEAD_DIM)
        g = G_QKV; og = H // g
        wq = grouped_w(w[p + "attention.query.weight"], g) * sc
        wk = grouped_w(w[p + "attention.key.weight"], g); wv = grouped_w(w[p + "attention.value.weight"], g)
        bq = w[p + "attention.query.bias"].reshape(g, og) * sc
        bk = w[p + "attention.key.bias"].reshape(g, og); bv = w[p + "attention.value.bias"].reshape(g, og)
        if qkv == "head":
            W = np.stack([wq, wk, wv])                                   # [3, 4, 192, 192(h3,d)]
            W = W.reshape(3, g, og, 3, HEAD_DIM).transpose(0, 1, 3, 2, 4)  # [3, 4, 3, 192, 64]
            self.wqkv = P(W[:, None])                                     # [3, 1, 4, 3, 192, 64]
            bb = np.stack([bq, bk, bv]).reshape(3, g, 3, 1, HEAD_DIM)
            self.bqkv = P(bb[:, None])                                    # [3, 1, 4, 3, 1, 64]
        else:
            self.wqkv = P(np.concatenate([wq, wk, wv], axis=2))          # [4, 192, 576]
            self.bqkv = P(np.concatenate([bq, bk, bv], axis=1))          # [4, 576]
        self.wp = P(w[p + "post_attention.conv1d.weight"][:, :, 0].T); self.bp = P(w[p + "post_attention.conv1d.bias"])
        self.wi = P(grouped_w(w[p + "intermediate.conv1d.weight"], G_INT)); self.bi = P(w[p + "intermediate.conv1d.bias"].reshape(G_INT, -1))
        self.wo = P(grouped_w(w[p + "output.conv1d.weight"], G_OUT)); self.bo = P(w[p + "output.conv1d.bias"].reshape(G_OUT, -1))
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def qkv(self, x, B, L):   # x [N, C] -> q, k, v [B, 12, L, 64]
        if self.qkv_mode == "head":
            xh = x.reshape([B, L, G_QKV, H // G_QKV]).transpose([0, 2, 1, 3]).unsqueeze([0, 3])  # [1,B,4,1,L,192]
            t = (paddle.matmul(xh, self.wqkv) + self.bqkv).reshape([3, B, HEADS, L, HEAD_DIM])
        else:
            c = H // G_QKV
            qkv = paddle.stack([F.linear(x[:, k * c:(k + 1) * c], self.wqkv[k], self.bqkv[k]) for k in range(G_QKV)])
            t = qkv.reshape([G_QKV, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 0, 4, 2, 5]).reshape([3, B, HEADS, L, HEAD_DIM])
        return t[0], t[1], t[2]

    def ffn(self, x, ctx):
        y = F.layer_norm(F.linear(ctx, self.wp, self.bp) + x, [H], self.l1w, self.l1b, EPS)
        c = H // G_INT
        hs = [F.gelu(F.linear(y[:, k * c:(k + 1) * c], self.wi[k], self.bi[k])) for k in range(G_INT)]
        z = paddle.concat([F.linear(hs[k], self.wo[k], self.bo[k]) for k in range(G_OUT)], axis=1)
        return F.layer_norm(z + y, [H], self.l2w, self.l2b, EPS)

    def forward(self, x, mask, B, L):
        q, k, v = self.qkv(x, B, L)
        s = paddle.matmul(q, k, transpose_y=True) + mask
        ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([-1, H])
        return self.ffn(x, ctx)


class FormSplit(nn.Layer):
    def __init__(self, w, qkv="split", varlen=False):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w); self.varlen = varlen
        self.layers = nn.LayerList([SplitLayer(w, l, qkv) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        m = ext_mask(mask)
        if not self.varlen:
            x = self.emb(ids, tt).reshape([-1, H])
            for lay in self.layers:
                x = lay(x, m, B, L)
            seq = x.reshape([B, L, H])
            return seq, self.pool(seq[:, 0])
        mflat = mask.reshape([-1])
        tok = paddle.nonzero(mflat).reshape([-1])
        pad2tok = paddle.clip(paddle.cumsum(mflat, axis=0) - 1, min=0)
        pos = paddle.arange(L, dtype="int64").unsqueeze(0).expand([B, L]).reshape([-1])
        e = self.emb
        x = (F.embedding(paddle.gather(ids.reshape([-1]), tok), e.word)
             + F.embedding(paddle.gather(pos, tok), e.pos)
             + F.embedding(paddle.gather(tt.reshape([-1]), tok), e.ttype))
        x = F.layer_norm(x, [H], e.ln_w, e.ln_b, EPS)                                 # [T, C]
        for lay in self.layers:
            q, k, v = lay.qkv(paddle.gather(x, pad2tok), B, L)                          # padded grid for attention
            s = paddle.matmul(q, k, transpose_y=True) + m
            ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([-1, H])
            x = lay.ffn(x, paddle.gather(ctx, tok))
        seq = paddle.scatter(paddle.zeros([B * L, H], x.dtype), tok, x).reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- W*
class VarLayer(nn.Layer):
    """Varlen layer with selectable pieces (all numerically identical):
    qkv = 'bmm'    [4,T,192]@[4,192,576] -> gather to pad grid -> 6-D transpose -> q,k,v   (= V)
          'dense'  3 x F.linear with block-diagonal [768,768] weights (4x the QKV FLOPs) -> [T,768] each
                   -> gather -> reshape/transpose that oneDNN fuses into the attention matmuls
          'gdense' ONE F.linear [768, 2304] block-diagonal (q|k|v) -> gather -> reshape [B,L,3,12,64]
                   -> transpose -> q,k,v (standard BERT fused-QKV pattern)
    ffn = 'bmm'    transpose -> bmm(+bias+gelu) -> bmm -> transpose                          (= V)
          'split'  paddle.split into 4 column groups -> 4 fc(+gelu) -> 4 fc -> concat          (~ VG2)"""
    def __init__(self, w, l, qkv="bmm", ffn="bmm", bias_after=False, att5=False):
        super().__init__()
        p = f"encoder.layers.{l}."
        self.qkv_mode, self.ffn_mode, self.bias_after, self.att5 = qkv, ffn, bias_after, att5
        sc = 1.0 / math.sqrt(HEAD_DIM)
        g = G_QKV; og = H // g
        if qkv == "bmm":
            wq = grouped_w(w[p + "attention.query.weight"], g) * sc
            wk = grouped_w(w[p + "attention.key.weight"], g); wv = grouped_w(w[p + "attention.value.weight"], g)
            bq = w[p + "attention.query.bias"].reshape(g, og) * sc
            bk = w[p + "attention.key.bias"].reshape(g, og); bv = w[p + "attention.value.bias"].reshape(g, og)
            self.wqkv = P(np.concatenate([wq, wk, wv], axis=2)); self.bqkv = P(np.concatenate([bq, bk, bv], axis=1)[:, None, :])
        else:
            ws = [blockdiag_w(w[p + f"attention.{n}.weight"], g) * (sc if n == "query" else 1.0) for n in ("query", "key", "value")]
            bs = [w[p + f"attention.{n}.bias"] * (sc if n == "query" else 1.0) for n in ("query", "key", "value")]
            if qkv == "dense":
                self.wq, self.wk, self.wv = [P(x) for x in ws]; self.bq, self.bk, self.bv = [P(x) for x in bs]
            else:
                self.wqkv = P(np.concatenate(ws, 1)); self.bqkv = P(np.concatenate(bs))
        self.wp = P(w[p + "post_attention.conv1d.weight"][:, :, 0].T); self.bp = P(w[p + "post_attention.conv1d.bias"])
        if ffn == "bmm":
            self.wi = P(grouped_w(w[p + "intermediate.conv1d.weight"], G_INT)); self.bi = P(w[p + "intermediate.conv1d.bias"].reshape(G_INT, 1, -1))
            self.wo = P(grouped_w(w[p + "output.conv1d.weight"], G_OUT))
            self.bo = P(w[p + "output.conv1d.bias"] if bias_after else w[p + "output.conv1d.bias"].reshape(G_OUT, 1, -1))
        else:
            wi = grouped_w(w[p + "intermediate.conv1d.weight"], G_INT); bi = w[p + "intermediate.conv1d.bias"].reshape(G_INT, -1)
            wo = grouped_w(w[p + "output.conv1d.weight"], G_OUT)
            self.wis = nn.ParameterList([P(wi[k]) for k in range(G_INT)]); self.bis = nn.ParameterList([P(bi[k]) for k in range(G_INT)])
            self.wos = nn.ParameterList([P(wo[k]) for k in range(G_OUT)]); self.bo = P(w[p + "output.conv1d.bias"])
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def attn_ctx(self, x, pad2tok, tok, mask, B, L):
        """x [T, C] real tokens -> context [T, C]"""
        if self.qkv_mode == "bmm":
            g, c = G_QKV, H // G_QKV
            qkv = paddle.matmul(x.reshape([-1, g, c]).transpose([1, 0, 2]), self.wqkv) + self.bqkv
            t = paddle.gather(qkv, pad2tok, axis=1).reshape([g, B, L, 3, 3, HEAD_DIM]).transpose([3, 1, 0, 4, 2, 5])
            if self.att5:   # [3, B, 4, 3, L, 64]: attention with batch dims [B, 4, 3], no reshape
                q, k, v = t[0], t[1], t[2]
                s = paddle.matmul(q, k, transpose_y=True) + mask.unsqueeze(1)
                ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 3, 1, 2, 4]).reshape([-1, H])
                return paddle.gather(ctx, tok)
            t = t.reshape([3, B, HEADS, L, HEAD_DIM])
            q, k, v = t[0], t[1], t[2]
        elif self.qkv_mode == "dense":
            hd = lambda y: paddle.gather(y, pad2tok).reshape([B, L, HEADS, HEAD_DIM]).transpose([0, 2, 1, 3])
            q = hd(F.linear(x, self.wq, self.bq)); k = hd(F.linear(x, self.wk, self.bk)); v = hd(F.linear(x, self.wv, self.bv))
        else:
            t = paddle.gather(F.linear(x, self.wqkv, self.bqkv), pad2tok).reshape([B, L, 3, HEADS, HEAD_DIM])
            t = t.transpose([2, 0, 3, 1, 4])
            q, k, v = t[0], t[1], t[2]
        s = paddle.matmul(q, k, transpose_y=True) + mask
        ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([-1, H])
        return paddle.gather(ctx, tok)

    def ffn(self, x, ctx):
        y = F.layer_norm(F.linear(ctx, self.wp, self.bp) + x, [H], self.l1w, self.l1b, EPS)
        if self.ffn_mode == "bmm":
            h = F.gelu(paddle.matmul(y.reshape([-1, G_INT, H // G_INT]).transpose([1, 0, 2]), self.wi) + self.bi)
            if self.bias_after:
                z = paddle.matmul(h, self.wo).transpose([1, 0, 2]).reshape([-1, H]) + self.bo
            else:
                z = (paddle.matmul(h, self.wo) + self.bo).transpose([1, 0, 2]).reshape([-1, H])
        else:
            ys = paddle.split(y, G_INT, axis=1)
            z = paddle.concat([paddle.matmul(F.gelu(F.linear(ys[k], self.wis[k], self.bis[k])), self.wos[k])
                               for k in range(G_INT)], axis=1) + self.bo
        return F.layer_norm(z + y, [H], self.l2w, self.l2b, EPS)


class FormVar(nn.Layer):
    def __init__(self, w, qkv="bmm", ffn="bmm", **kw):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([VarLayer(w, l, qkv, ffn, **kw) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        mflat = mask.reshape([-1])
        tok = paddle.nonzero(mflat).reshape([-1])                          # [T]: flat index of real tokens
        pad2tok = paddle.clip(paddle.cumsum(mflat, axis=0) - 1, min=0)     # [B*L]: pad slot -> some real row
        pos = paddle.arange(L, dtype="int64").unsqueeze(0).expand([B, L]).reshape([-1])
        e = self.emb
        x = (F.embedding(paddle.gather(ids.reshape([-1]), tok), e.word)
             + F.embedding(paddle.gather(pos, tok), e.pos)
             + F.embedding(paddle.gather(tt.reshape([-1]), tok), e.ttype))
        x = F.layer_norm(x, [H], e.ln_w, e.ln_b, EPS)
        m = ext_mask(mask)
        for lay in self.layers:
            x = lay.ffn(x, lay.attn_ctx(x, pad2tok, tok, m, B, L))
        seq = paddle.scatter(paddle.zeros([B * L, H], x.dtype), tok, x).reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- X
class GroupAttnLayer(nn.Layer):
    """Varlen layer whose attention never transposes activations explicitly: the 4 QKV groups go into the
    attention batch dim. q,k,v = 3 bmm [4,T,192]@[4,192,192] -> gather(axis=1) to the padded grid
    [4, B*L, 192] -> reshape [4B, L, 3, 64] -> transpose(0,2,1,3) (the BERT pattern oneDNN folds into the
    attention matmul) -> scores [4B, 3, L, L] + mask tiled x4 -> ctx [4B, 3, L, 64] -> transpose/reshape
    back to [4, B*L, 192] (folded into the matmul output) -> gather(axis=1) to [4, T, 192] ->
    post-attention conv (groups=1) as bmm [4,T,192]@[4,192,768] + sum over groups. FFN as W (bmm)."""
    def __init__(self, w, l, mode="sum"):
        super().__init__()
        p = f"encoder.layers.{l}."
        sc = 1.0 / math.sqrt(HEAD_DIM)
        g = G_QKV; og = H // g
        self.wq = P(grouped_w(w[p + "attention.query.weight"], g) * sc); self.bq = P(w[p + "attention.query.bias"].reshape(g, 1, og) * sc)
        self.wk = P(grouped_w(w[p + "attention.key.weight"], g)); self.bk = P(w[p + "attention.key.bias"].reshape(g, 1, og))
        self.wv = P(grouped_w(w[p + "attention.value.weight"], g)); self.bv = P(w[p + "attention.value.bias"].reshape(g, 1, og))
        wp = w[p + "post_attention.conv1d.weight"][:, :, 0].T                 # [768 in, 768 out]
        self.wp4 = P(wp.reshape(g, og, H)); self.bp = P(w[p + "post_attention.conv1d.bias"])
        self.wi = P(grouped_w(w[p + "intermediate.conv1d.weight"], G_INT)); self.bi = P(w[p + "intermediate.conv1d.bias"].reshape(G_INT, 1, -1))
        self.wo = P(grouped_w(w[p + "output.conv1d.weight"], G_OUT)); self.bo = P(w[p + "output.conv1d.bias"].reshape(G_OUT, 1, -1))
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def forward(self, x, pad2tok, tok, mask4, B, L):
        g, c = G_QKV, H // G_QKV
        xg = x.reshape([-1, g, c]).transpose([1, 0, 2])                                       # [4, T, 192]
        hd = lambda t: paddle.gather(t, pad2tok, axis=1).reshape([-1, L, 3, HEAD_DIM]).transpose([0, 2, 1, 3])
        q = hd(paddle.matmul(xg, self.wq) + self.bq)
        k = hd(paddle.matmul(xg, self.wk) + self.bk)
        v = hd(paddle.matmul(xg, self.wv) + self.bv)                                          # [4B, 3, L, 64]
        s = paddle.matmul(q, k, transpose_y=True) + mask4
        ctx = paddle.matmul(F.softmax(s, -1), v).transpose([0, 2, 1, 3]).reshape([g, -1, c])  # [4, B*L, 192]
        ctx = paddle.gather(ctx, tok, axis=1)                                                 # [4, T, 192]
        att = paddle.matmul(ctx, self.wp4).sum(0) + self.bp                                   # [T, 768]
        y = F.layer_norm(att + x, [H], self.l1w, self.l1b, EPS)
        h = F.gelu(paddle.matmul(y.reshape([-1, G_INT, H // G_INT]).transpose([1, 0, 2]), self.wi) + self.bi)
        z = (paddle.matmul(h, self.wo) + self.bo).transpose([1, 0, 2]).reshape([-1, H])
        return F.layer_norm(z + y, [H], self.l2w, self.l2b, EPS)


class FormX(nn.Layer):
    def __init__(self, w):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([GroupAttnLayer(w, l) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        shp = paddle.shape(ids); B, L = shp[0], shp[1]
        mflat = mask.reshape([-1])
        tok = paddle.nonzero(mflat).reshape([-1])
        pad2tok = paddle.clip(paddle.cumsum(mflat, axis=0) - 1, min=0)
        pos = paddle.arange(L, dtype="int64").unsqueeze(0).expand([B, L]).reshape([-1])
        e = self.emb
        x = (F.embedding(paddle.gather(ids.reshape([-1]), tok), e.word)
             + F.embedding(paddle.gather(pos, tok), e.pos)
             + F.embedding(paddle.gather(tt.reshape([-1]), tok), e.ttype))
        x = F.layer_norm(x, [H], e.ln_w, e.ln_b, EPS)
        m4 = paddle.tile(ext_mask(mask), [G_QKV, 1, 1, 1])                                   # [4B, 1, 1, L]
        for lay in self.layers:
            x = lay(x, pad2tok, tok, m4, B, L)
        seq = paddle.scatter(paddle.zeros([B * L, H], x.dtype), tok, x).reshape([B, L, H])
        return seq, self.pool(seq[:, 0])


# ----------------------------------------------------------------------------------------------- F
class DenseLayer(nn.Layer):
    def __init__(self, w, l):
        super().__init__()
        p = f"encoder.layers.{l}."
        sc = 1.0 / math.sqrt(HEAD_DIM)
        wq = blockdiag_w(w[p + "attention.query.weight"], G_QKV) * sc
        wk = blockdiag_w(w[p + "attention.key.weight"], G_QKV); wv = blockdiag_w(w[p + "attention.value.weight"], G_QKV)
        self.wqkv = P(np.concatenate([wq, wk, wv], 1))
        self.bqkv = P(np.concatenate([w[p + "attention.query.bias"] * sc, w[p + "attention.key.bias"], w[p + "attention.value.bias"]]))
        self.wp = P(blockdiag_w(w[p + "post_attention.conv1d.weight"], 1)); self.bp = P(w[p + "post_attention.conv1d.bias"])
        self.wi = P(blockdiag_w(w[p + "intermediate.conv1d.weight"], G_INT)); self.bi = P(w[p + "intermediate.conv1d.bias"])
        self.wo = P(blockdiag_w(w[p + "output.conv1d.weight"], G_OUT)); self.bo = P(w[p + "output.conv1d.bias"])
        self.l1w = P(w[p + "post_attention.layernorm.weight"]); self.l1b = P(w[p + "post_attention.layernorm.bias"])
        self.l2w = P(w[p + "output.layernorm.weight"]); self.l2b = P(w[p + "output.layernorm.bias"])

    def forward(self, x, mask, B, L):  # x [B, L, C]
        t = F.linear(x, self.wqkv, self.bqkv).reshape([0, 0, 3, HEADS, HEAD_DIM]).transpose([2, 0, 3, 1, 4])
        s = paddle.matmul(t[0], t[1], transpose_y=True) + mask
        ctx = paddle.matmul(F.softmax(s, -1), t[2]).transpose([0, 2, 1, 3]).reshape([0, 0, H])
        y = F.layer_norm(F.linear(ctx, self.wp, self.bp) + x, [H], self.l1w, self.l1b, EPS)
        h = F.gelu(F.linear(y, self.wi, self.bi))
        return F.layer_norm(F.linear(h, self.wo, self.bo) + y, [H], self.l2w, self.l2b, EPS)


class FormDense(nn.Layer):
    def __init__(self, w):
        super().__init__()
        self.emb = Embeddings(w); self.pool = Pooler(w)
        self.layers = nn.LayerList([DenseLayer(w, l) for l in range(LAYERS)])

    def forward(self, ids, tt, mask):
        m = ext_mask(mask)
        x = self.emb(ids, tt)
        for lay in self.layers:
            x = lay(x, m, None, None)
        return x, self.pool(x[:, 0])


def build(name, w):
    return {
        "A": lambda: FormA(w),
        "B": lambda: FormRows(w, gconv_bmm),
        "C": lambda: FormRows(w, gconv_einsum),
        "D": lambda: FormFused(w, "matmul", "bmm"),
        "E": lambda: FormFused(w, "sdpa", "bmm"),
        "F": lambda: FormDense(w),
        "G": lambda: FormFused(w, "matmul", "split"),
        "V": lambda: FormVarlen(w, "matmul"),
        "VE": lambda: FormVarlen(w, "sdpa"),
        "VG": lambda: FormVarlen(w, "matmul", "split"),
        "G2": lambda: FormSplit(w, "split"),
        "H": lambda: FormSplit(w, "head"),
        "VG2": lambda: FormSplit(w, "split", varlen=True),
        "VH": lambda: FormSplit(w, "head", varlen=True),
        "W": lambda: FormVar(w, "bmm", "bmm"),
        "WS": lambda: FormVar(w, "bmm", "split"),
        "WD": lambda: FormVar(w, "dense", "bmm"),
        "WDS": lambda: FormVar(w, "dense", "split"),
        "WGS": lambda: FormVar(w, "gdense", "split"),
        "WG": lambda: FormVar(w, "gdense", "bmm"),
        "W2": lambda: FormVar(w, "bmm", "bmm", bias_after=True),
        "W3": lambda: FormVar(w, "bmm", "bmm", bias_after=True, att5=True),
        "X": lambda: FormX(w),
    }[name]()


ALL = ["A", "B", "C", "D", "E", "F", "G", "V", "VE", "VG", "G2", "H", "VG2", "VH", "W", "WS", "WD", "WDS", "WGS", "WG", "W2", "W3", "X"]
