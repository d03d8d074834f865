"""The inference path: the packed (padding-skipping) encoder, export + paddle.inference predictors, and the
export cache.

`packed_encoder.PackedEncoder` runs the per-token work on the real tokens only; it must give the
same logits as the reference model and as Hugging Face (fp32, 1e-5) for every group layout, and exact
zeros at padded positions of the sequence output. The exported program must match dygraph on any batch shape
(both axes are dynamic), in bf16 closely, and `cached_export` must re-export exactly when the weights
change.
"""
import numpy as np
import paddle
import pytest
import torch

from helpers import TOL, batch, hf_model, link_tree, max_diff, paddle_twin, to_paddle, to_torch
from squeezebert_paddle import inference, modeling, packed_encoder
from squeezebert_paddle.checkpoint import read_pdparams, write_pdparams
from squeezebert_paddle.data import encode_examples, make_batches, read_pairs, restore_order
from squeezebert_paddle.qqp_benchmark import cpu_has_bf16
from squeezebert_paddle.tokenizer import SqueezeBertTokenizer

# TINY (hidden 32, 4 heads, intermediate 64) with the group layouts the packed path treats differently.
LAYOUTS = {
    # the released 4/4/4/1/4/4: one grouped QKV product, grouped intermediate->output
    "released-4": dict(q_groups=4, k_groups=4, v_groups=4, post_attention_groups=1,
                       intermediate_groups=4, output_groups=4),
    # grouped QKV with two heads per group, intermediate/output group-major with 2 groups
    "fused-2": dict(q_groups=2, k_groups=2, v_groups=2, post_attention_groups=1,
                    intermediate_groups=2, output_groups=2),
    # q != k groups: one dense product with block-diagonal weights
    "q!=k": dict(q_groups=2, k_groups=4, v_groups=1, post_attention_groups=2,
                 intermediate_groups=4, output_groups=4),
    "all-1": dict(q_groups=1, k_groups=1, v_groups=1, post_attention_groups=1,
                  intermediate_groups=1, output_groups=1),
    "intermediate!=output": dict(q_groups=4, k_groups=4, v_groups=4, post_attention_groups=2,
                                 intermediate_groups=2, output_groups=4),
    # equal q/k/v groups, more groups than heads: a group holds half a head
    "groups>heads": dict(q_groups=8, k_groups=8, v_groups=8, post_attention_groups=1,
                         intermediate_groups=8, output_groups=8),
}

CLS, SEP = 2, 3      # any ids: TINY's vocabulary is random


