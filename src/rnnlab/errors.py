"""Errors that are the user's input, not our bug: printed as one line, exit status 1."""


class RnnlabError(Exception):
    """Bad input: a params key, a data file, a checkpoint. The message names which."""


class ParamsError(RnnlabError, ValueError):
    """A key of params.yaml is missing, unknown, or out of range."""


class DataError(RnnlabError):
    """A data file (csv, shard, checkpoint) cannot be used; the message names file and line."""


class WriteError(RnnlabError):
    """An output cannot be written (a full disk, no permission); the message names it."""
