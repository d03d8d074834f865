"""The CPU inference kernels (kernels/inference_cpu.cc, run through cpu_encoder.CpuEncoder) against the
reference model: fp32 parity on group layouts, head sizes 8 (the generic attention loops) and 64 (the
AVX-512 blocked path), ragged batches, the refused configs (a non-erf activation, a head across Q groups);
Hugging Face's model at the full-size configuration; bf16 against fp32 (random and real QQP pairs);
oneDNN's implementations; padding edge cases, determinism and several encoders at once;
run_qqp_paddle.py --backend kernels end to end; and flops.sequence_flops.
"""
from __future__ import annotations

import gc
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import TINY_QQP_PAIRS
from helpers import TOL, hf_model, max_diff, paddle_twin, run_script, to_torch
from squeezebert_paddle import cpu_encoder
from squeezebert_paddle.configuration import SqueezeBertConfig
from squeezebert_paddle.cpu_encoder import CpuEncoder
from squeezebert_paddle.flops import SQUEEZEBERT, EncoderShape, forward_flops, packed_flops, sequence_flops
from squeezebert_paddle.inference import PairClassifier
from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
from squeezebert_paddle.qqp_benchmark import cpu_has_bf16

HAS_AMX = " amx_bf16" in (Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else "")
PRECISIONS = ("fp32", "bf16") if cpu_has_bf16() else ("fp32",)      # as run_qqp_paddle allows them
NEEDS_BF16 = pytest.mark.skipif(not cpu_has_bf16(), reason="bf16 on CPU needs amx_bf16 or avx512_bf16")
GROUPS = ("q_groups", "k_groups", "v_groups", "post_attention_groups", "intermediate_groups", "output_groups")

# name: (hidden, heads, the six group counts in GROUPS order, other config fields)
LAYOUTS = {
    # head size 8: the generic attention loops
    "d8-grouped": (32, 4, (2, 2, 2, 1, 2, 2), {}),
    "d8-ungrouped": (32, 4, (1, 1, 1, 1, 1, 1), {}),
    "d8-mixed-qkv": (32, 4, (1, 2, 4, 2, 4, 2), {}),
    # one head per Q group; gelu_python (also the erf GELU)
    "d8-head-per-group": (32, 4, (4, 4, 4, 4, 1, 4), dict(hidden_act="gelu_python")),
    # more Q groups than heads, but Q, K and V differ: one dense product, which the kernels accept
    "d8-mixed-many-q": (32, 4, (8, 1, 2, 8, 8, 1), {}),
    # head size 64: the AVX-512 blocked attention
    "d64-grouped": (128, 2, (2, 2, 2, 1, 4, 4), {}),
    "d64-ungrouped": (128, 2, (1, 1, 1, 1, 1, 1), {}),
    "d64-mixed-qkv": (128, 2, (4, 2, 1, 2, 2, 1), {}),
}
MAX_POSITIONS = 64
VOCAB = 99


def config_of(hidden, heads, groups, num_labels=3, **extra) -> SqueezeBertConfig:
    return SqueezeBertConfig(vocab_size=VOCAB, hidden_size=hidden, embedding_size=hidden, num_hidden_layers=2,
                             num_attention_heads=heads, intermediate_size=2 * hidden,
                             max_position_embeddings=MAX_POSITIONS, type_vocab_size=2, num_labels=num_labels,
                             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                             **dict(zip(GROUPS, groups)), **extra)


def noised_model(config, seed=0, noise=0.1) -> SqueezeBertForSequenceClassification:
    """A classifier in eval mode whose every parameter (LayerNorms and biases included) is noised, so a
    swapped, transposed or ignored tensor shows in the outputs."""
    paddle.seed(seed)
    model = SqueezeBertForSequenceClassification(config)
    rng = np.random.RandomState(seed)
    with paddle.no_grad():
        for param in model.parameters():
            param.set_value(param.numpy() + noise * rng.randn(*param.shape).astype(np.float32))
    return model.eval()


_models: dict = {}


def layout_model(name) -> SqueezeBertForSequenceClassification:
    if name not in _models:
        hidden, heads, groups, extra = LAYOUTS[name]
        _models[name] = noised_model(config_of(hidden, heads, groups, **extra), seed=list(LAYOUTS).index(name))
    return _models[name]