def edge_batch():
    """Rows: no padding; only [CLS] [SEP]; half padded. Token types 0/1 on the real tokens."""
    ids = np.zeros((3, 9), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    ids[0] = [CLS, 11, 12, 13, SEP, 21, 22, 23, SEP]
    types[0, 5:] = 1
    ids[1, :2] = [CLS, SEP]
    ids[2, :5] = [CLS, 31, SEP, 41, SEP]
    types[2, 3:5] = 1
    mask[ids != 0] = 1
    return ids, mask, types


def unpadded_batch():
    ids, _, types = batch(2, 6, seed=5, pad=False)
    return ids, np.ones_like(ids), types


BATCHES = {"padded": lambda: batch(4, 12, seed=1), "edge": edge_batch, "unpadded": unpadded_batch,
           "cls-sep-only": lambda: (np.array([[CLS, SEP]]), np.ones((1, 2), np.int64), np.zeros((1, 2), np.int64))}


def paddle_logits(model, ids, mask, types, pack):
    with paddle.no_grad():
        if pack:
            return inference.PairClassifier(model, packed=True)(*to_paddle(ids, mask, types)).numpy()
        return model(*to_paddle(ids, mask, types)).numpy()


def paddle_base(model, ids, mask, types, pack):
    encoder = packed_encoder.PackedEncoder(model) if pack else model
    with paddle.no_grad():
        seq, pooled = encoder(*to_paddle(ids, mask, types))[:2]
    return seq.numpy(), pooled.numpy()


@pytest.fixture(scope="module", params=list(LAYOUTS))
def twins(request):
    """(layout name, HF classifier, our classifier with its weights)."""
    layout = LAYOUTS[request.param]
    hf = hf_model("SqueezeBertForSequenceClassification", seed=7, **layout)
    ours = paddle_twin(hf, "SqueezeBertForSequenceClassification", **layout)
    return request.param, hf, ours


@pytest.mark.parametrize("batch_name", list(BATCHES))
def test_packed_logits_match_reference_and_hf(twins, batch_name):
    layout, hf, ours = twins
    ids, mask, types = BATCHES[batch_name]()
    with torch.no_grad():
        ref = hf(*to_torch(ids, mask, types)).logits.numpy()
    padded = paddle_logits(ours, ids, mask, types, pack=False)
    packed = paddle_logits(ours, ids, mask, types, pack=True)
    assert max_diff(padded, ref) <= TOL, layout
    assert max_diff(packed, padded) <= TOL, layout
    assert max_diff(packed, ref) <= TOL, layout
    assert np.abs(ref).max() > 0.01        # a live comparison (1000 x TOL), not near-zero outputs


@pytest.mark.parametrize("batch_name", list(BATCHES))
def test_packed_base_model_sequence_and_pooled(twins, batch_name):
    layout, hf, ours = twins
    ids, mask, types = BATCHES[batch_name]()
    with torch.no_grad():
        out = hf.transformer(*to_torch(ids, mask, types))
    ref_seq, ref_pooled = out.last_hidden_state.numpy(), out.pooler_output.numpy()
    real = mask.astype(bool)
    seq, pooled = paddle_base(ours.squeezebert, ids, mask, types, pack=False)
    pseq, ppooled = paddle_base(ours.squeezebert, ids, mask, types, pack=True)
    assert max_diff(pseq[real], seq[real]) <= TOL, layout
    assert max_diff(pseq[real], ref_seq[real]) <= TOL, layout
    assert np.all(pseq[~real] == 0.0), layout            # exactly zero at padded positions
    assert max_diff(ppooled, pooled) <= TOL, layout
    assert max_diff(ppooled, ref_pooled) <= TOL, layout
    if (~real).any():
        # the reference keeps (meaningless) values at padded positions: the packed path really ran
        assert np.abs(seq[~real]).max() > 0


def test_packed_encoder_stores_derived_weights_as_its_own_frozen_parameters(twins):
    layout, _, ours = twins
    keys = set(ours.state_dict())
    encoder = packed_encoder.PackedEncoder(ours.squeezebert)
    assert set(ours.state_dict()) == keys                      # the model is untouched
    shared = {id(p) for p in ours.parameters()}
    derived = [p for p in encoder.parameters() if id(p) not in shared]
    # per layer: Q/K/V weight and bias, the post-attention, intermediate and output product weights
    assert len(derived) == 5 * len(encoder.layers), layout
    assert all(p.stop_gradient for p in derived), layout
    # a copy, not a view: changing the model's weights afterwards leaves the packed weights as they were
    qkv = encoder.layers[0].attention.qkv_weight.numpy().copy()
    query = ours.squeezebert.encoder.layers[0].attention.query.weight
    saved = query.numpy().copy()
    try:
        query.set_value(saved + 1.0)
        assert (encoder.layers[0].attention.qkv_weight.numpy() == qkv).all()
    finally:
        query.set_value(saved)


# -- export + predictor ------------------------------------------------------------------------

def real_batches(vocab_file, qqp_jsonl, count=40, batch_size=8, max_len=128):
    examples, _ = read_pairs(qqp_jsonl)
    tokenizer = SqueezeBertTokenizer(vocab_file)
    encoded = encode_examples(tokenizer, examples[:count], max_len)
    return make_batches(encoded, batch_size, tokenizer.pad_token_id)


@pytest.fixture(scope="module")
def tiny_model(tiny_qqp):
    return modeling.SqueezeBertForSequenceClassification.from_pretrained(tiny_qqp["dir"])


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    keys = set(tiny_model.state_dict())
    prefix = inference.export(tiny_model, tmp_path_factory.mktemp("export"))
    # export works on a copy: the model keeps its parameters and its dropout layers
    assert set(tiny_model.state_dict()) == keys
    assert isinstance(tiny_model.dropout, paddle.nn.Dropout)
    return prefix


@pytest.fixture(scope="module")
def fp32_predictor(exported):
    return inference.Predictor(exported, "cpu", "fp32", threads=1)


def dygraph(model, ids, mask, types):
    with paddle.no_grad():
        out = model(*to_paddle(ids, mask, types))
    return (out[1] if isinstance(out, tuple) else out).numpy()


def test_predictor_matches_dygraph_on_dynamic_shapes(tiny_model, fp32_predictor):
    shapes = [(2, 7), (5, 13), (1, 3)]
    for _ in range(2):          # and again, in the same order, on the now warm predictor
        for b, length in shapes:
            ids, mask, types = batch(b, length, vocab=30522, seed=length)
            out = fp32_predictor(ids, mask, types)
            assert out.shape == (b, 2) and out.dtype == np.float32
            assert max_diff(out, dygraph(tiny_model, ids, mask, types)) <= TOL, (b, length)


def test_pad_length_pads_with_masked_zeros_up_to_the_position_table():
    ids, mask, types = batch(2, 7, vocab=30522, seed=3)
    padded = inference.pad_length(ids, mask, types, 16, 512)
    assert [a.shape for a in padded] == [(2, 16)] * 3 and all(a.dtype == np.int64 for a in padded)
    for original, longer in zip((ids, mask, types), padded):
        assert (longer[:, :7] == original).all() and (longer[:, 7:] == 0).all()
    assert [a.shape[1] for a in inference.pad_length(ids, mask, types, 16, 12)] == [12] * 3   # capped
    assert [a.shape[1] for a in inference.pad_length(ids, mask, types, 7, 512)] == [7] * 3    # already a multiple
    long = [np.ones((1, 20), np.int64)] * 3
    assert [a.shape[1] for a in inference.pad_length(*long, 16, 16)] == [20] * 3           # never truncates


def test_length_padding_leaves_predictions_unchanged(exported):
    unpadded = inference.Predictor(exported, "cpu", "fp32", threads=1, pad_multiple=1)
    padded = inference.Predictor(exported, "cpu", "fp32", threads=1, pad_multiple=16)
    ids, mask, types = batch(3, 11, vocab=30522, seed=4)
    assert max_diff(padded(ids, mask, types), unpadded(ids, mask, types)) <= TOL


def test_predictor_matches_hf_on_real_pairs(tiny_qqp, tiny_model, fp32_predictor, vocab_file, qqp_jsonl):
    batches = real_batches(vocab_file, qqp_jsonl)
    assert len({b.input_ids.shape[1] for b in batches}) > 1      # lengths differ between batches
    out = restore_order(batches, [fp32_predictor(b.input_ids, b.attention_mask, b.token_type_ids)
                                  for b in batches])
    ref = restore_order(batches, [dygraph(tiny_model, b.input_ids, b.attention_mask, b.token_type_ids)
                                  for b in batches])
    assert max_diff(out, ref) <= TOL
    assert max_diff(out, tiny_qqp["logits"]) <= TOL
    assert (out.argmax(-1) == tiny_qqp["logits"].argmax(-1)).all()


def test_padded_export_matches_dygraph_on_dynamic_shapes(tiny_model, tmp_path):
    # packed=False traces the reference [B, L, H] model (both axes dynamic)
    predictor = inference.Predictor(inference.export(tiny_model, tmp_path, packed=False), "cpu", "fp32",
                                    threads=1, pad_multiple=1)
    for b, length in [(2, 7), (4, 19)]:
        ids, mask, types = batch(b, length, vocab=30522, seed=length)
        assert max_diff(predictor(ids, mask, types), dygraph(tiny_model, ids, mask, types)) <= TOL, (b, length)


def test_base_model_export_returns_pooled_output(tiny_model, tmp_path):
    prefix = inference.export(tiny_model.squeezebert, tmp_path)
    predictor = inference.Predictor(prefix, "cpu", "fp32", threads=1)
    for b, length in [(3, 9), (1, 4)]:
        ids, mask, types = batch(b, length, vocab=30522, seed=b)
        out = predictor(ids, mask, types)
        assert out.shape == (b, 64)
        assert max_diff(out, dygraph(tiny_model.squeezebert, ids, mask, types)) <= TOL


@pytest.mark.skipif(not cpu_has_bf16(), reason="bf16 predictor needs a CPU with amx_bf16 or avx512_bf16")
def test_bf16_predictor_close_to_fp32(tiny_model, exported, vocab_file, qqp_jsonl):
    predictor = inference.Predictor(exported, "cpu", "bf16", threads=1)
    batches = real_batches(vocab_file, qqp_jsonl)
    out = restore_order(batches, [predictor(b.input_ids, b.attention_mask, b.token_type_ids).astype(np.float32)
                                  for b in batches])
    ref = restore_order(batches, [dygraph(tiny_model, b.input_ids, b.attention_mask, b.token_type_ids)
                                  for b in batches])
    diff = max_diff(out, ref)
    assert diff < 0.1
    assert diff > 1e-3, "bf16 predictor gives fp32 results (fp32 differs by ~1e-6): bf16 is not in effect"
    assert (out.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
    ids, mask, types = batch(2, 7, vocab=30522)
    assert predictor(ids, mask, types).shape == (2, 2)


# -- export cache ------------------------------------------------------------------------------

def test_cached_export_reuses_and_refreshes(tiny_qqp, tmp_path):
    model_dir = link_tree(tiny_qqp["dir"], tmp_path / "model")
    ids, mask, types = batch(3, 10, vocab=30522, seed=2)

    prefix, reused = inference.cached_export(model_dir)
    assert reused is False
    assert prefix.parent == model_dir / "inference"
    old = inference.Predictor(prefix, "cpu", "fp32", threads=1)(ids, mask, types)
    model = modeling.SqueezeBertForSequenceClassification.from_pretrained(model_dir)
    assert max_diff(old, dygraph(model, ids, mask, types)) <= TOL

    prefix2, reused = inference.cached_export(model_dir)
    assert reused is True and prefix2 == prefix

    state = read_pdparams(model_dir / "model_state.pdparams")
    key = "squeezebert.encoder.layers.0.attention.query.weight"     # read through the frozen weights
    state[key] = state[key] + np.random.RandomState(0).normal(0, 0.05, state[key].shape).astype(np.float32)
    write_pdparams(model_dir / "model_state.pdparams", state)

    prefix3, reused = inference.cached_export(model_dir)
    assert reused is False and prefix3 == prefix
    new = inference.Predictor(prefix3, "cpu", "fp32", threads=1)(ids, mask, types)
    changed = modeling.SqueezeBertForSequenceClassification.from_pretrained(model_dir)
    assert max_diff(new, dygraph(changed, ids, mask, types)) <= TOL
    assert max_diff(new, old) > 1e-3
    assert inference.cached_export(model_dir)[1] is True
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".")) == []
