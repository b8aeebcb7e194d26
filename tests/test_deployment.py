"""docker-compose.yml and the Dockerfile: no Docker engine runs here, so check what can be checked."""

from __future__ import annotations

from pathlib import Path

import yaml

from stackwatch.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict[str, object]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_kafka_in_kraft_mode_and_every_role() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert set(services) == {"kafka", "ingest", "worker", "sink"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "healthcheck" in kafka
    for role in ("ingest", "worker", "sink"):
        service = services[role]
        assert service["command"][0] == role
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert service["environment"]["STACKWATCH__KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["environment"]["STACKWATCH_CONFIG"] == "/etc/stackwatch/stackwatch.yaml"
        assert "STACKWATCH_OPS_SECRET" in service["environment"]
        assert service["restart"] == "unless-stopped"


def test_the_mounted_config_is_valid_and_points_at_kafka() -> None:
    settings = load_settings(REPO / "deploy" / "stackwatch.yaml", environ={"STACKWATCH_OPS_SECRET": "whsec_eA=="})
    assert settings.kafka.bootstrap_servers == ["kafka:9092"]
    assert str(settings.storage.path).startswith("/data/")


def test_the_dockerfile_installs_cpu_torch_before_the_package_and_runs_stackwatch() -> None:
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==2.13.0" in line)
    package = next(i for i, line in enumerate(lines) if line.strip() == "RUN pip install .")
    assert torch < package
    assert "/cpu" in lines[torch]
    assert any(line.startswith("ENTRYPOINT") and "stackwatch" in line for line in lines)
