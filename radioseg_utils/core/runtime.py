"""Settings of the process environment that libraries read when they start.

TensorFlow's C++ runtime writes INFO lines to stderr as it starts: which CPU instructions
it was built for (``cpu_feature_guard``), ``oneDNN custom operations are on``, and absl's
``All log messages before absl::InitializeLog() is called are written to STDERR``. They
say nothing a user can act on, yet would open every command and every notebook cell
that first touches the network. :func:`quiet_tensorflow` drops them; it must run before
TensorFlow is imported, so the model layer (``radioseg_utils.model``), the input pipeline,
the command line and the book runner (whose notebook kernels inherit the environment)
call it first. TensorFlow's warnings and errors, and every Python warning, still show.

Examples
--------
>>> import os
>>> quiet_tensorflow()
>>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"0", "1", "2", "3"}
True
"""

from __future__ import annotations

import os

__all__ = ["TENSORFLOW_LOG_ENV", "quiet_tensorflow"]

#: Environment read by TensorFlow at start-up: C++ log level 1 drops INFO lines and keeps
#: WARNING and ERROR ones.
TENSORFLOW_LOG_ENV: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "1"}


def quiet_tensorflow() -> None:
    """Set :data:`TENSORFLOW_LOG_ENV` in ``os.environ`` unless already set (a value the
    user chose, e.g. ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything, wins). Has no effect on
    a TensorFlow already started."""
    for key, value in TENSORFLOW_LOG_ENV.items():
        os.environ.setdefault(key, value)
