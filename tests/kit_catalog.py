"""The catalog the testing-kit tests share (tests/test_testing_*.py)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import instrument
from instrument import (
    EventName,
    Identify,
    Track,
    analytics_scope,
    field,
)


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"
    CLUSTER_PROVISIONING_STARTED = "Cluster Provisioning Started"
    CLUSTER_PROVISIONING_ERROR = "Cluster Provisioning Error"
    PROJECT_CREATED = "Project Created"
    ITEMS_EXPORTED = "Items Exported"
    REPORT_SAVED = "Report Saved"


class Kind(enum.Enum):
    EKS = "eks"
    GKE = "gke"


class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    infra_id: int
    cluster_type: str


class ClusterProvisioningStarted(Track, event=Events.CLUSTER_PROVISIONING_STARTED, scope="project"):
    infra_id: int


class ClusterProvisioningError(Track, event=Events.CLUSTER_PROVISIONING_ERROR, scope="cluster"):
    error: str


class ProjectCreated(Track, event=Events.PROJECT_CREATED, scope="project"):
    name: str
    kind: Kind = Kind.EKS
    request_id: uuid.UUID = field(default=uuid.UUID(int=7), key="rid")
    at: dt.datetime = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    public: bool = False


class ItemsExported(Track, event=Events.ITEMS_EXPORTED):
    count: int
    exact: bool = False


class ReportSaved(Track, event=Events.REPORT_SAVED):
    values: list[float]
    extra: list[object] = field(default_factory=list)
    anything: Any = None


class UserTraits(Identify):
    email: str
    github: bool = field(default=False, key="gh")


CLUSTER = {"user_id": 1, "project_id": 2, "cluster_id": 3}


def emit_cluster_success(infra_id: int = 4, cluster_type: str = "eks") -> None:
    with analytics_scope(**CLUSTER):
        instrument.track(ClusterProvisioningSuccess(infra_id=infra_id, cluster_type=cluster_type))


# -- the captured payload -------------------------------------------------------------------------
