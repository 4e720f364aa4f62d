"""The whole process with ``[mqtt]`` configured: the lifespan runs the bridge, device-sim drives it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callcenter import cli
from callcenter.app import create_app
from callcenter.settings import load_settings
from kiosk.devices import Topics
from queue_engine import FakeClock, TicketState

from .conftest import Listener

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]
START = 1_780_020_000.0  # Friday 2026-05-29, 10:00 in Shanghai


def write_config(tmp_path: Path, host: str, port: int, prefix: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8")
        + f'\n[mqtt]\nhost = "{host}"\nport = {port}\nprefix = "{prefix}"\n'
        f'client_id = "app-{prefix}"\nreconnect_min_s = 0.05\nreconnect_max_s = 0.3\n'
        '[[mqtt.devices]]\nid = "caller-12"\nwindow = "12"\n'
        '[[mqtt.devices]]\nid = "pad-12"\nwindow = "12"\nkind = "ratingpad"\n',
        encoding="utf-8",
    )
    return path


async def test_the_lifespan_runs_the_bridge_and_device_sim_calls_through_it(
    tmp_path: Path, broker: tuple[str, int], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = broker
    monkeypatch.setenv("CALLCENTER_SECRET", "test-secret")
    path = write_config(tmp_path, host, port, prefix)
    settings = load_settings(path, env={"CALLCENTER_STORE_URL": f"sqlite:///{tmp_path}/app.db"})
    app = create_app(settings, clock=FakeClock(START), tick_s=3600)
    topics = Topics(prefix, settings.hall.code)
    async with app.router.lifespan_context(app):
        assert any(t.get_name() == "mqtt-wuhou" for t in asyncio.all_tasks())
        engine = app.state.ctx.halls["wuhou"].engine
        async with Listener(host, port, [topics.window("12"), topics.events]) as led:
            await led.wait_for(lambda: bool(led.payloads(topics.window("12"))))
            await engine.sign_in("W0012", "12")
            issued = await engine.take_ticket("business_licence")
            argv = ["device-sim", "--config", str(path), "--window", "12", "--send", "call_next"]
            assert await asyncio.to_thread(cli.main, argv) == 0
            ws, ticket = await engine.desk("W0012")
            assert ticket is not None and ticket.id == issued.ticket.id
            assert ticket.state == TicketState.CALLED
            await led.wait_for(
                lambda: led.payloads(topics.window("12"))[-1].get("number") == ticket.number
            )
            types = [p["type"] for p in led.payloads(topics.events)]
            assert types == ["workstation.signed_in", "ticket.issued", "ticket.called"]
    assert not any(t.get_name() == "mqtt-wuhou" for t in asyncio.all_tasks())


def test_device_sim_says_when_mqtt_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["device-sim", "--config", str(ROOT / "config.toml"), "--window", "12"]) == 2
    assert "no mqtt table" in capsys.readouterr().out
