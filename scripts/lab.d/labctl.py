#!/usr/bin/env python3
"""Drives the SAN lab's guests without ssh: the QEMU guest agent (guest-exec over virtio-serial)
and QMP (device hot-add/remove). Standard library only.

  labctl.py exec QGA_SOCKET [--timeout S] -- PROGRAM [ARGS...]   run in the guest; relay output, exit code
  labctl.py wait QGA_SOCKET [--timeout S]                         until the guest agent answers
  labctl.py qmp QMP_SOCKET COMMAND [JSON_ARGUMENTS]               one QMP command; prints its return
"""
import argparse
import base64
import json
import random
import socket
import sys
import time


class Channel:
    """One JSON-lines conversation over a unix socket; every read is bounded by a deadline."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, message):
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def receive(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the guest channel closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        # The guest agent may prefix a sync delimiter (0xff); drop anything before the JSON.
        line = line[line.find(b"{"):] if b"{" in line else b""
        return json.loads(line) if line else self.receive()

    def call(self, execute, arguments=None):
        message = {"execute": execute}
        if arguments is not None:
            message["arguments"] = arguments
        self.send(message)
        while True:
            reply = self.receive()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError(f"{execute}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")

    def close(self):
        self.sock.close()


def qga(path, timeout):
    """A guest-agent channel, synchronised so a reply left over from an earlier client is skipped."""
    channel = Channel(path, timeout)
    token = random.randint(1, 2**31)
    channel.send({"execute": "guest-sync", "arguments": {"id": token}})
    while channel.receive().get("return") != token:
        pass
    return channel


def run_exec(args):
    deadline = time.monotonic() + args.timeout
    channel = qga(args.socket, min(args.timeout, 30))
    try:
        pid = channel.call("guest-exec", {"path": args.command[0], "arg": args.command[1:], "capture-output": True})["pid"]
        while True:
            status = channel.call("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                break
            if time.monotonic() > deadline:
                sys.stderr.write(f"labctl: {' '.join(args.command)}: no exit after {args.timeout} s\n")
                return 124
            time.sleep(0.1)
    finally:
        channel.close()
    sys.stdout.write(base64.b64decode(status.get("out-data", "")).decode(errors="replace"))
    sys.stderr.write(base64.b64decode(status.get("err-data", "")).decode(errors="replace"))
    return status.get("exitcode", 128 + status.get("signal", 0))


def run_wait(args):
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            qga(args.socket, 3).close()
            return 0
        except (OSError, ConnectionError, ValueError):
            if time.monotonic() > deadline:
                sys.stderr.write(f"labctl: no guest agent on {args.socket} after {args.timeout} s\n")
                return 1
            time.sleep(1)


def run_qmp(args):
    channel = Channel(args.socket, 30)
    try:
        channel.receive()  # the greeting
        channel.call("qmp_capabilities")
        result = channel.call(args.command, json.loads(args.arguments) if args.arguments else None)
        print(json.dumps(result))
    finally:
        channel.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    execute = verbs.add_parser("exec")
    execute.add_argument("socket")
    execute.add_argument("--timeout", type=float, default=120)
    execute.add_argument("command", nargs="+")
    wait = verbs.add_parser("wait")
    wait.add_argument("socket")
    wait.add_argument("--timeout", type=float, default=180)
    qmp = verbs.add_parser("qmp")
    qmp.add_argument("socket")
    qmp.add_argument("command")
    qmp.add_argument("arguments", nargs="?")
    args = parser.parse_args()
    try:
        return {"exec": run_exec, "wait": run_wait, "qmp": run_qmp}[args.verb](args)
    except (OSError, RuntimeError, ConnectionError) as e:
        sys.stderr.write(f"labctl: {e}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
