"""Activation functions by their Hugging Face names, with the exact formulas of
`transformers.activations.ACT2FN` (the parameter-free ones; see configuration.SUPPORTED_ACTIVATIONS)."""
import math

import paddle
import paddle.nn.functional as F

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + paddle.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * paddle.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "gelu_python_tanh": _gelu_tanh,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate=True),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + paddle.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "gelu_10": lambda x: paddle.clip(F.gelu(x), -10.0, 10.0),
    "quick_gelu": lambda x: x * F.sigmoid(1.702 * x),
    "laplace": lambda x: 0.5 * (1.0 + paddle.erf((x - 0.707107) / (0.282095 * math.sqrt(2.0)))),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "linear": lambda x: x,
    "mish": F.mish,
    "relu": F.relu,
    "relu2": lambda x: paddle.square(F.relu(x)),
    "relu6": F.relu6,
    "sigmoid": F.sigmoid,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": paddle.tanh,
}
