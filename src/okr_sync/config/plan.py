"""The plan file (DESIGN.md A1): pydantic models of what the user writes.

Loading, with line/column error reporting and cross-checks, lives in
:mod:`okr_sync.config.plan_loader`; this module only declares shapes and the
rules that concern one node at a time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from okr_sync.config.cycle import FIRST_CYCLE_YEAR as FIRST_CYCLE_YEAR
from okr_sync.config.cycle import LAST_CYCLE_YEAR as LAST_CYCLE_YEAR
from okr_sync.config.cycle import MAX_CYCLE_DAYS as MAX_CYCLE_DAYS
from okr_sync.config.cycle import Cycle as Cycle
from okr_sync.config.cycle import StrictModel
from okr_sync.config.kr_types import (
    MAX_SCORE_CAP,
    MILESTONES_TEXT,
    RANGE_SCORE_TEXT,
    SCORE_CAP_TEXT,
    Milestone,
    RangeTarget,
    kr_type_problem,
)
from okr_sync.config.people import CheckinPolicy, Person
from okr_sync.config.plan_serve import ServeSchedule

DEFAULT_SOURCE = "main"
#: A source name is part of variable names (OKR_SYNC_JIRA__<NAME>__URL) and of the webhook
#: path (/webhooks/jira/<name>): letters, digits and single underscores.
SOURCE_NAME_PATTERN = r"^[A-Za-z0-9]+(_[A-Za-z0-9]+)*$"

#: Weights, baselines, targets and values stay within +-this, so that sums of
#: weights and differences such as target - baseline stay finite and exact enough.
MAX_PLAN_NUMBER = 1e12
#: A schedule in the plan must fire within this many years (30 February never does).
CRON_HORIZON_YEARS = 5


def _bounded(value: float) -> float:
    if abs(value) > MAX_PLAN_NUMBER:
        raise ValueError(
            f"{value:g} is out of range: numbers in a plan must be within +-1e12"
            " (larger ones overflow weight sums and target - baseline)"
        )
    return value


PlanNumber = Annotated[float, AfterValidator(_bounded)]

StrOrList = str | list[str]


class Band(StrictModel):
    name: str = Field(min_length=1)
    min: float = Field(ge=0.0, le=1.0)


def _default_bands() -> list[Band]:
    return [
        Band(name="missed", min=0.0),
        Band(name="progress", min=0.4),
        Band(name="strong", min=0.7),
    ]


class ForecastSettings(StrictModel):
    """``scoring.forecast``: the thresholds that map a forecast to a confidence."""

    on_track: float = Field(default=0.7, gt=0.0, le=1.0, description=(
        "on_track when the probability of reaching the top band's min is at least this."))
    at_risk: float = Field(default=0.4, ge=0.0, le=1.0, description=(
        "at_risk when that probability is at least this (and below on_track), else off_track."))
    runs: int = Field(default=1000, ge=100, le=100_000, description=(
        "Monte Carlo runs per KR (the seed is fixed per cycle and KR: passes reproduce)."))

    @model_validator(mode="after")
    def _ordered(self) -> ForecastSettings:
        if self.at_risk > self.on_track:
            raise ValueError(f"at_risk {self.at_risk:g} is above on_track {self.on_track:g}")
        return self


class Scoring(StrictModel):
    bands: list[Band] = Field(default_factory=_default_bands, min_length=1)
    confidence: Literal["pace", "forecast"] = Field(default="pace", description=(
        "pace (the default, DESIGN A3): score / elapsed fraction. forecast: Monte Carlo"
        " over the KR's measured daily throughput (see scoring.forecast); a KR with fewer"
        " than 3 days of history falls back to pace, saying why."))
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    guardrail_confidence: Literal["at_risk", "off_track"] = Field(default="at_risk", description=(
        "The best confidence an objective can have while one of its guardrail KPIs is red."))
    cap_objectives: bool = Field(default=True, description=(
        "Objective means count each contributor's score at most 1, so a KR's score_cap"
        " shows over-achievement on the KR only; false lets it raise the objective."))

    @field_validator("bands")
    @classmethod
    def _ascending_unique(cls, bands: list[Band]) -> list[Band]:
        mins = [band.min for band in bands]
        if len(set(mins)) != len(mins):
            raise ValueError("two bands have the same min")
        names = [band.name for band in bands]
        if len(set(names)) != len(names):
            raise ValueError("band names must be unique")
        if min(mins) != 0.0:
            raise ValueError("the lowest band must have min 0 so that every score has a band")
        return sorted(bands, key=lambda band: band.min)


class JiraSourceConfig(StrictModel):
    projects: list[str] = Field(default_factory=list)
    story_points_field: str = "auto"
    done: Literal["status_category", "resolution"] = "status_category"


class Perspective(StrictModel):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)


def default_perspectives() -> list[Perspective]:
    return [
        Perspective(id="financial", title="Financial"),
        Perspective(id="customer", title="Customer"),
        Perspective(id="internal", title="Internal Processes"),
        Perspective(id="learning", title="Learning & Growth"),
    ]


class Selector(StrictModel):
    """Structured selection of work items, evaluated locally on the issue mirror (A2)."""

    project: StrOrList | None = None
    issuetype: StrOrList | None = None
    labels: StrOrList | None = None
    components: StrOrList | None = None
    fix_version: StrOrList | None = None
    epic: StrOrList | None = None
    status_category: (
        Literal["new", "indeterminate", "done"]
        | list[Literal["new", "indeterminate", "done"]]
        | None
    ) = None
    priority: StrOrList | None = None
    include_subtasks: bool = False

    def values(self, key: str) -> list[str] | None:
        """The values of one key as a list (a single value is a one-item list)."""
        raw = getattr(self, key)
        if raw is None:
            return None
        return [raw] if isinstance(raw, str) else list(raw)


#: The unit and field name that weigh items by their story points (DESIGN.md A2).
STORY_POINTS = "story_points"


class _SelectedMeasure(StrictModel):
    source: str = Field(
        default=DEFAULT_SOURCE,
        description="the Jira source (a key of `jira:`) this measure reads; default main",
        json_schema_extra={"pattern": SOURCE_NAME_PATTERN},
    )
    select: Selector | None = None
    jql: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one_selection(self) -> _SelectedMeasure:
        if (self.select is None) == (self.jql is None):
            raise ValueError("give exactly one of `select` or `jql`")
        return self


class DoneRatioMeasure(_SelectedMeasure):
    kind: Literal["done_ratio"]
    unit: Literal["issues", "story_points"] = "issues"
    scope: Literal["all", "frozen"] = "all"


class CountMeasure(_SelectedMeasure):
    kind: Literal["count"]


class SumMeasure(_SelectedMeasure):
    kind: Literal["sum"]
    field: str = Field(min_length=1)
    done_only: bool = False


class MilestoneMeasure(_SelectedMeasure):
    kind: Literal["milestone"]


class ManualMeasure(StrictModel):
    kind: Literal["manual"]


Measure = Annotated[
    DoneRatioMeasure | CountMeasure | SumMeasure | MilestoneMeasure | ManualMeasure,
    Field(discriminator="kind"),
]
JiraMeasure = DoneRatioMeasure | CountMeasure | SumMeasure | MilestoneMeasure

#: Default (baseline, target) per measure kind where the contract gives one.
_KIND_DEFAULTS: dict[str, tuple[float, float | None]] = {
    "done_ratio": (0.0, 1.0),
    "milestone": (0.0, 1.0),
    "count": (0.0, None),
    "sum": (0.0, None),
    "manual": (0.0, None),
}


class KeyResult(StrictModel):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    weight: PlanNumber = Field(default=1.0, ge=0.0)
    measure: Measure
    baseline: PlanNumber | None = None
    target: PlanNumber | RangeTarget | None = Field(
        default=None, description="A number, or {min, max} with direction: range.")
    current: PlanNumber | None = None
    direction: Literal["at_least", "at_most", "range"] | None = Field(
        default=None, description="at_least / at_most: 1 or 0 by a threshold. "
        + RANGE_SCORE_TEXT)
    tolerance: PlanNumber | None = Field(default=None, gt=0.0, description=RANGE_SCORE_TEXT)
    milestones: list[Milestone] | None = Field(default=None, min_length=1,
                                               description=MILESTONES_TEXT)
    score_cap: float = Field(default=1.0, ge=1.0, le=MAX_SCORE_CAP, description=SCORE_CAP_TEXT)
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None

    @model_validator(mode="after")
    def _coherent_target(self) -> KeyResult:
        if self.current is not None and self.measure.kind != "manual":
            raise ValueError("`current` is only for `manual` measures; others are measured")
        problem = kr_type_problem(self.direction, self.target, self.baseline, self.tolerance,
                                  bool(self.milestones) or self.score_cap != 1.0)
        if problem is not None:
            raise ValueError(problem)
        if self.direction is not None:
            return self
        if self.effective_target is None:
            raise ValueError(f"a `{self.measure.kind}` measure needs a `target`")
        if self.effective_baseline == self.effective_target:
            raise ValueError("baseline and target are equal, so progress cannot be measured")
        return self

    @property
    def range_target(self) -> RangeTarget | None:
        return self.target if isinstance(self.target, RangeTarget) else None

    @property
    def effective_baseline(self) -> float:
        if self.baseline is not None:
            return self.baseline
        return _KIND_DEFAULTS[self.measure.kind][0]

    @property
    def effective_target(self) -> float | None:
        """The numeric target (None for a range KR: see :attr:`range_target`)."""
        if isinstance(self.target, RangeTarget):
            return None
        if self.target is not None:
            return self.target
        return _KIND_DEFAULTS[self.measure.kind][1]


class Objective(StrictModel):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    perspective: str | None = None
    parent: str | None = None
    weight: PlanNumber = Field(default=1.0, ge=0.0)
    notify: list[str] = Field(default_factory=list)
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    key_results: list[KeyResult] = Field(default_factory=list)
    guardrails: list[str] = Field(default_factory=list, description=(
        "KPI ids that must hold while the objective is pursued: a red one caps the"
        " objective's confidence at scoring.guardrail_confidence."))


class KpiThresholds(StrictModel):
    green: PlanNumber
    yellow: PlanNumber


class Kpi(StrictModel):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    perspective: str | None = None
    direction: Literal["increase", "decrease"] = "increase"
    value: PlanNumber | None = None
    measure: Measure | None = None
    unit: str | None = None
    thresholds: KpiThresholds

    @model_validator(mode="after")
    def _value_or_measure(self) -> Kpi:
        if (self.value is None) == (self.measure is None):
            raise ValueError("give exactly one of `value` or `measure`")
        if self.measure is not None and self.measure.kind == "manual":
            raise ValueError("a KPI entered by hand takes `value:`, not a manual measure")
        green, yellow = self.thresholds.green, self.thresholds.yellow
        if self.direction == "increase" and green < yellow:
            raise ValueError("with direction increase, thresholds.green must be >= yellow")
        if self.direction == "decrease" and green > yellow:
            raise ValueError("with direction decrease, thresholds.green must be <= yellow")
        return self


class SlackTarget(StrictModel):
    channel: str = Field(min_length=1)


class TeamsWorkflowTarget(StrictModel):
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class TeamsBotTarget(StrictModel):
    conversation_id: str = Field(min_length=1)


class RouteTarget(StrictModel):
    """One destination of a route: exactly one of the three kinds."""

    slack: SlackTarget | None = None
    teams_workflow: TeamsWorkflowTarget | None = None
    teams_bot: TeamsBotTarget | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RouteTarget:
        given = [k for k in ("slack", "teams_workflow", "teams_bot") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of `slack`, `teams_workflow`, `teams_bot`")
        return self


_STALE_AFTER = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")


class Notify(StrictModel):
    min_delta: float = Field(default=0.05, ge=0.0, le=1.0)
    digest_cron: str | None = "0 9 * * MON"
    checkin_reminder_cron: str | None = "0 9 * * FRI"
    #: A KR whose measurement is older than this is flagged stale (``"2d"``, ``"12h"``,
    #: ``"1d12h"``, ``"90m"``); unset: only a failed measure makes a KR stale.
    stale_after: timedelta | None = None
    #: Where scoring warnings (double counting, scope growth, missing points...) are
    #: shown: ``status`` (``status``, ``explain`` and the report only) or ``channel``
    #: (also in the Slack and Teams messages).
    warnings: Literal["status", "channel"] = "status"

    @field_validator("stale_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is None or isinstance(value, timedelta):
            return value
        # A bare number would have to guess its unit; YAML reads "2d" as text.
        match = _STALE_AFTER.fullmatch(value) if isinstance(value, str) else None
        if match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration: use days, hours or minutes, "
                             "e.g. 2d, 12h, 1d12h, 90m")
        days, hours, minutes = (int(part or 0) for part in match.groups())
        if days > 3660:
            raise ValueError(f"{value!r} is longer than a cycle can be")
        duration = timedelta(days=days, hours=hours, minutes=minutes)
        if duration <= timedelta(0):
            raise ValueError(f"{value!r} must be longer than zero")
        return duration

    @field_validator("digest_cron", "checkin_reminder_cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # Imported here: croniter (with dateutil) costs ~40 ms to import, and most plans
        # set no cron, so most start-ups need none of it.
        from croniter import CroniterError, croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (e.g. '0 9 * * MON')")
        try:
            # croniter gives up after this many years without a match: the search is bounded.
            croniter(
                value, datetime.now(UTC), max_years_between_matches=CRON_HORIZON_YEARS
            ).get_next(datetime)
        except (CroniterError, ValueError, OverflowError):
            raise ValueError(
                f"{value!r} never fires within {CRON_HORIZON_YEARS} years"
                " (e.g. a day that does not exist, such as 30 February)"
            ) from None
        return value


class Plan(StrictModel):
    version: Literal[1]
    cycle: Cycle
    scoring: Scoring = Field(default_factory=Scoring)
    jira: dict[str, JiraSourceConfig] = Field(
        default_factory=lambda: {DEFAULT_SOURCE: JiraSourceConfig()},
        description="Jira sources by name (default: one named main). Settings connect each: "
                    "OKR_SYNC_JIRA_* the source main, OKR_SYNC_JIRA__<NAME>__URL, __EMAIL, "
                    "__API_TOKEN, __PAT (and __WEBHOOK_SECRET) the others.",
        json_schema_extra={"propertyNames": {"pattern": SOURCE_NAME_PATTERN}},
    )
    perspectives: list[Perspective] = Field(default_factory=default_perspectives)
    kpis: list[Kpi] = Field(default_factory=list)
    objectives: list[Objective] = Field(min_length=1)
    routes: dict[str, list[RouteTarget]] = Field(default_factory=dict)
    notify: Notify = Field(default_factory=Notify)
    #: Owners by key: ``owner: alice`` shows ``people.alice.name`` and may mention them.
    people: dict[str, Person] = Field(default_factory=dict)
    #: Who may check in from Slack or Teams besides each KR's owners.
    checkins: CheckinPolicy = Field(default_factory=CheckinPolicy)
    serve: ServeSchedule | None = Field(
        default=None,
        description="serve --plans: this plan's own schedule (default: the command line's "
                    "--interval or --cron)",
    )

    def person(self, owner: str | None) -> Person | None:
        """The ``people`` entry an owner names, or None for free text (or no owner)."""
        return None if owner is None else self.people.get(owner)

    def owner_name(self, owner: str | None) -> str | None:
        """An owner as people read it: their ``people`` name, else the owner text."""
        person = self.person(owner)
        if person is not None and person.name is not None:
            return person.name
        return owner

    def key_results(self) -> list[tuple[Objective, KeyResult]]:
        return [(o, kr) for o in self.objectives for kr in o.key_results]

    def jira_measures(self) -> list[tuple[str, JiraMeasure]]:
        """Every KR and KPI measured from Jira, as (owner id, measure)."""
        owners: list[tuple[str, JiraMeasure]] = [
            (kr.id, kr.measure) for _, kr in self.key_results() if kr.measure.kind != "manual"
        ]
        owners += [
            (kpi.id, kpi.measure)
            for kpi in self.kpis
            if kpi.measure is not None and kpi.measure.kind != "manual"
        ]
        return owners

    def measure_sources(self) -> dict[str, str]:
        """Every Jira-measured owner's source name (see :meth:`jira_measures`)."""
        return {owner: measure.source for owner, measure in self.jira_measures()}

    def objective(self, objective_id: str) -> Objective:
        for objective in self.objectives:
            if objective.id == objective_id:
                return objective
        raise KeyError(objective_id)

    def key_result(self, kr_id: str) -> KeyResult:
        for _, kr in self.key_results():
            if kr.id == kr_id:
                return kr
        raise KeyError(kr_id)

    def children(self, objective_id: str) -> list[Objective]:
        return [o for o in self.objectives if o.parent == objective_id]


def uses_points(measure: JiraMeasure) -> bool:
    """Whether a measure weighs items by story points."""
    if isinstance(measure, DoneRatioMeasure):
        return measure.unit == STORY_POINTS
    return isinstance(measure, SumMeasure) and measure.field == STORY_POINTS


def selector_projects(select: Selector, source: JiraSourceConfig) -> list[str]:
    """The projects a structured selector covers (its own, else its source's)."""
    return select.values("project") or list(source.projects)
