"""The model API conventions Hugging Face and PaddleNLP users rely on: a config that keeps unknown keywords
and reads like a mapping, models built from a config mapping, named outputs (`return_dict=True`) that
carry the same numbers as the tuples, the output flags on every head, the class-level hooks, and the
README's "Coming from PaddleNLP / Hugging Face" examples, run as written."""
import json
import re

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from helpers import ROOT, batch, tiny, to_paddle
from squeezebert_paddle import SqueezeBertTokenizer, modeling, outputs
from squeezebert_paddle.configuration import (CONFIG_FILE, HUB_IDS, RELEASED_CONFIGS, ConfigError,
                                              SqueezeBertConfig)

HEADS = ("SqueezeBertForSequenceClassification", "SqueezeBertForTokenClassification",
         "SqueezeBertForQuestionAnswering", "SqueezeBertForMultipleChoice", "SqueezeBertForMaskedLM")
NAMED = {"SqueezeBertForSequenceClassification": ("loss", "logits"),
         "SqueezeBertForTokenClassification": ("loss", "logits"),
         "SqueezeBertForQuestionAnswering": ("loss", "start_logits", "end_logits"),
         "SqueezeBertForMultipleChoice": ("loss", "logits"),
         "SqueezeBertForMaskedLM": ("loss", "logits")}


def _model(name, seed=0, **config):
    paddle.seed(seed)
    return getattr(modeling, name)(SqueezeBertConfig(**tiny(**config))).eval()


def _inputs(name, labels: bool):
    """Inputs for a head (ids [B, L], or [B, C, L] for multiple choice) and its label arguments."""
    ids, mask, types = to_paddle(*batch(3, 10))
    if name == "SqueezeBertForMultipleChoice":
        ids, mask, types = (t.reshape([3, 1, 10]).expand([3, 2, 10]) for t in (ids, mask, types))
    kwargs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if not labels:
        return kwargs
    rng = np.random.RandomState(1)
    if name == "SqueezeBertForQuestionAnswering":
        kwargs.update(start_positions=paddle.to_tensor([1, 4, 30]), end_positions=paddle.to_tensor([2, 6, 7]))
    elif name in ("SqueezeBertForTokenClassification", "SqueezeBertForMaskedLM"):
        high = 99 if name == "SqueezeBertForMaskedLM" else 2
        token_labels = rng.randint(0, high, size=(3, 10))
        token_labels[1, 7:] = -100                                      # ignored positions
        kwargs["labels"] = paddle.to_tensor(token_labels)
    else:
        kwargs["labels"] = paddle.to_tensor([0, 1, 1])
    return kwargs


def _expected_loss(name, out, kwargs):
    """The loss computed here from the named logits, as HF defines it."""
    if name == "SqueezeBertForQuestionAnswering":
        length = out.start_logits.shape[1]
        start, end = (kwargs[k].clip(0, length) for k in ("start_positions", "end_positions"))
        return float((F.cross_entropy(out.start_logits, start, ignore_index=length)
                      + F.cross_entropy(out.end_logits, end, ignore_index=length)) / 2)
    logits = out.logits.reshape([-1, out.logits.shape[-1]]).numpy().astype(np.float64)
    labels = kwargs["labels"].reshape([-1]).numpy()
    keep = labels != -100
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    return float(-log_probs[keep, labels[keep]].mean())


# -- config ----------------------------------------------------------------------------------------

def test_unknown_keywords_are_kept_as_attributes_and_survive_a_json_round_trip():
    config = SqueezeBertConfig(**tiny(), attention_dropout=0.3, architectures=["SqueezeBertModel"],
                               task_specific_params={"qqp": 1})
    assert config.attention_dropout == 0.3 and config.extra["attention_dropout"] == 0.3
    config.finetuning_task = "qqp"                        # set later: kept too, not a stray attribute
    assert config.extra["finetuning_task"] == "qqp"
    text = config.to_json_string()
    assert json.loads(text)["attention_dropout"] == 0.3 and json.loads(text)["model_type"] == "squeezebert"
    again = SqueezeBertConfig.from_dict(json.loads(text))
    assert again == config and again.finetuning_task == "qqp" and again.task_specific_params == {"qqp": 1}
    with pytest.raises(AttributeError):
        config.not_a_field


