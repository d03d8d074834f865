"""Numerical parity of the Paddle model with Hugging Face's PyTorch SqueezeBERT (the reference), fp32.

Tiny models (hidden 32-64, 2 layers) with random weights are built in transformers, copied into ours
through conversion.hf_to_paddle, and run on the same padded batch: every output, every head, every
supported activation and several group layouts must agree within 1e-5 (typically ~1e-6).
"""
import numpy as np
import paddle
import pytest
import torch
from transformers.activations import ACT2FN

from helpers import TOL, batch, hf_model, max_diff, np_of, paddle_twin, to_paddle, to_torch
from squeezebert_paddle import modeling
from squeezebert_paddle.configuration import SUPPORTED_ACTIVATIONS

# Group layouts: all dense; the released layout; odd mixes where every count divides its channels.
GROUP_LAYOUTS = {
    "all-1": dict(q_groups=1, k_groups=1, v_groups=1, post_attention_groups=1, intermediate_groups=1,
                  output_groups=1),
    "released-4": dict(hidden_size=64, embedding_size=64, intermediate_size=128, q_groups=4, k_groups=4,
                       v_groups=4, post_attention_groups=1, intermediate_groups=4, output_groups=4),
    "odd-mix": dict(q_groups=2, k_groups=4, v_groups=1, post_attention_groups=2, intermediate_groups=8,
                    output_groups=2),
    "odd-mix-48": dict(hidden_size=48, embedding_size=48, intermediate_size=96, q_groups=3, k_groups=6,
                       v_groups=2, post_attention_groups=3, intermediate_groups=12, output_groups=16),
}


def _run_both(hf, ours, ids, mask=None, types=None, positions=None, **flags):
    t = dict(zip(("input_ids", "attention_mask", "token_type_ids", "position_ids"),
                 to_torch(ids, mask, types, positions)))
    p = dict(zip(("input_ids", "attention_mask", "token_type_ids", "position_ids"),
                 to_paddle(ids, mask, types, positions)))
    with paddle.no_grad():
        return hf(**t, **flags), ours(**p, **flags)


@pytest.mark.parametrize("layout", list(GROUP_LAYOUTS))
def test_base_model_parity_across_group_layouts(layout):
    config = GROUP_LAYOUTS[layout]
    hf = hf_model("SqueezeBertModel", seed=1, **config)
    ours = paddle_twin(hf, "SqueezeBertModel", **config)
    ids, mask, types = batch(3, 14)
    ref, out = _run_both(hf, ours, ids, mask, types)
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL
    assert max_diff(ref.pooler_output, out[1]) <= TOL
    # The comparison is live: the outputs are not trivially small.
    assert np.abs(np_of(ref.last_hidden_state)).max() > 0.1


