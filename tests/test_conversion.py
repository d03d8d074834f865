"""The HF <-> Paddle converter: key map, CLI failures (one line, nothing written), the three released
layouts at full size (parity with transformers), round trips, dtypes."""
import json
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from helpers import (ALL_ARCHITECTURES, DEMO_NAMES, TOL, batch, hf_model, hf_state, leftovers, link_tree, max_diff,
                     np_of, run_script, stderr_lines, tiny, to_paddle, to_torch)
from squeezebert_paddle import conversion, modeling
from squeezebert_paddle.checkpoint import read_pdparams
from squeezebert_paddle.configuration import SqueezeBertConfig

ODD = dict(q_groups=2, k_groups=4, v_groups=1, post_attention_groups=2, intermediate_groups=8,
           output_groups=2)


# -- the key/shape table against the real model --------------------------------------------------

@pytest.mark.parametrize("config", [dict(num_labels=3, **ODD), dict(hidden_size=64, embedding_size=64,
                                                                    intermediate_size=128, num_labels=1)])
@pytest.mark.parametrize("architecture", ALL_ARCHITECTURES)
def test_paddle_shapes_equal_the_model_state_dict(architecture, config):
    cfg = SqueezeBertConfig(**tiny(**config))
    model = getattr(modeling, architecture)(cfg)
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert conversion.paddle_shapes(cfg, architecture) == actual


def test_hf_to_paddle_transposes_only_linear_weights():
    hf = hf_model("SqueezeBertForMaskedLM", **ODD)
    state = hf_state(hf)
    out, report = conversion.hf_to_paddle(state, SqueezeBertConfig(**tiny(**ODD)), "SqueezeBertForMaskedLM")
    np.testing.assert_array_equal(out["squeezebert.pooler.dense.weight"], state["transformer.pooler.dense.weight"].T)
    np.testing.assert_array_equal(out["cls.predictions.transform.dense.weight"],
                                  state["cls.predictions.transform.dense.weight"].T)
    conv = "encoder.layers.1.intermediate.conv1d.weight"
    np.testing.assert_array_equal(out["squeezebert." + conv], state["transformer." + conv])
    assert sorted(report.transposed) == ["cls.predictions.transform.dense.weight", "pooler.dense.weight"]
    assert sorted(report.dropped) == ["cls.predictions.decoder.bias", "cls.predictions.decoder.weight"]


def test_hf_to_paddle_lists_every_problem_at_once():
    state = hf_state(hf_model("SqueezeBertForSequenceClassification"))
    del state["transformer.pooler.dense.bias"]
    state["transformer.encoder.layers.0.extra.weight"] = np.zeros(3, np.float32)
    state["classifier.bias"] = np.zeros(5, np.float32)
    with pytest.raises(conversion.ConversionError) as err:
        conversion.hf_to_paddle(state, SqueezeBertConfig(**tiny()), "SqueezeBertForSequenceClassification")
    message = str(err.value)
    assert "missing keys (1): squeezebert.pooler.dense.bias" in message
    assert "unexpected keys (1): encoder.layers.0.extra.weight" in message
    assert "shape mismatches (1): classifier.bias: expected (2,), found (5,)" in message


def test_untied_decoder_is_refused():
    state = hf_state(hf_model("SqueezeBertForMaskedLM"))
    state["cls.predictions.decoder.weight"] = state["transformer.embeddings.word_embeddings.weight"] + 1
    with pytest.raises(conversion.ConversionError, match="cls.predictions.decoder.weight is not tied"):
        conversion.hf_to_paddle(state, SqueezeBertConfig(**tiny()), "SqueezeBertForMaskedLM")


# -- every architecture through the directory path: save_pretrained -> convert -> from_pretrained --

