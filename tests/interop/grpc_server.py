#!/usr/bin/python3
"""A real gRPC server (Debian python3-grpcio) serving sharedlvm.testing.Echo for our client.

Prints "PORT <n>" once listening on 127.0.0.1, then serves until stdin closes.
"""
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import wrappers_pb2 as w

cancelled = []


def unary(request, context):
    for key, value in context.invocation_metadata():
        if key == "x-echo-header":
            context.set_trailing_metadata((("x-echoed", value),))
    return w.BytesValue(value=request.value)


def sleep(request, context):
    deadline = time.monotonic() + request.value / 1000
    while time.monotonic() < deadline:
        if not context.is_active():
            cancelled.append(1)
            return w.UInt32Value()
        time.sleep(0.01)
    return w.UInt32Value(value=request.value)


def fail(request, context):
    code, _, message = request.value.partition(":")
    status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
    context.abort(status, message)


def count(request, context):
    for i in range(1, request.value + 1):
        yield w.UInt32Value(value=i)


def cancelled_count(request, context):
    return w.UInt32Value(value=len(cancelled))


handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary, w.BytesValue.FromString, w.BytesValue.SerializeToString),
    "Sleep": grpc.unary_unary_rpc_method_handler(sleep, w.UInt32Value.FromString, w.UInt32Value.SerializeToString),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, w.StringValue.FromString, w.StringValue.SerializeToString),
    "Count": grpc.unary_stream_rpc_method_handler(count, w.UInt32Value.FromString, w.UInt32Value.SerializeToString),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024)])
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("sharedlvm.testing.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print("PORT", port, flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), server.stop(0)), daemon=True).start()
server.wait_for_termination()