def test_config_reads_like_a_mapping():
    config = SqueezeBertConfig(**tiny(), attention_dropout=0.3)
    assert config["vocab_size"] == 99 and config["attention_dropout"] == 0.3
    assert "q_groups" in config and "attention_dropout" in config and "nothing" not in config
    assert config.get("nothing", 7) == 7 and config.get("hidden_size") == 32
    with pytest.raises(KeyError):
        config["nothing"]
    config["hidden_dropout_prob"] = 0.25
    assert config.hidden_dropout_prob == 0.25
    assert dict(**config) == config.to_dict() and set(config.keys()) == set(config.to_dict())


def test_paddlenlp_and_hf_label_conventions():
    config = SqueezeBertConfig(num_classes=5)
    assert config.num_labels == 5 and len(config.id2label) == 5 and config.label2id["LABEL_4"] == 4
    config.num_classes = 3
    assert config.num_labels == 3 and list(config.id2label) == [0, 1, 2]
    hf = SqueezeBertConfig.from_dict({"id2label": {"0": "no", "1": "yes"}})    # as read from config.json
    assert hf.num_labels == 2 and hf.id2label == {0: "no", 1: "yes"} and hf.label2id == {"no": 0, "yes": 1}
    assert SqueezeBertConfig().replace(num_classes=4).num_labels == 4


@pytest.mark.parametrize("bad, message", [
    (dict(hidden_size=30, embedding_size=30), "hidden_size 30 is not divisible by num_attention_heads 4"),
    (dict(q_groups=5), "q_groups=5 must divide"),
    (dict(hidden_size=0), "hidden_size must be a positive integer"),
    (dict(embedding_size=64), "embedding_size 64 must equal hidden_size 32"),
])
def test_validation_refuses_what_the_model_cannot_run(tmp_path, bad, message):
    config = SqueezeBertConfig(**tiny(**bad))          # a config is a bag of values, as in HF ...
    with pytest.raises(ConfigError, match=message):    # ... checked when a model is built from it
        modeling.SqueezeBertModel(config)
    with pytest.raises(ConfigError, match=message):
        modeling.SqueezeBertForSequenceClassification(**config.to_dict())
    with pytest.raises(ConfigError, match=message):
        SqueezeBertConfig.from_dict(config.to_dict())
    path = tmp_path / CONFIG_FILE
    path.write_text(config.to_json_string())
    with pytest.raises(ConfigError, match=f"{re.escape(str(path))}: config: .*{message}"):
        SqueezeBertConfig.from_pretrained(tmp_path)


def test_from_pretrained_reads_our_directories_and_hf_configs(tmp_path):
    import transformers
    model = _model("SqueezeBertForSequenceClassification", num_labels=3)
    model.save_pretrained(tmp_path / "ours")
    loaded = SqueezeBertConfig.from_pretrained(tmp_path / "ours", hidden_dropout_prob=0.0)
    assert loaded.replace(hidden_dropout_prob=model.config.hidden_dropout_prob).to_dict() == {
        **model.config.to_dict(), "architectures": ["SqueezeBertForSequenceClassification"]}
    assert loaded.hidden_dropout_prob == 0.0
    hf = transformers.SqueezeBertConfig(**tiny(q_groups=2), id2label={0: "a", 1: "b", 2: "c"})
    hf.save_pretrained(tmp_path / "hf")
    ours = SqueezeBertConfig.from_pretrained(tmp_path / "hf")
    assert (ours.q_groups, ours.num_labels, ours.id2label[2], ours.vocab_size) == (2, 3, "c", 99)
    SqueezeBertConfig().save_pretrained(tmp_path / "alone")              # both libraries' file name
    assert [p.name for p in (tmp_path / "alone").iterdir()] == ["config.json"]
    with pytest.raises(ConfigError, match=r"^squeezebert/squeezebert-uncased: no such directory; .*"
                                          r"convert_torch_to_paddle.py --download"):
        SqueezeBertConfig.from_pretrained("squeezebert/squeezebert-uncased")