@pytest.mark.parametrize("architecture", ALL_ARCHITECTURES)
def test_each_architecture_converts_loads_and_matches(tmp_path, vocab_file, architecture):
    hf = hf_model(architecture, seed=3, num_labels=3 if "Sequence" in architecture else 2, **ODD)
    hf_dir = tmp_path / "hf"
    hf.save_pretrained(hf_dir)
    shutil.copyfile(vocab_file, hf_dir / "vocab.txt")
    report = conversion.convert_hf_dir(hf_dir, tmp_path / "pd")
    assert report.architecture == architecture          # detected from keys + config.architectures
    ours = getattr(modeling, architecture).from_pretrained(tmp_path / "pd")
    ids, mask, types = batch(4, 10)
    if architecture == "SqueezeBertForMultipleChoice":
        ids, mask, types = (a.reshape(2, 2, 10) for a in (ids, mask, types))
    with torch.no_grad():
        ref = hf(*to_torch(ids, mask, types))
    with paddle.no_grad():
        out = ours(*to_paddle(ids, mask, types))
    if architecture == "SqueezeBertModel":
        pairs = [(ref.last_hidden_state, out[0]), (ref.pooler_output, out[1])]
    elif architecture == "SqueezeBertForQuestionAnswering":
        pairs = [(ref.start_logits, out[0]), (ref.end_logits, out[1])]
    else:
        pairs = [(ref.logits, out)]
    for a, b in pairs:
        assert max_diff(a, b) <= TOL

    # ... and back: Paddle -> HF is bit-exact for every tensor transformers' model holds.
    back = tmp_path / "hf_back"
    assert conversion.convert_paddle_dir(tmp_path / "pd", back) == architecture
    again = getattr(transformers, architecture).from_pretrained(back).eval()
    original, restored = hf.state_dict(), again.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key


# -- the CLI on bad inputs: non-zero exit, one "error:" line naming the culprit, nothing written ----

def _tiny_hf_dir(path, vocab_file, safetensors=True, architecture="SqueezeBertForSequenceClassification",
                 model=None):
    model = model or hf_model(architecture, seed=0)
    model.save_pretrained(path, safe_serialization=safetensors)
    shutil.copyfile(vocab_file, path / "vocab.txt")
    return path


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _edit_safetensors(path, fn):
    state = load_file(path / "model.safetensors")
    fn(state)
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})


def _truncate(file):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


def _garbage(file):
    file.write_bytes(np.random.RandomState(0).bytes(4096))


BAD_INPUTS = {
    "missing directory": (lambda d: shutil.rmtree(d), "no such directory"),
    "missing weights": (lambda d: (d / "model.safetensors").unlink(), "no weights file (model.safetensors"),
    "missing config.json": (lambda d: (d / "config.json").unlink(), "config.json not found"),
    "invalid config.json": (lambda d: (d / "config.json").write_text("{not json"), "config.json: not valid JSON"),
    "impossible config": (lambda d: _edit_config(d, q_groups=5), "q_groups=5 must divide"),
    "missing vocab.txt": (lambda d: (d / "vocab.txt").unlink(), "vocab.txt not found"),
    "truncated safetensors": (lambda d: _truncate(d / "model.safetensors"), "model.safetensors: unreadable"),
    "garbage safetensors": (lambda d: _garbage(d / "model.safetensors"), "model.safetensors: unreadable"),
    "fewer layers in config": (lambda d: _edit_config(d, num_hidden_layers=1),
                               "unexpected keys (16): encoder.layers.1."),
    "more layers in config": (lambda d: _edit_config(d, num_hidden_layers=3),
                              "missing keys (16): squeezebert.encoder.layers.2."),
    "other hidden size in config": (lambda d: _edit_config(d, hidden_size=48, embedding_size=48),
                                    "shape mismatches"),
    "extra key": (lambda d: _edit_safetensors(d, lambda s: s.update(
        {"transformer.encoder.layers.0.attention.extra": np.ones(4, np.float32)})),
        "unexpected keys (1): encoder.layers.0.attention.extra"),
    "missing key": (lambda d: _edit_safetensors(d, lambda s: s.pop("transformer.encoder.layers.1.output.conv1d.bias")),
                    "missing keys (1): squeezebert.encoder.layers.1.output.conv1d.bias"),
    "bfloat16 safetensors": (lambda d: _to_bf16(d / "model.safetensors"), "holds bfloat16 tensors"),
}


