"""Model directories: save/load round trips, base <-> head loading, clear errors, the safe .pdparams
reader and atomic writes."""
import logging
import os
import pickle

import numpy as np
import paddle
import pytest

from helpers import batch, leftovers, max_diff, tiny, to_paddle
from squeezebert_paddle import fileio, modeling
from squeezebert_paddle.checkpoint import CheckpointError, read_pdparams, write_pdparams
from squeezebert_paddle.configuration import SqueezeBertConfig

LOGGER = "squeezebert_paddle"


def _model(cls=modeling.SqueezeBertForSequenceClassification, seed=0, **config):
    paddle.seed(seed)
    model = cls(SqueezeBertConfig(**tiny(**{"num_labels": 3, **config})))
    with paddle.no_grad():                     # non-trivial LayerNorms and biases too
        for p in model.parameters():
            p.set_value(p + paddle.randn(p.shape) * 0.1)
    model.eval()
    return model


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cls", list(modeling.MODEL_CLASSES.values()), ids=list(modeling.MODEL_CLASSES))
def test_save_and_from_pretrained_round_trip(tmp_path, cls):
    model = _model(cls, q_groups=2, output_groups=8, hidden_act="gelu_new")
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model_config.json", "model_state.pdparams"]
    loaded = cls.from_pretrained(tmp_path)
    assert not loaded.training
    assert loaded.config.to_dict() == {**model.config.to_dict(), "architectures": [cls.__name__]}
    a, b = _state(model), _state(loaded)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    ids, mask, types = batch(4, 10)
    if cls is modeling.SqueezeBertForMultipleChoice:
        ids, mask, types = (x.reshape(2, 2, 10) for x in (ids, mask, types))
    with paddle.no_grad():
        x, y = model(*to_paddle(ids, mask, types)), loaded(*to_paddle(ids, mask, types))
    for u, v in zip(x if isinstance(x, tuple) else [x], y if isinstance(y, tuple) else [y]):
        assert max_diff(u, v) == 0.0


def test_head_class_from_base_checkpoint_initialises_the_head(tmp_path, caplog):
    base = _model(modeling.SqueezeBertModel)
    base.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        head = modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    text = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert "newly initialised" in text and "classifier.weight" in text and "classifier.bias" in text
    assert head.classifier.weight.shape == [32, 4]
    a, b = _state(base), _state(head.squeezebert)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with paddle.no_grad():
        assert max_diff(base(*to_paddle(*batch()))[1], head.squeezebert(*to_paddle(*batch()))[1]) == 0.0


def test_base_class_from_head_checkpoint_ignores_the_head(tmp_path, caplog):
    head = _model(modeling.SqueezeBertForMaskedLM)
    head.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        base = modeling.SqueezeBertModel.from_pretrained(tmp_path)
    text = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert "ignored" in text and "cls.predictions.bias" in text and "SqueezeBertModel" in text
    a, b = _state(head.squeezebert), _state(base)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_head_to_other_head_keeps_the_encoder(tmp_path, caplog):
    mlm = _model(modeling.SqueezeBertForMaskedLM)
    mlm.save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        qa = modeling.SqueezeBertForQuestionAnswering.from_pretrained(tmp_path, num_labels=2)
    text = " ".join(r.getMessage() for r in caplog.records if r.name == LOGGER)
    assert "qa_outputs.weight" in text and "cls.predictions.bias" in text
    a, b = _state(mlm.squeezebert), _state(qa.squeezebert)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_head_size_mismatch_needs_ignore_mismatched_sizes(tmp_path, caplog):
    _model(num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"classifier.weight: expected \(32, 5\), found \(32, 3\)"):
        modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model = modeling.SqueezeBertForSequenceClassification.from_pretrained(
            tmp_path, num_labels=5, ignore_mismatched_sizes=True)
    assert model.classifier.weight.shape == [32, 5]
    assert any("re-initialised" in r.getMessage() for r in caplog.records)


def test_encoder_weights_missing_for_the_config_is_an_error(tmp_path):
    _model(num_hidden_layers=2).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="missing encoder weights.*encoder.layers.2"):
        modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path, num_hidden_layers=3)


def test_missing_directory_says_how_to_get_a_model(tmp_path):
    with pytest.raises(CheckpointError) as err:
        modeling.SqueezeBertModel.from_pretrained(tmp_path / "nowhere")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message and "does not exist" in message
    assert "convert_torch_to_paddle.py" in message and "huggingface-cli download" in message


@pytest.mark.parametrize("missing", ["model_config.json", "model_state.pdparams"])
def test_missing_file_is_named(tmp_path, missing):
    _model().save_pretrained(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(CheckpointError, match=f"lacks {missing}.*convert_torch_to_paddle.py"):
        modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_unconverted_hugging_face_directory_gets_the_conversion_command(tmp_path, weights):
    hf = tmp_path / "my model"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / weights).write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        modeling.SqueezeBertForSequenceClassification.from_pretrained(hf)
    assert str(err.value) == (f"{hf} is a Hugging Face checkpoint (config.json, {weights}), not converted for "
                              f"Paddle yet (no model_config.json, model_state.pdparams); convert it in place with "
                              f"`python convert_torch_to_paddle.py --model_dir '{hf}'`")


