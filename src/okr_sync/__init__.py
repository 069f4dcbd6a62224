"""okr-sync: OKR and Balanced Scorecard scores from the work teams finish."""

#: Shown by ``okr-sync --version`` when the distribution is not installed; a test keeps
#: it equal to pyproject.toml's version.
__version__ = "0.1.0"
