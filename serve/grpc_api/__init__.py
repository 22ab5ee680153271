"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), served beside HTTP by `serve http
--grpc-port P`: inference.proto (the service), descriptor.py (it compiled), messages.py (its message classes),
service.py (the methods, over the one data plane), server.py (grpc.aio in each worker)."""