def test_empty_directory_says_what_it_should_hold_and_how_to_get_it(tmp_path):
    with pytest.raises(CheckpointError) as err:
        modeling.SqueezeBertModel.from_pretrained(tmp_path)
    message = str(err.value)
    assert message.startswith(f"model directory {tmp_path} is empty; a converted Paddle model directory holds "
                              f"model_config.json, model_state.pdparams and vocab.txt")
    assert "`python convert_torch_to_paddle.py --download`" in message
    assert "`python convert_torch_to_paddle.py --demo`" in message
    assert "--vocab" not in message


# -- the .pdparams reader ------------------------------------------------------------------------

class _Payload:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


@pytest.mark.parametrize("make", ["os.system", "eval", "nested", "subprocess"])
def test_read_pdparams_refuses_pickled_code(tmp_path, make):
    marker = tmp_path / "PWNED"
    import builtins
    import subprocess
    payloads = {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "eval": _Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "nested": {"w": np.ones(2, np.float32), "x": [_Payload(os.system, f"touch {marker}")]},
        "subprocess": _Payload(subprocess.call, ["touch", str(marker)]),
    }
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps(payloads[make], protocol=4))
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_pdparams(path)
    assert not marker.exists()


def test_read_pdparams_refuses_non_tensors(tmp_path):
    path = tmp_path / "odd.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones(2, np.float32), "name": "hello"}, protocol=4))
    with pytest.raises(CheckpointError, match="not tensors"):
        read_pdparams(path)
    path.write_bytes(pickle.dumps([np.ones(2, np.float32)], protocol=4))
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_pdparams(path)


def test_read_pdparams_truncated_and_missing(tmp_path):
    model = _model()
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model_state.pdparams"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_pdparams(weights)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        read_pdparams(tmp_path / "absent.pdparams")


def test_pdparams_interoperate_with_paddle_save_and_load(tmp_path):
    model = _model(modeling.SqueezeBertForMaskedLM)
    paddle.save(model.state_dict(), str(tmp_path / "paddle.pdparams"))
    ours = read_pdparams(tmp_path / "paddle.pdparams")              # paddle.save -> our reader
    state = _state(model)
    assert ours.keys() == state.keys() and all(np.array_equal(ours[k], state[k]) for k in state)
    write_pdparams(tmp_path / "ours.pdparams", state)                # our writer -> paddle.load
    back = paddle.load(str(tmp_path / "ours.pdparams"))
    assert back.keys() == state.keys()
    assert all(np.array_equal(np.asarray(back[k]), state[k]) and np.asarray(back[k]).dtype == state[k].dtype
               for k in state)


def test_write_pdparams_keeps_dtypes(tmp_path):
    state = {"a": np.arange(6, dtype=np.float16).reshape(2, 3), "b": np.ones(3, np.float64),
             "c": np.arange(4, dtype=np.int64), "d": np.asfortranarray(np.eye(3, dtype=np.float32))}
    write_pdparams(tmp_path / "x.pdparams", state)
    back = read_pdparams(tmp_path / "x.pdparams")
    for k, v in state.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)


# -- atomic writes -------------------------------------------------------------------------------

def test_save_leaves_no_temp_files_and_overwrites_in_place(tmp_path):
    first, second = _model(seed=1), _model(seed=2)
    first.save_pretrained(tmp_path)
    second.save_pretrained(tmp_path)
    assert leftovers(tmp_path) == []
    loaded = modeling.SqueezeBertForSequenceClassification.from_pretrained(tmp_path)
    a, b = _state(second), _state(loaded)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    mode = (tmp_path / "model_state.pdparams").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044 & fileio.FILE_MODE              # readable like any file, not 0600


def test_failed_atomic_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "model_state.pdparams"
    target.write_bytes(b"old contents")
    with pytest.raises(TypeError):
        fileio.atomic_write_bytes(target, "not bytes")           # fails inside the write
    assert target.read_bytes() == b"old contents"
    assert leftovers(tmp_path) == []

    def interrupted(fd):                                         # Ctrl-C after the data is written
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_pdparams(target, {"a": np.ones(1000, np.float32)})
    assert target.read_bytes() == b"old contents" and leftovers(tmp_path) == []


def test_config_written_by_save_round_trips_extra_fields(tmp_path):
    model = _model()
    model.config.extra.update(id2label={"0": "a", "1": "b", "2": "c"}, custom_field=[1, 2])
    model.save_pretrained(tmp_path)
    config = SqueezeBertConfig.from_json_file(tmp_path / "model_config.json")
    assert config.extra["custom_field"] == [1, 2] and config.num_labels == 3
    assert config.extra["architectures"] == ["SqueezeBertForSequenceClassification"]
