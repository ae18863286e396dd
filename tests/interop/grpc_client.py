#!/usr/bin/python3
"""A real gRPC client (Debian python3-grpcio, gRPC C-core) driving a SharedLvm server.

Usage: grpc_client.py HOST:PORT SCENARIO [CA [CERT KEY]]. Prints one JSON object with what it
observed; the C# test asserts on it. No generated stubs: messages are well-known wrapper types.
With CA the channel is TLS (ssl_channel_credentials), verifying the server as "controller"; with
CERT and KEY it also presents a client certificate.
"""
import json
import sys
import time

import grpc
from google.protobuf import wrappers_pb2 as w

target, scenario = sys.argv[1], sys.argv[2]
options = [("grpc.max_receive_message_length", 8 * 1024 * 1024),
           ("grpc.max_send_message_length", 8 * 1024 * 1024)]
if len(sys.argv) > 3:
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(sys.argv[3]),
        private_key=read(sys.argv[5]) if len(sys.argv) > 5 else None,
        certificate_chain=read(sys.argv[4]) if len(sys.argv) > 5 else None)
    # The controller's certificate names the controller, not 127.0.0.1.
    channel = grpc.secure_channel(target, credentials, options=options + [("grpc.ssl_target_name_override", "controller")])
else:
    channel = grpc.insecure_channel(target, options=options)


def method(path, req, resp, stream=False):
    factory = channel.unary_stream if stream else channel.unary_unary
    return factory(path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString)


echo = method("/sharedlvm.testing.Echo/Unary", w.BytesValue, w.BytesValue)
sleep = method("/sharedlvm.testing.Echo/Sleep", w.UInt32Value, w.UInt32Value)
fail = method("/sharedlvm.testing.Echo/Fail", w.StringValue, w.StringValue)
count = method("/sharedlvm.testing.Echo/Count", w.UInt32Value, w.UInt32Value, stream=True)


def error(e):
    return {"code": e.code().name, "details": e.details(),
            "trailers": {k: v for k, v in (e.trailing_metadata() or [])}}


out = {}
try:
    if scenario == "unary":
        reply, call = echo.with_call(w.BytesValue(value=b"hello"), metadata=[("x-request-id", "r-1")], timeout=10)
        out = {"value": reply.value.decode(), "code": call.code().name}
    elif scenario == "gzip":
        reply = echo(w.BytesValue(value=b"z" * 100000), compression=grpc.Compression.Gzip, timeout=10)
        out = {"length": len(reply.value)}
    elif scenario == "large":
        reply = echo(w.BytesValue(value=b"x" * (3 * 1024 * 1024)), timeout=20)
        out = {"length": len(reply.value)}
    elif scenario == "too_large":
        echo(w.BytesValue(value=b"x" * (5 * 1024 * 1024)), timeout=20)
    elif scenario == "stream":
        out = {"values": [m.value for m in count(w.UInt32Value(value=5), timeout=10)]}
    elif scenario == "deadline":
        start = time.monotonic()
        try:
            sleep(w.UInt32Value(value=5000), timeout=0.3)
        finally:
            out["elapsed"] = time.monotonic() - start
    elif scenario == "cancel":
        future = sleep.future(w.UInt32Value(value=60000), timeout=30)
        time.sleep(2)  # let the call reach the handler even on a loaded machine
        future.cancel()
        out = {"cancelled": future.cancelled()}
        time.sleep(0.5)
    elif scenario == "error":
        fail(w.StringValue(value="9:volume vol-1 is attached to node-a (ünïcode %)"), timeout=10)
    elif scenario == "unknown_method":
        method("/sharedlvm.testing.Echo/NoSuchMethod", w.StringValue, w.StringValue)(w.StringValue(), timeout=10)
    elif scenario == "health":
        # grpc.health.v1 HealthCheckRequest{service=""} encodes to no bytes; SERVING=1 is b"\x08\x01".
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        out = {"raw": check(b"", timeout=10).hex()}
    elif scenario == "list_pools":
        # sharedlvm.v1.Controller/ListPools with an empty ListPoolsRequest; the reply stays raw.
        reply, call = channel.unary_unary("/sharedlvm.v1.Controller/ListPools").with_call(b"", timeout=20)
        out = {"code": call.code().name, "bytes": len(reply)}
    else:
        raise SystemExit("unknown scenario " + scenario)
except grpc.RpcError as e:
    out.update(error(e))
print(json.dumps(out))
