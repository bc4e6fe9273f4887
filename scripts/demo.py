#!/usr/bin/env python
"""Helpers for ``make demo``: an admin login, a client token, and the two servers.

    python scripts/demo.py admin                      # create/reset user "admin", print its new password
    python scripts/demo.py token --user 42            # print a JWT signed with $GATEWAY_JWT_SECRET
    python scripts/demo.py serve [-- --without shipping]

They live here rather than in the Makefile so each step stays readable and can be
run on its own. Everything printed is for a local demo; none of it is a real secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
TOKEN_FILE = VAR / "demo-token"


def create_admin(username: str) -> None:
    """Create the admin user, or reset its password: each demo run prints a fresh one."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    password = secrets.token_urlsafe(12)
    user, created = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    print(f"Admin ({'created' if created else 'password reset'}): user {username!r}, password {password!r}")


def jwt_settings(config: Path | None) -> dict[str, Any]:
    """The layer's JWT settings from a gateway.yaml, so the token passes its issuer/audience checks."""
    if config is None:
        return {}
    import yaml

    loaded = yaml.safe_load(config.read_text()) or {}
    settings: dict[str, Any] = ((loaded.get("layer") or {}).get("auth") or {}).get("jwt") or {}
    return settings


def mint_token(user: str, ttl_hours: float, config: Path | None) -> str:
    """An HS256 token for ``user``, signed with the secret the gateway reads from its env var."""
    import jwt

    settings = jwt_settings(config)
    secret_env = settings.get("secret_env", "GATEWAY_JWT_SECRET")
    secret = os.environ.get(secret_env)
    if not secret:
        raise SystemExit(f"demo: set {secret_env} to the secret the gateway verifies tokens with")
    now = int(time.time())
    claims: dict[str, Any] = {settings.get("user_claim", "sub"): user, "iat": now, "exp": now + int(ttl_hours * 3600)}
    if settings.get("issuer"):
        claims["iss"] = settings["issuer"]
    if settings.get("audience"):
        claims["aud"] = settings["audience"]
    return jwt.encode(claims, secret, algorithm="HS256")


def _wait_until_up(url: str, timeout_s: float, *procs: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve(port: int, simulator_args: list[str]) -> int:
    """Run the simulator and the gateway (the contract's gunicorn command) until Ctrl-C or either exits."""
    bin_dir = Path(sys.executable).parent
    simulator = subprocess.Popen([sys.executable, str(ROOT / "examples" / "simulator.py"), *simulator_args], cwd=ROOT)
    gateway = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(port)},
    )
    procs = [simulator, gateway]
    # Ctrl-C reaches the whole foreground group; SIGTERM (e.g. from a supervisor) only us.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        if _wait_until_up(f"http://127.0.0.1:{port}/healthz", 30, *procs):
            token = TOKEN_FILE.read_text().strip() if TOKEN_FILE.exists() else "$TOKEN"
            print(
                f"\nGateway ready on http://127.0.0.1:{port} (admin: /admin/). Try:\n"
                f"  curl -s -X POST http://127.0.0.1:{port}/v1/checkout/summary \\\n"
                f"    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
                '    -d \'{"cartId": "c-1001"}\'\nCtrl-C stops the gateway and the simulator.\n',
                flush=True,
            )
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("demo: a server exited; stopping the other", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("admin", help="create or reset the admin user and print its password")
    admin.add_argument("--username", default="admin")
    token = commands.add_parser("token", help="print a demo JWT (and keep it in var/demo-token)")
    token.add_argument("--user", default="42", help="the user id claim (default 42)")
    token.add_argument("--ttl-hours", type=float, default=24.0)
    token.add_argument("--config", type=Path, help="gateway.yaml whose layer.auth.jwt settings to follow")
    run = commands.add_parser("serve", help="run the simulator and gunicorn until Ctrl-C")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.add_argument("simulator_args", nargs="*", help="passed to examples/simulator.py (after --)")
    args = parser.parse_args(argv)

    if args.command == "admin":
        create_admin(args.username)
    elif args.command == "token":
        minted = mint_token(args.user, args.ttl_hours, args.config)
        VAR.mkdir(exist_ok=True)
        TOKEN_FILE.write_text(minted + "\n")
        print(f"Demo JWT for user {args.user} (also in {TOKEN_FILE.relative_to(ROOT)}):\n{minted}")
    else:
        return serve(args.port, args.simulator_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
