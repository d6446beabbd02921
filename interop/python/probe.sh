#!/usr/bin/env bash
# Re-checks whether the Python asyncio client (asyncio-nats-streaming 0.4.0 from PyPI) runs on
# this machine's python3; see README.md for the result on Python 3.11. Installs it into a venv
# outside the repo ($STAN_PY_VENV, default ~/.cache/stan-ts/py) and connects to nothing: both
# failures below happen before the client opens a socket. Exit 0 only if the client gets past
# them. Not run by CI (the Java client stands in).
set -euo pipefail
venv="${STAN_PY_VENV:-$HOME/.cache/stan-ts/py}"
python3 --version
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# protobuf 3.20.3: the package's generated protocol_pb2.py predates protobuf 4's descriptors
"$venv/bin/pip" install -q asyncio-nats-streaming==0.4.0 protobuf==3.20.3
"$venv/bin/pip" list 2>/dev/null | grep -Ei '^(asyncio-nats|protobuf)'
"$venv/bin/python" - <<'PY'
import asyncio, sys
from nats.aio.client import Client as NATS
from stan.aio.client import Client as STAN

async def main():
    try:
        await NATS().connect("nats://127.0.0.1:1", max_reconnect_attempts=0, connect_timeout=1)
    except TypeError as e:
        print(f"asyncio-nats-client connect(): TypeError: {e}")
        return 1
    except Exception:
        pass  # got past the asyncio API (no server is expected here)
    sc = STAN()
    sc._nc = NATS()
    sc._nc._loop = asyncio.get_running_loop()
    try:
        await sc.connect("test-cluster", "probe", nats=sc._nc)
    except TypeError as e:
        print(f"asyncio-nats-streaming connect(): TypeError: {e}")
        return 1
    except Exception:
        pass
    print("asyncio-nats-streaming got past the removed asyncio parameters")
    return 0

sys.exit(asyncio.run(main()))
PY
