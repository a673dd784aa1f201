"""The rules of the worker's day step, built from the settings: one place for the worker and its offline replay."""

from __future__ import annotations

from models.calibration import CalibrationRules
from models.stage_evidence import EvidenceRules
from models.stage_tracker import TrackerRules
from stream_app.core import inventory
from stream_app.settings import Settings
from stream_app.core.windows import WindowSpec


def window_spec(settings: Settings) -> WindowSpec:
    """The per-SKU window every state of the worker shares."""
    return WindowSpec(history_days=settings.history_days, dedup_ids=settings.dedup_ids_per_sku)


def tracker_rules(settings: Settings) -> TrackerRules:
    """The stage tracker's rules from the settings."""
    return TrackerRules(smoothing=settings.stage_smoothing, persist_days=settings.stage_persist_days,
                        threshold=settings.stage_threshold, backward_persist_days=settings.stage_backward_days,
                        min_dwell_days=settings.stage_dwell_days)


def evidence_rules(settings: Settings) -> EvidenceRules | None:
    """What a SKU's sales must show for a stage; None when the settings let the stage head decide alone."""
    return EvidenceRules(enter_z=settings.stage_evidence_z) if settings.stage_evidence else None


def stock_rules(settings: Settings) -> inventory.StockRules:
    """Lead time, service level and low-cover limit of alerts from the settings."""
    return inventory.StockRules(lead_days=settings.lead_time_days, service_level=settings.service_level,
                                low_cover_days=settings.low_cover_days)


def calibration_rules(settings: Settings) -> CalibrationRules:
    """The calibration's rules from the settings."""
    return CalibrationRules(coverage=settings.coverage_target, bias_fading=settings.bias_fading,
                            aci_step=settings.aci_step, drift_threshold=settings.drift_threshold)
