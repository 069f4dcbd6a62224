"""Rendering scorecards for Slack (Block Kit) and Microsoft Teams (Adaptive Cards 1.5).

Pure functions, no I/O: the connectors send what these return. Every text that
comes from the plan or Jira is made inert for its surface (see
:mod:`.slack_blocks` and :mod:`.teams_elements`),
and every message stays within its platform's limits by summarising a big plan.
"""

from okr_sync.sync.delivery.render.common import Contact, Contacts
from okr_sync.sync.delivery.render.slack import render_slack_scorecard
from okr_sync.sync.delivery.render.slack_blocks import SlackPayload, escape_mrkdwn
from okr_sync.sync.delivery.render.slack_notes import (
    render_slack_change_note,
    render_slack_checkin_reminder,
    render_slack_digest,
)
from okr_sync.sync.delivery.render.teams import render_teams_scorecard_card
from okr_sync.sync.delivery.render.teams_elements import (
    TEAMS_MAX_BYTES,
    escape_teams_markdown,
    payload_bytes,
    teams_bot_activity,
    teams_message_envelope,
)
from okr_sync.sync.delivery.render.teams_notes import (
    render_teams_change_card,
    render_teams_checkin_reminder_card,
    render_teams_digest_card,
    teams_summary,
)

__all__ = [
    "TEAMS_MAX_BYTES",
    "Contact",
    "Contacts",
    "SlackPayload",
    "escape_mrkdwn",
    "escape_teams_markdown",
    "payload_bytes",
    "render_slack_change_note",
    "render_slack_checkin_reminder",
    "render_slack_digest",
    "render_slack_scorecard",
    "render_teams_change_card",
    "render_teams_checkin_reminder_card",
    "render_teams_digest_card",
    "render_teams_scorecard_card",
    "teams_bot_activity",
    "teams_message_envelope",
    "teams_summary",
]
