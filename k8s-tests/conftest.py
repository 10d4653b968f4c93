"""The ``deployment`` fixture: sluice on a kind cluster (``SLUICE_E2E=kind``) or as local processes.

- ``local`` (the default, what ``make test`` runs): processes and a RabbitMQ 4.x container this
  suite starts and removes; a fresh deployment per scenario.
- ``kind`` (``make e2e``, or ``SLUICE_E2E=kind pytest k8s-tests``): the chart installed in a kind
  cluster, shared by every scenario of one test run. Without ``SLUICE_E2E=kind`` or without a
  reachable cluster every kind scenario skips, saying how to run it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sluice_e2e.deployment import Deployment, NotApplicable
from sluice_e2e.local import LocalDeployment
from sluice_testing.broker import Broker, owned_broker

if TYPE_CHECKING:
    from sluice_e2e.kind import KindDeployment

#: How to run the scenarios on kind, for skip messages.
HOW_TO_RUN_KIND = "run `make kind-e2e` (docs/e2e.md), or SLUICE_E2E=kind pytest k8s-tests on a kind context"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "uninstall: ends the shared deployment, so it runs after every other scenario")
    config.addinivalue_line("markers", "operations(*names): Deployment methods the scenario cannot do without")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every scenario needs a broker: let `-m "not integration"` leave them out like other broker tests.
    for item in items:
        if "/scenarios/" in str(item.path):
            item.add_marker(pytest.mark.integration)
        if _on_kind(item):
            _time_the_test_alone(item)
    # sort() is stable: everything else keeps its order.
    items.sort(key=lambda item: item.get_closest_marker("uninstall") is not None)


def _on_kind(item: pytest.Item) -> bool:
    params = getattr(item, "callspec", None)
    return params is not None and "kind" in (params.params.get("deployment"), params.params.get("broker_cluster_release"))


def _time_the_test_alone(item: pytest.Item) -> None:
    """pytest-timeout's limit (the scenario's own ``timeout`` marker, or the ini's) counts the test alone.

    The shared kind deployment is installed by the first scenario's fixtures, and on a fresh cluster
    that can take longer than the limit; charged to that scenario, it would fail every one. The install
    has deadlines of its own (helm's ``--timeout``, :data:`~sluice_e2e.kind.POD_DEADLINE`).
    """
    marker = item.get_closest_marker("timeout")
    seconds = (marker.kwargs.get("timeout", marker.args[0] if marker.args else None)) if marker else None
    item.add_marker(pytest.mark.timeout(seconds, func_only=True), append=False)


def _requested() -> str:
    target = os.environ.get("SLUICE_E2E", "local")
    if target not in ("local", "kind"):
        raise pytest.UsageError(f"SLUICE_E2E must be 'local' or 'kind', not {target!r}")
    return target


@pytest.fixture(scope="session")
def e2e_broker() -> Iterator[Broker]:
    """A RabbitMQ 4.x container of the suite's own, which scenarios may restart; removed afterwards."""
    with owned_broker("e2e") as broker:
        yield broker


@pytest.fixture(scope="session")
def kind_deployment() -> Iterator[Deployment]:
    """The chart on the suite's kind cluster, installed once per test run."""
    from sluice_e2e.kind import KindDeployment
    from sluice_e2e.kind_settings import KindUnavailable

    try:
        deployment = KindDeployment.from_env().install()
    except KindUnavailable as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no kind cluster for the e2e suite ({e}); {HOW_TO_RUN_KIND}")
    yield deployment
    deployment.close()


@pytest.fixture(params=["local", "kind"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """Each scenario runs once per deployment, in a clean state (healthy sink, empty dead-letter queue).

    ``SLUICE_E2E`` (``local`` by default, or ``kind``) chooses which one runs; the other skips.
    """
    if request.param != _requested():
        if request.param == "kind":
            pytest.skip(f"the kind e2e suite runs only when requested: {HOW_TO_RUN_KIND}")
        pytest.skip("SLUICE_E2E=kind: the scenarios run on the kind cluster only")
    if request.param == "kind":
        shared: Deployment = request.getfixturevalue("kind_deployment")
        shared.reset()
        yield shared
        if getattr(request.node, "rep_call_failed", False):
            print(shared.logs())
        return
    _skip_unless_implemented(LocalDeployment, request.node.get_closest_marker("operations"))
    local = LocalDeployment(request.getfixturevalue("e2e_broker"))
    try:
        local.start()
        yield local
    finally:
        if getattr(request.node, "rep_call_failed", False):
            print(local.logs())
        local.close()


@pytest.fixture(scope="module", params=["local", "kind"])
def broker_cluster_release(request: pytest.FixtureRequest) -> Iterator[KindDeployment]:
    """The chart with a RabbitMQ cluster of 3 nodes (``values-broker-cluster.yaml``), in a namespace of
    its own, installed for the scenarios of one module and removed afterwards. Kind only: the local
    deployment runs one broker container."""
    if request.param != _requested():
        if request.param == "kind":
            pytest.skip(f"the kind e2e suite runs only when requested: {HOW_TO_RUN_KIND}")
        pytest.skip("SLUICE_E2E=kind: the scenarios run on the kind cluster only")
    if request.param == "local":
        pytest.skip("not applicable to the local deployment: a 3-node RabbitMQ cluster is the chart's StatefulSet "
                    "with peer discovery, on kind")
    from sluice_e2e.kind import KindDeployment
    from sluice_e2e.kind_settings import KIND_DIR, KindSettings, KindUnavailable

    base = KindSettings.from_env()
    settings = dataclasses.replace(base, namespace=f"{base.namespace}-cluster",
                                   values_files=(*base.values_files, KIND_DIR / "values-broker-cluster.yaml"))
    try:
        deployment = KindDeployment(settings).install()
    except KindUnavailable as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no kind cluster for the e2e suite ({e}); {HOW_TO_RUN_KIND}")
    try:
        yield deployment
    finally:
        deployment.close()


@pytest.fixture
def broker_cluster(request: pytest.FixtureRequest, broker_cluster_release: KindDeployment) -> Iterator[KindDeployment]:
    """:func:`broker_cluster_release`, in a clean state for each scenario (healthy sink, empty dead-letter queue)."""
    broker_cluster_release.reset()
    yield broker_cluster_release
    if getattr(request.node, "rep_call_failed", False):
        print(broker_cluster_release.logs())


def _skip_unless_implemented(cls: type[Deployment], marker: pytest.Mark | None) -> None:
    """Skip before starting anything when ``cls`` keeps the base class's "not applicable" version of an operation."""
    for operation in marker.args if marker else ():
        if getattr(cls, operation) is getattr(Deployment, operation):
            try:
                getattr(Deployment, operation)(cls.__new__(cls))
            except NotApplicable as e:
                pytest.skip(str(e))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call" and getattr(report, "failed", False):
        item.rep_call_failed = True  # type: ignore[attr-defined]
    return report

