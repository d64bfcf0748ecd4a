"""Errors that are the user's input, not our bug: printed as one line, exit status 1."""


class RnnlabError(Exception):
    """Bad input: a params key, a data file, a checkpoint. The message names which."""


class ParamsError(RnnlabError, ValueError):
    """A key of params.yaml is missing, unknown, or out of range."""


class DataError(RnnlabError):
    """A data file (csv, shard, checkpoint) cannot be used; the message names file and line."""


class WriteError(RnnlabError):
    """An output cannot be written (a full disk, no permission); the message names it."""


class DivergedError(RnnlabError):
    """Training produced a non-finite loss or parameter: no result of it may be written."""

    def __init__(self, epoch: int, replica: int, what: str, cause: str):
        self.epoch, self.replica, self.what, self.cause = epoch, replica, what, cause
        super().__init__(f"training diverged at epoch {epoch} (replica {replica}: {what}); likely cause: {cause}")


def shorten(text: str, limit: int = 40) -> str:
    """``text`` as echoed in a message: at most ``limit`` characters, a cut one saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