@pytest.mark.parametrize("act", SUPPORTED_ACTIVATIONS)
def test_activation_formula_matches_transformers(act):
    x = np.linspace(-20, 20, 4001, dtype=np.float32)
    ref = ACT2FN[act](torch.from_numpy(x)).numpy()
    ours = modeling.ACTIVATIONS[act](paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", SUPPORTED_ACTIVATIONS)
def test_masked_lm_parity_per_activation(act):
    # The activation runs in every intermediate conv and in the MLM transform.
    hf = hf_model("SqueezeBertForMaskedLM", seed=2, hidden_act=act, **GROUP_LAYOUTS["odd-mix"])
    ours = paddle_twin(hf, "SqueezeBertForMaskedLM", hidden_act=act, **GROUP_LAYOUTS["odd-mix"])
    ids, mask, types = batch(2, 10)
    ref, out = _run_both(hf, ours, ids, mask, types)
    assert max_diff(ref.logits, out) <= TOL


def test_encoder_layernorm_eps_is_fixed_at_1e_12_like_hf():
    """HF's encoder LayerNorms ignore config.layer_norm_eps (SqueezeBertLayerNorm(cout), eps 1e-12);
    only the embedding and MLM-transform LayerNorms use it. A large eps (1e-3, the most Paddle's
    layer_norm kernel accepts) makes the difference visible: ~2e-3 if the encoder used it."""
    hf = hf_model("SqueezeBertForMaskedLM", seed=3, layer_norm_eps=1e-3)
    ours = paddle_twin(hf, "SqueezeBertForMaskedLM", layer_norm_eps=1e-3)
    ids, mask, types = batch(3, 12)
    ref, out = _run_both(hf, ours, ids, mask, types)
    assert max_diff(ref.logits, out) <= TOL


# -- the six heads -------------------------------------------------------------------------------

def test_sequence_classification_logits_and_cross_entropy_loss():
    hf = hf_model("SqueezeBertForSequenceClassification", seed=4, num_labels=3)
    ours = paddle_twin(hf, "SqueezeBertForSequenceClassification", num_labels=3)
    ids, mask, types = batch(4, 12)
    labels = np.array([0, 2, 1, 2], dtype=np.int64)
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    with paddle.no_grad():
        loss, logits = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert logits.shape == [4, 3]
    assert max_diff(ref.logits, logits) <= TOL
    assert abs(ref.loss.item() - float(loss)) <= TOL
    assert float(loss) > 0.01
    # A -100 label is ignored by torch's CrossEntropyLoss: the mean is over the other labels.
    labels[1] = -100
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    with paddle.no_grad():
        loss, _ = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert abs(ref.loss.item() - float(loss)) <= TOL


def test_sequence_regression_uses_mse_loss():
    hf = hf_model("SqueezeBertForSequenceClassification", seed=5, num_labels=1)
    ours = paddle_twin(hf, "SqueezeBertForSequenceClassification", num_labels=1)
    ids, mask, types = batch(3, 12)
    labels = np.array([0.5, 3.25, -1.0], dtype=np.float32)
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    assert hf.config.problem_type == "regression"
    with paddle.no_grad():
        loss, logits = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert logits.shape == [3, 1]
    assert max_diff(ref.logits, logits) <= TOL
    assert abs(ref.loss.item() - float(loss)) <= TOL
    expected = float(np.mean((np_of(logits)[:, 0].astype(np.float64) - labels) ** 2))
    assert abs(float(loss) - expected) <= 1e-5


def test_token_classification_logits_and_loss_ignoring_minus_100():
    hf = hf_model("SqueezeBertForTokenClassification", seed=6, num_labels=5)
    ours = paddle_twin(hf, "SqueezeBertForTokenClassification", num_labels=5)
    ids, mask, types = batch(3, 12)
    labels = np.random.RandomState(1).randint(0, 5, ids.shape).astype(np.int64)
    labels[mask == 0] = -100
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    with paddle.no_grad():
        loss, logits = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert logits.shape == [3, 12, 5]
    assert max_diff(ref.logits, logits) <= TOL
    assert abs(ref.loss.item() - float(loss)) <= TOL


def test_question_answering_logits_and_span_loss():
    hf = hf_model("SqueezeBertForQuestionAnswering", seed=7)
    ours = paddle_twin(hf, "SqueezeBertForQuestionAnswering")
    ids, mask, types = batch(3, 12)
    start = np.array([1, 4, 100], dtype=np.int64)     # 100 is outside: clamped to L and ignored
    end = np.array([3, 40, 2], dtype=np.int64)
    ref = hf(*to_torch(ids, mask, types), start_positions=torch.from_numpy(start),
             end_positions=torch.from_numpy(end))
    with paddle.no_grad():
        loss, s, e = ours(*to_paddle(ids, mask, types), start_positions=paddle.to_tensor(start),
                          end_positions=paddle.to_tensor(end))
        s2, e2 = ours(*to_paddle(ids, mask, types))
    assert s.shape == [3, 12] and e.shape == [3, 12]
    assert max_diff(ref.start_logits, s) <= TOL and max_diff(ref.end_logits, e) <= TOL
    assert max_diff(s, s2) == 0 and max_diff(e, e2) == 0
    assert abs(ref.loss.item() - float(loss)) <= TOL


def test_multiple_choice_logits_and_loss():
    hf = hf_model("SqueezeBertForMultipleChoice", seed=8)
    ours = paddle_twin(hf, "SqueezeBertForMultipleChoice")
    ids, mask, types = batch(6, 10)
    ids, mask, types = (a.reshape(2, 3, 10) for a in (ids, mask, types))
    labels = np.array([2, 0], dtype=np.int64)
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    with paddle.no_grad():
        loss, logits = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert logits.shape == [2, 3]
    assert max_diff(ref.logits, logits) <= TOL
    assert abs(ref.loss.item() - float(loss)) <= TOL


def test_masked_lm_scores_and_loss_with_ignored_labels():
    hf = hf_model("SqueezeBertForMaskedLM", seed=9)
    ours = paddle_twin(hf, "SqueezeBertForMaskedLM")
    ids, mask, types = batch(3, 12)
    labels = np.full(ids.shape, -100, dtype=np.int64)
    labels[0, 2], labels[1, 5], labels[2, 0] = 7, 98, 1
    ref = hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels))
    with paddle.no_grad():
        loss, scores = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    assert scores.shape == [3, 12, 99]
    assert max_diff(ref.logits, scores) <= TOL
    assert abs(ref.loss.item() - float(loss)) <= TOL


