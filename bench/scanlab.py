#!/usr/bin/env python3
"""Listeners for bench/scan.sh: a spread of IoT services on ~20 hosts of a /24.

Usage: scanlab.py PREFIX FIRST COUNT PORTS_OUT
Binds, for host i (PREFIX.FIRST+i), a deterministic subset of the default TCP
ports with canned banners, plus CoAP, SSDP and BACnet responders on a few
hosts, writes the TCP "addr:port" set to PORTS_OUT and serves until killed.
Runs inside the lab namespace only; it binds 10.200.x addresses.
"""
import asyncio, struct, sys

TCP = [23, 2323, 22, 80, 443, 8080, 8443, 554, 1883, 8883, 502, 5000, 7547, 37777, 34567]
BANNER_FIRST = {
    22: b"SSH-2.0-dropbear_2019.78\r\n",
    23: b"\r\nBusyBox v1.19.4 (2013-03-01) built-in shell (ash)\r\n(none) login: ",
    2323: b"\r\n(none) login: ",
}
HTTP = {80: b"uc-httpd 1.0.0", 8080: b"GoAhead-Webs", 5000: b"lighttpd/1.4.35", 7547: b"RomPager/4.07",
        554: None}


def ports_for(i):
    # Host i listens on every port whose index is congruent to i mod 3 or 5:
    # between 5 and 9 of the 15, differing from host to host.
    return [p for k, p in enumerate(TCP) if k % 3 == i % 3 or k % 5 == i % 5]


async def handle(port, reader, writer):
    try:
        if port in BANNER_FIRST:
            writer.write(BANNER_FIRST[port])
            await writer.drain()
        data = await asyncio.wait_for(reader.read(1024), 3)
        if port == 502 and len(data) >= 11 and data[7:9] == b"\x2b\x0e":
            objs = b"\x00\x04Acme\x01\x05PLC-1\x02\x031.0"
            pdu = b"\x2b\x0e\x01\x01\x00\x00\x03" + objs
            writer.write(data[0:2] + b"\x00\x00" + struct.pack(">H", len(pdu) + 1) + data[6:7] + pdu)
        elif port == 554 and data.startswith(b"OPTIONS"):
            writer.write(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: LIVE555 Streaming Media v2016.01.12\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n")
        elif port in HTTP and data.startswith(b"GET"):
            writer.write(b"HTTP/1.1 200 OK\r\nServer: " + HTTP[port] + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


class UDPResponder(asyncio.DatagramProtocol):
    def __init__(self, port):
        self.port = port

    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        if self.port == 5683 and len(data) >= 4 and data[0] >> 6 == 1:
            tkl = data[0] & 0x0F
            hdr = bytes([0x60 | tkl, 0x45]) + data[2:4] + data[4:4 + tkl]
            self.t.sendto(hdr + bytes([0xC1, 40, 0xFF]) + b'</sensors/temp>;rt="temperature-c"', addr)
        elif self.port == 1900 and data.startswith(b"M-SEARCH"):
            self.t.sendto(b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:lab::upnp:rootdevice\r\n"
                          b"SERVER: Linux/3.10 UPnP/1.0 lab/1.0\r\nLOCATION: http://%s/desc.xml\r\n\r\n" % addr[0].encode(), addr)
        elif self.port == 47808 and data[:2] == b"\x81\x0a":
            self.t.sendto(bytes.fromhex("810a00150100100" "0c40203f7a12205c49100220104"), addr)


async def main():
    prefix, first, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    loop = asyncio.get_running_loop()
    opened = []
    for i in range(count):
        addr = f"{prefix}.{first + i}"
        for p in ports_for(i):
            await asyncio.start_server(lambda r, w, p=p: handle(p, r, w), addr, p, backlog=256)
            opened.append(f"{addr}:{p}")
        if i % 4 == 0:
            for p in (5683, 1900, 47808):
                await loop.create_datagram_endpoint(lambda p=p: UDPResponder(p), local_addr=(addr, p))
    with open(out, "w") as f:
        f.write("\n".join(sorted(opened)) + "\n")
    await asyncio.Event().wait()


asyncio.run(main())
