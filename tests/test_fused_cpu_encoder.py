"""The fused CPU formulation (fused_cpu_encoder.py) against the reference model (modeling.py): the whole
training forward/backward on four group layouts, evaluation with hidden states, and when it applies."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from squeezebert_paddle import cpu_kernels, fused_cpu_encoder
from squeezebert_paddle.configuration import SqueezeBertConfig
from squeezebert_paddle.modeling import SqueezeBertForSequenceClassification

LAYOUTS = {
    "grouped": dict(q_groups=2, k_groups=2, v_groups=2, post_attention_groups=1, intermediate_groups=2,
                    output_groups=2),
    "ungrouped": dict(q_groups=1, k_groups=1, v_groups=1, post_attention_groups=1, intermediate_groups=1,
                      output_groups=1),
    "mixed": dict(q_groups=1, k_groups=2, v_groups=4, post_attention_groups=2, intermediate_groups=4,
                  output_groups=2),
    "relu": dict(q_groups=2, k_groups=2, v_groups=2, post_attention_groups=2, intermediate_groups=2,
                 output_groups=2, hidden_act="relu"),
}
SMALL = dict(vocab_size=50, hidden_size=24, embedding_size=24, num_attention_heads=4, intermediate_size=48)


@pytest.fixture(scope="module", autouse=True)
def kernels():
    assert cpu_kernels.load() is not None, f"the fused CPU kernels did not build: {cpu_kernels.failure()}"


def training_pass(config, fused: bool):
    paddle.seed(0)
    model = SqueezeBertForSequenceClassification(config)
    model.train()
    assert model.use_fused_cpu_kernels(fused) == fused
    rng = np.random.default_rng(0)
    ids = paddle.to_tensor(rng.integers(1, config.vocab_size, (3, 7)))
    mask = paddle.to_tensor(np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4]))
    types = paddle.to_tensor(np.array([[0, 0, 0, 1, 1, 1, 1]] * 3))
    assert fused_cpu_encoder.applies(model.squeezebert, mask, False)
    loss, logits = model(ids, mask, types, labels=paddle.to_tensor([0, 1, 1]))
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in model.named_parameters() if p.grad is not None}
    return float(loss), logits.numpy(), grads


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_training_pass_equals_the_reference(layout):
    config = SqueezeBertConfig(**SMALL, num_hidden_layers=2, max_position_embeddings=16, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0, num_labels=2, **LAYOUTS[layout])
    loss_f, logits_f, grads_f = training_pass(config, True)
    loss_n, logits_n, grads_n = training_pass(config, False)
    assert abs(loss_f - loss_n) < 1e-6
    np.testing.assert_allclose(logits_f, logits_n, rtol=1e-5, atol=1e-6)
    assert grads_f.keys() == grads_n.keys() and len(grads_f) > 30
    for name in grads_n:        # (the key bias's gradient is 0 up to rounding: softmax ignores it)
        tolerance = 1e-4 * np.abs(grads_n[name]).max() + 1e-8
        assert np.abs(grads_f[name] - grads_n[name]).max() < tolerance, name


def test_fused_evaluation_equals_the_reference_with_hidden_states():
    model = SqueezeBertForSequenceClassification(SqueezeBertConfig(**SMALL, num_hidden_layers=2, **LAYOUTS["grouped"]))
    model.eval()
    ids = paddle.to_tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    mask = paddle.to_tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    reference = model.squeezebert(ids, mask, output_hidden_states=True)
    assert model.use_fused_cpu_kernels()
    fused = model.squeezebert(ids, mask, output_hidden_states=True)
    assert len(fused[2]) == 3
    for a, b in zip([*fused[:2], *fused[2]], [*reference[:2], *reference[2]]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_when_the_fused_formulation_applies(monkeypatch):
    config = SqueezeBertConfig(**SMALL, num_hidden_layers=1, q_groups=2, k_groups=2, v_groups=2)
    model = SqueezeBertForSequenceClassification(config)
    assert model.squeezebert.fused_cpu_kernels is False               # the reference unless asked for
    base = model.squeezebert
    assert fused_cpu_encoder.applies(base, None, False)
    assert not fused_cpu_encoder.applies(base, paddle.ones([1, 3, 3]), False)   # 3-D mask
    assert not fused_cpu_encoder.applies(base, None, True)                      # attention maps asked for
    with monkeypatch.context() as patch:           # what paddle.jit.to_static tracing reports
        patch.setattr(paddle, "in_dynamic_mode", lambda: False)
        assert not fused_cpu_encoder.applies(base, None, False)
    # heads split across channel groups (8 groups of 3 channels, heads of 6): not available
    split = SqueezeBertForSequenceClassification(SqueezeBertConfig(**SMALL, num_hidden_layers=1, q_groups=8,
                                                                   k_groups=8, v_groups=8, intermediate_groups=8,
                                                                   output_groups=8))
    assert split.use_fused_cpu_kernels() is False and split.squeezebert.fused_cpu_kernels is False
    monkeypatch.setattr(cpu_kernels, "_module", None)
    monkeypatch.setattr(cpu_kernels, "_failure", "no compiler")
    assert model.use_fused_cpu_kernels() is False
    assert not fused_cpu_encoder.applies(base, None, False)
