"""The example service: projects, clusters, registries and apps, instrumented with @tracks.

No function below builds a property dict or passes an id to analytics: ids come from the scope the
request entry point binds, and from arguments whose names match a track's fields.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass

from examples.porter.analytics import (
    ApplicationLaunchSuccess,
    ClusterProvisioningError,
    ClusterProvisioningStarted,
    ClusterProvisioningSuccess,
    Events,
    NewProject,
    ProjectMembership,
    RegistryProvisioningSuccess,
    StackBuildFailure,
    TriggeredRedeployViaWebhook,
    UserTraits,
)
from instrument import Call, analytics_scope, identify, track, tracks

_ids = itertools.count(1)


class ProvisioningFailed(Exception):
    """The (pretend) cloud provider refused to provision."""


@dataclass(frozen=True)
class Cluster:
    id: int
    kind: str
    infra_id: int


@dataclass(frozen=True)
class Request:
    """What a web framework would hand a handler: the authenticated user and the path's ids."""

    user_id: int
    project_id: int


class Users:
    """Sign-up and login: the only place personal data (email) is sent, as identify traits."""

    def login(self, email: str, github: bool) -> None:
        identify(UserTraits(email=email, github_connected=github))


class Projects:
    # The creator is the new project's admin: a typed Group ties the user to the project (sent after the track).
    @tracks(ProjectMembership, props=lambda call: {"project_id": call.result, "role": "admin"})
    @tracks(NewProject, props=lambda call: {"project_id": call.result})
    def create(self, name: str) -> int:
        return next(_ids)

    @tracks(Events.PROJECT_DELETED, scope="project")
    def delete(self) -> None:
        """Deleting the bound project; a bare event name is enough when there are no properties."""


def _infra_of(call: Call) -> dict[str, object]:
    # props also runs for the on_error track (call.exception set, no result): add nothing then.
    if call.exception is not None:
        return {}
    cluster: Cluster = call.result
    return {"cluster_id": cluster.id, "infra_id": cluster.infra_id}


class Clusters:
    @tracks(ClusterProvisioningStarted)
    def start_provisioning(self, cluster_type: str, infra_id: int) -> None:
        pass

    @tracks(
        ClusterProvisioningSuccess,
        props=_infra_of,
        on_error=ClusterProvisioningError,
    )
    def provision(self, cluster_type: str, infra_id: int) -> Cluster:
        self.start_provisioning(cluster_type, infra_id)
        if cluster_type == "unsupported":
            raise ProvisioningFailed(cluster_type)
        return Cluster(id=next(_ids), kind=cluster_type, infra_id=infra_id)


class Registries:
    @tracks(RegistryProvisioningSuccess)
    def provision(self, registry_id: int, registry_type: str, infra_id: int) -> None:
        pass


class Applications:
    @tracks(ApplicationLaunchSuccess)
    def launch(self, app_name: str, app_namespace: str, chart_name: str, flow_id: str) -> None:
        pass

    def redeploy_from_webhook(self, cluster_id: int, app_name: str, app_namespace: str, image_uri: str) -> None:
        # Webhooks have no user: Porter sends them as user "0".
        with analytics_scope(
            user_id=0, cluster_id=cluster_id, app_name=app_name, app_namespace=app_namespace, chart_name="web"
        ):
            track(TriggeredRedeployViaWebhook(image_uri=image_uri))


class Stacks:
    def build(self, stack_name: str, logs: bytes) -> None:
        track(
            StackBuildFailure(
                stack_name=stack_name,
                error_message="exit status 1",
                validate_apply_v2=True,
                b64_build_logs=base64.b64encode(logs).decode(),
            )
        )


def handle(request: Request, action: str) -> object:
    """The request-like entry point: bind the scope once, then call plain business code."""
    with analytics_scope(user_id=request.user_id, project_id=request.project_id):
        if action == "provision-cluster":
            return Clusters().provision("eks", infra_id=7)
        if action == "provision-unsupported":
            try:
                return Clusters().provision("unsupported", infra_id=8)
            except ProvisioningFailed as exc:
                return exc
        if action == "provision-registry":
            return Registries().provision(registry_id=5, registry_type="ecr", infra_id=9)
        if action == "launch-app":
            with analytics_scope(cluster_id=3):
                return Applications().launch("web", "default", "web", flow_id="flow-1")
        if action == "build-stack":
            Stacks().build("api", logs=b"step 1/9 ...\n" * 4000)
            return None
        if action == "delete-project":
            Projects().delete()
            return None
        raise ValueError(f"unknown action {action!r}")
