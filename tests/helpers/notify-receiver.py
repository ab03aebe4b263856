"""A NOTIFY_SOCKET for tests: binds an AF_UNIX datagram socket, prints each message as a JSON line.

Closes file descriptors passed with a message (systemd-notify's BARRIER=1 waits for that), as
systemd does. Usage: python3 notify-receiver.py SOCKET_PATH
"""
import array
import json
import os
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print(json.dumps({"listening": sys.argv[1]}), flush=True)
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps({"msg": data.decode("utf-8", "replace")}), flush=True)
