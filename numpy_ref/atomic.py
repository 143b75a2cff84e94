"""Writing a file so that nobody ever sees half of it: the one place that does it.

The content goes to a temporary file in the destination's folder, which is renamed
over the destination only once it is complete; on any error (or Ctrl-C) the
temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write to; on success it replaces `path`. The temporary
    file is named before it is created, so an interruption at any moment (Ctrl-C included)
    still removes it; it is created with mode 0666 less the umask, like any new file."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        yield str(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write UTF-8 text with "\\n" line ends, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
