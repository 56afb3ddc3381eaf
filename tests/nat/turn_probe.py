"""When does coturn check a TURN REST credential's expiry? Run in the client namespace::

    python tests/nat/turn_probe.py TURN_HOST SECRET

Allocates with a credential that expires in 3 s, waits until it has expired, then sends a Refresh
and a CreatePermission on the same allocation. Prints JSON: whether each succeeded (and the STUN
error code if not). Uses aioice's TURN client directly (its inner protocol is a private attribute).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any

from aioice import stun, turn

TURN_PORT = 3478
VALID_FOR_S = 3
PEER = ("198.51.100.20", 5000)  # an allowed (public) peer address in the topology


class _Sink(asyncio.DatagramProtocol):
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pass


async def _try(protocol: Any, method: stun.Method, **attributes: Any) -> str:
    request = stun.Message(message_method=method, message_class=stun.Class.REQUEST)
    request.attributes.update(attributes)
    try:
        async with asyncio.timeout(10):
            await protocol.request_with_retry(request)
    except stun.TransactionFailed as exc:
        return f"error {exc.response.attributes.get('ERROR-CODE')}"
    except Exception as exc:
        return f"failed {exc!r}"
    return "ok"


async def main() -> dict[str, Any]:
    host, secret = sys.argv[1], sys.argv[2]
    expiry = int(time.time()) + VALID_FOR_S
    username = f"{expiry}:probe"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    transport, _ = await turn.create_turn_endpoint(_Sink, server_addr=(host, TURN_PORT), username=username,
                                                   password=password)
    try:
        protocol = transport._TurnTransport__inner_protocol  # type: ignore[attr-defined]
        await asyncio.sleep(expiry + 2 - time.time())
        return {
            "expired": time.time() > expiry,
            "refresh": await _try(protocol, stun.Method.REFRESH, LIFETIME=600),
            "permission": await _try(protocol, stun.Method.CREATE_PERMISSION, **{"XOR-PEER-ADDRESS": PEER}),
        }
    finally:
        transport.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