def test_models_build_from_a_config_a_mapping_keywords_or_an_encoder():
    config = SqueezeBertConfig(**tiny(), attention_dropout=0.1)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}   # noqa: E731
    reference = shapes(modeling.SqueezeBertModel(config))
    assert shapes(modeling.SqueezeBertModel(**config)) == reference
    assert shapes(modeling.SqueezeBertModel(config.to_dict())) == reference
    encoder = modeling.SqueezeBertModel(config)
    head = modeling.SqueezeBertForTokenClassification(encoder, num_classes=5)
    assert head.squeezebert is encoder and head.classifier.weight.shape == [32, 5]
    with pytest.raises(TypeError, match="expected a SqueezeBertConfig"):
        modeling.SqueezeBertModel(42)


# -- named outputs ---------------------------------------------------------------------------------

def test_output_objects_read_as_tuples_mappings_and_attributes():
    x, y = np.zeros(2), np.ones(3)
    out = outputs.SequenceClassifierOutput(logits=x, hidden_states=(y,))
    assert out.keys() == ["logits", "hidden_states"] and len(out) == 2 and list(out) == out.keys()
    assert out[0] is x and out[1] == (y,) and out[:1] == (x,) and out[-1] == (y,)
    assert out["logits"] is out.logits is x and out.get("loss", "none") == "none" and "loss" not in out
    with pytest.raises(KeyError):
        out["loss"]
    assert out.to_tuple() == (x, (y,))


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("labels", [False, True])
def test_return_dict_gives_the_same_numbers_as_the_tuples(name, labels):
    model = _model(name)
    kwargs = _inputs(name, labels)
    flags = dict(output_hidden_states=True, output_attentions=True)
    with paddle.no_grad():
        plain = model(**kwargs)                                        # today's default
        as_tuple = model(**kwargs, **flags)
        named = model(**kwargs, **flags, return_dict=True)
    fields = NAMED[name] if labels else NAMED[name][1:]
    assert named.keys() == [*fields, "hidden_states", "attentions"]
    assert len(as_tuple) == len(named) == len(fields) + 2
    plain = plain if isinstance(plain, tuple) else (plain,)
    for i, field in enumerate(fields):
        assert np.array_equal(named[field].numpy(), as_tuple[i].numpy())
        assert np.array_equal(named[i].numpy(), plain[i].numpy())
    for a, b in zip(named.hidden_states + named.attentions, as_tuple[-2] + as_tuple[-1]):
        assert np.array_equal(a.numpy(), b.numpy())
    if labels:
        assert named.loss.item() == pytest.approx(_expected_loss(name, named, kwargs), rel=1e-5)


def test_a_config_can_set_the_output_flags_for_every_call():
    """HF's default (named outputs) with one config field; an argument still wins."""
    model = _model("SqueezeBertForTokenClassification", return_dict=True, output_hidden_states=True)
    kwargs = _inputs("SqueezeBertForTokenClassification", labels=False)
    with paddle.no_grad():
        named, plain = model(**kwargs), model(**kwargs, return_dict=False, output_hidden_states=False)
        encoded = model.squeezebert(kwargs["input_ids"], kwargs["attention_mask"])
    assert named.keys() == ["logits", "hidden_states"] and len(named.hidden_states) == 3
    assert isinstance(plain, paddle.Tensor) and np.array_equal(plain.numpy(), named.logits.numpy())
    assert encoded.keys() == ["last_hidden_state", "pooler_output", "hidden_states"]


def test_sequence_regression_loss_is_mse_when_there_is_one_label():
    model = _model("SqueezeBertForSequenceClassification", num_labels=1)
    kwargs = _inputs("SqueezeBertForSequenceClassification", labels=False)
    target = paddle.to_tensor([0.5, -1.0, 2.0])
    with paddle.no_grad():
        out = model(**kwargs, labels=target, return_dict=True)
    expected = float(((out.logits.numpy()[:, 0] - target.numpy()) ** 2).mean())
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)


