"""Ask a DNS server for NAME's A record over UDP; exit 0 and print the addresses if any.

Usage: python3 dns_query.py SERVER NAME   (stdlib only: up.sh checks CoreDNS with it)
"""

import random
import socket
import struct
import sys


def query(server: str, name: str, timeout_s: float = 2.0) -> list[str]:
    """The IPv4 addresses SERVER gives for NAME (empty if none or on error rcode)."""
    qid = random.randrange(65536)
    header = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # recursion desired, 1 question
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = header + qname + struct.pack(">HH", 1, 1)  # A, IN
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(packet, (server, 53))
        reply, _ = sock.recvfrom(4096)
    rid, flags, _qd, ancount, _ns, _ar = struct.unpack(">HHHHHH", reply[:12])
    if rid != qid or flags & 0x000F:
        return []
    pos = 12 + len(qname) + 4
    addresses = []
    for _ in range(ancount):
        if reply[pos] & 0xC0 == 0xC0:  # compressed name pointer
            pos += 2
        else:
            while reply[pos]:
                pos += reply[pos] + 1
            pos += 1
        rtype, _cls, _ttl, rdlength = struct.unpack(">HHIH", reply[pos : pos + 10])
        pos += 10
        if rtype == 1 and rdlength == 4:
            addresses.append(socket.inet_ntoa(reply[pos : pos + 4]))
        pos += rdlength
    return addresses


if __name__ == "__main__":
    try:
        found = query(sys.argv[1], sys.argv[2])
    except OSError as exc:
        print(f"no answer: {exc}", file=sys.stderr)
        sys.exit(1)
    print("\n".join(found))
    sys.exit(0 if found else 1)