def test_masked_lm_decoder_is_tied_to_word_embeddings():
    hf = hf_model("SqueezeBertForMaskedLM", seed=9)
    ours = paddle_twin(hf, "SqueezeBertForMaskedLM")
    ids, mask, types = batch(2, 8)
    with paddle.no_grad():
        before = ours(*to_paddle(ids, mask, types)).numpy()
        emb = ours.squeezebert.embeddings.word_embeddings.weight
        emb.set_value(emb.numpy() * 2.0)
        after = ours(*to_paddle(ids, mask, types)).numpy()
    assert np.abs(after - before).max() > 1e-2
    assert not any("decoder" in k or "predictions.word_embeddings" in k for k in ours.state_dict())


# -- inputs ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_pair():
    hf = hf_model("SqueezeBertModel", seed=10, **GROUP_LAYOUTS["odd-mix"])
    return hf, paddle_twin(hf, "SqueezeBertModel", **GROUP_LAYOUTS["odd-mix"])


def test_hidden_states_and_attention_scores_match_hf(base_pair):
    """HF returns, per layer, the input hidden states [B, L, H] (num_layers + 1 of them) and the
    attention *scores* after scaling and masking, before softmax; ours returns the same."""
    hf, ours = base_pair
    ids, mask, types = batch(3, 12)
    ref, out = _run_both(hf, ours, ids, mask, types, output_hidden_states=True, output_attentions=True)
    hidden, scores = out[2], out[3]
    assert len(hidden) == len(ref.hidden_states) == 3
    assert len(scores) == len(ref.attentions) == 2
    for a, b in zip(ref.hidden_states, hidden):
        assert tuple(b.shape) == tuple(a.shape) == (3, 12, 32)
        assert max_diff(a, b) <= TOL
    for a, b in zip(ref.attentions, scores):
        assert tuple(b.shape) == tuple(a.shape) == (3, 4, 12, 12)
        a, b = np_of(a), np_of(b)
        keep = np.broadcast_to(mask[:, None, None, :].astype(bool), a.shape)
        assert np.abs(a[keep] - b[keep]).max() <= TOL
        # masked keys: both hold the score plus float32's most negative value
        assert np.all(b[~keep] < -1e38) and np.allclose(a[~keep], b[~keep], rtol=1e-6)
    assert max_diff(out[0], hidden[-1]) == 0.0            # the last entry is the sequence output


def test_padding_mask_hides_padded_tokens(base_pair):
    """Changing the ids under padding changes nothing in the unpadded positions, as in HF."""
    hf, ours = base_pair
    ids, mask, types = batch(3, 12)
    noisy = ids.copy()
    noisy[mask == 0] = 55
    with paddle.no_grad():
        a = ours(*to_paddle(ids, mask, types))[0].numpy()
        b = ours(*to_paddle(noisy, mask, types))[0].numpy()
    keep = mask.astype(bool)
    assert np.abs(a[keep] - b[keep]).max() <= 1e-6
    ref, out = _run_both(hf, ours, noisy, mask, types)
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL


