"""A directory written by our save_pretrained (or by the converter with --output_dir) loads into
PaddleNLP's SqueezeBERT as is, with the same outputs.

PaddleNLP builds its additive mask as (1 - mask) * -10000 in the activations' dtype, where we (and HF)
use the dtype's lowest value. In fp32 both give exp(bias + score - max) == 0 for every masked key, so
the probabilities, and thus every output position (padded rows too), come out the same; the mask may
be int or float. PaddleNLP's embeddings hold a `position_ids` buffer that our files do not carry; it
is an arange, rebuilt at construction, so its "newly initialized" warning is harmless.
"""
import numpy as np
import paddle
import paddlenlp.transformers as pnlp
import pytest

from helpers import DEMO_NAMES, TOL, batch, max_diff, tiny, to_paddle
from squeezebert_paddle import modeling
from squeezebert_paddle.configuration import SqueezeBertConfig


def _our_model(cls, seed=0, **config):
    paddle.seed(seed)
    model = cls(SqueezeBertConfig(**tiny(**config)))
    with paddle.no_grad():
        for p in model.parameters():
            p.set_value(p + paddle.randn(p.shape) * 0.1)
    model.eval()
    return model


@pytest.mark.parametrize("mask_dtype", ["int64", "float32"])
def test_base_model_saved_by_us_loads_in_paddlenlp(tmp_path, mask_dtype):
    ours = _our_model(modeling.SqueezeBertModel, q_groups=2, intermediate_groups=8)
    ours.save_pretrained(tmp_path)
    theirs = pnlp.SqueezeBertModel.from_pretrained(str(tmp_path))
    theirs.eval()
    assert theirs.config.q_groups == 2 and theirs.config.intermediate_groups == 8
    ids, mask, types = batch(3, 12)
    with paddle.no_grad():
        a = ours(*to_paddle(ids, mask, types))
        b = theirs(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask.astype(mask_dtype)),
                   token_type_ids=paddle.to_tensor(types))
    assert max_diff(a[0], b[0]) <= TOL and max_diff(a[1], b[1]) <= TOL
    # The comparison is live: one changed weight in PaddleNLP's copy shows.
    w = theirs.encoder.layers[1].output.conv1d.weight
    w.set_value(w + 1e-2)
    with paddle.no_grad():
        c = theirs(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask.astype(mask_dtype)),
                   token_type_ids=paddle.to_tensor(types))
    assert max_diff(a[0], c[0]) > 1e-3


def test_hidden_states_match_paddlenlp(tmp_path):
    ours = _our_model(modeling.SqueezeBertModel)
    ours.save_pretrained(tmp_path)
    theirs = pnlp.SqueezeBertModel.from_pretrained(str(tmp_path))
    theirs.eval()
    ids, mask, types = batch(3, 12)
    with paddle.no_grad():
        a = ours(*to_paddle(ids, mask, types), output_hidden_states=True)
        b = theirs(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask),
                   token_type_ids=paddle.to_tensor(types), output_hidden_states=True)
    assert len(a[2]) == len(b[2]) == 3
    for x, y in zip(a[2], b[2]):
        assert max_diff(x, y) <= TOL


@pytest.mark.parametrize("name", ["SqueezeBertForSequenceClassification", "SqueezeBertForTokenClassification"])
def test_heads_with_the_same_names_load_in_paddlenlp(tmp_path, name):
    ours = _our_model(getattr(modeling, name), num_labels=3)
    ours.save_pretrained(tmp_path)
    theirs = getattr(pnlp, name).from_pretrained(str(tmp_path))
    theirs.eval()
    ids, mask, types = batch(3, 12)
    with paddle.no_grad():
        a = ours(*to_paddle(ids, mask, types))
        b = theirs(paddle.to_tensor(ids), token_type_ids=paddle.to_tensor(types),
                   attention_mask=paddle.to_tensor(mask))
    assert tuple(b.shape) == tuple(a.shape) and a.shape[-1] == 3
    assert max_diff(a, b) <= TOL


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_full_size_converted_directories_load_in_paddlenlp(demo_paddle_only, full_models, name):
    """The converter's Paddle-only output at the released sizes. (An in-place converted directory also
    holds HF's config.json and model.safetensors, which PaddleNLP prefers and cannot read.)"""
    model_dir = demo_paddle_only[name]
    ours = full_models.ours(name).base_model          # loaded from the same weights (in place)
    theirs = pnlp.SqueezeBertModel.from_pretrained(str(model_dir))
    theirs.eval()
    ids, mask, types = batch(3, 24, vocab=30528, seed=2)
    with paddle.no_grad():
        a = ours(*to_paddle(ids, mask, types))
        b = theirs(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask),
                   token_type_ids=paddle.to_tensor(types))
    seq, pooled = max_diff(a[0], b[0]), max_diff(a[1], b[1])
    print(f"\nPaddleNLP full-size {name}: sequence_output {seq:.2e}, pooled_output {pooled:.2e}")
    assert seq <= TOL and pooled <= TOL
    assert np.abs(a[0].numpy()).max() > 0.5
