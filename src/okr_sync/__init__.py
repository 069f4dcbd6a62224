"""okr-sync: OKR and Balanced Scorecard scores from the work teams finish."""
