"""Following a run's log files as they grow (`logs --follow`, `wait --show-output`)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO

from ..rundir import RunDir, file_kind


class LogFollower:
    """Copies what the ranks' log files gain to streams, from where it last stopped (`tail -f`).

    A log that is there but cannot be read (a directory, a FIFO, no permission) is said once on the error
    stream, as `hpc_tf: PATH: why`, and kept in `problems`; the other logs are copied as usual."""

    def __init__(self, run: RunDir, out: IO[str], err: IO[str], all_ranks: bool = False, rank: int = 0) -> None:
        self.run, self.out, self.err, self.all_ranks, self.rank = run, out, err, all_ranks, rank
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, str] = {}
        self.problems: dict[Path, str] = {}

    def pump(self) -> None:
        ranks = self.run.logged_ranks() if self.all_ranks else [self.rank]
        for rank in ranks:
            for path, stream in ((self.run.rank_out(rank), self.out), (self.run.rank_err(rank), self.err)):
                self._copy(path, stream, f"[rank {rank}] " if self.all_ranks else "")

    def _copy(self, path: Path, stream: IO[str], prefix: str) -> None:
        if path in self.problems:
            return
        try:
            data = self._read_new(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problems[path] = exc.strerror or str(exc)
            self.err.write(f"hpc_tf: {path}: cannot read it ({self.problems[path]})\n")
            self.err.flush()
            return
        if not data:
            return
        self.offsets[path] = self.offsets.get(path, 0) + len(data)
        text = self.partial.pop(path, "") + data.decode("utf-8", errors="replace")
        if prefix:  # whole lines only, so prefixes from several ranks never cut a line
            text, newline, rest = text.rpartition("\n")
            if rest:
                self.partial[path] = rest
            if not newline:
                return
            text = "".join(f"{prefix}{line}\n" for line in text.split("\n"))
        stream.write(text)
        stream.flush()

    def _read_new(self, path: Path) -> bytes:
        """What `path` gained since the last read; a file that is not a regular one is an OSError (a FIFO would
        block the reader, a directory has nothing to copy)."""
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise OSError(errno.EINVAL, f"not a regular file: {file_kind(mode)}")
            os.lseek(fd, self.offsets.get(path, 0), os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as handle:
                return handle.read()
        finally:
            os.close(fd)
