"""Writing a file so that nobody ever sees half of it: the one place that does it.

The content goes to a temporary file in the destination's folder, which is renamed
over the destination only once it is complete; on any error (or Ctrl-C) the
temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write to; on success it replaces `path`, with the
    permissions a new file would get (0666 less the umask, not mkstemp's 0600)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write UTF-8 text with "\\n" line ends, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