def _to_bf16(file):
    from safetensors.torch import load_file as load_torch, save_file as save_torch
    state = load_torch(file)
    save_torch({k: v.to(torch.bfloat16) for k, v in state.items()}, file, metadata={"format": "pt"})


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_cli_rejects_bad_input_without_writing(tmp_path, vocab_file, case):
    model_dir = _tiny_hf_dir(tmp_path / "ckpt", vocab_file)
    damage, expected = BAD_INPUTS[case]
    damage(model_dir)
    before = sorted(p.name for p in model_dir.iterdir()) if model_dir.exists() else None
    proc = run_script("convert_torch_to_paddle.py", "--model_dir", model_dir)
    _assert_one_line_error(proc, expected)
    if before is not None:
        assert sorted(p.name for p in model_dir.iterdir()) == before     # nothing written, no temp files
        assert not (model_dir / "model_state.pdparams").exists()
        assert not (model_dir / "model_config.json").exists()


BAD_BINS = {
    "truncated pytorch_model.bin": (_truncate, "pytorch_model.bin: unreadable PyTorch weights"),
    "garbage pytorch_model.bin": (_garbage, "pytorch_model.bin: unreadable PyTorch weights"),
    "pickled code in pytorch_model.bin": (
        lambda f: torch.save({"x": torch.zeros(1), "y": _Evil(f"touch {f.parent / 'PWNED'}")}, f),
        "pytorch_model.bin: unreadable"),
    "untied decoder in pytorch_model.bin": (None, "cls.predictions.decoder.weight is not tied"),
}


