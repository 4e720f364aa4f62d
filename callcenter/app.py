"""The FastAPI application: its lifespan runs the store, the bus, each hall's readers and ticker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosk.devices import MqttConfig
from kiosk.feed import RAW_SEND
from kiosk.views import DeviceLink, mount_pages
from queue_engine import Bus, Clock, QueueError, ReaderRunner, Store, SystemClock, open_store
from sms.dispatcher import Dispatcher
from sms.notifier import SmsNotifier
from sms.providers import make_provider
from sms.views import Wiring, forbidden_handler, webhook_router

from .api import router as api_router
from .deps import AppContext
from .desk_fastpath import DeskFastPath
from .hotline.api import router as hotline_api_router
from .hotline.config import hotline_config
from .hotline.connector import Connector
from .hotline.fastpath import VoiceFastPath
from .hotline.views import Hotline, hotline_router
from .mqtt_settings import mqtt_config
from .records_api import router as records_router
from .runtime import HallRuntime
from .security import authority_from, id_secret
from .settings import Settings
from .sms_settings import sms_config

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, clock: Clock | None = None, tick_s: float = 1.0) -> FastAPI:
    """The whole process as one ASGI app for ``settings``."""
    ctx = AppContext(
        settings=settings, clock=clock or SystemClock(), authority=authority_from(settings)
    )

    sms = sms_config(settings)
    ctx.sms = sms
    mqtt = mqtt_config(settings)  # None: no [mqtt] table, no bridge
    wiring = Wiring(clock=ctx.clock)
    voice = hotline_config(settings, sms.twilio)  # None: no [hotline] table, no voice webhooks
    hotline = Hotline(voice) if voice is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.store_url)
        store.add_migrations("sms")
        store.add_migrations("callcenter.hotline")
        async with store:
            bus = Bus()
            store.add_commit_listener(bus.publish)
            runtime = await HallRuntime.start(
                store, bus, settings.hall, ctx.clock, id_secret(settings)
            )
            runtime.tick_s = tick_s
            ctx.halls[settings.hall.code] = runtime
            provider = make_provider(sms)
            dispatcher = Dispatcher(store, provider, sms, ctx.clock)
            notifier = SmsNotifier(sms, {settings.hall.code: settings.hall}, dispatcher.wake)
            sms_runner = ReaderRunner(store, bus, notifier)
            code = settings.hall.code
            wiring.store, wiring.engines = store, {code: runtime.engine}
            wiring.ratings, wiring.cases = {code: runtime.ratings}, {code: runtime.cases}
            wiring.appointments = {code: runtime.appointments}
            wiring.work_orders = {code: runtime.work_orders}
            ctx.dispatcher = dispatcher
            tasks = [
                asyncio.create_task(runtime.runner.run(), name=f"screens-{settings.hall.code}"),
                asyncio.create_task(runtime.run_ticker(), name=f"ticker-{settings.hall.code}"),
                asyncio.create_task(sms_runner.run(), name="sms-notifier"),
                asyncio.create_task(dispatcher.run(), name="sms-dispatcher"),
            ]
            if mqtt is not None:
                tasks.append(_mqtt_bridge(mqtt, bus, runtime))
            connector = None
            if hotline is not None:
                hotline.runtime = runtime
                connector = _connector(hotline, store, bus, tasks)
            ctx.ready = True
            try:
                yield
            finally:
                ctx.ready = False
                runtime.hub.close()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await provider.close()
                if connector is not None:
                    await connector.close()

    app = FastAPI(
        title="96166 service hall queue and hotline",
        summary="政务服务中心排队叫号与96166热线 — tickets, virtual work numbers, live screens",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    # Routes are matched in order, a few microseconds each: health checks and the API,
    # whose workstation actions come first in it, lead. The desk actions and the hold
    # loop's signed webhooks skip FastAPI's routing altogether (their routes stay for the
    # OpenAPI document and whatever the lean paths leave to them); the desk actions' door
    # is added last, so it is the outer one: most requests are theirs.
    _health(app, ctx)
    app.include_router(api_router)
    if hotline is not None:
        app.include_router(hotline_router(hotline))
        app.add_middleware(VoiceFastPath, hotline=hotline)
    app.add_middleware(DeskFastPath)
    app.include_router(webhook_router(sms, wiring))
    app.include_router(records_router)
    app.include_router(hotline_api_router)
    app.add_exception_handler(*forbidden_handler())
    _errors(app)
    demo = bool(settings.raw.get("demo", {}).get("show_device_tokens", False))
    links = [
        DeviceLink(d.id, d.kind, d.window, d.token if demo else None)
        for d in ctx.authority.devices.values()
    ]
    mount_pages(app, settings.hall, links)
    _expose_raw_send(app)
    return app


def end_streams(app: FastAPI) -> None:
    """End every live feed stream (the server is stopping)."""
    for runtime in app.state.ctx.halls.values():
        runtime.hub.close()


def _expose_raw_send(app: FastAPI) -> None:
    """Hand the live feed the server's own ``send``, outside every middleware wrapper.

    The feed writes each batch to 200 screens; through the middlewares' ``send`` wrappers
    that was most of its cost. Nothing else uses it.
    """
    build = app.build_middleware_stack

    def build_with_edge() -> Any:
        inner = build()

        async def edge(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/feed"):
                scope[RAW_SEND] = send
            await inner(scope, receive, send)

        return edge

    app.build_middleware_stack = build_with_edge  # type: ignore[method-assign]


def _connector(
    hotline: Hotline, store: Store, bus: Bus, tasks: list[asyncio.Task[None]]
) -> Connector | None:
    """The hotline's REST side (put callers through, dial call-backs, reconcile), when it can talk
    to the provider; without credentials the voice webhooks answer 403 and nothing is dialled."""
    if hotline.config.twilio is None:
        log.warning(
            "[hotline] has no Twilio credentials ([sms.twilio]): no calls can be put through"
        )
        return None
    connector = Connector(hotline)
    runner = ReaderRunner(store, bus, connector)
    tasks.append(asyncio.create_task(runner.run(), name="hotline-connector"))
    tasks.append(asyncio.create_task(connector.run_reconciler(), name="hotline-reconciler"))
    tasks.append(asyncio.create_task(connector.run_callbacks(), name="hotline-callbacks"))
    return connector


def _mqtt_bridge(config: MqttConfig, bus: Bus, runtime: HallRuntime) -> asyncio.Task[None]:
    """The hall's MQTT bridge as one named task; aiomqtt is imported only when configured."""
    from kiosk.mqtt_bridge import MqttBridge

    engine = runtime.engine
    bridge = MqttBridge(config, engine.store, bus, engine, runtime.view, runtime.ratings)
    return asyncio.create_task(bridge.run(), name=f"mqtt-{engine.hall.code}")


def _health(app: FastAPI, ctx: AppContext) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """The store is open and every hall is running."""
        if not ctx.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        for runtime in ctx.halls.values():
            await runtime.engine.store.run(lambda tx: tx.last_event_id())
        return JSONResponse({"status": "ready", "halls": sorted(ctx.halls)})


def error_body(code: str, zh: str, en: str, details: Any = None) -> dict[str, Any]:
    """The one shape of every error response."""
    return {"error": {"code": code, "message_zh": zh, "message_en": en, "details": details}}


def _errors(app: FastAPI) -> None:
    @app.exception_handler(QueueError)
    async def queue_error(request: Request, exc: QueueError) -> JSONResponse:
        details = {k: v for k, v in exc.details.items() if not k.endswith("_zh")}
        body = error_body(exc.code, exc.message_zh, exc.message_en, details or None)
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()
        ]
        en = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
        return JSONResponse(
            error_body("invalid_request", "请求参数无效", en, problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        zh = {404: "未找到", 405: "不支持该请求方法"}.get(exc.status_code, "请求错误")
        body = error_body(f"http_{exc.status_code}", zh, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
