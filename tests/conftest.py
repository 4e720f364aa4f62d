"""Fixtures shared by the whole suite: a small hall, a fake clock, a store on every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import pytest

from queue_engine import Bus, Engine, FakeClock, Store, open_store
from queue_engine.model import (
    Channel,
    Department,
    HallConfig,
    Policy,
    PriorityClass,
    SeatKind,
    Service,
    Staff,
    Window,
)

IN_CI = os.environ.get("CI") == "true"


def make_hall(policy: Policy | None = None, code: str = "test") -> HallConfig:
    """A small hall with three window services, one hotline service, windows and staff."""
    return HallConfig(
        code=code,
        name_zh="测试大厅",
        name_en="Test hall",
        timezone="Asia/Shanghai",
        departments=(Department("amr", "市场监管", "Market regulation"),
                     Department("hrss", "人社", "Social insurance"),
                     Department("hot", "热线", "Hotline")),
        services=(
            Service("biz", "营业执照", "Business licence", "amr", "A", 20, 15),
            Service("pension", "养老保险", "Pension", "hrss", "B", 15, 10),
            Service("medical", "医保", "Medical insurance", "hrss", "C", 10, 8),
            Service("consult", "热线咨询", "Hotline enquiry", "hot", "H", 1, 5, Channel.PHONE),
        ),
        priority_classes=(
            PriorityClass("normal", "普通", "Normal", 1.0),
            PriorityClass("appointment", "预约", "Appointment", 1.5, "Y"),
            PriorityClass("green", "绿色通道", "Green channel", 2.5, "G"),
        ),
        windows=(*(Window(str(n)) for n in range(1, 7)),
                 *(Window(f"H0{n}", SeatKind.HOTLINE) for n in range(1, 4))),
        staff=(
            Staff("W0001", "张伟", {"biz": 2, "pension": 1}),
            Staff("W0002", "王芳", {"pension": 1, "medical": 1}),
            Staff("W0003", "李娜", {"medical": 1}),
            Staff("W0004", "刘洋", {"biz": 1, "pension": 1, "medical": 1}),
            Staff("W0101", "陈静", {"consult": 1}),
            Staff("W0102", "杨磊", {"consult": 2}),
            Staff("W0103", "赵敏", {"consult": 1}),
        ),
        policy=policy or Policy(),
    )  # fmt: skip


@pytest.fixture
def hall() -> HallConfig:
    return make_hall()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_780_020_000.0)  # Friday 2026-05-29, 10:00 in Shanghai


def _sqlite(tmp_path) -> Store:  # type: ignore[no-untyped-def]
    return open_store(f"sqlite:///{tmp_path}/queue.db")


BACKENDS: dict[str, Callable] = {"sqlite": _sqlite}


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite")])
def store_factory(request, tmp_path) -> Callable[[], Store]:  # type: ignore[no-untyped-def]
    """Makes (unopened) stores on one database of the parametrised backend."""
    return lambda: BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(store_factory) -> AsyncIterator[Store]:  # type: ignore[no-untyped-def]
    s = store_factory()
    async with s:
        yield s


@pytest.fixture
def bus(store: Store) -> Bus:
    b = Bus()
    store.add_commit_listener(b.publish)
    return b


@pytest.fixture
async def engine(store: Store, hall: HallConfig, clock: FakeClock, bus: Bus) -> Engine:
    e = Engine(store, hall, clock)
    await e.load_hall()
    return e