def test_hidden_states_and_attentions_have_the_documented_count_and_shapes():
    model = _model("SqueezeBertModel", num_hidden_layers=3)
    ids, mask, types = to_paddle(*batch(2, 9))
    with paddle.no_grad():
        out = model(ids, mask, types, output_hidden_states=True, output_attentions=True, return_dict=True)
        embeddings = model.embeddings(ids, types)
    assert len(out.hidden_states) == 3 + 1 and len(out.attentions) == 3
    assert all(h.shape == [2, 9, 32] for h in out.hidden_states)
    assert all(a.shape == [2, 4, 9, 9] for a in out.attentions)
    assert np.array_equal(out.hidden_states[0].numpy(), embeddings.numpy())
    assert np.array_equal(out.hidden_states[-1].numpy(), out.last_hidden_state.numpy())
    assert out.pooler_output.shape == [2, 32]
    # The maps are the scores before the softmax: the masked keys of the padded row carry the bias.
    assert float(out.attentions[0][1, 0, 0, -1]) < -1e30


def test_the_fused_cpu_path_returns_the_same_numbers_named():
    model = _model("SqueezeBertForSequenceClassification")
    model.use_fused_cpu_kernels()           # the reference runs where the kernels cannot be built
    kwargs = _inputs("SqueezeBertForSequenceClassification", labels=True)
    with paddle.no_grad():
        loss, logits = model(**kwargs)
        named = model(**kwargs, return_dict=True, output_hidden_states=True)
    assert named.loss.item() == loss.item() and np.array_equal(named.logits.numpy(), logits.numpy())
    assert len(named.hidden_states) == 3


# -- embeddings and class hooks --------------------------------------------------------------------

def test_resize_token_embeddings_keeps_rows_and_the_tied_decoder():
    model = _model("SqueezeBertForMaskedLM")
    before = model.get_input_embeddings().weight.numpy().copy()
    bias = model.cls.predictions.bias.numpy().copy()
    table = model.resize_token_embeddings(109)
    assert table.weight.shape == [109, 32] and model.config.vocab_size == 109
    assert np.array_equal(table.weight.numpy()[:99], before)
    assert model.get_output_embeddings() is model.get_input_embeddings() is table
    assert np.array_equal(model.cls.predictions.bias.numpy()[:99], bias)
    ids, mask, types = to_paddle(*batch(2, 6, vocab=109))
    assert model(ids, mask, types).shape == [2, 6, 109]
    model.resize_token_embeddings(90)
    assert model.cls.predictions.bias.shape == [90] and model.base_model.config["vocab_size"] == 90


def test_class_hooks_name_the_released_checkpoints_and_their_hub_ids():
    model = _model("SqueezeBertModel")
    assert model.model_name_list == list(RELEASED_CONFIGS)
    assert modeling.SqueezeBertModel.config_class is SqueezeBertConfig
    assert modeling.SqueezeBertForMaskedLM.constructed_from_pretrained_config()
    assert modeling.SqueezeBertPreTrainedModel.pretrained_resource_files_map["model_state"] == HUB_IDS
    assert HUB_IDS["squeezebert-mnli"] == "squeezebert/squeezebert-mnli"
    for name, fields in modeling.SqueezeBertModel.pretrained_init_configuration.items():
        released = SqueezeBertConfig.from_dict(fields)
        assert released == SqueezeBertConfig(**RELEASED_CONFIGS[name]) and released.vocab_size == 30528
    assert SqueezeBertTokenizer.pretrained_resource_files_map["vocab_file"] == HUB_IDS
    assert set(SqueezeBertTokenizer.pretrained_init_configuration) == set(HUB_IDS)
    assert SqueezeBertTokenizer.max_model_input_sizes["squeezebert-uncased"] == 512


# -- the README section ----------------------------------------------------------------------------

def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Coming from PaddleNLP / Hugging Face", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = readme_examples()
    assert len(blocks) >= 5
    namespace = {}
    for block in blocks:                     # one namespace: the first block builds what the others use
        exec(compile(block, "README.md", "exec"), namespace)
