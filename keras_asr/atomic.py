"""Atomic file writes: write beside the target, sync, rename over it.

A rename within one folder replaces a file in one step, so a reader (or a run resumed after a kill or a full
disk) finds either the old file or the whole new one, never a mix. Used for models, checkpoints and indexes.

Example:

```python
with written_beside("outputs/model.keras", suffix=".keras") as temporary:
    model.save(temporary)
# outputs/model.keras is now the new model; had `model.save` failed, the old one would still be there.
```
"""

import contextlib
import os
import secrets


def fsync(path):
    """Flushes a file, or a folder's entries, to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def written_beside(path, suffix=""):
    """Yields a temporary path beside `path`; once the block succeeds it is synced and renamed to `path`.

    If the block fails (an error, a full disk, Ctrl-C) the temporary file is removed and `path` is untouched.

    Args:
        path: the file to write.
        suffix: the ending the temporary name must keep (writers such as Keras check it, e.g. ".weights.h5").
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    stem = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    temporary = os.path.join(folder, f".{stem}.{secrets.token_hex(8)}.tmp{suffix}")
    try:
        yield temporary
        fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    fsync(folder)
