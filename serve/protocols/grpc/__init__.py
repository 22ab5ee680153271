"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`): inference.proto (the service),
descriptor.py (it compiled), messages.py (its message classes), wire.py (a request's fields counted before it is
parsed), service.py (the methods, over the one data plane). The server that runs it is serve/server/grpc_server.py."""
