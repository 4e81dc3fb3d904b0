#!/usr/bin/env python3
"""A TCP proxy that adds a fixed delay to every request, for an object store seen from far
away (this kernel has no netem qdisc). The first bytes a client sends after the server's
last reply wait DELAY_MS before they are forwarded; the rest of a request (a PUT's body)
and every reply pass at once, so each request costs one extra DELAY_MS, like a round trip.

    latency_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT DELAY_MS
Prints "ready" on stdout once it listens; runs until killed.
"""
import asyncio
import sys


async def pipe(reader, writer, before_forward):
    """Copies reader to writer, awaiting before_forward() before each piece."""
    try:
        while data := await reader.read(1 << 16):
            await before_forward()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    port, target, delay_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    host, tport = target.rsplit(":", 1)

    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, int(tport))
        except OSError:
            client_w.close()
            return
        state = {"idle": True}

        async def request_piece():  # the first piece of a request waits
            if state["idle"]:
                state["idle"] = False
                await asyncio.sleep(delay_ms / 1000)

        async def reply_piece():  # a reply ends the request
            state["idle"] = True

        await asyncio.gather(pipe(client_r, server_w, request_piece), pipe(server_r, client_w, reply_piece))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
