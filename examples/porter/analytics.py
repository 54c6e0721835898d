"""The example's event catalog, scopes, tracks and traits: Porter's 47 events, typed.

What took Porter ~1,100 lines of options structs and constructors is one class per event here,
and only the events the example sends need one.
"""

from __future__ import annotations

from dataclasses import InitVar
from typing import Literal

import instrument


# Porter sends project_id as "proj_id": its wire format is declared once, here, for every client,
# capture and console. legacy(...) keeps a name Porter already sends although it breaks the convention.
class Events(instrument.EventName, wire_keys={"project_id": "proj_id"}):
    """Porter's catalog, by noun."""

    NEW_USER = "New User"
    USER_VERIFIED_EMAIL = "User Verified Email"

    NEW_PROJECT = instrument.legacy("New Project Event")
    PROJECT_CONNECTED_TO_SANDBOX = instrument.legacy("Project Connected to Sandbox")
    PROJECT_DELETED = "Project Deleted"

    CLUSTER_DELETED = "Cluster Deleted"
    CLUSTER_PROVISIONING_STARTED = "Cluster Provisioning Started"
    CLUSTER_PROVISIONING_ERROR = "Cluster Provisioning Error"
    CLUSTER_PROVISIONING_SUCCESS = "Cluster Provisioning Success"
    CLUSTER_CONNECTION_STARTED = "Cluster Connection Started"
    CLUSTER_CONNECTION_SUCCESS = "Cluster Connection Success"
    CLUSTER_DESTROYING_START = "Cluster Destroying Start"
    CLUSTER_DESTROYING_SUCCESS = "Cluster Destroying Success"
    CLUSTER_PREFLIGHT_CHECKS_FAILED = "Cluster Preflight Checks Failed"
    CLUSTER_UPDATE_FAILED = "Cluster Update Failed"

    REGISTRY_PROVISIONING_STARTED = "Registry Provisioning Started"
    REGISTRY_PROVISIONING_ERROR = "Registry Provisioning Error"
    REGISTRY_PROVISIONING_SUCCESS = "Registry Provisioning Success"
    REGISTRY_CONNECTION_STARTED = "Registry Connection Started"
    REGISTRY_CONNECTION_SUCCESS = "Registry Connection Success"

    GITHUB_CONNECTION_STARTED = "Github Connection Started"
    GITHUB_CONNECTION_SUCCESS = "Github Connection Success"

    COST_CONSENT_OPENED = "Cost Consent Opened"
    COST_CONSENT_COMPLETE = "Cost Consent Complete"
    CREDENTIAL_STEP_COMPLETE = "Credential Step Complete"
    PRE_PROVISION_CHECK_STARTED = "Pre Provision Check Started"
    CLOUD_PROVIDER_PERMISSIONS_GRANTED = "Cloud Provider Permissions Granted"

    AWS_ACCOUNT_ID_INPUTTED = "AWS Account ID Inputted"
    AWS_CLOUDFORMATION_REDIRECT = "AWS Cloudformation Redirect"
    AWS_LOGIN_REDIRECT = "AWS Login Redirect"
    AWS_CREATE_INTEGRATION_SUCCESS = "AWS Create Integration Success"
    AWS_CREATE_INTEGRATION_FAILURE = "AWS Create Integration Failure"
    AWS_QUOTA_INCREASE_REQUESTED = "AWS Quota Increase Requested"

    PROVISIONING_ATTEMPTED = "Provisioning Attempted"
    PROVISIONING_FAILURE = "Provisioning Failure"

    APPLICATION_LAUNCH_STARTED = "Application Launch Started"
    APPLICATION_LAUNCH_SUCCESS = "Application Launch Success"
    TRIGGERED_REDEPLOY_VIA_WEBHOOK = instrument.legacy("Triggered Re-deploy via Webhook")

    STACK_LAUNCH_STARTED = "Stack Launch Started"
    STACK_LAUNCH_COMPLETE = "Stack Launch Complete"
    STACK_LAUNCH_SUCCESS = "Stack Launch Success"
    STACK_LAUNCH_FAILURE = "Stack Launch Failure"
    STACK_DELETION = "Stack Deletion"
    STACK_BUILD_PROGRESSING = "Stack Build Progressing"
    STACK_BUILD_FAILURE = "Stack Build Failure"
    STACK_BUILD_SUCCESS = "Stack Build Success"

    PORTER_APP_UPDATE_FAILURE = "Porter App Update Failure"


class NewProject(instrument.ProjectTrack, event=Events.NEW_PROJECT):
    """A project was created."""

    name: str


class ProjectDeleted(instrument.ProjectTrack, event=Events.PROJECT_DELETED):
    """A project was deleted."""


class _Provisioning(instrument.ProjectTrack):
    cluster_type: str
    infra_id: int


class ClusterProvisioningStarted(_Provisioning, event=Events.CLUSTER_PROVISIONING_STARTED):
    """Provisioning began; project-scoped because the cluster does not exist yet."""


class ClusterProvisioningSuccess(_Provisioning, instrument.ClusterTrack, event=Events.CLUSTER_PROVISIONING_SUCCESS):
    """A cluster finished provisioning."""


class ClusterProvisioningError(_Provisioning, event=Events.CLUSTER_PROVISIONING_ERROR):
    """Provisioning failed; ``error`` is the exception's type name."""

    error: str


class RegistryProvisioningSuccess(instrument.RegistryTrack, event=Events.REGISTRY_PROVISIONING_SUCCESS):
    """A registry finished provisioning."""

    registry_type: str
    infra_id: int


class ApplicationLaunchSuccess(instrument.ApplicationTrack, event=Events.APPLICATION_LAUNCH_SUCCESS):
    """An application was launched."""

    flow_id: str


class TriggeredRedeployViaWebhook(instrument.ApplicationTrack, event=Events.TRIGGERED_REDEPLOY_VIA_WEBHOOK):
    """A webhook re-deployed an application (a system event: user_id 0)."""

    image_uri: str


class StackBuildFailure(instrument.ProjectTrack, event=Events.STACK_BUILD_FAILURE):
    """A stack build failed.

    Porter copied email, name and company onto this event; here they are identify traits only, and
    the build log is cut to fit Segment's 32 KB limit instead of being silently dropped.
    """

    stack_name: str
    error_message: str
    validate_apply_v2: bool
    b64_build_logs: str = instrument.field(truncatable=True)


def _true_false(github_connected: bool) -> Literal["true", "false"]:
    return "true" if github_connected else "false"


class ProjectMembership(instrument.ProjectGroup):
    """The user belongs to the project: Segment's group call, whose groupId is the project's id."""

    role: Literal["admin", "developer", "viewer"]
    """The user's role in the project."""


class UserTraits(instrument.Identify):
    """Porter's identify: email, and github as the string "true"/"false" (its wire format)."""

    email: str
    github_connected: InitVar[bool]
    github: Literal["true", "false"] = instrument.derived(_true_false)
