"""``okr-sync backfill``: daily KR history rebuilt from Jira's changelog (see :mod:`.run`)."""