class _Evil:
    """Unpickling this runs a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return (os.system, (self.command,))


@pytest.mark.parametrize("case", list(BAD_BINS))
def test_cli_rejects_bad_pytorch_bin(tmp_path, vocab_file, case):
    damage, expected = BAD_BINS[case]
    model_dir = tmp_path / "ckpt"
    if damage is None:
        hf = hf_model("SqueezeBertForMaskedLM")
        _tiny_hf_dir(model_dir, vocab_file, safetensors=False, model=hf)
        state = {k: v.clone() for k, v in hf.state_dict().items()}
        state["cls.predictions.decoder.weight"] += 1.0
        torch.save(state, model_dir / "pytorch_model.bin")
    else:
        _tiny_hf_dir(model_dir, vocab_file, safetensors=False)
        damage(model_dir / "pytorch_model.bin")
    before = sorted(p.name for p in model_dir.iterdir())
    proc = run_script("convert_torch_to_paddle.py", "--model_dir", model_dir, "--output_dir", tmp_path / "out")
    _assert_one_line_error(proc, expected)
    assert sorted(p.name for p in model_dir.iterdir()) == before       # (and no PWNED marker)
    assert not (tmp_path / "out" / "model_state.pdparams").exists()


def _assert_one_line_error(proc, expected):
    lines = stderr_lines(proc)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("convert_torch_to_paddle.py: error: "), lines[0]
    assert expected in lines[0], lines[0]


def test_cli_with_no_checkpoints_says_how_to_get_them(tmp_path):
    proc = run_script("convert_torch_to_paddle.py", "--models_root", tmp_path)
    assert proc.returncode != 0
    for name in DEMO_NAMES:
        assert f"huggingface-cli download squeezebert/{name} --local-dir {tmp_path / name}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_download_offline_names_the_hub_id_and_the_offline_alternative(tmp_path):
    root = tmp_path / "models"
    proc = run_script("convert_torch_to_paddle.py", "--download", "--models_root", root, env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1
    (line,) = stderr_lines(proc)
    assert line.startswith("convert_torch_to_paddle.py: error: could not download squeezebert/squeezebert-uncased "
                           "from the Hugging Face hub (")
    assert line.endswith("); without network, `python convert_torch_to_paddle.py --demo` writes random-weight "
                         "checkpoints at the released configurations")
    assert "Traceback" not in proc.stderr
    assert not root.exists() or list(root.rglob("*.safetensors")) + list(root.rglob("*.bin")) == []


def test_download_fetches_the_three_hub_checkpoints_then_converts_them(tmp_path, demo_hf, monkeypatch, capsys):
    """--download against a local stand-in for the hub: each released repo id is fetched with the file
    list the converter needs, into models/<name>, and then converted like any local checkpoint."""
    import fnmatch

    import huggingface_hub

    import convert_torch_to_paddle
    fetched = []

    def hub_stand_in(repo_id, local_dir, allow_patterns):
        fetched.append(repo_id)
        source = demo_hf[repo_id.split("/", 1)[1]]
        keep = [p.name for p in source.iterdir() if any(fnmatch.fnmatch(p.name, pat) for pat in allow_patterns)]
        link_tree(source, Path(local_dir), skip=[p.name for p in source.iterdir() if p.name not in keep])
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub_stand_in)
    root = tmp_path / "models"
    assert convert_torch_to_paddle.main(["--download", "--models_root", str(root), "--no_progress"]) == 0
    assert fetched == [f"squeezebert/{name}" for name in DEMO_NAMES]
    for name in DEMO_NAMES:
        assert (root / name / "model_state.pdparams").is_file() and (root / name / "model_config.json").is_file()
    out = capsys.readouterr().out
    assert out.count("downloading squeezebert/") == 3 and out.count(" tensors, ") == 3


# -- dtypes --------------------------------------------------------------------------------------

def test_fp16_checkpoint_stays_fp16_and_position_ids_is_dropped(tmp_path, vocab_file):
    hf = hf_model("SqueezeBertForMaskedLM").half()
    model_dir = _tiny_hf_dir(tmp_path / "ckpt", vocab_file, safetensors=False, model=hf)
    state = {k: v.clone() for k, v in hf.state_dict().items()}
    state["transformer.embeddings.position_ids"] = torch.arange(40)[None]        # int64 buffer
    torch.save(state, model_dir / "pytorch_model.bin")
    report = conversion.convert_hf_dir(model_dir)
    assert "embeddings.position_ids" in report.dropped
    out = read_pdparams(model_dir / "model_state.pdparams")
    assert not any("position_ids" in k for k in out)
    assert {v.dtype for v in out.values()} == {np.dtype(np.float16)}
    for key, value in out.items():
        src = state[key.replace("squeezebert.", "transformer.", 1)].numpy()
        np.testing.assert_array_equal(value, src.T if value.ndim == 2 and key.endswith("dense.weight") else src)
    # and the fp16 weights load into (and are used by) the fp32 model
    ours = modeling.SqueezeBertForMaskedLM.from_pretrained(model_dir)
    with torch.no_grad():
        ref = hf.float()(*to_torch(*batch(2, 8)))
    with paddle.no_grad():
        assert max_diff(ref.logits, ours(*to_paddle(*batch(2, 8)))) <= TOL


# -- the three released layouts, full size -------------------------------------------------------

def test_cli_converted_all_three_layouts(demo_converted):
    stdout = demo_converted["_stdout"]
    expect = {"squeezebert-uncased": ("SqueezeBertForMaskedLM", 204, "dropped 3"),
              "squeezebert-mnli": ("SqueezeBertForSequenceClassification", 201, "dropped 0"),
              "squeezebert-mnli-headless": ("SqueezeBertModel", 199, "dropped 0")}
    for name, (arch, tensors, dropped) in expect.items():
        line = next(line for line in stdout.splitlines() if f"/{name} -> " in line)
        assert f"{arch}, {tensors} tensors" in line and dropped in line and "RANDOM demo weights" in line
        model_dir = demo_converted[name]
        assert (f"model: {model_dir} (RANDOM WEIGHTS from --demo: timings are real, predictions are not)"
                in stdout.splitlines())
        assert (model_dir / "model_state.pdparams").is_file() and (model_dir / "model_config.json").is_file()
        assert leftovers(model_dir) == []
        config = json.loads((model_dir / "model_config.json").read_text())
        assert config["architectures"] == [arch] and config["vocab_size"] == 30528
    assert json.loads((demo_converted["squeezebert-mnli"] / "model_config.json").read_text())["num_labels"] == 3


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_full_size_parity_with_transformers(full_models, name):
    from squeezebert_paddle.configuration import RELEASED_ARCHITECTURES as ARCHITECTURE
    arch = ARCHITECTURE[name]
    hf, ours = full_models.hf(name), full_models.ours(name)
    ids, mask, types = batch(3, 24, vocab=30528, seed=1)
    ids[0, 5] = 30525                                  # a row past the 30522-word vocab exists too
    with torch.no_grad():
        ref = hf(*to_torch(ids, mask, types))
        ref_base = getattr(hf, "transformer", hf)(*to_torch(ids, mask, types))
    with paddle.no_grad():
        out = ours(*to_paddle(ids, mask, types))
        base = ours.base_model(*to_paddle(ids, mask, types))
    diffs = {"sequence_output": max_diff(ref_base.last_hidden_state, base[0]),
             "pooled_output": max_diff(ref_base.pooler_output, base[1])}
    if arch != "SqueezeBertModel":
        diffs["logits" if arch != "SqueezeBertForMaskedLM" else "mlm_scores"] = max_diff(ref.logits, out)
    print(f"\nfull-size parity {name}: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) <= TOL, diffs
    assert np.abs(np_of(ref_base.last_hidden_state)).max() > 0.5        # not a trivially small output


def test_output_dir_writes_elsewhere_and_loads(demo_hf, demo_converted, tmp_path):
    src = demo_hf["squeezebert-mnli"]
    before = {p.name: p.stat().st_mtime_ns for p in src.iterdir()}
    out = tmp_path / "elsewhere"
    proc = run_script("convert_torch_to_paddle.py", "--model_dir", src, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in src.iterdir()} == before
    # (a demo source: its random-weights marker goes along)
    assert sorted(p.name for p in out.iterdir()) == ["RANDOM_WEIGHTS.txt", "model_config.json", "model_state.pdparams",
                                                     "vocab.txt"]
    fresh = read_pdparams(out / "model_state.pdparams")
    in_place = read_pdparams(demo_converted["squeezebert-mnli"] / "model_state.pdparams")
    assert fresh.keys() == in_place.keys()
    assert all(np.array_equal(fresh[k], in_place[k]) for k in fresh)
    model = modeling.SqueezeBertForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 3
    np.testing.assert_array_equal(model.classifier.weight.numpy(), fresh["classifier.weight"])


@pytest.mark.parametrize("name", DEMO_NAMES)
def test_reverse_round_trips_are_bit_exact(full_models, demo_paddle_only, tmp_path, name):
    from squeezebert_paddle.configuration import RELEASED_ARCHITECTURES as ARCHITECTURE
    arch = ARCHITECTURE[name]
    # Paddle -> HF: every tensor transformers' model holds is identical to the original checkpoint's.
    hf_back = tmp_path / "hf_back"
    proc = run_script("convert_torch_to_paddle.py", "--reverse", "--model_dir", demo_paddle_only[name],
                      "--output_dir", hf_back)
    assert proc.returncode == 0, proc.stderr
    assert (hf_back / "model.safetensors").is_file() and (hf_back / "vocab.txt").is_file()
    original = full_models.hf(name)
    restored = getattr(transformers, arch).from_pretrained(hf_back).eval()
    a, b = original.state_dict(), restored.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    assert restored.config.num_labels == original.config.num_labels
    if name == "squeezebert-mnli":
        assert restored.config.id2label == original.config.id2label
    ids, mask, types = batch(2, 16, vocab=30522)
    with torch.no_grad():
        x, y = original(*to_torch(ids, mask, types)), restored(*to_torch(ids, mask, types))
    key = "last_hidden_state" if arch == "SqueezeBertModel" else "logits"
    assert torch.equal(x[key], y[key])
    # ... and HF -> Paddle again gives the very same Paddle weights.
    pd_again = tmp_path / "pd_again"
    proc = run_script("convert_torch_to_paddle.py", "--model_dir", hf_back, "--output_dir", pd_again)
    assert proc.returncode == 0, proc.stderr
    first = read_pdparams(demo_paddle_only[name] / "model_state.pdparams")
    second = read_pdparams(pd_again / "model_state.pdparams")
    assert first.keys() == second.keys()
    for k in first:
        assert first[k].dtype == second[k].dtype and np.array_equal(first[k], second[k]), k


def test_the_random_weights_marker_follows_the_weights_both_ways(demo_converted, tmp_path):
    from squeezebert_paddle.demo import is_demo
    source = demo_converted["squeezebert-mnli"]
    assert is_demo(source)
    conversion.convert_paddle_dir(source, tmp_path / "hf")
    assert is_demo(tmp_path / "hf")
    conversion.convert_hf_dir(tmp_path / "hf", tmp_path / "paddle")
    assert is_demo(tmp_path / "paddle")
    (tmp_path / "hf" / "RANDOM_WEIGHTS.txt").unlink()                 # real weights carry no marker
    conversion.convert_hf_dir(tmp_path / "hf", tmp_path / "paddle2")
    assert not is_demo(tmp_path / "paddle2")