@pytest.mark.parametrize("variant", ["no_mask", "no_token_types", "no_mask_no_types", "all_masked_row"])
def test_optional_inputs_default_like_hf(base_pair, variant):
    hf, ours = base_pair
    ids, mask, types = batch(3, 12)
    if variant == "all_masked_row":          # a row with nothing to attend to stays finite, as in HF
        mask[2] = 0
    if variant in ("no_mask", "no_mask_no_types"):
        mask = None
    if variant in ("no_token_types", "no_mask_no_types"):
        types = None
    ref, out = _run_both(hf, ours, ids, mask, types)
    assert np.isfinite(out[0].numpy()).all()
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL
    assert max_diff(ref.pooler_output, out[1]) <= TOL


def test_token_type_ids_matter(base_pair):
    hf, ours = base_pair
    ids, mask, types = batch(3, 12)
    ref, out = _run_both(hf, ours, ids, mask, types)
    _, zero = _run_both(hf, ours, ids, mask, np.zeros_like(types))
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL
    assert max_diff(out[0], zero[0]) > 1e-3


def test_explicit_position_ids(base_pair):
    hf, ours = base_pair
    ids, mask, types = batch(3, 12)
    positions = np.stack([np.arange(12) + 5, np.arange(12)[::-1], np.full(12, 7)]).astype(np.int64)
    ref, out = _run_both(hf, ours, ids, mask, types, positions)
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL
    _, default = _run_both(hf, ours, ids, mask, types)
    assert max_diff(out[0], default[0]) > 1e-3           # positions are not ignored
    arange = np.tile(np.arange(12), (3, 1)).astype(np.int64)
    _, explicit = _run_both(hf, ours, ids, mask, types, arange)
    assert max_diff(explicit[0], default[0]) <= 1e-6     # and the default is arange


def test_three_dimensional_attention_mask(base_pair):
    """A [B, Lq, Lk] mask (here causal) is broadcast over heads, as HF's get_extended_attention_mask."""
    hf, ours = base_pair
    ids, _, types = batch(2, 10, pad=False)
    causal = np.tril(np.ones((10, 10), dtype=np.int64))[None].repeat(2, axis=0)
    ref, out = _run_both(hf, ours, ids, causal, types)
    assert max_diff(ref.last_hidden_state, out[0]) <= TOL


def test_float_and_bool_masks_equal_int_mask(base_pair):
    _, ours = base_pair
    ids, mask, types = batch(3, 12)
    with paddle.no_grad():
        ref = ours(*to_paddle(ids, mask, types))[0].numpy()
        for m in (mask.astype(np.float32), mask.astype(bool)):
            assert max_diff(ours(*to_paddle(ids, m, types))[0], ref) == 0.0


# -- gradients (training parity) ------------------------------------------------------------------

def test_gradients_match_hf_including_the_pad_row():
    """One MLM backward pass: every parameter's gradient equals HF's (mapped like the weights), and
    the pad row of the word embeddings gets none from the lookup, as with torch's padding_idx."""
    from squeezebert_paddle import conversion
    arch = "SqueezeBertForMaskedLM"
    hf = hf_model(arch, seed=11, **GROUP_LAYOUTS["odd-mix"])
    ours = paddle_twin(hf, arch, **GROUP_LAYOUTS["odd-mix"])
    ids, mask, types = batch(3, 12)
    labels = np.where(mask == 1, (ids * 7) % 99, -100).astype(np.int64)
    hf.train()
    ours.train()
    with torch.enable_grad():
        hf(*to_torch(ids, mask, types), labels=torch.from_numpy(labels)).loss.backward()
    loss, _ = ours(*to_paddle(ids, mask, types), labels=paddle.to_tensor(labels))
    loss.backward()
    # (the pooler feeds no MLM loss: no gradient on either side, compared as zeros)
    hf_grads = {k: np.zeros(tuple(p.shape), np.float32) if p.grad is None else p.grad.numpy()
                for k, p in hf.named_parameters()}
    mapped, _ = conversion.hf_to_paddle(hf_grads, ours.config, arch)
    our_grads = {k: np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy()
                 for k, p in ours.named_parameters()}
    assert set(mapped) == set(our_grads)
    worst = {k: max_diff(mapped[k], our_grads[k]) for k in mapped}
    assert max(worst.values()) <= 1e-5, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
    # The pad row's gradient comes only from the tied decoder (scores against every row), in both.
    assert max_diff(mapped["squeezebert.embeddings.word_embeddings.weight"][0],
                    our_grads["squeezebert.embeddings.word_embeddings.weight"][0]) <= 1e-6


