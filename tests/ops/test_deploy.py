"""The deployment files cannot rot silently (issue 17): Ray's cluster launcher config
against Ray's own schema, the KubeRay manifests' structure and the fields Ray and
Kubernetes require, each node slot of ``ops/deploy/cluster.toml`` offered by exactly one
pod with its own persistent volume at the data path, the driver's command naming files
that exist, the metrics Service reachable by the ServiceMonitor, and the Kubernetes
Prometheus config checked by promtool."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from actors import placement
from exchange.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = ROOT / "ops" / "ray" / "cluster.yaml"
K8S = ROOT / "ops" / "k8s" / "exchange.yaml"
DEPLOY_CONFIG = ROOT / "ops" / "deploy" / "cluster.toml"


def manifests() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(K8S.read_text()) if doc]


def of_kind(kind: str) -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def test_the_cluster_launcher_config_passes_ray_s_own_schema():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    validate_config(prepare_config(config))                     # raises on a field Ray does not know
    broken = yaml.safe_load(CLUSTER_YAML.read_text())
    broken["head_start_ray_comands"] = []                       # a typo is refused, so the check can fail
    with pytest.raises(Exception):
        validate_config(prepare_config(broken))


def test_the_cluster_launcher_starts_every_node_with_its_slot_and_the_exchange_on_the_head():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("exchange-node-$(cat /etc/exchange/slot)" in c for c in config[key]), key
    up = next(c for c in config["head_start_ray_commands"] if "exchange up" in c)
    assert "--config /opt/exchange/ops/deploy/cluster.toml" in up and "--address auto" in up
    assert len(config["provider"]["worker_ips"]) + 1 == len(placement.slots(load_config(DEPLOY_CONFIG)))


def test_every_manifest_names_its_api_kind_and_name():
    docs = manifests()
    assert {d["kind"] for d in docs} == {"PersistentVolumeClaim", "RayCluster", "Service", "ServiceMonitor"}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"] and re.fullmatch(r"[a-z0-9-]+", doc["metadata"]["name"])


def test_the_ray_cluster_has_what_kuberay_requires():
    (cluster,) = of_kind("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__                               # the image's Ray is ours
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())   # KubeRay takes strings
        containers = group["template"]["spec"]["containers"]
        assert containers and all(c["name"] and c["image"] for c in containers)
        assert all(c["image"].endswith(":1") for c in containers)              # one image for every pod
    for worker in spec["workerGroupSpecs"]:
        assert worker["groupName"] and worker["replicas"] == worker["minReplicas"] == worker["maxReplicas"] == 1
    image = (ROOT / "ops" / "docker" / "Dockerfile").read_text()
    assert f"rayproject/ray:{ray.__version__}" in image


def test_each_node_slot_is_one_pod_with_its_own_volume_at_the_data_path():
    (cluster,) = of_kind("RayCluster")
    spec = cluster["spec"]
    claims = {c["metadata"]["name"] for c in of_kind("PersistentVolumeClaim")}
    offered = {}
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        resources = json.loads(json.loads(group["rayStartParams"]["resources"]))   # KubeRay's quoted JSON
        (slot_resource,) = [r for r in resources if r.startswith(placement.RESOURCE_PREFIX)]
        pod = group["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = [m for c in pod["containers"] for m in c["volumeMounts"] if m["mountPath"] == "/data"]
        assert mounts and {volumes[m["name"]]["persistentVolumeClaim"]["claimName"] for m in mounts} <= claims
        offered[slot_resource.removeprefix(placement.RESOURCE_PREFIX)] = \
            volumes[mounts[0]["name"]]["persistentVolumeClaim"]["claimName"]
    assert sorted(offered) == placement.slots(load_config(DEPLOY_CONFIG))       # every slot, once
    assert len(set(offered.values())) == len(offered) == len(claims)            # a volume each
    for claim in of_kind("PersistentVolumeClaim"):
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_driver_runs_the_deployment_config_on_the_data_volume():
    (cluster,) = of_kind("RayCluster")
    (driver,) = [c for c in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"] if c.get("args")]
    command = " ".join(driver["args"])
    config_path = re.search(r"--config (\S+)", command).group(1)
    assert config_path == "/opt/exchange/ops/deploy/cluster.toml" and DEPLOY_CONFIG.exists()
    assert "--data /data" in command and "--address 127.0.0.1:6379" in command
    assert {"/tmp/ray", "/data"} <= {m["mountPath"] for m in driver["volumeMounts"]}    # the head's session
    config = load_config(DEPLOY_CONFIG)
    assert config.sections["metrics"]["address"] == "0.0.0.0"                # reachable from Prometheus


def test_the_service_monitor_reaches_the_metrics_actor_s_port():
    (service,) = of_kind("Service")
    (monitor,) = of_kind("ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports["exchange-metrics"] == load_config(DEPLOY_CONFIG).sections["metrics"]["port"]
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= set(ports)
    (cluster,) = of_kind("RayCluster")
    head_labels = cluster["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= head_labels.items()        # slot a: where the metrics actor is
    assert placement.plan(load_config(DEPLOY_CONFIG))["metrics"] == "a"


def test_the_kubernetes_prometheus_config_passes_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (tests/ops/test_prometheus.py installs it)")
    shutil.copy(ROOT / "ops" / "k8s" / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(ROOT / "ops" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")   # mounted beside it
    done = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
