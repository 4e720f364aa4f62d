"""The ``callcenter`` command: serve the hall, hash a password, play a window's MQTT devices."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from . import device_sim
from .config_checks import ConfigError
from .settings import Settings, load_settings

console = Console()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="callcenter", description="96166 service hall queue")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web process with the hall from the config")
    serve.add_argument("--config", default="config.toml")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    hashp = sub.add_parser("hash-password", help="print an scrypt hash for [auth] in config.toml")
    hashp.add_argument("password", nargs="?", help="read from the terminal when omitted")
    sim = sub.add_parser("device-sim", help="play one window's LED display and caller over MQTT")
    device_sim.add_arguments(sim)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "device-sim":
            return device_sim.run(args, console)
        return _hash(args)
    except ConfigError as exc:
        console.print(f"[bold red]config error[/]: {exc}")
        return 2


def _hash(args: argparse.Namespace) -> int:
    from .auth import hash_password

    password = args.password or getpass.getpass("password: ")
    print(hash_password(password))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .server import serve

    settings = load_settings(args.config)
    host = args.host or settings.server_host
    port = args.port or settings.server_port
    app = create_app(settings)
    summary(settings, host, port)
    serve(app, host, port)
    return 0


def summary(settings: Settings, host: str, port: int) -> None:
    """Print the hall and the URLs of its pages."""
    hall = settings.hall
    base = f"http://{host}:{port}"
    windows = sum(1 for w in hall.windows if w.kind.value == "window")
    console.rule(f"[bold]{hall.name_zh} · {hall.name_en}")
    console.print(
        f"{len(hall.services)} services · {windows} windows · "
        f"{len(hall.windows) - windows} hotline seats · {len(hall.staff)} staff · "
        f"store {settings.store_url}"
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("page 页面")
    table.add_column("URL")
    for name, path in (
        ("front door 首页", "/"), ("staff console 窗口工作台", "/staff"),
        ("supervisor 值班长", "/supervisor"), ("API docs 接口文档", "/docs"),
        ("health 健康检查", "/healthz"),
    ):  # fmt: skip
        table.add_row(name, base + path)
    console.print(table)
    console.print("Kiosk, hall display and window screens are linked from the front door.")


if __name__ == "__main__":
    sys.exit(main())
