#!/usr/bin/env python3
# Endless downloads through a SOCKS5 proxy, each watched for how it ends, read with plain
# recv(2) so that what is reported is what the kernel says. The fault tests use it as the
# application because Node's own sockets cannot tell: libuv reports an end of data when
# epoll says POLLHUP after a partial read (uv__stream_io in deps/uv/src/unix/stream.c), so
# a TCP reset that arrives behind data not read yet reads as a clean end in a Node app
# (6 of 20 in a plain Node repro, 0 of 20 with recv(2)).
#
# usage: downloads.py SOCKS_HOST SOCKS_PORT BIND_ADDR TARGET_IP TARGET_PORT COUNT DEADLINE_S
# prints JSON lines: {"ready": true} once every download has received 256 KiB, then
# {"i": k, "end": "fin"|"reset", "bytes": n} as each ends; exits when all have ended or at
# the deadline ({"open": [...]} names those still open then).
import ipaddress
import json
import selectors
import socket
import struct
import sys
import time


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def socks5(proxy, bind, target):
    s = socket.create_connection(proxy, timeout=10, source_address=(bind, 0))
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise RuntimeError("SOCKS5: no-auth method refused")
    ip = ipaddress.ip_address(target[0])
    s.sendall(b"\x05\x01\x00\x01" + ip.packed + struct.pack(">H", target[1]))
    reply = b""
    while len(reply) < 10:
        part = s.recv(10 - len(reply))
        if not part:
            raise RuntimeError("SOCKS5: closed during the reply")
        reply += part
    if reply[1] != 0:
        raise RuntimeError(f"SOCKS5: reply code {reply[1]}")
    s.setblocking(False)
    return s


def main():
    proxy = (sys.argv[1], int(sys.argv[2]))
    bind = sys.argv[3]
    target = (sys.argv[4], int(sys.argv[5]))
    count = int(sys.argv[6])
    deadline = time.monotonic() + float(sys.argv[7])
    sel = selectors.DefaultSelector()
    got = [0] * count
    for i in range(count):
        s = socks5(proxy, bind, target)
        s.sendall(b"down\n")
        sel.register(s, selectors.EVENT_READ, i)
    ready = False
    open_ = set(range(count))
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s, i = key.fileobj, key.data
            end = None
            try:
                data = s.recv(1 << 20)
                if data:
                    got[i] += len(data)
                else:
                    end = "fin"
            except (ConnectionResetError, BrokenPipeError):
                end = "reset"
            except BlockingIOError:
                continue
            if end:
                sel.unregister(s)
                s.close()
                open_.discard(i)
                say({"i": i, "end": end, "bytes": got[i]})
        if not ready and all(n >= 256 * 1024 for n in got):
            ready = True
            say({"ready": True})
    if open_:
        say({"open": sorted(open_)})


if __name__ == "__main__":
    main()
