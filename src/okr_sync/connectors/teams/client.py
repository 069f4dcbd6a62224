"""Microsoft Teams delivery: Workflows webhooks and the Bot Framework connector.

* :class:`TeamsWorkflowClient` (:mod:`.workflow`) posts an Adaptive Card to a
  Power Automate "When a Teams webhook request is received" URL.
* :class:`TeamsBotClient` (:mod:`.bot`) posts and updates activities through
  the Bot Connector with a token from MSAL.

Both send through :mod:`.transport`, which resolves statuses and exceptions by
the Teams rows of the shared error table. This module is the package's
public face: import from here.
"""

from __future__ import annotations

from okr_sync.connectors.teams.bot import TeamsBotClient
from okr_sync.connectors.teams.errors import (
    TeamsAuthError,
    TeamsError,
    TeamsMalformedResponseError,
    TeamsNotFoundError,
    TeamsPayloadError,
    TeamsPermanentError,
    TeamsRateLimitedError,
    TeamsTransientError,
)
from okr_sync.connectors.teams.transport import TEAMS_BOT_ERROR_TABLE, TEAMS_WORKFLOW_ERROR_TABLE
from okr_sync.connectors.teams.workflow import (
    TeamsWorkflowClient,
    adaptive_card_attachment,
    checked_workflow_url,
    redact_url,
    workflow_envelope,
)

__all__ = [
    "TEAMS_BOT_ERROR_TABLE",
    "TEAMS_WORKFLOW_ERROR_TABLE",
    "TeamsAuthError",
    "TeamsBotClient",
    "TeamsError",
    "TeamsMalformedResponseError",
    "TeamsNotFoundError",
    "TeamsPayloadError",
    "TeamsPermanentError",
    "TeamsRateLimitedError",
    "TeamsTransientError",
    "TeamsWorkflowClient",
    "adaptive_card_attachment",
    "checked_workflow_url",
    "redact_url",
    "workflow_envelope",
]
