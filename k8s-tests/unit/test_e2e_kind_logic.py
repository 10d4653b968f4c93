"""The kind deployment's pure logic, without a cluster: settings, context guard, helm command line, leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice_e2e.kind_settings import (
    KIND_DIR,
    KindSettings,
    KindUnavailable,
    check_context,
    helm_install_args,
    leftovers,
)


def test_settings_come_from_the_environment_with_an_upgrade_tag_derived_from_the_image_tag():
    settings = KindSettings.from_env({"KIND_CLUSTER": "c1", "IMAGE_TAG": "abc", "SLUICE_E2E_KEEP": "1"})
    assert (settings.context, settings.image_tag, settings.upgrade_tag, settings.keep) == ("kind-c1", "abc", "abc-next", True)
    assert KindSettings.from_env({}).context == "kind-sluice-e2e"


@pytest.mark.parametrize("contexts", [[], ["kind-other"], ["prod-cluster", "sluice-e2e"]])
def test_a_kubeconfig_without_the_suites_kind_context_is_refused(contexts):
    with pytest.raises(KindUnavailable, match="kind-sluice-e2e"):
        check_context(contexts, KindSettings())


def test_the_suites_kind_context_is_accepted_among_others():
    check_context(["prod-cluster", "kind-sluice-e2e"], KindSettings())


def test_helm_installs_with_the_e2e_values_the_tag_and_waits():
    args = helm_install_args(KindSettings(helm="/bin/helm"), tag="v2", keda=False)
    assert args[:4] == ["/bin/helm", "upgrade", "--install", "sluice"]
    assert args[args.index("--kube-context") + 1] == "kind-sluice-e2e"
    assert "producer.image.tag=v2" in args and "consumer.image.tag=v2" in args
    assert "--wait" in args
    values = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--values"]
    assert values == [KIND_DIR / "values-e2e.yaml"]
    assert all(path.is_file() for path in values)


def test_keda_adds_its_values_file_last():
    args = helm_install_args(KindSettings(), tag="dev", keda=True)
    values = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--values"]
    assert values == [KIND_DIR / "values-e2e.yaml", KIND_DIR / "values-keda.yaml"]
    assert values[-1].is_file()


def test_the_cpu_hpa_adds_its_values_file_unless_keda_scales():
    def values(**flags: bool) -> list[Path]:
        args = helm_install_args(KindSettings(), tag="dev", **flags)
        return [Path(args[i + 1]) for i, a in enumerate(args) if a == "--values"]

    assert values(keda=False, cpu_hpa=True) == [KIND_DIR / "values-e2e.yaml", KIND_DIR / "values-hpa.yaml"]
    assert values(keda=True, cpu_hpa=True) == [KIND_DIR / "values-e2e.yaml", KIND_DIR / "values-keda.yaml"]
    assert (KIND_DIR / "values-hpa.yaml").is_file()


def test_monitoring_adds_its_values_file_after_the_autoscaler_s():
    args = helm_install_args(KindSettings(), tag="dev", keda=True, monitoring=True)
    values = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--values"]
    assert values == [KIND_DIR / "values-e2e.yaml", KIND_DIR / "values-keda.yaml", KIND_DIR / "values-monitoring.yaml"]
    assert values[-1].is_file()


def test_a_local_broker_image_replaces_the_official_one_and_is_never_pulled():
    settings = KindSettings.from_env({"SLUICE_E2E_BROKER_IMAGE": "sluice/rabbitmq-test:4.3.6"})
    args = helm_install_args(settings, tag="dev", keda=False)
    assert {"rabbitmq.image.repository=sluice/rabbitmq-test", "rabbitmq.image.tag=4.3.6",
            "rabbitmq.image.pullPolicy=Never"} <= set(args)
    assert not [a for a in helm_install_args(KindSettings(), tag="dev", keda=False) if a.startswith("rabbitmq.")]


@pytest.mark.parametrize("image", ["rabbitmq", "localhost:5000/rabbitmq", ":4.3.6"])
def test_a_broker_image_without_a_tag_is_refused(image):
    with pytest.raises(ValueError, match="SLUICE_E2E_BROKER_IMAGE must be repository:tag"):
        helm_install_args(KindSettings(broker_image=image), tag="dev", keda=False)


def test_leftovers_are_the_releases_objects_only():
    objects = [("PersistentVolumeClaim", "data-sluice-rabbitmq-0", {"app.kubernetes.io/instance": "sluice"}),
               ("Secret", "sluice-rabbitmq", {"app.kubernetes.io/instance": "sluice"}),
               ("Deployment", "e2e-sink", {"app.kubernetes.io/name": "e2e-sink"}),
               ("ConfigMap", "kube-root-ca.crt", {}),
               ("Secret", "other-rabbitmq", {"app.kubernetes.io/instance": "other"})]
    assert leftovers(objects, "sluice") == ["PersistentVolumeClaim/data-sluice-rabbitmq-0", "Secret/sluice-rabbitmq"]