def ragged(lengths, length, seed=0, left=False, vocab=VOCAB):
    """ids, mask, types [B, length]: row i has lengths[i] real tokens (at the end with left=True),
    its second half of type 1; padded positions hold id 0."""
    rng = np.random.RandomState(seed)
    lengths = np.asarray(lengths)
    position = np.arange(length)[None]
    start = length - lengths[:, None] if left else np.zeros_like(lengths)[:, None]
    mask = ((position >= start) & (position < start + lengths[:, None])).astype(np.int64)
    ids = rng.randint(1, vocab, size=mask.shape).astype(np.int64) * mask
    types = ((position >= start + lengths[:, None] // 2) & (mask == 1)).astype(np.int64)
    return ids, mask, types


def reference(model, ids, mask, types):
    """The reference model's (logits, pooled output, sequence output) in plain dygraph."""
    inputs = [paddle.to_tensor(a) for a in (ids, mask, types)]
    with paddle.no_grad():
        logits = model(*inputs)
        sequence, pooled = model.base_model(*inputs)[:2]
    return logits.numpy(), pooled.numpy(), sequence.numpy()


@pytest.fixture(scope="module", autouse=True)
def kernels():
    assert cpu_encoder.available(), f"the CPU inference kernels did not build: {cpu_encoder.unavailable_reason()}"
    yield
    _models.clear()
    gc.collect()


@pytest.fixture
def hidden_states(monkeypatch):
    """The encoder output [T, H] of the real tokens of every CpuEncoder call, as the pooler receives it."""
    seen = []
    original = CpuEncoder._run

    def spy(self, *batch):
        out, hidden = original(self, *batch)
        seen.append(hidden.numpy().copy())
        return out, hidden
    monkeypatch.setattr(CpuEncoder, "_run", spy)
    return seen


# -- fp32 parity with the reference model ----------------------------------------------------------

BATCHES = {
    # lengths 37 (full), 1, 16, ...: 116 tokens, not a multiple of 16
    "ragged": dict(lengths=[37, 20, 1, 9, 33, 16], length=37),
    # 12 rows of 20..61 tokens: over 256 tokens (past the row count the weights were laid out for)
    "large": dict(lengths=list(np.random.RandomState(7).randint(20, 62, size=12)), length=61),
    # 24 rows of 40..63 tokens: over 1024 tokens, where rows are padded to a multiple of 64, not 16
    "huge": dict(lengths=list(np.random.RandomState(8).randint(40, 64, size=24)), length=63),
    "single": dict(lengths=[5], length=5),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fp32_equals_the_reference(layout, hidden_states):
    model = layout_model(layout)
    logits_of, pooled_of = CpuEncoder(model, "fp32"), CpuEncoder(model.base_model, "fp32")
    for name, spec in BATCHES.items():
        ids, mask, types = ragged(**spec, seed=len(name))
        tokens = int(mask.sum())
        if name == "large":
            assert tokens > 256 and tokens % 16
        if name == "huge":
            assert tokens > 1024 and tokens % 64 > 16
        logits, pooled, sequence = reference(model, ids, mask, types)
        assert np.abs(logits).max() > 0.1 and (len(ids) == 1 or np.ptp(logits[:, 0]) > 0.01)
        hidden_states.clear()
        got = logits_of(ids, mask, types)
        assert got.shape == logits.shape and got.dtype == np.float32
        assert max_diff(got, logits) <= TOL, (name, max_diff(got, logits))
        assert max_diff(pooled_of(ids, mask, types), pooled) <= TOL, name
        # every real token's final hidden state, not only the first ones the pooler reads
        hidden = hidden_states[0]                         # (from the first of the two calls)
        assert hidden.shape == (tokens, model.config.hidden_size)
        assert max_diff(hidden, sequence[mask != 0]) <= TOL, (name, max_diff(hidden, sequence[mask != 0]))


def test_a_config_layer_norm_eps_reaches_the_embeddings_only(hidden_states):
    """As in transformers, config.layer_norm_eps sets the embedding LayerNorm's epsilon only; the encoder
    layers' LayerNorms keep 1e-12 (modeling.SqueezeBertModule). The kernels must use the layers' value."""
    model = noised_model(config_of(32, 4, (2, 2, 2, 1, 2, 2), layer_norm_eps=1e-3))
    assert model.base_model.embeddings.LayerNorm._epsilon == 1e-3
    assert {layer.output.layernorm._epsilon for layer in model.base_model.encoder.layers} == {1e-12}
    ids, mask, types = ragged(**BATCHES["ragged"])
    logits, _, sequence = reference(model, ids, mask, types)
    assert max_diff(CpuEncoder(model, "fp32")(ids, mask, types), logits) <= TOL
    assert max_diff(hidden_states[0], sequence[mask != 0]) <= TOL


def test_threads_and_default_token_types_give_the_same_result():
    model = layout_model("d64-grouped")
    ids, mask, types = ragged(**BATCHES["large"])
    one = CpuEncoder(model, "fp32", threads=1)(ids, mask, types)
    assert max_diff(CpuEncoder(model, "fp32", threads=2)(ids, mask, types), one) <= 1e-6
    zeros = np.zeros_like(types)
    assert max_diff(CpuEncoder(model, "fp32")(ids, mask, None), CpuEncoder(model, "fp32")(ids, mask, zeros)) == 0
    assert max_diff(CpuEncoder(model, "fp32")(ids, mask, None), reference(model, ids, mask, zeros)[0]) <= TOL


# -- configs the kernels cannot compute are refused --------------------------------------------------

@pytest.mark.parametrize("act", ["relu", "gelu_new", "gelu_pytorch_tanh", "gelu_10", "silu"])
def test_a_non_erf_activation_is_refused(act):
    model = noised_model(config_of(32, 4, (2, 2, 2, 1, 2, 2), hidden_act=act))
    problem = cpu_encoder.config_problem(model.config)
    assert problem and f"hidden_act {act!r}" in problem and "\n" not in problem
    for target in (model, model.base_model):
        with pytest.raises(ValueError, match="hidden_act"):
            CpuEncoder(target, "fp32")
        with pytest.raises(ValueError, match="hidden_act"):
            CpuEncoder(target, "bf16")


def test_why_a_non_erf_activation_must_be_refused(monkeypatch):
    """The op fuses the erf GELU into the inner projection whatever the config says: let a relu model
    through and its logits are wrong (so the refusal above is what keeps them right)."""
    model = noised_model(config_of(32, 4, (2, 2, 2, 1, 2, 2), hidden_act="relu"))
    ids, mask, types = ragged(**BATCHES["ragged"])
    monkeypatch.setattr(cpu_encoder, "config_problem", lambda config: None)
    wrong = CpuEncoder(model, "fp32")(ids, mask, types)
    assert max_diff(wrong, reference(model, ids, mask, types)[0]) > 1e-3


@pytest.mark.parametrize("hidden, heads, groups", [
    (32, 4, (8, 8, 8, 1, 1, 1)),          # head size 8, Q groups of 4 channels
    (128, 2, (4, 4, 4, 1, 4, 4)),         # head size 64, Q groups of 32 channels
    (48, 8, (3, 3, 3, 1, 3, 3)),          # head size 6, Q groups of 16: heads 2 and 5 straddle a border
])
def test_a_head_across_q_groups_is_refused(hidden, heads, groups):
    model = noised_model(config_of(hidden, heads, groups))
    problem = cpu_encoder.config_problem(model.config)
    assert problem and "Q groups" in problem
    for precision in ("fp32", "bf16"):
        with pytest.raises(ValueError, match="spans two Q groups"):
            CpuEncoder(model, precision)


def test_accepted_configs_and_bad_precision():
    for name in LAYOUTS:
        assert cpu_encoder.config_problem(layout_model(name).config) is None, name
    with pytest.raises(ValueError, match="precision"):
        CpuEncoder(layout_model("d8-grouped"), "fp16")
    for threads in (None, 2.5, "2", True):            # refused when built, not at the first batch
        with pytest.raises(TypeError, match="threads must be an int"):
            CpuEncoder(layout_model("d8-grouped"), "fp32", threads=threads)


# -- the full-size configuration: Hugging Face parity, bf16 -------------------------------------------

FULL = dict(vocab_size=30528, hidden_size=768, embedding_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, max_position_embeddings=512, q_groups=4, k_groups=4, v_groups=4,
            post_attention_groups=1, intermediate_groups=4, output_groups=4, num_labels=2)


@pytest.fixture(scope="module")
def full():
    """The SqueezeBertConfig defaults (hidden 768, 12 heads, groups 4/4/4/1/4/4, vocab 30528) with random
    weights (noise 0.02 on every parameter: larger noise makes logits of ~3 whose fp32 rounding alone
    nears 1e-5): the transformers model, its Paddle twin and CpuEncoders on it, released at teardown."""
    assert SqueezeBertConfig(**FULL) == SqueezeBertConfig(vocab_size=30528, num_labels=2)
    hf = hf_model("SqueezeBertForSequenceClassification", seed=0, noise=0.02, **FULL)
    model = paddle_twin(hf, "SqueezeBertForSequenceClassification", **FULL)
    state = {"hf": hf, "model": model}
    for precision in PRECISIONS:
        state[precision] = CpuEncoder(model, precision)
        state[f"pooled_{precision}"] = CpuEncoder(model.base_model, precision)
    yield state
    state.clear()
    gc.collect()


def centered_predictions(pooled_fp32, *pooled, seed=0):
    """Two-class predictions through a random head centred on the fp32 pooled outputs (margin median 0,
    so about half of each class and many rows near the border: agreement is not trivially 100%)."""
    u = np.random.RandomState(seed).randn(pooled_fp32.shape[1])
    median = np.median(pooled_fp32 @ u)
    return [(p @ u > median).astype(int) for p in (pooled_fp32, *pooled)]


def test_full_size_fp32_equals_transformers(full):
    import torch
    ids, mask, types = ragged([45, 30, 12, 38], 45, seed=2, vocab=30000)
    with torch.no_grad():
        expected = full["hf"](*to_torch(ids, mask, types)).logits.numpy()
    got = full["fp32"](ids, mask, types)
    assert np.abs(expected).max() > 0.1
    assert max_diff(got, expected) <= TOL, max_diff(got, expected)


def random_rows(rows, length, seed):
    rng = np.random.RandomState(seed)
    return ragged(rng.randint(8, length + 1, size=rows), length, seed=seed, vocab=30000)


@NEEDS_BF16
def test_full_size_bf16_is_close_to_fp32(full):
    ids, mask, types = random_rows(160, 64, seed=5)
    fp32, bf16 = full["fp32"](ids, mask, types), full["bf16"](ids, mask, types)
    scale, diff = np.abs(fp32).max(), max_diff(fp32, bf16)
    assert 1e-4 < diff < 0.05 * scale, (diff, scale)            # bf16 really in effect, and close
    pooled32, pooled16 = full["pooled_fp32"](ids, mask, types), full["pooled_bf16"](ids, mask, types)
    ours32, ours16 = centered_predictions(pooled32, pooled16)
    assert 0.3 < ours32.mean() < 0.7
    agree = float(np.mean(ours32 == ours16))
    assert agree >= 0.98, agree


@NEEDS_BF16
def test_full_size_bf16_agrees_on_real_qqp_pairs(full, real_qqp_jsonl, vocab_file):
    from squeezebert_paddle.data import encode_examples, make_batches, read_pairs
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer
    examples, _ = read_pairs(real_qqp_jsonl)
    encoded = encode_examples(SqueezeBertTokenizer(vocab_file), examples[:200], 128)
    batches = make_batches(encoded, 50, 0)
    pooled = {p: np.concatenate([full[f"pooled_{p}"](b.input_ids, b.attention_mask, b.token_type_ids)
                                 for b in batches]) for p in ("fp32", "bf16")}
    ours32, ours16 = centered_predictions(pooled["fp32"], pooled["bf16"], seed=1)
    assert len(ours32) == 200 and 0.3 < ours32.mean() < 0.7
    agree = float(np.mean(ours32 == ours16))
    assert agree >= 0.98, agree


@pytest.mark.parametrize("precision", PRECISIONS)
def test_full_size_threads_share_the_work_exactly(full, precision):
    """40 rows: each thread encodes its own run of whole sequences on single-threaded products (two and
    three threads, runs of unequal length). 3 rows (under two per thread): one pass in which two threads
    take whole pieces of each projection side by side (the post-attention product cut in two), or three,
    which do not divide the pieces, all work inside each piece. Every way gives one thread's sums."""
    for rows in (40, 3):
        ids, mask, types = random_rows(rows, 64, seed=9)
        one = full[precision](ids, mask, types)
        for threads in (2, 3):
            got = CpuEncoder(full["model"], precision, threads=threads)(ids, mask, types)
            assert max_diff(got, one) <= 1e-6, (rows, threads, max_diff(got, one))


def test_more_than_255_threads_each_run_their_own_sequences():
    """Thread numbers past 255 once collided with the shared pass's marker (a crash, or "no product
    prepared"): 257 threads, two 4-token sequences each, give one thread's result."""
    model = layout_model("d8-grouped")
    ids, mask, types = ragged([4] * 514, 4, seed=5)
    one = CpuEncoder(model, "fp32", threads=1)(ids, mask, types)
    assert max_diff(CpuEncoder(model, "fp32", threads=257)(ids, mask, types), one) <= 1e-6


SMALL_TEAM_SCRIPT = """
import sys, numpy as np
from squeezebert_paddle.cpu_encoder import CpuEncoder
from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
model = SqueezeBertForSequenceClassification.from_pretrained(sys.argv[1]).eval()
ids, mask, types = np.load(sys.argv[2]).values()
np.save(sys.argv[3], np.stack([CpuEncoder(model, "fp32", threads=t)(ids, mask, types) for t in (1, 2)]))
"""


def test_a_smaller_openmp_team_still_encodes_every_sequence(tmp_path):
    """OMP_THREAD_LIMIT (or OMP_DYNAMIC on a busy machine) can give fewer threads than asked: the
    sequences of the missing threads' runs must still be encoded (they were left unwritten)."""
    model = layout_model("d8-grouped")
    model.save_pretrained(tmp_path / "model")
    ids, mask, types = ragged(**BATCHES["large"], seed=6)
    np.savez(tmp_path / "inputs.npz", ids=ids, mask=mask, types=types)
    proc = run_script("-c", SMALL_TEAM_SCRIPT, tmp_path / "model", tmp_path / "inputs.npz", tmp_path / "out.npy",
                      env={"OMP_THREAD_LIMIT": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    one, two = np.load(tmp_path / "out.npy")
    assert max_diff(two, one) <= 1e-6 and max_diff(one, reference(model, ids, mask, types)[0]) <= TOL


GROWING_SCRIPT = """
import gc, sys, numpy as np
from squeezebert_paddle.cpu_encoder import CpuEncoder
from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
model = SqueezeBertForSequenceClassification.from_pretrained(sys.argv[1]).eval()
(ids, mask, types), (one_ids, one_mask, one_types) = (np.load(f).values() for f in sys.argv[2:4])
growing = CpuEncoder(model, "fp32", threads=2)
growing(one_ids, one_mask, one_types)             # one sequence: a pass shared by both threads
outs = [growing(ids, mask, types) for _ in range(3)]   # then each thread its own run of sequences
del growing
gc.collect()                                      # (releasing it freed the first workspace's buffers twice)
np.save(sys.argv[4], np.stack([*outs, CpuEncoder(model, "fp32", threads=1)(ids, mask, types)]))
"""


def test_a_shared_pass_then_split_batches_keep_their_buffers(tmp_path):
    """The per-thread workspaces grow after a one-sequence batch: growing them must move their buffers,
    not copy and free them (a use after free: wrong rows, a crash, or a double free at release)."""
    model = layout_model("d8-grouped")
    model.save_pretrained(tmp_path / "model")
    np.savez(tmp_path / "batch.npz", *ragged(**BATCHES["large"], seed=9))
    np.savez(tmp_path / "one.npz", *ragged(**BATCHES["single"], seed=9))
    proc = run_script("-c", GROWING_SCRIPT, tmp_path / "model", tmp_path / "batch.npz", tmp_path / "one.npz",
                      tmp_path / "out.npy")
    assert proc.returncode == 0, proc.stderr[-2000:]
    *outs, single_threaded = np.load(tmp_path / "out.npy")
    for out in outs:
        assert max_diff(out, single_threaded) <= 1e-6


ATTENTION_SCRIPT = """
import sys, numpy as np
from squeezebert_paddle.cpu_encoder import CpuEncoder
from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification
model = SqueezeBertForSequenceClassification.from_pretrained(sys.argv[1]).eval()
ids, mask, types = np.load(sys.argv[2]).values()
np.save(sys.argv[3], CpuEncoder(model, "bf16")(ids, mask, types))
"""


@pytest.mark.skipif(not HAS_AMX, reason="this CPU has no amx_bf16: bf16 attention takes the AVX-512 path anyway")
def test_bf16_attention_on_amx_tiles_and_on_avx512_agree(tmp_path):
    """Head size 64 in bf16: attention on AMX tiles (weights P in bf16), or with the AVX-512 dot products
    (P in fp32) when SQUEEZEBERT_NO_AMX_ATTENTION is set. Lengths 1..61 cross the 16-row and 32-key tiles."""
    model = layout_model("d64-grouped")
    model.save_pretrained(tmp_path / "model")
    ids, mask, types = ragged(lengths=[61, 1, 16, 17, 31, 32, 33, 48, 5], length=61, seed=4)
    np.savez(tmp_path / "inputs.npz", ids=ids, mask=mask, types=types)
    outputs = {}
    for name, env in (("amx", {}), ("avx512", {"SQUEEZEBERT_NO_AMX_ATTENTION": "1"})):
        # (-c: the project root, the working directory, is on sys.path whether or not the package is installed)
        proc = run_script("-c", ATTENTION_SCRIPT, tmp_path / "model", tmp_path / "inputs.npz", tmp_path / f"{name}.npy",
                          env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[name] = np.load(tmp_path / f"{name}.npy")
    fp32 = reference(model, ids, mask, types)[0]
    scale = np.abs(fp32).max()
    for name, got in outputs.items():
        assert max_diff(got, fp32) < 0.05 * scale, (name, max_diff(got, fp32), scale)
    assert 0 < max_diff(outputs["amx"], outputs["avx512"]) < 0.02 * scale     # two paths, both close


@pytest.mark.parametrize("rows", [16, 256, 1024])
def test_matmul_implementations(full, rows):
    fp32 = full["fp32"].implementations(rows)
    assert len(fp32) == 4 and all(fp32)
    assert not any("ref" in name for name in fp32), fp32
    if not HAS_AMX:
        pytest.skip("this CPU has no amx_bf16")
    bf16 = full["bf16"].implementations(rows)
    assert len(bf16) == 4 and all("amx" in name for name in bf16), bf16


# -- edge cases ---------------------------------------------------------------------------------------

def packed_reference(model, ids, mask, types):
    """inference.PairClassifier(packed=True) in dygraph: the exported program's convention (a row whose
    position 0 is padding pools zeros)."""
    with paddle.no_grad():
        return PairClassifier(model, packed=True)(*[paddle.to_tensor(a) for a in (ids, mask, types)]).numpy()


def pooled_from_zeros(model, rows):
    with paddle.no_grad():
        pooled = model.base_model.pooler(paddle.zeros([rows, 1, model.config.hidden_size]))
        return model.classifier(pooled).numpy()


@pytest.mark.parametrize("layout", ["d8-grouped", "d64-grouped"])
def test_padding_at_position_0_and_empty_rows(layout, hidden_states):
    model = layout_model(layout)
    encoder = CpuEncoder(model, "fp32")
    left = ragged([9, 4, 1, 9], 9, seed=3, left=True)
    right = ragged([9, 0, 5, 0, 1], 9, seed=4)           # two all-padding rows between real ones
    ids = np.concatenate([left[0], right[0]])
    mask, types = np.concatenate([left[1], right[1]]), np.concatenate([left[2], right[2]])
    got = encoder(ids, mask, types)
    assert max_diff(got, packed_reference(model, ids, mask, types)) <= TOL
    zero_first = mask[:, 0] == 0                          # rows 1, 2 (left-padded), 5 and 7 (empty)
    assert zero_first.tolist() == [False, True, True, False, False, True, False, True, False]
    assert max_diff(got[zero_first], pooled_from_zeros(model, int(zero_first.sum()))) <= TOL
    full_rows = ~zero_first                               # the others as the reference model computes them
    logits, _, sequence = reference(model, ids, mask, types)
    assert max_diff(got[full_rows], logits[full_rows]) <= TOL
    # the left-padded rows' real tokens: as the reference computes them at their (shifted) positions
    assert max_diff(hidden_states[-1], sequence[mask != 0]) <= TOL


def test_a_batch_without_any_real_token():
    model = layout_model("d8-grouped")
    ids = np.zeros((3, 7), np.int64)
    got = CpuEncoder(model, "fp32")(ids, ids, ids)
    assert max_diff(got, pooled_from_zeros(model, 3)) <= TOL
    for precision in PRECISIONS:
        pooled = CpuEncoder(model.base_model, precision)(ids, ids, None)
        expected = np.tanh(model.base_model.pooler.dense.bias.numpy())[None].repeat(3, 0)
        assert pooled.shape == (3, 32) and max_diff(pooled, expected) <= 1e-6, precision


def test_repeated_calls_are_identical():
    model = layout_model("d64-grouped")
    small, large = ragged(**BATCHES["ragged"]), ragged(**BATCHES["large"])
    for precision in PRECISIONS:
        encoder = CpuEncoder(model, precision)
        first = encoder(*small)
        big = encoder(*large)                             # grows the buffers, another primitive row count
        assert np.array_equal(encoder(*small), first), precision
        assert np.array_equal(encoder(*large), big), precision
        assert np.array_equal(CpuEncoder(model, precision)(*small), first), precision


def test_encoders_alive_together_do_not_interfere():
    a, b = layout_model("d8-mixed-qkv"), layout_model("d64-grouped")
    batch_a, batch_b = ragged(**BATCHES["ragged"], seed=1), ragged(**BATCHES["large"], seed=2)
    alone = {}
    for key, model, batch in (("a", a, batch_a), ("b", b, batch_b)):
        for precision in PRECISIONS:
            alone[key, precision] = CpuEncoder(model, precision)(*batch)
    encoders = {(key, p): CpuEncoder(m, p) for key, m in (("a", a), ("b", b)) for p in PRECISIONS}
    for _ in range(2):                                    # interleaved
        for (key, precision), encoder in encoders.items():
            out = encoder(*(batch_a if key == "a" else batch_b))
            assert np.array_equal(out, alone[key, precision]), (key, precision)
    assert max_diff(alone["a", "fp32"], reference(a, *batch_a)[0]) <= TOL


def test_a_released_encoder_leaves_the_others_working():
    model = layout_model("d8-grouped")
    batch = ragged(**BATCHES["ragged"])
    keep, drop = CpuEncoder(model, "fp32"), CpuEncoder(model, "fp32")
    before = keep(*batch)
    assert np.array_equal(drop(*batch), before)
    handle = paddle.to_tensor(drop._handle.numpy())
    del drop
    gc.collect()
    assert np.array_equal(keep(*batch), before)
    later = CpuEncoder(model, PRECISIONS[-1])            # packed after the release
    assert max_diff(later(*batch), before) < 0.05
    assert np.array_equal(keep(*batch), before)
    ops = cpu_encoder.cpu_kernels.load_inference()       # the released handle is gone from the registry
    with pytest.raises(Exception, match="no such encoder"):
        ops.sb_infer_implementations(handle, 16)


# -- run_qqp_paddle.py --backend kernels --------------------------------------------------------------

def qqp_args(model_dir, data, out, *extra):
    return ("--model_path", model_dir, "--data_path", data, "--limit", TINY_QQP_PAIRS, "--batch_size", 8,
            "--output_json", out, "--no_progress", "--threads", 1, "--warmup", 1, *extra)


@pytest.fixture(scope="module")
def qqp_runs(tiny_qqp, qqp_jsonl, tmp_path_factory):
    """run_qqp_paddle.py on the tiny QQP classifier: --backend kernels (fp32, and bf16 where the CPU has
    bf16) and --backend dygraph, as processes, two at a time. name -> (process, report or None)."""
    root = tmp_path_factory.mktemp("kernels_runs")
    runs = {"kernels": ("--backend", "kernels"), "dygraph": ("--backend", "dygraph")}
    if cpu_has_bf16():
        runs["kernels_bf16"] = ("--backend", "kernels", "--precision", "bf16")

    def one(item):
        name, extra = item
        out = root / f"{name}.json"
        proc = run_script("run_qqp_paddle.py", *map(str, qqp_args(tiny_qqp["dir"], qqp_jsonl, out, *extra)),
                          timeout=300)
        return name, (proc, json.loads(out.read_text()) if proc.returncode == 0 and out.is_file() else None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, runs.items()))


def succeeded(qqp_runs, name):
    proc, report = qqp_runs[name]
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return report


def test_run_qqp_kernels_matches_dygraph(qqp_runs, tiny_qqp, qqp_jsonl, vocab_file):
    from squeezebert_paddle.data import encode_examples, make_batches, read_pairs
    from squeezebert_paddle.tokenizer import SqueezeBertTokenizer
    kernels, dygraph = succeeded(qqp_runs, "kernels"), succeeded(qqp_runs, "dygraph")
    assert (kernels["backend"], kernels["precision"], kernels["device"]) == ("kernels", "fp32", "cpu")
    assert dygraph["backend"] == "dygraph"
    assert kernels["examples"] == TINY_QQP_PAIRS and len(kernels["predictions"]) == TINY_QQP_PAIRS
    assert 5 <= sum(kernels["predictions"]) <= TINY_QQP_PAIRS - 5       # both classes: the comparison is live
    assert kernels["predictions"] == dygraph["predictions"]
    assert max_diff(np.array(kernels["logits"]), np.array(dygraph["logits"])) <= TOL
    assert max_diff(np.array(kernels["logits"]), tiny_qqp["logits"]) <= TOL       # transformers' logits
    # executed FLOPs: projections on the real tokens, attention over each sequence's own tokens
    examples, _ = read_pairs(qqp_jsonl)
    batches = make_batches(encode_examples(SqueezeBertTokenizer(vocab_file), examples[:TINY_QQP_PAIRS], 128), 8, 0)
    shape = EncoderShape.of(SqueezeBertConfig.from_json_file(tiny_qqp["dir"] / "model_config.json"))
    executed = sum(sequence_flops(shape, b.attention_mask.sum(axis=1)) for b in batches) / 1e9
    assert kernels["executed_gflop_per_second"] * kernels["seconds"] == pytest.approx(executed, rel=1e-9)
    assert kernels["gflop"] == pytest.approx(dygraph["gflop"], rel=1e-12) and executed < kernels["gflop"]


@NEEDS_BF16
def test_run_qqp_kernels_bf16(qqp_runs):
    bf16, fp32 = succeeded(qqp_runs, "kernels_bf16"), succeeded(qqp_runs, "kernels")
    assert (bf16["backend"], bf16["precision"]) == ("kernels", "bf16")
    assert np.mean(np.array(bf16["predictions"]) == np.array(fp32["predictions"])) >= 0.9
    diff = max_diff(np.array(bf16["logits"]), np.array(fp32["logits"]))
    assert 1e-4 < diff < 0.1, diff


def run_in_process(monkeypatch, capsys, *argv):
    import run_qqp_paddle
    from squeezebert_paddle.errors import run_main
    monkeypatch.setattr(sys, "argv", ["run_qqp_paddle.py", *map(str, argv)])
    rc = run_main(run_qqp_paddle.main)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if "error" in line.lower()]      # not Paddle's import warnings
    return rc, out, lines


@pytest.mark.parametrize("extra, expected", [
    (("--device", "gpu"), "--backend kernels runs SqueezeBERT on the CPU"),
    (("--model_type", "bert"), "BERT-base only as --random_init"),
    (("--precision", "fp16"), "--precision fp16"),
])
def test_run_qqp_kernels_usage_errors(extra, expected, tiny_qqp, qqp_jsonl, tmp_path, monkeypatch, capsys):
    # as if this Paddle had CUDA: the kernels check, not the missing-CUDA one, must answer --device gpu
    monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: True)
    rc, out, lines = run_in_process(monkeypatch, capsys, *qqp_args(tiny_qqp["dir"], qqp_jsonl, tmp_path / "r.json",
                                                                   "--backend", "kernels", *extra))
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("run_qqp_paddle.py: error: ") and expected in lines[0], lines
    assert "examples_per_second" not in out and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("what, groups, extra, expected", [
    ("relu", (2, 2, 2, 1, 4, 4), dict(hidden_act="relu"), "hidden_act 'relu'"),   # (head size 16 = Q group)
    ("heads-across-groups", (8, 8, 8, 1, 4, 4), {}, "spans two Q groups"),         # (Q groups of 4 channels)
])
def test_run_qqp_kernels_refuses_a_model_it_cannot_compute(what, groups, extra, expected, qqp_jsonl, vocab_file,
                                                           tmp_path, monkeypatch, capsys):
    import shutil
    model = SqueezeBertForSequenceClassification(SqueezeBertConfig(
        vocab_size=30528, hidden_size=32, embedding_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=2, **dict(zip(GROUPS, groups)), **extra))
    model_dir = tmp_path / what
    model.save_pretrained(model_dir)
    shutil.copyfile(vocab_file, model_dir / "vocab.txt")
    rc, out, lines = run_in_process(monkeypatch, capsys, *qqp_args(model_dir, qqp_jsonl, tmp_path / "r.json",
                                                                   "--backend", "kernels"))
    assert rc == 2          # a usage error: this model with --backend kernels; --backend inference runs it
    assert len(lines) == 1 and lines[0].startswith("run_qqp_paddle.py: error: --backend kernels: "), lines
    assert expected in lines[0] and "use --backend inference" in lines[0], lines[0]
    assert "examples_per_second" not in out and not (tmp_path / "r.json").exists()


# -- flops.sequence_flops -----------------------------------------------------------------------------

def test_sequence_flops():
    tiny = EncoderShape.of(config_of(*LAYOUTS["d8-mixed-qkv"][:3]))
    for shape in (SQUEEZEBERT, tiny):
        # every row full: the padded count, and the packed count with nothing skipped
        assert sequence_flops(shape, [32] * 4) == forward_flops(shape, 4, 32) == packed_flops(shape, 4, 32, 128, 1)
        # each row costs what a batch of one row of its length costs; an empty row nothing
        lengths = [32, 10, 1, 0, 17]
        assert sequence_flops(shape, lengths) == pytest.approx(sum(forward_flops(shape, 1, n) for n in lengths),
                                                               rel=1e-12)
        assert sequence_flops(shape, np.array(lengths)) == sequence_flops(shape, lengths)
        # short rows: less than the packed path (attention on the padded grid) and the padded batch
        packed = packed_flops(shape, 5, 32, sum(lengths), 16)
        assert sequence_flops(shape, lengths) < packed < forward_flops(shape, 5, 32)
        assert sequence_flops(shape, [0, 0]) == sequence_flops(shape, []) == 0


# -- found by the hostile review: a failed allocation, a changed model, odd inputs, no compiler ----------

FAILED_ALLOCATION = """
import resource, numpy as np
from squeezebert_paddle.configuration import SqueezeBertConfig
from squeezebert_paddle.cpu_encoder import CpuEncoder
from squeezebert_paddle.modeling import SqueezeBertModel
config = SqueezeBertConfig(vocab_size=10, hidden_size=32, embedding_size=32, num_hidden_layers=1,
                           num_attention_heads=4, intermediate_size=64, max_position_embeddings=512)
encoder = CpuEncoder(SqueezeBertModel(config).eval())
small = np.ones((2, 8), dtype=np.int64)
before = encoder(small, small)
size_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
limit = size_kb * 1024 + (400 << 20)   # room for the 262 MB output, not for the first 262 MB work buffer
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    encoder(np.ones((4000, 512), dtype=np.int64), np.ones((4000, 512), dtype=np.int64))   # buffers of GBs
    raise SystemExit("the huge batch did not fail")
except (OSError, MemoryError, RuntimeError) as error:
    assert "inference buffer" in str(error), error       # the kernels' own buffer, not the output
after = encoder(small, small)
assert np.array_equal(before, after), (before, after)
print("usable after the failure")
"""


def test_a_failed_allocation_leaves_the_encoder_usable():
    proc = run_script("-c", FAILED_ALLOCATION)
    assert proc.returncode == 0 and "usable after the failure" in proc.stdout, proc.stdout + proc.stderr


def test_the_encoder_is_a_snapshot_of_the_model():
    hidden, heads, groups, extra = LAYOUTS["d8-grouped"]
    model = noised_model(config_of(hidden, heads, groups, **extra), seed=7)      # its own: it gets changed
    ids, mask, types = ragged([5, 3, 7], 8)
    encoder = CpuEncoder(model)
    before = encoder(ids, mask, types)
    with paddle.no_grad():
        for param in model.parameters():
            param.set_value(param * 1.5)
    assert np.array_equal(encoder(ids, mask, types), before)          # head and encoder alike
    assert max_diff(CpuEncoder(model)(ids, mask, types), before) > 1e-3  # a new one sees the change


@pytest.mark.parametrize("what, change", [
    ("input_ids must be integers", lambda ids, mask: (ids.astype(np.float32) + 0.7, mask)),
    ("attention_mask must hold only 0 and 1", lambda ids, mask: (ids, mask * 0.5)),
])
def test_inputs_that_have_no_packed_meaning_are_refused(what, change):
    ids, mask, types = ragged([5, 3, 7], 8)
    with pytest.raises(ValueError, match=what):
        CpuEncoder(layout_model("d8-grouped"))(*change(ids, mask), types)


def test_a_missing_compiler_is_named(monkeypatch, tmp_path):
    """No compiler and nothing built: named. (A built cache loads without one: test_cpu_kernels.)"""
    from squeezebert_paddle import cpu_kernels
    monkeypatch.setattr(cpu_kernels.shutil, "which", lambda name: None)
    monkeypatch.setenv("SQUEEZEBERT_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(cpu_kernels, "_inference_state", {})
    assert not cpu_encoder.available()
    assert cpu_encoder.unavailable_reason() == "no C++ compiler (c++ or g++) on PATH to build them; install g++"


def test_the_stage_clock_times_every_stage_only_when_on():
    import time
    encoder = CpuEncoder(layout_model("d64-grouped"))
    ids, mask, types = ragged([40, 3, 17], 40)
    encoder(ids, mask, types)
    assert encoder.profile(True)["calls"] == 0              # it was off
    start = time.perf_counter()
    encoder(ids, mask, types)
    encoder(ids, mask, types)
    wall = time.perf_counter() - start
    stages = encoder.profile(False)
    assert stages.pop("calls") == 2 and list(stages) == list(cpu_encoder.STAGES)
    assert all(seconds > 0 for seconds in stages.values()) and sum(stages.values()) < wall, stages
    encoder(ids, mask, types)                                # off again: nothing counted
    assert encoder.profile(False) == dict.fromkeys(("calls", *cpu_encoder.STAGES), 0)


def test_the_attention_mask_defaults_to_all_ones():
    """As in transformers: no mask means every token is real."""
    ids, _, types = ragged([8, 8, 8], 8)
    encoder = CpuEncoder(layout_model("d8-grouped"))
    full = encoder(ids, np.ones_like(ids), types)
    assert np.array_equal(encoder(ids, None, types), full)
    assert np.array_equal(encoder(ids, token_type_ids=types), full)
    assert np.array_equal(encoder(ids), encoder(ids, np.ones_like(ids), None))


@pytest.mark.parametrize("name, value, expected", [
    ("input_ids", VOCAB, f"input_ids holds {VOCAB} at [1, 2]: token ids must lie between 0 and {VOCAB - 1} "
                         f"(the model's vocab_size is {VOCAB})"),
    ("input_ids", -1, f"input_ids holds -1 at [1, 2]: token ids must lie between 0 and {VOCAB - 1} "
                      f"(the model's vocab_size is {VOCAB})"),
    ("token_type_ids", 2, "token_type_ids holds 2 at [1, 2]: token types must lie between 0 and 1 "
                          "(the model's type_vocab_size is 2)"),
    ("token_type_ids", -3, "token_type_ids holds -3 at [1, 2]: token types must lie between 0 and 1 "
                           "(the model's type_vocab_size is 2)"),
])
def test_ids_and_types_outside_the_embedding_tables_are_refused_in_words(name, value, expected):
    """A ValueError naming the input, the value, where it is and the valid range (not the op's OSError);
    padding is never read, so what it holds is not checked."""
    encoder = CpuEncoder(layout_model("d8-grouped"))
    batch = dict(zip(("input_ids", "attention_mask", "token_type_ids"), ragged([5, 3, 7], 8)))
    before = encoder(**batch)
    batch[name][1, 5] = value                                  # at padding (row 1 has 3 tokens): unread
    assert np.array_equal(encoder(**batch), before)
    batch[name][1, 2] = value                                  # at a real token
    with pytest.raises(ValueError) as error:
        encoder(**batch)
    assert str(error.value) == expected
    with pytest.raises(OSError, match="is outside the table"):      # the op's own check still stands behind
        encoder._run(*cpu_encoder.checked_inputs(*batch.values()))


def test_a_real_token_beyond_the_position_table_is_refused_in_words():
    """Rows longer than max_position_embeddings: padding there is fine, a real token is a ValueError
    naming where it is and what to do (not the op's OSError)."""
    encoder = CpuEncoder(layout_model("d8-grouped"))
    ids, mask, types = ragged([5, 3], MAX_POSITIONS + 4)
    assert encoder(ids, mask, types).shape[0] == 2                  # only padding past the table
    mask[1, MAX_POSITIONS + 1] = 1
    with pytest.raises(ValueError) as error:
        encoder(ids, mask, types)
    assert str(error.value) == (f"attention_mask marks a real token at position {MAX_POSITIONS + 1} of row 1: the "
                                f"model has {MAX_POSITIONS} positions (max_position_embeddings); cut the inputs "
                                f"to {MAX_POSITIONS} tokens")
    with pytest.raises(OSError, match="is outside the table"):     # the op's own check behind it
        encoder._run(*cpu_encoder.checked_inputs(ids, mask, types))
