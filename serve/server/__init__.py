"""The server: `serve http`'s flags and start (command.py), granian, the HTTP engine, and its processes
(engine.py, processes.py, stop_signals.py), the adapter that joins it to the app (rsgi_adapter.py), gRPC beside it
(grpc_server.py), and Prometheus metrics (prometheus.py)."""