def test_pad_row_gets_no_lookup_gradient():
    hf = hf_model("SqueezeBertModel", seed=12)
    ours = paddle_twin(hf, "SqueezeBertModel")
    ours.train()
    ids, mask, types = batch(3, 12)                      # rows 1 and 2 contain pad ids (0)
    out = ours(*to_paddle(ids, mask, types))[0]
    out.sum().backward()
    grad = ours.embeddings.word_embeddings.weight.grad.numpy()
    assert np.all(grad[0] == 0)
    assert np.abs(grad[ids[0, 0]]).max() > 0


# -- reduced precision ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_extended_attention_mask_uses_the_dtype_minimum(dtype):
    dt = getattr(paddle, dtype)
    lowest = float(paddle.finfo(dt).min)
    for mask in ([[1, 1, 0, 0], [1, 0, 1, 0]], [[True, True, False, False], [True, False, True, False]]):
        m = paddle.to_tensor(mask)
        bias = modeling.extended_attention_mask(m, dt)
        assert bias.dtype == dt and bias.shape == [2, 1, 1, 4]
        values = bias.astype("float32").numpy()[:, 0, 0, :]
        assert np.isfinite(values).all()
        keep = np.asarray(mask, dtype=bool)
        assert np.all(values[keep] == 0.0)
        assert np.all(values[~keep] == np.float32(lowest))
    bias3 = modeling.extended_attention_mask(paddle.to_tensor(np.tril(np.ones((2, 3, 3), "int64"))), dt)
    assert bias3.shape == [2, 1, 3, 3]
    assert np.isfinite(bias3.astype("float32").numpy()).all()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_bias_keeps_softmax_finite(dtype):
    """The bias, added to realistic scores in the reduced dtype and soft-maxed there, stays finite and
    zeroes the masked keys (torch's CPU kernels do the bf16/fp16 arithmetic; the bias is ours). With
    -inf or an overflowing bias a fully masked row would give NaN."""
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    bias = modeling.extended_attention_mask(paddle.to_tensor(mask), getattr(paddle, dtype))
    tdt = getattr(torch, dtype)
    t_bias = torch.from_numpy(bias.astype("float32").numpy()).to(tdt)
    assert torch.equal(t_bias.float(), torch.from_numpy(bias.astype("float32").numpy()))
    scores = (torch.randn(2, 2, 5, 5) * 30).to(tdt)
    probs = torch.softmax(scores + t_bias, dim=-1).float()
    assert torch.isfinite(probs).all()
    assert torch.all(probs[0, :, :, 3:] == 0)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 2, 5), atol=1e-2)


def _reduced_precision_kernels_available(dtype) -> bool:
    try:
        x = paddle.ones([2, 2], dtype="float32").astype(dtype)
        paddle.matmul(x + x, x)
        return True
    except Exception:  # noqa: BLE001 - Paddle raises NotFoundError for a kernel not built for CPU
        return False


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_forward_on_padded_batch_is_finite(dtype):
    if not _reduced_precision_kernels_available(dtype):
        pytest.skip(f"this Paddle build has no {dtype} add/matmul kernels on {paddle.device.get_device()} "
                    f"(Paddle's CPU build registers none); run on a GPU build")
    hf = hf_model("SqueezeBertForSequenceClassification", seed=13, num_labels=3)
    ours = paddle_twin(hf, "SqueezeBertForSequenceClassification", num_labels=3)
    ids, mask, types = batch(3, 12)
    with paddle.no_grad():
        ref = ours(*to_paddle(ids, mask, types)).numpy()
        ours.to(dtype=dtype)
        out = ours(*to_paddle(ids, mask, types))
    assert out.dtype == getattr(paddle, dtype)
    out = out.astype("float32").numpy()
    assert np.isfinite(out).all()
    assert np.abs(out - ref).max() < 0.1
