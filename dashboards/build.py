"""The five ColdTrace dashboards, built with Grafana's typed SDK (grafana-foundation-sdk).

The SDK is generated from Grafana's own schema for the version docker-compose pins
(11.3); its builders give every panel, variable and option a type, so a misspelt
option is a type error rather than a setting Grafana ignores. The SDK has no type for
the PostgreSQL data source's query, so ``SqlTarget`` adds one (registered with the
SDK's runtime, which is how the SDK itself extends to data sources). SQL annotations
are the one place where Grafana stores a query the SDK's schema does not describe
(``AnnotationQuery.target`` is typed for the built-in annotations only — "TODO.. this
should just be a normal query target" in Grafana's schema); ``SqlAnnotationTarget``
carries it.

Titles are in Chinese and English ("中文 · English"): Grafana shows one title per
object. The SQL is in ``dashboards.queries``; ``python -m dashboards`` writes the JSON
that Grafana provisions from ``dashboards/provisioning``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards import queries as q

DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE_UID = "coldtrace-pg"
FOLDER_UID = "coldtrace"
FOLDER_TITLE = "ColdTrace"
DATASOURCE = model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
TAGS = ["coldtrace"]


class SqlTarget(cogvariants.Dataquery):
    """A PostgreSQL data source query in code mode: raw SQL and its result format."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", fmt: str = "table") -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = fmt

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it."""
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "editorMode": "code",
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "format": self.format,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SqlTarget:
        """A target read back from dashboard JSON."""
        return cls(str(data.get("refId", "A")), str(data["rawSql"]), str(data["format"]))


class SqlTargetBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a ``SqlTarget`` from a ``Query``."""

    def __init__(self, query: q.Query, ref_id: str = "A") -> None:
        self._internal = SqlTarget(ref_id, query.sql, query.format)

    def build(self) -> cogvariants.Dataquery:
        """The target."""
        return self._internal


class SqlAnnotationTarget(model.AnnotationTarget):
    """An annotation's SQL query (Grafana's SQL data sources read ``target.rawSql``)."""

    def __init__(self, query: q.Query) -> None:
        super().__init__()
        self.sql = SqlTarget("Anno", query.sql, "table")

    def to_json(self) -> dict[str, object]:
        """The annotation's target as Grafana stores it."""
        return self.sql.to_json()


def register() -> None:
    """Teach the SDK's runtime to read PostgreSQL targets back (``Dashboard.from_json``)."""
    cogruntime.Runtime().register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlTarget.from_json)
    )


def _grid(x: int, y: int, w: int, h: int) -> model.GridPos:
    return model.GridPos(x=x, y=y, w=w, h=h)


def _table(title: str, query: q.Query, pos: model.GridPos) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTargetBuilder(query))
        .grid_pos(pos)
    )


def _chart(title: str, pos: model.GridPos, *queries: q.Query) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).grid_pos(pos)
    for ref_id, query in zip("ABCDEF", queries, strict=False):
        panel = panel.with_target(SqlTargetBuilder(query, ref_id))
    return panel


def _stat(title: str, query: q.Query, pos: model.GridPos) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(SqlTargetBuilder(query))
        .grid_pos(pos)
        .reduce_options(db_reduce())
    )


def db_reduce() -> cogbuilder.Builder[common.ReduceDataOptions]:
    """Show the query's single row (all fields), not a reduction over time."""
    from grafana_foundation_sdk.builders import common as common_builders  # noqa: PLC0415

    return common_builders.ReduceDataOptions().values(True).calcs([]).fields("")


def _status_colours() -> list[model.ValueMapping]:
    results = {
        "ok": ("green", "正常 ok"),
        "pre-alarm": ("orange", "预警 pre-alarm"),
        "alarm": ("red", "报警 alarm"),
        "offline": ("purple", "离线 offline"),
    }
    options = {
        k: model.ValueMappingResult(color=c, text=t, index=i)
        for i, (k, (c, t)) in enumerate(results.items())
    }
    return [model.ValueMap(options=options)]


def _dashboard(uid: str, title: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .tags(TAGS)
        .editable()
        .timezone("browser")
        .refresh("1m")
        .time("now-24h", "now")
    )


def _annotation(name: str, query: q.Query, colour: str) -> db.AnnotationQuery:
    annotation = db.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True)
    annotation = annotation.icon_color(colour)
    annotation._internal.target = SqlAnnotationTarget(query)  # noqa: SLF001 - see SqlAnnotationTarget
    return annotation


def _variable(name: str, label: str, query: q.Query) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query.sql)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .include_all(False)
        .multi(False)
    )


