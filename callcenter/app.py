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

from kiosk.views import DeviceLink, mount_pages
from queue_engine import Bus, Clock, QueueError, ReaderRunner, SystemClock, open_store
from sms.dispatcher import Dispatcher
from sms.notifier import SmsNotifier
from sms.providers import make_provider
from sms.views import Wiring, forbidden_handler, webhook_router

from .api import router as api_router
from .deps import AppContext
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
    wiring = Wiring(clock=ctx.clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.store_url)
        store.add_migrations("sms")
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
            ctx.dispatcher = dispatcher
            tasks = [
                asyncio.create_task(runtime.runner.run(), name=f"screens-{settings.hall.code}"),
                asyncio.create_task(runtime.run_ticker(), name=f"ticker-{settings.hall.code}"),
                asyncio.create_task(sms_runner.run(), name="sms-notifier"),
                asyncio.create_task(dispatcher.run(), name="sms-dispatcher"),
            ]
            ctx.ready = True
            try:
                yield
            finally:
                ctx.ready = False
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await provider.close()

    app = FastAPI(
        title="96166 service hall queue and hotline",
        summary="政务服务中心排队叫号与96166热线 — tickets, virtual work numbers, live screens",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(api_router)
    app.include_router(records_router)
    app.include_router(webhook_router(sms, wiring))
    app.add_exception_handler(*forbidden_handler())
    _health(app, ctx)
    _errors(app)
    demo = bool(settings.raw.get("demo", {}).get("show_device_tokens", False))
    links = [
        DeviceLink(d.id, d.kind, d.window, d.token if demo else None)
        for d in ctx.authority.devices.values()
    ]
    mount_pages(app, settings.hall, links)
    return app


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
