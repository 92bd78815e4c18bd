"""Settings of the process environment that libraries read when they start.

TensorFlow's C++ runtime writes INFO lines to stderr as it starts: which CPU instructions
it was built for (``cpu_feature_guard``), ``oneDNN custom operations are on`` (on CPUs
where oneDNN is on by default, those with AVX-512 or AMX), and absl's ``All log messages
before absl::InitializeLog() is called are written to STDERR``. They say nothing a user
can act on, yet would open every command and every notebook cell that first touches the
network. :func:`quiet_tensorflow` sets TensorFlow's C++ log level, which drops INFO lines
written after absl's logging is initialised; the ones written before it are not filtered
by any level (abseil/abseil-cpp#1718), so :func:`start_keras` imports Keras, and with it
its backend, with those lines dropped from the process's stderr. The model layer
(``radioseg_utils.model``) and the input pipeline start Keras so; the command line and the
book runner (whose notebook kernels inherit the environment) call
:func:`quiet_tensorflow` first. TensorFlow's warnings and errors, and every Python
warning, still show.

Examples
--------
>>> import os
>>> quiet_tensorflow()
>>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in {"0", "1", "2", "3"}
True
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

__all__ = ["START_UP_LINES", "TENSORFLOW_LOG_ENV", "quiet_tensorflow", "start_keras",
           "without_lines"]

#: Environment read by TensorFlow at start-up: C++ log level 1 drops INFO lines and keeps
#: WARNING and ERROR ones.
TENSORFLOW_LOG_ENV: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "1"}

#: Parts of the start-up lines that :func:`start_keras` drops (INFO lines all).
START_UP_LINES: tuple[str, ...] = ("cpu_feature_guard", "oneDNN custom operations",
                                   "absl::InitializeLog")


def quiet_tensorflow() -> None:
    """Set :data:`TENSORFLOW_LOG_ENV` in ``os.environ`` unless already set (a value the
    user chose, e.g. ``TF_CPP_MIN_LOG_LEVEL=0`` to see everything, wins). Has no effect on
    a TensorFlow already started."""
    for key, value in TENSORFLOW_LOG_ENV.items():
        os.environ.setdefault(key, value)


@contextmanager
def without_lines(parts: tuple[str, ...]) -> Iterator[None]:
    """Hold what the process writes to its stderr (file descriptor 2, C and C++ code
    included) meanwhile, and write it back without the lines that contain any of ``parts``.

    Examples
    --------
    >>> import os
    >>> with without_lines(("noise",)):
    ...     _ = os.write(2, b"some noise\\n")
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            sys.stderr.write("".join(line for line in text.splitlines(keepends=True)
                                     if not any(part in line for part in parts)))
            sys.stderr.flush()


def start_keras() -> None:
    """Import Keras, which starts its backend, without TensorFlow's start-up lines.

    Sets :data:`TENSORFLOW_LOG_ENV` (:func:`quiet_tensorflow`) and, unless TensorFlow's
    C++ log level is 0 (everything asked for), drops the lines of :data:`START_UP_LINES`
    written meanwhile (:func:`without_lines`); every other line is written back. Nothing
    happens if Keras is imported already.
    """
    quiet_tensorflow()
    if "keras" in sys.modules:
        return
    everything = os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    with nullcontext() if everything else without_lines(START_UP_LINES):
        import keras  # noqa: F401
