"""inference.proto, compiled: the FileDescriptorProto that messages.py builds the message classes from.

Committed, not generated at install, and not protoc's usual `_pb2.py` modules:

- no build step: the serve extra needs grpcio and protobuf only, not grpcio-tools;
- protoc's generated modules pin the protobuf runtime to at least the generator's
  version, and grpcio-tools 1.85's protoc needs protobuf 7 while tritonclient (the
  reference client the tests run) needs protobuf < 7; a descriptor runs on either;
- the classes live in a pool of their own: tritonclient registers the same message
  names (`inference.ModelInferRequest`, ...) in protobuf's default pool, and two files
  defining one name in one pool fail to load.

`make grpc` (python -m serve.protocols.grpc.descriptor) writes COMPILED again from the .proto
after a change, with grpcio-tools; tests/test_grpc_api.py checks the two agree.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

PROTO = Path(__file__).with_name("inference.proto")

COMPILED = (
    "Cg9pbmZlcmVuY2UucHJvdG8SCWluZmVyZW5jZSITChFTZXJ2ZXJMaXZlUmVxdWVzdCIoChJTZXJ2ZXJMaXZlUmVzcG9uc2USEgoE"
    "bGl2ZRgBIAEoCFIEbGl2ZSIUChJTZXJ2ZXJSZWFkeVJlcXVlc3QiKwoTU2VydmVyUmVhZHlSZXNwb25zZRIUCgVyZWFkeRgBIAEo"
    "CFIFcmVhZHkiQQoRTW9kZWxSZWFkeVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9u"
    "IioKEk1vZGVsUmVhZHlSZXNwb25zZRIUCgVyZWFkeRgBIAEoCFIFcmVhZHkiFwoVU2VydmVyTWV0YWRhdGFSZXF1ZXN0ImYKFlNl"
    "cnZlck1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJzaW9uGAIgASgJUgd2ZXJzaW9uEh4KCmV4dGVu"
    "c2lvbnMYAyADKAlSCmV4dGVuc2lvbnMiRAoUTW9kZWxNZXRhZGF0YVJlcXVlc3QSEgoEbmFtZRgBIAEoCVIEbmFtZRIYCgd2ZXJz"
    "aW9uGAIgASgJUgd2ZXJzaW9uIs8CChVNb2RlbE1ldGFkYXRhUmVzcG9uc2USEgoEbmFtZRgBIAEoCVIEbmFtZRIaCgh2ZXJzaW9u"
    "cxgCIAMoCVIIdmVyc2lvbnMSGgoIcGxhdGZvcm0YAyABKAlSCHBsYXRmb3JtEkcKBmlucHV0cxgEIAMoCzIvLmluZmVyZW5jZS5N"
    "b2RlbE1ldGFkYXRhUmVzcG9uc2UuVGVuc29yTWV0YWRhdGFSBmlucHV0cxJJCgdvdXRwdXRzGAUgAygLMi8uaW5mZXJlbmNlLk1v"
    "ZGVsTWV0YWRhdGFSZXNwb25zZS5UZW5zb3JNZXRhZGF0YVIHb3V0cHV0cxpWCg5UZW5zb3JNZXRhZGF0YRISCgRuYW1lGAEgASgJ"
    "UgRuYW1lEhoKCGRhdGF0eXBlGAIgASgJUghkYXRhdHlwZRIUCgVzaGFwZRgDIAMoA1IFc2hhcGUinQgKEU1vZGVsSW5mZXJSZXF1"
    "ZXN0Eh0KCm1vZGVsX25hbWUYASABKAlSCW1vZGVsTmFtZRIjCg1tb2RlbF92ZXJzaW9uGAIgASgJUgxtb2RlbFZlcnNpb24SDgoC"
    "aWQYAyABKAlSAmlkEkwKCnBhcmFtZXRlcnMYBCADKAsyLC5pbmZlcmVuY2UuTW9kZWxJbmZlclJlcXVlc3QuUGFyYW1ldGVyc0Vu"
    "dHJ5UgpwYXJhbWV0ZXJzEkUKBmlucHV0cxgFIAMoCzItLmluZmVyZW5jZS5Nb2RlbEluZmVyUmVxdWVzdC5JbmZlcklucHV0VGVu"
    "c29yUgZpbnB1dHMSUQoHb3V0cHV0cxgGIAMoCzI3LmluZmVyZW5jZS5Nb2RlbEluZmVyUmVxdWVzdC5JbmZlclJlcXVlc3RlZE91"
    "dHB1dFRlbnNvclIHb3V0cHV0cxIsChJyYXdfaW5wdXRfY29udGVudHMYByADKAxSEHJhd0lucHV0Q29udGVudHMazQIKEEluZmVy"
    "SW5wdXRUZW5zb3ISEgoEbmFtZRgBIAEoCVIEbmFtZRIaCghkYXRhdHlwZRgCIAEoCVIIZGF0YXR5cGUSFAoFc2hhcGUYAyADKANS"
    "BXNoYXBlEl0KCnBhcmFtZXRlcnMYBCADKAsyPS5pbmZlcmVuY2UuTW9kZWxJbmZlclJlcXVlc3QuSW5mZXJJbnB1dFRlbnNvci5Q"
    "YXJhbWV0ZXJzRW50cnlSCnBhcmFtZXRlcnMSOgoIY29udGVudHMYBSABKAsyHi5pbmZlcmVuY2UuSW5mZXJUZW5zb3JDb250ZW50"
    "c1IIY29udGVudHMaWAoPUGFyYW1ldGVyc0VudHJ5EhAKA2tleRgBIAEoCVIDa2V5Ei8KBXZhbHVlGAIgASgLMhkuaW5mZXJlbmNl"
    "LkluZmVyUGFyYW1ldGVyUgV2YWx1ZToCOAEa8wEKGkluZmVyUmVxdWVzdGVkT3V0cHV0VGVuc29yEhIKBG5hbWUYASABKAlSBG5h"
    "bWUSZwoKcGFyYW1ldGVycxgCIAMoCzJHLmluZmVyZW5jZS5Nb2RlbEluZmVyUmVxdWVzdC5JbmZlclJlcXVlc3RlZE91dHB1dFRl"
    "bnNvci5QYXJhbWV0ZXJzRW50cnlSCnBhcmFtZXRlcnMaWAoPUGFyYW1ldGVyc0VudHJ5EhAKA2tleRgBIAEoCVIDa2V5Ei8KBXZh"
    "bHVlGAIgASgLMhkuaW5mZXJlbmNlLkluZmVyUGFyYW1ldGVyUgV2YWx1ZToCOAEaWAoPUGFyYW1ldGVyc0VudHJ5EhAKA2tleRgB"
    "IAEoCVIDa2V5Ei8KBXZhbHVlGAIgASgLMhkuaW5mZXJlbmNlLkluZmVyUGFyYW1ldGVyUgV2YWx1ZToCOAEi3wUKEk1vZGVsSW5m"
    "ZXJSZXNwb25zZRIdCgptb2RlbF9uYW1lGAEgASgJUgltb2RlbE5hbWUSIwoNbW9kZWxfdmVyc2lvbhgCIAEoCVIMbW9kZWxWZXJz"
    "aW9uEg4KAmlkGAMgASgJUgJpZBJNCgpwYXJhbWV0ZXJzGAQgAygLMi0uaW5mZXJlbmNlLk1vZGVsSW5mZXJSZXNwb25zZS5QYXJh"
    "bWV0ZXJzRW50cnlSCnBhcmFtZXRlcnMSSQoHb3V0cHV0cxgFIAMoCzIvLmluZmVyZW5jZS5Nb2RlbEluZmVyUmVzcG9uc2UuSW5m"
    "ZXJPdXRwdXRUZW5zb3JSB291dHB1dHMSLgoTcmF3X291dHB1dF9jb250ZW50cxgGIAMoDFIRcmF3T3V0cHV0Q29udGVudHMa0AIK"
    "EUluZmVyT3V0cHV0VGVuc29yEhIKBG5hbWUYASABKAlSBG5hbWUSGgoIZGF0YXR5cGUYAiABKAlSCGRhdGF0eXBlEhQKBXNoYXBl"
    "GAMgAygDUgVzaGFwZRJfCgpwYXJhbWV0ZXJzGAQgAygLMj8uaW5mZXJlbmNlLk1vZGVsSW5mZXJSZXNwb25zZS5JbmZlck91dHB1"
    "dFRlbnNvci5QYXJhbWV0ZXJzRW50cnlSCnBhcmFtZXRlcnMSOgoIY29udGVudHMYBSABKAsyHi5pbmZlcmVuY2UuSW5mZXJUZW5z"
    "b3JDb250ZW50c1IIY29udGVudHMaWAoPUGFyYW1ldGVyc0VudHJ5EhAKA2tleRgBIAEoCVIDa2V5Ei8KBXZhbHVlGAIgASgLMhku"
    "aW5mZXJlbmNlLkluZmVyUGFyYW1ldGVyUgV2YWx1ZToCOAEaWAoPUGFyYW1ldGVyc0VudHJ5EhAKA2tleRgBIAEoCVIDa2V5Ei8K"
    "BXZhbHVlGAIgASgLMhkuaW5mZXJlbmNlLkluZmVyUGFyYW1ldGVyUgV2YWx1ZToCOAEijQEKDkluZmVyUGFyYW1ldGVyEh8KCmJv"
    "b2xfcGFyYW0YASABKAhIAFIJYm9vbFBhcmFtEiEKC2ludDY0X3BhcmFtGAIgASgDSABSCmludDY0UGFyYW0SIwoMc3RyaW5nX3Bh"
    "cmFtGAMgASgJSABSC3N0cmluZ1BhcmFtQhIKEHBhcmFtZXRlcl9jaG9pY2UiwwIKE0luZmVyVGVuc29yQ29udGVudHMSIwoNYm9v"
    "bF9jb250ZW50cxgBIAMoCFIMYm9vbENvbnRlbnRzEiEKDGludF9jb250ZW50cxgCIAMoBVILaW50Q29udGVudHMSJQoOaW50NjRf"
    "Y29udGVudHMYAyADKANSDWludDY0Q29udGVudHMSIwoNdWludF9jb250ZW50cxgEIAMoDVIMdWludENvbnRlbnRzEicKD3VpbnQ2"
    "NF9jb250ZW50cxgFIAMoBFIOdWludDY0Q29udGVudHMSIwoNZnAzMl9jb250ZW50cxgGIAMoAlIMZnAzMkNvbnRlbnRzEiMKDWZw"
    "NjRfY29udGVudHMYByADKAFSDGZwNjRDb250ZW50cxIlCg5ieXRlc19jb250ZW50cxgIIAMoDFINYnl0ZXNDb250ZW50czL8AwoU"
    "R1JQQ0luZmVyZW5jZVNlcnZpY2USSwoKU2VydmVyTGl2ZRIcLmluZmVyZW5jZS5TZXJ2ZXJMaXZlUmVxdWVzdBodLmluZmVyZW5j"
    "ZS5TZXJ2ZXJMaXZlUmVzcG9uc2UiABJOCgtTZXJ2ZXJSZWFkeRIdLmluZmVyZW5jZS5TZXJ2ZXJSZWFkeVJlcXVlc3QaHi5pbmZl"
    "cmVuY2UuU2VydmVyUmVhZHlSZXNwb25zZSIAEksKCk1vZGVsUmVhZHkSHC5pbmZlcmVuY2UuTW9kZWxSZWFkeVJlcXVlc3QaHS5p"
    "bmZlcmVuY2UuTW9kZWxSZWFkeVJlc3BvbnNlIgASVwoOU2VydmVyTWV0YWRhdGESIC5pbmZlcmVuY2UuU2VydmVyTWV0YWRhdGFS"
    "ZXF1ZXN0GiEuaW5mZXJlbmNlLlNlcnZlck1ldGFkYXRhUmVzcG9uc2UiABJUCg1Nb2RlbE1ldGFkYXRhEh8uaW5mZXJlbmNlLk1v"
    "ZGVsTWV0YWRhdGFSZXF1ZXN0GiAuaW5mZXJlbmNlLk1vZGVsTWV0YWRhdGFSZXNwb25zZSIAEksKCk1vZGVsSW5mZXISHC5pbmZl"
    "cmVuY2UuTW9kZWxJbmZlclJlcXVlc3QaHS5pbmZlcmVuY2UuTW9kZWxJbmZlclJlc3BvbnNlIgBiBnByb3RvMw=="
)


def compile_proto() -> bytes:
    """inference.proto compiled by grpcio-tools' protoc: its FileDescriptorProto, serialized.

    protoc runs in a process of its own: its extension carries a protobuf library of its own, which crashes a
    process that has loaded TensorFlow's (measured: a segmentation fault in the test process).
    """
    import subprocess
    import tempfile

    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "set.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}",
                   PROTO.name]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed on {PROTO}: {done.stderr.strip()[-2000:]}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    (compiled,) = files
    return compiled.SerializeToString(deterministic=True)


def write() -> None:
    """Write COMPILED into this file from inference.proto."""
    encoded = base64.b64encode(compile_proto()).decode("ascii")
    lines = "\n".join(f'    "{encoded[i : i + 100]}"' for i in range(0, len(encoded), 100))
    source = Path(__file__).read_text()
    head, rest = source.split("COMPILED = (\n", 1)
    _, tail = rest.split("\n)\n", 1)
    Path(__file__).write_text(f"{head}COMPILED = (\n{lines}\n)\n{tail}")


if __name__ == "__main__":
    write()
    sys.exit(0)
