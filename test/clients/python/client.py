"""Allocates a GameServer through the gateway over mTLS and prints the response as JSON.

Stubs: `npm run gen` (gen/python on PYTHONPATH); runtime: requirements.txt."""
import argparse
import os
import sys

import grpc
from google.protobuf import json_format

from allocation import allocation_pb2 as pb, allocation_pb2_grpc as pb_grpc


def kv(s):
    """'k=v' -> {k: v}; '' -> {}."""
    return dict([s.split("=", 1)]) if "=" in s else {}


def read(path):
    return open(path, "rb").read() if path else None


p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--addr", default=os.environ.get("ALLOCATOR_ADDR", "127.0.0.1:8443"))
p.add_argument("--ca", default=os.environ.get("ALLOCATOR_CA"), help="CA certificate (PEM)")
p.add_argument("--cert", default=os.environ.get("ALLOCATOR_CERT"), help="client certificate (PEM)")
p.add_argument("--key", default=os.environ.get("ALLOCATOR_KEY"), help="client private key (PEM)")
p.add_argument("--namespace", default="default")
p.add_argument("--selector", default="", help="matchLabels of the GameServer selector, k=v")
p.add_argument("--label", default="", help="label to add to the allocated GameServer, k=v")
a = p.parse_args()

creds = grpc.ssl_channel_credentials(read(a.ca), read(a.key), read(a.cert))
with grpc.secure_channel(a.addr, creds) as channel:
    try:
        resp = pb_grpc.AllocationServiceStub(channel).Allocate(
            pb.AllocationRequest(
                namespace=a.namespace,
                gameServerSelectors=[pb.GameServerSelector(matchLabels=kv(a.selector))],
                metadata=pb.MetaPatch(labels=kv(a.label)),
            ),
            timeout=10,
        )
    except grpc.RpcError as e:
        sys.exit(f"Allocate: {e.code().name}: {e.details()}")
print(json_format.MessageToJson(resp, indent=None))
