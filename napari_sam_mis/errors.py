"""Errors users see: each names the file or model at fault and what is wrong with it."""


class SamMisError(Exception):
    """Base class for the errors this package raises on purpose."""


class ModelError(SamMisError):
    """A model could not be built: unknown name, missing or mismatched checkpoint."""


class InputError(SamMisError, ValueError):
    """A file or array can't be used; the message starts with the file's path."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