def overview() -> db.Dashboard:
    """Each location against its own band; open alerts, offline, batteries, calibration."""
    current = (
        _table("各位置当前温度 · Current temperature by location", q.CURRENT, _grid(0, 0, 16, 10))
        .mappings(_status_colours())
        .override_by_name(
            "status",
            [
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                )
            ],
        )
    )
    return (
        _dashboard("coldtrace-overview", "冷链总览 · Cold-chain overview")
        .with_panel(current)
        .with_panel(_stat("未关闭报警 · Open alerts", q.OPEN_ALERTS, _grid(16, 0, 8, 5)))
        .with_panel(_stat("离线传感器 · Sensors offline", q.OFFLINE, _grid(16, 5, 8, 5)))
        .with_panel(_table("电量低 · Low batteries", q.LOW_BATTERY, _grid(0, 10, 12, 8)))
        .with_panel(
            _table(
                "30 天内到期校准 · Calibration due in 30 days",
                q.CALIBRATION_DUE,
                _grid(12, 10, 12, 8),
            )
        )
    )


def location() -> db.Dashboard:
    """One location's history with its band, events and alerts, MKT and time out of range."""
    history = _chart(
        "温度与报警带 · Temperature and alarm bands (°C)",
        _grid(0, 0, 24, 12),
        q.LOCATION_HISTORY,
        q.LOCATION_BAND,
    ).unit("celsius")
    return (
        _dashboard("coldtrace-location", "位置 · Location")
        .with_variable(_variable("location", "位置 · Location", q.LOCATIONS))
        .annotation(_annotation("门与电源 · Door and power", q.LOCATION_EVENTS, "blue"))
        .annotation(_annotation("报警 · Alerts", q.LOCATION_ALERTS, "red"))
        .with_panel(history)
        .with_panel(
            _stat(
                "MKT 与超范围时间 · MKT and time out of range",
                q.LOCATION_STATS,
                _grid(0, 12, 24, 5),
            )
        )
    )


def batch() -> db.Dashboard:
    """A lot's history as the release decision reads it, excursions, MKT, TOR, coverage, status."""
    return (
        _dashboard("coldtrace-batch", "批次 · Batch")
        .time("now-30d", "now")
        .with_variable(_variable("lot", "批号 · Lot", q.LOTS))
        .annotation(_annotation("温度偏差 · Excursions", q.BATCH_EXCURSIONS, "red"))
        .with_panel(
            _chart(
                "批次温度（含到达保持值） · Lot temperature, held value at arrival (°C)",
                _grid(0, 0, 24, 12),
                q.BATCH_HISTORY,
            ).unit("celsius")
        )
        .with_panel(
            _stat("全程统计 · Figures over the lot's life", q.BATCH_STATS, _grid(0, 12, 16, 6))
        )
        .with_panel(_table("放行状态 · Release status", q.BATCH_RELEASE, _grid(16, 12, 8, 6)))
        .with_panel(_table("温度偏差 · Excursions", q.BATCH_EXCURSIONS, _grid(0, 18, 24, 6)))
    )


def shipments() -> db.Dashboard:
    """Shipments in transit, their loggers' temperatures and alerts."""
    return (
        _dashboard("coldtrace-shipments", "运输 · Shipments")
        .time("now-2d", "now")
        .with_panel(_table("在途运输 · Shipments in transit", q.SHIPMENTS, _grid(0, 0, 24, 7)))
        .with_panel(
            _chart(
                "记录仪温度 · Logger temperatures (°C)",
                _grid(0, 7, 24, 10),
                q.SHIPMENT_TEMPERATURES,
            ).unit("celsius")
        )
        .with_panel(_table("运输报警 · Shipment alerts", q.SHIPMENT_ALERTS, _grid(0, 17, 24, 7)))
    )


def fleet() -> db.Dashboard:
    """Gateways and sensors last seen, outbox, clock skew, ingest, dead letters, notifications."""
    return (
        _dashboard("coldtrace-fleet", "设备健康 · Fleet health")
        .with_panel(_table("网关 · Gateways", q.GATEWAYS, _grid(0, 0, 24, 7)))
        .with_panel(
            _table(
                "数据源与本地报警输出 · Sources and local alarm outputs",
                q.SOURCES,
                _grid(0, 7, 12, 8),
            )
        )
        .with_panel(
            _table("传感器最后上报 · Sensors last seen", q.SENSORS_LAST_SEEN, _grid(12, 7, 12, 8))
        )
        .with_panel(
            _chart("入库速率 · Ingest rate (readings/s)", _grid(0, 15, 8, 8), q.INGEST_RATE)
        )
        .with_panel(
            _chart(
                "每小时死信 · Dead letters per hour", _grid(8, 15, 8, 8), q.DEAD_LETTERS
            ).interval("1h")
        )
        .with_panel(
            _chart(
                "通知失败 · Notification failures per hour", _grid(16, 15, 8, 8), q.NOTIFY_FAILURES
            ).interval("1h")
        )
    )


def all_dashboards() -> dict[str, model.Dashboard]:
    """Every dashboard by file name (without ``.json``)."""
    builders = {
        "overview": overview(),
        "location": location(),
        "batch": batch(),
        "shipments": shipments(),
        "fleet": fleet(),
    }
    return {name: b.build() for name, b in builders.items()}
