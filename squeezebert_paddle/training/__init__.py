"""GLUE fine-tuning in Paddle: the logic behind `run_glue.py`.

    settings.py       RunSettings: a typed field per run_glue.py flag, defaults, pre-run checks
    fine_tune.py      train(settings), run_command(settings): build the run, train, finish
    processes.py      device, threads, the data-parallel group, the console log
    models.py         the model and tokenizer (SqueezeBERT, or PaddleNLP's BERT), one forward pass
    optim.py          the step plan, learning-rate schedules (equal to HF's), AdamW
    data_order.py     which examples each step and each process trains on
    loop.py           the training loop: steps, logging, evaluation, best model, checkpoints
    evaluation.py     dev metrics, test predictions, metrics.jsonl, VisualDL, the curve plot
    state.py          Run and TrainState; checkpoints and exact resume
    output_layout.py  the files a run writes (names and layout)
    errors.py         TrainingError

GLUE files are read, located and downloaded by the data package (`squeezebert_paddle.data`).
Importing this package is cheap; Paddle loads with the modules that train.
"""


def __getattr__(name):
    if name in ("train", "run_command"):
        from . import fine_tune
        return getattr(fine_tune, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
