"""Paths of the files shipped inside the package: the uncased vocabulary and the GLUE-format samples.

Framework-free. Scripts fall back to these when the real files (a checkpoint's vocab.txt, GLUE data)
are absent, and say so.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
VOCAB_FILE = HERE / "vocab.txt"                 # uncased WordPiece, all three checkpoints' vocab.txt
SAMPLE_GLUE_DIR = HERE / "glue_sample"          # <TASK>/{train,dev,test}.tsv in GLUE's layouts
SAMPLE_QQP_DEV = SAMPLE_GLUE_DIR / "QQP" / "dev.tsv"
