"""Following a run's log files as they grow (`logs --follow`, `wait --show-output`)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from ..rundir import RunDir


class LogFollower:
    """Copies what the ranks' log files gain to streams, from where it last stopped (`tail -f`)."""

    def __init__(self, run: RunDir, out: IO[str], err: IO[str], all_ranks: bool = False, rank: int = 0) -> None:
        self.run, self.out, self.err, self.all_ranks, self.rank = run, out, err, all_ranks, rank
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, str] = {}

    def pump(self) -> None:
        ranks = self.run.logged_ranks() if self.all_ranks else [self.rank]
        for rank in ranks:
            for path, stream in ((self.run.rank_out(rank), self.out), (self.run.rank_err(rank), self.err)):
                self._copy(path, stream, f"[rank {rank}] " if self.all_ranks else "")

    def _copy(self, path: Path, stream: IO[str], prefix: str) -> None:
        try:
            with open(path, "rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read()
        except FileNotFoundError:
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
